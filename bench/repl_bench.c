/* repl_bench.c: what replication costs a linked program (bench/repl.sh).
 *
 *   repl_bench commit SIZE SECONDS   durable commits of SIZE bytes: for
 *                                    each, change the block, then
 *                                    btd_persist (one range) and a
 *                                    transaction (btd_tx_add + commit;
 *                                    up to 32 KiB: a log holds 64 KiB);
 *                                    prints "persist NS" and "tx NS",
 *                                    the median of the calls made
 *   repl_bench fill MIB              a heap of MIB MiB of 64 KiB blocks,
 *                                    each written, then btd_sync (the
 *                                    whole image to every replica) three
 *                                    times; prints "sync BYTES NS" of the
 *                                    third
 * The replicas are BTD_REPLICAS (none: the local pool only). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "btd.h"

static uint64_t now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp);
	return n ? v[n / 2] : 0;
}

static int die(const char *what)
{
	fprintf(stderr, "repl_bench: %s: %s\n", what, btd_last_error());
	return 2;
}

/* A transaction's log holds 64 KiB with its own heads: larger ranges are
 * measured with btd_persist only. */
#define TX_MAX (32u << 10)

static int commit(size_t size, double seconds)
{
	enum { MAX = 200000 };
	static uint64_t t_persist[MAX], t_tx[MAX];
	size_t np = 0, nt = 0;
	char *p = btd_malloc(NULL, size);

	if (!p)
		return die("btd_malloc");
	if (btd_root_set("bench", p) || btd_sync())
		return die("setup");
	uint64_t end = now() + (uint64_t)(seconds * 1e9);

	for (unsigned k = 0; now() < end && np < MAX; k++) {
		uint64_t t0 = now();

		memset(p, (int)k, size);
		if (btd_persist(p, size))
			return die("btd_persist");
		uint64_t t1 = now();

		t_persist[np++] = t1 - t0;
		if (size > TX_MAX)
			continue;
		if (btd_tx_begin() || btd_tx_add(p, size))
			return die("btd_tx_add");
		memset(p, (int)k + 1, size);
		if (btd_tx_commit())
			return die("btd_tx_commit");
		t_tx[nt++] = now() - t1;
	}
	printf("persist %llu\n", (unsigned long long)median(t_persist, np));
	if (nt)
		printf("tx %llu\n", (unsigned long long)median(t_tx, nt));
	printf("calls %zu\n", np);
	return 0;
}

static int fill(size_t mib)
{
	size_t n = mib * 16;

	for (size_t i = 0; i < n; i++) {
		char *b = btd_malloc(NULL, 64 << 10);

		if (!b)
			return die("btd_malloc");
		memset(b, (int)i, 64 << 10);
	}
	/* The first connects and sends the image; the second goes to the
	 * pool's other lease on the node, touching its chunks for the first
	 * time; the third is the steady state. */
	if (btd_sync() || btd_sync())
		return die("btd_sync");
	uint64_t t0 = now();

	if (btd_sync())
		return die("btd_sync");
	printf("sync %zu %llu\n", mib << 20, (unsigned long long)(now() - t0));
	return 0;
}

int main(int argc, char **argv)
{
	struct btd_config cfg;

	btd_config_init(&cfg);
	cfg.single_node = !getenv("BTD_REPLICAS");
	if (!btd_cluster_create(&cfg))
		return die("btd_cluster_create");
	if (argc == 4 && !strcmp(argv[1], "commit"))
		return commit(strtoul(argv[2], NULL, 0), atof(argv[3]));
	if (argc == 3 && !strcmp(argv[1], "fill"))
		return fill(strtoul(argv[2], NULL, 0));
	fprintf(stderr, "usage: repl_bench commit SIZE SECONDS | fill MIB\n");
	return 2;
}
