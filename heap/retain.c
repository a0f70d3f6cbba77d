/* retain.c: runs kept live while they are empty, so that a program whose
 * footprint is stable makes no run, releases none, and so persists no
 * descriptor and makes no system call once it is warm.
 *
 * WHAT IS RETAINED.  A slab whose last block was freed, instead of being
 * released (a release mark persisted: an msync on a pool that is not
 * pmem), waits on the heap's empty list of its class, up to HEAP_EMPTY_MAX
 * slabs (8 MiB); a thread that needs a slab takes one of its class, else
 * one of any class, which it recuts in place.  A freed large block of at
 * most HEAP_IDLE_BINS pages (2 MiB) waits too, while fewer than
 * HEAP_IDLE_PAGES (64 MiB) wait, for a request of exactly its page count.  Both
 * keep their descriptors: in the pool they are live runs with no block in
 * them.
 *
 * They decay like free pages (space.c): at a tick when none was retained
 * or reused for a whole period, they are all released, and punched.
 *
 * WHY THAT IS SAFE.  A crash finds, where a retained run is, a live run no
 * root reaches: the recovery GC reclaims it, as it reclaims any run whose
 * blocks were all lost.  A clean close or exit releases them first
 * (retain_drop_all), so a clean pool holds no empty run.
 *
 * A SLAB RECUT for another class keeps its head page and its length; only
 * the class in its head descriptor changes, and that change is not
 * persisted at once: it waits in heap.pend for the next durability point
 * (heap_desc_sync, which every point calls before it persists anything).
 * Until then the durable descriptor may still name the old class.  That
 * is a legal state at every instant: the slab has no live block of the old
 * class, its pages are covered by the same head either way (the walk of
 * layout.h sees the same runs), and a block of the new class can become
 * durably reachable only through a durability point -- a persisted store,
 * a root, a commit -- which persists the new class first.  (A store that
 * no durability point covered has no power-failure promise: DESIGN.md,
 * invariant 5.)  A process crash loses nothing: the descriptor was stored
 * in the shared mapping at once.  The simulated power failure of the crash
 * suite (BTD_CRASH_SIM) drops or keeps such unpersisted words at random,
 * and its verifier checks that every commit is present.
 *
 * Heads that move or change length (a new run, a release) are persisted
 * at once by run.c as before: their order against other heads matters
 * (layout.h, RELEASE MARKS) and a later flush could not keep it. */
#include <stdatomic.h>
#include <string.h>

#include "heap.h"
#include "heap_int.h"

/* ---- empty slabs ------------------------------------------------------- */

static void empty_unlink(struct slab *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		heap.empty[s->cls] = s->next;
	if (s->next)
		s->next->prev = s->prev;
	if (!heap.empty[s->cls])
		heap.empty_mask &= ~((uint64_t)1 << s->cls);
	s->next = s->prev = NULL;
	heap.nempty--;
}

/* s has no live block and no owner list: keep it, or release it when
 * HEAP_EMPTY_MAX are kept already.  Its remote frees were collected, so
 * nothing refers to it but the page map. */
void slab_retain(struct slab *s)
{
	if (heap.nempty >= HEAP_EMPTY_MAX || heap_frozen) {
		slab_release(s);
		return;
	}
	__atomic_store_n(&s->owner, NULL, __ATOMIC_RELAXED);
	atomic_store(&s->state, SLAB_PARKED);
	s->list = LIST_RETAINED;
	s->free = NULL;
	s->used = 0;
	s->rebuild = 0;
	s->bump = 0; /* no block of it is live: carve it afresh */
	s->prev = NULL;
	s->next = heap.empty[s->cls];
	if (s->next)
		s->next->prev = s;
	heap.empty[s->cls] = s;
	heap.empty_mask |= (uint64_t)1 << s->cls;
	heap.nempty++;
	run_desc_defer(pool_page_of(&heap.pool, s->start), desc_make_free(SLAB_PAGES,
				pool_page_of(&heap.pool, s->start)));
	heap.retain_used = space_now();
}

