/* check.c: heap_check -- every invariant that can be checked from inside.
 *
 * Used by the tests after every crash and recovery, and by `btd check`.
 * Slow by design: it walks every page, free run and bitmap word. */
#include <string.h>

#include "../common/log.h"
#include "heap.h"
#include "heap_int.h"

struct checker {
	int fd;
	unsigned long errors;
};

#define FAIL(c, ...)                                              \
	do {                                                      \
		if ((c)->fd >= 0 && (c)->errors < 20)             \
			log_fd((c)->fd, "btd check: " __VA_ARGS__); \
		(c)->errors++;                                    \
	} while (0)

static int bit_set(const char *b)
{
	return heap_bit_test(b);
}

/* Runs: descriptors agree with the page map, nothing overlaps. */
static void check_runs(struct checker *c)
{
	struct pool *p = &heap.pool;

	if (heap.top > p->heap_top)
		FAIL(c, "top %zu above the backed heap_top %zu", heap.top, p->heap_top);
	for (size_t pg = 0; pg < heap.top;) {
		page_entry e = heap.pagemap[pg];
		uint64_t d = p->desc[pg];

		if (!e) {
			if (!desc_is_idle(d, pg))
				FAIL(c, "page %zu is free but has descriptor %llx", pg,
				     (unsigned long long)d);
			pg++;
			continue;
		}
		size_t n;

		if (PAGE_IS_LARGE(e)) {
			n = PAGE_LARGE_PAGES(e);
			if (PAGE_IS_LARGE_IDLE(e) ? d != desc_make_free(n, pg) : d != desc_make_large(n, pg))
				FAIL(c, "large run at page %zu: descriptor %llx, page map %zu pages",
				     pg, (unsigned long long)d, n);
			if (!PAGE_IS_LARGE_IDLE(e) && !bit_set(p->data + pg * POOL_PAGE))
				FAIL(c, "large run at page %zu is live without its bitmap bit", pg);
			if (PAGE_IS_LARGE_IDLE(e) && bit_set(p->data + pg * POOL_PAGE))
				FAIL(c, "retained large run at page %zu has its bitmap bit", pg);
		} else {
			struct slab *s = (struct slab *)e;

			n = SLAB_PAGES;
			if (s->start != p->data + pg * POOL_PAGE)
				FAIL(c, "page %zu maps to a slab starting elsewhere", pg);
			if (s->list == LIST_RETAINED ? d != desc_make_free(SLAB_PAGES, pg) :
			    d != desc_make_slab(s->cls, SLAB_PAGES, pg))
				FAIL(c, "slab at page %zu: descriptor %llx, class %u", pg,
				     (unsigned long long)d, s->cls);
		}
		if (pg + n > heap.top) {
			FAIL(c, "run at page %zu runs past top", pg);
			break;
		}
		for (size_t i = 1; i < n; i++) {
			if (!desc_is_idle(p->desc[pg + i], pg + i))
				FAIL(c, "page %zu inside the run at %zu has a descriptor", pg + i, pg);
			if (PAGE_IS_LARGE(e) && heap.pagemap[pg + i])
				FAIL(c, "page %zu inside a large run is mapped", pg + i);
			if (!PAGE_IS_LARGE(e) && heap.pagemap[pg + i] != e)
				FAIL(c, "page %zu of the slab at %zu maps elsewhere", pg + i, pg);
		}
		pg += n;
	}
	for (size_t pg = heap.top; pg < p->heap_top; pg++)
		if (!desc_is_idle(p->desc[pg], pg) || heap.pagemap[pg])
			FAIL(c, "page %zu above top is in use", pg);
}

/* The format's walk (layout.h), which recovery and `btd info` read the
 * descriptors with, finds exactly the runs of the page map. */
