/* crash_verify.c: after a crash, every node the root reaches is intact and
 * the sequence is unbroken.  Prints the head's sequence number. */
#include <btd.h>
#include <stdio.h>

#include "crash_node.h"

int main(void)
{
	struct btd_config cfg;

	btd_config_init(&cfg);
	struct btd_cluster *c = btd_cluster_create(&cfg);

	if (!c) {
		fprintf(stderr, "crash_verify: %s\n", btd_last_error());
		return 1;
	}
	struct crash_node *head = btd_root_get("list");
	unsigned long long n = 0;

	for (struct crash_node *x = head; x; x = x->next, n++) {
		if (x->sum != crash_node_sum(x)) {
			fprintf(stderr, "crash_verify: node %llu (seq %llu) is corrupt\n", n,
				(unsigned long long)x->seq);
			return 1;
		}
		if (x->next && x->next->seq != x->seq - 1) {
			fprintf(stderr, "crash_verify: seq %llu is followed by %llu\n",
				(unsigned long long)x->seq, (unsigned long long)x->next->seq);
			return 1;
		}
	}
	printf("%lld %llu\n", head ? (long long)head->seq : -1LL, n);
	btd_cluster_destroy(c);
	return 0;
}
