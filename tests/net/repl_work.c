/* repl_work.c: a linked program for the replication tests.
 *
 *   repl_work run N SLEEP_US [idle]
 *       N transactions over a bank of 16 accounts (a transfer, a counter, a
 *       new list node each), against the memory nodes of BTD_REPLICAS.
 *       After each commit returns: "committed K" on stdout.  With idle,
 *       print "idle" after the last one and wait to be killed; else
 *       return from main (the pool closes at exit).
 *   repl_work syncs N MIB
 *       N rounds of: one transaction of the bank, MIB MiB more of heap,
 *       btd_sync (a whole image to the replicas); "synced K" after each
 *       returned (K the bank's counter)
 *   repl_work verify
 *       the pool as found: the accounts sum to 16,000 and the list holds
 *       one node per committed transaction, newest first -- every
 *       transaction whole or absent.  Prints "counter K".
 *   repl_work example POOL
 *       the original bartender README example, with single_node = 0
 *   repl_work greeting
 *       prints the root "greeting" of the pool
 * Exit: 0, 1 a violated invariant, 2 an API failure. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "btd.h"

#define ACCOUNTS 16

struct node {
	uint64_t seq;
	struct node *next;
	char pad[48];
};

struct bank {
	uint64_t counter;
	uint64_t acct[ACCOUNTS];
	struct node *head;
};

static int fail(const char *what)
{
	fprintf(stderr, "repl_work: %s: %s\n", what, btd_last_error());
	return 2;
}

static struct bank *bank_get(void)
{
	struct bank *b = btd_root_get("bank");

	if (b)
		return b;
	if (btd_tx_begin())
		return NULL;
	b = btd_tx_malloc(sizeof(*b));
	if (!b) {
		btd_tx_abort();
		return NULL;
	}
	memset(b, 0, sizeof(*b));
	for (int i = 0; i < ACCOUNTS; i++)
		b->acct[i] = 1000;
	if (btd_root_set("bank", b) || btd_tx_commit())
		return NULL;
	return b;
}

static int run(long n, long sleep_us, int idle)
{
	struct btd_config cfg;

	btd_config_init(&cfg);
	cfg.single_node = 0; /* the nodes come from BTD_REPLICAS */
	if (!btd_cluster_create(&cfg))
		return fail("btd_cluster_create");
	struct bank *b = bank_get();

	if (!b)
		return fail("the bank");
	srand((unsigned)getpid());
	for (long i = 0; i < n; i++) {
		int from = rand() % ACCOUNTS, to = rand() % ACCOUNTS;
		uint64_t amount = (uint64_t)(rand() % 10);

		if (btd_tx_begin() || btd_tx_add(b, sizeof(*b)))
			return fail("btd_tx_begin/add");
		struct node *nd = btd_tx_malloc(sizeof(*nd));

		if (!nd)
			return fail("btd_tx_malloc");
		if (b->acct[from] < amount)
			amount = b->acct[from];
		b->acct[from] -= amount;
		b->acct[to] += amount;
		nd->seq = b->counter + 1;
		nd->next = b->head;
		b->head = nd;
		b->counter++;
		int st = btd_tx_commit();

		if (st) /* committed here, not on enough replicas */
			printf("unreplicated %llu: %s\n", (unsigned long long)b->counter,
			       btd_last_error());
		else
			printf("committed %llu\n", (unsigned long long)b->counter);
		fflush(stdout);
		if (sleep_us)
			usleep((useconds_t)sleep_us);
	}
	if (idle) {
		printf("idle\n");
		fflush(stdout);
		for (;;)
			pause();
	}
	return 0;
}

static int syncs(long n, long mib)
{
	struct btd_config cfg;

	btd_config_init(&cfg);
	cfg.single_node = 0;
	if (!btd_cluster_create(&cfg))
		return fail("btd_cluster_create");
	struct bank *b = bank_get();

	if (!b)
		return fail("the bank");
	for (long i = 0; i < n; i++) {
		if (btd_tx_begin() || btd_tx_add(b, sizeof(*b)))
			return fail("btd_tx_begin/add");
		b->counter++;
		struct node *nd = btd_tx_malloc(sizeof(*nd));

		if (!nd)
			return fail("btd_tx_malloc");
		nd->seq = b->counter;
		nd->next = b->head;
		b->head = nd;
		if (btd_tx_commit())
			return fail("btd_tx_commit");
		for (long k = 0; k < mib; k++) {
			char *p = btd_malloc(NULL, 1 << 20);

			if (!p)
				return fail("btd_malloc");
			memset(p, (int)k, 1 << 20);
		}
		if (btd_sync())
			return fail("btd_sync");
		printf("synced %llu\n", (unsigned long long)b->counter);
		fflush(stdout);
	}
	return 0;
}

static int verify(void)
{
	struct bank *b = btd_root_get("bank");
	uint64_t sum = 0, len = 0;

	if (!b)
		return fail("no bank");
	for (int i = 0; i < ACCOUNTS; i++)
		sum += b->acct[i];
	if (sum != 1000 * ACCOUNTS) {
		fprintf(stderr, "repl_work: torn: the accounts sum to %llu\n",
			(unsigned long long)sum);
		return 1;
	}
	for (struct node *nd = b->head; nd; nd = nd->next, len++) {
		if (nd->seq != b->counter - len) {
			fprintf(stderr, "repl_work: torn: node %llu of the list has seq %llu, "
				"counter %llu\n", (unsigned long long)len,
				(unsigned long long)nd->seq, (unsigned long long)b->counter);
			return 1;
		}
	}
	if (len != b->counter) {
		fprintf(stderr, "repl_work: torn: %llu nodes for counter %llu\n",
			(unsigned long long)len, (unsigned long long)b->counter);
		return 1;
	}
	printf("counter %llu\n", (unsigned long long)b->counter);
	return 0;
}

/* The example of the original README, as a program written against it
 * would run on a cluster: only the configuration differs. */
static int example(const char *pool)
{
	struct btd_config cfg;

	btd_config_init(&cfg);
	cfg.single_node = 0;
	cfg.nodes = getenv("NODES");
	cfg.pool = pool;
	struct btd_cluster *c = btd_cluster_create(&cfg);

	if (!c)
		return fail("btd_cluster_create");
	char *p = btd_malloc(c, 100);

	if (!p)
		return fail("btd_malloc");
	btd_memcpy(p, "123", 4);
	if (btd_root_set("greeting", p))
		return fail("btd_root_set");
	char *q = btd_malloc(c, 50); /* and a free, as the example has */

	btd_free(q);
	btd_cluster_destroy(c);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "run"))
		return run(atol(argv[2]), atol(argv[3]), argc > 4 && !strcmp(argv[4], "idle"));
	if (argc == 4 && !strcmp(argv[1], "syncs"))
		return syncs(atol(argv[2]), atol(argv[3]));
	if (argc == 2 && !strcmp(argv[1], "verify"))
		return verify();
	if (argc == 3 && !strcmp(argv[1], "example"))
		return example(argv[2]);
	if (argc == 2 && !strcmp(argv[1], "greeting")) {
		const char *g = btd_root_get("greeting");

		if (!g)
			return fail("no greeting");
		printf("%s\n", g);
		return 0;
	}
	fprintf(stderr, "usage: repl_work run N SLEEP_US [idle] | syncs N MIB | verify | "
		"example POOL | greeting\n");
	return 2;
}
