/* route.h: the per-call decision, inlined into every entry point.
 *
 * The fast path of an allocation is one compare and an indirect call into
 * jemalloc:
 *
 *	if (n >= route.min)          sizes the slow path must see
 *		slow path
 *	return transient.malloc(n)
 *
 * and of a free, one range check:
 *
 *	if (p - route.own_lo < route.own_span)   pointers btd must see
 *		slow path
 *	transient.free(p)
 *
 * route.min and the owned range are set so that exactly the calls that need
 * more than jemalloc fall out: before the constructor has run, or with
 * BTD_STATS on, min is 0 and the range is everything, so every call takes
 * the slow path, which counts it and serves it; otherwise min is the
 * smallest size the policy sends to the persistent heap (SIZE_MAX when none)
 * and the range is the mapped pool (empty when none) -- invariant 1 of
 * DESIGN.md, ownership in O(1).  The slow path also holds the reentrancy
 * guard: calls made from inside btd go to the transient allocator. */
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

struct route {
	size_t min;         /* sizes >= min take the slow path */
	uintptr_t own_lo;   /* pointers with p - own_lo < own_span too */
	uintptr_t own_span;
	intptr_t errno_off; /* &errno - thread pointer, the same in every thread */
};

extern struct route route;

void *route_alloc_slow(enum entry e, size_t n, size_t align, int zero);
void *route_realloc_slow(enum entry e, void *p, size_t n);
void route_free_slow(enum entry e, void *p);
size_t route_usable_size_slow(void *p);

/* errno survives free(): glibc promises it since 2.33 and programs rely on
 * it.  errno lives in libc's static TLS, at the same offset from the thread
 * pointer in every thread; knowing that offset makes its address one add
 * instead of a call to __errno_location() through the PLT.  Valid once
 * interpose_init() has run, which is before any free takes the fast path. */
static inline int *route_errno_fast(void)
{
	return (int *)((char *)__builtin_thread_pointer() + route.errno_off);
}

static inline int route_owns(const void *p)
{
	return (uintptr_t)p - route.own_lo < route.own_span;
}

static inline void *route_malloc(enum entry e, size_t n)
{
	if (unlikely(n >= route.min))
		return route_alloc_slow(e, n, 0, 0);
	return transient.malloc(n);
}

/* align is a power of two. */
static inline void *route_aligned(enum entry e, size_t align, size_t n)
{
	if (unlikely(n >= route.min))
		return route_alloc_slow(e, n, align, 0);
	return transient.aligned_alloc(align, n);
}

static inline void route_free(enum entry e, void *p)
{
	if (unlikely(route_owns(p))) {
		route_free_slow(e, p);
		return;
	}
	int *err = route_errno_fast();
	int saved = *err;

	transient.free(p);
	*err = saved;
}

#ifdef __cplusplus
}
#endif

#endif
