/* tx_bench.c: what one small transaction costs, btd against libpmemobj, for bench/tx.sh.
 *
 *	tx_bench_btd WORKLOAD [--seconds S | --tx N]
 *	tx_bench_pmemobj WORKLOAD [--seconds S | --tx N]
 *
 * One source built twice: -DTX_BENCH_BTD links libbtd (btd_tx_begin,
 * btd_tx_add, btd_tx_commit); without it, libpmemobj (TX_BEGIN,
 * pmemobj_tx_add_range, TX_END).  Both do the same work on objects of the
 * same sizes, allocated before the clock starts:
 *
 *   1x64          one 64-byte range in one object
 *   4x64, 16x64   K 64-byte ranges in one object, every other cache line
 *                 (a stride of 128 bytes: K distinct ranges, never two
 *                 adjacent ones an implementation could merge)
 *   4x64-spread,  K objects of 128 bytes, one 64-byte range in each
 *   16x64-spread
 *   1x4096        one 4 KiB range, page-aligned, in an 8 KiB object
 *
 * Every range starts on a cache line (the 4 KiB one on a page), wherever
 * each allocator puts its objects' headers, so both flush the same lines
 * and pages.  A transaction is: begin, add the K ranges, increment every
 * 8-byte word of them, commit.
 *
 * --seconds S (default 0.3): after 200 untimed transactions (fewer if
 * they take more than S / 10), run batches of up to 64 (about S / 50
 * each) until S seconds have passed.  --tx N: exactly N transactions and no
 * warm-up, for counting flushes and fences (bench/tx.sh runs two values of
 * N and takes the difference, so what opening and closing cost cancels).
 * At the end every word must equal the number of transactions run, or the
 * program says so and exits with status 3.  Prints one line:
 *	impl=<btd|pmemobj> workload=<w> ranges=<K> bytes=<per range> tx=<N>
 *	seconds=<timed wall> ns_per_tx=<ns>
 *
 * Pools: btd's is BTD_POOL (BTD_POOL_SIZE), as for any program linked to
 * libbtd, closed cleanly at the end.  libpmemobj's is PMEMOBJ_BENCH_POOL
 * (default /dev/shm/tx_bench.<pid>), PMEMOBJ_BENCH_POOL_SIZE MiB (default
 * 64); created fresh (an existing file is an error) and removed at the end.
 * PMEM_IS_PMEM_FORCE=1 makes both flush cache lines and fence instead of
 * calling msync. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef TX_BENCH_BTD
#include "btd.h"
#else
#include <libpmemobj.h>
#endif

#define CACHE_LINE 64
#define PAGE 4096
#define MAX_RANGES 16
#define WARMUP_TX 200
#define BATCH 64

#ifdef TX_BENCH_BTD
static const char *impl = "btd";
#else
static const char *impl = "pmemobj";
#endif

struct workload {
	const char *name;
	int ranges;        /* K */
	size_t bytes;      /* per range */
	int objects;       /* 1, or K (spread) */
	size_t obj_size;   /* bytes allocated per object */
	size_t align;      /* where a range starts */
	size_t stride;     /* between ranges of one object */
};

static const struct workload workloads[] = {
	{ "1x64", 1, 64, 1, 1 * 128 + CACHE_LINE, CACHE_LINE, 128 },
	{ "4x64", 4, 64, 1, 4 * 128 + CACHE_LINE, CACHE_LINE, 128 },
	{ "16x64", 16, 64, 1, 16 * 128 + CACHE_LINE, CACHE_LINE, 128 },
	{ "4x64-spread", 4, 64, 4, 128, CACHE_LINE, 0 },
	{ "16x64-spread", 16, 64, 16, 128, CACHE_LINE, 0 },
	{ "1x4096", 1, 4096, 1, 2 * PAGE, PAGE, 0 },
};

/* The ranges of the running workload: addresses, and for libpmemobj the
 * object and offset pmemobj_tx_add_range wants. */
static const struct workload *wl;
static uint64_t *range[MAX_RANGES];

static void die(const char *what, const char *why)
{
	fprintf(stderr, "tx_bench_%s: %s: %s\n", impl, what, why);
	exit(2);
}

/* ---- the implementation under test ------------------------------------ */

#ifdef TX_BENCH_BTD
static struct btd_cluster *cluster;

static void impl_open(void)
{
	struct btd_config cfg;

	btd_config_init(&cfg);
	cfg.single_node = 1;
	cluster = btd_cluster_create(&cfg);
	if (!cluster)
		die("btd_cluster_create", btd_last_error());
}

static void impl_close(void)
{
	btd_cluster_destroy(cluster);
}

/* A zeroed, durable object of n bytes. */
static void *impl_alloc(size_t n, int i)
{
	void *p = btd_malloc(cluster, n);

	(void)i;
	if (!p)
		die("btd_malloc", btd_last_error());
	btd_memset(p, 0, n);
	return p;
}

static void impl_locate(int r, int obj, void *addr)
{
	(void)obj;
	range[r] = addr;
}

static void bump(void);

static void one_tx(void)
{
	int s;

	if ((s = btd_tx_begin()) != 0)
		die("btd_tx_begin", btd_strerror(s));
	for (int r = 0; r < wl->ranges; r++)
		if ((s = btd_tx_add(range[r], wl->bytes)) != 0)
			die("btd_tx_add", btd_strerror(s));
	bump();
	if ((s = btd_tx_commit()) != 0)
		die("btd_tx_commit", btd_strerror(s));
}
#else
static PMEMobjpool *pop;
static char pool_path[4096];
static PMEMoid obj_oid[MAX_RANGES];
static PMEMoid range_oid[MAX_RANGES];
static uint64_t range_off[MAX_RANGES];

