/* heap.c: size classes, slabs, thread heaps and large runs (see heap_int.h).
 *
 * THE FAST PATHS.  heap_malloc of a small size: class lookup, the thread's
 * current slab, pop its local free list, set the block's bitmap bit.
 * heap_free by the owner: page map lookup, bitmap test-and-clear (which is
 * also the double-free and interior-pointer check), push.  No flush, no
 * fence, no lock, no atomic instruction (invariant 3).
 *
 * SLAB STATES (atomic, for the hand-over between an owner and the threads
 * that free into its slabs):
 *   ACTIVE    owned; current or on the owner's partial list, which the
 *             owner visits and collects remote frees from
 *   FULL      owned and exhausted, on the owner's full list, not visited:
 *             a remote free must tell the owner
 *   NOTIFIED  a remote free did: on the owner's delayed list
 *   PARKED    no owner: on the heap's partial list
 * The owner publishes FULL and then looks at xfree once more; a freer
 * pushes to xfree and then looks at the state.  With both sequentially
 * consistent one of them sees the other, so no freed block is lost.
 * FULL -> NOTIFIED and every change of a slab's owner happen under
 * heap.lock; FULL -> ACTIVE by the owner is a CAS that loses to a
 * notifier. */
#include "heap.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../common/compiler.h"
#include "../common/error.h"
#include "../common/log.h"
#include "btd.h"
#include "heap_int.h"
#include "pmem.h"

struct heap heap = { .lock = PTHREAD_MUTEX_INITIALIZER };

const uint32_t heap_class_size[HEAP_CLASSES] = {
	16, 32, 48, 64, 80, 96, 112, 128,
	160, 192, 224, 256, 320, 384, 448, 512,
	640, 768, 896, 1024, 1280, 1536, 1792, 2048,
	2560, 3072, 3584, 4096, 5120, 6144, 7168, 8192,
	10240, 12288, 14336, 16384,
};

/* Size to class: by 16 bytes up to 1 KiB, by 256 bytes above (every class
 * above 1 KiB is a multiple of 256). */
static uint8_t class_lo[1024 / 16 + 1];
static uint8_t class_hi[HEAP_SMALL_MAX / 256 + 1];

enum slab_state { SLAB_ACTIVE, SLAB_FULL, SLAB_NOTIFIED, SLAB_PARKED };

/* Which of its owner's lists a slab is on (owner only). */
enum slab_list { LIST_NONE, LIST_PARTIAL, LIST_FULL };

static BTD_TLS struct theap *tls_theap;
static pthread_key_t theap_key;
static struct theap *theap_free;
/* A fork child sees the pool privately and allocates nothing from it
 * (fork.c); set at exit too. */
int heap_frozen;

static void classes_init(void)
{
	unsigned c = 0;

	for (unsigned i = 0; i < BTD_ARRAY_SIZE(class_lo); i++) {
		while (heap_class_size[c] < i * 16)
			c++;
		class_lo[i] = (uint8_t)c;
	}
	c = 0;
	for (unsigned i = 0; i < BTD_ARRAY_SIZE(class_hi); i++) {
		while (heap_class_size[c] < i * 256)
			c++;
		class_hi[i] = (uint8_t)c;
	}
}

static inline unsigned size_class(size_t n)
{
	return n <= 1024 ? class_lo[(n + 15) >> 4] : class_hi[(n + 255) >> 8];
}

/* ---- internal memory: never malloc (invariant 6) ---------------------- */

