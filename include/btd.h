/* btd.h: the public API of bartender, a persistent-memory allocator.
 *
 * Unmodified programs need none of this: they run under
 *     LD_PRELOAD=libbtd_preload.so program
 * (or `btd run -- program`), and the environment chooses what goes where.
 * Programs that link libbtd use this header for named roots, persistence
 * points, transactions and the bartender cluster API. */
#ifndef BTD_H
#define BTD_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BTD_VERSION_MAJOR 0
#define BTD_VERSION_MINOR 1
#define BTD_VERSION_PATCH 0
#define BTD_VERSION_STRING "0.1.0"

/* Status codes: 0 or a negative btd_status; btd_strerror() names them and
 * btd_last_error() holds this thread's full message of the last failure. */
enum btd_status {
	BTD_OK = 0,
	BTD_ERR_NOMEM = -1,   /* the pool (or memory) is full */
	BTD_ERR_INVAL = -2,   /* a bad argument */
	BTD_ERR_NOENT = -3,   /* no such pool file, or no such root */
	BTD_ERR_BUSY = -4,    /* the pool is open in another process; every transaction
	                       * log is in use; or this process may not change the pool
	                       * (a fork child, or exit has begun) */
	BTD_ERR_FORMAT = -5,  /* not a pool file, or a corrupt one */
	BTD_ERR_VERSION = -6, /* a pool of a format version this btd cannot read */
	BTD_ERR_ADDR = -7,    /* the pool's address range is taken in this process */
	BTD_ERR_NOSPC = -8,   /* the file system is full */
	BTD_ERR_IO = -9,      /* an I/O error */
	BTD_ERR_PERM = -10,   /* permission denied */
	BTD_ERR_TX = -11,     /* no transaction in progress (or it was aborted) */
	BTD_ERR_TXFULL = -12, /* the transaction's log is full */
};

const char *btd_strerror(int status);
const char *btd_last_error(void);

/* ---- the bartender cluster API ----------------------------------------
 *
 *     struct btd_config cfg;
 *     btd_config_init(&cfg);          // optional: without it only
 *     cfg.single_node = 1;            // single_node is read
 *     cfg.pool = "/mnt/pmem/app.pool";
 *     struct btd_cluster *c = btd_cluster_create(&cfg);
 *     char *p = btd_malloc(c, 100);
 *     btd_memcpy(p, "123", 3);        // durable when it returns
 *     btd_root_set("greeting", p);    // found again by the next run
 *     btd_free(p);
 *
 * The pool is BTD_POOL, else cfg.pool, else a per-program default under
 * /dev/shm/btd-<uid>/ (tmpfs: survives a process crash, not a reboot; put
 * pools that must survive a power failure on a DAX file system). */

#define BTD_CONFIG_MAGIC 0x6274645f63666731ULL /* "btd_cfg1" */

struct btd_config {
	int single_node;        /* 1: this machine only, no memory nodes */
	/* Read only when btd_config_init() filled in magic: */
	unsigned long long magic;
	const char *pool;       /* pool file; NULL: BTD_POOL or the default */
	size_t pool_size;       /* reservation of a new pool; 0: BTD_POOL_SIZE or 1 GiB */
	const char *nodes;      /* memory nodes "host:port,..."; NULL: none */
	unsigned replicas;      /* synchronous replicas wanted */
};

struct btd_cluster;

void btd_config_init(struct btd_config *cfg);

/* cfg NULL: the defaults of btd_config_init. */

/* Open (creating if needed) the process's pool.  NULL on failure, with
 * errno set and the reason in btd_last_error().  One pool per process:
 * a second call returns the same cluster; one naming another cfg.pool
 * than the pool already open fails with EBUSY (set BTD_POOL to choose).
 * Any btd_* call that needs the pool opens it the same way, so a program
 * may start with btd_root_get.  Under the preload, the API and the
 * policy's malloc routing share this one pool. */
struct btd_cluster *btd_cluster_create(struct btd_config *cfg);

/* Close the pool cleanly.  Also done at exit: a program that returns
 * from main leaves its pool clean.  Under the preload, the pool only
 * becomes durable here and stays open for the routing until exit. */
void btd_cluster_destroy(struct btd_cluster *c);

/* Persistent allocation: NULL + ENOMEM when the pool is full.  c may be
 * NULL: the process's pool, opened as btd_cluster_create(NULL) would. */
