/* pmemobj_bench.c: the workloads of heap_bench (heap_workloads.h) over
 * PMDK's libpmemobj, for bench/heap_run.sh.
 *
 *	pmemobj_bench threadtest|larson|prodcon T N
 *	pmemobj_bench publish N
 *
 * Same output line as heap_bench.  Every block is pmemobj_alloc'ed (no
 * constructor, handle kept in DRAM) and pmemobj_free'd; publish stores the
 * block's offset in a slot of the root object and pmemobj_persist()s the
 * block and the slot.
 *
 * The pool: PMEMOBJ_BENCH_POOL (default /dev/shm/pmemobj_bench.<pid>),
 * PMEMOBJ_BENCH_POOL_SIZE in MiB (default 2048); created fresh (an existing
 * file is an error) and removed at the end.  On a file system that is not
 * persistent memory (tmpfs) libpmemobj persists with msync unless
 * PMEM_IS_PMEM_FORCE=1, when it flushes cache lines instead. */
#include <libpmemobj.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *bench_name = "pmemobj_bench";
static PMEMobjpool *pop;

struct bench_root {
	uint64_t slot;
	uint64_t pad[7];
};

typedef PMEMoid bh_t;

static inline void *bh_alloc(bh_t *h, size_t n)
{
	if (__builtin_expect(pmemobj_alloc(pop, h, n, 0, NULL, NULL) != 0, 0)) {
		fprintf(stderr, "%s: pmemobj_alloc(%zu): %s\n", bench_name, n, pmemobj_errormsg());
		exit(2);
	}
	return pmemobj_direct(*h);
}

static inline void *bh_ptr(bh_t h)
{
	return pmemobj_direct(h);
}

static inline void bh_free(bh_t *h)
{
	pmemobj_free(h);
}

static inline uint64_t bh_word(bh_t h)
{
	return h.off;
}

static const char *pub_persist_name = "pmemobj_persist";

static int pub_persist(const void *p, size_t n)
{
	pmemobj_persist(pop, p, n);
	return 0;
}

static uint64_t *pub_slot(void)
{
	PMEMoid root = pmemobj_root(pop, sizeof(struct bench_root));
	struct bench_root *r = pmemobj_direct(root);

	if (!r) {
		fprintf(stderr, "%s: pmemobj_root: %s\n", bench_name, pmemobj_errormsg());
		exit(2);
	}
	return &r->slot;
}

#include "heap_workloads.h"

int main(int argc, char **argv)
{
	const char *path = getenv("PMEMOBJ_BENCH_POOL");
	const char *size_s = getenv("PMEMOBJ_BENCH_POOL_SIZE");
	size_t size = (size_t)(size_s ? strtoull(size_s, NULL, 10) : 2048) << 20;
	char buf[256];
	int ret;

	if (argc < 2)
		usage();
	if (!path) {
		snprintf(buf, sizeof(buf), "/dev/shm/pmemobj_bench.%ld", (long)getpid());
		path = buf;
	}
	pop = pmemobj_create(path, "btd_heap_bench", size, 0600);
	if (!pop) {
		fprintf(stderr, "%s: pmemobj_create(%s, %zu MiB): %s\n", bench_name, path,
			size >> 20, pmemobj_errormsg());
		return 2;
	}
	ret = workloads_main(argc, argv);
	pmemobj_close(pop);
	if (unlink(path))
		perror("pmemobj_bench: unlink pool");
	return ret;
}
