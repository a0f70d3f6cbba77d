/* free_errno.c: free() keeps errno on jemalloc's slow paths too.
 *
 * Run with MALLOC_CONF=dirty_decay_ms:0,muzzy_decay_ms:0, so that every
 * extent jemalloc gets back is purged (madvise) inside the free that
 * returned it.  Each free below runs with errno holding a sentinel, along
 * the paths where jemalloc makes system calls on free's behalf:
 *   large blocks (above the thread cache's largest class), each purged at
 *     its free; huge ones (jemalloc's huge arena, 8 MiB and up), which
 *     jemalloc 5.3 keeps for reuse here rather than purge at once
 *   small blocks whose slabs empty when the thread cache flushes them
 *   frees in another thread, and in a TSD destructor at thread exit, of
 *     blocks of the main thread's arena
 * To make those system calls fail, one page of each block (or slab) is
 * locked with mlock first: madvise(MADV_DONTNEED) and MADV_FREE fail with
 * EINVAL on locked pages, so a purge that leaked its errno would show here.
 * The program checks that this failure injection works (a direct madvise
 * on a locked page must fail) and says so; where mlock is refused
 * (RLIMIT_MEMLOCK) the frees are still checked, without the failures.
 * Without interpose/keep_errno.c (jemalloc's calls of madvise and the rest
 * keep errno), the large, small, cross-thread and TSD-destructor frees here
 * fail (EINVAL).  It also runs behind madvise_shim.c, and checks that the
 * program's own failing calls still set errno. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"

#define SENTINEL 4242

static long page;
static int locking; /* 1 when mlock works here */

/* Lock the page holding p (best effort; see above). */
static void lock_page(const void *p)
{
	if (locking)
		mlock((const void *)((uintptr_t)p & ~(uintptr_t)(page - 1)), (size_t)page);
}

static void free_keeps_errno(void *p, const char *what)
{
	errno = SENTINEL;
	free(p);
	CHECK(errno == SENTINEL, "free of a %s block changed errno to %d", what, errno);
}

/* Does a purge of a locked page fail?  Then the frees below make failing
 * system calls, and a leaked errno would be seen. */
static void probe_locking(void)
{
	void *m = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(m != MAP_FAILED, "mmap");
	if (mlock(m, (size_t)page) == 0) {
		errno = 0;
		locking = madvise(m, (size_t)page, MADV_DONTNEED) != 0;
		CHECK(!locking || errno == EINVAL, "the program's failing madvise set errno %d", errno);
		munlock(m, (size_t)page);
	}
	munmap(m, (size_t)page);
	printf("free_errno: purges of locked pages %s\n",
	       locking ? "fail (EINVAL): the frees below make failing system calls"
		       : "cannot be made to fail here (mlock refused)");
}

/* The program's own failing madvise, munmap, mmap and mprotect set errno:
 * only jemalloc's calls keep it. */
static void program_calls_set_errno(void)
{
	char *bad = (char *)(uintptr_t)page + 1; /* not page-aligned */

	errno = 0;
	CHECK(madvise(bad, (size_t)page, MADV_DONTNEED) == -1 && errno == EINVAL,
	      "madvise of an unaligned address: errno %d", errno);
	errno = 0;
	CHECK(munmap(bad, (size_t)page) == -1 && errno == EINVAL,
	      "munmap of an unaligned address: errno %d", errno);
	errno = 0;
	CHECK(mprotect(bad, (size_t)page, PROT_READ) == -1 && errno == EINVAL,
	      "mprotect of an unaligned address: errno %d", errno);
	errno = 0;
	CHECK(mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED &&
	      errno == EINVAL, "mmap of 0 bytes: errno %d", errno);
	errno = 0;
	CHECK(mmap(NULL, (size_t)page, PROT_READ, MAP_PRIVATE, 987654, 0) == MAP_FAILED &&
	      errno == EBADF, "mmap of a closed descriptor: errno %d", errno);
}

