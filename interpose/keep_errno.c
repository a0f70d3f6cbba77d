/* keep_errno.c: jemalloc's system calls leave errno alone, so that free()
 * can be a bare tail call into jemalloc and still keep errno.
 *
 * free() keeps errno: glibc promises it since 2.33, and programs rely on
 * it.  jemalloc's free makes system calls only on its slow paths -- a
 * purge of dirty pages (madvise), an unmap, a decommit (mmap over the
 * range), a protection change -- and a failed one sets errno.  Saving and
 * restoring errno around every free costs the entry point a frame and a
 * call that is not a tail call: 13 more instructions per malloc/free pair,
 * paid by every free for a failure that almost never happens.
 *
 * So the preload library defines the four calls that jemalloc imports and
 * its deallocation paths can make: madvise, munmap, mmap and mprotect.
 * Called from jemalloc's code (the return address lies in its executable
 * segment, found when transient_bind binds its fast paths), a wrapper makes
 * the system call and leaves errno as it was; jemalloc itself looks only at
 * the return values there.  Called from anywhere else -- the program, its
 * libraries, btd -- it is what glibc's is on Linux: the same system call,
 * -1 (MAP_FAILED) and errno on failure.  glibc's own internal calls of
 * these do not go through the dynamic linker and are unaffected.
 *
 * tests/preload/free_errno.c makes jemalloc's purges fail (mlock'd pages)
 * along every path where its free makes system calls and checks errno
 * after each free, and checks that a program's own failing madvise still
 * sets errno.  Extent hooks were tried first: jemalloc 5.3's default merge
 * hook, called from a hook of ours, deadlocks on a lock its caller holds. */
/* The 64-bit file offset switch would rename mmap to mmap64 here; jemalloc
 * imports mmap (off_t is 64 bits on every 64-bit target anyway). */
#undef _FILE_OFFSET_BITS
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../common/compiler.h"
#include "transient.h"

static inline int from_jemalloc(const void *ret)
{
	return (uintptr_t)ret - transient_text.lo < transient_text.span;
}

/* The system call nr, errno kept when jemalloc asked for it. */
#define CALL(ret, nr, ...)                                                   \
	do {                                                                 \
		if (from_jemalloc(__builtin_return_address(0))) {             \
			int saved_ = errno;                                  \
			(ret) = syscall(nr, __VA_ARGS__);                    \
			errno = saved_;                                      \
		} else {                                                     \
			(ret) = syscall(nr, __VA_ARGS__);                    \
		}                                                            \
	} while (0)

BTD_EXPORT int madvise(void *addr, size_t len, int advice)
{
	long r;

	CALL(r, SYS_madvise, addr, len, advice);
	return (int)r;
}

BTD_EXPORT int munmap(void *addr, size_t len)
{
	long r;

	CALL(r, SYS_munmap, addr, len);
	return (int)r;
}

BTD_EXPORT int mprotect(void *addr, size_t len, int prot)
{
	long r;

	CALL(r, SYS_mprotect, addr, len, prot);
	return (int)r;
}

BTD_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	long r;

	CALL(r, SYS_mmap, addr, len, prot, flags, fd, off);
	return (void *)r;
}
