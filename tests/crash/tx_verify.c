/* tx_verify.c: after a crash of tx_workload, the pool holds exactly the
 * transactions that committed, and nothing else is wrong with it.
 *
 *	tx_verify REPORTED [--threads N]      (the pool: BTD_POOL)
 *
 * REPORTED is the file the workload's descriptor 3 appended to.  The pool
 * is opened as a program's open would (replay, recovery), in this process,
 * so that a crash point of recovery armed with BTD_CRASH_AT crashes it
 * (with the simulated power failure of BTD_CRASH_SIM, as the workload's).
 * Then, for the pool:
 *   - recovery found no damage (root slots, descriptors, wild pointers);
 *   - the heap checker finds no violation, and the reachability audit no
 *     reachable free block and no leaked one;
 *   - per thread T: the count C in the pool is what T last reported, or
 *     one more (the crash fell between a commit and its report);
 *     replaying the model (tx_model.h) to C gives exactly the list and the
 *     table the pool holds -- the records of transactions 1..C, each with
 *     a valid checksum and the payload it was written with, in the right
 *     places -- and not one record of a transaction that did not commit;
 *   - the root wl.T.alias, set and deleted outside transactions, is the
 *     meta or absent;
 *   - the blocks reachable are exactly the structures' (no block kept
 *     alive by anything else).
 * It closes the pool cleanly, so that `btd check` afterwards must say ok.
 * Links the internal libraries for the heap checker and the audit.
 * Exit status 0 when all holds, 1 with the reasons on stderr (the pool is
 * then left as recovery made it, not closed), 2 when it cannot run. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "../../common/crash.h"
#include "../../common/settings.h"
#include "../../heap/heap.h"
#include "../../heap/heap_int.h"
#include "../../heap/pmem_sim.h"
#include "../../heap/roots.h"
#include "../../recovery/recovery.h"
#include "../../store/store.h"
#include "btd.h"
#include "tx_model.h"

extern char **environ;

static unsigned problems;

#define BAD(...)                                                     \
	do {                                                         \
		if (problems++ < 20)                                 \
			fprintf(stderr, "tx_verify: " __VA_ARGS__);  \
	} while (0)

/* The highest count each thread reported; -1 for none. */
static void read_reported(const char *path, long long *last, unsigned threads)
{
	FILE *f = fopen(path, "r");
	unsigned t;
	unsigned long long s;

	for (unsigned i = 0; i < threads; i++)
		last[i] = -1;
	if (!f) {
		if (errno != ENOENT) {
			fprintf(stderr, "tx_verify: cannot read %s: %s\n", path, strerror(errno));
			exit(2);
		}
		return;
	}
	while (fscanf(f, "%u %llu\n", &t, &s) == 2)
		if (t < threads && (long long)s > last[t])
			last[t] = (long long)s;
	fclose(f);
}

/* Whether b is an allocated block of at least n bytes: a pointer of the
 * structures that is not one is named (the audit only counts them), and
 * never followed. */
static int allocated(unsigned t, const void *b, size_t n, const char *what, size_t i)
{
	if (!heap_owns(b) || (uintptr_t)b % 16 || !heap_bit_test(b)) {
		BAD("thread %u: %s %zu at %p is not an allocated block of the heap\n", t, what,
		    i, b);
		return 0;
	}
	if (heap_usable_size(b) < n) {
		BAD("thread %u: %s %zu at %p is a block of %zu bytes, not the %zu it needs\n", t,
		    what, i, b, heap_usable_size(b), n);
		return 0;
	}
	return 1;
}

/* A record against the one the model expects there. */
static void check_rec(unsigned t, const struct wl_rec *r, const struct wl_mrec *want,
		      const char *where, size_t i)
{
	if (!allocated(t, r, sizeof(*r) + want->len, where, i))
		return;
	if (r->thread != t || r->seq != want->seq || r->key != want->key || r->len != want->len) {
		BAD("thread %u: %s %zu is (thread %llu, transaction %llu, key %llu, %llu bytes); "
		    "the model has (transaction %llu, key %llu, %llu bytes)\n", t, where, i,
		    (unsigned long long)r->thread, (unsigned long long)r->seq,
		    (unsigned long long)r->key, (unsigned long long)r->len,
		    (unsigned long long)want->seq, (unsigned long long)want->key,
		    (unsigned long long)want->len);
		return;
	}
	uint64_t found = wl_rec_sum(t, r->seq, r->key, r->len, r->payload);

	if (found != r->sum || r->sum != wl_rec_sum(t, want->seq, want->key, want->len, NULL))
		BAD("thread %u: %s %zu (transaction %llu, key %llu, %llu bytes): its checksum or "
		    "its payload is wrong\n", t, where, i, (unsigned long long)r->seq,
		    (unsigned long long)r->key, (unsigned long long)r->len);
}

static int by_key(const void *a, const void *b)
{
	uint64_t x = ((const struct wl_mrec *)a)->key, y = ((const struct wl_mrec *)b)->key;

	return x < y ? -1 : x > y;
}

