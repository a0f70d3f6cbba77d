/* transient.c: jemalloc as the transient allocator (see transient.h). */
#include "transient.h"

#include <dlfcn.h>
#include <errno.h>
#include <jemalloc/jemalloc.h>
#include <string.h>

#include "../common/log.h"

/* jemalloc's *allocx never sees a size of 0 (undefined there). */
static void *shim_malloc(size_t n)
{
	void *p = mallocx(n ? n : 1, 0);

	if (!p)
		errno = ENOMEM;
	return p;
}

static void *shim_calloc(size_t count, size_t n)
{
	size_t total;

	if (__builtin_mul_overflow(count, n, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	void *p = mallocx(total ? total : 1, MALLOCX_ZERO);

	if (!p)
		errno = ENOMEM;
	return p;
}

static void *shim_realloc(void *p, size_t n)
{
	if (!p)
		return shim_malloc(n);
	void *q = rallocx(p, n ? n : 1, 0);

	if (!q)
		errno = ENOMEM;
	return q;
}

/* Before the bind, free keeps errno here (keep_errno.c needs jemalloc's
 * text, which the bind finds). */
static void shim_free(void *p)
{
	int saved = errno;

	if (p)
		dallocx(p, 0);
	errno = saved;
}

static void *shim_aligned_alloc(size_t align, size_t n)
{
	void *p = mallocx(n ? n : 1, MALLOCX_ALIGN(align));

	if (!p)
		errno = ENOMEM;
	return p;
}

/* POSIX's contract: EINVAL for an alignment that is not a power of two
 * multiple of sizeof(void *), ENOMEM, and *out written only on success. */
static int shim_posix_memalign(void **out, size_t align, size_t n)
{
	if (!align || (align & (align - 1)) || align % sizeof(void *))
		return EINVAL;
	void *p = mallocx(n ? n : 1, MALLOCX_ALIGN(align));

	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

static size_t shim_usable_size(void *p)
{
	return p ? sallocx(p, 0) : 0;
}

struct transient_ops transient = {
	.malloc = shim_malloc,
	.calloc = shim_calloc,
	.realloc = shim_realloc,
	.free = shim_free,
	.aligned_alloc = shim_aligned_alloc,
	.posix_memalign = shim_posix_memalign,
	.usable_size = shim_usable_size,
};

static int bound;

/* jemalloc's free where its system calls could not be made to keep errno
 * (keep_errno.c): errno saved around it. */
static void (*jemalloc_free)(void *p);

static void free_keeping_errno(void *p)
{
	int saved = errno;

	jemalloc_free(p);
	errno = saved;
}

int transient_is_bound(void)
{
	return bound;
}

/* Resolve name in jemalloc's own object, and refuse anything that lives
 * elsewhere (glibc's malloc must never serve a block jemalloc frees). */
static void *resolve(void *handle, const char *name, const void *jemalloc_base)
{
	void *f = dlsym(handle, name);
	Dl_info info;

	if (!f || !dladdr(f, &info) || info.dli_fbase != jemalloc_base) {
		log_msg(LOG_WARN, "jemalloc's %s was not found in libjemalloc.so.2: "
			"staying on its mallocx() entry points (slower); "
			"reinstall libjemalloc2 to fix", name);
		return NULL;
	}
	return f;
}

int transient_bind(void)
{
	void *h = dlopen("libjemalloc.so.2", RTLD_NOW | RTLD_NOLOAD);
	Dl_info info;

	if (!h || !dladdr((void *)mallocx, &info)) {
		log_msg(LOG_WARN, "libjemalloc.so.2 is not loaded: staying on its "
			"mallocx() entry points (slower); reinstall libjemalloc2 to fix");
		return -1;
	}
	struct transient_ops ops;

	*(void **)&ops.malloc = resolve(h, "malloc", info.dli_fbase);
	*(void **)&ops.calloc = resolve(h, "calloc", info.dli_fbase);
	*(void **)&ops.realloc = resolve(h, "realloc", info.dli_fbase);
	*(void **)&ops.free = resolve(h, "free", info.dli_fbase);
	*(void **)&ops.aligned_alloc = resolve(h, "aligned_alloc", info.dli_fbase);
	*(void **)&ops.posix_memalign = resolve(h, "posix_memalign", info.dli_fbase);
	*(void **)&ops.usable_size = resolve(h, "malloc_usable_size", info.dli_fbase);
	if (!ops.malloc || !ops.calloc || !ops.realloc || !ops.free ||
	    !ops.aligned_alloc || !ops.posix_memalign || !ops.usable_size)
		return -1;
	/* free keeps errno: jemalloc's system calls keep it from here on
	 * (keep_errno.c), else a save and restore wraps its free. */
	if (keep_errno_patch((void *)mallocx)) {
		log_msg(LOG_INFO, "jemalloc's system calls could not be made to keep errno: "
			"free saves it instead (slower)");
		jemalloc_free = ops.free;
		ops.free = free_keeping_errno;
	}
	/* Each pointer is one aligned word: a concurrent caller sees the shim or
	 * jemalloc's entry, and both serve the same heap. */
	__atomic_store_n(&transient.malloc, ops.malloc, __ATOMIC_RELEASE);
	__atomic_store_n(&transient.calloc, ops.calloc, __ATOMIC_RELEASE);
	__atomic_store_n(&transient.realloc, ops.realloc, __ATOMIC_RELEASE);
	__atomic_store_n(&transient.free, ops.free, __ATOMIC_RELEASE);
	__atomic_store_n(&transient.aligned_alloc, ops.aligned_alloc, __ATOMIC_RELEASE);
	__atomic_store_n(&transient.posix_memalign, ops.posix_memalign, __ATOMIC_RELEASE);
	__atomic_store_n(&transient.usable_size, ops.usable_size, __ATOMIC_RELEASE);
	bound = 1;
	return 0;
}
