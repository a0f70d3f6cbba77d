/* recovery_bench.c: how long opening a pool takes, clean and after a crash,
 * as a function of the live heap; for bench/heap_run.sh.
 *
 *	recovery_bench build SIZE_MB POOL [crash]
 *	recovery_bench open POOL [crash]
 *
 * build   creates POOL (which must not exist; reservation 2 x SIZE_MB +
 *         256 MiB) and fills it with a singly linked list of 64-byte nodes
 *         totalling SIZE_MB MiB, in allocation order, rooted at the named
 *         root "list"; root "meta" holds the node count.  Then btd_sync()
 *         and either a clean close (btd_cluster_destroy), or with `crash`
 *         _exit(0) without closing: the pool stays dirty, as after a crash.
 *         Prints build_s=... nodes=...
 * open    times btd_cluster_create(POOL) with CLOCK_MONOTONIC -- on a dirty
 *         pool that runs the recovery GC, on a clean one it trusts the
 *         pool -- then walks the list and checks its length and every
 *         node's index, and closes cleanly (or with `crash` exits without
 *         closing, leaving the pool dirty again).  Prints
 *           open_ms=<ms> nodes=<n> live_mib=<MiB> gbps=<live GB/s of open>
 *           walk_ms=<ms> close_ms=<ms> ok=<1|0>
 *         and exits 3 when the list is not what build made.
 *
 * BTD_POOL, if set, would override POOL: it is unset here. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "btd.h"

struct node {
	struct node *next;
	uint64_t idx;
	uint64_t pad[6];
};

_Static_assert(sizeof(struct node) == 64, "64-byte nodes");

struct meta {
	uint64_t count;
	uint64_t node_size;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static struct btd_cluster *open_pool(const char *path, size_t size)
{
	struct btd_config cfg;
	struct btd_cluster *c;

	btd_config_init(&cfg);
	cfg.pool = path;
	cfg.pool_size = size;
	c = btd_cluster_create(&cfg);
	if (!c) {
		fprintf(stderr, "recovery_bench: btd_cluster_create(%s): %s\n", path,
			btd_last_error());
		exit(2);
	}
	return c;
}

static int build(uint64_t size_mb, const char *path, int crash)
{
	uint64_t count = (size_mb << 20) / sizeof(struct node);
	struct node *head = NULL, *tail = NULL;
	struct btd_cluster *c;
	struct meta *m;
	double t0 = now_s();
	int st;

	if (access(path, F_OK) == 0) {
		fprintf(stderr, "recovery_bench: %s exists; build wants a fresh pool\n", path);
		return 2;
	}
	c = open_pool(path, (size_t)(2 * size_mb + 256) << 20);
	for (uint64_t i = 0; i < count; i++) {
		struct node *n = btd_malloc(c, sizeof(*n));

		if (!n) {
			fprintf(stderr, "recovery_bench: btd_malloc failed after %llu nodes: %s\n",
				(unsigned long long)i, btd_last_error());
			return 2;
		}
		n->next = NULL;
		n->idx = i;
		for (unsigned k = 0; k < 6; k++)
			n->pad[k] = i ^ k; /* no pointers into the pool */
		if (tail)
			tail->next = n;
		else
			head = n;
		tail = n;
	}
	m = btd_malloc(c, sizeof(*m));
	if (!m) {
		fprintf(stderr, "recovery_bench: btd_malloc(meta): %s\n", btd_last_error());
		return 2;
	}
	m->count = count;
	m->node_size = sizeof(struct node);
	/* Contents first, then the roots that make them reachable. */
	if ((st = btd_sync()) != 0 || (st = btd_root_set("meta", m)) != 0 ||
	    (st = btd_root_set("list", head)) != 0) {
		fprintf(stderr, "recovery_bench: sync/root_set: %s (%s)\n", btd_strerror(st),
			btd_last_error());
		return 2;
	}
	printf("build_s=%.3f nodes=%llu live_mib=%.1f%s\n", now_s() - t0,
	       (unsigned long long)count, (double)(count * sizeof(struct node)) / (1 << 20),
	       crash ? " crash=1" : "");
	fflush(stdout);
	if (crash)
		_exit(0);
	btd_cluster_destroy(c);
	return 0;
}

static int open_and_check(const char *path, int crash)
{
	double t0, t1, t2, t3;
	struct btd_cluster *c;
	struct meta *m;
	struct node *n;
	uint64_t count = 0, want;
	int ok = 1;

	if (access(path, F_OK) != 0) {
		fprintf(stderr, "recovery_bench: no pool %s\n", path);
		return 2;
	}
	t0 = now_s();
	c = open_pool(path, 0);
	t1 = now_s();
	m = btd_root_get("meta");
	n = btd_root_get("list");
	if (!m || !n) {
		fprintf(stderr, "recovery_bench: root %s missing after open\n", m ? "list" : "meta");
		return 3;
	}
	want = m->count;
	for (; n; n = n->next, count++) {
		if (n->idx != count || n->pad[5] != (count ^ 5)) {
			fprintf(stderr, "recovery_bench: node %llu at %p holds idx %llu\n",
				(unsigned long long)count, (void *)n, (unsigned long long)n->idx);
			ok = 0;
			break;
		}
		if (count > want) {
			ok = 0;
			break;
		}
	}
	if (count != want) {
		fprintf(stderr, "recovery_bench: list has %llu nodes, expected %llu\n",
			(unsigned long long)count, (unsigned long long)want);
		ok = 0;
	}
	t2 = now_s();
	if (crash) {
		printf("open_ms=%.3f nodes=%llu live_mib=%.1f gbps=%.3f walk_ms=%.3f close_ms=0 "
		       "ok=%d crash=1\n", (t1 - t0) * 1e3, (unsigned long long)count,
		       (double)(want * sizeof(struct node)) / (1 << 20),
		       (double)(want * sizeof(struct node)) / (t1 - t0) / 1e9, (t2 - t1) * 1e3, ok);
		fflush(stdout);
		_exit(ok ? 0 : 3);
	}
	btd_cluster_destroy(c);
	t3 = now_s();
	printf("open_ms=%.3f nodes=%llu live_mib=%.1f gbps=%.3f walk_ms=%.3f close_ms=%.3f ok=%d\n",
	       (t1 - t0) * 1e3, (unsigned long long)count,
	       (double)(want * sizeof(struct node)) / (1 << 20),
	       (double)(want * sizeof(struct node)) / (t1 - t0) / 1e9, (t2 - t1) * 1e3,
	       (t3 - t2) * 1e3, ok);
	return ok ? 0 : 3;
}

static void usage(void)
{
	fprintf(stderr, "usage: recovery_bench build SIZE_MB POOL [crash]\n"
			"       recovery_bench open POOL [crash]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsetenv("BTD_POOL");
	unsetenv("BTD_POOL_SIZE");
	if (argc >= 4 && argc <= 5 && !strcmp(argv[1], "build")) {
		char *end;
		unsigned long long mb = strtoull(argv[2], &end, 10);

		if (*end || mb == 0 || (argc == 5 && strcmp(argv[4], "crash")))
			usage();
		return build(mb, argv[3], argc == 5);
	}
	if (argc >= 3 && argc <= 4 && !strcmp(argv[1], "open")) {
		if (argc == 4 && strcmp(argv[3], "crash"))
			usage();
		return open_and_check(argv[2], argc == 4);
	}
	usage();
	return 2;
}
