/* heap_int.h: the heap's private structures, shared with recovery/ only.
 *
 * GLOSSARY
 *   page    4 KiB of the pool's data area; runs are made of pages
 *   run     consecutive pages: a slab, or one large block
 *   slab    a 64 KiB run cut into blocks of one size class
 *   class   one of HEAP_CLASSES block sizes, 16 B .. 16 KiB
 *   theap   a thread's heap: per class, a block cache and the slab it
 *           allocates from
 *
 * Volatile state (DRAM, rebuilt at every open): the page map (page -> slab
 * or large run), slab free lists, the free-run index.  Persistent state (in
 * the pool): page descriptors of run heads, at releases and durability
 * points (retain.c); the block-start bitmap, lazily (see layout.h).
 *
 * CONCURRENCY.  A slab belongs to one theap, whose thread alone pops and
 * pushes its local free list, caches its freed blocks, and writes its
 * bitmap words (a slab's bitmap words are its own: slabs never share a
 * page, and a page is 4 bitmap words).  A theap keeps, per class, its
 * block cache, its current slab, a list of slabs with free blocks
 * (partial) and a list of exhausted ones (full); its own frees stay local
 * whichever list the slab is on, and go back to their slabs before a slab
 * changes owner or is trimmed (theap_cache_flush).  Other threads free into
 * a slab's `rfree` bits with one atomic OR (REMOTE FREES below); the owner
 * collects them when it next visits the slab -- and since it never visits its full slabs, the first
 * remote free into a full slab hands it to the owner's `delayed` list
 * (under heap.lock), which the owner drains in its slow path.  Slabs of a
 * thread that exited are retained when empty, else parked on the heap's
 * partial lists for any thread to adopt.  Runs -- making and releasing
 * slabs, large blocks, growing the pool -- take heap.lock. */
#ifndef BTD_HEAP_HEAP_INT_H
#define BTD_HEAP_HEAP_INT_H

#include <pthread.h>
#include <stdint.h>

#include "../common/compiler.h"
#include "layout.h"
#include "pool.h"

#define HEAP_CLASSES 36
#define HEAP_SMALL_MAX 16384u
#define SLAB_PAGES 16u
#define SLAB_BYTES (SLAB_PAGES * POOL_PAGE)
#define SLAB_RWORDS (SLAB_BYTES / POOL_GRANULE / 64) /* bitmap words of a slab */
#define HEAP_EMPTY_MAX 128u        /* empty slabs retained (8 MiB) */
#define HEAP_IDLE_BINS 512u        /* freed large runs retained up to 2 MiB each ... */
#define HEAP_IDLE_PAGES 16384u     /* ... and 64 MiB in all */
#define HEAP_CACHE_MAX 32u         /* blocks a thread's frees cache per class ... */
#define HEAP_CACHE_BYTES 65536u    /* ... and bytes (at least 4 blocks) */
#define HEAP_CACHE_SLOTS 64u       /* blocks a collect of remote frees may cache */
#define DESC_PER_PAGE (POOL_PAGE / sizeof(uint64_t)) /* descriptors per page of them */

struct theap;

struct slab {
	/* The owner's line: written on every allocation and local free. */
	void *free;                /* local free list: the owner's */
	uint32_t used;             /* blocks allocated, as the owner counts */
	uint32_t bump;             /* blocks at and above this were never handed out */
	uint32_t rebuild;          /* free list to be built from the bitmap */
	uint32_t list;             /* the owner's list it is on (owner only) */
	uint32_t size;             /* block size */
	uint32_t nblocks;
	char *start;               /* first block (the slab's first page) */
	struct slab *next, *prev;  /* on that list */
	/* The shared line: what other threads read and write on a remote
	 * free.  Apart from the owner's line, so that a producer's
	 * allocations and its consumer's frees do not bounce one line. */
	_Alignas(64) struct theap *owner; /* NULL: parked on the heap's partial list */
	_Atomic uint64_t rsum;     /* words of rfree with a bit set (or about to) */
	_Atomic int state;         /* slab_state below */
	uint32_t cls;              /* here: the owner's free reads it with owner */
	struct slab *dnext;        /* on the owner's delayed list */
	/* Frees from other threads, not yet collected by the owner: a bit per
	 * granule, as the slab's words of the pool's bitmap (REMOTE FREES). */
	_Alignas(64) _Atomic uint64_t rfree[SLAB_RWORDS];
};
_Static_assert(sizeof(struct slab) == 128 + SLAB_RWORDS * 8, "struct slab: two lines and rfree");