static void check_table(unsigned t, const struct wl_table *tb, const struct wl_model *m)
{
	struct wl_mrec *want = malloc((m->ntable + 1) * sizeof(*want));
	const struct wl_rec **got = malloc((m->ntable + 1) * sizeof(*got));
	size_t n = 0;

	if (!want || !got)
		exit(2);
	if (tb->magic != WL_TABLE_MAGIC || tb->nbuckets != m->nbuckets) {
		BAD("thread %u: the table has magic %llx and %llu buckets; the model has %llu "
		    "buckets\n", t, (unsigned long long)tb->magic, (unsigned long long)tb->nbuckets,
		    (unsigned long long)m->nbuckets);
		goto out;
	}
	if (!allocated(t, tb, sizeof(*tb) + tb->nbuckets * sizeof(tb->bucket[0]), "table block", 0))
		goto out;
	for (uint64_t b = 0; b < tb->nbuckets; b++) {
		for (const struct wl_rec *r = tb->bucket[b]; r; r = r->next) {
			if (!allocated(t, r, sizeof(*r), "table record", n))
				goto out;
			if (n >= m->ntable) {
				BAD("thread %u: the table holds more than the model's %zu "
				    "records\n", t, m->ntable);
				goto out;
			}
			if (wl_bucket(r->key, tb->nbuckets) != b)
				BAD("thread %u: key %llu is in bucket %llu, not %llu\n", t,
				    (unsigned long long)r->key, (unsigned long long)b,
				    (unsigned long long)wl_bucket(r->key, tb->nbuckets));
			got[n++] = r;
		}
	}
	if (n != m->ntable) {
		BAD("thread %u: the table holds %zu records; the model has %zu\n", t, n, m->ntable);
		goto out;
	}
	memcpy(want, m->table, n * sizeof(*want));
	qsort(want, n, sizeof(*want), by_key);
	for (size_t i = 0; i < n; i++) { /* sort the records found by key too */
		for (size_t j = i; j > 0 && got[j - 1]->key > got[j]->key; j--) {
			const struct wl_rec *x = got[j];

			got[j] = got[j - 1];
			got[j - 1] = x;
		}
	}
	for (size_t i = 0; i < n; i++)
		check_rec(t, got[i], &want[i], "table record", i);
out:
	free(want);
	free(got);
}

/* One thread's structures; returns the blocks they hold. */
static uint64_t check_thread(unsigned t, long long last, uint64_t *committed)
{
	char name[32], tname[32];

	snprintf(name, sizeof(name), "wl.%u", t);
	snprintf(tname, sizeof(tname), "wl.%u.table", t);
	const struct wl_meta *meta = roots_get(name);
	const struct wl_table *tb = roots_get(tname);
	uint64_t c = meta ? meta->seq : 0;

	*committed = c;
	if (!meta != !tb) {
		BAD("thread %u: root %s is %s but root %s is %s\n", t, name,
		    meta ? "set" : "missing", tname, tb ? "set" : "missing");
		return 0;
	}
	if (meta && allocated(t, meta, sizeof(*meta), "meta block", 0) &&
	    (meta->magic != WL_META_MAGIC || meta->thread != t)) {
		BAD("thread %u: the meta block has magic %llx, thread %llu\n", t,
		    (unsigned long long)meta->magic, (unsigned long long)meta->thread);
		return 0;
	}
	uint64_t lo = last < 0 ? 0 : (uint64_t)last;

	if (c < lo || c > lo + 1) {
		BAD("thread %u: the pool holds %llu committed transactions, but %s%llu had "
		    "committed: %s\n", t, (unsigned long long)c,
		    last < 0 ? "none reported, so " : "", (unsigned long long)lo,
		    c < lo ? "a committed transaction was lost" : "more than one of them "
		    "committed unreported (an uncommitted one is present)");
		return 0;
	}
	snprintf(name, sizeof(name), "wl.%u.alias", t);
	const void *alias = roots_get(name);

	if (alias && alias != meta)
		BAD("thread %u: root %s is %p, not the meta %p\n", t, name, alias,
		    (const void *)meta);
	if (!meta)
		return 0;
	if (!allocated(t, meta, sizeof(*meta), "meta block", 0) ||
	    !allocated(t, tb, sizeof(*tb), "table block", 0))
		return 0;
	struct wl_model m;
	struct wl_action a[3];

	wl_model_init(&m, t);
	while (m.seq < c)
		wl_model_step(&m, a);
	if (meta->nlist != m.nlist || meta->ntable != m.ntable)
		BAD("thread %u: the meta counts %llu list and %llu table records; the model "
		    "%zu and %zu\n", t, (unsigned long long)meta->nlist,
		    (unsigned long long)meta->ntable, m.nlist, m.ntable);
	size_t i = 0;

	for (const struct wl_rec *r = meta->list; r; r = r->next, i++) {
		if (!allocated(t, r, sizeof(*r), "list record", i))
			break;
		if (i >= m.nlist) {
			BAD("thread %u: the list holds more than the model's %zu records\n", t,
			    m.nlist);
			break;
		}
		check_rec(t, r, &m.list[i], "list record", i);
	}
	if (i < m.nlist)
		BAD("thread %u: the list holds %zu records; the model has %zu\n", t, i, m.nlist);
	check_table(t, tb, &m);
	i = 0;
	for (const struct wl_rec *r = meta->batch; r; r = r->next, i++) {
		struct wl_mrec want = { m.batch, BATCH_N - i, BATCH_LEN };

		if (!allocated(t, r, sizeof(*r), "batch record", i))
			break;
		if (i >= (m.batch ? BATCH_N : 0)) {
			BAD("thread %u: the batch holds more than the model's %u records\n", t,
			    m.batch ? BATCH_N : 0);
			break;
		}
		check_rec(t, r, &want, "batch record", i);
	}
	if (i < (m.batch ? BATCH_N : 0))
		BAD("thread %u: the batch holds %zu records; the model has %u\n", t, i, BATCH_N);
	uint64_t blocks = 2 + m.nlist + m.ntable + (m.batch ? BATCH_N : 0);

	wl_model_free(&m);
	return blocks;
}

