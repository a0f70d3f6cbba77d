/* malloc_bench.c: allocator micro-benchmarks for bench/run.sh.
 *
 *	malloc_bench <workload> [iterations]
 *
 * Workloads:
 *   churn    one thread, 4096 live slots; each iteration frees a random slot
 *            and refills it with a 16 B - 64 KiB block (log-uniform-ish)
 *   larson   two threads, each churning its own array of 16-512 B blocks;
 *            between rounds the threads swap arrays, so most frees are of
 *            blocks the other thread allocated
 *   realloc  buffers grown from 16 B to 1 MiB by realloc, by ~1.5x or small
 *            steps, the new tail touched each time, then freed
 *   aligned  posix_memalign / aligned_alloc / memalign, alignments 16-4096,
 *            sizes 16 B - 8 KiB, a window of live blocks freed at random
 *   calls    call-bound churn: 256 live slots, each iteration frees one and
 *            allocates 16-416 B (1 in 64 up to 8 KiB) with one store into it,
 *            so the time is the malloc/free pair itself; one thread
 *   calls2   the same in two threads, each with its own slots
 *
 * Prints one line:
 *	workload=<name> seconds=<wall> maxrss_kib=<peak RSS> checksum=<hex>
 * The checksum folds in values written to and read back from the blocks; it
 * does not depend on addresses, so it is the same under every allocator for
 * a given workload and iteration count. */
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_rng.h"


static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p) {
		fprintf(stderr, "malloc_bench: malloc(%zu) failed\n", n);
		exit(2);
	}
	return p;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Fill a fresh block the way a program would: a header word, a trailer word
 * and the first cache line. */
static inline void touch(unsigned char *p, size_t n, uint64_t v)
{
	size_t m = n < 64 ? n : 64;

	memset(p, (int)(v & 0xff), m);
	memcpy(p, &v, 8);
	memcpy(p + n - 8, &v, 8);
}

/* Read back what touch() wrote. */
static inline uint64_t readback(const unsigned char *p, size_t n)
{
	uint64_t a, b;

	memcpy(&a, p, 8);
	memcpy(&b, p + n - 8, 8);
	return a ^ (b << 1) ^ p[n / 2 < 64 ? n / 2 : 63];
}

/* ---- churn ---- */

#define CHURN_SLOTS 4096

/* Power-of-two bucket 2^4..2^15 chosen uniformly, then uniform inside it:
 * 16 B .. 64 KiB, mostly small. */
static inline size_t churn_size(uint64_t *s)
{
	unsigned b = 4 + (unsigned)rng_below(s, 12);
	size_t lo = (size_t)1 << b;

	return lo + rng_below(s, lo);
}

struct slot {
	unsigned char *p;
	size_t n;
};

static uint64_t run_churn(long iters)
{
	struct slot *t = xmalloc(CHURN_SLOTS * sizeof(*t));
	uint64_t s = 0x9E3779B97F4A7C15ULL, sum = 0;

	for (size_t i = 0; i < CHURN_SLOTS; i++) {
		t[i].n = churn_size(&s);
		t[i].p = xmalloc(t[i].n);
		touch(t[i].p, t[i].n, i);
	}
	for (long it = 0; it < iters; it++) {
		size_t i = rng_below(&s, CHURN_SLOTS);

		sum += readback(t[i].p, t[i].n);
		free(t[i].p);
		t[i].n = churn_size(&s);
		t[i].p = xmalloc(t[i].n);
		touch(t[i].p, t[i].n, (uint64_t)it);
	}
	for (size_t i = 0; i < CHURN_SLOTS; i++) {
		sum += readback(t[i].p, t[i].n);
		free(t[i].p);
	}
	free(t);
	return sum;
}

/* ---- larson ---- */

#define LARSON_THREADS 2
#define LARSON_SLOTS 1024
#define LARSON_ROUNDS 200

struct larson_shared {
	pthread_barrier_t barrier;
	struct slot *arrays[LARSON_THREADS];
	long per_round;
};

struct larson_thread {
	struct larson_shared *sh;
	int id;
	uint64_t sum;
};

static void *larson_main(void *arg)
{
	struct larson_thread *lt = arg;
	struct larson_shared *sh = lt->sh;
	uint64_t s = 0xD1B54A32D192ED03ULL * (uint64_t)(lt->id + 1), sum = 0;

	for (int r = 0; r < LARSON_ROUNDS; r++) {
		/* Round r: thread id works on the array thread (id + r) started
		 * with, so from round 1 on it frees the other thread's blocks. */
		struct slot *t = sh->arrays[(lt->id + r) % LARSON_THREADS];

		for (long it = 0; it < sh->per_round; it++) {
			size_t i = rng_below(&s, LARSON_SLOTS);

			sum += readback(t[i].p, t[i].n);
			free(t[i].p);
			t[i].n = 16 + rng_below(&s, 512 - 16 + 1);
			t[i].p = xmalloc(t[i].n);
			touch(t[i].p, t[i].n, s);
		}
		pthread_barrier_wait(&sh->barrier);
	}
	lt->sum = sum;
	return NULL;
}

