/* bench/fork_bench.c: what a fork+exec costs a process that holds a big
 * heap (bench/fork.sh runs it under jemalloc and under libbtd_preload.so).
 *
 *   fork_bench MB FORKS
 *
 * Allocates MB MiB in 4 MiB blocks with malloc (under the preload's default
 * policy, blocks of at least BTD_LARGE_MIN = 256K are persistent), writes
 * every byte of them, then FORKS times: fork(), execve("/bin/true") in the
 * child, waitpid() in the parent.  The child's environment is the parent's
 * without LD_PRELOAD, so every allocator execs the same /bin/true and only
 * the fork differs.  One untimed fork+exec first.  Prints
 *
 *   mb=MB forks=FORKS ms_per_fork=X mapping=PATH
 *
 * where PATH is what /proc/self/maps names for the mapping that holds the
 * first block (the pool file when the heap is btd's; "anon" otherwise), so
 * the caller can check where the blocks really are. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BLOCK (4u << 20)

extern char **environ;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The pathname of the mapping that holds p, or "anon". */
static void mapping_of(const void *p, char *out, size_t n)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4096];

	snprintf(out, n, "unmapped");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		int off = 0;

		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &off) < 2)
			continue;
		if ((uintptr_t)p < lo || (uintptr_t)p >= hi)
			continue;
		line[strcspn(line, "\n")] = 0;
		snprintf(out, n, "%s", off && line[off] ? line + off : "anon");
		break;
	}
	fclose(f);
}

static void fork_exec(char **env)
{
	char *argv[] = { "true", NULL };
	pid_t pid = fork();
	int st;

	if (pid < 0) {
		perror("fork_bench: fork");
		exit(1);
	}
	if (pid == 0) {
		execve("/bin/true", argv, env);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "fork_bench: the child failed (status %d)\n", st);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: fork_bench MB FORKS\n");
		return 2;
	}
	long mb = atol(argv[1]), forks = atol(argv[2]);

	if (mb < 4 || forks < 1) {
		fprintf(stderr, "fork_bench: MB >= 4 and FORKS >= 1, please\n");
		return 2;
	}
	size_t nblocks = (size_t)mb * (1u << 20) / BLOCK;
	char **blocks = calloc(nblocks, sizeof(*blocks));
	size_t nenv = 0, k = 0;
	char **env;

	for (size_t i = 0; blocks && i < nblocks; i++) {
		blocks[i] = malloc(BLOCK);
		if (!blocks[i]) {
			fprintf(stderr, "fork_bench: out of memory at block %zu\n", i);
			return 1;
		}
		memset(blocks[i], 0x5a ^ (int)i, BLOCK);
	}
	while (environ[nenv])
		nenv++;
	env = calloc(nenv + 1, sizeof(*env));
	for (size_t i = 0; env && i < nenv; i++)
		if (strncmp(environ[i], "LD_PRELOAD=", 11))
			env[k++] = environ[i];
	if (!blocks || !env) {
		fprintf(stderr, "fork_bench: out of memory\n");
		return 1;
	}

	char where[4096];

	mapping_of(blocks[0], where, sizeof(where));
	fork_exec(env);
	double t0 = now_ms();

	for (long i = 0; i < forks; i++)
		fork_exec(env);
	double ms = (now_ms() - t0) / forks;

	/* the blocks still hold what was written: the forks changed nothing */
	for (size_t i = 0; i < nblocks; i++)
		if (blocks[i][BLOCK - 1] != (char)(0x5a ^ (int)i)) {
			fprintf(stderr, "fork_bench: block %zu changed\n", i);
			return 1;
		}
	printf("mb=%ld forks=%ld ms_per_fork=%.3f mapping=%s\n", mb, forks, ms, where);
	for (size_t i = 0; i < nblocks; i++)
		free(blocks[i]);
	free(blocks);
	free(env);
	return 0;
}
