/* tx_model.h: what the crash workload does, as a model both sides run.
 *
 * tx_workload.c changes the pool in numbered transactions; tx_verify.c
 * must know what transactions 1..C left.  Both derive every transaction
 * from (thread, number) alone, through the model below, which holds in
 * ordinary memory the records each structure should hold: the workload
 * applies each action to the pool and to its model, the verifier replays
 * the model from nothing to the count the pool holds and compares.
 *
 * Each thread T has, in the pool:
 *
 *   root "wl.T"        struct wl_meta: the count of committed transactions,
 *                      the head of T's list, newest record first, and of
 *                      its batch: BATCH_N records of one size made by one
 *                      transaction and freed together by a later one, so
 *                      that whole slabs empty and are released
 *   root "wl.T.table"  struct wl_table: a chained hash table of records
 *                      by key, resized (a new table published with
 *                      btd_root_set inside the transaction) as it grows
 *
 * Both roots are published by transaction 1, together.  A record carries
 * its thread, the transaction that made it, its key and its length, and a
 * checksum over all of them and its payload (whose bytes are a function of
 * the same), so a torn or stale record, or one in the wrong place, shows.
 * Most records are small (16 B .. 3 KiB of payload); one in LARGE_ONE_IN
 * is 64 KiB .. 1 MiB.  The list holds at most LIST_CAP records and the
 * table TABLE_CAP, so a long run stays in a 64 MiB pool.
 *
 *   root "wl.T.alias"  the meta again, or no root: set and deleted outside
 *                      any transaction after some commits (the crash
 *                      points of plain root updates)
 *
 * WHOLE BLOCKS.  The workload asks for whole blocks -- its sizes rounded
 * up to the heap's size class, or to pages above 16 KiB (wl_block_size) --
 * and clears what it does not use.  The recovery GC and the audit of `btd
 * check` scan every word of a live block, including the tail a smaller
 * request leaves unused, which holds whatever the memory held before: a
 * stale pointer there keeps a freed block alive after a crash, and makes
 * `btd check` of a cleanly closed pool report a reachable free block.
 * That is the heap's to solve; `tx_workload --slack` asks for the sizes
 * themselves and shows it. */
#ifndef BTD_TESTS_CRASH_TX_MODEL_H
#define BTD_TESTS_CRASH_TX_MODEL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WL_META_MAGIC 0x61746d5f6c77ULL  /* "wl_meta" */
#define WL_TABLE_MAGIC 0x6c62745f6c77ULL /* "wl_tbl" */
#define LIST_CAP 24
#define TABLE_CAP 160
#define TABLE_MIN 8        /* buckets of the first table */
#define LARGE_ONE_IN 40
#define WL_THREADS_MAX 8
#define BATCH_N 160        /* records of a batch: three slabs and more */
#define BATCH_LEN (1280 - 48) /* their payload: a size class of their own */

struct wl_rec {
	struct wl_rec *next;   /* list, or hash chain */
	uint64_t thread;
	uint64_t seq;          /* the transaction that made it */
	uint64_t key;
	uint64_t len;          /* payload bytes */
	uint64_t sum;          /* wl_rec_sum */
	unsigned char payload[];
};

struct wl_meta {
	uint64_t magic;
	uint64_t thread;
	uint64_t seq;          /* transactions committed */
	struct wl_rec *list;
	uint64_t nlist;
	uint64_t ntable;       /* records in the table */
	struct wl_rec *batch;  /* BATCH_N records, or none */
	uint64_t pad;          /* to a size class: 64 bytes */
};

struct wl_table {
	uint64_t magic;
	uint64_t nbuckets;     /* a power of two */
	struct wl_rec *bucket[];
};

/* The heap's size classes (heap/classes.c): a block of a smaller request
 * has a tail the program never writes (see WHOLE BLOCKS).  Should they
 * drift apart, tails come back, and the audit says so. */
static const uint32_t wl_classes[] = {
	16, 32, 48, 64, 80, 96, 112, 128,
	160, 192, 224, 256, 320, 384, 448, 512,
	640, 768, 896, 1024, 1280, 1536, 1792, 2048,
	2560, 3072, 3584, 4096, 5120, 6144, 7168, 8192,
	10240, 12288, 14336, 16384,
};

