/* heap_workloads.h: the workloads of heap_bench and pmemobj_bench.
 *
 * Included once, by one .c file, after it has defined the allocator under
 * test:
 *
 *   typedef ... bh_t;                        a handle of one block
 *   static void *bh_alloc(bh_t *h, size_t n) allocate n bytes, store the
 *                                            handle in *h, return the
 *                                            address (never NULL: exits)
 *   static void *bh_ptr(bh_t h)              the address of a block
 *   static void bh_free(bh_t *h)             free the block
 *   static uint64_t bh_word(bh_t h)          what `publish` stores in the
 *                                            persistent slot for a block
 *   static uint64_t *pub_slot(void)          the 8-byte persistent slot
 *   static int pub_persist(const void *p, size_t n)
 *                                            make [p, p+n) durable (0), or
 *                                            not possible here (-1)
 *   static const char *pub_persist_name      what pub_persist does
 *   static const char *bench_name            for error messages
 *
 * Workloads (T threads, N ops per thread; an op is ONE malloc or ONE free,
 * in every multi-threaded workload; `ops` in the output is the total over
 * all threads and mops = ops / seconds / 1e6):
 *
 *   threadtest T N  each thread: N/2000 rounds of "allocate 1000 blocks of
 *                   64 B, then free all 1000" (after Hoard's threadtest)
 *   larson T N      each thread owns 1024 slots holding blocks of 64..400 B
 *                   (uniform); a step frees a random slot and refills it
 *                   with a new random-size block (2 ops; N/2 steps).  The
 *                   slot arrays are filled before the clock starts, each by
 *                   its own thread, and then handed over: thread i works on
 *                   the array of thread (i+1) % T, so its first frees are of
 *                   blocks another thread allocated (remote frees)
 *   prodcon T N     T/2 producer/consumer pairs (T even): the producer
 *                   allocates N blocks of 64 B and passes them through a
 *                   bounded lock-free single-producer single-consumer ring
 *                   (1024 entries) to its consumer, which frees them: every
 *                   free is remote.  Each thread does N ops
 *   publish N       one thread, N iterations (an op here is one iteration):
 *                   allocate 64 B, fill it, persist it, store its pointer in
 *                   a persistent 8-byte slot, persist the slot, free the
 *                   block.  Two persists per op when persisting is possible
 *
 *   pingpong 2 N    no allocation: two threads hand one cache line back and
 *                   forth N times; prints ns_per_roundtrip, the price of the
 *                   cross-CPU transfers that remote frees pay (on a VM it
 *                   changes with where the host runs the virtual CPUs)
 *
 * Every block gets a tag written after allocation and checked before it is
 * freed (first word, and last word for larson): an allocator that hands
 * out overlapping blocks, or a ring that loses an entry, makes the program
 * report the mismatch and exit with status 3.
 *
 * Threads are pinned round-robin to the CPUs the process may use (see
 * pin_attr; BENCH_NOPIN=1 turns that off).
 *
 * The clock (CLOCK_MONOTONIC) runs from the start barrier to the end
 * barrier: thread creation, the initial fill of larson and the final frees
 * are outside it.  The bookkeeping arrays come from mmap, not from the
 * allocator under test. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define cpu_relax() __asm__ __volatile__("" ::: "memory")
#endif

#define TT_BATCH 1000
#define TT_SIZE 64
/* Overridable (-D) for experiments; bench/heap_run.sh uses the defaults. */
#ifndef LARSON_SLOTS
#define LARSON_SLOTS 1024
#endif
#ifndef LARSON_MIN
#define LARSON_MIN 64
#endif
#ifndef LARSON_MAX
#define LARSON_MAX 400
#endif
#define PC_SIZE 64
#ifndef RING_CAP
#define RING_CAP 1024
#endif
#define PUB_SIZE 64

#include "bench_common.h"

/* ---- threadtest ------------------------------------------------------- */

static void *threadtest_thread(void *arg)
{
	struct targ *a = arg;
	bh_t *v = xmap(TT_BATCH * sizeof(*v));
	uint64_t rounds = a->n / (2 * TT_BATCH), base = (uint64_t)a->id << 48;

	pthread_barrier_wait(&bar_start);
	for (uint64_t r = 0; r < rounds; r++) {
		for (unsigned i = 0; i < TT_BATCH; i++) {
			uint64_t *p = bh_alloc(&v[i], TT_SIZE);

			p[0] = base + r * TT_BATCH + i;
		}
		for (unsigned i = 0; i < TT_BATCH; i++) {
			uint64_t *p = bh_ptr(v[i]);

			if (p[0] != base + r * TT_BATCH + i)
				tag_error("threadtest", p, base + r * TT_BATCH + i, p[0]);
			bh_free(&v[i]);
		}
	}
	a->ops = rounds * 2 * TT_BATCH;
	pthread_barrier_wait(&bar_end);
	munmap(v, TT_BATCH * sizeof(*v));
	return NULL;
}

