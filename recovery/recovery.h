/* recovery.h: what runs at every open, before the first allocation.
 *
 *   rootless pool (any mode)   reset: punch out all data, O(1)
 *   BTD_GC=auto, clean pool    trust: rebuild the free state from the
 *                              descriptors and the bitmap of the clean close
 *   BTD_GC=auto, dirty pool    collect: mark from the roots, sweep the rest
 *   BTD_GC=always              collect
 *   BTD_GC=never               trust, even a dirty pool (for inspection)
 *
 * Idempotent: a crash during recovery leaves the pool dirty, and the next
 * open does it again from the same descriptors and roots. */
#ifndef BTD_RECOVERY_RECOVERY_H
#define BTD_RECOVERY_RECOVERY_H

#include "../common/settings.h"
#include "../heap/heap.h"

int recovery_run(enum btd_gc gc, struct heap_open_info *info);

/* How damage is met (see WILD POINTERS in gc.c):
 *   OPEN     a program's open: damage that could lose reachable data
 *            (wild pointers, damaged roots) stops the open, nothing else
 *            is written; damaged descriptors are repaired with a warning
 *   CHECK    `btd check`: the pool is opened as a private view
 *            (pool_set_private), recovery runs into it, damage is reported
 *   REPAIR   `btd check --repair`: damaged roots are cleared, lost runs are
 *            restored (then the open fails with report.restart set: open
 *            the pool again) */
enum recovery_mode { RECOVER_OPEN, RECOVER_CHECK, RECOVER_REPAIR };

void recovery_set_mode(enum recovery_mode m);

/* Called now and then during the long phases ("walk", "sweep": done of
 * total pages; "mark": blocks marked, total 0), for a progress bar. */
typedef void (*recovery_progress_fn)(const char *phase, uint64_t done, uint64_t total);
void recovery_set_progress(recovery_progress_fn fn);

/* What the last recovery found. */
struct recovery_report {
	unsigned roots;              /* valid roots */
	unsigned damaged_roots;      /* root slots in use that fail their checks */
	unsigned first_damaged_root;
	uint64_t bad_descs;          /* descriptors that disagreed with the runs found */
	uint64_t cut_runs;           /* large runs cut where another run began */
	uint64_t suspicious;         /* descriptors the walk found failing their checks */
	uint64_t wild;               /* reachable pointers into pages of no live run */
	uint64_t wild_first;         /* the first of them */
	uint64_t dangling;           /* reachable pointers into released runs: ignored */
	uint64_t restored_runs;      /* runs restored for them (REPAIR) */
	int meta_mismatch;           /* a clean pool's metadata changed since its close */
	uint64_t top_raised;         /* pages heap_top was raised by (a header copy lost) */
	int stopped;                 /* the open was refused (OPEN) */
	int restart;                 /* runs were restored: open again (REPAIR) */
};

const struct recovery_report *recovery_last(void);

/* Live roots in the pool's table. */
unsigned recovery_root_count(void);

struct recovery_audit {
	uint64_t reachable;       /* blocks reachable from the roots */
	uint64_t allocated;       /* blocks the bitmap holds allocated */
	uint64_t reachable_free;  /* reachable but free: must be 0 */
	uint64_t leaked;          /* allocated but unreachable */
	uint64_t wild;            /* reachable pointers into pages no run released */
	uint64_t wild_first;
	uint64_t dangling;        /* reachable pointers into released runs */
};

/* Compare reachability with allocation (tests, btd check). */
void recovery_audit(struct recovery_audit *a);

#endif
