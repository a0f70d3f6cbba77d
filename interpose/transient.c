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

static void shim_free(void *p)
{
	if (p)
		dallocx(p, 0);
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

/* ---- errno across free: jemalloc's extent hooks --------------------------
 *
 * glibc's free keeps errno (a promise since 2.33, and programs rely on it);
 * route_free tail-calls jemalloc's free and saves nothing, so jemalloc's
 * free must not change errno itself.  Why it does not:
 *
 *   - Its fast path (the thread cache) makes no system call.
 *   - Its slow paths -- a thread cache flush or GC, a large or huge block
 *     back to its arena, a slab that empties, decay with madvise
 *     (MADV_DONTNEED, MADV_FREE), an munmap when extents are not retained,
 *     the arena of a thread in its exit (TSD cleanup, no cache) -- make
 *     their system calls through the arena's extent hooks (purge_lazy,
 *     purge_forced, dalloc, decommit, destroy, split, merge).  Every arena
 *     gets the hooks below, which call jemalloc's default ones and put errno
 *     back: whatever fails in there (madvise fails with EINVAL on mlock'ed
 *     pages, MADV_FREE on old kernels) leaves no trace.
 *   - Its other calls set no errno: mutexes wait in futexes through glibc's
 *     internal syscalls (return codes, no errno), the decay clock is the
 *     vDSO's clock_gettime(CLOCK_MONOTONIC), which does not fail, and
 *     pthread_setspecific returns its error.  A successful system call never
 *     writes errno.  What remains is a mmap failing for jemalloc's own
 *     metadata (a thread's first call creating its arena), ENOMEM in a
 *     process already out of memory.
 *
 * Which arenas: jemalloc creates its automatic arenas lazily, with the
 * default hooks, at the lowest free index (arena_choose_hard), for a
 * thread's first call.  Every thread's first allocation takes the route's
 * slow path (route_min starts at 0 in each thread), which calls
 * transient_guard_arenas() first: the arenas from `guarded` up that exist
 * get the hooks, before this thread allocates from any of them -- and an
 * extent only reaches a purge in the arena it was allocated from.  The
 * constructor covers those made before it; under opt.percpu_arena (arenas
 * by CPU, not in order) it creates all automatic arenas with the hooks
 * (writing an absent one's extent_hooks creates it).  jemalloc's huge arena
 * (sizes from opt.oversize_threshold, 8 MiB, up) is made on demand with the
 * default hooks and cannot be made through extent_hooks, so the
 * constructor makes it by moving the thread there and back (thread.arena),
 * with the zero decay jemalloc gives it (arena_choose_huge), and hooks it.
 * Not covered: arenas a program makes itself (arenas.create) or gives hooks
 * of its own; their errno is theirs.  The cost: the hooks run only when
 * jemalloc maps, splits, merges or purges extents, never per block; and
 * jemalloc zeroes a recycled extent for calloc with memset instead of
 * madvise when the hooks are not its own (ehooks_zero). */
static extent_hooks_t *dflt;

static void *guard_alloc(extent_hooks_t *h, void *addr, size_t size, size_t align,
			 bool *zero, bool *commit, unsigned ind)
{
	int e = errno;
	void *r = dflt->alloc(dflt, addr, size, align, zero, commit, ind);

	(void)h;
	errno = e;
	return r;
}

static bool guard_dalloc(extent_hooks_t *h, void *addr, size_t size, bool committed,
			 unsigned ind)
{
	int e = errno;
	bool r = dflt->dalloc(dflt, addr, size, committed, ind);

	(void)h;
	errno = e;
	return r;
}

static void guard_destroy(extent_hooks_t *h, void *addr, size_t size, bool committed,
			  unsigned ind)
{
	int e = errno;

	(void)h;
	dflt->destroy(dflt, addr, size, committed, ind);
	errno = e;
}

/* commit, decommit, purge_lazy and purge_forced share one signature. */
#define GUARD_RANGE(name)                                                          \
	static bool guard_##name(extent_hooks_t *h, void *addr, size_t size,       \
				 size_t off, size_t len, unsigned ind)             \
	{                                                                          \
		int e = errno;                                                     \
		bool r = dflt->name(dflt, addr, size, off, len, ind);              \
                                                                                   \
		(void)h;                                                           \
		errno = e;                                                         \
		return r;                                                          \
	}
GUARD_RANGE(commit)
GUARD_RANGE(decommit)
GUARD_RANGE(purge_lazy)
GUARD_RANGE(purge_forced)

static bool guard_split(extent_hooks_t *h, void *addr, size_t size, size_t a, size_t b,
			bool committed, unsigned ind)
{
	int e = errno;
	bool r = dflt->split(dflt, addr, size, a, b, committed, ind);

	(void)h;
	errno = e;
	return r;
}

static bool guard_merge(extent_hooks_t *h, void *a, size_t na, void *b, size_t nb,
			bool committed, unsigned ind)
{
	int e = errno;
	bool r = dflt->merge(dflt, a, na, b, nb, committed, ind);

	(void)h;
	errno = e;
	return r;
}

static extent_hooks_t guard_hooks;
static extent_hooks_t *guard_hooks_ptr = &guard_hooks;

