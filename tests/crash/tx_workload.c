/* tx_workload.c: the workload of the crash-injection tests (scripts/crash.sh).
 *
 *	tx_workload [--threads N] [--txs N] [--slack]      (the pool: BTD_POOL)
 *
 * N threads (2), each with its own list and hash table (tx_model.h), run N
 * transactions each (2000) and exit; run again on the same pool, they go
 * on from the count the pool holds.  Every transaction is the model's:
 * records made with btd_tx_malloc, unlinked and freed with btd_tx_free,
 * links changed after btd_tx_add, the structures of transaction 1 and
 * every resized table published with btd_root_set inside the transaction;
 * some are nested, and now and then one is aborted -- plainly, from an
 * inner level, after a root update, or by a full log -- before the real
 * one, and its undoing is checked at once; and now and then, outside any
 * transaction, the root wl.T.alias is set to the meta or deleted.  Blocks
 * are asked for whole, their unused tails cleared, unless --slack (see
 * WHOLE BLOCKS in tx_model.h).  After each commit returns,
 * "THREAD COUNT\n" goes to descriptor 3 when it is open (a file the driver
 * appends to): the verifier then knows what committed.
 *
 * Links only libbtd and uses btd.h alone: what any program could do.
 * Exit status 0, or 2 with a line on stderr when a call fails that should
 * not (the driver reports it). */
#include <btd.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tx_model.h"

#define REPORT_FD 3
#define ABORT_ONE_IN 8
#define NEST_ONE_IN 5
#define ALIAS_ONE_IN 6

struct worker {
	unsigned thread;
	uint64_t txs;
	struct wl_model m;
	char meta_name[32], table_name[32], alias_name[32];
	struct wl_meta *meta;
	struct wl_table *table;
	pthread_t tid;
};

static int report_open;
static int slack; /* --slack */

static __attribute__((noreturn)) void fail(const struct worker *w, const char *what, int st)
{
	fprintf(stderr, "tx_workload: thread %u, transaction %llu: %s: %s (%s)\n", w->thread,
		(unsigned long long)w->m.seq, what, st ? btd_strerror(st) : "wrong result",
		btd_last_error());
	_exit(2);
}

static void check(const struct worker *w, int st, const char *what)
{
	if (st)
		fail(w, what, st);
}

static void add(const struct worker *w, void *p, size_t n)
{
	check(w, btd_tx_add(p, n), "btd_tx_add");
}

/* A block for n bytes: the whole block, its tail cleared (WHOLE BLOCKS in
 * tx_model.h), unless --slack. */
static void *tx_alloc(const struct worker *w, size_t n)
{
	size_t whole = slack ? n : wl_block_size(n);
	char *p = btd_tx_malloc(whole);

	if (!p)
		fail(w, "btd_tx_malloc", errno == ENOMEM ? BTD_ERR_NOMEM : BTD_ERR_INVAL);
	memset(p + n, 0, whole - n);
	return p;
}

static struct wl_rec *new_rec(const struct worker *w, uint64_t seq, uint64_t key, uint64_t len)
{
	struct wl_rec *r = tx_alloc(w, sizeof(*r) + len);

	wl_rec_fill(r, w->thread, seq, key, len);
	return r;
}

/* The link that points at the table's record of key. */
static struct wl_rec **table_link(const struct worker *w, uint64_t key)
{
	struct wl_rec **pp = &w->table->bucket[wl_bucket(key, w->table->nbuckets)];

	while (*pp && (*pp)->key != key)
		pp = &(*pp)->next;
	if (!*pp)
		fail(w, "a key of the model is not in the table", 0);
	return pp;
}

/* Unlink the record *pp points at, and free it at the commit. */
static void unlink_free(const struct worker *w, struct wl_rec **pp, const char *what)
{
	struct wl_rec *r = *pp;

	add(w, pp, sizeof(*pp));
	*pp = r->next;
	check(w, btd_tx_free(r), what);
}

static void resize(struct worker *w, uint64_t nb)
{
	struct wl_table *old = w->table;
	struct wl_table *t = tx_alloc(w, sizeof(*t) + nb * sizeof(t->bucket[0]));

	t->magic = WL_TABLE_MAGIC;
	t->nbuckets = nb;
	memset(t->bucket, 0, nb * sizeof(t->bucket[0]));
	for (uint64_t b = 0; b < old->nbuckets; b++) {
		for (struct wl_rec *r = old->bucket[b], *next; r; r = next) {
			struct wl_rec **head = &t->bucket[wl_bucket(r->key, nb)];

			next = r->next;
			add(w, &r->next, sizeof(r->next));
			r->next = *head;
			*head = r;
		}
	}
	check(w, btd_root_set(w->table_name, t), "btd_root_set of the new table");
	check(w, btd_tx_free(old), "btd_tx_free of the old table");
	w->table = t;
}

