/* fork_pool.c (BTD_POLICY=all): a fork child sees its parent's persistent
 * blocks as they were at the fork, can write them without touching the
 * parent's heap, allocates (transiently), frees and reallocs the parent's
 * blocks safely; the parent's heap is unchanged by all of it. */
#include <malloc.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

int main(void)
{
	expect_btd();
	char *p = malloc(64);
	char *big = malloc(1 << 20);
	int to_child[2], to_parent[2];

	strcpy(p, "parent");
	memset(big, 'P', 1 << 20);
	CHECK(pipe(to_child) == 0 && pipe(to_parent) == 0, "pipe");
	pid_t pid = fork();

	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		char c;

		CHECK(read(to_child[0], &c, 1) == 1, "child read");
		/* The parent has written "changed" by now: a snapshot shows the
		 * state at the fork. */
		CHECK(!strcmp(p, "parent"), "child sees '%s', not the fork-time 'parent'", p);
		CHECK(big[12345] == 'P', "child sees the parent's later write to big");
		strcpy(p, "child");
		memset(big, 'C', 1 << 20);
		char *q = malloc(100); /* transient: the child allocates no pool block */
		strcpy(q, "child block");
		free(q);
		char *r = realloc(p, 5000); /* moves the parent's block out */
		CHECK(r && !strcmp(r, "child"), "child realloc of a pool block");
		free(r);
		free(big); /* the parent's block, in the child's private view */
		CHECK(write(to_parent[1], "x", 1) == 1, "child write");
		_exit(0);
	}
	strcpy(p, "changed");
	big[12345] = 'Q';
	CHECK(write(to_child[1], "x", 1) == 1, "parent write");
	char c;

	CHECK(read(to_parent[0], &c, 1) == 1, "parent read");
	int st;

	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && !WEXITSTATUS(st), "child failed");
	CHECK(!strcmp(p, "changed"), "the child's write reached the parent: '%s'", p);
	CHECK(big[0] == 'P' && big[12345] == 'Q', "the child's memset reached the parent");
	CHECK(malloc_usable_size(p) >= 64, "the child's free/realloc touched the parent's heap");
	free(p);
	free(big);
	/* The parent's heap still works after the child's frees. */
	for (int i = 0; i < 10000; i++)
		free(malloc(64));
	puts("fork_pool: ok");
	return 0;
}