/* The page map: per data page, what lives there.  A slab's 16 pages all
 * point at it; a large run's first page holds (npages << 2) | 1, or
 * (npages << 2) | 3 while the run is retained with no block in it
 * (retain.c); other pages hold 0.  (Recovery marks pages with | 2.) */
typedef uintptr_t page_entry;
#define PAGE_IS_LARGE(e) ((e) & 1)
#define PAGE_LARGE(n) (((uintptr_t)(n) << 2) | 1)
#define PAGE_LARGE_IDLE(n) (((uintptr_t)(n) << 2) | 3)
#define PAGE_IS_LARGE_IDLE(e) (((e) & 3) == 3)
#define PAGE_LARGE_PAGES(e) ((e) >> 2)

struct theap {
	/* The block cache: per class, the blocks this thread freed last into
	 * its own slabs (or collected from other threads' frees), reused
	 * first (LIFO).  Their bitmap bits are clear -- free, for the
	 * double-free check, heap_is_block, the stats and a clean close --
	 * while their slabs still count them used, so no slab empties under
	 * the cache.  Nothing of it is persistent and recovery assumes
	 * nothing of it: after a crash a cached block is one more block no
	 * root reaches, reclaimed by the GC, and a clean close gives this
	 * thread's cache back to its slabs first (theap_cache_flush).  The
	 * crash suites (kill -9 and simulated power failure) run with it. */
	struct tbin {
		void **top;        /* the next free slot; base when empty */
		void **base;       /* cached[cls] */
		void **end;        /* base + heap_cache_cap[cls]: full for frees */
		void *unused;
	} bin[HEAP_CLASSES];       /* set up by theap_reset */
	void *cached[HEAP_CLASSES][HEAP_CACHE_SLOTS];
	struct slab *cur[HEAP_CLASSES];     /* the slab each class allocates from */
	struct slab *partial[HEAP_CLASSES]; /* owned slabs with free blocks */
	struct slab *full[HEAP_CLASSES];    /* owned slabs with none */
	struct slab *delayed;      /* full slabs that got remote frees (heap.lock) */
	int alive;                 /* (heap.lock) */
	unsigned gen;              /* heap.gen when it was made */
	struct theap *next_free;
};

struct heap {
	/* The fast paths' lookups, from an address alone (the data area is
	 * page-aligned): the page map entry of p is at map_bias + (p >> 12) * 8,
	 * the bitmap word of p at bit_bias + (p >> 10) * 8. */
	uintptr_t map_bias, bit_bias;
	struct pool pool;
	int open;
	page_entry *pagemap;       /* npages entries (DRAM, lazily touched) */
	size_t pagemap_bytes;
	pthread_mutex_t lock;      /* runs, slabs, abandoned lists */
	/* Free runs: boundary tags and size bins (DRAM, page-indexed). */
	uint32_t *ftag;            /* length at the head and tail of a free run */
	uint32_t *fnext, *fprev;   /* bin lists, by head page; UINT32_MAX ends */
	uint32_t fbin[64];
	uint64_t fbin_mask;
	size_t top;                /* pages below were used at some point */
	struct slab *partial[HEAP_CLASSES]; /* slabs no thread owns, with free blocks */
	struct slab *slab_free;    /* spare slab structs */
	unsigned threads;          /* theaps in use */
	unsigned gen;              /* heap_detach counts: a theap of an older one holds stale slabs */
	/* Retained runs (retain.c): live in the pool, empty, kept for reuse. */
	struct slab *empty[HEAP_CLASSES]; /* empty slabs by class */
	uint64_t empty_mask;       /* classes with an empty slab */
	unsigned nempty;
	uint32_t idle[HEAP_IDLE_BINS + 1]; /* freed large runs by pages, linked
				    * through fnext/fprev at their heads */
	unsigned nidle;
	size_t idle_pages;
	uint64_t retain_used;      /* space_now() of the last retain or reuse */
	/* Descriptors changed in place, not yet persisted (retain.c): a bit
	 * per page of the descriptor array (512 pool pages). */
	uint64_t *desc_dirty;
	size_t desc_dirty_bytes;
	int _Atomic desc_pending;   /* some bit of desc_dirty is set */
};