static void apply(struct worker *w, const struct wl_action *a, uint64_t seq)
{
	struct wl_meta *m = w->meta;
	struct wl_rec *r, **pp;

	switch (a->kind) {
	case ACT_LIST_PUSH:
		r = new_rec(w, seq, 0, a->len);
		r->next = m->list;
		m->list = r;
		m->nlist++;
		break;
	case ACT_LIST_DROP:
		pp = &m->list;
		for (size_t i = 0; i < a->idx; i++)
			pp = &(*pp)->next;
		unlink_free(w, pp, "btd_tx_free of a list record");
		m->nlist--;
		break;
	case ACT_TABLE_PUT:
		pp = &w->table->bucket[wl_bucket(a->key, w->table->nbuckets)];
		r = new_rec(w, seq, a->key, a->len);
		add(w, pp, sizeof(*pp));
		r->next = *pp;
		*pp = r;
		m->ntable++;
		break;
	case ACT_TABLE_REPLACE:
		pp = table_link(w, a->key);
		r = new_rec(w, seq, a->key, a->len);
		r->next = (*pp)->next;
		check(w, btd_tx_free(*pp), "btd_tx_free of a replaced record");
		add(w, pp, sizeof(*pp));
		*pp = r;
		break;
	case ACT_TABLE_DEL:
		unlink_free(w, table_link(w, a->key), "btd_tx_free of a deleted record");
		m->ntable--;
		break;
	case ACT_TABLE_RESIZE:
		resize(w, a->nb);
		break;
	case ACT_BATCH_PUT: /* newest first: keys BATCH_N down to 1 */
		for (uint64_t k = 1; k <= BATCH_N; k++) {
			r = new_rec(w, seq, k, a->len);
			r->next = m->batch;
			m->batch = r;
		}
		break;
	case ACT_BATCH_DROP:
		for (r = m->batch; r; r = r->next)
			check(w, btd_tx_free(r), "btd_tx_free of a batch record");
		m->batch = NULL;
		break;
	}
}

/* Transaction 1: both structures, published together. */
static void publish(struct worker *w)
{
	struct wl_meta *m = tx_alloc(w, sizeof(*m));
	struct wl_table *t = tx_alloc(w, sizeof(*t) + TABLE_MIN * sizeof(t->bucket[0]));

	memset(m, 0, sizeof(*m));
	m->magic = WL_META_MAGIC;
	m->thread = w->thread;
	t->magic = WL_TABLE_MAGIC;
	t->nbuckets = TABLE_MIN;
	memset(t->bucket, 0, TABLE_MIN * sizeof(t->bucket[0]));
	check(w, btd_root_set(w->meta_name, m), "btd_root_set of the meta");
	check(w, btd_root_set(w->table_name, t), "btd_root_set of the table");
	w->meta = m;
	w->table = t;
}

/* A transaction that changes everything it can reach and is rolled back:
 * afterwards the pool must be as before, which is checked here. */
static void aborted(struct worker *w, uint64_t r)
{
	struct wl_meta *m = w->meta, before = *m;
	struct wl_rec *head = m->list;
	struct wl_rec *b0 = w->table->bucket[0];
	unsigned how = (unsigned)(r >> 8) % 4;
	int st;

	check(w, btd_tx_begin(), "btd_tx_begin (to abort)");
	if (how == 1)
		check(w, btd_tx_begin(), "inner btd_tx_begin (to abort)");
	add(w, m, sizeof(*m));
	struct wl_rec *x = new_rec(w, 0xdead, 0xdead, 16 + r % 500);

	x->next = m->list;
	m->list = x;
	m->seq = 0xdeadbeef;
	m->nlist += 1000;
	if (head && head->next)
		check(w, btd_tx_free(head->next), "btd_tx_free (to abort)");
	add(w, &w->table->bucket[0], sizeof(w->table->bucket[0]));
	w->table->bucket[0] = x;
	if (how == 3)
		check(w, btd_root_set(w->table_name, x), "btd_root_set (to abort)");
	if (how == 2) {
		/* A range larger than the whole log (from the meta on; blocks
		 * this transaction allocated would need no snapshot): the
		 * transaction is doomed, and its commit rolls it back and says
		 * so. */
		if (btd_tx_add(m, 128 << 10) != BTD_ERR_TXFULL)
			fail(w, "btd_tx_add of 128 KiB did not say the log is full", 0);
		if ((st = btd_tx_commit()) != BTD_ERR_TXFULL)
			fail(w, "the commit of a doomed transaction did not fail with TXFULL", st);
	} else {
		btd_tx_abort();
		if (how == 1 && (st = btd_tx_commit()) != BTD_ERR_TX)
			fail(w, "an inner commit after the abort did not say BTD_ERR_TX", st);
		if ((st = btd_tx_commit()) != BTD_ERR_TX)
			fail(w, "a commit after the abort did not say BTD_ERR_TX", st);
	}
	if (btd_tx_depth() != 0)
		fail(w, "a transaction is still open after its abort", 0);
	if (memcmp(m, &before, sizeof(before)) || w->table->bucket[0] != b0 ||
	    btd_root_get(w->table_name) != w->table)
		fail(w, "the aborted transaction was not undone", 0);
}