static uint64_t run_larson(long iters)
{
	struct larson_shared sh;
	struct larson_thread lt[LARSON_THREADS];
	pthread_t tid[LARSON_THREADS];
	uint64_t s = 0x2545F4914F6CDD1DULL, sum = 0;

	sh.per_round = iters / LARSON_ROUNDS / LARSON_THREADS;
	if (sh.per_round < 1)
		sh.per_round = 1;
	pthread_barrier_init(&sh.barrier, NULL, LARSON_THREADS);
	for (int k = 0; k < LARSON_THREADS; k++) {
		sh.arrays[k] = xmalloc(LARSON_SLOTS * sizeof(struct slot));
		for (size_t i = 0; i < LARSON_SLOTS; i++) {
			struct slot *sl = &sh.arrays[k][i];

			sl->n = 16 + rng_below(&s, 512 - 16 + 1);
			sl->p = xmalloc(sl->n);
			touch(sl->p, sl->n, i);
		}
	}
	for (int k = 0; k < LARSON_THREADS; k++) {
		lt[k] = (struct larson_thread){ .sh = &sh, .id = k };
		if (pthread_create(&tid[k], NULL, larson_main, &lt[k])) {
			fprintf(stderr, "malloc_bench: pthread_create failed\n");
			exit(2);
		}
	}
	for (int k = 0; k < LARSON_THREADS; k++) {
		pthread_join(tid[k], NULL);
		sum += lt[k].sum;
	}
	for (int k = 0; k < LARSON_THREADS; k++) {
		for (size_t i = 0; i < LARSON_SLOTS; i++) {
			sum += readback(sh.arrays[k][i].p, sh.arrays[k][i].n);
			free(sh.arrays[k][i].p);
		}
		free(sh.arrays[k]);
	}
	pthread_barrier_destroy(&sh.barrier);
	return sum;
}

/* ---- realloc ---- */

#define REALLOC_MAX ((size_t)1 << 20)
#define REALLOC_LIVE 8

/* Touch the new tail [old, n): one byte per 4 KiB page, its first cache line
 * and its last word, as a program appending to the buffer would. */
static inline void touch_tail(unsigned char *p, size_t old, size_t n,
			      uint64_t v)
{
	size_t len = n - old;

	memset(p + old, (int)(v & 0xff), len < 64 ? len : 64);
	for (size_t o = old + 4096; o < n; o += 4096)
		p[o] = (unsigned char)v;
	if (n - old >= 8)
		memcpy(p + n - 8, &v, 8);
}

/* A few buffers grow side by side, so a realloc does not always find free
 * space after its block.  iters counts realloc calls. */
static uint64_t run_realloc(long iters)
{
	unsigned char *buf[REALLOC_LIVE];
	size_t len[REALLOC_LIVE];
	uint64_t s = 0xBF58476D1CE4E5B9ULL, sum = 0;

	for (int k = 0; k < REALLOC_LIVE; k++) {
		len[k] = 16;
		buf[k] = xmalloc(16);
		touch_tail(buf[k], 0, 16, (uint64_t)k);
	}
	for (long it = 0; it < iters; it++) {
		int k = (int)rng_below(&s, REALLOC_LIVE);
		size_t old = len[k], n;

		if (rng_next(&s) & 1)
			n = old + old / 2;            /* ~1.5x */
		else
			n = old + 16 + rng_below(&s, 241); /* +16..256 */
		if (n > REALLOC_MAX) {
			sum += readback(buf[k], old);
			free(buf[k]);
			old = 0;
			n = 16;
			buf[k] = NULL;
		}
		unsigned char *p = realloc(buf[k], n);

		if (!p) {
			fprintf(stderr, "malloc_bench: realloc(%zu) failed\n", n);
			exit(2);
		}
		buf[k] = p;
		len[k] = n;
		if (old)
			sum += p[old - 1];
		touch_tail(p, old, n, (uint64_t)it);
	}
	for (int k = 0; k < REALLOC_LIVE; k++) {
		sum += readback(buf[k], len[k]);
		free(buf[k]);
	}
	return sum;
}

/* ---- aligned ---- */

#define ALIGNED_SLOTS 1024

