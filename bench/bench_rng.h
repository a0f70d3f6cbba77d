/* bench_rng.h: the benchmarks' random numbers (one generator for all, so
 * that every allocator sees the same sequence of sizes and orders). */
#ifndef BTD_BENCH_RNG_H
#define BTD_BENCH_RNG_H

#include <stddef.h>
#include <stdint.h>

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

/* Uniform in [0, n), n < 2^32: fine for a benchmark. */
static inline size_t rng_below(uint64_t *s, size_t n)
{
	return (size_t)(((rng_next(s) >> 32) * (uint64_t)n) >> 32);
}

#endif