/* What recovery reported that a crash must never leave. */
static void check_recovery(const struct heap_open_info *info)
{
	const struct recovery_report *r = recovery_last();

	if (r->damaged_roots)
		BAD("recovery found %u damaged root slots\n", r->damaged_roots);
	if (r->suspicious || r->bad_descs || r->cut_runs)
		BAD("recovery found page descriptors failing their checks (%llu), disagreeing "
		    "with the runs (%llu), large runs cut (%llu)\n",
		    (unsigned long long)r->suspicious, (unsigned long long)r->bad_descs,
		    (unsigned long long)r->cut_runs);
	if (r->wild)
		BAD("recovery found %llu reachable pointers into pages of no live run (the "
		    "first: 0x%llx)\n", (unsigned long long)r->wild,
		    (unsigned long long)r->wild_first);
	printf("tx_verify: opened %s%s, %llu transactions rolled back, kept %llu blocks, "
	       "reclaimed %llu\n", info->was_dirty ? "dirty" : "clean",
	       info->collected ? ", collected" : "", (unsigned long long)info->rolled_back,
	       (unsigned long long)info->kept_blocks, (unsigned long long)info->freed_blocks);
}

int main(int argc, char **argv)
{
	unsigned threads = 2;
	struct settings s;
	struct heap_open_info info;

	if (argc == 4 && !strcmp(argv[2], "--threads"))
		threads = (unsigned)atoi(argv[3]);
	if ((argc != 2 && argc != 4) || !threads || threads > WL_THREADS_MAX) {
		fprintf(stderr, "usage: tx_verify REPORTED [--threads 1..%u] (the pool: "
			"BTD_POOL)\n", WL_THREADS_MAX);
		return 2;
	}
	/* As the constructors of libbtd do: the crash points of recovery, and
	 * the simulated power failure, are armed before the open. */
	crash_init(environ, 0);
	pmem_sim_start();
	settings_parse(&s, environ, 0);
	if (!s.pool[0]) {
		fprintf(stderr, "tx_verify: set BTD_POOL to the workload's pool\n");
		return 2;
	}
	int st = store_open(s.pool, s.pool_size, GC_AUTO, &info);

	if (st) {
		fprintf(stderr, "tx_verify: the pool does not open after the crash: %s\n",
			btd_last_error());
		return 1;
	}
	check_recovery(&info);
	unsigned long bad = heap_check(STDERR_FILENO);

	if (bad)
		BAD("the heap checker found %lu violations (above)\n", bad);
	struct recovery_audit au;

	recovery_audit(&au);
	if (au.reachable_free || au.wild || au.leaked)
		BAD("the audit found %llu reachable free blocks, %llu wild pointers, %llu leaked "
		    "blocks\n", (unsigned long long)au.reachable_free, (unsigned long long)au.wild,
		    (unsigned long long)au.leaked);
	long long last[WL_THREADS_MAX];
	uint64_t blocks = 0, committed[WL_THREADS_MAX];

	read_reported(argv[1], last, threads);
	for (unsigned t = 0; t < threads; t++)
		blocks += check_thread(t, last[t], &committed[t]);
	if (!problems && au.reachable != blocks)
		BAD("%llu blocks are reachable, but the structures hold %llu\n",
		    (unsigned long long)au.reachable, (unsigned long long)blocks);
	for (unsigned t = 0; t < threads; t++)
		printf("tx_verify: thread %u: %llu transactions committed (%lld reported)\n", t,
		       (unsigned long long)committed[t], last[t]);
	if (problems) {
		fprintf(stderr, "tx_verify: %u problems\n", problems);
		return 1;
	}
	store_close();
	return 0;
}
