/* test_alloc.c: POSIX and glibc edge cases of every C entry point.
 *
 * The same entry-point code the preload exports, linked as interpose_*.
 * Every case runs in two suites: "boot", before interpose_init (the
 * bootstrap shims over jemalloc's mallocx family), and "fast", after it
 * (jemalloc's own fast paths). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "../../interpose/interpose.h"
#include "../../interpose/stats.h"
#include "../../interpose/transient.h"

static void init_fast(void)
{
	char *env[] = { NULL };

	cr_assert_eq(interpose_init(env, 0), 0);
	cr_assert(transient_is_bound(), "jemalloc's fast paths were not bound");
}

static void init_boot(void)
{
	cr_assert(!transient_is_bound());
}

#define BOTH(name)                                                  \
	static void name##_body(void);                              \
	Test(boot, name, .init = init_boot) { name##_body(); }      \
	Test(fast, name, .init = init_fast) { name##_body(); }      \
	static void name##_body(void)

static size_t page(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

static int aligned(const void *p, size_t a)
{
	return ((uintptr_t)p & (a - 1)) == 0;
}

BOTH(malloc_zero_is_unique_and_freeable)
{
	void *a = interpose_malloc(0), *b = interpose_malloc(0);

	cr_assert_not_null(a);
	cr_assert_not_null(b);
	cr_assert_neq(a, b);
	interpose_free(a);
	interpose_free(b);
}

BOTH(malloc_huge_fails_with_enomem)
{
	errno = 0;
	cr_assert_null(interpose_malloc(SIZE_MAX));
	cr_assert_eq(errno, ENOMEM);
	errno = 0;
	cr_assert_null(interpose_malloc(PTRDIFF_MAX + (size_t)1));
	cr_assert_eq(errno, ENOMEM);
}

BOTH(malloc_usable_size_covers_request)
{
	for (size_t n = 1; n < (1u << 20); n = n * 3 + 1) {
		char *p = interpose_malloc(n);

		cr_assert_not_null(p);
		cr_assert_geq(interpose_malloc_usable_size(p), n);
		memset(p, 0xa5, interpose_malloc_usable_size(p));
		interpose_free(p);
	}
	cr_assert_eq(interpose_malloc_usable_size(NULL), 0);
}

BOTH(calloc_zeroes_and_checks_overflow)
{
	unsigned char *p = interpose_malloc(4096);

	memset(p, 0xff, 4096);
	interpose_free(p);
	p = interpose_calloc(64, 64); /* likely the block just freed */
	cr_assert_not_null(p);
	for (size_t i = 0; i < 4096; i++)
		cr_assert_eq(p[i], 0, "byte %zu not zeroed", i);
	interpose_free(p);

	void *z = interpose_calloc(0, 16);

	cr_assert_not_null(z);
	interpose_free(z);
	errno = 0;
	cr_assert_null(interpose_calloc(SIZE_MAX / 2, 3));
	cr_assert_eq(errno, ENOMEM);
	errno = 0;
	cr_assert_null(interpose_calloc((size_t)1 << 33, (size_t)1 << 33));
	cr_assert_eq(errno, ENOMEM);
}

BOTH(realloc_null_is_malloc)
{
	char *p = interpose_realloc(NULL, 100);

	cr_assert_not_null(p);
	memset(p, 1, 100);
	interpose_free(p);
	p = interpose_realloc(NULL, 0);
	cr_assert_not_null(p, "realloc(NULL, 0) is malloc(0): non-NULL");
	interpose_free(p);
}

BOTH(realloc_zero_frees_and_keeps_errno)
{
	char *p = interpose_malloc(32);

	errno = 4321;
	cr_assert_null(interpose_realloc(p, 0));
	cr_assert_eq(errno, 4321);
}

