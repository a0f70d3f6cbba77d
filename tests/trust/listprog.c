/* listprog.c: a user's program linked to libbtd only, as the issue's
 * reproductions are.  Usage: listprog MODE [N]
 *
 *   build N       a root "list" of N checksummed 64-byte nodes, then
 *                 return from main without closing the pool
 *   crash N       the same, then _exit(0): no destructor, the pool stays
 *                 dirty as after a crash
 *   grow N        a list of N nodes, then a rooted 8 MiB block "big" (the
 *                 heap grows), then _exit(0)
 *   verify [N]    print "<count> <ok|BAD>" for the list (and fail unless
 *                 it holds N nodes); exit 3 when the pool cannot be opened
 *   unwritten     the reproduction: one block rooted without its
 *                 first word ever written, ten more allocated, then _exit
 *   leak          a rooted block and 10 unreachable ones; a clean close
 *   forkexit      a list of N nodes; fork a child that sleeps and calls
 *                 exit(); meanwhile the parent allocates, fills and roots
 *                 eight 1 MiB blocks; then it checks them and returns
 *   dangle [kill] a rooted object whose field holds a 1 MiB block: free the
 *                 block, then (with kill) die by SIGKILL before the field
 *                 is reassigned -- the dangling pointer correct C leaves
 *                 behind -- else reassign it; print the generation
 *   nullapi       btd_malloc(NULL, n) and btd_cluster_create(NULL): the
 *                 process's pool with the defaults, no config needed
 *   holdfork      open the pool, fork with the raw system call (no fork
 *                 handlers: the child keeps the mapping and the lock),
 *                 print the child's pid, and die by SIGKILL; the child
 *                 sleeps 10 s */
#include <btd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct node {
	struct node *next;
	uint64_t seq;
	uint64_t sum;
	char pad[40];
};

static uint64_t sum_of(const struct node *n)
{
	return n->seq * 0x9e3779b97f4a7c15u ^ 0x5bd1e995u;
}

static struct btd_cluster *open_pool(void)
{
	struct btd_config cfg;

	btd_config_init(&cfg);
	cfg.pool_size = 64 << 20;
	struct btd_cluster *c = btd_cluster_create(&cfg);

	if (!c) {
		fprintf(stderr, "listprog: %s\n", btd_last_error());
		exit(3);
	}
	return c;
}

static void build(struct btd_cluster *c, long n)
{
	struct node *head = NULL;

	for (long i = 0; i < n; i++) {
		struct node *x = btd_malloc(c, sizeof(*x));

		x->next = head;
		x->seq = (uint64_t)i;
		x->sum = sum_of(x);
		memset(x->pad, 'n', sizeof(x->pad));
		btd_persist(x, sizeof(*x));
		head = x;
	}
	btd_root_set("list", head);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	long n = argc > 2 ? atol(argv[2]) : -1;

	if (!strcmp(mode, "build") || !strcmp(mode, "crash")) {
		build(open_pool(), n);
		if (!strcmp(mode, "crash"))
			_exit(0);
		return 0; /* no btd_cluster_destroy */
	}
	if (!strcmp(mode, "grow")) {
		struct btd_cluster *c = open_pool();
		char *big;

		build(c, n);
		big = btd_malloc(c, 8 << 20);
		memset(big, 'g', 8 << 20);
		btd_root_set("big", big);
		_exit(0);
	}
	if (!strcmp(mode, "verify")) {
		open_pool();
		long count = 0, bad = 0;

		for (struct node *x = btd_root_get("list"); x && count <= 10000000; x = x->next) {
			bad += x->sum != sum_of(x);
			count++;
		}
		const char *big = btd_root_get("big");

		if (big)
			for (long i = 0; i < (8 << 20); i += 4096)
				bad += big[i] != 'g';
		printf("%ld %s\n", count, bad ? "BAD" : "ok");
		return bad || (n >= 0 && count != n);
	}
	if (!strcmp(mode, "unwritten")) {
		struct btd_cluster *c = open_pool();
		char *first = btd_malloc(c, 200);

		btd_root_set("r", first); /* its first word never written */
		for (int i = 0; i < 10; i++)
			btd_malloc(c, 200);
		_exit(0);
	}
	if (!strcmp(mode, "leak")) {
		struct btd_cluster *c = open_pool();

		btd_root_set("r", btd_malloc(c, 100));
		for (int i = 0; i < 10; i++)
			memset(btd_malloc(c, 100), 0, 100);
		btd_cluster_destroy(c);
		return 0;
	}
	if (!strcmp(mode, "forkexit")) {
		struct btd_cluster *c = open_pool();
		char *b[8];
		int bad = 0;

		build(c, n);
		pid_t kid = fork();

		if (kid == 0) {
			usleep(200000);
			exit(0); /* destructors run: the child's heap must stay out of the pool */
		}
		for (int i = 0; i < 8; i++) {
			b[i] = btd_malloc(c, 1 << 20);
			memset(b[i], 'A' + i, 1 << 20);
		}
		btd_root_set("b0", b[0]);
		waitpid(kid, NULL, 0);
		for (int i = 0; i < 8; i++)
			bad += b[i][0] != 'A' + i || b[i][(1 << 20) - 1] != 'A' + i;
		printf("%d blocks damaged by the child\n", bad);
		return bad != 0;
	}
	if (!strcmp(mode, "dangle")) {
		struct btd_cluster *c = open_pool();
		struct obj {
			char *buf;
			long gen;
		} *o = btd_root_get("obj");

		if (!o) {
			o = btd_malloc(c, sizeof(*o));
			o->buf = NULL;
			o->gen = 0;
			btd_persist(o, sizeof(*o));
			btd_root_set("obj", o);
		}
		if (o->buf)
			btd_free(o->buf);
		if (argc > 2)
			raise(SIGKILL);
		o->buf = btd_malloc(c, 1 << 20);
		memset(o->buf, 'd', 1 << 20);
		o->gen++;
		btd_persist(o, sizeof(*o));
		printf("%ld\n", o->gen);
		return 0;
	}
	if (!strcmp(mode, "nullapi")) {
		char *p = btd_malloc(NULL, 100);

		if (!p || btd_root_set("null", p) || !btd_cluster_create(NULL) ||
		    btd_root_get("null") != p) {
			fprintf(stderr, "listprog: %s\n", btd_last_error());
			return 1;
		}
		return 0;
	}
	if (!strcmp(mode, "holdfork")) {
		open_pool();
		long pid = syscall(SYS_fork);

		if (pid == 0) {
			close(STDOUT_FILENO); /* the caller reads the parent's output to its end */
			sleep(10);
			_exit(0);
		}
		printf("%ld\n", pid);
		fflush(stdout);
		raise(SIGKILL);
	}
	fprintf(stderr, "listprog: unknown mode %s\n", mode);
	return 2;
}