/* ---- larson ----------------------------------------------------------- */

struct lslot {
	bh_t h;
	uint64_t tag;
	uint32_t size;
};

static void larson_fill(struct lslot *s, uint64_t tag, uint32_t size)
{
	unsigned char *p = bh_alloc(&s->h, size);

	s->tag = tag;
	s->size = size;
	memcpy(p, &tag, 8);
	memcpy(p + size - 8, &tag, 8);
}

static void larson_drop(struct lslot *s)
{
	unsigned char *p = bh_ptr(s->h);
	uint64_t a, b;

	memcpy(&a, p, 8);
	memcpy(&b, p + s->size - 8, 8);
	if (a != s->tag)
		tag_error("larson", p, s->tag, a);
	else if (b != s->tag)
		tag_error("larson (last word)", p, s->tag, b);
	bh_free(&s->h);
}

static void *larson_thread(void *arg)
{
	struct targ *a = arg;
	struct lslot **arrays = a->shared;
	uint64_t rng = 0x9E3779B97F4A7C15ULL * (a->id + 1), tag = (uint64_t)(a->id + 1) << 48;
	uint64_t steps = a->n / 2;
	struct lslot *mine;

	arrays[a->id] = xmap(LARSON_SLOTS * sizeof(struct lslot));
	for (unsigned i = 0; i < LARSON_SLOTS; i++)
		larson_fill(&arrays[a->id][i], tag++,
			    LARSON_MIN + (uint32_t)rng_below(&rng, LARSON_MAX - LARSON_MIN + 1));
	pthread_barrier_wait(&bar_filled);
	/* Hand the arrays over: the first free of every slot is remote. */
	mine = arrays[(a->id + 1) % a->nthreads];
	pthread_barrier_wait(&bar_start);
	for (uint64_t s = 0; s < steps; s++) {
		struct lslot *sl = &mine[rng_below(&rng, LARSON_SLOTS)];

		larson_drop(sl);
		larson_fill(sl, tag++,
			    LARSON_MIN + (uint32_t)rng_below(&rng, LARSON_MAX - LARSON_MIN + 1));
	}
	a->ops = steps * 2;
	pthread_barrier_wait(&bar_end);
	for (unsigned i = 0; i < LARSON_SLOTS; i++)
		larson_drop(&mine[i]);
	return NULL;
}

/* ---- prodcon ---------------------------------------------------------- */

struct ring {
	_Alignas(64) _Atomic uint64_t head; /* written by the producer */
	_Alignas(64) _Atomic uint64_t tail; /* written by the consumer */
	_Alignas(64) bh_t buf[RING_CAP];
};

static inline void backoff(unsigned *spins)
{
	if (++*spins < 128)
		cpu_relax();
	else
		sched_yield();
}

static void *prodcon_thread(void *arg)
{
	struct targ *a = arg;
	struct ring *r = (struct ring *)a->shared + a->id / 2;
	uint64_t n = a->n;

	pthread_barrier_wait(&bar_start);
	if (a->id % 2 == 0) {
		uint64_t head = 0, tail = 0;

		for (uint64_t i = 0; i < n; i++) {
			bh_t h;
			uint64_t *p = bh_alloc(&h, PC_SIZE);
			unsigned spins = 0;

			p[0] = i;
			while (head - tail >= RING_CAP) {
				tail = atomic_load_explicit(&r->tail, memory_order_acquire);
				if (head - tail >= RING_CAP)
					backoff(&spins);
			}
			r->buf[head % RING_CAP] = h;
			atomic_store_explicit(&r->head, ++head, memory_order_release);
		}
	} else {
		uint64_t head = 0, tail = 0;

		for (uint64_t i = 0; i < n; i++) {
			unsigned spins = 0;

			while (tail == head) {
				head = atomic_load_explicit(&r->head, memory_order_acquire);
				if (tail == head)
					backoff(&spins);
			}
			bh_t h = r->buf[tail % RING_CAP];
			uint64_t *p = bh_ptr(h);

			atomic_store_explicit(&r->tail, ++tail, memory_order_release);
			if (p[0] != i)
				tag_error("prodcon", p, i, p[0]);
			bh_free(&h);
		}
	}
	a->ops = n;
	pthread_barrier_wait(&bar_end);
	return NULL;
}

/* ---- pingpong: the machine, not the allocator ------------------------- */

/* Two threads bounce one cache line: the cost of the cross-CPU transfer
 * that every remote free needs, which on a VM depends on where the host
 * placed the virtual CPUs (same core complex or not). */
static _Alignas(64) _Atomic uint64_t pingpong_line;