BOTH(realloc_keeps_contents_across_sizes)
{
	size_t n = 8;
	unsigned char *p = interpose_malloc(n);

	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)i;
	for (size_t m = 24; m < (4u << 20); m = m * 5 / 2) {
		p = interpose_realloc(p, m);
		cr_assert_not_null(p);
		for (size_t i = 0; i < n; i++)
			cr_assert_eq(p[i], (unsigned char)i, "byte %zu lost growing to %zu", i, m);
		for (size_t i = n; i < m; i++)
			p[i] = (unsigned char)i;
		n = m;
	}
	p = interpose_realloc(p, 10); /* shrink */
	for (size_t i = 0; i < 10; i++)
		cr_assert_eq(p[i], (unsigned char)i);
	interpose_free(p);
}

BOTH(realloc_failure_keeps_the_block)
{
	char *p = interpose_malloc(64);

	strcpy(p, "still here");
	errno = 0;
	cr_assert_null(interpose_realloc(p, SIZE_MAX - 4096));
	cr_assert_eq(errno, ENOMEM);
	cr_assert_str_eq(p, "still here");
	interpose_free(p);
}

BOTH(reallocarray_checks_overflow)
{
	char *p = interpose_reallocarray(NULL, 10, 10);

	cr_assert_not_null(p);
	strcpy(p, "intact");
	errno = 0;
	cr_assert_null(interpose_reallocarray(p, SIZE_MAX / 4, 8));
	cr_assert_eq(errno, ENOMEM);
	cr_assert_str_eq(p, "intact");
	p = interpose_reallocarray(p, 1000, 10);
	cr_assert_not_null(p);
	cr_assert_str_eq(p, "intact");
	interpose_free(p);
}

BOTH(posix_memalign_rejects_bad_alignments_without_touching_out)
{
	static const size_t bad[] = { 0, 1, 2, 4, 3, 24, 48, 100, SIZE_MAX };
	void *sentinel = (void *)0x1234, *p;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p = sentinel;
		errno = 77;
		cr_assert_eq(interpose_posix_memalign(&p, bad[i], 16), EINVAL,
			     "alignment %zu", bad[i]);
		cr_assert_eq(p, sentinel);
		cr_assert_eq(errno, 77, "posix_memalign reports, it does not set errno");
	}
	p = sentinel;
	cr_assert_eq(interpose_posix_memalign(&p, 64, SIZE_MAX - 100), ENOMEM);
	cr_assert_eq(p, sentinel);
}

BOTH(posix_memalign_aligns)
{
	for (size_t a = sizeof(void *); a <= ((size_t)1 << 21); a <<= 1) {
		void *p = NULL;

		cr_assert_eq(interpose_posix_memalign(&p, a, 100), 0);
		cr_assert(aligned(p, a), "%p not aligned to %zu", p, a);
		memset(p, 0, 100);
		interpose_free(p);
	}
	void *z = NULL;

	cr_assert_eq(interpose_posix_memalign(&z, 64, 0), 0);
	cr_assert_not_null(z);
	interpose_free(z);
}

BOTH(aligned_alloc_any_size_power_of_two_alignment)
{
	for (size_t a = 1; a <= 65536; a <<= 1) {
		void *p = interpose_aligned_alloc(a, a + 3); /* not a multiple */

		cr_assert_not_null(p, "alignment %zu", a);
		cr_assert(aligned(p, a));
		interpose_free(p);
	}
	errno = 0;
	cr_assert_null(interpose_aligned_alloc(24, 48));
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_null(interpose_aligned_alloc(0, 48));
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_null(interpose_aligned_alloc(64, SIZE_MAX - 100));
	cr_assert_eq(errno, ENOMEM);
}

BOTH(memalign_rounds_alignment_up)
{
	void *p = interpose_memalign(24, 10);

	cr_assert_not_null(p);
	cr_assert(aligned(p, 32), "24 rounds up to 32: %p", p);
	interpose_free(p);
	p = interpose_memalign(0, 10);
	cr_assert_not_null(p);
	interpose_free(p);
	p = interpose_memalign(4096, 1);
	cr_assert(aligned(p, 4096));
	interpose_free(p);
	errno = 0;
	cr_assert_null(interpose_memalign(SIZE_MAX, 10));
	cr_assert_eq(errno, EINVAL);
}

