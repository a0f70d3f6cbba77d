/* bench_common.h: the clock, bookkeeping memory from mmap, a random
 * generator, the report of a bad block tag and pinned threads between
 * barriers, shared by the benchmarks' workload headers (heap_workloads.h,
 * peer_common.h).  Included once, by one .c file, after it has defined
 *   static const char *bench_name;   for messages */
#ifndef BTD_BENCH_COMMON_H
#define BTD_BENCH_COMMON_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#include "bench_rng.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *xmap(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		fprintf(stderr, "%s: mmap(%zu) failed\n", bench_name, n);
		exit(2);
	}
	return p;
}


static _Atomic unsigned long long tag_errors;

static void tag_error(const char *w, const void *p, uint64_t want, uint64_t got)
{
	if (atomic_fetch_add(&tag_errors, 1) < 10)
		fprintf(stderr, "%s: %s: block %p holds %#llx, expected %#llx "
			"(overlapping blocks or a lost write)\n", bench_name, w, p,
			(unsigned long long)got, (unsigned long long)want);
}


/* ---- threads ---------------------------------------------------------- */

struct targ {
	unsigned id, nthreads;
	uint64_t n;      /* ops asked of this thread */
	uint64_t ops;    /* ops done */
	void *shared;    /* workload-specific */
	pthread_t th;
};

static pthread_barrier_t bar_filled, bar_start, bar_end;

/* Thread i runs on the i-th CPU (round-robin) of the process's affinity
 * mask, unless BENCH_NOPIN is set: left to the scheduler, the two
 * threads of a pair on a 2-CPU machine sometimes share one CPU (when
 * anything else runs), and then every "remote" free stays in one cache --
 * a different, much faster benchmark. */
static void pin_attr(pthread_attr_t *attr, unsigned i)
{
	cpu_set_t mask, one;
	unsigned n = 0;

	if (getenv("BENCH_NOPIN") || sched_getaffinity(0, sizeof(mask), &mask))
		return;
	unsigned want = i % (unsigned)CPU_COUNT(&mask);

	for (unsigned c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, &mask))
			continue;
		if (n++ == want) {
			CPU_ZERO(&one);
			CPU_SET(c, &one);
			pthread_attr_setaffinity_np(attr, sizeof(one), &one);
			return;
		}
	}
}

/* Runs fn on T threads, each of which waits on bar_start and then on
 * bar_end (and, if it wants, on bar_filled, T threads, before bar_start);
 * returns the seconds between the start and end barriers, and the total
 * ops in *ops. */
static double run_threads(unsigned T, uint64_t n, void *(*fn)(void *), void *shared,
			  uint64_t *ops)
{
	struct targ *a = xmap(T * sizeof(*a));
	double t0, t1;

	pthread_barrier_init(&bar_filled, NULL, T);
	pthread_barrier_init(&bar_start, NULL, T + 1);
	pthread_barrier_init(&bar_end, NULL, T + 1);
	for (unsigned i = 0; i < T; i++) {
		pthread_attr_t attr;

		a[i].id = i;
		a[i].nthreads = T;
		a[i].n = n;
		a[i].ops = 0;
		a[i].shared = shared;
		pthread_attr_init(&attr);
		pin_attr(&attr, i);
		if (pthread_create(&a[i].th, &attr, fn, &a[i])) {
			fprintf(stderr, "%s: pthread_create failed\n", bench_name);
			exit(2);
		}
		pthread_attr_destroy(&attr);
	}
	pthread_barrier_wait(&bar_start);
	t0 = now_s();
	pthread_barrier_wait(&bar_end);
	t1 = now_s();
	*ops = 0;
	for (unsigned i = 0; i < T; i++) {
		pthread_join(a[i].th, NULL);
		*ops += a[i].ops;
	}
	pthread_barrier_destroy(&bar_filled);
	pthread_barrier_destroy(&bar_start);
	pthread_barrier_destroy(&bar_end);
	munmap(a, T * sizeof(*a));
	return t1 - t0;
}


/* ---- arguments -------------------------------------------------------- */

/* A positive count, optionally ending in k (1e3) or M (1e6). */
static int parse_u64(const char *s, uint64_t *v)
{
	char *end;
	unsigned long long x;

	if (!s || !*s)
		return -1;
	x = strtoull(s, &end, 10);
	if (*end == 'k' || *end == 'K')
		x *= 1000, end++;
	else if (*end == 'm' || *end == 'M')
		x *= 1000000, end++;
	if (*end || x == 0)
		return -1;
	*v = x;
	return 0;
}

#endif
