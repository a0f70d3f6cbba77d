/* fork_snapshot.c MODE (BTD_POLICY=all, BTD_POOL set): what a fork child
 * sees of its parent's persistent heap, beyond fork_pool.c -- children that
 * live on (multiprocessing-style workers), a grandchild, the parent killed
 * while a child depends on the pool, durability in the parent while
 * children live.
 *   workers     three children live 300 ms, reading and writing the
 *               parent's blocks while the parent rewrites them: each sees
 *               the fork-time values and its own writes, the parent its own
 *   grandchild  a child forks at once; the grandchild, 150 ms later, still
 *               sees the values of the first fork
 *   killparent  sets root "snap" to a block holding "A" (durable), forks,
 *               and the child kills the parent by SIGKILL right away: while
 *               it depends on the pool (the parent's fork had not returned)
 *               it prints "holding", later writes "B" into the block
 *               privately, prints "done" and exits
 *   durable     a child lives on; the parent, meanwhile, sets root "snap"
 *               to "P" (durable) and dies by SIGKILL: the pool must hold
 *               it; the child saw none of it */
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define NBLOCKS 64
#define BLOCK (256 << 10) /* large blocks and small ones below */

static int (*persist)(const void *, size_t);
static int (*root_set)(const char *, const void *);

static void msleep(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts))
		;
}

static void fill(char **b, char c)
{
	for (int i = 0; i < NBLOCKS; i++)
		memset(b[i], c + i % 8, i % 2 ? BLOCK : 100);
}

/* Whether every block holds what fill(b, c) wrote. */
static int holds(char **b, char c)
{
	for (int i = 0; i < NBLOCKS; i++) {
		size_t n = i % 2 ? BLOCK : 100;

		if (b[i][0] != (char)(c + i % 8) || b[i][n / 2] != (char)(c + i % 8) ||
		    b[i][n - 1] != (char)(c + i % 8))
			return 0;
	}
	return 1;
}

static int wait_ok(pid_t pid)
{
	int st;

	return waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void workers(char **b)
{
	pid_t kid[3];

	for (int k = 0; k < 3; k++) {
		kid[k] = fork();
		CHECK(kid[k] >= 0, "fork");
		if (kid[k] == 0) {
			for (int round = 0; round < 30; round++) {
				CHECK(holds(b, 'a' + k * 0), "worker %d round %d: not the fork-time values",
				      k, round);
				msleep(10);
			}
			fill(b, 'k');
			CHECK(holds(b, 'k'), "worker %d does not read its own writes", k);
			_exit(0);
		}
		/* The parent rewrites everything after each fork: the next child's
		 * fork-time values are these. */
		fill(b, 'a');
	}
	for (int round = 0; round < 20; round++) {
		fill(b, 'p');
		msleep(5);
		fill(b, 'a');
	}
	fill(b, 'q');
	for (int k = 0; k < 3; k++)
		CHECK(wait_ok(kid[k]), "worker %d failed", k);
	CHECK(holds(b, 'q'), "a worker's writes reached the parent");
}

static void grandchild(char **b)
{
	pid_t kid = fork();

	CHECK(kid >= 0, "fork");
	if (kid == 0) {
		pid_t g = fork(); /* within the grace period of the first fork */

		CHECK(g >= 0, "fork in the child");
		if (g == 0) {
			msleep(150);
			CHECK(holds(b, 'a'), "the grandchild sees later writes of its grandparent");
			_exit(0);
		}
		CHECK(holds(b, 'a'), "the child sees later writes of its parent");
		_exit(wait_ok(g) ? 0 : 1);
	}
	fill(b, 'z');
	CHECK(wait_ok(kid), "the child or the grandchild failed");
	CHECK(holds(b, 'z'), "the parent lost its own writes");
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	char *b[NBLOCKS];

	expect_btd();
	persist = (int (*)(const void *, size_t))dlsym(RTLD_DEFAULT, "btd_persist");
	root_set = (int (*)(const char *, const void *))dlsym(RTLD_DEFAULT, "btd_root_set");
	CHECK(persist && root_set, "the preload's btd_persist and btd_root_set");
	for (int i = 0; i < NBLOCKS; i++) {
		b[i] = malloc(i % 2 ? BLOCK : 100);
		CHECK(b[i] && persist(b[i], 1) == 0, "block %d is not in the pool", i);
	}
	fill(b, 'a');
	setvbuf(stdout, NULL, _IONBF, 0);
	if (!strcmp(mode, "workers")) {
		workers(b);
	} else if (!strcmp(mode, "grandchild")) {
		grandchild(b);
	} else if (!strcmp(mode, "killparent") || !strcmp(mode, "durable")) {
		strcpy(b[0], "A");
		CHECK(persist(b[0], 2) == 0 && root_set("snap", b[0]) == 0, "root");
		pid_t parent = getpid();
		pid_t kid = fork();

		CHECK(kid >= 0, "fork");
		if (kid == 0 && !strcmp(mode, "killparent")) {
			kill(parent, SIGKILL); /* its fork has not returned yet */
			printf("holding\n");
			msleep(200);
			CHECK(!strcmp(b[0], "A"), "the child lost its snapshot");
			strcpy(b[0], "B");
			printf("done\n");
			_exit(0);
		}
		if (kid == 0) {
			msleep(200);
			CHECK(!strcmp(b[0], "A"), "the child sees the parent's durable write");
			printf("child ok\n");
			_exit(0);
		}
		CHECK(strcmp(mode, "killparent"), "the parent outlived its kill");
		strcpy(b[0], "P");
		CHECK(persist(b[0], 2) == 0, "btd_persist while a child lives");
		printf("persisted\n");
		kill(getpid(), SIGKILL);
	}
	printf("fork_snapshot %s: ok\n", mode);
	return 0;
}
