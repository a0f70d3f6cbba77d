/* churn_exit.c MODE: allocate about 4 MiB, then leave by MODE: "exit",
 * "abort" (a crash), "kill" (SIGKILL to itself), "sleep" (1 s, then exit:
 * for concurrent runs), or "big" (64 MiB more, written, then exit). */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

int main(int argc, char **argv)
{
	expect_btd();
	void *keep[400];

	for (int i = 0; i < 400; i++) {
		keep[i] = malloc(10000);
		memset(keep[i], i, 10000);
		if (i % 3 == 0)
			free(malloc(50000));
	}
	if (argc > 1 && !strcmp(argv[1], "abort"))
		abort();
	if (argc > 1 && !strcmp(argv[1], "kill"))
		kill(getpid(), SIGKILL);
	if (argc > 1 && !strcmp(argv[1], "sleep"))
		sleep(1);
	if (argc > 1 && !strcmp(argv[1], "big")) {
		for (int i = 0; i < 64; i++) {
			char *p = malloc(1 << 20);

			CHECK(p, "malloc of 1 MiB");
			memset(p, i, 1 << 20);
		}
	}
	return keep[399] ? 0 : 1;
}
