/* slab.c: slabs -- a run of SLAB_PAGES pages cut into blocks of one size
 * class, with a local free list for its owner and rfree bits for the
 * frees of other threads (see CONCURRENCY in heap_int.h). */
#include <stdatomic.h>
#include <string.h>

#include "../common/crash.h"
#include "../common/compiler.h"
#include "../common/error.h"
#include "../common/log.h"
#include "btd.h"
#include "heap_int.h"

static struct slab *slab_struct(void)
{
	struct slab *s = heap.slab_free;

	if (s)
		heap.slab_free = s->next;
	else
		s = heap_internal_alloc(sizeof(*s));
	return s;
}

/* Describe a slab at page (DRAM only); caller holds heap.lock. */
struct slab *slab_new(size_t page, unsigned cls)
{
	struct slab *s = slab_struct();

	if (!s)
		return NULL;
	memset(s, 0, sizeof(*s));
	s->start = heap.pool.data + page * POOL_PAGE;
	s->cls = cls;
	s->size = heap_class_size[cls];
	s->nblocks = SLAB_BYTES / s->size;
	for (unsigned i = 0; i < SLAB_PAGES; i++)
		heap.pagemap[page + i] = (page_entry)s;
	return s;
}

/* A new slab for cls, persisted; caller holds heap.lock. */
struct slab *slab_make(unsigned cls)
{
	size_t page = run_take(SLAB_PAGES);

	if (page == SIZE_MAX)
		return NULL;
	struct slab *s = slab_new(page, cls);

	if (!s) {
		run_free(page, SLAB_PAGES);
		return NULL;
	}
	CRASH_POINT(CRASH_SLAB_PUBLISH);
	run_publish(page, SLAB_PAGES, desc_make_slab(cls, SLAB_PAGES, page));
	CRASH_POINT(CRASH_SLAB_PUBLISHED);
	return s;
}

/* Give a slab with no live block back to the pages; caller holds the lock. */
void slab_release(struct slab *s)
{
	size_t page = pool_page_of(&heap.pool, s->start);

	space_tick();
	CRASH_POINT(CRASH_SLAB_RETIRE);
	run_retire(page, SLAB_PAGES);
	slab_forget(s);
}

/* The DRAM half of a release: the pages to the free index, the struct to
 * the spares; the caller made the release mark durable. */
void slab_forget(struct slab *s)
{
	size_t page = pool_page_of(&heap.pool, s->start);

	for (unsigned i = 0; i < SLAB_PAGES; i++)
		heap.pagemap[page + i] = 0;
	run_free(page, SLAB_PAGES);
	s->next = heap.slab_free;
	heap.slab_free = s;
}

/* Put a slab on the heap's partial list of its class; caller holds the lock. */
void slab_park(struct slab *s)
{
	__atomic_store_n(&s->owner, NULL, __ATOMIC_RELAXED);
	atomic_store(&s->state, SLAB_PARKED);
	s->list = LIST_NONE;
	s->prev = NULL;
	s->next = heap.partial[s->cls];
	if (s->next)
		s->next->prev = s;
	heap.partial[s->cls] = s;
}

/* The parked slabs with no live block left -- emptied by remote frees
 * after their thread ended -- go to the retained ones
 * (released beyond HEAP_EMPTY_MAX): when the pool is full, and before a
 * clean close.  Caller holds heap.lock.  Returns how many went. */
unsigned slab_retain_parked_empty(void)
{
	unsigned n = 0;

	for (unsigned c = 0; c < HEAP_CLASSES; c++) {
		for (struct slab *s = heap.partial[c], *next; s; s = next) {
			next = s->next;
			slab_collect(s);
			/* A slab not adopted since recovery counts from its bitmap. */
			if (s->rebuild ? heap_slab_live(s) : s->used)
				continue;
			if (s->prev)
				s->prev->next = s->next;
			else
				heap.partial[c] = s->next;
			if (s->next)
				s->next->prev = s->prev;
			s->next = s->prev = NULL;
			slab_retain(s);
			n++;
		}
	}
	return n;
}

struct slab *slab_partial_pop(unsigned cls)
{
	struct slab *s = heap.partial[cls];

	if (s) {
		heap.partial[cls] = s->next;
		if (s->next)
			s->next->prev = NULL;
		s->next = s->prev = NULL;
	}
	return s;
}

/* Take the blocks other threads freed (REMOTE FREES in heap_int.h): their
 * bits in the pool's bitmap cleared, the first room of them to out (which
 * then holds them as a cache does: counted used by the slab), the rest to
 * the local list.  The owner, or anyone under heap.lock for a parked slab.
 * Returns how many went to out. */
uint32_t slab_collect_to(struct slab *s, void **out, uint32_t room)
{
	if (!atomic_load_explicit(&s->rsum, memory_order_relaxed))
		return 0; /* the common case, without a locked exchange */
	uint64_t sum = atomic_exchange(&s->rsum, 0);
	uint32_t n = 0;
	unsigned bit;
	uint64_t *pw = heap_bitword(s->start, &bit); /* the slab's first word */

	while (sum) {
		unsigned w = (unsigned)__builtin_ctzll(sum);
		uint64_t bits = atomic_exchange(&s->rfree[w], 0);

		sum &= sum - 1;
		if (unlikely((pw[w] & bits) != bits)) {
			unsigned g = w * 64 + (unsigned)__builtin_ctzll(bits & ~pw[w]);

			heap_misuse("free", s->start + (size_t)g * POOL_GRANULE);
		}
		pw[w] &= ~bits;
		if (s->rebuild)
			continue; /* the rebuild finds them in the bitmap */
		while (bits) {
			char *p = s->start + ((size_t)w * 64 + (unsigned)__builtin_ctzll(bits)) * POOL_GRANULE;

			bits &= bits - 1;
			if (n < room)
				out[n++] = p;
			else
				slab_push(s, p);
		}
	}
	return n;
}

void slab_collect(struct slab *s)
{
	slab_collect_to(s, NULL, 0);
}

/* Build the local free list of an adopted slab from its bitmap: the blocks
 * whose bit is clear (after recovery or a clean open). */
void slab_rebuild(struct slab *s)
{
	s->free = NULL;
	s->used = 0;
	for (uint32_t i = s->nblocks; i-- > 0;) {
		char *b = s->start + (size_t)i * s->size;

		if (heap_bit_test(b)) {
			s->used++;
		} else {
			link_set(b, s->free);
			s->free = b;
		}
	}
	s->bump = s->nblocks;
	s->rebuild = 0;
}

/* Carve up to a page's worth of never-used blocks onto the free list. */
void slab_carve(struct slab *s)
{
	uint32_t n = POOL_PAGE / s->size;

	if (n == 0)
		n = 1;
	if (n > s->nblocks - s->bump)
		n = s->nblocks - s->bump;
	for (uint32_t i = s->bump + n; i-- > s->bump;) {
		char *b = s->start + (size_t)i * s->size;

		link_set(b, s->free);
		s->free = b;
	}
	s->bump += n;
}
