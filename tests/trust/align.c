/* align.c: run under the preload with BTD_POLICY=all.  A rooted object
 * points at a large block and deep into it; the block is freed, and
 * before the fields are reassigned an aligned block and a plain one take
 * its pages (the aligned one placed inside them), then the process dies by
 * SIGKILL: the pointers dangle into pages a released run covered, and the
 * next open must see that, not a lost run.  With "open": open the pool and
 * print the root (or the error).  With "leak": get or create root "x", and
 * leave a strdup unfreed, as programs do at exit. */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PG 4096

struct rootobj {
	char *big, *inner, *keep;
};

int main(int argc, char **argv)
{
	int (*root_set)(const char *, const void *) =
		(int (*)(const char *, const void *))dlsym(RTLD_DEFAULT, "btd_root_set");
	void *(*root_get)(const char *) = (void *(*)(const char *))dlsym(RTLD_DEFAULT, "btd_root_get");
	const char *(*last_error)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "btd_last_error");

	if (!root_set || !root_get || !last_error) {
		fprintf(stderr, "align: not under the preload\n");
		return 2;
	}
	if (argc > 1 && !strcmp(argv[1], "leak")) {
		if (!root_get("x"))
			root_set("x", malloc(64));
		printf("%s\n", strdup("never freed"));
		return 0;
	}
	if (argc > 1 && argv[1]) {
		struct rootobj *r = root_get("r");

		printf("%s\n", r ? "opened" : last_error());
		return r ? 0 : 1;
	}
	struct rootobj *r = calloc(1, sizeof(*r));
	char *mis = malloc(5 * PG - 100);  /* the next run does not start 64K-aligned */
	char *a = malloc(25 * PG - 64);
	char *guard = malloc(2 * PG + 100);
	void *b;

	memset(a, 1, 25 * PG - 64);
	r->keep = guard;
	r->big = a;
	r->inner = a + 24 * PG + 8; /* a member deep inside */
	root_set("r", r);
	free(a); /* and a crash before r->big and r->inner are reassigned */
	if (posix_memalign(&b, 65536, 10 * PG))
		return 2;
	char *c = malloc(11 * PG - 64);

	(void)mis;
	(void)c;
	kill(getpid(), SIGKILL);
	return 0;
}
