/* madvise_shim.c: an LD_PRELOAD shim in front of btd that forwards madvise
 * with a call of its own (as tracing and profiling shims do), so that the
 * call glibc sees does not return into jemalloc.  free_errno runs with it:
 * free must keep errno all the same (interpose/keep_errno.c). */
#include <dlfcn.h>
#include <stddef.h>
#include <sys/mman.h>

static long calls;

int madvise(void *addr, size_t len, int advice)
{
	static int (*next)(void *, size_t, int);

	if (!next)
		*(void **)&next = dlsym(RTLD_NEXT, "madvise");
	int r = next(addr, len, advice);

	__atomic_add_fetch(&calls, 1, __ATOMIC_RELAXED); /* not a tail call */
	return r;
}