static inline size_t wl_block_size(size_t n)
{
	for (size_t i = 0; i < sizeof(wl_classes) / sizeof(wl_classes[0]); i++)
		if (n <= wl_classes[i])
			return wl_classes[i];
	return (n + 4095) & ~(size_t)4095;
}

static inline uint64_t wl_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15u;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
	return x ^ (x >> 31);
}

static inline unsigned char wl_byte(uint64_t seed, uint64_t i)
{
	return (unsigned char)(seed + i * 131 + (i >> 8) * 7);
}

static inline uint64_t wl_rec_seed(uint64_t thread, uint64_t seq, uint64_t key)
{
	return wl_mix(thread * 0x100000001b3u ^ seq << 20 ^ key);
}

/* The checksum a record must carry; computed from the fields given, and
 * the payload found at p (NULL: the payload it should have). */
static inline uint64_t wl_rec_sum(uint64_t thread, uint64_t seq, uint64_t key, uint64_t len,
				  const unsigned char *p)
{
	uint64_t seed = wl_rec_seed(thread, seq, key);
	uint64_t h = wl_mix(seed ^ len);

	for (uint64_t i = 0; i < len; i++)
		h = (h ^ (p ? p[i] : wl_byte(seed, i))) * 0x100000001b3u;
	return h;
}

static inline void wl_rec_fill(struct wl_rec *r, uint64_t thread, uint64_t seq, uint64_t key,
			       uint64_t len)
{
	uint64_t seed = wl_rec_seed(thread, seq, key);

	r->next = NULL;
	r->thread = thread;
	r->seq = seq;
	r->key = key;
	r->len = len;
	for (uint64_t i = 0; i < len; i++)
		r->payload[i] = wl_byte(seed, i);
	r->sum = wl_rec_sum(thread, seq, key, len, r->payload);
}

static inline uint64_t wl_bucket(uint64_t key, uint64_t nbuckets)
{
	return wl_mix(key) & (nbuckets - 1);
}

/* ---- the model ---------------------------------------------------------- */

struct wl_mrec {
	uint64_t seq, key, len;
};

struct wl_model {
	uint64_t thread;
	uint64_t seq;                  /* transactions applied */
	struct wl_mrec list[LIST_CAP + 1]; /* newest first */
	size_t nlist;
	struct wl_mrec *table;         /* in no order */
	size_t ntable, cap;
	uint64_t nbuckets;             /* 0: no table yet */
	uint64_t next_key;
	uint64_t batch;                /* the transaction that made the batch; 0: none */
};

enum wl_act {
	ACT_LIST_PUSH,     /* a new record at the list's head */
	ACT_LIST_DROP,     /* the list's record at idx unlinked and freed */
	ACT_TABLE_PUT,     /* a new record under a new key */
	ACT_TABLE_REPLACE, /* the table's record idx replaced by a new one, same key */
	ACT_TABLE_DEL,     /* the table's record idx unlinked and freed */
	ACT_TABLE_RESIZE,  /* a new table of nb buckets, the old one freed */
	ACT_BATCH_PUT,     /* BATCH_N new records in the batch (keys 1..BATCH_N) */
	ACT_BATCH_DROP,    /* every record of the batch freed */
};

struct wl_action {
	enum wl_act kind;
	size_t idx;
	uint64_t key, len, nb;
};

static inline void wl_model_init(struct wl_model *m, uint64_t thread)
{
	memset(m, 0, sizeof(*m));
	m->thread = thread;
	m->next_key = 1;
}

static inline void wl_model_free(struct wl_model *m)
{
	free(m->table);
}

static inline uint64_t wl_len(uint64_t r)
{
	if (r % LARGE_ONE_IN == 0)
		return (64u << 10) + (r >> 8) % ((1u << 20) - (64u << 10) + 1);
	return 16 + (r >> 8) % 3056;
}

