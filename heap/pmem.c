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
#include <string.h>
#include <sys/mman.h>
#include <sys/auxv.h>

static struct {
	void (*persist)(const void *p, size_t n);
	void (*flush)(const void *p, size_t n);
	void (*drain)(void);
	void *(*memcpy_persist)(void *dst, const void *src, size_t n);
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
	*(void **)&lib.persist = dlsym(h, "pmem_persist");
	*(void **)&lib.flush = dlsym(h, "pmem_flush");
	*(void **)&lib.drain = dlsym(h, "pmem_drain");
	*(void **)&lib.memcpy_persist = dlsym(h, "pmem_memcpy_persist");
	void *is_pmem = dlsym(h, "pmem_is_pmem");

	if (!lib.persist || !lib.flush || !lib.drain || !lib.memcpy_persist || !is_pmem) {
		*why = "libpmem.so.1 lacks pmem_persist, pmem_flush, pmem_drain, "
		       "pmem_memcpy_persist or pmem_is_pmem";
		return -1;
	}
	__atomic_store_n((void **)&lib.is_pmem, is_pmem, __ATOMIC_RELEASE); /* last */
	__atomic_store_n(&loaded, 1, __ATOMIC_RELEASE);
	return 0;
}

static void cpu_persist(const void *p, size_t n)
{
	lib.persist(p, n);
}

static void cpu_flush(const void *p, size_t n)
{
	lib.flush(p, n);
}

static void cpu_drain(void)
{
	lib.drain();
}

static void *cpu_memcpy_persist(void *dst, const void *src, size_t n)
{
	return lib.memcpy_persist(dst, src, n);
}

/* msync(2) of the pages that hold [p, p+n). */
static void msync_persist(const void *p, size_t n)
{
	uintptr_t page = getauxval(AT_PAGESZ);
	uintptr_t lo = (uintptr_t)p & ~(page - 1);

	msync((void *)lo, (uintptr_t)p + n - lo, MS_SYNC);
}

static void msync_drain(void)
{
}

static void *msync_memcpy_persist(void *dst, const void *src, size_t n)
{
	memcpy(dst, src, n);
	msync_persist(dst, n);
	return dst;
}

static const struct pmem_ops cpu_ops = {
	"cpu", cpu_persist, cpu_flush, cpu_drain, cpu_memcpy_persist,
};

/* A flush on a file mapping is the same msync as a persist. */
static const struct pmem_ops msync_ops = {
	"msync", msync_persist, msync_persist, msync_drain, msync_memcpy_persist,
};

static void none_range(const void *p, size_t n)
{
	(void)p;
	(void)n;
}

static void *none_memcpy(void *dst, const void *src, size_t n)
{
	return memcpy(dst, src, n);
}

const struct pmem_ops pmem_none_ops = {
	"none", none_range, none_range, msync_drain, none_memcpy,
};

static const struct pmem_ops *ops = &msync_ops;
static struct pmem_counts counts;

/* pmem_is_pmem honours PMEM_IS_PMEM_FORCE=1 (emulation on tmpfs). */
void pmem_select(void *base, size_t len, int map_sync)
{
	int loaded = __atomic_load_n(&lib.is_pmem, __ATOMIC_ACQUIRE) != NULL;

	ops = loaded && (map_sync || lib.is_pmem(base, len)) ? &cpu_ops : &msync_ops;
}

void pmem_use(const struct pmem_ops *o)
{
	ops = o;
}

void pmem_persist_why(const void *p, size_t n, enum pmem_why why)
{
	__atomic_fetch_add(&counts.persists[why], 1, __ATOMIC_RELAXED);
	ops->persist(p, n);
}

void *pmem_copy_persist(void *dst, const void *src, size_t n, enum pmem_why why)
{
	__atomic_fetch_add(&counts.persists[why], 1, __ATOMIC_RELAXED);
	return ops->memcpy_persist(dst, src, n);
}

struct pmem_counts pmem_counts(void)
{
	struct pmem_counts c;

	for (unsigned i = 0; i < PMEM_WHY_COUNT; i++)
		c.persists[i] = __atomic_load_n(&counts.persists[i], __ATOMIC_RELAXED);
	return c;
}
