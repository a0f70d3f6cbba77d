/* tx.c: transactions -- per-thread undo logs in the pool.
 *
 * The format and the protocol are TRANSACTION LOGS in layout.h: each add
 * copies the range into the thread's log and makes the copy durable before
 * returning (one fence), the commit makes the ranges durable (one fence)
 * and then retires the log by bumping its generation (one more).  A commit
 * of N added ranges costs N + 2 fences and 3N + 1 flushes, plus one flush
 * per block the transaction allocated; a commit that added nothing costs
 * no fence at all (one, when it allocated).  libpmemobj pays about two
 * fences per range, plus its lane and redo-log work.
 *
 * WHY UNDO.  Programs change the pool with plain stores; only a log of the
 * old contents, durable before the first store, lets recovery undo a
 * transaction that did not commit.  A redo log would have to see the
 * stores.
 *
 * WHAT IS NOT LOGGED.  Blocks the transaction allocated (btd_tx_malloc):
 * nothing reachable from before the transaction points at them unless an
 * added range was changed to, so undoing those ranges makes them
 * unreachable, and the recovery GC reclaims them; the commit flushes them
 * whole.  Frees (btd_tx_free) wait for the commit, after the retire: a
 * crash before it leaves the blocks referenced by the rolled-back data, a
 * crash after it leaves them unreachable, reclaimed.  Either way nothing
 * in the pool's own metadata is logged: the descriptors of new runs are
 * durable at their creation, and the block state is the recovery GC's.
 *
 * ROOTS.  btd_root_set inside a transaction adds the root's slot (one
 * cache line) to the log and writes it without a flush: the commit makes
 * it durable with the ranges, a rollback restores it.
 *
 * THREADS.  A thread holds one of the pool's POOL_LOG_SLOTS logs from its
 * outermost begin to its commit or abort.  Its transaction is its own:
 * isolation between threads is the program's (lock what threads share).
 * The volatile state lives in this thread's struct tx_thread; the lists of
 * allocations and frees in mmap'd memory (never malloc: invariant 6). */
#include "tx.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "../common/compiler.h"
#include "../common/crash.h"
#include "../common/error.h"
#include "../common/log.h"
#include "btd.h"
#include "heap.h"
#include "heap_int.h"
#include "pmem.h"
#include "roots.h"

/* A block the transaction allocated (n: bytes to flush), one it will
 * free, or a range it added (p, n, and off: its entry's place in the log).
 * The ranges are kept here too: the adds and the commit read them in
 * DRAM, not back from the log's lines that the flushes pushed out. */
struct tx_block {
	void *p;
	size_t n;
	size_t off;
};

struct tx_list {
	struct tx_block *v;
	size_t len, cap;
};

struct tx_thread {
	unsigned epoch;           /* the open this state belongs to (tx_epoch) */
	int key_set;              /* tx_key holds it: its thread's exit ends it */
	unsigned depth;           /* nesting; 0: no transaction */
	int slot;                 /* the log held, -1 none */
	int failed;               /* a status that dooms the transaction, 0 */
	uint64_t gen;             /* the log's generation for this transaction */
	size_t off;               /* where the next entry goes in the log */
	struct tx_list ents, allocs, frees;
};

static BTD_TLS struct tx_thread tx_me = { .slot = -1 };
BTD_TLS int tx_busy;
static pthread_key_t tx_key;
static pthread_once_t tx_key_once = PTHREAD_ONCE_INIT;

/* Every open starts a new epoch: a thread's state of an earlier open (the
 * pool was abandoned or closed under it) is dropped when next seen. */
static unsigned tx_epoch = 1;

static uint32_t slots_held;       /* bit per log slot (atomic) */
static uint32_t slots_backed;     /* bit per slot backed in the file (heap.lock) */
static uint64_t slot_gen[POOL_LOG_SLOTS]; /* each log's gen, as last written (0: read it) */
static struct tx_replay_report last_replay;
static uint64_t offs[POOL_LOG_BYTES / sizeof(struct tx_entry)]; /* tx_replay's */

static struct tx_log_head *log_head(unsigned slot)
{
	return (struct tx_log_head *)(heap.pool.base + heap.pool.hdr.log_off +
				      (size_t)slot * heap.pool.hdr.log_bytes);
}

static struct tx_entry *log_entry(unsigned slot, size_t off)
{
	return (struct tx_entry *)((char *)log_head(slot) + off);
}

