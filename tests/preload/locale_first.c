/* locale_first.c POOL (BTD_POLICY=all): the first persistent allocation of
 * the process comes from inside setlocale, which holds glibc's locale lock,
 * and the pool does not exist yet.  Creating it must take no lock that
 * setlocale holds (strerror did: a hang).  Run under a timeout. */
#include <locale.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

int main(int argc, char **argv)
{
	CHECK(argc == 2, "usage: locale_first POOL");
	unlink(argv[1]); /* a pool that does not exist yet: no malloc before setlocale */
	CHECK(setlocale(LC_ALL, "C.UTF-8") != NULL, "setlocale C.UTF-8");
	/* A lock taken inside the first call leaves it broken for the next. */
	CHECK(setlocale(LC_ALL, "C") != NULL, "setlocale C");
	CHECK(setlocale(LC_CTYPE, "C.UTF-8") != NULL, "setlocale LC_CTYPE C.UTF-8");
	expect_btd();
	CHECK(!access(argv[1], F_OK), "the pool was not created inside setlocale");
	char *p = strdup("still working");

	CHECK(p && !strcmp(p, "still working"), "strdup");
	free(p);
	puts("locale_first: ok");
	return 0;
}
