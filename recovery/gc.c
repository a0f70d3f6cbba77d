/* gc.c: the recovery pass -- walk, mark, sweep (see recovery.h).
 *
 * WALK.  Page descriptors from page 0 to heap_top: a valid head makes a
 * slab or a large run and the walk jumps over it; anything else is a free
 * page (an invalid descriptor is cleared).  Free pages between runs become
 * the free-run index.
 *
 * MARK.  Conservative, from the named roots.  A word is a pointer to a
 * block when its value lies anywhere inside the block -- interior pointers
 * count, so that a root or a field may point at a member of a structure
 * (as C programs do); the price is that an integer which happens to fall
 * inside a block keeps it.  Every aligned 8-byte word of a marked block is
 * scanned; free blocks are never scanned, so stale pointers left in freed
 * memory resurrect nothing.  The mark bits are the block-start bitmap
 * itself, cleared first.
 *
 * SWEEP.  A slab with no marked block and a large run whose head is not
 * marked are released (descriptor cleared); the rest keep their marked
 * blocks, and their free lists are rebuilt from the bitmap when a thread
 * first takes them.  The descriptors are persisted once, at the end. */
#include "recovery.h"

#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "../common/log.h"
#include "../heap/heap_int.h"
#include "../heap/pmem.h"
#include "btd.h"

/* During recovery the page map also names the head of every page of a
 * large run, so that interior pointers find their block. */
#define PAGE_INTERIOR(head) (((uintptr_t)(head) << 2) | 2)
#define PAGE_IS_INTERIOR(e) (((e) & 3) == 2)
#define PAGE_INTERIOR_HEAD(e) ((e) >> 2)

struct mark_stack {
	char **v;
	size_t n, cap;
};

static uint32_t class_recip[HEAP_CLASSES];

