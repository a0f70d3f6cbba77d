/* pmem.h: every flush, fence and persistent copy of the heap goes through
 * this table.
 *
 * Three backends: "cpu" for real persistent memory (a DAX mapping, or
 * PMEM_IS_PMEM_FORCE=1 to emulate it), where libpmem flushes cache lines
 * with clwb/clflushopt and fences with sfence; "msync" for anything else
 * (tmpfs, disk), where persisting a range is msync(2) of its pages; and
 * "sim", the crash-simulating backend of the tests, which records what was
 * persisted so that a test can drop everything else.  Counters of flushes
 * and fences per caller kind make invariant 3 (no flush on the small-object
 * fast path) visible in the stats. */
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
	uint64_t persists[PMEM_WHY_COUNT];
	uint64_t flushes[PMEM_WHY_COUNT];
	uint64_t drains;
};

/* Load libpmem (once).  0, or -1 with the reason in *why. */
int pmem_load(const char **why);

/* Choose the backend for a mapping (after pmem_load): "cpu" when it is
 * pmem (mapped with MAP_SYNC, or PMEM_IS_PMEM_FORCE=1), "msync" otherwise. */
void pmem_select(void *base, size_t len, int map_sync);

/* Install a backend explicitly (tests). */
void pmem_use(const struct pmem_ops *ops);

const struct pmem_ops *pmem_current(void);

void pmem_persist_why(const void *p, size_t n, enum pmem_why why);
void pmem_flush_why(const void *p, size_t n, enum pmem_why why);
void pmem_drain_all(void);
void *pmem_copy_persist(void *dst, const void *src, size_t n, enum pmem_why why);

struct pmem_counts pmem_counts(void);

#endif