static size_t mib_hooks[3], mib_decay[3], mib_thread[2];
static unsigned narenas_auto;
static unsigned guarded; /* arenas below this index exist and are hooked */

/* Whether arena i exists now.  Not arena.<i>.initialized, which is the
 * stats' view as of the last epoch; reading an absent arena's decay time
 * fails with EFAULT. */
static int arena_exists(unsigned i)
{
	ssize_t ms;
	size_t len = sizeof(ms);

	mib_decay[1] = i;
	return !mallctlbymib(mib_decay, 3, &ms, &len, NULL, 0);
}

/* Give arena i the hooks, if it exists (or, with create, is an automatic
 * one, which writing its hooks creates) and has jemalloc's own. */
static void guard_arena(unsigned i, int create)
{
	extent_hooks_t *old;
	size_t len = sizeof(old);

	if (!create && !arena_exists(i))
		return;
	mib_hooks[1] = i;
	if (mallctlbymib(mib_hooks, 3, &old, &len, NULL, 0) || old != dflt)
		return; /* absent beyond the automatic ones, ours, or the program's */
	mallctlbymib(mib_hooks, 3, NULL, NULL, &guard_hooks_ptr, sizeof(guard_hooks_ptr));
}

void transient_guard_arenas(void)
{
	unsigned i = __atomic_load_n(&guarded, __ATOMIC_RELAXED), mine;
	size_t len = sizeof(mine);

	if (!dflt)
		return;
	/* Reading thread.arena makes jemalloc choose this thread's arenas
	 * (the application's and the internal one) if it has not yet. */
	mallctlbymib(mib_thread, 2, &mine, &len, NULL, 0);
	for (; i < narenas_auto && arena_exists(i); i++)
		guard_arena(i, 0);
	__atomic_store_n(&guarded, i, __ATOMIC_RELAXED);
}

/* jemalloc's huge arena, made now (see above) and hooked. */
static void guard_huge_arena(void)
{
	size_t threshold = 0, len = sizeof(threshold);
	unsigned total = 0, mine, huge = narenas_auto;
	size_t ulen = sizeof(unsigned);
	char name[64];

	if (mallctl("opt.oversize_threshold", &threshold, &len, NULL, 0) || !threshold ||
	    mallctl("arenas.narenas", &total, &ulen, NULL, 0) || huge >= total)
		return;
	if (!arena_exists(huge)) {
		if (mallctl("thread.arena", &mine, &ulen, &huge, sizeof(huge)))
			return;
		mallctl("thread.arena", NULL, NULL, &mine, sizeof(mine));
		static const char *const decay[] = { "dirty_decay_ms", "muzzy_decay_ms" };

		for (unsigned k = 0; k < 2; k++) {
			ssize_t ms = 0, zero = 0;
			size_t slen = sizeof(ms);

			log_format(name, sizeof(name), "arenas.%s", decay[k]);
			if (mallctl(name, &ms, &slen, NULL, 0) || ms <= 0)
				continue;
			log_format(name, sizeof(name), "arena.%u.%s", huge, decay[k]);
			mallctl(name, NULL, NULL, &zero, sizeof(zero));
		}
	}
	guard_arena(huge, 0);
}

int transient_guard_init(void)
{
	size_t len = sizeof(dflt);
	size_t n = 3;
	const char *percpu = "disabled";

	if (mallctlnametomib("arena.0.extent_hooks", mib_hooks, &n) ||
	    (n = 3, mallctlnametomib("arena.0.dirty_decay_ms", mib_decay, &n)) ||
	    (n = 2, mallctlnametomib("thread.arena", mib_thread, &n)) ||
	    mallctl("arena.0.extent_hooks", &dflt, &len, NULL, 0) || !dflt) {
		dflt = NULL;
		log_msg(LOG_WARN, "cannot read jemalloc's extent hooks: free() may change "
			"errno when jemalloc purges memory");
		return -1;
	}
	guard_hooks = (extent_hooks_t){
		.alloc = dflt->alloc ? guard_alloc : NULL,
		.dalloc = dflt->dalloc ? guard_dalloc : NULL,
		.destroy = dflt->destroy ? guard_destroy : NULL,
		.commit = dflt->commit ? guard_commit : NULL,
		.decommit = dflt->decommit ? guard_decommit : NULL,
		.purge_lazy = dflt->purge_lazy ? guard_purge_lazy : NULL,
		.purge_forced = dflt->purge_forced ? guard_purge_forced : NULL,
		.split = dflt->split ? guard_split : NULL,
		.merge = dflt->merge ? guard_merge : NULL,
	};
	len = sizeof(narenas_auto);
	if (mallctl("opt.narenas", &narenas_auto, &len, NULL, 0))
		narenas_auto = 1;
	len = sizeof(percpu);
	mallctl("opt.percpu_arena", &percpu, &len, NULL, 0);
	if (strcmp(percpu, "disabled")) {
		for (unsigned i = 0; i < narenas_auto; i++)
			guard_arena(i, 1);
	} else {
		/* Those made before the constructor, wherever they are. */
		for (unsigned i = 0; i < narenas_auto; i++)
			guard_arena(i, 0);
		transient_guard_arenas();
	}
	guard_huge_arena();
	return 0;
}