/* SLAB STATES (atomic, for the hand-over between an owner and the threads
 * that free into its slabs):
 *   ACTIVE    owned; current or on the owner's partial list, which the
 *             owner visits and collects remote frees from
 *   FULL      owned and exhausted, on the owner's full list, not visited:
 *             a remote free must tell the owner
 *   NOTIFIED  a remote free did: on the owner's delayed list
 *   PARKED    no owner: on the heap's partial list
 * The owner publishes FULL and then looks at rsum once more; a freer
 * marks its block in rfree (and, the first of its word, in rsum) and then
 * looks at the state.  A later freer of a word whose rsum bit is pending
 * relies on the first one, which sets it and then looks at the state too.
 * With all of it sequentially consistent, the owner sees rsum or a freer
 * sees FULL, so no freed block is lost.  FULL -> NOTIFIED and every change of a slab's owner
 * happen under heap.lock; FULL -> ACTIVE by the owner is a CAS that loses
 * to a notifier.
 *
 * REMOTE FREES.  Another thread's free sets the block's bit in the slab's
 * rfree words (DRAM) with one atomic OR -- and, when the word was empty,
 * the word's bit in rsum -- so a remote free touches neither the block nor
 * the owner's bitmap.  (The word's first freer sets rsum after its OR; a
 * later freer whose bit the owner has not yet taken finds the word not
 * empty, so rsum has the word's bit, or will, or the owner takes the word
 * after the later OR: no bit is left behind unannounced.)  The owner
 * collects (slab_collect) by exchanging rsum and then each word it names:
 * the blocks' bits in the pool's bitmap are cleared -- a bit already clear
 * there is a double free or a pointer into a block, caught here -- and the
 * blocks go to the thread's cache or the slab's free list, again without
 * touching them. */
enum slab_state { SLAB_ACTIVE, SLAB_FULL, SLAB_NOTIFIED, SLAB_PARKED };

/* Which of its owner's lists a slab is on (owner only). */
enum slab_list { LIST_NONE, LIST_PARTIAL, LIST_FULL, LIST_RETAINED /* retain.c */ };

extern struct heap heap;

/* heap.c: internal memory (never malloc: invariant 6) and misuse. */
void *heap_internal_map(size_t n);
void *heap_internal_alloc(size_t n);          /* fixed-size objects; heap.lock */
BTD_COLD BTD_NORETURN void heap_misuse(const char *what, const void *p);

/* classes.c */
extern const uint32_t heap_class_size[HEAP_CLASSES];
extern uint32_t heap_cache_cap[HEAP_CLASSES];      /* blocks cached per class */
extern uint8_t heap_class_lo[1024 / 16 + 1], heap_class_hi[HEAP_SMALL_MAX / 256 + 1];
void classes_init(void);

static inline unsigned size_class(size_t n)
{
	return n <= 1024 ? heap_class_lo[(n + 15) >> 4] : heap_class_hi[(n + 255) >> 8];
}

/* run.c: free runs and run metadata; the caller holds heap.lock. */
void run_free(size_t page, size_t npages);    /* to the free index, merged */
size_t run_take(size_t npages);               /* SIZE_MAX: no room (err_last) */
int run_take_at(size_t page, size_t npages);  /* 1: those pages were free */
void run_map_large(size_t page, size_t npages);
/* The only writers of page descriptors (see layout.h), with
 * run_desc_defer below.  publish: the run is live with head d, durable at the
 * next durability point (heap_desc_sync); retire: its head becomes a
 * release mark, durable on return, before its pages can be reused. */
void run_publish(size_t page, size_t npages, uint64_t d);
void run_retire(size_t page, size_t npages);
/* Recovery's rewrite of many descriptors: stage each, then one sync
 * flushes the range and drains once. */
void run_desc_stage(size_t page, uint64_t d);
void run_desc_sync(size_t page, size_t npages);
/* A descriptor stored now, persisted at the next durability point
 * (heap_desc_sync in heap.h; run_desc_flush_pending under the lock). */
void run_desc_defer(size_t page, uint64_t d);
void run_desc_flush_pending(void);

/* slab.c */
struct slab *slab_new(size_t page, unsigned cls);  /* DRAM only; heap.lock */
struct slab *slab_make(unsigned cls);               /* a new run, published */
void slab_release(struct slab *s);                  /* back to the pages */
void slab_forget(struct slab *s);                   /* ... its mark durable already */
void slab_park(struct slab *s);                     /* to the heap's partial list */
struct slab *slab_partial_pop(unsigned cls);
unsigned slab_retain_parked_empty(void);            /* the empty ones, retained */
void slab_collect(struct slab *s);                  /* remote frees to the local list */
uint32_t slab_collect_to(struct slab *s, void **out, uint32_t room); /* ... up to room to out */
void slab_rebuild(struct slab *s);                  /* the local list from the bitmap */
void slab_carve(struct slab *s);                    /* never-used blocks to the list */

/* retain.c: runs kept live while empty, so that churn makes none; the
 * caller holds heap.lock, except for heap_desc_sync (heap.h). */
void slab_retain(struct slab *s);                   /* an empty slab, kept */
struct slab *slab_retained(unsigned cls);           /* one for cls, or NULL */
int large_retain(size_t page, size_t npages);       /* 1: kept */
size_t large_retained(size_t npages, size_t align); /* its page, or SIZE_MAX */
void retain_drop_all(void);                         /* release them all */