static uint64_t run_aligned(long iters)
{
	struct slot *t = xmalloc(ALIGNED_SLOTS * sizeof(*t));
	uint64_t s = 0x94D049BB133111EBULL, sum = 0;

	for (size_t i = 0; i < ALIGNED_SLOTS; i++)
		t[i].p = NULL;
	for (long it = 0; it < iters; it++) {
		size_t i = rng_below(&s, ALIGNED_SLOTS);
		size_t align = (size_t)16 << rng_below(&s, 9); /* 16..4096 */
		unsigned b = 4 + (unsigned)rng_below(&s, 10);  /* 16..8 KiB */
		size_t lo = (size_t)1 << b;
		size_t n = lo + rng_below(&s, lo);
		void *p = NULL;

		if (n > 8192)
			n = 8192;
		if (t[i].p) {
			sum += readback(t[i].p, t[i].n);
			free(t[i].p);
		}
		switch (it % 3) {
		case 0:
			if (posix_memalign(&p, align, n))
				p = NULL;
			break;
		case 1:
			p = aligned_alloc(align, n);
			break;
		default:
			p = memalign(align, n);
			break;
		}
		if (!p || ((uintptr_t)p & (align - 1))) {
			fprintf(stderr, "malloc_bench: aligned alloc (%zu, %zu) "
				"failed or misaligned\n", align, n);
			exit(2);
		}
		t[i].p = p;
		t[i].n = n;
		touch(p, n, (uint64_t)it);
	}
	for (size_t i = 0; i < ALIGNED_SLOTS; i++) {
		if (t[i].p) {
			sum += readback(t[i].p, t[i].n);
			free(t[i].p);
		}
	}
	free(t);
	return sum;
}

/* ---- calls ---- */

#define CALLS_SLOTS 256

/* 16..416 B in 16 B steps, and 1 in 64 up to 8 KiB. */
static inline size_t calls_size(uint64_t *s)
{
	uint64_t r = rng_next(s);

	if (!(r & 63))
		return 16 + (size_t)((r >> 8) & 8191) % 8177;
	return 16 + 16 * (size_t)((r >> 8) % 26);
}

struct calls_thread {
	long iters;
	uint64_t seed;
	uint64_t sum;
};

static void *calls_main(void *arg)
{
	struct calls_thread *ct = arg;
	unsigned char *slot[CALLS_SLOTS] = { 0 };
	uint64_t s = ct->seed, sum = 0;

	for (long it = 0; it < ct->iters; it++) {
		size_t i = (size_t)it & (CALLS_SLOTS - 1);

		if (slot[i])
			sum += slot[i][0];
		free(slot[i]);
		slot[i] = xmalloc(calls_size(&s));
		slot[i][0] = (unsigned char)it;
	}
	for (size_t i = 0; i < CALLS_SLOTS; i++)
		free(slot[i]);
	ct->sum = sum;
	return NULL;
}

static uint64_t run_calls_n(long iters, int nthreads)
{
	struct calls_thread ct[2];
	pthread_t th[2];
	uint64_t sum = 0;

	for (int t = 0; t < nthreads; t++) {
		ct[t] = (struct calls_thread){ iters, 0x9E3779B97F4A7C15ULL * (uint64_t)(t + 1), 0 };
		if (pthread_create(&th[t], NULL, calls_main, &ct[t])) {
			fprintf(stderr, "malloc_bench: pthread_create failed\n");
			exit(2);
		}
	}
	for (int t = 0; t < nthreads; t++) {
		pthread_join(th[t], NULL);
		sum += ct[t].sum;
	}
	return sum;
}

static uint64_t run_calls(long iters)
{
	return run_calls_n(iters, 1);
}

static uint64_t run_calls2(long iters)
{
	return run_calls_n(iters, 2);
}

/* ---- main ---- */

struct workload {
	const char *name;
	uint64_t (*run)(long iters);
	long default_iters;
};

static const struct workload workloads[] = {
	{ "churn", run_churn, 5000000 },
	{ "larson", run_larson, 30000000 },
	{ "realloc", run_realloc, 130000 },
	{ "aligned", run_aligned, 5000000 },
	{ "calls", run_calls, 50000000 },
	{ "calls2", run_calls2, 50000000 },
};

#define NWORKLOADS (sizeof(workloads) / sizeof(workloads[0]))

static void usage(void)
{
	fprintf(stderr, "usage: malloc_bench <workload> [iterations]\n"
		"workloads:");
	for (size_t i = 0; i < NWORKLOADS; i++)
		fprintf(stderr, " %s (default %ld)", workloads[i].name,
			workloads[i].default_iters);
	fprintf(stderr, "\n");
}

int main(int argc, char **argv)
{
	const struct workload *w = NULL;
	long iters;

	if (argc < 2 || argc > 3) {
		usage();
		return 2;
	}
	for (size_t i = 0; i < NWORKLOADS; i++)
		if (!strcmp(argv[1], workloads[i].name))
			w = &workloads[i];
	if (!w) {
		fprintf(stderr, "malloc_bench: unknown workload '%s'\n", argv[1]);
		usage();
		return 2;
	}
	iters = w->default_iters;
	if (argc == 3) {
		char *end;

		iters = strtol(argv[2], &end, 10);
		if (*argv[2] == '\0' || *end != '\0' || iters <= 0) {
			fprintf(stderr, "malloc_bench: bad iteration count '%s'\n",
				argv[2]);
			return 2;
		}
	}

	double t0 = now();
	uint64_t sum = w->run(iters);
	double t1 = now();
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	printf("workload=%s seconds=%.6f maxrss_kib=%ld checksum=%016llx\n",
	       w->name, t1 - t0, ru.ru_maxrss, (unsigned long long)sum);
	return 0;
}
