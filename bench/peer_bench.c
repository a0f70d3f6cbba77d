/* peer_bench.c: the malloc-level workloads of other allocators' benchmark
 * suites, written here from their published descriptions, for bench/peer.sh.
 *
 *	peer_bench WORKLOAD T N
 *
 * T threads, N a per-thread count whose meaning each workload gives below
 * (k and M suffixes allowed).  Plain malloc/free: one binary runs under any
 * LD_PRELOAD.  An op is ONE malloc or ONE free; prints one line
 *	workload=<w> threads=<T> ops=<total ops> seconds=<wall> mops=<Mops/s>
 *
 *   glibc-thread  glibc's bench-malloc-thread: each thread owns a working set
 *                 of 1024 slots and runs N iterations of "free a random slot,
 *                 malloc a random size into it"; sizes 8..512 B, log-uniform
 *                 (small ones more often).  2 ops per iteration
 *   alloc-test    mimalloc-bench's alloc-test: each thread alternates a burst
 *                 of 1..256 allocations (75% 8..128 B, 20% ..1 KiB, 5%
 *                 ..4 KiB) with a burst of frees taken half from random live
 *                 blocks and half from the newest ones, at most 8192 live.
 *                 N ops per thread
 *   larson        Larson & Krishnan's server simulation (the 8..1000 B,
 *                 5000-chunk setting mimalloc-bench uses): each thread works
 *                 on an array of 5000 slots, freeing a random slot and
 *                 refilling it with a random size.  The arrays are handed on
 *                 to the next thread 8 times during the run (where larson
 *                 starts new threads on the old threads' arrays), so the
 *                 first free of every slot after a hand-over is remote.
 *                 N ops per thread (N/2 steps)
 *   prod-con      T/2 producer/consumer pairs (T even): the producer
 *                 allocates N blocks of 16..512 B and passes them through a
 *                 lock-free ring (1024 entries) to its consumer, which frees
 *                 them: every free is remote.  N ops per thread
 *   threadtest    Hoard's threadtest (10000 objects of 8 B in all): each
 *                 thread runs rounds of "malloc 10000/T objects, free them
 *                 all".  N ops per thread
 *   sh6bench      after MicroQuill's sh6bench: rounds of 1000 blocks whose
 *                 sizes grow (8..1000 B, stepping by 13 and wrapping), freed
 *                 in an order that rotates over LIFO, FIFO, random, and
 *                 "even ones forward, then odd ones backward".  N ops per
 *                 thread
 *   xmalloc       after xmalloc-test: every thread allocates batches of 64
 *                 blocks (16..256 B) and hands each batch through a queue to
 *                 the next thread, which frees it; meanwhile it frees the
 *                 batches handed to it.  Every free is remote (T >= 2).  Each
 *                 thread allocates N blocks (and frees N): 2N ops
 *   cache-thrash  Hoard's active-false-sharing test: each thread N times
 *                 mallocs an 8-byte object, writes each of its bytes 1000
 *                 times, frees it.  An allocator that gives two threads
 *                 objects in one cache line makes the writes slow.  2 ops
 *                 per iteration
 *   cache-scratch Hoard's passive-false-sharing test: the main thread
 *                 mallocs T 8-byte objects in a row and gives one to each
 *                 thread, which frees it and then runs cache-thrash's loop.
 *                 An allocator that reuses the freed object (in a line
 *                 shared with another thread's) makes the writes slow
 *   churn         call-bound: sizes 16..416 B (1 in 64 up to 8 KiB) from a
 *                 precomputed table, a free and a malloc per step over 16
 *                 slots, one word written and checked per block: the
 *                 per-call overhead.  N steps per thread, 2 ops each
 *
 * Every block gets a tag in its first (and most of them in their last)
 * word after malloc, checked before free: overlapping blocks, or a queue
 * that loses an entry, make the program report it and exit with status 3. */
#include <stdbool.h>

static const char *bench_name = "peer_bench";

#include "peer_common.h"

static void *xmalloc_or_die(size_t n)
{
	void *p = malloc(n);

	if (__builtin_expect(!p, 0)) {
		fprintf(stderr, "%s: malloc(%zu) failed\n", bench_name, n);
		exit(2);
	}
	return p;
}

#define TAG(id) ((uint64_t)((id) + 1) << 48)

/* ---- glibc-thread ----------------------------------------------------- */

#define GT_SLOTS 1024
#define SIZE_TABLE 4096

