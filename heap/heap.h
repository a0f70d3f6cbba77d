/* heap.h: the persistent heap -- what the interposer and the public API
 * call.  One heap per process, in one pool. */
#ifndef BTD_HEAP_HEAP_H
#define BTD_HEAP_HEAP_H

#include <stddef.h>
#include <stdint.h>

#include "../common/settings.h"

struct heap_open_info {
	int was_dirty;            /* the pool had not been closed cleanly */
	int reset;                /* it was rootless and reset in O(1) */
	int collected;            /* the recovery GC ran */
	uint64_t kept_blocks, kept_bytes;
	uint64_t freed_blocks, freed_bytes;
	uint64_t gc_ns;           /* time spent in recovery */
	uint64_t rolled_back;     /* transactions in flight, rolled back */
};

/* The lifecycle, for the open sequence (store/store.c), which drives the
 * heap and recovery in turn. */
struct pool;
struct pool *heap_pool(void);  /* the pool the heap lives in */
int heap_attach(void);         /* after pool_open: the DRAM tables */
void heap_ready(void);         /* after recovery: allocation may start */
void heap_detach(void);        /* the DRAM tables and slabs dropped */
void heap_lock(void);
void heap_unlock(void);
/* Persist the run descriptors changed in place since the last durability
 * point (retain.c): every durability point calls it before it persists
 * data, so that a block is never durably reachable before its slab's
 * class is durable.  One relaxed load when there are none. */
void heap_desc_sync(void);
void heap_quiesce(void);       /* (locked) before a clean close */
int heap_freeze(void);         /* (locked) at exit; 1: no other thread allocates */
/* No more allocation from the pool: a fork child (fork.c), or exit. */
extern int heap_frozen;
/* Ask the next open to collect although this close is clean: the caller
 * put blocks in the pool that nobody will free (the preload's routing). */
void heap_collect_next(void);

/* The data range, for the interposer's one-compare ownership test. */
void heap_range(uintptr_t *lo, size_t *len);

void *heap_malloc(size_t n);                 /* NULL + ENOMEM when full */
/* heap_malloc for the interposer's entry points, which tail-call it:
 * where heap_malloc returns NULL, it returns heap_direct_miss(n) (the
 * interposer's fallback; until it sets one, NULL and ENOMEM). */
extern void *(*heap_direct_miss)(size_t n);
void *heap_malloc_direct(size_t n);
void *heap_aligned(size_t align, size_t n);  /* align: a power of two */
void *heap_calloc(size_t n);
void *heap_realloc(void *p, size_t n);       /* p in the heap, n > 0 */
void heap_free(void *p);                     /* aborts on misuse */
size_t heap_usable_size(const void *p);      /* aborts on misuse */
int heap_owns(const void *p);
int heap_is_block(const void *p);            /* a live block's start */

/* A fork child: keep the parent's pool out of reach of the child's writes
 * (see heap.c) and stop allocating from it. */
void heap_fork_prepare(void);
/* A fork child about to fork: make its view of the pool its own first, so
 * that its children inherit a snapshot (fork.c).  Cheap when there is
 * nothing to do; heap_fork_prepare calls it too. */
void heap_fork_settle(void);
void heap_fork_parent(void);
void heap_fork_child(void);

struct heap_stats {
	uint64_t pages_used, pages_top, pages_total;
	uint64_t slabs, large_runs;
	uint64_t pages_retained;      /* in runs kept empty for reuse (retain.c) */
	uint64_t small_live, small_live_bytes;
	/* Free pages and the file system (see space.c). */
	uint64_t pages_free_backed;   /* free pages the file still holds */
	uint64_t pages_returned;      /* free pages punched out of the file (holes) */
	uint64_t punch_calls, back_calls;              /* fallocate calls made */
	uint64_t pages_punched_total, pages_backed_total;
};
void heap_stats(struct heap_stats *s);

/* Walk every invariant of DESIGN.md that can be checked from inside:
 * descriptors against the page map, bitmap bits only at block starts of
 * live runs, free runs not overlapping live ones, free lists inside their
 * slabs.  Returns the number of violations, each reported on fd (or none
 * when fd < 0). */
unsigned long heap_check(int fd);

#endif
