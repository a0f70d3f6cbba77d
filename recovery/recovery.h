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

/* Live roots in the pool's table. */
unsigned recovery_root_count(void);

struct recovery_audit {
	uint64_t reachable;       /* blocks reachable from the roots */
	uint64_t allocated;       /* blocks the bitmap holds allocated */
	uint64_t reachable_free;  /* reachable but free: must be 0 */
	uint64_t leaked;          /* allocated but unreachable */
};

/* Compare reachability with allocation (tests, btd check). */
void recovery_audit(struct recovery_audit *a);

#endif
