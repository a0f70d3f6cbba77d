/* transient.h: the transient allocator, jemalloc, behind a table of its
 * entry points.
 *
 * The table starts out pointing at shims over jemalloc's mallocx() family,
 * which we reach by ordinary dynamic linking: they work before our
 * constructor has run and need no dlsym.  transient_bind(), called from the
 * constructor, swaps in jemalloc's own malloc/free/... found with
 * dlopen("libjemalloc.so.2", RTLD_NOLOAD) + dlsym on that handle: those have
 * jemalloc's thread-cache fast paths, which mallocx/dallocx lack in 5.3.
 * RTLD_NEXT would find glibc's malloc instead.  Both sets are the same
 * jemalloc, so a block allocated by one is freed by the other. */
#ifndef BTD_INTERPOSE_TRANSIENT_H
#define BTD_INTERPOSE_TRANSIENT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* In C++ (the delete operators, noexcept), a call that may throw keeps a
 * frame around it to call std::terminate from: free is declared to throw
 * nothing, so that a delete needs no frame around it for that. */
#ifdef __cplusplus
#define TRANSIENT_NOEXCEPT noexcept
#else
#define TRANSIENT_NOEXCEPT
#endif

struct transient_ops {
	void *(*malloc)(size_t n);
	void *(*calloc)(size_t count, size_t n);
	void *(*realloc)(void *p, size_t n); /* never called with n == 0 */
	void (*free)(void *p) TRANSIENT_NOEXCEPT;
	void *(*aligned_alloc)(size_t align, size_t n); /* align: a power of 2 */
	int (*posix_memalign)(void **out, size_t align, size_t n);
	size_t (*usable_size)(void *p);
};

extern struct transient_ops transient;

/* Swap in jemalloc's fast paths.  0 on success; on failure the shims stay
 * (correct, slower) and -1 is returned. */
int transient_bind(void);


/* 1 when the table holds jemalloc's own malloc/free (after a bind). */
int transient_is_bound(void);

/* keep_errno.c: point jemalloc's calls of madvise, munmap, mmap and
 * mprotect (the object holding jemalloc_code) at wrappers that keep
 * errno.  0 when every slot of them found was written (and one was);
 * -1 when none was found, or one could not be written. */
int keep_errno_patch(const void *jemalloc_code);

#ifdef __cplusplus
}
#endif

#endif