static void *internal_map(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Fixed-size objects from 256 KiB mmaps; caller holds heap.lock. */
static void *internal_alloc(size_t n)
{
	static char *cur, *end;

	n = (n + 63) & ~(size_t)63;
	if (!cur || cur + n > end) {
		cur = internal_map(256 << 10);
		if (!cur)
			return NULL;
		end = cur + (256 << 10);
	}
	void *p = cur;

	cur += n;
	return p;
}

/* ---- misuse ------------------------------------------------------------ */

BTD_COLD BTD_NORETURN static void misuse(const char *what, const void *p)
{
	btd_fatal("%s of %p: not a live block of the persistent heap "
		  "(double free, or a pointer into the middle of a block)", what, p);
}

/* ---- free runs --------------------------------------------------------- */

#define NIL UINT32_MAX

static unsigned run_bin(size_t n)
{
	return 63 - (unsigned)__builtin_clzll(n);
}

static void frun_link(size_t page, size_t n)
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

static void frun_unlink(size_t page)
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
void heap_free_run(size_t page, size_t n)
{
	space_freed(page, n);
	if (page > 0 && heap.ftag[page - 1]) {
		size_t ln = heap.ftag[page - 1];

		frun_unlink(page - ln);
		page -= ln;
		n += ln;
	}
	if (page + n < heap.top && heap.ftag[page + n]) {
		size_t rn = heap.ftag[page + n];

		frun_unlink(page + n);
		n += rn;
	}
	if (page + n == heap.top) { /* give it back to the top */
		heap.top = page;
		return;
	}
	frun_link(page, n);
}

/* Take n pages at the top, growing the pool's backed part when needed;
 * SIZE_MAX when it cannot (pool_grow says why).  What the growth backed
 * beyond them is free, and decays like any free page. */
static size_t top_take(size_t n)
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

/* Take n pages (caller holds heap.lock), backed; SIZE_MAX when there is no
 * room or no space (the reason in err_last). */
static size_t run_take(size_t n)
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

		frun_unlink(page);
		if (have > n)
			frun_link(page + n, have - n);
	} else if ((page = top_take(n)) == SIZE_MAX) {
		return SIZE_MAX;
	}
	if (space_take(page, n)) { /* a hole that the file system cannot fill */
		heap_free_run(page, n);
		return SIZE_MAX;
	}
	space_tick(); /* after the take, which the tick must not punch */
	return page;
}

/* ---- run descriptors: publish and retire (see RELEASE MARKS, layout.h) -- */

/* Make the run of n pages at page live with head d, persisted; caller
 * holds heap.lock.  A release mark there that covered more pages is moved
 * behind the run first, so its other pages stay covered. */
static void run_publish(size_t page, size_t n, uint64_t d)
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
				__atomic_store_n(&p->desc[q], desc_make_free(end - q, q), __ATOMIC_RELAXED);
				pmem_persist_why(&p->desc[q], sizeof(uint64_t), PMEM_WHY_DESC);
			}
		}
	}
	pool_desc_set(p, page, d);
}

/* The run of n pages at page is released: its head becomes a release mark
 * (persisted) before its pages can be reused; caller holds heap.lock. */
static void run_retire(size_t page, size_t n)
{
	pool_desc_set(&heap.pool, page, desc_make_free(n, page));
}

/* ---- slabs ------------------------------------------------------------- */

static struct slab *slab_struct(void)
{
	struct slab *s = heap.slab_free;

	if (s)
		heap.slab_free = s->next;
	else
		s = internal_alloc(sizeof(*s));
	return s;
}

/* Describe a slab at page (DRAM only); caller holds heap.lock. */
struct slab *heap_slab_new(size_t page, unsigned cls)
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
static struct slab *slab_make(unsigned cls)
{
	size_t page = run_take(SLAB_PAGES);

	if (page == SIZE_MAX)
		return NULL;
	struct slab *s = heap_slab_new(page, cls);

	if (!s) {
		heap_free_run(page, SLAB_PAGES);
		return NULL;
	}
	run_publish(page, SLAB_PAGES, desc_make_slab(cls, SLAB_PAGES, page));
	return s;
}

/* Give a slab with no live block back to the pages; caller holds the lock. */
void heap_release_slab(struct slab *s)
{
	size_t page = pool_page_of(&heap.pool, s->start);

	space_tick();
	run_retire(page, SLAB_PAGES);
	for (unsigned i = 0; i < SLAB_PAGES; i++)
		heap.pagemap[page + i] = 0;
	heap_free_run(page, SLAB_PAGES);
	s->next = heap.slab_free;
	heap.slab_free = s;
}

/* Put a slab on the heap's partial list of its class; caller holds the lock. */
void heap_slab_park(struct slab *s)
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

static struct slab *partial_pop(unsigned cls)
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

/* ---- the owner's lists (owner only) ------------------------------------ */

static struct slab **owner_list(struct theap *t, struct slab *s)
{
	return s->list == LIST_FULL ? &t->full[s->cls] : &t->partial[s->cls];
}

