/* store.h: the open sequence -- a pool, its heap, its transaction logs and
 * its recovery, opened and closed as one.
 *
 * It sits above the heap and recovery and drives them, as PMDK's obj.c
 * drives lane recovery and then the heap boot; the heap never calls up
 * into recovery:
 *
 *	pool open -> heap attach -> transaction replay -> recovery GC -> ready
 *
 * Everything that opens a pool -- the public API, the preload's routing,
 * the btd tool -- opens it here. */
#ifndef BTD_STORE_STORE_H
#define BTD_STORE_STORE_H

#include <stddef.h>

#include "../common/settings.h"
#include "../heap/heap.h"

/* Open (creating if missing) the pool and make the heap ready: the logs
 * are replayed and recovery runs here, before the first allocation.
 * BTD_OK or a btd_status with the reason in err_last(). */
int store_open(const char *path, size_t size, enum btd_gc gc, struct heap_open_info *info);

/* A clean close: the bitmap made exact, metadata persisted, the clean flag
 * set.  A transaction still in flight in another thread leaves the pool
 * dirty: the next open rolls it back. */
void store_close(void);

/* At process exit: freeze the heap (the mapping stays, for destructors),
 * and mark the pool clean when no other thread can be allocating and no
 * transaction is in flight.  1 when marked clean. */
int store_exit(void);

/* Drop everything as a crash would: nothing is written, the pool stays
 * dirty (tests). */
void store_abandon(void);

int store_is_open(void);

/* The default pool path of a program (see pool.h). */
int store_default_path(char *buf, size_t n, const char *program, unsigned instance);

#endif
