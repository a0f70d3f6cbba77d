/* route.h: the per-call decision, inlined into every entry point.
 *
 * The fast path of an allocation is one compare with a thread-local
 * threshold and an indirect call into jemalloc:
 *
 *	if (n >= route_min)          sizes the slow path must see
 *		persistent path, or slow path
 *	return transient.malloc(n)   a tail call
 *
 * and of a free, one range check and an indirect call:
 *
 *	if (p - route.own_lo < route.own_span)   pointers btd must see
 *		heap_free(p) (a tail call), or slow path
 *	transient.free(p)            a tail call
 *
 * route_min starts at 0 in every thread, so a thread's first allocation
 * takes the slow path, which sets it from the policy: SIZE_MAX when nothing
 * goes to the persistent heap, BTD_LARGE_MIN under `large`, 0 under `all`,
 * with BTD_STATS or BTD_TAG_SITES (every call must be seen), and while the
 * thread is tagged (btd_tag_begin).  Being per thread, tagging one thread
 * costs the others nothing.  The owned range is everything until the
 * constructor has run or while stats are on, else the pool's data area
 * (empty until the pool is open) -- invariant 1 of DESIGN.md, ownership in
 * O(1).  The slow path also holds the reentrancy guard: calls made from
 * inside btd go to the transient allocator.
 *
 * The persistent path: once the pool is open under `all` or `large`, with
 * no stats and no call-site tagging, route.direct_min is the policy's
 * threshold, and an allocation at or above it goes from the entry point
 * straight to heap_malloc (heap_aligned, heap_calloc) -- unless the thread
 * is inside btd (route_depth, invariant 6), or the heap says no (NULL: the
 * slow path then falls back to jemalloc, heap_refused in route.c).  A free
 * of an owned pointer goes straight to heap_free (a tail call) when
 * route.own_lo is not 0: it is the pool's base only after the constructor,
 * with stats off, once the owned range is the pool's data (before, the
 * range is everything or nothing from 0, and a torn read of the pair
 * (own_lo, own_span) while the pool opens gives an empty range or one from
 * 0 -- never a foreign pointer to heap_free).  A fork child and an exiting
 * process set direct_min to SIZE_MAX; their frees of pool blocks still go
 * to heap_free, which leaves the frozen heap alone.
 *
 * errno: free keeps it -- the persistent heap's free sets none (its slow
 * paths put back what a failed punch or msync set), and neither does
 * jemalloc's: its calls of madvise, munmap, mmap and mprotect go to
 * wrappers that keep errno (keep_errno.c; where they cannot be put in
 * place, transient.free saves errno around jemalloc's free).  The
 * allocation paths set ENOMEM on failure and may leave errno changed on
 * success, as glibc's may. */
#ifndef BTD_INTERPOSE_ROUTE_H
#define BTD_INTERPOSE_ROUTE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/compiler.h"
#include "entry.h"
#include "transient.h"

#ifdef __cplusplus
extern "C" {
#endif

#include "../heap/heap.h"

struct route {
	uintptr_t own_lo;   /* pointers with p - own_lo < own_span take the slow path */
	uintptr_t own_span;
	size_t direct_min;  /* sizes from here up go straight to the heap */
};

extern struct route route;
extern BTD_TLS size_t route_min;
/* > 0 while this thread runs btd's own code: its allocations go transient
 * (invariant 6, the allocator never allocates through itself). */
extern BTD_TLS unsigned route_depth;

void *route_alloc_slow(enum entry e, size_t n, size_t align, int zero, const void *caller);
void *route_realloc_slow(enum entry e, void *p, size_t n, const void *caller);
void route_free_slow(enum entry e, void *p) __attribute__((nothrow));
#ifdef __cplusplus
/* heap_free throws nothing (it is C): said here so that the delete
 * operators tail-call it (and see transient.h, TRANSIENT_NOEXCEPT). */
void heap_free(void *p) __attribute__((nothrow));
#endif
size_t route_usable_size_slow(void *p);

static inline int route_owns(const void *p)
{
	return (uintptr_t)p - route.own_lo < route.own_span;
}

/* The caller's address, for BTD_TAG_SITES: these inline functions sit in
 * the exported entry points, so this is the program's call site. */
#define ROUTE_CALLER __builtin_return_address(0)

/* Whether an allocation of n bytes goes straight to the heap. */
static inline int route_direct(size_t n)
{
	return n >= route.direct_min && !route_depth;
}

/* The part of an entry point past n >= route_min: the heap, or the slow
 * path (which also serves what the heap refused).  align is 0 or a power
 * of two. */
static inline void *route_alloc_past_min(enum entry e, size_t n, size_t align, int zero,
					 const void *caller)
{
	if (likely(route_direct(n))) {
		if (!align && !zero)
			return heap_malloc_direct(n); /* a tail call (heap.h) */
		void *p = align ? heap_aligned(align, n) : heap_calloc(n);

		if (likely(p))
			return p;
	}
	return route_alloc_slow(e, n, align, zero, caller);
}

static inline void *route_malloc(enum entry e, size_t n)
{
	if (unlikely(n >= route_min))
		return route_alloc_past_min(e, n, 0, 0, ROUTE_CALLER);
	return transient.malloc(n);
}

/* align is a power of two. */
static inline void *route_aligned(enum entry e, size_t align, size_t n)
{
	if (unlikely(n >= route_min))
		return route_alloc_past_min(e, n, align, 0, ROUTE_CALLER);
	return transient.aligned_alloc(align, n);
}

/* Both frees are tail calls: neither sets errno (see above). */
static inline void route_free(enum entry e, void *p)
{
	uintptr_t lo = route.own_lo;

	if (unlikely((uintptr_t)p - lo < route.own_span)) {
		if (likely(lo))
			heap_free(p); /* the pool's (see above) */
		else
			route_free_slow(e, p);
		return;
	}
	transient.free(p); /* a tail call: it keeps errno (keep_errno.c) */
}

#ifdef __cplusplus
}
#endif

#endif