static void list_add(struct theap *t, struct slab *s, enum slab_list which)
{
	s->list = which;
	struct slab **head = owner_list(t, s);

	s->prev = NULL;
	s->next = *head;
	if (*head)
		(*head)->prev = s;
	*head = s;
}

static void list_del(struct theap *t, struct slab *s)
{
	if (s->list == LIST_NONE)
		return;
	if (s->prev)
		s->prev->next = s->next;
	else
		*owner_list(t, s) = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->next = s->prev = NULL;
	s->list = LIST_NONE;
}

/* Move the blocks other threads freed into the local list (the owner, or
 * anyone under heap.lock for a parked slab). */
static void slab_collect(struct slab *s)
{
	void *list = atomic_exchange(&s->xfree, NULL);

	while (list) {
		void *next = link_get(list);
		unsigned bit;
		uint64_t *w = heap_bitword(list, &bit);

		if (!(*w & ((uint64_t)1 << bit)))
			misuse("free", list);
		*w &= ~((uint64_t)1 << bit);
		if (!s->rebuild) { /* else the rebuild finds it in the bitmap */
			link_set(list, s->free);
			s->free = list;
			s->used--;
		}
		list = next;
	}
}

/* Build the local free list of an adopted slab from its bitmap: the blocks
 * whose bit is clear (after recovery or a clean open). */
static void slab_rebuild(struct slab *s)
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
static void slab_carve(struct slab *s)
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

static struct theap *theap_get(void)
{
	struct theap *t = tls_theap;

	if (likely(t))
		return t;
	pthread_mutex_lock(&heap.lock);
	t = theap_free;
	if (t)
		theap_free = t->next_free;
	else
		t = internal_alloc(sizeof(*t));
	if (t) {
		memset(t, 0, sizeof(*t));
		t->alive = 1;
		heap.threads++;
	}
	pthread_mutex_unlock(&heap.lock);
	if (!t)
		return NULL;
	tls_theap = t;
	pthread_setspecific(theap_key, t);
	return t;
}

static void park_list(struct theap *t, struct slab *s)
{
	while (s) {
		struct slab *next = s->next;

		list_del(t, s);
		heap_slab_park(s);
		s = next;
	}
}

/* A thread is ending: its slabs go to the heap's partial lists. */
static void theap_exit(void *arg)
{
	struct theap *t = arg;

	pthread_mutex_lock(&heap.lock);
	for (struct slab *s = t->delayed; s; s = s->dnext) {
		list_del(t, s);
		heap_slab_park(s);
	}
	t->delayed = NULL;
	for (unsigned c = 0; c < HEAP_CLASSES; c++) {
		if (t->cur[c])
			heap_slab_park(t->cur[c]);
		t->cur[c] = NULL;
		park_list(t, t->partial[c]);
		park_list(t, t->full[c]);
	}
	t->alive = 0;
	t->next_free = theap_free;
	theap_free = t;
	heap.threads--;
	pthread_mutex_unlock(&heap.lock);
	if (tls_theap == t)
		tls_theap = NULL;
}

/* Full slabs that got remote frees come back to the partial list. */
static void drain_delayed(struct theap *t)
{
	pthread_mutex_lock(&heap.lock);
	struct slab *s = t->delayed;

	t->delayed = NULL;
	pthread_mutex_unlock(&heap.lock);
	while (s) {
		struct slab *next = s->dnext;

		atomic_store(&s->state, SLAB_ACTIVE);
		list_del(t, s);
		list_add(t, s, LIST_PARTIAL);
		s = next;
	}
}

/* The owner's slab has no free block left: to the full list, unless frees
 * arrived meanwhile.  Returns 1 when it may be used on. */
static int slab_retire(struct theap *t, struct slab *s)
{
	atomic_store(&s->state, SLAB_FULL);
	if (atomic_load(&s->xfree)) {
		int expect = SLAB_FULL;

		if (atomic_compare_exchange_strong(&s->state, &expect, SLAB_ACTIVE))
			return 1;
	}
	list_add(t, s, LIST_FULL); /* if NOTIFIED, drain_delayed moves it */
	return 0;
}

/* A slab for cls from the heap: a parked one (releasing the empty ones
 * found while another remains), else a new one. */