BOTH(valloc_and_pvalloc_are_page_aligned)
{
	void *v = interpose_valloc(10);

	cr_assert(aligned(v, page()));
	interpose_free(v);

	void *z = interpose_pvalloc(0);

	cr_assert_not_null(z);
	cr_assert(aligned(z, page()));
	cr_assert_geq(interpose_malloc_usable_size(z), page(), "pvalloc(0) is one page");
	interpose_free(z);

	void *q = interpose_pvalloc(page() + 1);

	cr_assert_geq(interpose_malloc_usable_size(q), 2 * page());
	memset(q, 7, 2 * page());
	interpose_free(q);
	errno = 0;
	cr_assert_null(interpose_pvalloc(SIZE_MAX - 10));
	cr_assert_eq(errno, ENOMEM);
}

BOTH(free_keeps_errno)
{
	void *p = interpose_malloc(100);
	void *big = interpose_malloc(8u << 20);

	errno = 9876;
	interpose_free(p);
	cr_assert_eq(errno, 9876);
	interpose_free(big); /* a large block: jemalloc may return pages */
	cr_assert_eq(errno, 9876);
	interpose_free(NULL);
	cr_assert_eq(errno, 9876);
}

Test(boot, counts_bootstrap_calls)
{
	struct stats_cell before = stats_get(ENTRY_MALLOC, ROUTE_BOOTSTRAP);
	void *p = interpose_malloc(1000);

	interpose_free(p);
	struct stats_cell after = stats_get(ENTRY_MALLOC, ROUTE_BOOTSTRAP);

	cr_assert_eq(after.calls, before.calls + 1);
	cr_assert_eq(after.bytes, before.bytes + 1000);
	cr_assert_eq(stats_get(ENTRY_FREE, ROUTE_BOOTSTRAP).calls, 1);
}

Test(stats, counts_every_entry_and_route_when_on)
{
	char *env[] = { "BTD_STATS=1", NULL };

	cr_assert_eq(interpose_init(env, 0), 0);
	void *p = interpose_malloc(10), *q = interpose_calloc(3, 5), *r;

	p = interpose_realloc(p, 300);
	cr_assert_eq(interpose_posix_memalign(&r, 64, 7), 0);
	interpose_free(p);
	interpose_free(q);
	interpose_free(r);
	cr_assert_eq(stats_get(ENTRY_MALLOC, ROUTE_TRANSIENT).calls, 1);
	cr_assert_eq(stats_get(ENTRY_MALLOC, ROUTE_TRANSIENT).bytes, 10);
	cr_assert_eq(stats_get(ENTRY_CALLOC, ROUTE_TRANSIENT).bytes, 15);
	cr_assert_eq(stats_get(ENTRY_REALLOC, ROUTE_TRANSIENT).bytes, 300);
	cr_assert_eq(stats_get(ENTRY_POSIX_MEMALIGN, ROUTE_TRANSIENT).calls, 1);
	cr_assert_eq(stats_get(ENTRY_FREE, ROUTE_TRANSIENT).calls, 3);
	cr_assert_geq(stats_get(ENTRY_FREE, ROUTE_TRANSIENT).bytes, 300 + 15 + 7);
}

Test(stats, off_means_nothing_is_counted)
{
	char *env[] = { "BTD_STATS=0", NULL };

	cr_assert_eq(interpose_init(env, 0), 0);
	interpose_free(interpose_malloc(10));
	cr_assert_eq(stats_get(ENTRY_MALLOC, ROUTE_TRANSIENT).calls, 0);
	cr_assert_eq(stats_get(ENTRY_FREE, ROUTE_TRANSIENT).calls, 0);
}
