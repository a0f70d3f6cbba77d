/* crash_writer.c: builds a root-linked list in a pool, forever, until it is
 * killed.  Each node is made durable before the root points at it, so every
 * node the root reaches after a crash must be intact.  Garbage is made all
 * along: up to 1024 blocks that nothing in the pool points to (their
 * pointers live in DRAM only, so a crash leaves them for recovery to
 * reclaim), freed blocks, and cut-off list tails. */
#include <btd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crash_node.h"

int main(void)
{
	struct btd_config cfg;

	btd_config_init(&cfg);
	cfg.pool_size = 256 << 20;
	struct btd_cluster *c = btd_cluster_create(&cfg);

	if (!c) {
		fprintf(stderr, "crash_writer: %s\n", btd_last_error());
		return 1;
	}
	static void *junk[1024];
	struct crash_node *head = btd_root_get("list");
	uint64_t seq = head ? head->seq + 1 : 0;
	uint64_t x = seq * 2654435761u + 1;

	for (;;) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t extra = x % 300;
		struct crash_node *n = btd_malloc(c, sizeof(*n) + extra);

		if (!n) {
			fprintf(stderr, "crash_writer: pool full at seq %llu\n",
				(unsigned long long)seq);
			return 1;
		}
		crash_node_fill(n, seq, head, extra);
		btd_persist(n, sizeof(*n) + extra);
		btd_root_set("list", n);
		head = n;
		seq++;
		void **slot = &junk[seq % 1024];

		if (*slot)
			btd_free(*slot);
		*slot = btd_malloc(c, 16 + x % 5000); /* never linked into the pool */
		if (seq % 64 == 0) { /* drop the tail beyond 4000 nodes: frees */
			struct crash_node *t = head;

			for (int i = 0; t && i < 4000; i++)
				t = t->next;
			if (t && t->next) {
				struct crash_node *cut = t->next;

				t->next = NULL;
				btd_persist(&t->next, sizeof(t->next));
				while (cut) {
					struct crash_node *nx = cut->next;

					btd_free(cut);
					cut = nx;
				}
			}
		}
	}
}
