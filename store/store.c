/* store.c: the open sequence (see store.h).
 *
 * OPEN.  pool_open maps the file and reads its header; heap_attach makes
 * the heap's DRAM tables; tx_replay rolls back every transaction the
 * pool's logs hold in flight (its data ranges get their snapshots back,
 * durably, and the logs are retired); recovery_run then rebuilds the
 * heap's runs from the descriptors and, on a dirty pool, marks from the
 * roots and sweeps.  Replay comes first so that the mark sees the data as
 * it was before the interrupted transactions: their new blocks are
 * unreachable and reclaimed, the blocks they freed are still referenced
 * and kept.  Each step is idempotent and writes nothing until it decides
 * to proceed, so a crash during the open is one more crash, and an open
 * that recovery refuses leaves the file as it was.  pool_mark_open clears
 * the clean flag only after all of them (before the first allocation).
 *
 * CLOSE.  Under heap.lock: the remote frees collected (the bitmap a clean
 * close persists must be exact), free pages punched, then pool_close
 * persists the bitmap and writes the header with the clean flag.
 *
 * EXIT.  The heap freezes instead of closing, since destructors that run
 * later may still read persistent blocks; the pool is marked clean only
 * when no other thread holds a thread heap and no log is live. */
#include "store.h"

#include <string.h>
#include <time.h>

#include "../common/crash.h"
#include "../common/error.h"
#include "../heap/pool.h"
#include "../heap/tx.h"
#include "../net/repl.h"
#include "../recovery/recovery.h"
#include "btd.h"

static int opened;

int store_open(const char *path, size_t size, enum btd_gc gc, struct heap_open_info *info)
{
	struct heap_open_info dummy;
	struct pool *p = heap_pool();
	int ret;

	if (!info)
		info = &dummy;
	memset(info, 0, sizeof(*info));
	if (opened)
		return err_set(BTD_ERR_BUSY, "a pool is already open in this process (%s)",
			       p->path);
	ret = pool_open(p, path, size, 1);
	if (ret)
		return ret;
	ret = heap_attach();
	if (!ret && !(ret = tx_replay(&info->rolled_back))) {
		ret = recovery_run(gc, info);
		tx_replay_finish(!ret); /* refused: the file as it was */
	}
	if (ret) {
		pool_abandon(p);
		heap_detach();
		return ret;
	}
	CRASH_POINT(CRASH_RECOVERY_DONE);
	if ((info->collected || info->rolled_back) && p->hdr.minor >= 2) {
		/* The figures `btd info` shows, in the header the open writes. */
		p->hdr.last_recovery = (uint64_t)time(NULL);
		p->hdr.last_kept = info->kept_blocks;
		p->hdr.last_freed = info->freed_blocks;
		p->hdr.last_rolled_back = info->rolled_back;
		p->hdr.last_us = info->gc_ns / 1000;
		if (p->marked_open)
			pool_header_write(p);
	}
	pool_mark_open(p); /* before the first write (recovery may have made it) */
	heap_ready();
	opened = 1;
	return 0;
}

void store_close(void)
{
	if (!opened || heap_frozen)
		return;
	tx_end_mine(); /* this thread's transaction never committed */
	heap_lock();
	heap_quiesce();
	opened = 0;
	if (tx_live()) {
		repl_reset();
		pool_abandon(heap_pool()); /* dirty: the next open rolls the transaction back */
	} else {
		pool_mark_clean(heap_pool());
		repl_final(); /* the whole image to the replicas, before the unmap */
		pool_abandon(heap_pool());
	}
	tx_detach();
	heap_detach();
	heap_unlock();
}

int store_exit(void)
{
	int clean = 0;

	if (!opened || heap_frozen)
		return 0;
	tx_end_mine(); /* exit inside a transaction: it never committed */
	heap_lock();
	if (heap_freeze() && !tx_live()) {
		pool_mark_clean(heap_pool());
		clean = 1;
	}
	heap_unlock();
	repl_final(); /* the mapping stays: the whole image to the replicas */
	return clean;
}

void store_abandon(void)
{
	if (!opened)
		return;
	opened = 0;
	repl_reset();
	pool_abandon(heap_pool());
	tx_detach();
	heap_detach();
}

int store_is_open(void)
{
	return opened;
}

int store_default_path(char *buf, size_t n, const char *program, unsigned instance)
{
	return pool_default_path(buf, n, program, instance);
}
