/* peer_common.h: what peer_bench.c and nvm_bench.c share -- the clock,
 * bookkeeping memory from mmap, a random generator, block tags, pinned
 * threads between two barriers, argument parsing.
 *
 * Included once, by one .c file, after it has defined
 *   static const char *bench_name;   for messages
 *
 * The clock (CLOCK_MONOTONIC) runs from the start barrier to the end
 * barrier of run_threads: thread creation and whatever a thread does before
 * the start barrier or after the end barrier are outside it.  Bookkeeping
 * (slot arrays, rings, thread arguments) comes from mmap, never from the
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

#include "bench_common.h"

/* A block of n >= 8 bytes carries its tag in its first word and, when
 * n >= 16, in its last word too. */
static inline void tag_put(void *p, size_t n, uint64_t tag)
{
	memcpy(p, &tag, 8);
	if (n >= 16)
		memcpy((char *)p + n - 8, &tag, 8);
}

static inline void tag_check(const char *w, const void *p, size_t n, uint64_t tag)
{
	uint64_t a, b = tag;

	memcpy(&a, p, 8);
	if (n >= 16)
		memcpy(&b, (const char *)p + n - 8, 8);
	if (__builtin_expect(a != tag, 0))
		tag_error(w, p, tag, a);
	else if (__builtin_expect(b != tag, 0))
		tag_error(w, (const char *)p + n - 8, tag, b);
}

static inline void backoff(unsigned *spins)
{
	if (++*spins < 128)
		cpu_relax();
	else
		sched_yield();
}

/* ---- threads ---------------------------------------------------------- */

struct targ {
	unsigned id, nthreads;
	uint64_t n;      /* the workload's per-thread count */
	uint64_t ops;    /* ops done (set by the thread) */
	void *shared;    /* workload-specific */
	pthread_t th;
};

static pthread_barrier_t bar_start, bar_end;

/* Thread i runs on the i-th CPU (round-robin) of the process's affinity
 * mask, unless PEER_BENCH_NOPIN is set: on a 2-CPU machine two threads
 * left to the scheduler sometimes share a CPU, and then nothing is remote. */
static void pin_attr(pthread_attr_t *attr, unsigned i)
{
	cpu_set_t mask, one;
	unsigned n = 0;

	if (getenv("PEER_BENCH_NOPIN") || sched_getaffinity(0, sizeof(mask), &mask))
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

/* Runs fn on T threads, each of which calls pthread_barrier_wait on
 * bar_start and then on bar_end; returns the seconds between the two and
 * the sum of the threads' ops in *ops. */
static double run_threads(unsigned T, uint64_t n, void *(*fn)(void *), void *shared,
			  uint64_t *ops)
{
	struct targ *a = xmap(T * sizeof(*a));
	double t0, t1;

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