/* How many actions transaction m->seq + 1 has (1 to 3). */
static inline unsigned wl_actions(const struct wl_model *m)
{
	return 1 + (unsigned)(wl_mix(m->thread << 56 ^ (m->seq + 1) << 4 ^ 0xa) % 3);
}

/* Action k of transaction m->seq + 1, given the model as the earlier
 * actions left it. */
static inline struct wl_action wl_pick(const struct wl_model *m, unsigned k)
{
	uint64_t r = wl_mix(m->thread << 56 ^ (m->seq + 1) << 4 ^ k);
	uint64_t r2 = wl_mix(r);
	struct wl_action a = { ACT_LIST_PUSH, 0, 0, wl_len(r2), 0 };
	unsigned what = (unsigned)(r % 16);

	if ((r >> 32) % 64 == 0 && !m->batch) {
		a.kind = ACT_BATCH_PUT;
		a.len = BATCH_LEN;
	} else if ((r >> 32) % 16 == 1 && m->batch) {
		a.kind = ACT_BATCH_DROP;
	} else if (m->nlist > LIST_CAP - 1 || (what >= 14 && m->nlist)) {
		a.kind = ACT_LIST_DROP; /* the oldest when full, else anywhere */
		a.idx = m->nlist > LIST_CAP - 1 ? m->nlist - 1 : (size_t)(r2 % m->nlist);
	} else if (what < 6) {
		a.kind = ACT_LIST_PUSH;
	} else if (m->ntable > 2 * m->nbuckets && m->nbuckets) {
		a.kind = ACT_TABLE_RESIZE;
		a.nb = m->nbuckets * 2;
	} else if (m->ntable >= TABLE_CAP || (what >= 12 && m->ntable)) {
		a.kind = what % 2 || m->ntable >= TABLE_CAP ? ACT_TABLE_DEL : ACT_TABLE_REPLACE;
		a.idx = (size_t)(r2 % m->ntable);
		a.key = m->table[a.idx].key;
	} else {
		a.kind = ACT_TABLE_PUT;
		a.key = m->next_key;
	}
	return a;
}

static inline void wl_model_apply(struct wl_model *m, const struct wl_action *a)
{
	struct wl_mrec n = { m->seq + 1, a->key, a->len };

	switch (a->kind) {
	case ACT_LIST_PUSH:
		memmove(&m->list[1], &m->list[0], m->nlist * sizeof(m->list[0]));
		n.key = 0;
		m->list[0] = n;
		m->nlist++;
		break;
	case ACT_LIST_DROP:
		memmove(&m->list[a->idx], &m->list[a->idx + 1],
			(m->nlist - a->idx - 1) * sizeof(m->list[0]));
		m->nlist--;
		break;
	case ACT_TABLE_PUT:
		if (m->ntable == m->cap) {
			m->cap = m->cap ? m->cap * 2 : 64;
			m->table = realloc(m->table, m->cap * sizeof(*m->table));
			if (!m->table)
				abort();
		}
		m->table[m->ntable++] = n;
		m->next_key++;
		break;
	case ACT_TABLE_REPLACE:
		m->table[a->idx] = n;
		break;
	case ACT_TABLE_DEL:
		m->table[a->idx] = m->table[--m->ntable];
		break;
	case ACT_TABLE_RESIZE:
		m->nbuckets = a->nb;
		break;
	case ACT_BATCH_PUT:
		m->batch = m->seq + 1;
		break;
	case ACT_BATCH_DROP:
		m->batch = 0;
		break;
	}
}

/* Transaction 1 publishes the structures; the others run wl_pick's
 * actions.  Returns the actions of transaction m->seq + 1 in a[]. */
static inline unsigned wl_model_step(struct wl_model *m, struct wl_action a[3])
{
	unsigned n = 0;

	if (m->seq == 0) {
		m->nbuckets = TABLE_MIN;
	} else {
		unsigned k = wl_actions(m);

		for (n = 0; n < k; n++) {
			a[n] = wl_pick(m, n);
			wl_model_apply(m, &a[n]);
		}
	}
	m->seq++;
	return n;
}

#endif
