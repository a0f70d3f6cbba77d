/* seed.c: the example of the original bartender README, unchanged inside
 * main() -- every field of btd_config but single_node is uninitialised. */
#include <btd.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
	struct btd_config btd_config;
	btd_config.single_node = 1;
	struct btd_cluster *p_cluster = btd_cluster_create(&btd_config);
	const char *s = "123";
	char *p_data = btd_malloc(p_cluster, 100);
	btd_memcpy(p_data, s, strlen(s));
	btd_free(p_data);

	if (!p_cluster || !p_data) {
		fprintf(stderr, "seed: %s\n", btd_last_error());
		return 1;
	}
	puts("seed: ok");
	return 0;
}
