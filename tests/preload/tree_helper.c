/* tree_helper.c MODE [ARG]: one process of a process tree under the
 * preload (not linked to libbtd: the btd_* calls are the preload's, found
 * with dlsym).
 *   alloc       allocate (small and 1 MiB blocks, written), exit 0
 *   hold SECS   allocate 1 MiB (the pool opens), print "held", sleep SECS
 *   mine NAME   a 1 MiB block must land in the pool: set root NAME to it
 *               and exit 0; exit 3 when it is transient
 *   huge BYTES  one block of BYTES (more than the pool holds), written at
 *               both ends: jemalloc's; exit 0 */
#include <stdint.h>
#include <unistd.h>

#include "check.h"

static int (*persist)(const void *, size_t);
static int (*root_set)(const char *, const void *);

static int in_pool(const void *p)
{
	return persist(p, 1) == 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";

	expect_btd();
	persist = (int (*)(const void *, size_t))dlsym(RTLD_DEFAULT, "btd_persist");
	root_set = (int (*)(const char *, const void *))dlsym(RTLD_DEFAULT, "btd_root_set");
	CHECK(persist && root_set, "the preload's btd_persist and btd_root_set");
	if (!strcmp(mode, "alloc")) {
		void *keep[64];

		for (int i = 0; i < 64; i++) {
			keep[i] = malloc(i % 8 ? 200 : 1 << 20);
			CHECK(keep[i], "malloc");
			memset(keep[i], i, i % 8 ? 200 : 1 << 20);
		}
		for (int i = 0; i < 64; i++)
			free(keep[i]);
	} else if (!strcmp(mode, "hold") && argc > 2) {
		char *p = malloc(1 << 20);

		CHECK(p, "malloc");
		memset(p, 1, 1 << 20);
		printf("held\n");
		fflush(stdout);
		sleep((unsigned)atoi(argv[2]));
		free(p);
	} else if (!strcmp(mode, "mine") && argc > 2) {
		char *p = malloc(1 << 20);

		CHECK(p, "malloc");
		memset(p, 2, 1 << 20);
		if (!in_pool(p))
			return 3;
		CHECK(root_set(argv[2], p) == 0, "btd_root_set");
	} else if (!strcmp(mode, "huge") && argc > 2) {
		size_t n = strtoull(argv[2], NULL, 0);
		char *p = malloc(n);

		CHECK(p, "malloc of %zu bytes", n);
		p[0] = 1;
		p[n - 1] = 1;
		CHECK(!in_pool(p), "a block larger than the pool is in it");
		free(p);
		p = malloc(1 << 20); /* the pool still serves what it can hold */
		CHECK(p && in_pool(p), "a 1 MiB block after the huge one is not in the pool");
		free(p);
	} else {
		CHECK(0, "unknown mode '%s'", mode);
	}
	return 0;
}
