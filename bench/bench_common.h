/* bench_common.h: the clock, bookkeeping memory from mmap, a random
 * generator and the report of a bad block tag, shared by the benchmarks'
 * workload headers (heap_workloads.h, peer_common.h).  Included once, by
 * one .c file, after it has defined
 *   static const char *bench_name;   for messages */
#ifndef BTD_BENCH_COMMON_H
#define BTD_BENCH_COMMON_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

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

/* xorshift64* */
static inline uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* Uniform in [0, n). */
static inline size_t rng_below(uint64_t *s, size_t n)
{
	return (size_t)(((rng_next(s) >> 32) * (uint64_t)n) >> 32);
}

static _Atomic unsigned long long tag_errors;

static void tag_error(const char *w, const void *p, uint64_t want, uint64_t got)
{
	if (atomic_fetch_add(&tag_errors, 1) < 10)
		fprintf(stderr, "%s: %s: block %p holds %#llx, expected %#llx "
			"(overlapping blocks or a lost write)\n", bench_name, w, p,
			(unsigned long long)got, (unsigned long long)want);
}

#endif
