/* alloc.c: the entry points -- heap_malloc, heap_free and the rest of the
 * family -- and large blocks.
 *
 * THE FAST PATHS.  heap_malloc of a small size: class lookup, pop the
 * thread's block cache (else its current slab's local free list), set the
 * block's bitmap bit.  heap_free by the owner: page map lookup, bitmap
 * test-and-clear (which is also the double-free and interior-pointer
 * check), push on the cache (else the slab's list).  No flush, no fence,
 * no lock, no atomic instruction (invariant 3). */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "heap.h"
#include "tx.h"
#include "../common/crash.h"
#include "../common/compiler.h"
#include "../common/error.h"
#include "../common/log.h"
#include "btd.h"
#include "heap_int.h"

static void *large_alloc(size_t n, size_t align)
{
	size_t np = (n + POOL_PAGE - 1) / POOL_PAGE;
	size_t extra = align > POOL_PAGE ? align / POOL_PAGE - 1 : 0;

	if (n > heap.pool.npages * (size_t)POOL_PAGE) {
		err_set(BTD_ERR_NOMEM, "a block of %zu bytes is larger than pool %s", n,
			   heap.pool.path);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_lock(&heap.lock);
	space_tick(); /* the decay clock, first: what decayed is not reused */
	size_t page = large_retained(np, align > POOL_PAGE ? align : 0);

	if (page != SIZE_MAX) { /* live already: no descriptor to write */
		heap_bit_set(heap.pool.data + page * POOL_PAGE);
		pthread_mutex_unlock(&heap.lock);
		return heap.pool.data + page * POOL_PAGE;
	}
	page = run_take(np + extra);
	if (page == SIZE_MAX) {
		pthread_mutex_unlock(&heap.lock);
		errno = ENOMEM;
		return NULL;
	}
	if (extra) { /* trim to the alignment, give back both ends */
		uintptr_t a = (uintptr_t)(heap.pool.data + page * POOL_PAGE);
		size_t lead = ((align - a % align) % align) / POOL_PAGE;

		if (lead)
			run_free(page, lead);
		if (extra - lead)
			run_free(page + lead + np, extra - lead);
		page += lead;
	}
	CRASH_POINT(CRASH_LARGE_PUBLISH);
	run_publish(page, np, desc_make_large(np, page));
	CRASH_POINT(CRASH_LARGE_PUBLISHED);
	run_map_large(page, np);
	char *p = heap.pool.data + page * POOL_PAGE;

	heap_bit_set(p);
	pthread_mutex_unlock(&heap.lock);
	return p;
}

/* A large block; when the pool is full, once more after this thread's
 * empty slabs went back (the retained runs large_alloc releases). */
static BTD_NOINLINE void *large_alloc_or_trim(size_t n, size_t align)
{
	void *p = large_alloc(n, align);

	if (unlikely(!p) && n <= heap.pool.npages * (size_t)POOL_PAGE && theap_trim())
		p = large_alloc(n, align);
	return p;
}

static BTD_NOINLINE void large_free(size_t page, page_entry e)
{
	size_t np = PAGE_LARGE_PAGES(e);
	unsigned bit;
	uint64_t *w = heap_bitword(heap.pool.data + page * POOL_PAGE, &bit);

	pthread_mutex_lock(&heap.lock);
	if (heap.pagemap[page] != e || PAGE_IS_LARGE_IDLE(e)) {
		pthread_mutex_unlock(&heap.lock);
		heap_misuse("free", heap.pool.data + page * POOL_PAGE);
	}
	*w &= ~((uint64_t)1 << bit);
	int saved = errno; /* free keeps errno: a failed punch or msync must not show */

	space_tick();
	if (!large_retain(page, np)) {
		CRASH_POINT(CRASH_LARGE_RETIRE);
		run_retire(page, np);
		heap.pagemap[page] = 0;
		run_free(page, np);
	}
	pthread_mutex_unlock(&heap.lock);
	errno = saved;
}

int heap_owns(const void *p)
{
	return heap.open && pool_contains(&heap.pool, p);
}

void heap_range(uintptr_t *lo, size_t *len)
{
	*lo = (uintptr_t)heap.pool.data;
	*len = heap.open ? heap.pool.npages * (size_t)POOL_PAGE : 0;
}

/* No block to hand out (a frozen heap, no room for a thread heap). */
static BTD_NOINLINE BTD_COLD void *heap_nomem(void)
{
	errno = ENOMEM;
	return NULL;
}

/* This thread's first small block. */
static BTD_NOINLINE void *small_alloc_first(unsigned cls)
{
	struct theap *t = theap_get();

	return t ? theap_alloc_slow(t, cls) : heap_nomem();
}

static void *direct_refused(size_t n)
{
	(void)n;
	return heap_nomem();
}

void *(*heap_direct_miss)(size_t n) = direct_refused;

/* heap_malloc_direct's slow paths: heap_malloc's, and the miss. */
static BTD_NOINLINE void *small_slow_direct(struct theap *t, unsigned cls, size_t n)
{
	void *p = t ? theap_alloc_slow(t, cls) : small_alloc_first(cls);

	return p ? p : heap_direct_miss(n);
}

static BTD_NOINLINE void *large_direct(size_t n)
{
	void *p = large_alloc_or_trim(n, 0);

	return p ? p : heap_direct_miss(n);
}

/* direct: heap_malloc_direct's (a constant: two copies). */
static BTD_INLINE void *small_alloc(unsigned cls, size_t req, int direct)
{
	struct theap *t = tls_theap;

	if (likely(t)) {
		struct tbin *c = &t->bin[cls];
		void **top = c->top;

		if (likely(top != c->base)) {
			void *b = *--top;

			c->top = top;
			heap_bit_set(b);
			return b;
		}
		struct slab *s = t->cur[cls];

		if (likely(s && s->free)) {
			void *b = s->free;

			s->free = link_get(b);
			s->used++;
			heap_bit_set(b);
			return b;
		}
		return direct ? small_slow_direct(t, cls, req) : theap_alloc_slow(t, cls);
	}
	return direct ? small_slow_direct(NULL, cls, req) : small_alloc_first(cls);
}

void *heap_malloc(size_t n)
{
	if (unlikely(heap_frozen))
		return heap_nomem();
	if (likely(n <= HEAP_SMALL_MAX))
		return small_alloc(size_class(n), n, 0);
	return large_alloc_or_trim(n, 0);
}

void *heap_malloc_direct(size_t n)
{
	if (unlikely(heap_frozen))
		return heap_direct_miss(n);
	if (likely(n <= HEAP_SMALL_MAX))
		return small_alloc(size_class(n), n, 1);
	return large_direct(n);
}

void *heap_aligned(size_t align, size_t n)
{
	if (align <= POOL_GRANULE)
		return heap_malloc(n);
	if (unlikely(heap_frozen)) {
		errno = ENOMEM;
		return NULL;
	}
	/* A slab starts on a page, so every block of a class whose size is a
	 * multiple of align is aligned. */
	if (align <= POOL_PAGE && n <= HEAP_SMALL_MAX) {
		for (unsigned c = size_class(n < align ? align : n); c < HEAP_CLASSES; c++)
			if (heap_class_size[c] % align == 0)
				return small_alloc(c, n, 0);
	}
	return large_alloc_or_trim(n, align);
}

/* The slab of a small block, or NULL for a large one; aborts on anything
 * that is not a live block start. */
static inline struct slab *block_slab(const void *p, const char *what, page_entry *out)
{
	if (unlikely((uintptr_t)p & (POOL_GRANULE - 1)))
		heap_misuse(what, p);
	page_entry e = heap_page_entry(p);

	*out = e;
	if (unlikely(!e))
		heap_misuse(what, p);
	if (PAGE_IS_LARGE(e)) {
		if (unlikely(((uintptr_t)p & (POOL_PAGE - 1)) || PAGE_IS_LARGE_IDLE(e)))
			heap_misuse(what, p);
		return NULL;
	}
	return (struct slab *)e;
}

static BTD_NOINLINE void remote_free(struct slab *s, void *p)
{
	/* The block's bit in the pool's bitmap stays until the owner collects
	 * it (REMOTE FREES in heap_int.h): the bitmap words are the owner's.
	 * Caught here: a free of a block that is not live (the bit, read),
	 * and a second remote free (the rfree bit); the owner's free after a
	 * remote one is caught there (heap/README.md, limits). */
	if (!heap_bit_test(p))
		heap_misuse("free", p);
	size_t g = (size_t)((char *)p - s->start) / POOL_GRANULE;
	uint64_t m = (uint64_t)1 << (g & 63);
	uint64_t old = atomic_fetch_or(&s->rfree[g / 64], m);

	if (unlikely(old & m))
		heap_misuse("free", p);
	if (!old)
		atomic_fetch_or(&s->rsum, (uint64_t)1 << (g / 64));
	/* An owner does not visit its full slabs: tell it (see SLAB STATES). */
	if (atomic_load(&s->state) == SLAB_FULL) {
		pthread_mutex_lock(&heap.lock);
		int expect = SLAB_FULL;

		if (atomic_compare_exchange_strong(&s->state, &expect, SLAB_NOTIFIED)) {
			struct theap *o = __atomic_load_n(&s->owner, __ATOMIC_RELAXED);

			s->dnext = o->delayed;
			__atomic_store_n(&o->delayed, s, __ATOMIC_RELAXED);
		}
		pthread_mutex_unlock(&heap.lock);
	}
}

int heap_is_block(const void *p)
{
	if (!heap_owns(p) || ((uintptr_t)p & (POOL_GRANULE - 1)))
		return 0;
	page_entry e = heap_page_entry(p);

	if (!e || (PAGE_IS_LARGE(e) && ((uintptr_t)p & (POOL_PAGE - 1))))
		return 0;
	return heap_bit_test(p); /* bits stand at block starts only */
}

/* The owner frees block p (its bit cleared already) into its slab s. */
static inline void slab_free_local(struct theap *t, struct slab *s, void *p)
{
	slab_push(s, p);
	if (unlikely(s->list != LIST_NONE)) {
		if (s->list == LIST_FULL)
			theap_slab_unfull(t, s);
		else if (!s->used && (s->next || s->prev))
			theap_slab_drop(t, s); /* keep the last one: no churn */
	}
}

/* heap_free past its first checks (inlined into both callers). */
static BTD_INLINE void free_block(void *p)
{
	page_entry e;
	struct slab *s = block_slab(p, "free", &e);

	if (unlikely(!s)) {
		large_free(pool_page_of(&heap.pool, p), e);
		return;
	}
	struct theap *t = tls_theap;

	if (likely(__atomic_load_n(&s->owner, __ATOMIC_RELAXED) == t && t)) {
		unsigned bit;
		uint64_t *w = heap_bitword(p, &bit);
		uint64_t m = (uint64_t)1 << bit, v = *w;

		if (unlikely(!(v & m)))
			heap_misuse("free", p);
		/* Freed by another thread already, not yet collected: a double
		 * free, which the cache would otherwise hand out twice. */
		size_t word = (size_t)((char *)p - s->start) / (64 * POOL_GRANULE); /* m: the same bit */

		if (unlikely(atomic_load_explicit(&s->rfree[word], memory_order_relaxed) & m))
			heap_misuse("free", p);
		*w = v ^ m;
		struct tbin *c = &t->bin[s->cls];
		void **top = c->top;

		if (likely(top < c->end)) { /* a collect may have filled it beyond */
			*top = p;
			c->top = top + 1;
			return;
		}
		slab_free_local(t, s, p);
		return;
	}
	remote_free(s, p);
}

/* A free while this thread is in a transaction. */
static BTD_NOINLINE void free_in_tx(void *p)
{
	if (!tx_takes_free(p)) /* else a block the transaction changed: freed at its commit */
		free_block(p);
}

void heap_free(void *p)
{
	if (unlikely(heap_frozen))
		return; /* a fork child: the parent's block, in a private view */
	if (unlikely(tx_busy)) {
		free_in_tx(p);
		return;
	}
	free_block(p);
}

size_t heap_usable_size(const void *p)
{
	page_entry e;
	struct slab *s = block_slab(p, "malloc_usable_size", &e);

	return s ? s->size : PAGE_LARGE_PAGES(e) * POOL_PAGE;
}

void *heap_calloc(size_t n)
{
	void *p = heap_malloc(n);

	/* Fresh pages of the file read as zero, but a reused block does not. */
	if (p)
		memset(p, 0, n);
	return p;
}

void *heap_realloc(void *p, size_t n)
{
	size_t have = heap_usable_size(p);

	if (n <= have) {
		/* Shrink in place, unless a small block would waste most of it. */
		if (n > HEAP_SMALL_MAX || n > have / 2 || have <= 16)
			return p;
	} else if (have > HEAP_SMALL_MAX && !heap_frozen) {
		/* Grow a large block in place into a free run beside it. */
		size_t page = pool_page_of(&heap.pool, p);
		size_t np = have / POOL_PAGE, need = (n + POOL_PAGE - 1) / POOL_PAGE;
		size_t next = page + np, more = need - np;

		pthread_mutex_lock(&heap.lock);
		int grown = run_take_at(next, more);
		if (grown && space_take(next, more)) {
			run_free(next, more);
			grown = 0;
		}
		if (grown) {
			run_publish(page, need, desc_make_large(need, page));
			heap.pagemap[page] = PAGE_LARGE(need);
		}
		space_tick();
		pthread_mutex_unlock(&heap.lock);
		if (grown)
			return p;
	}
	void *q = heap_malloc(n);

	if (!q)
		return NULL;
	memcpy(q, p, n < have ? n : have);
	heap_free(p);
	return q;
}