static void *pingpong_thread(void *arg)
{
	struct targ *a = arg;
	uint64_t n = a->n, mine = a->id % 2;

	pthread_barrier_wait(&bar_start);
	if (a->id < 2) {
		for (uint64_t i = 0; i < n; i++) {
			uint64_t want = 2 * i + mine;

			while (atomic_load_explicit(&pingpong_line, memory_order_acquire) != want)
				cpu_relax();
			atomic_store_explicit(&pingpong_line, want + 1, memory_order_release);
		}
		a->ops = a->id == 0 ? n : 0;
	}
	pthread_barrier_wait(&bar_end);
	return NULL;
}

/* ---- publish ---------------------------------------------------------- */

static double run_publish(uint64_t n, const char **persist)
{
	uint64_t *slot = pub_slot();
	int can_persist;
	double t0, t1;

	/* Probe once: the allocator may have no durable memory at all. */
	*slot = 0;
	can_persist = pub_persist(slot, 8) == 0;
	*persist = can_persist ? pub_persist_name : "none";
	t0 = now_s();
	for (uint64_t i = 0; i < n; i++) {
		bh_t h;
		uint64_t *p = bh_alloc(&h, PUB_SIZE);

		for (unsigned k = 0; k < PUB_SIZE / 8; k++)
			p[k] = i + k;
		if (can_persist)
			pub_persist(p, PUB_SIZE);
		*slot = bh_word(h);
		if (can_persist)
			pub_persist(slot, 8);
		if (p[PUB_SIZE / 8 - 1] != i + PUB_SIZE / 8 - 1)
			tag_error("publish", p, i + PUB_SIZE / 8 - 1, p[PUB_SIZE / 8 - 1]);
		bh_free(&h);
	}
	t1 = now_s();
	return t1 - t0;
}

/* ---- main ------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
		"usage: %s threadtest|larson|prodcon T N\n"
		"       %s pingpong 2 N\n"
		"       %s publish N\n"
		"  T threads (prodcon: even), N ops per thread (publish: iterations);\n"
		"  N may end in k or M\n", bench_name, bench_name, bench_name);
	exit(2);
}

/* Runs the workload of argv; the caller has opened the allocator. */
static int workloads_main(int argc, char **argv)
{
	const char *w = argc > 1 ? argv[1] : NULL;
	const char *persist = NULL;
	uint64_t T = 1, n, ops;
	double secs;

	if (!w)
		usage();
	if (!strcmp(w, "publish")) {
		if (argc != 3 || parse_u64(argv[2], &n))
			usage();
		secs = run_publish(n, &persist);
		ops = n;
	} else {
		if (argc != 4 || parse_u64(argv[2], &T) || parse_u64(argv[3], &n) || T > 1024)
			usage();
		if (!strcmp(w, "threadtest")) {
			if (n < 2 * TT_BATCH) {
				fprintf(stderr, "%s: threadtest wants N >= %u\n", bench_name,
					2 * TT_BATCH);
				exit(2);
			}
			secs = run_threads((unsigned)T, n, threadtest_thread, NULL, &ops);
		} else if (!strcmp(w, "larson")) {
			struct lslot **arrays = xmap(T * sizeof(*arrays));

			secs = run_threads((unsigned)T, n, larson_thread, arrays, &ops);
		} else if (!strcmp(w, "pingpong")) {
			if (T != 2) {
				fprintf(stderr, "%s: pingpong wants 2 threads\n", bench_name);
				exit(2);
			}
			secs = run_threads(2, n, pingpong_thread, NULL, &ops);
			printf("workload=pingpong threads=2 ops=%llu seconds=%.6f mops=%.3f "
			       "ns_per_roundtrip=%.1f\n", (unsigned long long)ops, secs,
			       (double)ops / secs / 1e6, secs / (double)ops * 1e9);
			return 0;
		} else if (!strcmp(w, "prodcon")) {
			struct ring *rings;

			if (T % 2) {
				fprintf(stderr, "%s: prodcon wants an even number of threads\n",
					bench_name);
				exit(2);
			}
			rings = xmap(T / 2 * sizeof(*rings));
			secs = run_threads((unsigned)T, n, prodcon_thread, rings, &ops);
		} else {
			usage();
		}
	}
	if (tag_errors) {
		fprintf(stderr, "%s: %s: %llu blocks did not hold what was written to them\n",
			bench_name, w, (unsigned long long)tag_errors);
		return 3;
	}
	printf("workload=%s threads=%llu ops=%llu seconds=%.6f mops=%.3f", w,
	       (unsigned long long)T, (unsigned long long)ops, secs,
	       secs > 0 ? (double)ops / secs / 1e6 : 0.0);
	if (persist)
		printf(" persist=%s", persist);
	printf("\n");
	fflush(stdout);
	return 0;
}