/* An empty slab for cls: one of its class, else one of another class cut
 * anew in place (its descriptor persisted at the next durability point). */
struct slab *slab_retained(unsigned cls)
{
	if (!heap.empty_mask)
		return NULL;
	struct slab *s = heap.empty[cls];

	if (!s)
		s = heap.empty[__builtin_ctzll(heap.empty_mask)];
	empty_unlink(s);
	s->list = LIST_NONE;
	heap.retain_used = space_now();
	size_t page = pool_page_of(&heap.pool, s->start);

	s->cls = cls;
	s->size = heap_class_size[cls];
	s->nblocks = SLAB_BYTES / s->size;
	run_desc_defer(page, desc_make_slab(cls, SLAB_PAGES, page));
	return s;
}

/* ---- freed large runs -------------------------------------------------- */

/* Bins by page count, doubly linked through the free-run index's fnext and
 * fprev at each run's head page (unused there: the run is not free), with
 * page + 1 stored so that 0 ends a list. */
static void idle_unlink(size_t page, size_t npages)
{
	uint32_t next = heap.fnext[page], prev = heap.fprev[page];

	if (prev)
		heap.fnext[prev - 1] = next;
	else
		heap.idle[npages] = next;
	if (next)
		heap.fprev[next - 1] = prev;
	heap.nidle--;
	heap.idle_pages -= npages;
}

/* The large run at page, its block freed (bit cleared): keep it live for a
 * request of the same size.  0 when it is not kept: larger than a bin,
 * HEAP_IDLE_PAGES kept already, or the heap frozen. */
int large_retain(size_t page, size_t npages)
{
	if (npages > HEAP_IDLE_BINS || heap.idle_pages + npages > HEAP_IDLE_PAGES || heap_frozen)
		return 0;
	uint32_t head = heap.idle[npages];

	heap.fnext[page] = head;
	heap.fprev[page] = 0;
	if (head)
		heap.fprev[head - 1] = (uint32_t)page + 1;
	heap.idle[npages] = (uint32_t)page + 1;
	heap.nidle++;
	heap.idle_pages += npages;
	heap.pagemap[page] = PAGE_LARGE_IDLE(npages);
	heap.retain_used = space_now();
	run_desc_defer(page, desc_make_free(npages, page));
	return 1;
}

/* A kept large run of exactly npages whose start is aligned to align,
 * taken back into use; SIZE_MAX when there is none. */
size_t large_retained(size_t npages, size_t align)
{
	if (npages > HEAP_IDLE_BINS)
		return SIZE_MAX;
	for (uint32_t r = heap.idle[npages]; r; r = heap.fnext[r - 1]) {
		size_t page = r - 1;

		if (align && (uintptr_t)(heap.pool.data + page * POOL_PAGE) % align)
			continue;
		idle_unlink(page, npages);
		heap.pagemap[page] = PAGE_LARGE(npages);
		heap.retain_used = space_now();
		run_desc_defer(page, desc_make_large(npages, page));
		return page;
	}
	return SIZE_MAX;
}

/* Release every retained run (a clean close or exit, a full pool) and
 * persist what waits for a durability point. */
void retain_drop_all(void)
{
	/* Their release marks were stored when they were retained: one drain
	 * makes them all durable, before any of their pages can be reused. */
	run_desc_flush_pending();
	for (unsigned c = 0; c < HEAP_CLASSES; c++)
		while (heap.empty[c]) {
			struct slab *s = heap.empty[c];

			empty_unlink(s);
			slab_forget(s);
		}
	for (size_t n = 1; heap.nidle && n <= HEAP_IDLE_BINS; n++)
		while (heap.idle[n]) {
			size_t page = heap.idle[n] - 1;

			idle_unlink(page, n);
			heap.pagemap[page] = 0;
			run_free(page, n);
		}
}
