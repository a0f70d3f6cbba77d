/* route.h: the per-call decision, inlined into every entry point.
 *
 * The fast path of an allocation is one compare with a thread-local
 * threshold and an indirect call into jemalloc:
 *
 *	if (n >= route_min)          sizes the slow path must see
 *		slow path
 *	return transient.malloc(n)
 *
 * and of a free, one range check:
 *
 *	if (p - route.own_lo < route.own_span)   pointers btd must see
 *		slow path
 *	transient.free(p)
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
 * inside btd go to the transient allocator. */
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
	uintptr_t own_lo;   /* pointers with p - own_lo < own_span take the slow path */
	uintptr_t own_span;
	intptr_t errno_off; /* &errno - thread pointer, the same in every thread */
};

extern struct route route;
extern BTD_TLS size_t route_min;

void *route_alloc_slow(enum entry e, size_t n, size_t align, int zero, const void *caller);
void *route_realloc_slow(enum entry e, void *p, size_t n, const void *caller);
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

/* The caller's address, for BTD_TAG_SITES: these inline functions sit in
 * the exported entry points, so this is the program's call site. */
#define ROUTE_CALLER __builtin_return_address(0)

static inline void *route_malloc(enum entry e, size_t n)
{
	if (unlikely(n >= route_min))
		return route_alloc_slow(e, n, 0, 0, ROUTE_CALLER);
	return transient.malloc(n);
}

/* align is a power of two. */
static inline void *route_aligned(enum entry e, size_t align, size_t n)
{
	if (unlikely(n >= route_min))
		return route_alloc_slow(e, n, align, 0, ROUTE_CALLER);
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
