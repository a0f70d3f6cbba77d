/* peer_common.h: what peer_bench.c and nvm_bench.c share besides
 * bench_common.h (the clock, mmap, the random generator, pinned threads,
 * argument parsing): block tags and a spin backoff.
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