static void report(const struct worker *w, uint64_t seq)
{
	char line[48];
	int n = snprintf(line, sizeof(line), "%u %llu\n", w->thread, (unsigned long long)seq);

	if (report_open && write(REPORT_FD, line, (size_t)n) != n)
		fail(w, "cannot write the report", BTD_ERR_IO);
}

/* Outside any transaction: the alias root set to the meta, or deleted --
 * the plain root updates, durable on return. */
static void alias(const struct worker *w, uint64_t r)
{
	check(w, btd_root_set(w->alias_name, r & 1 ? w->meta : NULL),
	      "btd_root_set of the alias");
}

static void run_tx(struct worker *w)
{
	struct wl_action a[3];
	uint64_t seq = w->m.seq + 1;
	uint64_t r = wl_mix((uint64_t)w->thread << 56 ^ seq << 4 ^ 0xb);
	int nest = r % NEST_ONE_IN == 0;

	if (seq > 1 && (r >> 32) % ABORT_ONE_IN == 0)
		aborted(w, r);
	check(w, btd_tx_begin(), "btd_tx_begin");
	unsigned n = wl_model_step(&w->m, a);

	if (seq == 1) {
		publish(w);
	} else {
		add(w, w->meta, sizeof(*w->meta));
		if (nest)
			check(w, btd_tx_begin(), "inner btd_tx_begin");
		for (unsigned k = 0; k < n; k++)
			apply(w, &a[k], seq);
		if (nest)
			check(w, btd_tx_commit(), "inner btd_tx_commit");
	}
	w->meta->seq = seq;
	check(w, btd_tx_commit(), "btd_tx_commit");
	report(w, seq);
	if ((r >> 40) % ALIAS_ONE_IN == 0)
		alias(w, r >> 48);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	for (uint64_t i = 0; i < w->txs; i++)
		run_tx(w);
	return NULL;
}

/* Where the pool left thread w: its count, its model replayed to it. */
static void resume(struct worker *w)
{
	struct wl_action a[3];

	snprintf(w->meta_name, sizeof(w->meta_name), "wl.%u", w->thread);
	snprintf(w->table_name, sizeof(w->table_name), "wl.%u.table", w->thread);
	snprintf(w->alias_name, sizeof(w->alias_name), "wl.%u.alias", w->thread);
	wl_model_init(&w->m, w->thread);
	w->meta = btd_root_get(w->meta_name);
	w->table = btd_root_get(w->table_name);
	if (!w->meta != !w->table || (w->meta && (w->meta->magic != WL_META_MAGIC ||
						  w->table->magic != WL_TABLE_MAGIC)))
		fail(w, "the pool holds half a workload (run tx_verify)", 0);
	for (uint64_t s = w->meta ? w->meta->seq : 0; w->m.seq < s;)
		wl_model_step(&w->m, a);
}

static unsigned long arg_num(int argc, char **argv, int *i)
{
	char *end;

	if (*i + 1 >= argc)
		return 0;
	unsigned long v = strtoul(argv[++*i], &end, 10);

	return *end ? 0 : v;
}

int main(int argc, char **argv)
{
	unsigned threads = 2;
	unsigned long txs = 2000;
	struct worker w[WL_THREADS_MAX];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--threads"))
			threads = (unsigned)arg_num(argc, argv, &i);
		else if (!strcmp(argv[i], "--txs"))
			txs = arg_num(argc, argv, &i);
		else if (!strcmp(argv[i], "--slack"))
			slack = 1;
		else
			threads = 0;
		if (!threads || threads > WL_THREADS_MAX || !txs) {
			fprintf(stderr, "usage: tx_workload [--threads 1..%u] [--txs N>0] "
				"[--slack] (the pool: BTD_POOL)\n", WL_THREADS_MAX);
			return 2;
		}
	}
	report_open = fcntl(REPORT_FD, F_GETFD) >= 0;
	if (!btd_cluster_create(NULL)) {
		fprintf(stderr, "tx_workload: %s\n", btd_last_error());
		return 2;
	}
	for (unsigned t = 0; t < threads; t++) {
		memset(&w[t], 0, sizeof(w[t]));
		w[t].thread = t;
		w[t].txs = txs;
		resume(&w[t]);
	}
	for (unsigned t = 0; t < threads; t++)
		if (pthread_create(&w[t].tid, NULL, worker_main, &w[t])) {
			fprintf(stderr, "tx_workload: cannot start thread %u\n", t);
			return 2;
		}
	for (unsigned t = 0; t < threads; t++)
		pthread_join(w[t].tid, NULL);
	for (unsigned t = 0; t < threads; t++)
		wl_model_free(&w[t].m);
	return 0;
}