static void large_and_huge(void)
{
	static const size_t sizes[] = { 48 << 10, 100 << 10, 1 << 20, 3 << 20,
					9 << 20, 17 << 20, 64 << 20 };

	for (int round = 0; round < 4; round++)
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			char *p = malloc(sizes[i]);

			CHECK(p, "malloc(%zu)", sizes[i]);
			p[0] = 1;
			p[sizes[i] - 1] = 2;
			lock_page(p);
			free_keeps_errno(p, sizes[i] >= (8 << 20) ? "huge" : "large");
		}
}

/* Enough small blocks that their slabs fill, then empty as the thread
 * cache flushes them back: each empty slab is purged. */
static void small_flush(size_t size, unsigned n)
{
	char **v = malloc(n * sizeof(*v));

	CHECK(v, "malloc");
	for (unsigned i = 0; i < n; i++) {
		v[i] = malloc(size);
		CHECK(v[i], "malloc(%zu)", size);
		v[i][0] = (char)i;
		if (i % 512 == 0)
			lock_page(v[i]);
	}
	for (unsigned i = 0; i < n; i++)
		free_keeps_errno(v[i], "small");
	free(v);
}

static char *pending[256];
static unsigned npending;
static pthread_key_t key;
static int destructor_errno = SENTINEL;
static int destructor_ran;

/* At thread exit, after (or before: the order is unspecified) jemalloc's
 * own TSD cleanup. */
static void at_thread_exit(void *arg)
{
	(void)arg;
	errno = SENTINEL;
	for (unsigned i = 0; i < npending; i++) {
		free(pending[i]);
		if (errno != SENTINEL && destructor_errno == SENTINEL)
			destructor_errno = errno;
	}
	destructor_ran = 1;
}

/* Blocks of 16 KiB and more that another thread allocated (jemalloc
 * merges their extents back in the allocating arena): once, a version
 * whose jemalloc hooks called jemalloc's own merge hung here. */
static char *big[4];

static void *free_big(void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < 4; i++)
		free_keeps_errno(big[i], "16-64 KiB, another thread's");
	return NULL;
}

static void others_big_blocks(void)
{
	pthread_t t;

	for (unsigned i = 0; i < 4; i++)
		CHECK(big[i] = malloc((size_t)16384 << (i % 3)), "malloc");
	CHECK(pthread_create(&t, NULL, free_big, NULL) == 0, "pthread_create");
	CHECK(pthread_join(t, NULL) == 0, "pthread_join");
}

static void *thread_main(void *arg)
{
	(void)arg;
	pthread_setspecific(key, (void *)1);
	small_flush(96, 20000);
	large_and_huge();
	/* The main thread's blocks, freed here: another arena's. */
	for (unsigned i = 0; i < npending / 2; i++)
		free_keeps_errno(pending[i], "cross-thread");
	for (unsigned i = 0; i < npending - npending / 2; i++)
		pending[i] = pending[npending / 2 + i];
	npending -= npending / 2;
	return NULL;
}

int main(void)
{
	expect_btd();
	others_big_blocks();
	page = sysconf(_SC_PAGESIZE);
	program_calls_set_errno();
	probe_locking();

	large_and_huge();
	small_flush(64, 50000);
	small_flush(3072, 5000);
	for (npending = 0; npending < 256; npending++) {
		size_t n = npending % 4 ? 200 : 200 << 10;

		pending[npending] = malloc(n);
		CHECK(pending[npending], "malloc");
		pending[npending][0] = 1;
		lock_page(pending[npending]);
	}
	CHECK(pthread_key_create(&key, at_thread_exit) == 0, "pthread_key_create");
	pthread_t t;

	CHECK(pthread_create(&t, NULL, thread_main, NULL) == 0, "pthread_create");
	CHECK(pthread_join(t, NULL) == 0, "pthread_join");
	CHECK(destructor_ran, "the TSD destructor did not run");
	CHECK(destructor_errno == SENTINEL, "free in a TSD destructor changed errno to %d",
	      destructor_errno);
	puts("free_errno: ok");
	return 0;
}
