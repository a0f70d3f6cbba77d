/* heap_bench.c: threadtest, larson, prodcon and publish (heap_workloads.h)
 * over plain malloc/free, for bench/heap_run.sh.
 *
 *	heap_bench threadtest|larson|prodcon T N
 *	heap_bench publish N
 *
 * Prints one line:
 *	workload=<w> threads=<T> ops=<total ops> seconds=<wall> mops=<Mops/s>
 * (publish adds persist=<how the slot was persisted>).
 *
 * Built twice:
 *   heap_bench      malloc/free, so that one binary runs under any
 *                   LD_PRELOAD (jemalloc, libbtd_preload.so with any
 *                   BTD_POLICY).  publish persists with btd_persist when
 *                   the process has one (dlsym: the preload exports it) and
 *                   it accepts the slot (the slot is in the pool, i.e.
 *                   BTD_POLICY=all); otherwise it cannot persist at all and
 *                   says persist=none.
 *   heap_bench_btd  (-DHEAP_BENCH_BTD) linked to libbtd: btd_malloc and
 *                   btd_free on the pool of BTD_POOL (BTD_POOL_SIZE), closed
 *                   cleanly at the end; publish uses btd_persist. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef HEAP_BENCH_BTD
#include "btd.h"

static const char *bench_name = "heap_bench_btd";
static struct btd_cluster *cluster;
#else
static const char *bench_name = "heap_bench";
#endif

typedef void *bh_t;

static inline void *bh_alloc(bh_t *h, size_t n)
{
#ifdef HEAP_BENCH_BTD
	void *p = btd_malloc(cluster, n);
#else
	void *p = malloc(n);
#endif

	if (__builtin_expect(!p, 0)) {
		fprintf(stderr, "%s: allocation of %zu bytes failed\n", bench_name, n);
		exit(2);
	}
	*h = p;
	return p;
}

static inline void *bh_ptr(bh_t h)
{
	return h;
}

static inline void bh_free(bh_t *h)
{
#ifdef HEAP_BENCH_BTD
	btd_free(*h);
#else
	free(*h);
#endif
}

static inline uint64_t bh_word(bh_t h)
{
	return (uint64_t)(uintptr_t)h;
}

#ifdef HEAP_BENCH_BTD
static const char *pub_persist_name = "btd_persist";

static int pub_persist(const void *p, size_t n)
{
	return btd_persist(p, n) ? -1 : 0;
}
#else
static const char *pub_persist_name = "btd_persist(preload)";
static int (*persist_fn)(const void *, size_t);

static int pub_persist(const void *p, size_t n)
{
	return persist_fn && persist_fn(p, n) == 0 ? 0 : -1;
}
#endif

/* The slot lives in a block of the allocator under test: in the pool when
 * the allocator is persistent. */
static uint64_t *pub_slot(void)
{
	bh_t h;

	return bh_alloc(&h, 64);
}

#include "heap_workloads.h"

int main(int argc, char **argv)
{
	int ret;

#ifdef HEAP_BENCH_BTD
	struct btd_config cfg;

	btd_config_init(&cfg);
	cluster = btd_cluster_create(&cfg);
	if (!cluster) {
		fprintf(stderr, "%s: btd_cluster_create: %s\n", bench_name, btd_last_error());
		return 2;
	}
#else
	*(void **)&persist_fn = dlsym(RTLD_DEFAULT, "btd_persist");
#endif
	ret = workloads_main(argc, argv);
#ifdef HEAP_BENCH_BTD
	btd_cluster_destroy(cluster);
#endif
	return ret;
}
