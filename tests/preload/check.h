/* check.h: a tiny assertion for the preload programs (no test framework:
 * these run under LD_PRELOAD and must stay plain programs). */
#ifndef BTD_TESTS_PRELOAD_CHECK_H
#define BTD_TESTS_PRELOAD_CHECK_H

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond, ...)                                                      \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, \
				__LINE__, #cond);                             \
			fprintf(stderr, __VA_ARGS__);                         \
			fputc('\n', stderr);                                  \
			exit(1);                                              \
		}                                                             \
	} while (0)

/* 1 when the function at f is defined by libbtd_preload.so. */
static inline int from_btd(const void *f)
{
	Dl_info info;

	return dladdr(f, &info) && info.dli_fname &&
	       strstr(info.dli_fname, "libbtd_preload.so") != NULL;
}

/* Call first in main: a preload test that runs without btd proves nothing. */
static inline void expect_btd(void)
{
	CHECK(from_btd((const void *)malloc) && from_btd((const void *)free),
	      "malloc is not libbtd_preload.so's: run with LD_PRELOAD set");
}

#endif
