/* pmem.c: the only file that uses libpmem (see pmem.h).
 *
 * libpmem is loaded with dlopen, not linked: linked, it brings libndctl,
 * libdaxctl, libudev, libkmod, libcrypto and more into every process the
 * preload enters -- 2.6 MB and their start-up for each `ls` of a shell
 * script -- though most never open a pool, and pools on tmpfs never need
 * it.  pmem_load runs only outside any allocation (btd_cluster_create, the
 * preload's constructor): a dlopen runs constructors that take locks, and
 * the malloc that opens a pool may come from code holding them (setlocale
 * calls malloc under the locale lock; a dlopen of libpmem there
 * deadlocked).  Without libpmem, persisting is msync, which is correct on
 * every file system, DAX included, and only slower there. */
#include "pmem.h"

#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>

#include "../common/compiler.h"

static struct {
	void *(*memcpy_nodrain)(void *dst, const void *src, size_t n);
	void (*flush)(const void *p, size_t n);
	void (*drain)(void);
	int (*is_pmem)(const void *p, size_t n);
} lib;

int pmem_load(const char **why)
{
	static int loaded;

	if (__atomic_load_n(&loaded, __ATOMIC_ACQUIRE))
		return 0;
	void *h = dlopen("libpmem.so.1", RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		*why = dlerror();
		return -1;
	}
	*(void **)&lib.flush = dlsym(h, "pmem_flush");
	*(void **)&lib.drain = dlsym(h, "pmem_drain");
	void *is_pmem = dlsym(h, "pmem_is_pmem");

	*(void **)&lib.memcpy_nodrain = dlsym(h, "pmem_memcpy_nodrain");

	if (!lib.flush || !lib.drain || !is_pmem || !lib.memcpy_nodrain) {
		*why = "libpmem.so.1 lacks pmem_flush, pmem_drain, pmem_memcpy_nodrain or "
		       "pmem_is_pmem";
		return -1;
	}
	__atomic_store_n((void **)&lib.is_pmem, is_pmem, __ATOMIC_RELEASE); /* last */
	__atomic_store_n(&loaded, 1, __ATOMIC_RELEASE);
	return 0;
}

static void cpu_flush(void *ctx, const void *p, size_t n)
{
	(void)ctx;
	lib.flush(p, n);
}

static void cpu_drain(void *ctx)
{
	(void)ctx;
	lib.drain();
}

/* libpmem's copy: non-temporal stores for large copies (they bypass the
 * cache: no line left for a write-back to finish), else stores and
 * flushes. */
static void *cpu_memcpy_flush(void *ctx, void *dst, const void *src, size_t n)
{
	(void)ctx;
	return lib.memcpy_nodrain(dst, src, n);
}

/* msync(2) on a file mapping.  msync is the whole cost there (a system
 * call, and on a disk file the write-back), so flushes are gathered: a
 * flush of pages next to or over the ones pending joins them, any other
 * first syncs what is pending; the drain syncs the rest.  Pending ranges
 * are per thread, as durability points are. */
static BTD_TLS struct {
	uintptr_t lo, hi;
} pending;

static BTD_TLS int io_error; /* pmem_take_error */

static void msync_range(uintptr_t lo, uintptr_t hi)
{
	if (msync((void *)lo, hi - lo, MS_SYNC) && !io_error)
		io_error = errno;
}

int pmem_take_error(void)
{
	int e = io_error;

	io_error = 0;
	return e;
}

static void msync_flush(void *ctx, const void *p, size_t n)
{
	static uintptr_t page;

	if (unlikely(!page))
		page = getauxval(AT_PAGESZ);
	uintptr_t lo = (uintptr_t)p & ~(page - 1);
	uintptr_t hi = ((uintptr_t)p + n + page - 1) & ~(page - 1);

	(void)ctx;
	if (pending.hi && lo <= pending.hi && hi >= pending.lo) {
		if (lo < pending.lo)
			pending.lo = lo;
		if (hi > pending.hi)
			pending.hi = hi;
		return;
	}
	if (pending.hi)
		msync_range(pending.lo, pending.hi);
	pending.lo = lo;
	pending.hi = hi;
}