struct sblock {
	void *p;
	uint64_t tag;
	uint32_t size;
};

/* Sizes in [lo, hi], hi/lo a power of two: a power-of-two band picked
 * uniformly, then a size uniform in the band (log-uniform, piecewise). */
static uint32_t *log_sizes(uint32_t lo, uint32_t hi, uint64_t seed)
{
	uint32_t *t = xmap(SIZE_TABLE * sizeof(*t));
	unsigned bands = 0;
	uint64_t s = seed;

	while ((lo << (bands + 1)) <= hi)
		bands++;
	for (unsigned i = 0; i < SIZE_TABLE; i++) {
		uint32_t b = lo << rng_below(&s, bands);

		t[i] = b + (uint32_t)rng_below(&s, b + 1);
	}
	return t;
}

static void *glibc_thread(void *arg)
{
	struct targ *a = arg;
	uint32_t *sizes = a->shared;
	struct sblock *ws = xmap(GT_SLOTS * sizeof(*ws));
	uint64_t rng = 0x9E3779B97F4A7C15ULL * (a->id + 1), tag = TAG(a->id);

	for (unsigned i = 0; i < GT_SLOTS; i++) {
		ws[i].size = sizes[rng_below(&rng, SIZE_TABLE)];
		ws[i].p = xmalloc_or_die(ws[i].size);
		ws[i].tag = tag++;
		tag_put(ws[i].p, ws[i].size, ws[i].tag);
	}
	pthread_barrier_wait(&bar_start);
	for (uint64_t it = 0; it < a->n; it++) {
		uint64_t r = rng_next(&rng);
		struct sblock *b = &ws[r % GT_SLOTS];

		tag_check("glibc-thread", b->p, b->size, b->tag);
		free(b->p);
		b->size = sizes[(r >> 32) % SIZE_TABLE];
		b->p = xmalloc_or_die(b->size);
		b->tag = tag++;
		tag_put(b->p, b->size, b->tag);
	}
	a->ops = 2 * a->n;
	pthread_barrier_wait(&bar_end);
	for (unsigned i = 0; i < GT_SLOTS; i++) {
		tag_check("glibc-thread", ws[i].p, ws[i].size, ws[i].tag);
		free(ws[i].p);
	}
	munmap(ws, GT_SLOTS * sizeof(*ws));
	return NULL;
}

/* ---- alloc-test ------------------------------------------------------- */

#define AT_LIVE 8192

static uint32_t at_size(uint64_t *rng)
{
	uint64_t r = rng_below(rng, 100);

	if (r < 75)
		return 8 + (uint32_t)rng_below(rng, 121);
	if (r < 95)
		return 129 + (uint32_t)rng_below(rng, 896);
	return 1025 + (uint32_t)rng_below(rng, 3072);
}

static void *alloc_test_thread(void *arg)
{
	struct targ *a = arg;
	struct sblock *live = xmap(AT_LIVE * sizeof(*live));
	uint64_t rng = 0xD1B54A32D192ED03ULL * (a->id + 1), tag = TAG(a->id), ops = 0;
	size_t n = 0;

	pthread_barrier_wait(&bar_start);
	while (ops < a->n) {
		size_t k = 1 + rng_below(&rng, 256);

		for (size_t i = 0; i < k && n < AT_LIVE; i++, ops++) {
			struct sblock *b = &live[n++];

			b->size = at_size(&rng);
			b->p = xmalloc_or_die(b->size);
			b->tag = tag++;
			tag_put(b->p, b->size, b->tag);
		}
		k = 1 + rng_below(&rng, 256);
		for (size_t i = 0; i < k && n > 0; i++, ops++) {
			/* every other free a random block, else the newest */
			size_t j = i & 1 ? n - 1 : rng_below(&rng, n);

			tag_check("alloc-test", live[j].p, live[j].size, live[j].tag);
			free(live[j].p);
			live[j] = live[--n];
		}
	}
	a->ops = ops;
	pthread_barrier_wait(&bar_end);
	while (n > 0) {
		n--;
		tag_check("alloc-test", live[n].p, live[n].size, live[n].tag);
		free(live[n].p);
	}
	munmap(live, AT_LIVE * sizeof(*live));
	return NULL;
}

/* ---- larson ----------------------------------------------------------- */

#define LA_SLOTS 5000
#define LA_MIN 8
#define LA_MAX 1000
#define LA_HANDOVERS 8