unsigned recovery_root_count(void)
{
	unsigned n = 0;

	for (unsigned i = 0; i < POOL_ROOTS_MAX; i++)
		n += heap.pool.roots[i].tag != 0;
	return n;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int push(struct mark_stack *st, char *b)
{
	if (st->n == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 1 << 16;
		char **v = mmap(NULL, cap * sizeof(*v), PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

		if (v == MAP_FAILED)
			return -1;
		if (st->v) {
			memcpy(v, st->v, st->n * sizeof(*v));
			munmap(st->v, st->cap * sizeof(*v));
		}
		st->v = v;
		st->cap = cap;
	}
	st->v[st->n++] = b;
	return 0;
}

/* Mark the block that v points into, if any.  Returns -1 when out of memory. */
static inline int mark(struct mark_stack *st, uintptr_t v)
{
	uintptr_t lo = (uintptr_t)heap.pool.data;

	if (v - lo >= (uintptr_t)heap.pool.heap_top * POOL_PAGE)
		return 0;
	size_t page = (v - lo) / POOL_PAGE;
	page_entry e = heap.pagemap[page];
	char *b;

	if (!e)
		return 0;
	if (PAGE_IS_INTERIOR(e)) {
		page = PAGE_INTERIOR_HEAD(e);
		e = heap.pagemap[page];
	}
	if (PAGE_IS_LARGE(e)) {
		b = heap.pool.data + page * POOL_PAGE;
	} else {
		struct slab *s = (struct slab *)e;
		uint64_t off = v - (uintptr_t)s->start;
		uint64_t idx = (off * class_recip[s->cls]) >> 32;

		if (idx >= s->nblocks)
			return 0; /* the tail a slab cannot use */
		b = s->start + idx * s->size;
	}
	unsigned bit;
	uint64_t *w = heap_bitword(b, &bit);

	if (*w & ((uint64_t)1 << bit))
		return 0;
	*w |= (uint64_t)1 << bit;
	return push(st, b);
}

static size_t block_size(const char *b)
{
	size_t page = pool_page_of(&heap.pool, b);
	page_entry e = heap.pagemap[page];

	return PAGE_IS_LARGE(e) ? PAGE_LARGE_PAGES(e) * POOL_PAGE : ((struct slab *)e)->size;
}

static int mark_all(void)
{
	struct mark_stack st = { 0 };
	int ret = 0;

	for (unsigned i = 0; i < POOL_ROOTS_MAX && !ret; i++)
		if (heap.pool.roots[i].tag)
			ret = mark(&st, heap.pool.roots[i].ptr);
	while (st.n && !ret) {
		char *b = st.v[--st.n];
		const uint64_t *w = (const uint64_t *)b;
		size_t nw = block_size(b) / sizeof(uint64_t);

		for (size_t i = 0; i < nw && !ret; i++)
			ret = mark(&st, w[i]);
	}
	if (st.v)
		munmap(st.v, st.cap * sizeof(*st.v));
	return ret ? pool_error(BTD_ERR_NOMEM, "out of memory for the recovery GC's mark stack") : 0;
}

/* Build the page map from the descriptors; returns invalid descriptors. */
static size_t walk(void)
{
	struct pool *p = &heap.pool;
	size_t bad = 0, free_from = 0;

	heap.top = p->heap_top;
	for (size_t pg = 0; pg < p->heap_top;) {
		uint64_t d = p->desc[pg];
		size_t n = 0;

		if (DESC_KIND(d) == DESC_SLAB && DESC_SLAB_CLASS(d) < HEAP_CLASSES &&
		    DESC_SLAB_PAGES(d) == SLAB_PAGES && pg + SLAB_PAGES <= p->heap_top) {
			struct slab *s = heap_slab_new(pg, DESC_SLAB_CLASS(d));

			if (!s)
				return SIZE_MAX;
			s->bump = s->nblocks;
			s->rebuild = 1;
			n = SLAB_PAGES;
		} else if (DESC_KIND(d) == DESC_LARGE && DESC_LARGE_PAGES(d) >= 1 &&
			   DESC_LARGE_PAGES(d) <= p->heap_top - pg) {
			n = DESC_LARGE_PAGES(d);
			heap_map_large(pg, n);
			for (size_t i = 1; i < n; i++)
				heap.pagemap[pg + i] = PAGE_INTERIOR(pg);
		} else {
			if (d) {
				p->desc[pg] = 0;
				bad++;
			}
			pg++;
			continue;
		}
		if (free_from < pg)
			heap_free_run(free_from, pg - free_from);
		pg += n;
		free_from = pg;
	}
	if (free_from < heap.top)
		heap_free_run(free_from, heap.top - free_from);
	return bad;
}

static int bit_at(const char *b)
{
	return heap_bit_test(b);
}

/* Release what holds no marked block; count the rest. */
static void sweep(struct heap_open_info *info)
{
	struct pool *p = &heap.pool;

	for (size_t pg = 0; pg < p->heap_top;) {
		page_entry e = heap.pagemap[pg];

		if (!e) {
			pg++;
		} else if (PAGE_IS_LARGE(e)) {
			size_t n = PAGE_LARGE_PAGES(e);

			for (size_t i = 1; i < n; i++)
				heap.pagemap[pg + i] = 0;
			if (bit_at(heap.pool.data + pg * POOL_PAGE)) {
				info->kept_blocks++;
				info->kept_bytes += n * POOL_PAGE;
			} else {
				p->desc[pg] = 0;
				heap.pagemap[pg] = 0;
				heap_free_run(pg, n);
			}
			pg += n;
		} else {
			struct slab *s = (struct slab *)e;
			uint32_t live = heap_slab_live(s);
			info->kept_blocks += live;
			info->kept_bytes += (uint64_t)live * s->size;
			pg += SLAB_PAGES;
			if (live) {
				heap_slab_park(s);
			} else {
				heap.pool.desc[pool_page_of(p, s->start)] = 0;
				for (unsigned i = 0; i < SLAB_PAGES; i++)
					heap.pagemap[pool_page_of(p, s->start) + i] = 0;
				heap_free_run(pool_page_of(p, s->start), SLAB_PAGES);
			}
		}
	}
}

/* Blocks the bitmap calls allocated, at block starts of live runs: before
 * marking, what the crashed process had; the difference to what marking
 * keeps is what recovery reclaims. */
static void count_allocated(uint64_t *blocks, uint64_t *bytes)
{
	*blocks = *bytes = 0;
	for (size_t pg = 0; pg < heap.pool.heap_top;) {
		page_entry e = heap.pagemap[pg];

		if (!e || PAGE_IS_INTERIOR(e)) {
			pg++;
		} else if (PAGE_IS_LARGE(e)) {
			if (bit_at(heap.pool.data + pg * POOL_PAGE)) {
				++*blocks;
				*bytes += PAGE_LARGE_PAGES(e) * POOL_PAGE;
			}
			pg += PAGE_LARGE_PAGES(e);
		} else {
			struct slab *s = (struct slab *)e;
			uint32_t live = heap_slab_live(s);

			*blocks += live;
			*bytes += (uint64_t)live * s->size;
			pg += SLAB_PAGES;
		}
	}
}

int recovery_run(enum btd_gc gc, struct heap_open_info *info)
{
	struct pool *p = &heap.pool;
	uint64_t t0 = now_ns();

	for (unsigned c = 0; c < HEAP_CLASSES; c++)
		class_recip[c] = (uint32_t)((((uint64_t)1 << 32) + heap_class_size[c] - 1) /
					    heap_class_size[c]);
	info->was_dirty = p->was_dirty;
	if (recovery_root_count() == 0) {
		/* Nothing can be reachable: drop it all without looking. */
		if (p->heap_top) {
			int ret = pool_reset(p);

			if (ret)
				return ret;
			info->reset = 1;
		}
		heap.top = 0;
		info->gc_ns = now_ns() - t0;
		return 0;
	}
	int collect = gc == GC_ALWAYS || (gc == GC_AUTO && p->was_dirty);
	size_t bad = walk();

	if (bad == SIZE_MAX)
		return pool_error(BTD_ERR_NOMEM, "out of memory while opening pool %s", p->path);
	if (bad)
		log_msg(LOG_WARN, "pool %s: %zu page descriptors were not valid run heads "
			"and were cleared", p->path, bad);
	if (collect) {
		uint64_t blocks, bytes;

		info->collected = 1;
		count_allocated(&blocks, &bytes);
		memset(p->bitmap, 0, p->heap_top * POOL_PAGE / POOL_GRANULE / 8);
		int ret = mark_all();

		if (ret)
			return ret;
		sweep(info);
		/* What the crashed process had allocated and nothing reaches. */
		info->freed_blocks = blocks > info->kept_blocks ? blocks - info->kept_blocks : 0;
		info->freed_bytes = bytes > info->kept_bytes ? bytes - info->kept_bytes : 0;
	} else {
		sweep(info);
	}
	pmem_persist_why(p->desc, p->heap_top * sizeof(uint64_t), PMEM_WHY_RECOVERY);
	info->gc_ns = now_ns() - t0;
	return 0;
}

/* The audit of the crash tests: walk from the roots with a private mark
 * set and compare with the heap's bitmap.  Reachable blocks must all be
 * allocated (none free while reachable); allocated blocks that nothing
 * reaches are leaks. */
void recovery_audit(struct recovery_audit *a)
{
	size_t words = heap.pool.heap_top * POOL_PAGE / POOL_GRANULE / 64;
	uint64_t *saved = mmap(NULL, words * 8 + 8, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	memset(a, 0, sizeof(*a));
	if (saved == MAP_FAILED)
		return;
	pthread_mutex_lock(&heap.lock);
	/* Mark into the bitmap itself, then compare and restore it. */
	memcpy(saved, heap.pool.bitmap, words * 8);
	for (size_t pg = 0; pg < heap.top;) { /* interior pages, as recovery sees them */
		page_entry e = heap.pagemap[pg];

		if (e && PAGE_IS_LARGE(e)) {
			for (size_t i = 1; i < PAGE_LARGE_PAGES(e); i++)
				heap.pagemap[pg + i] = PAGE_INTERIOR(pg);
			pg += PAGE_LARGE_PAGES(e);
		} else {
			pg += e ? SLAB_PAGES : 1;
		}
	}
	memset(heap.pool.bitmap, 0, words * 8);
	mark_all();
	for (size_t w = 0; w < words; w++) {
		uint64_t reach = heap.pool.bitmap[w], alloc = saved[w];

		a->reachable += (uint64_t)__builtin_popcountll(reach);
		a->allocated += (uint64_t)__builtin_popcountll(alloc);
		a->reachable_free += (uint64_t)__builtin_popcountll(reach & ~alloc);
		a->leaked += (uint64_t)__builtin_popcountll(alloc & ~reach);
	}
	memcpy(heap.pool.bitmap, saved, words * 8);
	for (size_t pg = 0; pg < heap.top; pg++)
		if (PAGE_IS_INTERIOR(heap.pagemap[pg]))
			heap.pagemap[pg] = 0;
	pthread_mutex_unlock(&heap.lock);
	munmap(saved, words * 8 + 8);
}
