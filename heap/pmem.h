/* pmem.h: the durability seam -- every flush, fence and persistent copy of
 * the pool goes through one ops table with a context.
 *
 * Three verbs, as in PMDK's pmem_ops:
 *   flush(p, n)   write [p, p+n) back without waiting
 *   drain()       wait until everything flushed is durable: a durability
 *                 point (a fence on pmem, nothing more for msync, and for a
 *                 replicating backend the moment the changed ranges are
 *                 durable on the replicas too)
 *   persist(p, n) flush + drain
 * A metadata update that needs several ranges durable together flushes
 * each and drains once.
 *
 * Backends: "cpu" for real persistent memory (a DAX mapping, or
 * PMEM_IS_PMEM_FORCE=1 to emulate it), where libpmem flushes cache lines
 * with clwb/clflushopt and fences with sfence; "msync" for anything else
 * (tmpfs, disk), where flushes of neighbouring pages are gathered and
 * msync(2)ed at the drain; "none" for a private view no flush may reach.  A backend
 * can wrap the one it replaces (pmem_backend() returns it): the crash-
 * simulating backend of the test builds, and replication to memory nodes,
 * are such decorators.  Counting flushes and drains per caller kind makes
 * invariant 3 (no flush on the small-object fast path) visible in the
 * stats, and gives the cost of a transaction in fences. */
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
	PMEM_WHY_TX,       /* transaction logs and commits */
	PMEM_WHY_COUNT
};

struct pmem_ops {
	const char *name;
	void (*flush)(void *ctx, const void *p, size_t n);
	void (*drain)(void *ctx);
	/* memcpy, then flush the destination (no drain). */
	void *(*memcpy_flush)(void *ctx, void *dst, const void *src, size_t n);
};

/* A backend: its table and the context every member receives. */
struct pmem_backend {
	const struct pmem_ops *ops;
	void *ctx;
};

struct pmem_counts {
	uint64_t flushes[PMEM_WHY_COUNT]; /* ranges flushed */
	uint64_t drains[PMEM_WHY_COUNT];  /* durability points (fences) */
};

/* Load libpmem (once).  0, or -1 with the reason in *why.  Never from
 * inside an allocation (see pmem.c). */
int pmem_load(const char **why);

/* Choose the backend for a mapping: "cpu" when libpmem is loaded and the
 * mapping is pmem (MAP_SYNC, or PMEM_IS_PMEM_FORCE=1), "msync" otherwise.
 * A decorator installed with pmem_wrap stays on top of the choice. */
void pmem_select(void *base, size_t len, int map_sync);

/* The backend that writes nothing back: for a private (copy-on-write) view
 * of a pool (the read-only `btd check`). */
void pmem_select_none(void);

/* The backend in use. */
struct pmem_backend pmem_backend(void);

/* Install a decorator over the backends pmem_select chooses: `wrap` is
 * called with the chosen backend and the mapping it serves each time one
 * is chosen (and at once, with the current one) and returns the backend to
 * use.  base is NULL for the "none" backend.  NULL removes the decorator. */
typedef struct pmem_backend (*pmem_wrapper)(struct pmem_backend inner, void *base, size_t len);
void pmem_wrap(pmem_wrapper wrap);

void pmem_flush_why(const void *p, size_t n, enum pmem_why why);
void pmem_drain_why(enum pmem_why why);
void pmem_persist_why(const void *p, size_t n, enum pmem_why why);    /* flush + drain */
void *pmem_copy_flush(void *dst, const void *src, size_t n, enum pmem_why why);
void *pmem_copy_persist(void *dst, const void *src, size_t n, enum pmem_why why);

struct pmem_counts pmem_counts(void);

/* The first errno a flush of this thread met since the last call (msync
 * can fail: EIO on a disk, ENOMEM), else 0; cleared.  Durability points
 * call it, so that a failed write-back is a status, never a silent 0. */
int pmem_take_error(void);

#endif