static void check_walk(struct checker *c)
{
	struct pool *p = &heap.pool;
	struct desc_walk w = desc_walk_start(p->desc, p->heap_top, p->hdr.minor);
	struct desc_run r;

	while (desc_walk_next(&w, &r)) {
		page_entry e = r.page < heap.top ? heap.pagemap[r.page] : 0;

		if (e && (PAGE_IS_LARGE(e) ? PAGE_IS_LARGE_IDLE(e) :
			  ((struct slab *)e)->list == LIST_RETAINED))
			e = 0; /* retained: released in the pool (retain.c) */
		size_t n = !e ? 0 : PAGE_IS_LARGE(e) ? PAGE_LARGE_PAGES(e) : SLAB_PAGES;

		if (n != r.npages)
			FAIL(c, "the walk finds a run of %llu pages at page %llu, the page map %zu",
			     (unsigned long long)r.npages, (unsigned long long)r.page, n);
	}
	if (w.suspicious)
		FAIL(c, "the walk finds %llu descriptors that are neither a run nor free",
		     (unsigned long long)w.suspicious);
}

/* Free runs: tags at both ends, on free pages, in the right bin. */
static void check_free_runs(struct checker *c)
{
	for (unsigned b = 0; b < 64; b++) {
		int nonempty = heap.fbin[b] != UINT32_MAX;

		if (nonempty != !!(heap.fbin_mask & ((uint64_t)1 << b)))
			FAIL(c, "free bin %u and its mask bit disagree", b);
		for (uint32_t r = heap.fbin[b]; r != UINT32_MAX; r = heap.fnext[r]) {
			size_t n = heap.ftag[r];

			if (!n || r + n > heap.top || heap.ftag[r + n - 1] != n) {
				FAIL(c, "free run at page %u has bad tags", r);
				break;
			}
			if (63 - __builtin_clzll(n) != (int)b)
				FAIL(c, "free run at page %u (%zu pages) in bin %u", r, n, b);
			for (size_t i = 0; i < n; i++)
				if (heap.pagemap[r + i] || !desc_is_idle(heap.pool.desc[r + i], r + i))
					FAIL(c, "page %zu of a free run is in use", r + i);
		}
	}
}

/* Bitmap bits only at block starts of live runs. */
static void check_bitmap(struct checker *c)
{
	size_t words = heap.pool.heap_top * POOL_PAGE / POOL_GRANULE / 64;

	for (size_t w = 0; w < words; w++) {
		uint64_t v = __atomic_load_n(&heap.pool.bitmap[w], __ATOMIC_RELAXED);

		while (v) {
			unsigned bit = (unsigned)__builtin_ctzll(v);
			const char *b = heap.pool.data + (w * 64 + bit) * POOL_GRANULE;
			size_t pg = pool_page_of(&heap.pool, b);
			page_entry e = pg < heap.top ? heap.pagemap[pg] : 0;

			v &= v - 1;
			if (!e) {
				FAIL(c, "bitmap marks %p, which is in no live run", (void *)b);
			} else if (PAGE_IS_LARGE(e)) {
				if ((size_t)(b - heap.pool.data) % POOL_PAGE)
					FAIL(c, "bitmap marks %p inside a large block", (void *)b);
			} else {
				struct slab *s = (struct slab *)e;
				size_t off = (size_t)(b - s->start);

				if (off % s->size || off / s->size >= s->nblocks)
					FAIL(c, "bitmap marks %p, not a block start of its slab", (void *)b);
			}
		}
	}
}

unsigned long heap_check(int fd)
{
	struct checker c = { fd, 0 };

	if (!heap.open)
		return 0;
	pthread_mutex_lock(&heap.lock);
	check_runs(&c);
	check_walk(&c);
	check_free_runs(&c);
	check_bitmap(&c);
	size_t space = space_check();

	if (space)
		FAIL(&c, "%zu pages disagree with the record of what the file holds "
		     "(a live page may be a hole)", space);
	pthread_mutex_unlock(&heap.lock);
	if (c.errors > 20 && fd >= 0)
		log_fd(fd, "btd check: ... %lu problems in all", c.errors);
	return c.errors;
}
