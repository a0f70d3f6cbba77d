/* run.c: runs of pages -- the free-run index, and the one pair of calls
 * that writes run metadata (publish and retire).
 *
 * FREE RUNS live in DRAM only: boundary tags at both ends of each free
 * run, and size bins by powers of two, page-indexed; freeing merges with
 * free neighbours, and a free run that reaches heap.top goes back to the
 * top.  Run metadata in the pool -- the page descriptors of layout.h --
 * is written here and nowhere else: run_publish when a run becomes live,
 * run_retire when it is released, run_desc_defer for what waits for the
 * next durability point (DEFERRED DESCRIPTORS below), and, for recovery,
 * run_desc_stage and run_desc_sync, which rewrite descriptors in a batch
 * with one drain. */
#include <stdatomic.h>

#include "../common/compiler.h"
#include "../common/crash.h"
#include "../common/error.h"
#include "heap.h"
#include "btd.h"
#include "heap_int.h"
#include "pmem.h"

#define NIL UINT32_MAX

static unsigned run_bin(size_t n)
{
	return 63 - (unsigned)__builtin_clzll(n);
}

static void run_link(size_t page, size_t n)
{
	unsigned b = run_bin(n);

	heap.ftag[page] = heap.ftag[page + n - 1] = (uint32_t)n;
	heap.fprev[page] = NIL;
	heap.fnext[page] = heap.fbin[b];
	if (heap.fbin[b] != NIL)
		heap.fprev[heap.fbin[b]] = (uint32_t)page;
	heap.fbin[b] = (uint32_t)page;
	heap.fbin_mask |= (uint64_t)1 << b;
}

static void run_unlink(size_t page)
{
	size_t n = heap.ftag[page];
	unsigned b = run_bin(n);

	if (heap.fprev[page] != NIL)
		heap.fnext[heap.fprev[page]] = heap.fnext[page];
	else
		heap.fbin[b] = heap.fnext[page];
	if (heap.fnext[page] != NIL)
		heap.fprev[heap.fnext[page]] = heap.fprev[page];
	if (heap.fbin[b] == NIL)
		heap.fbin_mask &= ~((uint64_t)1 << b);
	heap.ftag[page] = heap.ftag[page + n - 1] = 0;
}

/* Return pages to the free index, merging with free neighbours; caller
 * holds heap.lock.  Tags are non-zero only at the ends of free runs.
 * Whether each page is backed or a hole is space.c's to know, per page,
 * whatever runs it ends up in. */
void run_free(size_t page, size_t n)
{
	space_freed(page, n);
	if (page > 0 && heap.ftag[page - 1]) {
		size_t ln = heap.ftag[page - 1];

		run_unlink(page - ln);
		page -= ln;
		n += ln;
	}
	if (page + n < heap.top && heap.ftag[page + n]) {
		size_t rn = heap.ftag[page + n];

		run_unlink(page + n);
		n += rn;
	}
	if (page + n == heap.top) { /* give it back to the top */
		heap.top = page;
		return;
	}
	run_link(page, n);
}

/* Take n pages at the top, growing the pool's backed part when needed;
 * SIZE_MAX when it cannot (pool_grow says why).  What the growth backed
 * beyond them is free, and decays like any free page. */
static size_t run_top_take(size_t n)
{
	size_t backed = heap.pool.heap_top;

	if (pool_grow(&heap.pool, heap.top + n))
		return SIZE_MAX;
	size_t page = heap.top;

	heap.top += n;
	if (heap.pool.heap_top > backed) {
		size_t from = heap.top > backed ? heap.top : backed;

		if (heap.pool.heap_top > from)
			space_freed(from, heap.pool.heap_top - from);
	}
	return page;
}

static size_t run_take_free(size_t n);

/* Take n pages (caller holds heap.lock), backed; SIZE_MAX when there is no
 * room or no space (the reason in err_last).  A full pool gives back the
 * runs it retains (retain.c) before it says so. */
size_t run_take(size_t n)
{
	size_t page = run_take_free(n);

	if (page == SIZE_MAX && (slab_retain_parked_empty() || heap.nempty || heap.nidle)) {
		retain_drop_all();
		page = run_take_free(n);
	}
	return page;
}

static size_t run_take_free(size_t n)
{
	unsigned b = run_bin(n);
	uint64_t above = b + 1 < 64 ? heap.fbin_mask & (~(uint64_t)0 << (b + 1)) : 0;
	size_t page = SIZE_MAX;

	if (above) {
		page = heap.fbin[__builtin_ctzll(above)];
	} else if (heap.fbin_mask & ((uint64_t)1 << b)) {
		for (uint32_t r = heap.fbin[b]; r != NIL; r = heap.fnext[r]) {
			if (heap.ftag[r] >= n) {
				page = r;
				break;
			}
		}
	}
	if (page != SIZE_MAX) {
		size_t have = heap.ftag[page];

		run_unlink(page);
		if (have > n)
			run_link(page + n, have - n);
	} else if ((page = run_top_take(n)) == SIZE_MAX) {
		return SIZE_MAX;
	}
	if (space_take(page, n)) { /* a hole that the file system cannot fill */
		run_free(page, n);
		return SIZE_MAX;
	}
	space_tick(); /* after the take, which the tick must not punch */
	return page;
}