static struct slab *slab_acquire(struct theap *t, unsigned cls)
{
	struct slab *s;

	pthread_mutex_lock(&heap.lock);
	while ((s = partial_pop(cls))) {
		if (s->rebuild)
			slab_rebuild(s);
		slab_collect(s);
		if (s->used || !heap.partial[cls])
			break;
		heap_release_slab(s);
	}
	if (!s && (s = slab_make(cls)))
		s->bump = 0;
	if (s) {
		__atomic_store_n(&s->owner, t, __ATOMIC_RELAXED);
		atomic_store(&s->state, SLAB_ACTIVE);
		s->list = LIST_NONE;
	}
	pthread_mutex_unlock(&heap.lock);
	return s;
}

/* The current slab of cls is dry: collect remote frees, carve fresh
 * blocks, or move to another slab. */
static BTD_NOINLINE void *small_alloc_slow(struct theap *t, unsigned cls)
{
	struct slab *s = t->cur[cls];

	if (__atomic_load_n(&t->delayed, __ATOMIC_RELAXED))
		drain_delayed(t);
	for (;;) {
		if (s) {
			if (!s->free)
				slab_collect(s);
			if (!s->free && s->bump < s->nblocks)
				slab_carve(s);
			if (s->free) {
				void *b = s->free;

				t->cur[cls] = s;
				s->free = link_get(b);
				s->used++;
				heap_bit_set(b);
				return b;
			}
			t->cur[cls] = NULL;
			if (slab_retire(t, s))
				continue;
		}
		s = t->partial[cls];
		if (s) {
			list_del(t, s);
			continue;
		}
		s = slab_acquire(t, cls);
		if (!s) {
			errno = ENOMEM;
			return NULL;
		}
	}
}

/* ---- large runs -------------------------------------------------------- */

void heap_map_large(size_t page, size_t npages)
{
	heap.pagemap[page] = PAGE_LARGE(npages);
}

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
	size_t page = run_take(np + extra);

	if (page == SIZE_MAX) {
		pthread_mutex_unlock(&heap.lock);
		errno = ENOMEM;
		return NULL;
	}
	if (extra) { /* trim to the alignment, give back both ends */
		uintptr_t a = (uintptr_t)(heap.pool.data + page * POOL_PAGE);
		size_t lead = ((align - a % align) % align) / POOL_PAGE;

		if (lead)
			heap_free_run(page, lead);
		if (extra - lead)
			heap_free_run(page + lead + np, extra - lead);
		page += lead;
	}
	run_publish(page, np, desc_make_large(np, page));
	heap_map_large(page, np);
	char *p = heap.pool.data + page * POOL_PAGE;

	heap_bit_set(p);
	pthread_mutex_unlock(&heap.lock);
	return p;
}

static void large_free(size_t page, page_entry e)
{
	size_t np = PAGE_LARGE_PAGES(e);
	unsigned bit;
	uint64_t *w = heap_bitword(heap.pool.data + page * POOL_PAGE, &bit);

	pthread_mutex_lock(&heap.lock);
	if (heap.pagemap[page] != e) {
		pthread_mutex_unlock(&heap.lock);
		misuse("free", heap.pool.data + page * POOL_PAGE);
	}
	*w &= ~((uint64_t)1 << bit);
	space_tick();
	run_retire(page, np);
	heap.pagemap[page] = 0;
	heap_free_run(page, np);
	pthread_mutex_unlock(&heap.lock);
}

/* ---- the entry points -------------------------------------------------- */

int heap_owns(const void *p)
{
	return heap.open && pool_contains(&heap.pool, p);
}

void heap_range(uintptr_t *lo, size_t *len)
{
	*lo = (uintptr_t)heap.pool.data;
	*len = heap.open ? heap.pool.npages * (size_t)POOL_PAGE : 0;
}

static inline void *small_alloc(unsigned cls)
{
	struct theap *t = tls_theap;

	if (likely(t)) {
		struct slab *s = t->cur[cls];

		if (likely(s && s->free)) {
			void *b = s->free;

			s->free = link_get(b);
			s->used++;
			heap_bit_set(b);
			return b;
		}
	} else if (!(t = theap_get())) {
		errno = ENOMEM;
		return NULL;
	}
	return small_alloc_slow(t, cls);
}