void *btd_malloc(struct btd_cluster *c, size_t n);
void btd_free(void *p);

/* memcpy/memset that persist dst when it lies in the pool (plain
 * otherwise); durable on return. */
void *btd_memcpy(void *dst, const void *src, size_t n);
void *btd_memset(void *dst, int c, size_t n);

/* Make [p, p+n) of the pool durable.  BTD_ERR_INVAL outside the pool. */
int btd_persist(const void *p, size_t n);

/* Make everything written to the pool durable. */
int btd_sync(void);

/* Named roots: at least 1024 of them, names of 1 to 47 bytes.  Setting is
 * durable on return; NULL deletes.  The recovery GC keeps every block
 * reachable from a root and reclaims the rest. */
int btd_root_set(const char *name, const void *p);
/* NULL when there is no such root, or no pool could be opened:
 * btd_last_error() says which. */
void *btd_root_get(const char *name);

/* ---- transactions -----------------------------------------------------
 *
 *     btd_tx_begin();
 *     btd_tx_add(&list->head, sizeof(list->head));  // before changing it
 *     struct node *n = btd_tx_malloc(sizeof(*n));
 *     n->next = list->head;
 *     list->head = n;
 *     btd_tx_free(old);                              // at the commit
 *     btd_root_set("list", list);                    // at the commit
 *     if (btd_tx_commit() != 0) ...                  // all of it, or none
 *
 * A transaction is its thread's: it makes this thread's changes failure-
 * atomic, it does not isolate them from other threads (lock what threads
 * share, as with PMDK).  After a crash at any point the next open leaves
 * every change, allocation, free and root update of a transaction, or
 * none of them.  An undo log: btd_tx_add copies the range into the
 * thread's log in the pool and makes the copy durable (one fence) before
 * returning; btd_tx_commit makes the ranges durable (one fence) and then
 * retires the log (one more).  A commit of N added ranges costs N + 2
 * fences.  Transactions nest, flattened into the outermost: only its
 * commit commits.  Under the preload they work the same.  A transaction
 * that never commits is rolled back: by btd_tx_abort, by the end of its
 * thread, by exit or btd_cluster_destroy in its thread, by the next open
 * after a crash. */

/* 0, or BTD_ERR_BUSY when every log of the pool is in use by a thread,
 * BTD_ERR_VERSION on a pool made before logs existed. */
int btd_tx_begin(void);

/* Snapshot [p, p+n) of the pool before changing it (a range already added
 * costs nothing).  BTD_ERR_TX outside a transaction; BTD_ERR_INVAL outside
 * the pool, BTD_ERR_TXFULL when the log is full: both end the transaction,
 * whose commit then rolls back and returns the error. */
int btd_tx_add(void *p, size_t n);

/* A block that is freed again unless the transaction commits (a crash
 * reclaims it too).  Need not be added: its contents are made durable by
 * the commit.  NULL + errno (ENOMEM, or EINVAL outside a transaction). */
void *btd_tx_malloc(size_t n);

/* Free p when the transaction commits (nothing if it does not).  0, or
 * BTD_ERR_TX / BTD_ERR_INVAL (not a live block of the pool, or freed twice
 * in this transaction).  A plain free (or a realloc that moves the block)
 * by this thread inside the transaction -- what a program under the
 * preload does -- of a block it added a range of waits for the commit the
 * same way; of a block it allocated, frees it at once. */
int btd_tx_free(void *p);

/* Commit the outermost transaction: all of it durable and visible, or (an
 * error) none of it.  An inner commit just closes its level.  BTD_ERR_TX
 * without a transaction. */
int btd_tx_commit(void);

/* Roll back the outermost transaction now and end it, whatever the
 * nesting: the ranges get their snapshots back, its allocations are freed,
 * its frees and root updates are dropped.  The commits (and adds) of the
 * levels that were open then return BTD_ERR_TX, so check their status. */
void btd_tx_abort(void);

/* This thread's transaction depth: 0 outside one. */
int btd_tx_depth(void);

/* Under the preload: allocations of this thread between begin and end are
 * tagged, so BTD_POLICY=tagged (or large) sends them to the pool.  Nests.
 * Without the preload they cannot take effect: BTD_ERR_INVAL. */
int btd_tag_begin(void);
int btd_tag_end(void);

#ifdef __cplusplus
}
#endif

#endif