struct larson_shared {
	struct sblock **arrays;
	pthread_barrier_t epoch;
};

static void *larson_thread(void *arg)
{
	struct targ *a = arg;
	struct larson_shared *sh = a->shared;
	uint64_t rng = 0x9E3779B97F4A7C15ULL * (a->id + 7), tag = TAG(a->id);
	uint64_t steps = a->n / 2, per = steps / (LA_HANDOVERS + 1), done = 0;
	struct sblock *mine = xmap(LA_SLOTS * sizeof(*mine));
	unsigned T = a->nthreads;

	for (unsigned i = 0; i < LA_SLOTS; i++) {
		mine[i].size = LA_MIN + (uint32_t)rng_below(&rng, LA_MAX - LA_MIN + 1);
		mine[i].p = xmalloc_or_die(mine[i].size);
		mine[i].tag = tag++;
		tag_put(mine[i].p, mine[i].size, mine[i].tag);
	}
	sh->arrays[a->id] = mine;
	pthread_barrier_wait(&bar_start);
	for (unsigned e = 0; e <= LA_HANDOVERS; e++) {
		/* epoch e works on the array filled by thread id+1+e */
		struct sblock *w = sh->arrays[(a->id + 1 + e) % T];
		uint64_t k = e == LA_HANDOVERS ? steps - done : per;

		for (uint64_t s = 0; s < k; s++) {
			struct sblock *b = &w[rng_below(&rng, LA_SLOTS)];

			tag_check("larson", b->p, b->size, b->tag);
			free(b->p);
			b->size = LA_MIN + (uint32_t)rng_below(&rng, LA_MAX - LA_MIN + 1);
			b->p = xmalloc_or_die(b->size);
			b->tag = tag++;
			tag_put(b->p, b->size, b->tag);
		}
		done += k;
		pthread_barrier_wait(&sh->epoch);
	}
	a->ops = 2 * steps;
	pthread_barrier_wait(&bar_end);
	/* each array is dropped by the thread that worked on it last */
	struct sblock *last = sh->arrays[(a->id + 1 + LA_HANDOVERS) % T];

	for (unsigned i = 0; i < LA_SLOTS; i++) {
		tag_check("larson", last[i].p, last[i].size, last[i].tag);
		free(last[i].p);
	}
	return NULL;
}

/* ---- prod-con --------------------------------------------------------- */

#define RING_CAP 1024

struct pc_ring {
	_Alignas(64) _Atomic uint64_t head; /* written by the producer */
	_Alignas(64) _Atomic uint64_t tail; /* written by the consumer */
	_Alignas(64) struct sblock buf[RING_CAP];
};

static void *prodcon_thread(void *arg)
{
	struct targ *a = arg;
	struct pc_ring *r = (struct pc_ring *)a->shared + a->id / 2;
	uint64_t n = a->n, head = 0, tail = 0;

	pthread_barrier_wait(&bar_start);
	if (a->id % 2 == 0) {
		uint64_t rng = 0x2545F4914F6CDD1DULL * (a->id + 3);

		for (uint64_t i = 0; i < n; i++) {
			struct sblock b;
			unsigned spins = 0;

			b.size = 16 + (uint32_t)rng_below(&rng, 497);
			b.p = xmalloc_or_die(b.size);
			b.tag = i;
			tag_put(b.p, b.size, i);
			while (head - tail >= RING_CAP) {
				tail = atomic_load_explicit(&r->tail, memory_order_acquire);
				if (head - tail >= RING_CAP)
					backoff(&spins);
			}
			r->buf[head % RING_CAP] = b;
			atomic_store_explicit(&r->head, ++head, memory_order_release);
		}
	} else {
		for (uint64_t i = 0; i < n; i++) {
			unsigned spins = 0;

			while (tail == head) {
				head = atomic_load_explicit(&r->head, memory_order_acquire);
				if (tail == head)
					backoff(&spins);
			}
			struct sblock b = r->buf[tail % RING_CAP];

			atomic_store_explicit(&r->tail, ++tail, memory_order_release);
			if (b.tag != i)
				tag_error("prod-con (ring order)", b.p, i, b.tag);
			tag_check("prod-con", b.p, b.size, b.tag);
			free(b.p);
		}
	}
	a->ops = n;
	pthread_barrier_wait(&bar_end);
	return NULL;
}

/* ---- threadtest ------------------------------------------------------- */

#define TT_OBJECTS 10000
#define TT_SIZE 8

