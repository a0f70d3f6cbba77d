/* large_min.c SIZE ITERS: malloc SIZE bytes, write every byte once, free;
 * ITERS times, with 8 blocks live at a time.  Prints the ns per round.
 * bench/large_min.sh runs it under jemalloc and under btd with
 * BTD_LARGE_MIN=SIZE to choose the default threshold. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: large_min SIZE ITERS\n");
		return 2;
	}
	size_t size = strtoull(argv[1], NULL, 0);
	long iters = atol(argv[2]);
	void *live[8] = { 0 };
	struct timespec t0, t1;
	uint64_t sum = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < iters; i++) {
		free(live[i % 8]);
		char *p = malloc(size);

		if (!p)
			return 1;
		memset(p, (int)i, size);
		sum += (unsigned char)p[size / 2];
		live[i % 8] = p;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	for (int i = 0; i < 8; i++)
		free(live[i]);
	double ns = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / iters;

	printf("size=%zu ns_per_round=%.1f sum=%llu\n", size, ns, (unsigned long long)sum);
	return 0;
}
