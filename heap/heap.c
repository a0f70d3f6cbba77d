/* heap.c: the heap object -- its tables in DRAM, attached to an open pool
 * and detached from it -- internal memory, and the heap's statistics.
 *
 * The heap is one of the layers the open sequence (store/store.c) drives:
 * pool open, heap attach, transaction replay, recovery, heap ready.  The
 * heap never calls up into recovery or the store; recovery builds the
 * heap's runs through run.c and slab.c.  The concepts have a file each:
 *   classes.c  size classes          run.c    free runs, run metadata
 *   slab.c     slabs                 theap.c  thread heaps, the slow path
 *   alloc.c    malloc, free, ...     space.c  free pages and the file
 *   fork.c     a fork's view         roots.c  named roots
 *   tx.c       transactions          check.c  the heap checker */
#include "heap.h"

#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "../common/compiler.h"
#include "../common/error.h"
#include "../common/log.h"
#include "btd.h"
#include "heap_int.h"

struct heap heap = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* A fork child sees the pool privately and allocates nothing from it
 * (fork.c); set at exit too. */
int heap_frozen;

/* ---- internal memory: never malloc (invariant 6) ---------------------- */

void *heap_internal_map(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Fixed-size objects from 256 KiB mmaps; caller holds heap.lock. */
void *heap_internal_alloc(size_t n)
{
	static char *cur, *end;

	n = (n + 63) & ~(size_t)63;
	if (!cur || cur + n > end) {
		cur = heap_internal_map(256 << 10);
		if (!cur)
			return NULL;
		end = cur + (256 << 10);
	}
	void *p = cur;

	cur += n;
	return p;
}

void heap_misuse(const char *what, const void *p)
{
	btd_fatal("%s of %p: not a live block of the persistent heap "
		  "(double free, or a pointer into the middle of a block)", what, p);
}

/* ---- attach and detach ------------------------------------------------ */

struct pool *heap_pool(void)
{
	return &heap.pool;
}

/* The DRAM tables of the pool just opened; recovery fills them in. */
int heap_attach(void)
{
	size_t np = heap.pool.npages;

	classes_init();
	heap.pagemap_bytes = np * sizeof(page_entry);
	heap.pagemap = heap_internal_map(heap.pagemap_bytes);
	heap.ftag = heap_internal_map(np * sizeof(uint32_t));
	heap.fnext = heap_internal_map(np * sizeof(uint32_t));
	heap.fprev = heap_internal_map(np * sizeof(uint32_t));
	heap.desc_dirty_bytes = ((np + DESC_PER_PAGE - 1) / DESC_PER_PAGE + 63) / 64 * 8;
	heap.desc_dirty = heap_internal_map(heap.desc_dirty_bytes);
	if (!heap.pagemap || !heap.ftag || !heap.fnext || !heap.fprev || !heap.desc_dirty) {
		heap_detach();
		return err_set(BTD_ERR_NOMEM, "cannot map the heap's page tables (%zu pages)", np);
	}
	/* The data area is page-aligned: pool_open checks data_off against
	 * the layout, which rounds it to a page, and the base is a mapping. */
	uintptr_t data = (uintptr_t)heap.pool.data;

	heap.map_bias = (uintptr_t)heap.pagemap - (data >> 12) * sizeof(page_entry);
	heap.bit_bias = (uintptr_t)heap.pool.bitmap - (data >> 10) * sizeof(uint64_t);
	int ret = space_init(np);

	if (ret) {
		heap_detach();
		return ret;
	}
	for (unsigned b = 0; b < 64; b++)
		heap.fbin[b] = UINT32_MAX;
	heap.fbin_mask = 0;
	return 0;
}

/* Recovery is done: allocation may start. */
void heap_ready(void)
{
	space_ready();
	heap_frozen = 0;
	heap_purge_all(); /* what the file holds of the free pages goes back */
	theap_init();
	heap.open = 1;
}

/* The slab structs of the page map become spare, for the next open: a
 * process that opens pools again and again (btd check --repair, a test, a
 * fuzzer) does not grow.  Caller: the map is going, and no theap holds its
 * slabs. */
static void slabs_to_spare(void)
{
	for (size_t pg = 0; heap.pagemap && pg < heap.pool.heap_top; pg++) {
		page_entry e = heap.pagemap[pg];
		struct slab *s = (struct slab *)e;

		/* A slab (64-byte aligned), not a large run or recovery's mark
		 * of a large run's page; once, at its first page. */
		if (e && !(e & 63) && s->start == heap.pool.data + pg * POOL_PAGE) {
			s->next = heap.slab_free;
			heap.slab_free = s;
		}
	}
}

/* Drop the DRAM tables; their slab structs become spare; this thread's
 * heap forgets its slabs. */
void heap_detach(void)
{
	size_t np = heap.pool.npages;

	heap.open = 0;
	slabs_to_spare();
	if (heap.pagemap)
		munmap(heap.pagemap, heap.pagemap_bytes);
	if (heap.ftag)
		munmap(heap.ftag, np * sizeof(uint32_t));
	if (heap.fnext)
		munmap(heap.fnext, np * sizeof(uint32_t));
	if (heap.fprev)
		munmap(heap.fprev, np * sizeof(uint32_t));
	if (heap.desc_dirty)
		munmap(heap.desc_dirty, heap.desc_dirty_bytes);
	heap.desc_dirty = NULL;
	heap.pagemap = NULL;
	heap.ftag = heap.fnext = heap.fprev = NULL;
	space_fini();
	for (unsigned c = 0; c < HEAP_CLASSES; c++)
		heap.partial[c] = heap.empty[c] = NULL;
	heap.empty_mask = 0;
	heap.nempty = heap.nidle = 0;
	memset(heap.idle, 0, sizeof(heap.idle)); /* 0 ends a list (links hold page + 1) */
	heap.idle_pages = 0;
	heap.desc_pending = 0;
	heap.gen++;
	theap_forget();
}

void heap_lock(void)
{
	pthread_mutex_lock(&heap.lock);
}

void heap_unlock(void)
{
	pthread_mutex_unlock(&heap.lock);
}

void heap_purge_all(void)
{
	pthread_mutex_lock(&heap.lock);
	if (!heap_frozen) /* a fork child must not punch its parent's file */
		space_purge_all();
	pthread_mutex_unlock(&heap.lock);
}

/* Collect the remote frees of every slab no thread owns (or of all slabs,
 * when all threads are done with the heap), so that the bitmap says
 * exactly which blocks are allocated.  Caller holds heap.lock, which every
 * adoption of an unowned slab takes. */
static void heap_collect_remote(int all)
{
	for (size_t pg = 0; pg < heap.top;) {
		page_entry e = heap.pagemap[pg];

		if (!e) {
			pg++;
		} else if (PAGE_IS_LARGE(e)) {
			pg += PAGE_LARGE_PAGES(e);
		} else {
			struct slab *s = (struct slab *)e;

			if (all || !__atomic_load_n(&s->owner, __ATOMIC_RELAXED))
				slab_collect(s);
			pg += SLAB_PAGES;
		}
	}
}

/* Before a clean close (caller holds heap.lock): the bitmap a clean close
 * persists must be exact, and free pages go back to the file system. */
void heap_quiesce(void)
{
	theap_trim_locked(); /* this thread's empty slabs too */
	slab_retain_parked_empty(); /* and those of threads gone */
	retain_drop_all();
	heap_collect_remote(1);
	space_purge_all();
	heap.open = 0;
}

/* The process is exiting (caller holds heap.lock): allocate nothing more
 * from the pool and ignore frees into it; the mapping stays, for
 * destructors that still read persistent blocks.  Returns 1 when no other
 * thread can be in the middle of an allocation (none but this one has a
 * thread heap): the bitmap is then made exact, and the pool may be marked
 * clean. */
int heap_freeze(void)
{
	heap_frozen = 1;
	theap_trim_locked(); /* this thread's empty slabs too */
	slab_retain_parked_empty(); /* and those of threads gone */
	retain_drop_all();
	space_purge_all(); /* free pages only: live blocks stay for the destructors */
	if (heap.threads == 0 || (heap.threads == 1 && theap_mine())) {
		heap_collect_remote(1);
		return 1;
	}
	return 0;
}

void heap_collect_next(void)
{
	heap.pool.collect_next = 1;
}


void heap_stats(struct heap_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!heap.open)
		return;
	pthread_mutex_lock(&heap.lock);
	heap_collect_remote(0);
	st->pages_top = heap.top;
	st->pages_retained = heap.idle_pages + (uint64_t)heap.nempty * SLAB_PAGES;
	st->pages_total = heap.pool.npages;
	space_stats(st);
	for (size_t pg = 0; pg < heap.top;) {
		page_entry e = heap.pagemap[pg];

		if (!e) {
			pg++;
		} else if (PAGE_IS_LARGE(e)) {
			st->large_runs++;
			st->pages_used += PAGE_LARGE_PAGES(e);
			pg += PAGE_LARGE_PAGES(e);
		} else {
			struct slab *s = (struct slab *)e;
			uint32_t live = heap_slab_live(s);

			st->slabs++;
			st->pages_used += SLAB_PAGES;
			st->small_live += live;
			st->small_live_bytes += (uint64_t)live * s->size;
			pg += SLAB_PAGES;
		}
	}
	pthread_mutex_unlock(&heap.lock);
}