static void *threadtest_thread(void *arg)
{
	struct targ *a = arg;
	unsigned batch = TT_OBJECTS / a->nthreads;
	void **v = xmap(batch * sizeof(*v));
	uint64_t rounds = a->n / (2 * batch), tag = TAG(a->id);

	pthread_barrier_wait(&bar_start);
	for (uint64_t r = 0; r < rounds; r++) {
		for (unsigned i = 0; i < batch; i++) {
			v[i] = xmalloc_or_die(TT_SIZE);
			tag_put(v[i], TT_SIZE, tag + i);
		}
		for (unsigned i = 0; i < batch; i++) {
			tag_check("threadtest", v[i], TT_SIZE, tag + i);
			free(v[i]);
		}
		tag += batch;
	}
	a->ops = rounds * 2 * batch;
	pthread_barrier_wait(&bar_end);
	munmap(v, batch * sizeof(*v));
	return NULL;
}

/* ---- sh6bench --------------------------------------------------------- */

#define SH_BLOCKS 1000
#define SH_MIN 8
#define SH_MAX 1000

static void sh_drop(struct sblock *b)
{
	tag_check("sh6bench", b->p, b->size, b->tag);
	free(b->p);
}

static void *sh6bench_thread(void *arg)
{
	struct targ *a = arg;
	struct sblock *v = xmap(SH_BLOCKS * sizeof(*v));
	uint32_t *perm = xmap(SH_BLOCKS * sizeof(*perm));
	uint64_t rng = 0xBF58476D1CE4E5B9ULL * (a->id + 1), tag = TAG(a->id);
	uint64_t rounds = a->n / (2 * SH_BLOCKS);
	uint32_t size = SH_MIN;

	for (unsigned i = 0; i < SH_BLOCKS; i++)
		perm[i] = i;
	for (unsigned i = SH_BLOCKS - 1; i > 0; i--) {
		unsigned j = (unsigned)rng_below(&rng, i + 1), t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
	pthread_barrier_wait(&bar_start);
	for (uint64_t r = 0; r < rounds; r++) {
		for (unsigned i = 0; i < SH_BLOCKS; i++) {
			v[i].size = size;
			v[i].p = xmalloc_or_die(size);
			v[i].tag = tag++;
			tag_put(v[i].p, size, v[i].tag);
			size += 13;
			if (size > SH_MAX)
				size -= SH_MAX - SH_MIN;
		}
		switch (r % 4) {
		case 0: /* LIFO */
			for (unsigned i = SH_BLOCKS; i-- > 0;)
				sh_drop(&v[i]);
			break;
		case 1: /* FIFO */
			for (unsigned i = 0; i < SH_BLOCKS; i++)
				sh_drop(&v[i]);
			break;
		case 2: /* random */
			for (unsigned i = 0; i < SH_BLOCKS; i++)
				sh_drop(&v[perm[i]]);
			break;
		default: /* even forward, odd backward */
			for (unsigned i = 0; i < SH_BLOCKS; i += 2)
				sh_drop(&v[i]);
			for (unsigned i = SH_BLOCKS; i-- > 0;)
				if (i & 1)
					sh_drop(&v[i]);
			break;
		}
	}
	a->ops = rounds * 2 * SH_BLOCKS;
	pthread_barrier_wait(&bar_end);
	munmap(v, SH_BLOCKS * sizeof(*v));
	munmap(perm, SH_BLOCKS * sizeof(*perm));
	return NULL;
}

/* ---- xmalloc ---------------------------------------------------------- */

#define XM_BATCH 64
#define XM_QUEUE 64 /* batches in flight per queue */

struct xm_batch {
	unsigned n;
	struct sblock b[XM_BATCH];
};

/* One queue per thread: thread i-1 fills it, thread i empties it. */
struct xm_queue {
	_Alignas(64) _Atomic uint64_t head;
	_Alignas(64) _Atomic uint64_t tail;
	_Alignas(64) struct xm_batch slot[XM_QUEUE];
};

static void *xmalloc_thread(void *arg)
{
	struct targ *a = arg;
	struct xm_queue *qs = a->shared, *in = &qs[a->id], *out = &qs[(a->id + 1) % a->nthreads];
	uint64_t rng = 0x94D049BB133111EBULL * (a->id + 1), tag = TAG(a->id);
	uint64_t made = 0, freed = 0, n = a->n;
	unsigned spins = 0;

	pthread_barrier_wait(&bar_start);
	while (made < n || freed < n) {
		bool progress = false;
		uint64_t t = atomic_load_explicit(&in->tail, memory_order_relaxed);

		while (t != atomic_load_explicit(&in->head, memory_order_acquire)) {
			struct xm_batch *bt = &in->slot[t % XM_QUEUE];

			for (unsigned i = 0; i < bt->n; i++) {
				tag_check("xmalloc", bt->b[i].p, bt->b[i].size, bt->b[i].tag);
				free(bt->b[i].p);
			}
			freed += bt->n;
			atomic_store_explicit(&in->tail, ++t, memory_order_release);
			progress = true;
		}
		if (made < n) {
			uint64_t h = atomic_load_explicit(&out->head, memory_order_relaxed);

			if (h - atomic_load_explicit(&out->tail, memory_order_acquire) < XM_QUEUE) {
				struct xm_batch *bt = &out->slot[h % XM_QUEUE];
				unsigned k = n - made < XM_BATCH ? (unsigned)(n - made) : XM_BATCH;

				for (unsigned i = 0; i < k; i++) {
					bt->b[i].size = 16 + (uint32_t)rng_below(&rng, 241);
					bt->b[i].p = xmalloc_or_die(bt->b[i].size);
					bt->b[i].tag = tag++;
					tag_put(bt->b[i].p, bt->b[i].size, bt->b[i].tag);
				}
				bt->n = k;
				made += k;
				atomic_store_explicit(&out->head, h + 1, memory_order_release);
				progress = true;
			}
		}
		if (progress)
			spins = 0;
		else
			backoff(&spins);
	}
	if (freed != n)
		tag_error("xmalloc (blocks freed)", NULL, n, freed);
	a->ops = made + freed;
	pthread_barrier_wait(&bar_end);
	return NULL;
}

/* ---- cache-thrash, cache-scratch -------------------------------------- */

#define CT_SIZE 8
#define CT_WRITES 1000

static void ct_write(char *p, uint64_t rounds)
{
	volatile char *v = p;

	for (uint64_t r = 0; r < rounds; r++)
		for (unsigned j = 0; j < CT_SIZE; j++)
			v[j]++;
}

static void ct_loop(struct targ *a, const char *w)
{
	uint64_t tag = TAG(a->id);

	for (uint64_t it = 0; it < a->n; it++) {
		char *p = xmalloc_or_die(CT_SIZE);

		memset(p, 0, CT_SIZE);
		ct_write(p, CT_WRITES);
		/* every byte went up CT_WRITES times: no one else wrote it */
		for (unsigned j = 0; j < CT_SIZE; j++)
			if (p[j] != (char)CT_WRITES)
				tag_error(w, p, CT_WRITES & 0xff, (unsigned char)p[j]);
		tag_put(p, CT_SIZE, tag);
		tag_check(w, p, CT_SIZE, tag++);
		free(p);
	}
	a->ops = 2 * a->n;
}

static void *cache_thrash_thread(void *arg)
{
	struct targ *a = arg;

	pthread_barrier_wait(&bar_start);
	ct_loop(a, "cache-thrash");
	pthread_barrier_wait(&bar_end);
	return NULL;
}

static void *cache_scratch_thread(void *arg)
{
	struct targ *a = arg;
	char **given = a->shared;

	pthread_barrier_wait(&bar_start);
	/* the object from the main thread: write it, then free it here */
	ct_write(given[a->id], CT_WRITES);
	free(given[a->id]);
	ct_loop(a, "cache-scratch");
	a->ops++;
	pthread_barrier_wait(&bar_end);
	return NULL;
}

/* ---- churn ------------------------------------------------------------ */

#define CH_SLOTS 16

static uint32_t *churn_sizes(void)
{
	uint32_t *t = xmap(SIZE_TABLE * sizeof(*t));
	uint64_t s = 0x6A09E667F3BCC909ULL;

	for (unsigned i = 0; i < SIZE_TABLE; i++)
		t[i] = rng_below(&s, 64) == 0 ? 417 + (uint32_t)rng_below(&s, 8192 - 416)
					    : 16 + (uint32_t)rng_below(&s, 401);
	return t;
}

static void *churn_thread(void *arg)
{
	struct targ *a = arg;
	const uint32_t *sizes = a->shared;
	uint64_t *slot[CH_SLOTS], tag = TAG(a->id), tags[CH_SLOTS];
	unsigned k = a->id * 977;

	for (unsigned i = 0; i < CH_SLOTS; i++) {
		slot[i] = xmalloc_or_die(sizes[k++ % SIZE_TABLE]);
		*slot[i] = tags[i] = tag++;
	}
	pthread_barrier_wait(&bar_start);
	for (uint64_t it = 0; it < a->n; it++) {
		unsigned i = it % CH_SLOTS;

		if (__builtin_expect(*slot[i] != tags[i], 0))
			tag_error("churn", slot[i], tags[i], *slot[i]);
		free(slot[i]);
		slot[i] = xmalloc_or_die(sizes[k++ % SIZE_TABLE]);
		*slot[i] = tags[i] = tag++;
	}
	a->ops = 2 * a->n;
	pthread_barrier_wait(&bar_end);
	for (unsigned i = 0; i < CH_SLOTS; i++) {
		if (*slot[i] != tags[i])
			tag_error("churn", slot[i], tags[i], *slot[i]);
		free(slot[i]);
	}
	return NULL;
}

/* ---- main ------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
		"usage: %s WORKLOAD T N\n"
		"  WORKLOAD: glibc-thread alloc-test larson prod-con threadtest sh6bench\n"
		"            xmalloc cache-thrash cache-scratch churn\n"
		"  T threads (prod-con: even); N per thread (see the source); N may end\n"
		"  in k or M\n", bench_name);
	exit(2);
}

int main(int argc, char **argv)
{
	uint64_t T, n, ops;
	const char *w;
	double secs;

	if (argc != 4 || parse_u64(argv[2], &T) || parse_u64(argv[3], &n) || T > 256)
		usage();
	w = argv[1];
	if (!strcmp(w, "glibc-thread")) {
		secs = run_threads((unsigned)T, n, glibc_thread, log_sizes(8, 512, 42), &ops);
	} else if (!strcmp(w, "alloc-test")) {
		secs = run_threads((unsigned)T, n, alloc_test_thread, NULL, &ops);
	} else if (!strcmp(w, "larson")) {
		struct larson_shared *sh = xmap(sizeof(*sh));

		sh->arrays = xmap(T * sizeof(*sh->arrays));
		pthread_barrier_init(&sh->epoch, NULL, (unsigned)T);
		secs = run_threads((unsigned)T, n, larson_thread, sh, &ops);
	} else if (!strcmp(w, "prod-con")) {
		if (T % 2) {
			fprintf(stderr, "%s: prod-con wants an even number of threads\n",
				bench_name);
			return 2;
		}
		secs = run_threads((unsigned)T, n, prodcon_thread,
				   xmap(T / 2 * sizeof(struct pc_ring)), &ops);
	} else if (!strcmp(w, "threadtest")) {
		if (n < 2 * TT_OBJECTS)
			usage();
		secs = run_threads((unsigned)T, n, threadtest_thread, NULL, &ops);
	} else if (!strcmp(w, "sh6bench")) {
		if (n < 2 * SH_BLOCKS)
			usage();
		secs = run_threads((unsigned)T, n, sh6bench_thread, NULL, &ops);
	} else if (!strcmp(w, "xmalloc")) {
		secs = run_threads((unsigned)T, n, xmalloc_thread,
				   xmap(T * sizeof(struct xm_queue)), &ops);
	} else if (!strcmp(w, "cache-thrash")) {
		secs = run_threads((unsigned)T, n, cache_thrash_thread, NULL, &ops);
	} else if (!strcmp(w, "cache-scratch")) {
		char **given = xmap(T * sizeof(*given));

		for (unsigned i = 0; i < T; i++) {
			given[i] = xmalloc_or_die(CT_SIZE);
			memset(given[i], 0, CT_SIZE);
		}
		secs = run_threads((unsigned)T, n, cache_scratch_thread, given, &ops);
	} else if (!strcmp(w, "churn")) {
		secs = run_threads((unsigned)T, n, churn_thread, churn_sizes(), &ops);
	} else {
		usage();
	}
	if (tag_errors) {
		fprintf(stderr, "%s: %s: %llu blocks did not hold what was written to them\n",
			bench_name, w, (unsigned long long)tag_errors);
		return 3;
	}
	printf("workload=%s threads=%llu ops=%llu seconds=%.6f mops=%.3f\n", w,
	       (unsigned long long)T, (unsigned long long)ops, secs,
	       secs > 0 ? (double)ops / secs / 1e6 : 0.0);
	return 0;
}
