/* stats_helper.c: a known number of allocations in a parent and in its fork
 * child, for env.sh to find in the stats reports. */
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static void churn(int n, size_t size)
{
	for (int i = 0; i < n; i++) {
		void *p = malloc(size);

		CHECK(p, "malloc");
		free(p);
	}
}

int main(void)
{
	expect_btd();
	churn(1000, 100);
	pid_t pid = fork();

	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		churn(500, 200);
		exit(0); /* exit, not _exit: the child's destructors report */
	}
	int st;

	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && !WEXITSTATUS(st), "child");
	puts("helper: ok");
	return 0;
}
