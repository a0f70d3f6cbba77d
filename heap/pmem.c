/* pmem.c: the only file that calls libpmem (see pmem.h). */
#include "pmem.h"

#include <libpmem.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void cpu_persist(const void *p, size_t n)
{
	pmem_persist(p, n);
}

static void cpu_flush(const void *p, size_t n)
{
	pmem_flush(p, n);
}

static void cpu_drain(void)
{
	pmem_drain();
}

static void *cpu_memcpy_persist(void *dst, const void *src, size_t n)
{
	return pmem_memcpy_persist(dst, src, n);
}

/* msync wants page-aligned ranges; pmem_msync aligns them for us. */
static void msync_persist(const void *p, size_t n)
{
	pmem_msync(p, n);
}

static void msync_drain(void)
{
}

static void *msync_memcpy_persist(void *dst, const void *src, size_t n)
{
	memcpy(dst, src, n);
	pmem_msync(dst, n);
	return dst;
}

static const struct pmem_ops cpu_ops = {
	"cpu", cpu_persist, cpu_flush, cpu_drain, cpu_memcpy_persist,
};

/* A flush on a file mapping is the same msync as a persist. */
static const struct pmem_ops msync_ops = {
	"msync", msync_persist, msync_persist, msync_drain, msync_memcpy_persist,
};

static const struct pmem_ops *ops = &msync_ops;
static struct pmem_counts counts;

void pmem_select(void *base, size_t len, int map_sync)
{
	ops = map_sync || pmem_is_pmem(base, len) ? &cpu_ops : &msync_ops;
}

void pmem_use(const struct pmem_ops *o)
{
	ops = o;
}

const struct pmem_ops *pmem_current(void)
{
	return ops;
}

void pmem_persist_why(const void *p, size_t n, enum pmem_why why)
{
	__atomic_fetch_add(&counts.persists[why], 1, __ATOMIC_RELAXED);
	ops->persist(p, n);
}

void pmem_flush_why(const void *p, size_t n, enum pmem_why why)
{
	__atomic_fetch_add(&counts.flushes[why], 1, __ATOMIC_RELAXED);
	ops->flush(p, n);
}

void pmem_drain_all(void)
{
	__atomic_fetch_add(&counts.drains, 1, __ATOMIC_RELAXED);
	ops->drain();
}

void *pmem_copy_persist(void *dst, const void *src, size_t n, enum pmem_why why)
{
	__atomic_fetch_add(&counts.persists[why], 1, __ATOMIC_RELAXED);
	return ops->memcpy_persist(dst, src, n);
}

struct pmem_counts pmem_counts(void)
{
	struct pmem_counts c;

	for (unsigned i = 0; i < PMEM_WHY_COUNT; i++) {
		c.persists[i] = __atomic_load_n(&counts.persists[i], __ATOMIC_RELAXED);
		c.flushes[i] = __atomic_load_n(&counts.flushes[i], __ATOMIC_RELAXED);
	}
	c.drains = __atomic_load_n(&counts.drains, __ATOMIC_RELAXED);
	return c;
}