/* Take the n pages at page when they are free (the start of a free run, or
 * the top); 1 when taken, not yet backed (space_take).  Caller holds
 * heap.lock: a large block grows in place with it. */
int run_take_at(size_t page, size_t n)
{
	if (page < heap.top && heap.ftag[page] >= n) {
		size_t len = heap.ftag[page];

		run_unlink(page);
		if (len > n)
			run_link(page + n, len - n);
		return 1;
	}
	return page == heap.top && heap.top + n <= heap.pool.npages &&
	       run_top_take(n) != SIZE_MAX;
}

/* Make the run of n pages at page live with head d, persisted at the next
 * durability point (heap_desc_sync); caller holds heap.lock.  A release
 * mark there that covered more pages is moved behind the run first, and
 * persisted at once, so its other pages stay covered. */
void run_publish(size_t page, size_t n, uint64_t d)
{
	struct pool *p = &heap.pool;
	uint64_t old = p->desc[page];

	if (desc_is_mark(old, page) && DESC_FREE_PAGES(old) > n) {
		/* The mark's rest, behind this run and behind any live run that
		 * already stands in it (an aligned block placed inside). */
		size_t end = page + DESC_FREE_PAGES(old), q = page + n, m;

		while (q < end && q < p->npages &&
		       (m = desc_run_pages(p->desc[q], q, p->npages, p->hdr.minor)))
			q += m;
		if (q < end && q < p->npages) {
			uint64_t cur = p->desc[q];

			if (cur == 0 || (desc_is_mark(cur, q) && DESC_FREE_PAGES(cur) < end - q)) {
				/* Durable before the head covers the old one. */
				__atomic_store_n(&p->desc[q], desc_make_free(end - q, q), __ATOMIC_RELAXED);
				pmem_persist_why(&p->desc[q], sizeof(uint64_t), PMEM_WHY_DESC);
				CRASH_POINT(CRASH_RUN_MARK_MOVED);
			}
		}
	}
	/* The head itself waits for the next durability point (retain.c): no
	 * live run covers these pages in the pool (a release is durable before
	 * its pages are reused), so until it is durable they read as free. */
	run_desc_defer(page, d);
}

/* The run of n pages at page is released: its head becomes a release mark
 * (persisted) before its pages can be reused; caller holds heap.lock. */
void run_retire(size_t page, size_t n)
{
	struct pool *p = &heap.pool;

	__atomic_store_n(&p->desc[page], desc_make_free(n, page), __ATOMIC_RELEASE);
	pmem_persist_why(&p->desc[page], sizeof(uint64_t), PMEM_WHY_DESC);
}

void run_desc_stage(size_t page, uint64_t d)
{
	__atomic_store_n(&heap.pool.desc[page], d, __ATOMIC_RELAXED);
}

void run_desc_sync(size_t page, size_t n)
{
	if (n) {
		pmem_flush_why(&heap.pool.desc[page], n * sizeof(uint64_t), PMEM_WHY_RECOVERY);
		pmem_drain_why(PMEM_WHY_RECOVERY);
	}
}

void run_map_large(size_t page, size_t npages)
{
	heap.pagemap[page] = PAGE_LARGE(npages);
}

/* DEFERRED DESCRIPTORS.  A descriptor that run_desc_defer stores is in
 * the pool at once (a process crash keeps it) and durable at the next
 * durability point (heap_desc_sync, or run_desc_flush_pending under the
 * lock), with the rest of its page of descriptors: a bit per such page in
 * heap.desc_dirty.  heap/retain.c says why every state in between is one
 * a crash may leave. */
void run_desc_flush_pending(void)
{
	if (!atomic_load_explicit(&heap.desc_pending, memory_order_relaxed))
		return;
	if (CRASH_DROPPED(CRASH_DROP_SLAB_HEAD))
		return; /* the crash suite's proof that it sees this flush missing */
	size_t words = heap.desc_dirty_bytes / 8, np = heap.pool.npages;

	for (size_t w = 0; w < words; w++) {
		for (uint64_t m = heap.desc_dirty[w]; m; m &= m - 1) {
			size_t first = (w * 64 + (size_t)__builtin_ctzll(m)) * DESC_PER_PAGE;
			size_t n = first + DESC_PER_PAGE <= np ? DESC_PER_PAGE : np - first;

			pmem_flush_why(&heap.pool.desc[first], n * sizeof(uint64_t), PMEM_WHY_DESC);
		}
		heap.desc_dirty[w] = 0;
	}
	pmem_drain_why(PMEM_WHY_DESC);
	atomic_store_explicit(&heap.desc_pending, 0, memory_order_relaxed);
}

void run_desc_defer(size_t page, uint64_t d)
{
	size_t dp = page / DESC_PER_PAGE;

	__atomic_store_n(&heap.pool.desc[page], d, __ATOMIC_RELEASE);
	heap.desc_dirty[dp / 64] |= (uint64_t)1 << (dp % 64);
	atomic_store_explicit(&heap.desc_pending, 1, memory_order_release);
}

void heap_desc_sync(void)
{
	if (likely(!atomic_load_explicit(&heap.desc_pending, memory_order_acquire)))
		return;
	pthread_mutex_lock(&heap.lock);
	run_desc_flush_pending();
	pthread_mutex_unlock(&heap.lock);
}
