/* test_api.c: the public API, linked to libbtd.so only. */
#include <btd.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64], path[128];
static struct btd_cluster *c;

static struct btd_cluster *open_pool(void)
{
	struct btd_config cfg;

	btd_config_init(&cfg);
	cfg.pool = path;
	cfg.pool_size = 64 << 20;
	return btd_cluster_create(&cfg);
}

static void setup(void)
{
	unsetenv("BTD_POOL");
	strcpy(dir, "/dev/shm/btd-api-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/api.pool", dir);
	c = open_pool();
	cr_assert_not_null(c, "%s", btd_last_error());
}

static void teardown(void)
{
	char cmd[128];

	btd_cluster_destroy(c);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(api, .init = setup, .fini = teardown);

Test(api, roots_survive_a_reopen)
{
	char *p = btd_malloc(c, 64);

	cr_assert_not_null(p);
	btd_memcpy(p, "hello", 6);
	cr_assert_eq(btd_root_set("greeting", p), BTD_OK);
	btd_cluster_destroy(c);
	c = open_pool();
	cr_assert_not_null(c);
	cr_assert_eq(btd_root_get("greeting"), p);
	cr_assert_str_eq(btd_root_get("greeting"), "hello");
	cr_assert_null(btd_root_get("nothing"));
}

Test(api, one_pool_per_process)
{
	cr_assert_eq(open_pool(), c, "a second create returns the same cluster");
}

Test(api, persist_inside_and_outside_the_pool)
{
	char *p = btd_malloc(c, 4096);
	char dram[16];

	memset(p, 1, 4096);
	cr_assert_eq(btd_persist(p, 4096), BTD_OK);
	cr_assert_eq(btd_persist(dram, sizeof(dram)), BTD_ERR_INVAL);
	cr_assert(strstr(btd_last_error(), "not inside the pool"));
	cr_assert_eq(btd_memcpy(dram, "plain", 6), dram, "plain memcpy outside the pool");
	cr_assert_str_eq(dram, "plain");
	cr_assert_eq(btd_memset(p, 7, 100), p);
	cr_assert_eq(p[99], 7);
	cr_assert_eq(btd_memset(dram, 0, sizeof(dram)), dram);
	cr_assert_eq(btd_sync(), BTD_OK);
	btd_free(p);
}

Test(api, malloc_until_full_then_enomem)
{
	size_t n = 0;

	errno = 0;
	while (btd_malloc(c, 1 << 20))
		n++;
	cr_assert_eq(errno, ENOMEM);
	cr_assert_gt(n, 50);
}

Test(api, tagging_needs_the_preload)
{
	cr_assert_eq(btd_tag_begin(), BTD_ERR_INVAL);
	cr_assert(strstr(btd_last_error(), "libbtd_preload.so"));
}

Test(api, memory_nodes_are_refused_clearly)
{
	struct btd_config cfg;

	btd_config_init(&cfg);
	cfg.single_node = 0;
	errno = 0;
	cr_assert_null(btd_cluster_create(&cfg));
	cr_assert_eq(errno, EINVAL);
	cr_assert(strstr(btd_last_error(), "single_node"));
}

Test(api, strerror_names_every_status)
{
	for (int s = 0; s >= BTD_ERR_PERM; s--)
		cr_assert(strcmp(btd_strerror(s), "unknown btd status"), "status %d", s);
	cr_assert_str_eq(btd_strerror(12345), "unknown btd status");
}

Test(api, free_of_a_foreign_pointer_is_refused)
{
	char dram[8];

	btd_free(dram);
	cr_assert(strstr(btd_last_error(), "not a block of the persistent heap"));
	btd_free(NULL);
}