void *heap_malloc(size_t n)
{
	if (unlikely(heap_frozen)) {
		errno = ENOMEM;
		return NULL;
	}
	if (likely(n <= HEAP_SMALL_MAX))
		return small_alloc(size_class(n));
	return large_alloc(n, 0);
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
				return small_alloc(c);
	}
	return large_alloc(n, align);
}

/* The slab of a small block, or NULL for a large one; aborts on anything
 * that is not a live block start. */
static inline struct slab *block_slab(const void *p, const char *what, page_entry *out)
{
	if (unlikely((uintptr_t)p & (POOL_GRANULE - 1)))
		misuse(what, p);
	size_t page = pool_page_of(&heap.pool, p);
	page_entry e = heap.pagemap[page];

	*out = e;
	if (unlikely(!e))
		misuse(what, p);
	if (PAGE_IS_LARGE(e)) {
		if (unlikely((uintptr_t)p & (POOL_PAGE - 1)))
			misuse(what, p);
		return NULL;
	}
	return (struct slab *)e;
}

static void remote_free(struct slab *s, void *p)
{
	if (!heap_bit_test(p))
		misuse("free", p);
	void *head = atomic_load_explicit(&s->xfree, memory_order_relaxed);

	do {
		link_set(p, head);
	} while (!atomic_compare_exchange_weak(&s->xfree, &head, p));
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

/* The owner freed into one of its full slabs: back to the partial list
 * (unless a notifier took it to the delayed list first). */
static BTD_NOINLINE void slab_unfull(struct theap *t, struct slab *s)
{
	int expect = SLAB_FULL;

	if (atomic_compare_exchange_strong(&s->state, &expect, SLAB_ACTIVE)) {
		list_del(t, s);
		list_add(t, s, LIST_PARTIAL);
	}
}

/* An empty slab on the partial list goes back to the pages. */
static BTD_NOINLINE void slab_drop(struct theap *t, struct slab *s)
{
	list_del(t, s);
	pthread_mutex_lock(&heap.lock);
	heap_release_slab(s);
	pthread_mutex_unlock(&heap.lock);
}

void heap_free(void *p)
{
	if (unlikely(heap_frozen))
		return; /* a fork child: the parent's block, in a private view */
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

		if (unlikely(!(*w & ((uint64_t)1 << bit))))
			misuse("free", p);
		*w &= ~((uint64_t)1 << bit);
		link_set(p, s->free);
		s->free = p;
		s->used--;
		if (unlikely(s->list != LIST_NONE)) {
			if (s->list == LIST_FULL)
				slab_unfull(t, s);
			else if (!s->used && (s->next || s->prev))
				slab_drop(t, s); /* keep the last one: no churn */
		}
		return;
	}
	remote_free(s, p);
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
		int grown = 0;

		pthread_mutex_lock(&heap.lock);
		size_t next = page + np;
		size_t more = need - np;

		if (next < heap.top && heap.ftag[next] >= more) {
			size_t len = heap.ftag[next];

			frun_unlink(next);
			if (len > more)
				frun_link(next + more, len - more);
			grown = 1;
		} else if (next == heap.top && heap.top + more <= heap.pool.npages &&
			   top_take(more) != SIZE_MAX) {
			grown = 1;
		}
		if (grown && space_take(next, more)) {
			heap_free_run(next, more);
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

/* ---- open, close, fork ------------------------------------------------- */

static int volatile_init(void)
{
	size_t np = heap.pool.npages;

	heap.pagemap_bytes = np * sizeof(page_entry);
	heap.pagemap = internal_map(heap.pagemap_bytes);
	heap.ftag = internal_map(np * sizeof(uint32_t));
	heap.fnext = internal_map(np * sizeof(uint32_t));
	heap.fprev = internal_map(np * sizeof(uint32_t));
	if (!heap.pagemap || !heap.ftag || !heap.fnext || !heap.fprev)
		return err_set(BTD_ERR_NOMEM, "cannot map the heap's page tables (%zu pages)", np);
	int ret = space_init(np);

	if (ret)
		return ret;
	for (unsigned b = 0; b < 64; b++)
		heap.fbin[b] = NIL;
	heap.fbin_mask = 0;
	return 0;
}

static void volatile_free(void)
{
	size_t np = heap.pool.npages;

	munmap(heap.pagemap, heap.pagemap_bytes);
	munmap(heap.ftag, np * sizeof(uint32_t));
	munmap(heap.fnext, np * sizeof(uint32_t));
	munmap(heap.fprev, np * sizeof(uint32_t));
	heap.pagemap = NULL;
	space_fini();
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

/* Recovery (recovery/gc.c) and the clean-open walk (here) share this. */
int recovery_run(enum btd_gc gc, struct heap_open_info *info);

int heap_open(const char *path, size_t size, enum btd_gc gc, struct heap_open_info *info)
{
	struct heap_open_info dummy;
	int ret;

	if (!info)
		info = &dummy;
	memset(info, 0, sizeof(*info));
	if (heap.open)
		return err_set(BTD_ERR_BUSY, "a pool is already open in this process (%s)",
				  heap.pool.path);
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, classes_init);
	ret = pool_open(&heap.pool, path, size, 1);
	if (ret)
		return ret;
	ret = volatile_init();
	if (!ret)
		ret = recovery_run(gc, info);
	if (ret) {
		slabs_to_spare();
		pool_abandon(&heap.pool);
		volatile_free();
		for (unsigned c = 0; c < HEAP_CLASSES; c++)
			heap.partial[c] = NULL; /* slabs of the failed open: spare */
		return ret;
	}
	pool_mark_open(&heap.pool); /* before the first write (recovery may have made it) */
	space_ready();
	heap_frozen = 0;
	heap_purge_all(); /* what the file holds of the free pages goes back */
	static int key_made;

	if (!key_made && !pthread_key_create(&theap_key, theap_exit))
		key_made = 1;
	heap.open = 1;
	return 0;
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
static void collect_slabs(int all)
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

/* Drop the heap as a crash would: nothing is written, the pool stays
 * dirty (tests, and the crash points of the test builds). */
void heap_abandon(void)
{
	if (!heap.open)
		return;
	heap.open = 0;
	pool_abandon(&heap.pool);
	volatile_free();
	for (unsigned c = 0; c < HEAP_CLASSES; c++)
		heap.partial[c] = NULL;
	heap.slab_free = NULL; /* the slab structs of the old map are not reused */
	if (tls_theap)
		memset(tls_theap, 0, sizeof(*tls_theap));
}

/* The process is exiting.  Allocate nothing more from the pool and ignore
 * frees into it; the mapping stays, for destructors that still read
 * persistent blocks.  Mark the pool clean only when no other thread can be
 * in the middle of an allocation (none but this one has a theap): else
 * leave it dirty, and the next open collects -- slower, never wrong. */
int heap_exit(void)
{
	int clean = 0;

	if (!heap.open || heap_frozen)
		return 0;
	pthread_mutex_lock(&heap.lock);
	heap_frozen = 1;
	space_purge_all(); /* free pages only: live blocks stay for the destructors */
	if (heap.threads == 0 || (heap.threads == 1 && tls_theap)) {
		collect_slabs(1);
		pool_mark_clean(&heap.pool);
		clean = 1;
	}
	pthread_mutex_unlock(&heap.lock);
	return clean;
}

int heap_default_path(char *buf, size_t n, const char *program, unsigned instance)
{
	return pool_default_path(buf, n, program, instance);
}

void heap_collect_next(void)
{
	heap.pool.collect_next = 1;
}

int heap_is_open(void)
{
	return heap.open;
}

void heap_close(void)
{
	if (!heap.open || heap_frozen)
		return;
	pthread_mutex_lock(&heap.lock);
	collect_slabs(1); /* the bitmap a clean close persists must be exact */
	space_purge_all();
	heap.open = 0;
	slabs_to_spare();
	pool_close(&heap.pool);
	volatile_free();
	for (unsigned c = 0; c < HEAP_CLASSES; c++)
		heap.partial[c] = NULL;
	if (tls_theap)
		memset(tls_theap, 0, sizeof(*tls_theap));
	pthread_mutex_unlock(&heap.lock);
}

/* FORK: heap/fork.c. */

void heap_stats(struct heap_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!heap.open)
		return;
	pthread_mutex_lock(&heap.lock);
	collect_slabs(0);
	st->pages_top = heap.top;
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