/* ---- the volatile lists ------------------------------------------------ */

static int list_push(struct tx_list *l, void *p, size_t n, size_t off)
{
	if (l->len == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4096 / sizeof(struct tx_block);
		void *v = l->v ? mremap(l->v, l->cap * sizeof(*l->v), cap * sizeof(*l->v),
					MREMAP_MAYMOVE)
			       : heap_internal_map(cap * sizeof(*l->v));

		if (!v || v == MAP_FAILED)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->len].p = p;
	l->v[l->len].n = n;
	l->v[l->len].off = off;
	l->len++;
	return 0;
}

/* ---- a log of this thread ----------------------------------------------- */

/* Take a free log slot; -1 when every one is held. */
static int slot_take(void)
{
	uint32_t held = __atomic_load_n(&slots_held, __ATOMIC_RELAXED);

	for (;;) {
		uint32_t all = heap.pool.hdr.log_slots >= 32 ? UINT32_MAX :
			       ((uint32_t)1 << heap.pool.hdr.log_slots) - 1;
		uint32_t free_ = ~held & all;

		if (!free_)
			return -1;
		unsigned s = (unsigned)__builtin_ctz(free_);

		if (__atomic_compare_exchange_n(&slots_held, &held, held | (uint32_t)1 << s, 1,
						__ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			return (int)s;
	}
}

static void slot_give(unsigned s)
{
	__atomic_fetch_and(&slots_held, ~((uint32_t)1 << s), __ATOMIC_RELEASE);
}

/* The log's generation moves on: its entries stop counting.  Durable on
 * return; the transaction is decided from here. */
static void retire(struct tx_thread *t)
{
	struct tx_log_head *h = log_head((unsigned)t->slot);

	slot_gen[t->slot] = t->gen + 1;
	__atomic_store_n(&h->gen, t->gen + 1, __ATOMIC_RELEASE);
	pmem_flush_why(&h->gen, sizeof(h->gen), PMEM_WHY_TX);
	CRASH_POINT(CRASH_TX_RETIRE_FLUSHED);
	pmem_drain_why(PMEM_WHY_TX);
}

/* The end of the outermost transaction, committed or not. */
static void finish(struct tx_thread *t)
{
	uintptr_t roots = (uintptr_t)heap.pool.roots;

	for (size_t i = 0; i < t->ents.len; i++) {
		uintptr_t a = (uintptr_t)t->ents.v[i].p;

		if (a - roots < POOL_ROOTS_MAX * sizeof(struct pool_root))
			roots_tx_release((struct pool_root *)a);
	}
	tx_busy = 0;
	slot_give((unsigned)t->slot);
	t->slot = -1;
	t->depth = 0;
	t->failed = 0;
	t->ents.len = t->allocs.len = t->frees.len = 0;
}

/* This thread's state, for this open. */
static struct tx_thread *me(void)
{
	struct tx_thread *t = &tx_me;

	if (unlikely(t->epoch != __atomic_load_n(&tx_epoch, __ATOMIC_ACQUIRE))) {
		t->epoch = tx_epoch;
		t->depth = 0;
		tx_busy = 0;
		t->slot = -1;
		t->failed = 0;
		t->ents.len = t->allocs.len = t->frees.len = 0;
	}
	return t;
}

/* The transaction cannot commit any more: its commit rolls back. */
static int doom(struct tx_thread *t, int status)
{
	if (!t->failed)
		t->failed = status;
	return status;
}

static void make_key(void);
static void abort_now(struct tx_thread *t);

/* ---- the calls ------------------------------------------------------------ */

int tx_begin(void)
{
	struct tx_thread *t = me();

	if (t->depth) {
		t->depth++;
		return BTD_OK;
	}
	if (!heap.open || heap_frozen)
		return err_set(BTD_ERR_BUSY, "btd_tx_begin: %s", heap_frozen ?
			       "this process may not change the pool any more (a fork child, "
			       "or exit has begun)" : "no pool is open");
	if (!heap.pool.hdr.log_off)
		return err_set(BTD_ERR_VERSION, "btd_tx_begin: pool %s has format %u.%u, which "
			       "has no transaction logs: create a new pool to use transactions",
			       heap.pool.path, heap.pool.hdr.major, heap.pool.hdr.minor);
	pmem_take_error(); /* a commit reports the failures of its own write-backs */
	int s = slot_take();

	if (s < 0)
		return err_set(BTD_ERR_BUSY, "btd_tx_begin: all %u transaction logs of pool %s "
			       "are in use by other threads; wait for one to commit",
			       (unsigned)heap.pool.hdr.log_slots, heap.pool.path);
	if (!(__atomic_load_n(&slots_backed, __ATOMIC_ACQUIRE) & (uint32_t)1 << s)) {
		/* Real blocks under the log before its first store: a full
		 * file system is an error here, never a SIGBUS later. */
		heap_lock();
		int st = pool_back_log(&heap.pool, (unsigned)s);

		if (!st)
			__atomic_fetch_or(&slots_backed, (uint32_t)1 << s, __ATOMIC_RELEASE);
		heap_unlock();
		if (st) {
			slot_give((unsigned)s);
			return st;
		}
	}
	struct tx_log_head *h = log_head((unsigned)s);

	if (!slot_gen[s] && !(slot_gen[s] = h->gen)) {
		/* a slot never used: entries of gen 0 never count */
		h->gen = slot_gen[s] = 1;
		pmem_persist_why(&h->gen, sizeof(h->gen), PMEM_WHY_TX);
	}
	if (!t->key_set) {
		pthread_once(&tx_key_once, make_key);
		pthread_setspecific(tx_key, t);
		t->key_set = 1;
	}
	t->slot = s;
	t->gen = slot_gen[s];
	t->off = sizeof(*h);
	t->ents.len = 0;
	t->failed = 0;
	t->depth = 1;
	tx_busy = 1;
	CRASH_POINT(CRASH_TX_BEGIN);
	return BTD_OK;
}

/* [p, p+n) is covered by an entry of this transaction, or lies in a block
 * it allocated (which needs no snapshot). */
static int covered(const struct tx_thread *t, uintptr_t p, size_t n)
{
	for (size_t i = 0; i < t->allocs.len; i++) {
		uintptr_t b = (uintptr_t)t->allocs.v[i].p;

		if (p >= b && p + n <= b + t->allocs.v[i].n)
			return 1;
	}
	for (size_t i = 0; i < t->ents.len; i++) {
		uintptr_t a = (uintptr_t)t->ents.v[i].p;

		if (p >= a && p + n <= a + t->ents.v[i].n)
			return 1;
	}
	return 0;
}

static int log_range(struct tx_thread *t, void *p, size_t n)
{
	if (heap_frozen)
		return doom(t, err_set(BTD_ERR_BUSY, "btd_tx_add: this process may not change "
				       "the pool any more (a fork child, or exit has begun); the "
				       "transaction rolls back"));
	if (covered(t, (uintptr_t)p, n))
		return BTD_OK;
	size_t need = tx_entry_span(n);

	if (n > heap.pool.hdr.log_bytes || t->off + need > heap.pool.hdr.log_bytes)
		return doom(t, err_set(BTD_ERR_TXFULL, "btd_tx_add(%p, %zu): the transaction's "
				       "log is full (%zu of %llu bytes used): commit smaller "
				       "transactions; this one rolls back", p, n, t->off,
				       (unsigned long long)heap.pool.hdr.log_bytes));
	if (list_push(&t->ents, p, n, t->off))
		return doom(t, err_set(BTD_ERR_NOMEM, "btd_tx_add: out of memory for the list "
				       "of ranges; the transaction rolls back"));
	struct tx_entry *e = log_entry((unsigned)t->slot, t->off);

	struct tx_entry head = { t->gen, (uintptr_t)p, n, 0, { 0 } };

	head.sum = tx_entry_sum(&head, t->off, p);
	/* The snapshot, then the head line: flushed with the copy (large
	 * copies bypass the cache on pmem) and drained once. */
	pmem_copy_flush(tx_entry_data(e), p, n, PMEM_WHY_TX);
	pmem_copy_flush(e, &head, sizeof(head), PMEM_WHY_TX);
	t->off += need;
	CRASH_POINT(CRASH_TX_ADD_COPIED);
	pmem_drain_why(PMEM_WHY_TX); /* the snapshot, before the program's first store */
	CRASH_POINT(CRASH_TX_ADD_DURABLE);
	return BTD_OK;
}

int tx_add(void *p, size_t n)
{
	struct tx_thread *t = me();

	if (!t->depth)
		return err_set(BTD_ERR_TX, "btd_tx_add: no transaction in progress "
			       "(call btd_tx_begin first)");
	if (t->failed)
		return t->failed;
	if (!n)
		return BTD_OK;
	char *lo = heap.pool.data, *hi = lo + heap.pool.npages * (size_t)POOL_PAGE;

	if ((char *)p < lo || (char *)p >= hi || n > (size_t)(hi - (char *)p))
		return doom(t, err_set(BTD_ERR_INVAL, "btd_tx_add(%p, %zu): not inside the "
				       "persistent heap; the transaction rolls back", p, n));
	return log_range(t, p, n);
}

int tx_add_meta(void *p, size_t n)
{
	struct tx_thread *t = me();

	if (!t->depth)
		return BTD_ERR_TX;
	if (t->failed)
		return t->failed;
	return log_range(t, p, n);
}

void *tx_malloc(size_t n)
{
	struct tx_thread *t = me();

	if (!t->depth) {
		err_set(BTD_ERR_TX, "btd_tx_malloc: no transaction in progress");
		errno = EINVAL;
		return NULL;
	}
	void *p = heap_malloc(n ? n : 1);

	if (!p) {
		err_set(BTD_ERR_NOMEM, "btd_tx_malloc(%zu): %s", n, heap_frozen ?
			"this process may not allocate from the pool any more (a fork child, "
			"or exit has begun)" : "the pool is full");
		return NULL;
	}
	if (list_push(&t->allocs, p, n, 0)) {
		heap_free(p);
		errno = ENOMEM;
		return NULL;
	}
	return p;
}

int tx_free(void *p)
{
	struct tx_thread *t = me();

	if (!t->depth)
		return err_set(BTD_ERR_TX, "btd_tx_free: no transaction in progress");
	if (!p)
		return BTD_OK;
	if (!heap_is_block(p))
		return err_set(BTD_ERR_INVAL, "btd_tx_free(%p): not a live block of the pool (a "
			       "pointer into the middle of one, or one already freed)", p);
	for (size_t i = 0; i < t->frees.len; i++)
		if (t->frees.v[i].p == p)
			return err_set(BTD_ERR_INVAL, "btd_tx_free(%p): freed twice in this "
				       "transaction", p);
	if (list_push(&t->frees, p, 0, 0))
		return doom(t, err_set(BTD_ERR_NOMEM, "btd_tx_free: out of memory for the "
				       "list of frees; the transaction rolls back"));
	return BTD_OK;
}

/* Undo: every snapshot back, newest first, durable; then retire. */
static void roll_back(struct tx_thread *t)
{
	for (size_t k = t->ents.len; k-- > 0;) {
		const struct tx_entry *e = log_entry((unsigned)t->slot, t->ents.v[k].off);

		memcpy((void *)(uintptr_t)e->addr, tx_entry_data(e), e->len);
		pmem_flush_why((void *)(uintptr_t)e->addr, e->len, PMEM_WHY_TX);
	}
	CRASH_POINT(CRASH_TX_ABORT_RESTORED);
	pmem_drain_why(PMEM_WHY_TX);
	retire(t);
	CRASH_POINT(CRASH_TX_ABORT_RETIRED);
}

static void abort_now(struct tx_thread *t)
{
	if (t->ents.len)
		roll_back(t);
	tx_busy = 0; /* the frees below are ours, not the program's */
	for (size_t i = t->allocs.len; i-- > 0;)
		heap_free(t->allocs.v[i].p);
	finish(t);
}

void tx_abort(void)
{
	struct tx_thread *t = me();

	if (t->depth)
		abort_now(t);
}

int tx_commit(void)
{
	struct tx_thread *t = me();

	if (!t->depth)
		return err_set(BTD_ERR_TX, "btd_tx_commit: no transaction in progress "
			       "(never begun, or aborted)");
	if (--t->depth)
		return BTD_OK; /* an inner level */
	if (heap_frozen && !t->failed)
		doom(t, err_set(BTD_ERR_BUSY, "btd_tx_commit: this process may not change the "
				"pool any more (a fork child, or exit has begun); rolled back"));
	if (t->failed) {
		int st = t->failed;

		abort_now(t);
		return st;
	}
	int flushed = 0;

	heap_desc_sync(); /* the classes of slabs recut for its blocks, first */
	for (size_t i = 0; i < t->ents.len; i++) {
		if (!CRASH_DROPPED(CRASH_DROP_TX_COMMIT))
			pmem_flush_why(t->ents.v[i].p, t->ents.v[i].n, PMEM_WHY_TX);
		flushed = 1;
	}
	for (size_t i = 0; i < t->allocs.len; i++) {
		if (t->allocs.v[i].n)
			pmem_flush_why(t->allocs.v[i].p, t->allocs.v[i].n, PMEM_WHY_TX);
		flushed = 1;
	}
	CRASH_POINT(CRASH_TX_COMMIT_FLUSHED);
	if (flushed)
		pmem_drain_why(PMEM_WHY_TX); /* the new contents, before the retire */
	CRASH_POINT(CRASH_TX_COMMIT_DRAINED);
	if (t->ents.len)
		retire(t);
	CRASH_POINT(CRASH_TX_COMMIT_RETIRED);
	tx_busy = 0; /* the frees below are ours, not the program's */
	for (size_t i = 0; i < t->frees.len; i++)
		heap_free(t->frees.v[i].p);
	finish(t);
	int e = pmem_take_error();

	return e ? err_set(BTD_ERR_IO, "btd_tx_commit: writing the pool back failed (%s): the "
			   "transaction may not be durable", err_text(e)) : BTD_OK;
}

int tx_depth(void)
{
	return (int)me()->depth;
}

int tx_live(void)
{
	return __atomic_load_n(&slots_held, __ATOMIC_ACQUIRE) != 0;
}

/* A thread that ends inside a transaction never commits it: roll it back
 * now, and give its log back (else a later open would roll it back over
 * what other threads committed since, and the log would be lost to the
 * process).  TSD destructors run in the ending thread, with its TLS. */
static void thread_ends(void *arg)
{
	struct tx_thread *t = arg;

	if (t != &tx_me)
		return;
	if (t->depth && t->epoch == __atomic_load_n(&tx_epoch, __ATOMIC_ACQUIRE))
		abort_now(t);
	struct tx_list *lists[] = { &t->ents, &t->allocs, &t->frees };

	for (unsigned i = 0; i < BTD_ARRAY_SIZE(lists); i++) { /* the thread's lists go */
		if (lists[i]->v)
			munmap(lists[i]->v, lists[i]->cap * sizeof(*lists[i]->v));
		lists[i]->v = NULL;
		lists[i]->len = lists[i]->cap = 0;
	}
}

static void make_key(void)
{
	pthread_key_create(&tx_key, thread_ends);
}

void tx_end_mine(void)
{
	struct tx_thread *t = me();

	if (t->depth)
		abort_now(t);
}

void tx_detach(void)
{
	__atomic_fetch_add(&tx_epoch, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&slots_held, 0, __ATOMIC_RELEASE);
	memset(slot_gen, 0, sizeof(slot_gen));
	roots_tx_reset();
}

int tx_takes_free(void *p)
{
	struct tx_thread *t = me();

	if (!t->depth)
		return 0;
	for (size_t i = 0; i < t->allocs.len; i++)
		if (t->allocs.v[i].p == p) {
			/* its own block, freed: the abort must not free it again */
			t->allocs.v[i] = t->allocs.v[--t->allocs.len];
			return 0;
		}
	if (!heap_is_block(p))
		return 0; /* heap_free names the misuse */
	uintptr_t lo = (uintptr_t)p, hi = lo + heap_usable_size(p);

	for (size_t i = 0; i < t->ents.len; i++) {
		uintptr_t a = (uintptr_t)t->ents.v[i].p;

		if (a < hi && a + t->ents.v[i].n > lo)
			return !list_push(&t->frees, p, 0, 0);
	}
	return 0;
}

/* ---- replay at open ------------------------------------------------------- */

/* Whether [a, a+n) lies where a snapshot may go back: the root table or
 * the data pages. */
static int replay_target_ok(uint64_t a, uint64_t n)
{
	uintptr_t roots = (uintptr_t)heap.pool.roots;
	uintptr_t roots_end = roots + POOL_ROOTS_MAX * sizeof(struct pool_root);
	uintptr_t data = (uintptr_t)heap.pool.data;
	uintptr_t data_end = data + heap.pool.npages * (size_t)POOL_PAGE;

	if (n > POOL_LOG_BYTES || a + n < a)
		return 0;
	return (a >= roots && a + n <= roots_end) || (a >= data && a + n <= data_end);
}

/* What replay overwrote, so that an open that recovery then refuses can
 * put it back (such an open writes nothing: layout.h, CLEAN FLAG).  Each
 * record: addr, len, the bytes, and the record's own start, so that the
 * records can be walked back from the end.  At most every log's worth. */
struct replay_saved {
	uint64_t addr, len;
};

static char *saved;
static size_t saved_len, saved_cap;

static int save(uint64_t addr, uint64_t len)
{
	struct replay_saved rs = { addr, len };
	uint64_t start = saved_len;
	size_t need = saved_len + sizeof(rs) + len + sizeof(start);

	if (need > saved_cap) {
		size_t cap = (size_t)POOL_LOG_SLOTS * POOL_LOG_BYTES * 2;

		if (saved || need > cap || !(saved = heap_internal_map(cap)))
			return -1;
		saved_cap = cap;
	}
	memcpy(saved + saved_len, &rs, sizeof(rs));
	memcpy(saved + saved_len + sizeof(rs), (void *)(uintptr_t)addr, len);
	memcpy(saved + saved_len + sizeof(rs) + len, &start, sizeof(start));
	saved_len = need;
	return 0;
}

int tx_replay(uint64_t *rolled_back)
{
	struct pool *p = &heap.pool;

	memset(&last_replay, 0, sizeof(last_replay));
	*rolled_back = 0;
	__atomic_fetch_add(&tx_epoch, 1, __ATOMIC_RELEASE);
	slots_held = slots_backed = 0;
	memset(slot_gen, 0, sizeof(slot_gen));
	roots_tx_reset();
	saved_len = 0;
	if (!p->hdr.log_off)
		return BTD_OK;
	for (unsigned s = 0; s < p->hdr.log_slots; s++) {
		uint64_t bytes;
		unsigned n = tx_log_scan(log_head(s), p->hdr.log_bytes, &bytes, offs);

		if (!n)
			continue;
		for (unsigned i = n; i-- > 0;) {
			const struct tx_entry *e = log_entry(s, offs[i]);

			if (!replay_target_ok(e->addr, e->len)) {
				last_replay.bad_ranges++;
				continue;
			}
			if (save(e->addr, e->len))
				return err_set(BTD_ERR_NOMEM, "pool %s: out of memory to replay its "
					       "transaction logs", p->path);
			memcpy((void *)(uintptr_t)e->addr, tx_entry_data(e), e->len);
			last_replay.ranges++;
			last_replay.bytes += e->len;
		}
		last_replay.logs++;
		log_msg(LOG_INFO, "pool %s: rolling back a transaction in flight (log %u, %u ranges)",
			p->path, s, n);
	}
	*rolled_back = last_replay.logs;
	return BTD_OK;
}

void tx_replay_finish(int keep)
{
	struct pool *p = &heap.pool;
	size_t off = 0;

	if (!last_replay.logs)
		return;
	if (!keep) { /* put back what replay overwrote, newest first */
		for (off = saved_len; off > 0;) {
			struct replay_saved rs;
			uint64_t start;

			memcpy(&start, saved + off - sizeof(start), sizeof(start));
			memcpy(&rs, saved + start, sizeof(rs));
			memcpy((void *)(uintptr_t)rs.addr, saved + start + sizeof(rs), rs.len);
			off = start;
		}
		return;
	}
	for (off = 0; off < saved_len;) {
		struct replay_saved rs;

		memcpy(&rs, saved + off, sizeof(rs));
		pmem_flush_why((void *)(uintptr_t)rs.addr, rs.len, PMEM_WHY_RECOVERY);
		off += sizeof(rs) + rs.len + sizeof(uint64_t);
	}
	CRASH_POINT(CRASH_REPLAY_RESTORED);
	pmem_drain_why(PMEM_WHY_RECOVERY); /* the snapshots back, durable: then retire */
	for (unsigned s = 0; s < p->hdr.log_slots; s++) {
		struct tx_log_head *h = log_head(s);
		uint64_t bytes;

		if (tx_log_scan(h, p->hdr.log_bytes, &bytes, NULL)) {
			h->gen++;
			pmem_flush_why(&h->gen, sizeof(h->gen), PMEM_WHY_RECOVERY);
		}
	}
	CRASH_POINT(CRASH_REPLAY_RETIRE);
	pmem_drain_why(PMEM_WHY_RECOVERY);
}

const struct tx_replay_report *tx_replay_last(void)
{
	return &last_replay;
}
