/* theap.c: thread heaps -- per size class, a cache of the blocks the
 * thread freed last, the slab it allocates from and its lists of partial
 * and full slabs -- and the small-object slow path (see SLAB STATES in
 * heap_int.h). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "../common/compiler.h"
#include "../common/error.h"
#include "../common/log.h"
#include "btd.h"
#include "heap.h"
#include "heap_int.h"

BTD_TLS struct theap *tls_theap;
static pthread_key_t theap_key;
static int theap_key_made;
static struct theap *theap_free;

static struct slab **theap_owner_list(struct theap *t, struct slab *s)
{
	return s->list == LIST_FULL ? &t->full[s->cls] : &t->partial[s->cls];
}

void theap_list_add(struct theap *t, struct slab *s, enum slab_list which)
{
	s->list = which;
	struct slab **head = theap_owner_list(t, s);

	s->prev = NULL;
	s->next = *head;
	if (*head)
		(*head)->prev = s;
	*head = s;
}

void theap_list_del(struct theap *t, struct slab *s)
{
	if (s->list == LIST_NONE)
		return;
	if (s->prev)
		s->prev->next = s->next;
	else
		*theap_owner_list(t, s) = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->next = s->prev = NULL;
	s->list = LIST_NONE;
}

/* An empty thread heap, its cache ready. */
static void theap_reset(struct theap *t)
{
	memset(t, 0, sizeof(*t));
	for (unsigned c = 0; c < HEAP_CLASSES; c++) {
		t->bin[c].base = t->bin[c].top = t->cached[c];
		t->bin[c].end = t->cached[c] + heap_cache_cap[c];
	}
}

struct theap *theap_get(void)
{
	struct theap *t = tls_theap;

