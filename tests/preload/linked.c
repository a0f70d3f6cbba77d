/* linked.c MODE [ARG]: a program linked to libbtd, run under the preload,
 * whose btd_* calls are then the preload's.  Each MODE makes its first
 * btd_* call before any allocation the policy sends to the pool.
 *   counter      get-or-create: btd_root_get("state") as the very first
 *                call; when missing, a 1 MiB malloc (in the pool under the
 *                default policy) becomes the root; prints "runs N"
 *   cluster PATH btd_cluster_create with cfg.pool = PATH, then a 1 MiB
 *                malloc lands in the pool and btd_root_set on it succeeds
 *   api-only     (BTD_POLICY=none) btd_root_get opens the pool; btd_malloc
 *                serves from it; malloc stays transient; free() takes a
 *                btd_malloc block back; prints "runs N"
 *   unavailable  btd_root_get returns NULL and btd_last_error says why
 *   other PATH   a 1 MiB malloc opens the default pool first; then
 *                btd_cluster_create asking for PATH fails with EBUSY
 *   filtered     (BTD_POOL_PROGRAM names another program) btd_root_get
 *                refuses, naming BTD_POOL_PROGRAM */
#include <btd.h>
#include <errno.h>
#include <string.h>

#include "check.h"

struct state {
	long runs;
	char data[(1 << 20) - sizeof(long)];
};

static int in_pool(const void *p)
{
	return btd_persist(p, 1) == BTD_OK;
}

static void counter(void)
{
	struct state *s = btd_root_get("state"); /* the first btd_* call */

	if (!s) {
		CHECK(strstr(btd_last_error(), "no such root"), "root missing, but: %s",
		      btd_last_error());
		s = malloc(sizeof(*s));
		CHECK(s, "malloc");
		CHECK(in_pool(s), "a 1 MiB malloc is not in the pool: %s", btd_last_error());
		memset(s, 0, sizeof(*s));
		CHECK(btd_root_set("state", s) == BTD_OK, "root_set: %s", btd_last_error());
	}
	s->runs++;
	CHECK(btd_persist(&s->runs, sizeof(s->runs)) == BTD_OK, "persist: %s", btd_last_error());
	printf("runs %ld\n", s->runs);
}

static void cluster(const char *path)
{
	struct btd_config cfg;

	btd_config_init(&cfg);
	cfg.pool = path;
	cfg.pool_size = 64 << 20;
	struct btd_cluster *c = btd_cluster_create(&cfg);

	CHECK(c, "btd_cluster_create: %s", btd_last_error());
	char *p = malloc(1 << 20);

	CHECK(p, "malloc");
	memset(p, 'x', 1 << 20);
	CHECK(in_pool(p), "a 1 MiB malloc after btd_cluster_create is not in the pool");
	CHECK(btd_root_set("big", p) == BTD_OK, "btd_root_set: %s", btd_last_error());
	CHECK(btd_cluster_create(&cfg) == c, "a second create returns the same cluster");
	btd_cluster_destroy(c);
	/* Under the preload the pool stays open for the routing. */
	char *q = malloc(1 << 20);

	CHECK(q && in_pool(q), "a 1 MiB malloc after btd_cluster_destroy is not in the pool");
	free(q);
	CHECK(btd_root_get("big") == p, "the root after destroy");
	puts("cluster: ok");
}

static void api_only(void)
{
	long *runs = btd_root_get("runs"); /* the first btd_* call */
	struct btd_config cfg;

	btd_config_init(&cfg);
	struct btd_cluster *c = btd_cluster_create(&cfg);

	CHECK(c, "btd_cluster_create: %s", btd_last_error());
	if (!runs) {
		CHECK(strstr(btd_last_error(), "no such root"), "%s", btd_last_error());
		runs = btd_malloc(c, sizeof(*runs));
		CHECK(runs, "btd_malloc: %s", btd_last_error());
		*runs = 0;
		CHECK(btd_root_set("runs", runs) == BTD_OK, "root_set: %s", btd_last_error());
	}
	++*runs;
	CHECK(btd_persist(runs, sizeof(*runs)) == BTD_OK, "persist: %s", btd_last_error());
	char *big = malloc(1 << 20);

	CHECK(big && !in_pool(big), "BTD_POLICY=none sent a malloc to the pool");
	free(big);
	void *tmp = btd_malloc(c, 100);

	CHECK(tmp && in_pool(tmp), "btd_malloc: %s", btd_last_error());
	free(tmp); /* the preload's free takes a pool block back */
	printf("runs %ld\n", *runs);
}

static void unavailable(void)
{
	CHECK(!btd_root_get("state"), "a root from a pool that cannot open");
	CHECK(strstr(btd_last_error(), "/nonexistent-dir/p.pool"),
	      "btd_last_error does not say why: '%s'", btd_last_error());
	CHECK(btd_root_set("state", NULL) != BTD_OK, "root_set without a pool");
	puts("unavailable: ok");
}

static void other(const char *path)
{
	char *p = malloc(1 << 20); /* opens the default pool */
	struct btd_config cfg;

	CHECK(p && in_pool(p), "the default pool did not open");
	btd_config_init(&cfg);
	cfg.pool = path;
	errno = 0;
	CHECK(!btd_cluster_create(&cfg), "create with another pool than the open one");
	CHECK(errno == EBUSY, "errno %d", errno);
	CHECK(strstr(btd_last_error(), "BTD_POOL="), "the message names no fix: %s",
	      btd_last_error());
	free(p);
	puts("other: ok");
}

static void filtered(void)
{
	CHECK(!btd_root_get("state"), "a root in a program BTD_POOL_PROGRAM excludes");
	CHECK(strstr(btd_last_error(), "BTD_POOL_PROGRAM"), "%s", btd_last_error());
	char *p = malloc(1 << 20);

	CHECK(p && !in_pool(p), "a filtered program allocated from a pool");
	free(p);
	puts("filtered: ok");
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";

	expect_btd();
	CHECK(from_btd((const void *)btd_root_get), "btd_root_get is not the preload's");
	if (!strcmp(mode, "counter"))
		counter();
	else if (!strcmp(mode, "cluster") && argc > 2)
		cluster(argv[2]);
	else if (!strcmp(mode, "api-only"))
		api_only();
	else if (!strcmp(mode, "unavailable"))
		unavailable();
	else if (!strcmp(mode, "other") && argc > 2)
		other(argv[2]);
	else if (!strcmp(mode, "filtered"))
		filtered();
	else
		CHECK(0, "unknown mode '%s'", mode);
	return 0;
}
