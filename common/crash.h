/* crash.h: named crash points, for the crash-injection tests.
 *
 * Every point where a crash could leave the pool in a state worth testing
 * has a name and a stable number in CRASH_POINTS below: numbers are never
 * reused (SQLite's fault points are numbered the same way), so a failing
 * run's point stays findable in history.  A build with the meson option
 * crash_points (on in the test build) compiles them in; without it
 * CRASH_POINT is nothing and costs nothing.
 *
 * Armed from the environment: BTD_CRASH_AT=name[:nth] kills the process at
 * the nth time (default 1) that point is passed.  The crash is a SIGKILL
 * of the process, as `kill -9` would be; with BTD_CRASH_SIM=seed the
 * simulated power failure of the test builds first throws away a seeded
 * random subset of every store that was not flushed and drained (see
 * pmem_sim.c).  BTD_CRASH_AT=list prints the registry and exits. */
#ifndef BTD_COMMON_CRASH_H
#define BTD_COMMON_CRASH_H

#include "compiler.h"

/* X(id, number, name): id for the code, number for history, name for
 * BTD_CRASH_AT. */
#define CRASH_POINTS(X) \
	X(CRASH_SLAB_PUBLISH,       1, "slab.publish")        /* a slab's pages taken, head not written */ \
	X(CRASH_SLAB_PUBLISHED,     2, "slab.published")      /* head durable, no block handed out */ \
	X(CRASH_SLAB_RETIRE,        3, "slab.retire")         /* an empty slab, its release mark not written */ \
	X(CRASH_LARGE_PUBLISH,      4, "large.publish")       /* a large run's pages taken, head not written */ \
	X(CRASH_LARGE_PUBLISHED,    5, "large.published")     /* head durable, block not yet returned */ \
	X(CRASH_LARGE_RETIRE,       6, "large.retire")        /* a large block freed, mark not written */ \
	X(CRASH_RUN_MARK_MOVED,     7, "run.mark_moved")      /* a release mark moved behind a new run */ \
	X(CRASH_ROOT_SET,           8, "root.set")            /* before a root's word changes */ \
	X(CRASH_ROOT_NAMED,         9, "root.named")          /* a new root: name durable, tag not written */ \
	X(CRASH_ROOT_DONE,         10, "root.done")           /* a root update durable */ \
	X(CRASH_TX_BEGIN,          11, "tx.begin")            /* an outermost transaction began */ \
	X(CRASH_TX_ADD_COPIED,     12, "tx.add.copied")       /* an undo entry written, not flushed */ \
	X(CRASH_TX_ADD_DURABLE,    13, "tx.add.durable")      /* an undo entry durable */ \
	X(CRASH_TX_COMMIT_FLUSHED, 14, "tx.commit.flushed")   /* the ranges flushed, not drained */ \
	X(CRASH_TX_COMMIT_DRAINED, 15, "tx.commit.drained")   /* the ranges durable, the log still live */ \
	X(CRASH_TX_COMMIT_RETIRED, 16, "tx.commit.retired")   /* committed, the deferred frees not done */ \
	X(CRASH_TX_ABORT_RESTORED, 17, "tx.abort.restored")   /* undo images copied back, not drained */ \
	X(CRASH_TX_ABORT_RETIRED,  18, "tx.abort.retired")    /* rolled back, the allocations not freed */ \
	X(CRASH_HEADER_WRITE,      19, "header.write")        /* a header copy half written */ \
	X(CRASH_CLOSE_BITMAP,      20, "close.bitmap")        /* a clean close: bitmap durable, header not */ \
	X(CRASH_POOL_GROW,         21, "pool.grow")           /* the file grown, heap_top not recorded */ \
	X(CRASH_REPLAY_RESTORED,   22, "recovery.replay")     /* recovery rolled a log back, not retired */ \
	X(CRASH_RECOVERY_SWEPT,    23, "recovery.swept")      /* the sweep done, descriptors not reconciled */ \
	X(CRASH_RECOVERY_COMMIT,   24, "recovery.commit")     /* descriptors half reconciled */ \
	X(CRASH_RECOVERY_DONE,     25, "recovery.done")       /* recovery finished, the pool not yet in use */ \
	X(CRASH_TX_RETIRE_FLUSHED, 26, "tx.retire")           /* a log's new generation flushed, not drained */ \
	X(CRASH_REPLAY_RETIRE,     27, "recovery.retire")     /* replay's logs retired, not drained */

enum crash_id {
#define CRASH_ENUM(id, num, name) id = num,
	CRASH_POINTS(CRASH_ENUM)
#undef CRASH_ENUM
};

#ifdef BTD_CRASH_POINTS
#include <stdint.h>

extern int crash_armed;           /* BTD_CRASH_AT named a point */
BTD_COLD void crash_hit(enum crash_id id);
#define CRASH_POINT(id) \
	do { \
		if (unlikely(crash_armed)) \
			crash_hit(id); \
	} while (0)

/* Read BTD_CRASH_AT and BTD_CRASH_SIM from envp (ignored when secure, as
 * every BTD_* is in a set-user-ID program): once, at library start, before
 * any pool opens -- the constructors of libbtd and of the preload.  A bad
 * value gets one line naming it and the fix, and the process exits with
 * status 78 (a test that meant to crash somewhere must not pass by
 * crashing nowhere); BTD_CRASH_AT=list prints the registry, a line
 * "name number" per point, on stdout and exits 0. */
void crash_init(char *const *envp, int secure);

/* What runs at the crash, before the SIGKILL: the simulated power failure
 * (heap/pmem_sim.c) registers itself here.  NULL: none. */
typedef void (*crash_action)(void);
void crash_set_action(crash_action a);

/* For the action: stop every other thread of the process for good (they
 * are parked in a signal handler), so that none runs on while the action
 * rewrites the pool. */
void crash_stop_others(void);

/* PROOF THAT THE TESTS SEE A MISSING FLUSH.  BTD_CRASH_DROP=name takes one
 * flush out, in a test build only, so that a test can show the crash suite
 * failing without it (meson's should_fail):
 *   tx.commit   the flush of a transaction's ranges at its commit
 *   slab.head   the persist of new run heads, release marks and recuts that
 *               wait for a durability point (heap/retain.c) */
enum crash_drop { CRASH_DROP_TX_COMMIT = 1, CRASH_DROP_SLAB_HEAD = 2 };
extern unsigned crash_drops;
#define CRASH_DROPPED(d) unlikely(crash_drops & (d))

/* BTD_CRASH_SIM: 1 and the seed in *seed when it is set, else 0. */
int crash_sim_seed(uint64_t *seed);

/* A point's name, or NULL for a number the registry does not have. */
const char *crash_name(enum crash_id id);
#else
#include <string.h>

#include "log.h"

#define CRASH_POINT(id) do { } while (0)
#define CRASH_DROPPED(d) 0

/* This build has no crash points: whoever set BTD_CRASH_AT or BTD_CRASH_SIM
 * expects a crash that will not come, and is told so, once. */
static inline void crash_init(char *const *envp, int secure)
{
	for (char *const *e = envp; e && *e && !secure; e++) {
		if (!strncmp(*e, "BTD_CRASH_AT=", 13) || !strncmp(*e, "BTD_CRASH_SIM=", 14) ||
		    !strncmp(*e, "BTD_CRASH_DROP=", 15)) {
			log_msg(LOG_WARN, "%.*s is set, but this build has no crash points: "
				"nothing will crash; build with meson -Dcrash_points=true",
				(int)strcspn(*e, "="), *e);
			return;
		}
	}
}
#endif

#endif