static void impl_open(void)
{
	const char *path = getenv("PMEMOBJ_BENCH_POOL");
	const char *size_s = getenv("PMEMOBJ_BENCH_POOL_SIZE");
	size_t size = (size_t)(size_s ? strtoull(size_s, NULL, 10) : 64) << 20;

	if (path)
		snprintf(pool_path, sizeof(pool_path), "%s", path);
	else
		snprintf(pool_path, sizeof(pool_path), "/dev/shm/tx_bench.%ld", (long)getpid());
	pop = pmemobj_create(pool_path, "btd_tx_bench", size, 0600);
	if (!pop)
		die(pool_path, pmemobj_errormsg());
}

static void impl_close(void)
{
	pmemobj_close(pop);
	if (unlink(pool_path))
		die("unlink pool", strerror(errno));
}

static void *impl_alloc(size_t n, int i)
{
	if (pmemobj_zalloc(pop, &obj_oid[i], n, 0))
		die("pmemobj_zalloc", pmemobj_errormsg());
	return pmemobj_direct(obj_oid[i]);
}

static void impl_locate(int r, int obj, void *addr)
{
	range[r] = addr;
	range_oid[r] = obj_oid[obj];
	range_off[r] = (uint64_t)((char *)addr - (char *)pmemobj_direct(obj_oid[obj]));
}

static void bump(void);

/* TX_BEGIN is a setjmp: nothing here is changed inside it and read after. */
static void one_tx(void)
{
	TX_BEGIN(pop) {
		for (int r = 0; r < wl->ranges; r++)
			if (pmemobj_tx_add_range(range_oid[r], range_off[r], wl->bytes))
				die("pmemobj_tx_add_range", pmemobj_errormsg());
		bump();
	} TX_ONABORT {
		die("transaction aborted", pmemobj_errormsg());
	} TX_END
}
#endif

/* ---- the workload -------------------------------------------------------- */

static void bump(void)
{
	size_t words = wl->bytes / sizeof(uint64_t);

	for (int r = 0; r < wl->ranges; r++) {
		uint64_t *w = range[r];

		for (size_t j = 0; j < words; j++)
			w[j]++;
	}
}

static void setup(void)
{
	for (int o = 0; o < wl->objects; o++) {
		char *p = impl_alloc(wl->obj_size, o);
		uintptr_t a = ((uintptr_t)p + wl->align - 1) & ~(uintptr_t)(wl->align - 1);
		int per_obj = wl->objects == 1 ? wl->ranges : 1;

		for (int k = 0; k < per_obj; k++) {
			char *r = (char *)a + (size_t)k * wl->stride;

			if (r + wl->bytes > p + wl->obj_size)
				die(wl->name, "a range does not fit its object (a bug)");
			impl_locate(wl->objects == 1 ? k : o, o, r);
		}
	}
}

static int check(uint64_t n)
{
	size_t words = wl->bytes / sizeof(uint64_t);

	for (int r = 0; r < wl->ranges; r++)
		for (size_t j = 0; j < words; j++)
			if (range[r][j] != n) {
				fprintf(stderr, "tx_bench_%s: %s: range %d word %zu is %llu after %llu "
					"transactions\n", impl, wl->name, r, j,
					(unsigned long long)range[r][j], (unsigned long long)n);
				return -1;
			}
	return 0;
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void usage(void)
{
	fprintf(stderr, "usage: tx_bench_%s WORKLOAD [--seconds S | --tx N]\n  WORKLOAD:", impl);
	for (size_t i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++)
		fprintf(stderr, " %s", workloads[i].name);
	fprintf(stderr, "\n");
	exit(2);
}

int main(int argc, char **argv)
{
	double seconds = 0.3, t0, t1;
	long long fixed = -1;
	uint64_t done = 0, timed = 0;
	char *end;

	if (argc < 2)
		usage();
	for (size_t i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++)
		if (!strcmp(argv[1], workloads[i].name))
			wl = &workloads[i];
	if (!wl)
		usage();
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
			seconds = strtod(argv[++i], &end);
			if (*end || !(seconds > 0))
				usage();
		} else if (!strcmp(argv[i], "--tx") && i + 1 < argc) {
			fixed = strtoll(argv[++i], &end, 10);
			if (*end || fixed < 0)
				usage();
		} else {
			usage();
		}
	}

	impl_open();
	setup();
	if (fixed < 0) {
		int batch;

		t0 = now();
		do
			one_tx();
		while (++done < WARMUP_TX && now() - t0 < seconds / 10);
		/* a batch takes about 1/50 of the time, at most 64 tx */
		batch = (int)(seconds / 50 / ((now() - t0) / (double)done));
		batch = batch < 1 ? 1 : batch > BATCH ? BATCH : batch;
		t0 = now();
		do {
			for (int b = 0; b < batch; b++)
				one_tx();
			timed += batch;
			t1 = now();
		} while (t1 - t0 < seconds);
	} else {
		t0 = now();
		for (; timed < (uint64_t)fixed; timed++)
			one_tx();
		t1 = now();
	}
	done += timed;
	if (check(done))
		return 3;
	printf("impl=%s workload=%s ranges=%d bytes=%zu tx=%llu seconds=%.6f ns_per_tx=%.1f\n",
	       impl, wl->name, wl->ranges, wl->bytes, (unsigned long long)timed, t1 - t0,
	       timed ? (t1 - t0) * 1e9 / (double)timed : 0.0);
	impl_close();
	return 0;
}
