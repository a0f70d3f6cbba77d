/* pool.h: a pool file mapped at its fixed base address.
 *
 * The pool owns the file, its lock, the mapping and the header; the heap
 * (heap.c) carves the data area into runs, and recovery/ rebuilds its free
 * state.  One process per pool: an exclusive flock held while it is open. */
#ifndef BTD_HEAP_POOL_H
#define BTD_HEAP_POOL_H

#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "layout.h"

struct pool {
	int fd;                    /* -1 but while opening, growing, resetting */
	dev_t dev;                 /* the mapped file, to find it again */
	ino_t ino;
	char path[PATH_MAX];
	char *base;                /* == (char *)hdr.base */
	size_t size;
	struct pool_header hdr;    /* the newest copy, as last written */
	unsigned hdr_slot;         /* which slot holds it */
	struct pool_root *roots;
	uint64_t *desc;            /* one per data page */
	uint64_t *bitmap;          /* one bit per granule of data */
	char *data;
	size_t npages;
	size_t heap_top;           /* pages backed by fallocate */
	int was_dirty;             /* opened after a crash */
	int map_sync;              /* mapped with MAP_SYNC: real pmem */
	int private_view;          /* opened by pool_set_private: the file is never written */
	int marked_open;           /* the header has been written since the open */
	uint64_t clean_sum;        /* meta_sum of the clean close found at open, else 0 */
	uint64_t clean_roots;      /* and its close_roots */
	int clean_collect;         /* and its collect_next */
	int collect_next;          /* for this close: ask the next open to collect */
	int bad_header_copy;       /* the copy (0 or 1) found damaged at open, else -1 */
	pthread_mutex_t grow_lock;
	uint64_t grow_retry_at;    /* after a failed growth: when to try again */
	int grow_error;            /* and the status to return until then */
};

/* Open the pool at path, creating it with a reservation of `size` bytes
 * when it does not exist and create is set.  Returns BTD_OK or a negative
 * btd_status, with the message in btd_last_error().  A file that is not a
 * valid pool is never written. */
int pool_open(struct pool *p, const char *path, size_t size, int create);

/* PRIVATE VIEW (the read-only `btd check`): from now on, pools are opened
 * read-only under a shared lock and mapped copy-on-write, flushes do
 * nothing, and growing, resetting and punching change only the private
 * view.  Recovery then runs as it would, and the file is never written. */
void pool_set_private(int on);

/* The process that holds the pool file open (its lock), or 0 when none is
 * found: `hint` (the header's owner) when it still maps the file, else
 * whichever process does (a fork child that inherited the mapping).  Its
 * name goes to name[n].  Reads /proc; no allocation. */
long pool_holder(dev_t dev, ino_t ino, long hint, char *name, size_t n);

/* Record in the header that the pool is open (dirty), with this process
 * as its owner: once, before the first write to the pool (pool_open writes
 * nothing, so that an open that recovery refuses leaves the file as it
 * was).  Idempotent. */
void pool_mark_open(struct pool *p);

/* The checksum of a clean pool's metadata (see CLEAN FLAG in layout.h). */
uint64_t pool_meta_sum(const struct pool *p);

/* Whether process pid maps the file (dev, ino) shared (a fork child still
 * depending on its parent's pool, see heap/fork.c).  Reads /proc. */
int pool_maps_shared(long pid, dev_t dev, ino_t ino);

/* Persist the bitmap and set the clean flag (the mapping stays). */
void pool_mark_clean(struct pool *p);

/* pool_mark_clean, then unmap and unlock. */
void pool_close(struct pool *p);

/* Unmap and unlock without writing anything (a fork child, or a test
 * simulating a crash). */
void pool_abandon(struct pool *p);

/* Make sure pages [0, top) of data are backed; BTD_ERR_NOSPC when the file
 * system is full.  Thread-safe. */
int pool_grow(struct pool *p, size_t top);

/* Data pages and the file system.  pool_file_open reopens the pool's file
 * (its descriptor is closed while the pool is mapped, see pool.c); between
 * it and pool_file_close, pool_punch gives pages [page, page + n) of data
 * back to the file system (they read as zero afterwards) and pool_back
 * takes real blocks for them again -- which must happen before they are
 * written, so that a full file system is an error and never a SIGBUS.
 * Each returns BTD_OK or a btd_status.  Callers serialize them. */
int pool_file_open(struct pool *p);
void pool_file_close(struct pool *p);
int pool_punch(struct pool *p, size_t page, size_t n);
int pool_back(struct pool *p, size_t page, size_t n);
/* Back transaction log `slot` with real blocks (opens the file itself:
 * not between pool_file_open and pool_file_close). */
int pool_back_log(struct pool *p, unsigned slot);

/* Write the header (the older slot, epoch + 1) and persist it. */
void pool_header_write(struct pool *p);

/* Drop all data: punch out descriptors, bitmap and data, heap_top 0. */
int pool_reset(struct pool *p);

/* Layout of a pool of `size` bytes, with transaction logs (format 1.2) or
 * without (older pools: log_off 0); 0 when too small. */
int pool_layout(size_t size, int logs, struct pool_header *h);

uint64_t pool_checksum(const void *p, size_t n);

/* The newest valid header copy of the pool file open at fd: the slot it
 * came from (0 or 1), or BTD_ERR_NOENT (no pool magic at all) or
 * BTD_ERR_FORMAT (both copies damaged).  *bad_copy: the copy that failed
 * its checksum while the other passed, else -1.  The one reader of
 * headers: pool_open, the lock message and `btd info` use it. */
int pool_read_header(int fd, struct pool_header *out, int *bad_copy);

/* The default pool of a program: /dev/shm/btd-<uid>/<program>.pool, or
 * <program>.<instance>.pool for instance > 0 (the directory is made
 * private to the user).  BTD_OK or a btd_status. */
int pool_default_path(char *buf, size_t n, const char *program, unsigned instance);

static inline size_t pool_page_of(const struct pool *p, const void *addr)
{
	return (size_t)((const char *)addr - p->data) / POOL_PAGE;
}

static inline int pool_contains(const struct pool *p, const void *addr)
{
	return (uintptr_t)addr - (uintptr_t)p->data < (uintptr_t)p->npages * POOL_PAGE;
}

#endif