/* theap.c */
extern BTD_TLS struct theap *tls_theap;
struct theap *theap_get(void);
void theap_list_add(struct theap *t, struct slab *s, enum slab_list which);
void theap_list_del(struct theap *t, struct slab *s);
BTD_NOINLINE void *theap_alloc_slow(struct theap *t, unsigned cls);
BTD_NOINLINE void theap_slab_unfull(struct theap *t, struct slab *s);
BTD_NOINLINE void theap_slab_drop(struct theap *t, struct slab *s);
void theap_init(void);
int theap_trim(void);                         /* a full pool: this thread's empty slabs go */
int theap_trim_locked(void);                  /* the same, under heap.lock */
void theap_forget(void);
int theap_mine(void);                         /* this thread has a theap */

/* Free pages and the file system (space.c): which free pages are backed
 * and which are holes, given back after a decay period.  All but
 * space_init and space_fini: the caller holds heap.lock. */
struct heap_stats;
int space_init(size_t npages);        /* frees from now on: what the open found */
void space_ready(void);               /* the open is done */
void space_fini(void);
void space_freed(size_t page, size_t npages);
int space_take(size_t page, size_t npages);   /* back holes before use; BTD_OK or a status */
void space_tick(void);                /* the decay clock: punch what aged */
uint64_t space_now(void);             /* the decay clock's coarse ns */
void space_purge_all(void);           /* punch every free page now */
size_t space_next(size_t from, size_t end, int hole); /* first page that is (not) a hole */
void space_stats(struct heap_stats *st);
size_t space_check(void);             /* pages the bitmaps get wrong; 0 when sound */

/* Give every free page back to the file system now (the end of an open,
 * after recovery).  Takes heap.lock: the caller must not hold it.  Cheap
 * when nothing is left to punch. */
void heap_purge_all(void);

static inline uint64_t *heap_bitword(const void *p, unsigned *bit)
{
	_Static_assert(POOL_GRANULE == 16, "a bitmap word covers 1 KiB");
	*bit = (unsigned)((uintptr_t)p >> 4) & 63;
	return (uint64_t *)(heap.bit_bias + (((uintptr_t)p >> 10) << 3));
}

/* The page map entry of the page holding p (a pool address). */
static inline page_entry heap_page_entry(const void *p)
{
	return *(const page_entry *)(heap.map_bias + (((uintptr_t)p >> 12) << 3));
}

/* The bitmap bit of block p (a relaxed read: other bits of the word may
 * be changing under their owners). */
static inline int heap_bit_test(const void *p)
{
	unsigned bit;
	uint64_t *w = heap_bitword(p, &bit);

	return (int)((__atomic_load_n(w, __ATOMIC_RELAXED) >> bit) & 1);
}

/* Live blocks of a slab: its bitmap words hold bits at block starts only,
 * so a popcount of its 64 words counts them. */
static inline uint32_t heap_slab_live(const struct slab *s)
{
	unsigned bit;
	const uint64_t *w = heap_bitword(s->start, &bit);
	uint32_t n = 0;

	for (unsigned i = 0; i < SLAB_BYTES / POOL_GRANULE / 64; i++)
		n += (uint32_t)__builtin_popcountll(__atomic_load_n(&w[i], __ATOMIC_RELAXED));
	return n;
}

/* FREE-LIST LINKS.  A free block's first word links it to the next free
 * block (a slab's local list).  The word is stored
 * complemented: a link is then at or above 2^63, never a user-space address
 * and so never a pointer into the pool, and the recovery GC's conservative
 * mark cannot follow it from a block handed out before the program wrote
 * its first word (invariant 8 of DESIGN.md; mimalloc encodes its lists with
 * a per-heap key for the same reason).  One NOT on each push and pop. */
static inline void link_set(void *block, const void *next)
{
	*(uintptr_t *)block = ~(uintptr_t)next;
}

static inline void *link_get(const void *block)
{
	return (void *)~*(const uintptr_t *)block;
}

/* Set the bitmap bit of block p (its owner, or under heap.lock). */
static inline void heap_bit_set(const void *p)
{
	unsigned bit;
	uint64_t *w = heap_bitword(p, &bit);

	*w |= (uint64_t)1 << bit;
}

/* Block p (its bit cleared already) back on its slab's local free list:
 * the owner, or anyone under heap.lock for a parked slab. */
static inline void slab_push(struct slab *s, void *p)
{
	link_set(p, s->free);
	s->free = p;
	s->used--;
}

#endif
