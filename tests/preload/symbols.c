/* symbols.c: every malloc-family symbol a program can reach resolves to
 * btd, and behaves.  Looked up both through the program's own references
 * and with dlsym(RTLD_DEFAULT), the way libraries that wrap malloc find it. */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"

static const char *const names[] = {
	"malloc", "free", "calloc", "realloc", "reallocarray", "posix_memalign",
	"aligned_alloc", "memalign", "valloc", "pvalloc", "malloc_usable_size",
	"cfree", "__libc_malloc", "__libc_free", "__libc_calloc", "__libc_realloc",
	"__libc_memalign", "__libc_valloc", "__libc_pvalloc", "__posix_memalign",
};

int main(void)
{
	const void *direct[] = {
		(void *)malloc, (void *)free, (void *)calloc, (void *)realloc,
		(void *)reallocarray, (void *)posix_memalign, (void *)aligned_alloc,
		(void *)memalign, (void *)valloc, (void *)pvalloc,
		(void *)malloc_usable_size,
	};

	for (size_t i = 0; i < sizeof(direct) / sizeof(direct[0]); i++)
		CHECK(from_btd(direct[i]), "%s resolves elsewhere", names[i]);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		void *f = dlsym(RTLD_DEFAULT, names[i]);

		CHECK(f && from_btd(f), "dlsym(%s) resolves elsewhere", names[i]);
	}

	/* Each one, through the exported symbols. */
	char *p = malloc(0);
	CHECK(p != NULL, "malloc(0)");
	p = realloc(p, 100);
	CHECK(p && malloc_usable_size(p) >= 100, "realloc");
	errno = 55;
	free(p);
	CHECK(errno == 55, "free changed errno to %d", errno);
	size_t volatile half = SIZE_MAX / 2;
	CHECK(calloc(half, 4) == NULL && errno == ENOMEM, "calloc overflow");
	p = reallocarray(NULL, 10, 10);
	CHECK(p != NULL, "reallocarray");
	free(p);
	void *q = (void *)1;
	CHECK(posix_memalign(&q, 3, 10) == EINVAL && q == (void *)1, "posix_memalign EINVAL");
	CHECK(posix_memalign(&q, 256, 10) == 0 && ((uintptr_t)q & 255) == 0, "posix_memalign");
	free(q);
	q = aligned_alloc(64, 100);
	CHECK(q && ((uintptr_t)q & 63) == 0, "aligned_alloc");
	free(q);
	q = memalign(24, 10);
	CHECK(q && ((uintptr_t)q & 31) == 0, "memalign");
	free(q);
	long page = sysconf(_SC_PAGESIZE);
	q = valloc(1);
	CHECK(q && ((uintptr_t)q & (page - 1)) == 0, "valloc");
	free(q);
	q = pvalloc(0);
	CHECK(q && malloc_usable_size(q) >= (size_t)page, "pvalloc(0)");
	void (*cfree_fn)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "cfree");
	cfree_fn(q);
	void *(*libc_malloc)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "__libc_malloc");
	q = libc_malloc(10);
	free(q); /* a block from one name, freed by another: one allocator */
	puts("symbols: ok");
	return 0;
}