	if (likely(t))
		return t;
	pthread_mutex_lock(&heap.lock);
	t = theap_free;
	if (t)
		theap_free = t->next_free;
	else
		t = heap_internal_alloc(sizeof(*t));
	if (t) {
		theap_reset(t);
		t->gen = heap.gen;
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

/* A slab of an ending thread: kept empty for reuse when its last blocks
 * came back from the thread's cache (or from remote frees), else parked
 * for another thread to adopt.  A frozen heap (a fork child's, or after
 * the exit's own release) only parks.  Caller holds heap.lock; s is on no
 * owner list. */
static void theap_let_go(struct slab *s)
{
	slab_collect(s);
	if (!s->used && !heap_frozen)
		slab_retain(s);
	else
		slab_park(s);
}

static void theap_let_go_list(struct theap *t, struct slab *s)
{
	while (s) {
		struct slab *next = s->next;

		theap_list_del(t, s);
		theap_let_go(s);
		s = next;
	}
}

/* The block cache goes back to the slabs its blocks came from, before
 * they change owner or are trimmed; caller holds heap.lock.  A slab this
 * empties stays on its list, for the caller. */
static void theap_cache_flush(struct theap *t)
{
	for (unsigned c = 0; c < HEAP_CLASSES; c++) {
		for (void **i = t->bin[c].base; i < t->bin[c].top; i++) {
			struct slab *s = (struct slab *)heap_page_entry(*i);

			slab_push(s, *i);
			if (s->list == LIST_FULL)
				theap_slab_unfull(t, s);
		}
		t->bin[c].top = t->bin[c].base;
	}
}

/* A thread is ending: its slabs go to the heap (see theap_let_go). */
static void theap_exit(void *arg)
{
	struct theap *t = arg;

	pthread_mutex_lock(&heap.lock);
	if (t->gen != heap.gen || !heap.pagemap) {
		/* The pool it allocated from was closed under it: its slabs
		 * are gone with the page map, nothing to give back. */
		theap_reset(t);
		goto done;
	}
	theap_cache_flush(t);
	for (struct slab *s = t->delayed, *next; s; s = next) {
		next = s->dnext;
		theap_list_del(t, s);
		theap_let_go(s);
	}
	t->delayed = NULL;
	for (unsigned c = 0; c < HEAP_CLASSES; c++) {
		if (t->cur[c])
			theap_let_go(t->cur[c]);
		t->cur[c] = NULL;
		theap_let_go_list(t, t->partial[c]);
		theap_let_go_list(t, t->full[c]);
	}
done:
	t->alive = 0;
	t->next_free = theap_free;
	theap_free = t;
	heap.threads--;
	pthread_mutex_unlock(&heap.lock);
	if (tls_theap == t)
		tls_theap = NULL;
}

/* Full slabs that got remote frees come back to the partial list. */
static void theap_drain_delayed(struct theap *t)
{
	pthread_mutex_lock(&heap.lock);
	struct slab *s = t->delayed;

	t->delayed = NULL;
	pthread_mutex_unlock(&heap.lock);
	while (s) {
		struct slab *next = s->dnext;

		atomic_store(&s->state, SLAB_ACTIVE);
		theap_list_del(t, s);
		theap_list_add(t, s, LIST_PARTIAL);
		s = next;
	}
}

/* The owner's slab has no free block left: to the full list, unless frees
 * arrived meanwhile.  Returns 1 when it may be used on. */
static int theap_slab_full(struct theap *t, struct slab *s)
{
	atomic_store(&s->state, SLAB_FULL);
	if (atomic_load(&s->rsum)) {
		int expect = SLAB_FULL;

		if (atomic_compare_exchange_strong(&s->state, &expect, SLAB_ACTIVE))
			return 1;
	}
	theap_list_add(t, s, LIST_FULL); /* if NOTIFIED, theap_drain_delayed moves it */
	return 0;
}

/* A slab for cls from the heap: a parked one (releasing the empty ones
 * found while another remains), else a new one. */
static struct slab *theap_slab_acquire(struct theap *t, unsigned cls)
{
	struct slab *s;

	pthread_mutex_lock(&heap.lock);
	while ((s = slab_partial_pop(cls))) {
		if (s->rebuild)
			slab_rebuild(s);
		slab_collect(s);
		if (s->used || !heap.partial[cls])
			break;
		slab_retain(s);
	}
	if (!s) {
		space_tick(); /* the decay clock, first: what decayed is not reused */
		s = slab_retained(cls);
	}
	if (!s)
		s = slab_make(cls);
	if (s) {
		__atomic_store_n(&s->owner, t, __ATOMIC_RELAXED);
		atomic_store(&s->state, SLAB_ACTIVE);
		s->list = LIST_NONE;
	}
	pthread_mutex_unlock(&heap.lock);
	return s;
}

/* The cache and the current slab of cls are dry: collect remote frees,
 * carve fresh blocks, or move to another slab. */
BTD_NOINLINE void *theap_alloc_slow(struct theap *t, unsigned cls)
{
	struct slab *s = t->cur[cls];

	if (__atomic_load_n(&t->delayed, __ATOMIC_RELAXED))
		theap_drain_delayed(t);
	for (;;) {
		if (s && !s->free) {
			/* Remote frees straight to the cache: no block is touched. */
			struct tbin *c = &t->bin[cls];
			uint32_t k = slab_collect_to(s, c->top,
						     (uint32_t)(c->base + HEAP_CACHE_SLOTS - c->top));

			if (k) {
				void *b = c->top[k - 1];

				t->cur[cls] = s;
				c->top += k - 1;
				heap_bit_set(b);
				return b;
			}
		}
		if (s) {
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
			if (theap_slab_full(t, s))
				continue;
		}
		s = t->partial[cls];
		if (s) {
			theap_list_del(t, s);
			continue;
		}
		s = theap_slab_acquire(t, cls);
		if (!s && theap_trim())
			s = theap_slab_acquire(t, cls); /* the pool was full */
		if (!s) {
			errno = ENOMEM;
			return NULL;
		}
	}
}

/* The owner freed into one of its full slabs: back to the partial list
 * (unless a notifier took it to the delayed list first). */
BTD_NOINLINE void theap_slab_unfull(struct theap *t, struct slab *s)
{
	int expect = SLAB_FULL;

	if (atomic_compare_exchange_strong(&s->state, &expect, SLAB_ACTIVE)) {
		theap_list_del(t, s);
		theap_list_add(t, s, LIST_PARTIAL);
	}
}

/* An empty slab on the partial list goes to the heap's retained ones. */
BTD_NOINLINE void theap_slab_drop(struct theap *t, struct slab *s)
{
	int saved = errno; /* free keeps errno (a release may msync or punch) */

	theap_list_del(t, s);
	pthread_mutex_lock(&heap.lock);
	slab_collect(s); /* nothing, or misuse: it has no live block */
	slab_retain(s);
	space_tick();
	pthread_mutex_unlock(&heap.lock);
	errno = saved;
}

/* One of t's slabs, if it has no live block, to the heap's retained ones;
 * caller holds heap.lock.  1 when it went. */
static int trim_slab(struct theap *t, struct slab *s)
{
	slab_collect(s);
	if (s->used)
		return 0;
	theap_list_del(t, s);
	slab_retain(s);
	return 1;
}

/* This thread's empty slabs (current or partial) go to the heap's
 * retained ones (other threads keep theirs): when the pool is full, which
 * releases them, and before a clean close or exit; caller holds heap.lock.
 * 1 when one went. */
int theap_trim_locked(void)
{
	struct theap *t = tls_theap;
	int any = 0;

	if (!t)
		return 0;
	theap_cache_flush(t);
	for (unsigned c = 0; c < HEAP_CLASSES; c++) {
		if (t->cur[c] && trim_slab(t, t->cur[c])) {
			t->cur[c] = NULL;
			any = 1;
		}
		for (struct slab *s = t->partial[c], *next; s; s = next) {
			next = s->next;
			any |= trim_slab(t, s);
		}
	}
	return any;
}

int theap_trim(void)
{
	pthread_mutex_lock(&heap.lock);
	int any = theap_trim_locked();

	pthread_mutex_unlock(&heap.lock);
	return any;
}

/* Once per process: thread heaps go back when their thread ends. */
void theap_init(void)
{
	if (!theap_key_made && !pthread_key_create(&theap_key, theap_exit))
		theap_key_made = 1;
}

/* This thread's heap lost its slabs (the heap was detached). */
void theap_forget(void)
{
	if (tls_theap) {
		theap_reset(tls_theap);
		tls_theap->gen = heap.gen;
	}
}

int theap_mine(void)
{
	return tls_theap != NULL;
}