static void msync_drain(void *ctx)
{
	(void)ctx;
	if (pending.hi) {
		msync_range(pending.lo, pending.hi);
		pending.lo = pending.hi = 0;
	}
}

static void no_drain(void *ctx)
{
	(void)ctx;
}

static void *msync_memcpy_flush(void *ctx, void *dst, const void *src, size_t n)
{
	memcpy(dst, src, n);
	msync_flush(ctx, dst, n);
	return dst;
}

static const struct pmem_ops cpu_ops = {
	"cpu", cpu_flush, cpu_drain, cpu_memcpy_flush,
};

static const struct pmem_ops msync_ops = {
	"msync", msync_flush, msync_drain, msync_memcpy_flush,
};

static void none_flush(void *ctx, const void *p, size_t n)
{
	(void)ctx;
	(void)p;
	(void)n;
}

static void *none_memcpy(void *ctx, void *dst, const void *src, size_t n)
{
	(void)ctx;
	return memcpy(dst, src, n);
}

static const struct pmem_ops none_ops = {
	"none", none_flush, no_drain, none_memcpy,
};

static struct pmem_backend chosen = { &msync_ops, NULL }; /* by pmem_select */
static struct pmem_backend cur = { &msync_ops, NULL };    /* chosen, maybe wrapped */
static pmem_wrapper wrapper;
static void *chosen_base;
static size_t chosen_len;
static struct pmem_counts counts;

/* Not a locked add: a locked instruction waits for the cache-line
 * write-backs issued before it, and turned every counted flush into a
 * fence (87% of a 16-range commit's time).  Under threads a count may be
 * lost now and then: the counts are statistics. */
static inline void count(uint64_t *c)
{
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

static void install(struct pmem_backend b, void *base, size_t len)
{
	chosen = b;
	chosen_base = base;
	chosen_len = len;
	cur = wrapper ? wrapper(b, base, len) : b;
}

/* pmem_is_pmem honours PMEM_IS_PMEM_FORCE=1 (emulation on tmpfs). */
void pmem_select(void *base, size_t len, int map_sync)
{
	int loaded = __atomic_load_n(&lib.is_pmem, __ATOMIC_ACQUIRE) != NULL;
	struct pmem_backend b = { &msync_ops, NULL };

	if (loaded && (map_sync || lib.is_pmem(base, len)))
		b.ops = &cpu_ops;
	install(b, base, len);
}

void pmem_select_none(void)
{
	install((struct pmem_backend){ &none_ops, NULL }, NULL, 0);
}

struct pmem_backend pmem_backend(void)
{
	return cur;
}

void pmem_wrap(pmem_wrapper wrap)
{
	wrapper = wrap;
	install(chosen, chosen_base, chosen_len);
}

void pmem_flush_why(const void *p, size_t n, enum pmem_why why)
{
	count(&counts.flushes[why]);
	cur.ops->flush(cur.ctx, p, n);
}

void pmem_drain_why(enum pmem_why why)
{
	count(&counts.drains[why]);
	cur.ops->drain(cur.ctx);
}

void pmem_persist_why(const void *p, size_t n, enum pmem_why why)
{
	pmem_flush_why(p, n, why);
	pmem_drain_why(why);
}

void *pmem_copy_flush(void *dst, const void *src, size_t n, enum pmem_why why)
{
	count(&counts.flushes[why]);
	return cur.ops->memcpy_flush(cur.ctx, dst, src, n);
}

void *pmem_copy_persist(void *dst, const void *src, size_t n, enum pmem_why why)
{
	pmem_copy_flush(dst, src, n, why);
	pmem_drain_why(why);
	return dst;
}

struct pmem_counts pmem_counts(void)
{
	struct pmem_counts c;

	for (unsigned i = 0; i < PMEM_WHY_COUNT; i++) {
		c.flushes[i] = __atomic_load_n(&counts.flushes[i], __ATOMIC_RELAXED);
		c.drains[i] = __atomic_load_n(&counts.drains[i], __ATOMIC_RELAXED);
	}
	return c;
}
