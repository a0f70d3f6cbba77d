/* tx.h: transactions -- per-thread undo logs in the pool (see TRANSACTION
 * LOGS in layout.h for the format and the protocol, tx.c for the rest). */
#ifndef BTD_HEAP_TX_H
#define BTD_HEAP_TX_H

#include <stddef.h>
#include <stdint.h>

#include "../common/compiler.h"

/* The btd_tx_* calls of btd.h, for an open pool. */
int tx_begin(void);
int tx_add(void *p, size_t n);
void *tx_malloc(size_t n);
int tx_free(void *p);
int tx_commit(void);
void tx_abort(void);
int tx_depth(void);

/* This thread is in a transaction (a hint: tx_takes_free decides). */
extern BTD_TLS int tx_busy;

/* heap_free of p by this thread while it is in a transaction: 1 when the
 * transaction takes the free over (p overlaps a range it added: freed at
 * its commit, kept by a rollback), 0 when heap_free goes on (p is a block
 * it allocated, which its abort then no longer frees; or any other). */
int tx_takes_free(void *p);

/* The process is exiting, or the pool closing, in this thread: roll back
 * its transaction if it is in one (it never committed). */
void tx_end_mine(void);

/* The pool is going away: every thread's transaction state is dropped
 * (their later calls get BTD_ERR_TX). */
void tx_detach(void);

/* Snapshot [p, p+n) of the pool's metadata (a root slot) into this
 * thread's transaction: roots.c, for btd_root_set inside a transaction. */
int tx_add_meta(void *p, size_t n);

/* What the logs hold: for the open (tx_replay) and `btd check`. */
struct tx_replay_report {
	uint64_t logs;            /* logs that held a transaction in flight */
	uint64_t ranges;          /* their entries */
	uint64_t bytes;           /* the bytes their snapshots put back */
	uint64_t bad_ranges;      /* entries aimed outside the pool: skipped */
};

/* At open, before recovery: roll back every transaction in flight, in
 * memory: the snapshots are copied back, nothing is flushed and no log
 * retired.  *rolled_back: how many.  BTD_OK or a status.  Then, once
 * recovery has decided, tx_replay_finish: keep makes the rollback durable
 * and retires the logs; else what replay overwrote is put back, and the
 * file is as it was.  Idempotent: a crash in between replays again. */
int tx_replay(uint64_t *rolled_back);
void tx_replay_finish(int keep);
const struct tx_replay_report *tx_replay_last(void);

/* Some thread is in a transaction (the pool must not be marked clean:
 * the next open rolls back what it wrote, the GC what it allocated). */
int tx_live(void);

#endif
