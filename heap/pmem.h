/* pmem.h: every flush, fence and persistent copy of the heap goes through
 * this table.
 *
 * Two backends: "cpu" for real persistent memory (a DAX mapping, or
 * PMEM_IS_PMEM_FORCE=1 to emulate it), where libpmem flushes cache lines
 * with clwb/clflushopt and fences with sfence; "msync" for anything else
 * (tmpfs, disk), where persisting a range is msync(2) of its pages.
 * pmem_use() installs another table: the seam for a crash-simulating
 * backend that drops unflushed ranges (the crash tests of today kill real
 * processes instead).  A persist is one flush of the range and one fence;
 * counting persists per caller kind makes invariant 3 (no flush on the
 * small-object fast path) visible in the stats. */
#ifndef BTD_HEAP_PMEM_H
#define BTD_HEAP_PMEM_H

#include <stddef.h>
#include <stdint.h>

/* Why a flush happened, for the stats. */
enum pmem_why {
	PMEM_WHY_HEADER,   /* pool header */
	PMEM_WHY_ROOT,     /* named roots */
	PMEM_WHY_DESC,     /* page descriptors (run create/release) */
	PMEM_WHY_USER,     /* btd_persist, btd_memcpy, ... */
	PMEM_WHY_CLOSE,    /* clean close: bitmap and metadata */
	PMEM_WHY_RECOVERY, /* recovery GC */
	PMEM_WHY_COUNT
};

struct pmem_ops {
	const char *name;
	/* Make [p, p+n) durable: flush and fence. */
	void (*persist)(const void *p, size_t n);
	/* Write back [p, p+n) without waiting; drain() waits for all. */
	void (*flush)(const void *p, size_t n);
	void (*drain)(void);
	/* memcpy, then persist the destination. */
	void *(*memcpy_persist)(void *dst, const void *src, size_t n);
};

struct pmem_counts {
	uint64_t persists[PMEM_WHY_COUNT]; /* each: flush the range, then fence */
};

/* Load libpmem (once).  0, or -1 with the reason in *why.  Never from
 * inside an allocation (see pmem.c). */
int pmem_load(const char **why);

/* Choose the backend for a mapping: "cpu" when libpmem is loaded and the
 * mapping is pmem (MAP_SYNC, or PMEM_IS_PMEM_FORCE=1), "msync" otherwise. */
void pmem_select(void *base, size_t len, int map_sync);

/* A backend that writes nothing back: for a private (copy-on-write) view
 * of a pool, which no flush may reach (the read-only `btd check`). */
extern const struct pmem_ops pmem_none_ops;

/* Install a backend explicitly (a test's). */
void pmem_use(const struct pmem_ops *ops);

void pmem_persist_why(const void *p, size_t n, enum pmem_why why);
void *pmem_copy_persist(void *dst, const void *src, size_t n, enum pmem_why why);

struct pmem_counts pmem_counts(void);

#endif
