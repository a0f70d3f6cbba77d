/* alloc.c: the C allocation entry points, with POSIX and glibc edge cases.
 *
 * Compiled with BTD_PRELOAD these are malloc, free, ... exported by
 * libbtd_preload.so; without it they are interpose_malloc, ... for the unit
 * tests (see interpose.h).  Each is a thin shell around route.h: the edge
 * cases are decided here, the route there.
 *
 * Semantics chosen where the standards leave room, following glibc, whose
 * behaviour the unmodified programs we serve were written against:
 *   malloc(0), calloc(0, n)  a unique, freeable pointer
 *   realloc(NULL, n)         malloc(n)
 *   realloc(p, 0)            free(p), returns NULL, errno untouched
 *   realloc failure          NULL, errno ENOMEM, the block left as it was
 *   calloc/reallocarray      count * size overflow: NULL, errno ENOMEM
 *   posix_memalign           EINVAL unless align is a power of two and a
 *                            multiple of sizeof(void *); ENOMEM (errno is
 *                            ENOMEM too, as glibc leaves it); *out is
 *                            written only on success
 *   aligned_alloc            EINVAL unless align is a power of two; any size
 *                            (C17 DR 460: no need to be a multiple)
 *   memalign                 align rounded up to a power of two (as glibc)
 *   valloc, pvalloc          page-aligned; pvalloc rounds the size up to
 *                            whole pages, and pvalloc(0) is one page
 *   free                     keeps errno (route.h) */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/auxv.h>

#include "interpose.h"
#include "route.h"

#ifdef BTD_PRELOAD
#define ENTRY(name) name
#pragma GCC visibility push(default)
#else
#define ENTRY(name) interpose_##name
#endif

static size_t page_size(void)
{
	static size_t page;

	if (unlikely(!page))
		page = getauxval(AT_PAGESZ);
	return page;
}

void *ENTRY(malloc)(size_t n)
{
	return route_malloc(ENTRY_MALLOC, n);
}

void ENTRY(free)(void *p)
{
	route_free(ENTRY_FREE, p);
}

void *ENTRY(calloc)(size_t count, size_t n)
{
	size_t total;

	if (unlikely(__builtin_mul_overflow(count, n, &total))) {
		errno = ENOMEM;
		return NULL;
	}
	if (unlikely(total >= route_min))
		return route_alloc_past_min(ENTRY_CALLOC, total, 0, 1, ROUTE_CALLER);
	return transient.calloc(1, total);
}

static inline void *realloc_entry(enum entry e, void *p, size_t n, const void *caller)
{
	if (unlikely(route_owns(p) || n >= route_min || n == 0))
		return route_realloc_slow(e, p, n, caller);
	void *q = transient.realloc(p, n);

	/* jemalloc 5.3 fails a request above its largest class without
	 * setting errno; glibc sets ENOMEM. */
	if (unlikely(!q))
		errno = ENOMEM;
	return q;
}

void *ENTRY(realloc)(void *p, size_t n)
{
	return realloc_entry(ENTRY_REALLOC, p, n, ROUTE_CALLER);
}

void *ENTRY(reallocarray)(void *p, size_t count, size_t n)
{
	size_t total;

	if (unlikely(__builtin_mul_overflow(count, n, &total))) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc_entry(ENTRY_REALLOCARRAY, p, total, ROUTE_CALLER);
}

static inline int is_pow2(size_t a)
{
	return a && !(a & (a - 1));
}

int ENTRY(posix_memalign)(void **out, size_t align, size_t n)
{
	/* jemalloc's posix_memalign keeps the same contract: tail-call it. */
	if (likely(n < route_min))
		return transient.posix_memalign(out, align, n);
	if (unlikely(!is_pow2(align) || align % sizeof(void *)))
		return EINVAL;
	void *p = route_alloc_past_min(ENTRY_POSIX_MEMALIGN, n, align, 0, ROUTE_CALLER);

	if (unlikely(!p))
		return ENOMEM;
	*out = p;
	return 0;
}

void *ENTRY(aligned_alloc)(size_t align, size_t n)
{
	if (unlikely(!is_pow2(align))) {
		errno = EINVAL;
		return NULL;
	}
	return route_aligned(ENTRY_ALIGNED_ALLOC, align, n);
}

/* glibc's memalign: any alignment, rounded up to a power of two. */
static void *memalign_entry(enum entry e, size_t align, size_t n)
{
	if (align <= 1) {
		align = 1;
	} else if (!is_pow2(align)) {
		if (align > SIZE_MAX / 2 + 1) {
			errno = EINVAL;
			return NULL;
		}
		align = (size_t)1 << (64 - __builtin_clzll((unsigned long long)align));
	}
	return route_aligned(e, align, n);
}

void *ENTRY(memalign)(size_t align, size_t n)
{
	return memalign_entry(ENTRY_MEMALIGN, align, n);
}

void *ENTRY(valloc)(size_t n)
{
	return route_aligned(ENTRY_VALLOC, page_size(), n);
}

void *ENTRY(pvalloc)(size_t n)
{
	size_t page = page_size();
	size_t rounded;

	if (unlikely(__builtin_add_overflow(n ? n : 1, page - 1, &rounded))) {
		errno = ENOMEM;
		return NULL;
	}
	return route_aligned(ENTRY_PVALLOC, page, rounded & ~(page - 1));
}

size_t ENTRY(malloc_usable_size)(void *p)
{
	if (unlikely(route_owns(p)))
		return route_usable_size_slow(p);
	return transient.usable_size(p);
}

#ifdef BTD_PRELOAD
/* Old names that some programs still call.  cfree left glibc's API in 2.26
 * but old binaries bind to it; the __libc_ names are glibc's internal
 * aliases, which a few programs and libraries call directly.  Were they left
 * out, glibc's copies would run and free jemalloc's blocks into glibc. */
#define ALIAS(name, target) \
	extern __typeof(target) name __attribute__((alias(#target), copy(target)))

void cfree(void *p);
void cfree(void *p)
{
	route_free(ENTRY_FREE, p);
}

ALIAS(__libc_malloc, malloc);
ALIAS(__libc_free, free);
ALIAS(__libc_calloc, calloc);
ALIAS(__libc_realloc, realloc);
ALIAS(__libc_memalign, memalign);
ALIAS(__libc_valloc, valloc);
ALIAS(__libc_pvalloc, pvalloc);
ALIAS(__posix_memalign, posix_memalign);
#pragma GCC visibility pop
#endif
