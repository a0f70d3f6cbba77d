/* test_tx.c: transactions -- commit, abort, nesting, allocation and free,
 * roots, the limits, and rollback after a crash. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../heap/heap.h"
#include "../../heap/heap_int.h"
#include "../../heap/pmem.h"
#include "../../heap/roots.h"
#include "../../heap/tx.h"
#include "../../recovery/recovery.h"
#include "../../store/store.h"
#include "btd.h"

#define MiB ((size_t)1 << 20)

static char dir[64], path[128];

static void setup(void)
{
	strcpy(dir, "/dev/shm/btd-test-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/tx.pool", dir);
	cr_assert_eq(store_open(path, 64 * MiB, GC_AUTO, NULL), 0, "%s", btd_last_error());
}

static void teardown(void)
{
	store_close();
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(tx, .init = setup, .fini = teardown);

/* A crash: nothing more is written, and the pool opens again. */
static struct heap_open_info crash_and_reopen(void)
{
	struct heap_open_info info;

	store_abandon();
	cr_assert_eq(store_open(path, 64 * MiB, GC_AUTO, &info), 0, "%s", btd_last_error());
	cr_assert(info.was_dirty);
	return info;
}

static long *new_array(size_t n, const char *root)
{
	long *a = heap_malloc(n * sizeof(long));

	cr_assert_not_null(a);
	for (size_t i = 0; i < n; i++)
		a[i] = (long)i;
	pmem_persist_why(a, n * sizeof(long), PMEM_WHY_USER);
	cr_assert_eq(roots_set(root, a), 0);
	return a;
}

Test(tx, commit_keeps_every_change)
{
	long *a = new_array(64, "a");

	cr_assert_eq(btd_tx_begin(), 0);
	for (int i = 0; i < 64; i += 8) {
		cr_assert_eq(btd_tx_add(&a[i], sizeof(long)), 0);
		a[i] = -a[i] - 1;
	}
	cr_assert_eq(btd_tx_commit(), 0);
	cr_assert_eq(btd_tx_depth(), 0);
	crash_and_reopen(); /* committed: a crash keeps it */
	a = roots_get("a");
	for (int i = 0; i < 64; i++)
		cr_assert_eq(a[i], i % 8 ? i : -i - 1, "a[%d] = %ld", i, a[i]);
}

Test(tx, crash_before_commit_rolls_back)
{
	long *a = new_array(64, "a");

	cr_assert_eq(btd_tx_begin(), 0);
	cr_assert_eq(btd_tx_add(a, 64 * sizeof(long)), 0);
	for (int i = 0; i < 64; i++)
		a[i] = 1000 + i;
	pmem_persist_why(a, 64 * sizeof(long), PMEM_WHY_USER); /* the worst case: all on media */
	struct heap_open_info info = crash_and_reopen();

	cr_assert_eq(info.rolled_back, 1);
	a = roots_get("a");
	for (int i = 0; i < 64; i++)
		cr_assert_eq(a[i], i);
	/* Idempotent: the next crash finds nothing to roll back. */
	info = crash_and_reopen();
	cr_assert_eq(info.rolled_back, 0);
	cr_assert_eq(heap_check(2), 0);
}

Test(tx, abort_restores_and_frees)
{
	long *a = new_array(16, "a");

	cr_assert_eq(btd_tx_begin(), 0);
	cr_assert_eq(btd_tx_add(&a[3], sizeof(long)), 0);
	a[3] = 77;
	long *b = btd_tx_malloc(100);

	cr_assert_not_null(b);
	cr_assert_eq(btd_tx_free(a), 0);
	btd_tx_abort();
	cr_assert_eq(a[3], 3);
	cr_assert_eq(btd_tx_depth(), 0);
	cr_assert_eq(btd_tx_commit(), BTD_ERR_TX);
	/* a was not freed: a block start still */
	cr_assert_eq(heap_usable_size(a), 128);
	/* b was: the heap checker and the audit agree nothing leaked */
	cr_assert_eq(heap_check(2), 0);
	heap_free(a);
}

Test(tx, nested_levels_flatten_into_the_outermost)
{
	long *a = new_array(8, "a");

	cr_assert_eq(btd_tx_begin(), 0);
	cr_assert_eq(btd_tx_add(&a[0], 8), 0);
	a[0] = 10;
	cr_assert_eq(btd_tx_begin(), 0);
	cr_assert_eq(btd_tx_depth(), 2);
	cr_assert_eq(btd_tx_add(&a[1], 8), 0);
	a[1] = 11;
	cr_assert_eq(btd_tx_commit(), 0); /* inner: nothing durable yet */
	cr_assert_eq(btd_tx_depth(), 1);
	cr_assert(tx_live());
	struct heap_open_info info = crash_and_reopen();

	cr_assert_eq(info.rolled_back, 1);
	a = roots_get("a");
	cr_assert_eq(a[0], 0);
	cr_assert_eq(a[1], 1);
}

Test(tx, abort_inside_a_nested_level_ends_all_levels)
{
	long *a = new_array(8, "a");

	cr_assert_eq(btd_tx_begin(), 0);
	cr_assert_eq(btd_tx_add(&a[0], 8), 0);
	a[0] = 10;
	cr_assert_eq(btd_tx_begin(), 0);
	btd_tx_abort();
	cr_assert_eq(a[0], 0);
	cr_assert_eq(btd_tx_add(&a[1], 8), BTD_ERR_TX);
	cr_assert_eq(btd_tx_commit(), BTD_ERR_TX);
	cr_assert_eq(btd_tx_commit(), BTD_ERR_TX);
	cr_assert(!tx_live());
}

Test(tx, malloc_is_reclaimed_unless_committed)
{
	long *a = new_array(4, "a");

	cr_assert_eq(btd_tx_begin(), 0);
	long *n = btd_tx_malloc(64);

	cr_assert_not_null(n);
	n[0] = 42;
	cr_assert_eq(btd_tx_add(&a[0], 8), 0);
	a[0] = (long)(uintptr_t)n;
	pmem_persist_why(a, 8, PMEM_WHY_USER);
	crash_and_reopen(); /* in flight: a[0] back, n unreachable, reclaimed */
	a = roots_get("a");
	cr_assert_eq(a[0], 0);
	struct recovery_audit au;

	recovery_audit(&au);
	cr_assert_eq(au.leaked, 0);
	cr_assert_eq(au.allocated, 1, "only the array is allocated: %llu",
		     (unsigned long long)au.allocated);

	cr_assert_eq(btd_tx_begin(), 0);
	n = btd_tx_malloc(64);
	n[0] = 42;
	cr_assert_eq(btd_tx_add(&a[0], 8), 0);
	a[0] = (long)(uintptr_t)n;
	cr_assert_eq(btd_tx_commit(), 0);
	crash_and_reopen();
	a = roots_get("a");
	n = (long *)(uintptr_t)a[0];
	cr_assert_eq(n[0], 42);
	recovery_audit(&au);
	cr_assert_eq(au.allocated, 2);
	cr_assert_eq(au.reachable, 2);
}

Test(tx, free_takes_effect_at_the_commit)
{
	long *a = new_array(4, "a");
	long *b = heap_malloc(48);

	a[1] = (long)(uintptr_t)b;
	pmem_persist_why(a, 32, PMEM_WHY_USER);
	cr_assert_eq(btd_tx_begin(), 0);
	cr_assert_eq(btd_tx_add(&a[1], 8), 0);
	a[1] = 0;
	cr_assert_eq(btd_tx_free(b), 0);
	cr_assert(heap_bit_test(b)); /* not yet */
	cr_assert_eq(btd_tx_commit(), 0);
	cr_assert(!heap_bit_test(b));
	cr_assert_eq(btd_tx_free(b), BTD_ERR_TX); /* outside a transaction */
}

Test(tx, overlapping_adds_restore_the_oldest_snapshot)
{
	long *a = new_array(32, "a");

	cr_assert_eq(btd_tx_begin(), 0);
	cr_assert_eq(btd_tx_add(&a[0], 16 * sizeof(long)), 0);
	a[4] = 400;
	cr_assert_eq(btd_tx_add(&a[2], 4 * sizeof(long)), 0); /* covered: no entry */
	cr_assert_eq(btd_tx_add(&a[8], 16 * sizeof(long)), 0); /* overlaps */
	a[10] = 1000;
	a[20] = 2000;
	btd_tx_abort();
	for (int i = 0; i < 32; i++)
		cr_assert_eq(a[i], i);
}

Test(tx, commit_of_nothing_costs_no_fence)
{
	cr_assert_eq(btd_tx_begin(), 0); /* the log's first use gives it gen 1 */
	cr_assert_eq(btd_tx_commit(), 0);
	struct pmem_counts c0 = pmem_counts();

	cr_assert_eq(btd_tx_begin(), 0);
	cr_assert_eq(btd_tx_commit(), 0);
	struct pmem_counts c1 = pmem_counts();

	cr_assert_eq(c1.drains[PMEM_WHY_TX] - c0.drains[PMEM_WHY_TX], 0);
}

/* The documented cost: N ranges, N + 2 fences and 3N + 1 flushes. */
Test(tx, commit_costs_n_plus_two_fences)
{
	long *a = new_array(256, "a");

	/* the log's first use (gen 1) is behind us */
	cr_assert_eq(btd_tx_begin(), 0);
	cr_assert_eq(btd_tx_commit(), 0);
	for (unsigned n = 1; n <= 16; n *= 4) {
		struct pmem_counts c0 = pmem_counts();

		cr_assert_eq(btd_tx_begin(), 0);
		for (unsigned i = 0; i < n; i++) {
			cr_assert_eq(btd_tx_add(&a[i * 8], 64), 0);
			a[i * 8]++;
		}
		cr_assert_eq(btd_tx_commit(), 0);
		struct pmem_counts c1 = pmem_counts();

		cr_assert_eq(c1.drains[PMEM_WHY_TX] - c0.drains[PMEM_WHY_TX], n + 2, "n=%u", n);
		cr_assert_eq(c1.flushes[PMEM_WHY_TX] - c0.flushes[PMEM_WHY_TX], 3 * n + 1, "n=%u", n);
	}
}

Test(tx, out_of_log_space_dooms_the_transaction)
{
	char *big = heap_malloc(256 << 10);

	memset(big, 1, 256 << 10);
	pmem_persist_why(big, 256 << 10, PMEM_WHY_USER);
	cr_assert_eq(roots_set("big", big), 0);
	cr_assert_eq(btd_tx_begin(), 0);
	cr_assert_eq(btd_tx_add(big, 32 << 10), 0);
	memset(big, 2, 32 << 10);
	cr_assert_eq(btd_tx_add(big + (32 << 10), 32 << 10), BTD_ERR_TXFULL);
	cr_assert_eq(btd_tx_add(big + (128 << 10), 8), BTD_ERR_TXFULL); /* doomed */
	cr_assert_eq(btd_tx_commit(), BTD_ERR_TXFULL);
	for (size_t i = 0; i < (64 << 10); i++)
		cr_assert_eq(big[i], 1);
	cr_assert_eq(btd_tx_depth(), 0);
	cr_assert(!tx_live());
}

Test(tx, a_range_outside_the_pool_is_refused)
{
	long local[4] = { 0 };

	cr_assert_eq(btd_tx_add(local, 8), BTD_ERR_TX);
	cr_assert_eq(btd_tx_begin(), 0);
	cr_assert_eq(btd_tx_add(local, sizeof(local)), BTD_ERR_INVAL);
	cr_assert_eq(btd_tx_commit(), BTD_ERR_INVAL);
	cr_assert_null(btd_tx_malloc(8));
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(btd_tx_commit(), BTD_ERR_TX);
}

Test(tx, root_set_takes_effect_with_the_commit)
{
	long *a = new_array(4, "a");

	cr_assert_eq(btd_tx_begin(), 0);
	long *b = btd_tx_malloc(32);

	b[0] = 5;
	cr_assert_eq(btd_root_set("b", b), 0);
	cr_assert_eq(btd_root_set("a", NULL), 0);
	cr_assert_eq(roots_get("b"), b); /* visible to this thread at once */
	cr_assert_null(roots_get("a"));
	struct heap_open_info info = crash_and_reopen();

	cr_assert_eq(info.rolled_back, 1);
	cr_assert_null(roots_get("b"));
	cr_assert_eq(roots_get("a"), a);

	cr_assert_eq(btd_tx_begin(), 0);
	b = btd_tx_malloc(32);
	b[0] = 5;
	cr_assert_eq(btd_root_set("b", b), 0);
	cr_assert_eq(btd_root_set("a", NULL), 0);
	cr_assert_eq(btd_tx_commit(), 0);
	crash_and_reopen();
	b = roots_get("b");
	cr_assert_not_null(b);
	cr_assert_eq(b[0], 5);
	cr_assert_null(roots_get("a"));
	cr_assert_eq(recovery_root_count(), 1);
}

Test(tx, a_transaction_spanning_a_large_block)
{
	size_t n = 1 << 20;
	unsigned char *big;

	cr_assert_eq(btd_tx_begin(), 0);
	big = btd_tx_malloc(n);
	cr_assert_not_null(big);
	memset(big, 0x5a, n);
	cr_assert_eq(btd_tx_add(big + 4096, 4096), 0); /* its own block: nothing logged */
	cr_assert_eq(btd_root_set("big", big), 0);
	cr_assert_eq(btd_tx_commit(), 0);
	crash_and_reopen();
	big = roots_get("big");
	cr_assert_not_null(big);
	for (size_t i = 0; i < n; i += 4093)
		cr_assert_eq(big[i], 0x5a);

	/* change a stretch of it, then crash before the commit */
	cr_assert_eq(btd_tx_begin(), 0);
	cr_assert_eq(btd_tx_add(big + 100000, 30000), 0);
	memset(big + 100000, 0, 30000);
	pmem_persist_why(big + 100000, 30000, PMEM_WHY_USER);
	crash_and_reopen();
	big = roots_get("big");
	for (size_t i = 100000; i < 130000; i++)
		cr_assert_eq(big[i], 0x5a);
}

static void *hold_a_log(void *arg)
{
	pthread_barrier_t *b = arg;
	int st = btd_tx_begin();

	pthread_barrier_wait(b);
	pthread_barrier_wait(b);
	if (!st)
		btd_tx_commit();
	return (void *)(intptr_t)st;
}

Test(tx, every_log_in_use_is_a_clear_busy)
{
	pthread_t th[POOL_LOG_SLOTS];
	pthread_barrier_t b;

	pthread_barrier_init(&b, NULL, POOL_LOG_SLOTS + 1);
	for (unsigned i = 0; i < POOL_LOG_SLOTS; i++)
		pthread_create(&th[i], NULL, hold_a_log, &b);
	pthread_barrier_wait(&b);
	cr_assert_eq(btd_tx_begin(), BTD_ERR_BUSY);
	cr_assert(strstr(btd_last_error(), "in use"));
	pthread_barrier_wait(&b);
	for (unsigned i = 0; i < POOL_LOG_SLOTS; i++) {
		void *r;

		pthread_join(th[i], &r);
		cr_assert_eq((intptr_t)r, 0);
	}
	cr_assert_eq(btd_tx_begin(), 0);
	cr_assert_eq(btd_tx_commit(), 0);
}

Test(tx, a_close_in_a_transaction_rolls_it_back_and_stays_clean)
{
	long *a = new_array(4, "a");
	struct heap_open_info info;

	cr_assert_eq(btd_tx_begin(), 0);
	cr_assert_eq(btd_tx_add(a, 8), 0);
	a[0] = 9;
	cr_assert_not_null(btd_tx_malloc(1000));
	store_close();
	cr_assert_eq(btd_tx_depth(), 0);
	cr_assert_eq(btd_tx_commit(), BTD_ERR_TX);
	cr_assert_eq(store_open(path, 64 * MiB, GC_AUTO, &info), 0);
	cr_assert(!info.was_dirty);
	a = roots_get("a");
	cr_assert_eq(a[0], 0);
	struct recovery_audit au;

	recovery_audit(&au);
	cr_assert_eq(au.leaked, 0);
}

static pthread_barrier_t hold;

static void *tx_across_the_close(void *arg)
{
	long *a = arg;

	cr_assert_eq(btd_tx_begin(), 0);
	cr_assert_eq(btd_tx_add(a, 8), 0);
	a[0] = 9;
	pthread_barrier_wait(&hold); /* the main thread closes */
	pthread_barrier_wait(&hold);
	return (void *)(intptr_t)btd_tx_add(&a[1], 8); /* the pool is gone: a status */
}

Test(tx, a_close_while_another_thread_is_in_a_transaction_stays_dirty)
{
	long *a = new_array(4, "a");
	struct heap_open_info info;
	pthread_t th;
	void *r;

	pthread_barrier_init(&hold, NULL, 2);
	pthread_create(&th, NULL, tx_across_the_close, a);
	pthread_barrier_wait(&hold);
	store_close();
	pthread_barrier_wait(&hold);
	pthread_join(th, &r);
	cr_assert_eq((intptr_t)r, BTD_ERR_TX);
	cr_assert_eq(store_open(path, 64 * MiB, GC_AUTO, &info), 0);
	cr_assert(info.was_dirty);
	cr_assert_eq(info.rolled_back, 1);
	a = roots_get("a");
	cr_assert_eq(a[0], 0);
}

static void *end_inside(void *arg)
{
	long *a = arg;

	cr_assert_eq(btd_tx_begin(), 0);
	cr_assert_eq(btd_tx_add(a, 8), 0);
	a[0] = 100;
	cr_assert_not_null(btd_tx_malloc(64));
	return NULL; /* the thread ends inside its transaction */
}

/* A thread that ends in a transaction gives its log back, rolled back:
 * seventeen of them leave every log free, and what another thread commits
 * afterwards is not undone by a later open. */
Test(tx, a_thread_that_ends_inside_a_transaction_rolls_it_back)
{
	long *a = new_array(4, "a");

	for (unsigned i = 0; i <= POOL_LOG_SLOTS; i++) {
		pthread_t th;

		pthread_create(&th, NULL, end_inside, a);
		pthread_join(th, NULL);
		cr_assert_eq(a[0], 0);
	}
	cr_assert(!tx_live());
	cr_assert_eq(btd_tx_begin(), 0);
	cr_assert_eq(btd_tx_add(a, 8), 0);
	a[0] = 7;
	cr_assert_eq(btd_tx_commit(), 0);
	struct heap_open_info info = crash_and_reopen();

	cr_assert_eq(info.rolled_back, 0);
	a = roots_get("a");
	cr_assert_eq(a[0], 7);
	struct recovery_audit au;

	recovery_audit(&au);
	cr_assert_eq(au.allocated, 1);
}

static void *set_other_root(void *arg)
{
	return (void *)(intptr_t)roots_set("b", arg);
}

/* A root slot a transaction emptied is not given to another root until
 * the transaction ends: its rollback would restore the slot over it. */
Test(tx, a_root_slot_in_a_transaction_is_not_reused)
{
	long *a = new_array(4, "a");
	long *b = heap_malloc(16);
	pthread_t th;
	void *r;

	cr_assert_eq(btd_tx_begin(), 0);
	cr_assert_eq(btd_root_set("a", NULL), 0);
	pthread_create(&th, NULL, set_other_root, b);
	pthread_join(th, &r);
	cr_assert_eq((intptr_t)r, 0);
	btd_tx_abort();
	cr_assert_eq(roots_get("a"), a);
	cr_assert_eq(roots_get("b"), b);
	crash_and_reopen();
	cr_assert_eq(roots_get("a"), a);
	cr_assert_eq(roots_get("b"), b);
}

Test(tx, free_of_a_bad_pointer_is_a_status)
{
	long *a = new_array(4, "a");

	cr_assert_eq(btd_tx_begin(), 0);
	cr_assert_eq(btd_tx_free((char *)a + 16), BTD_ERR_INVAL);
	cr_assert_eq(btd_tx_free(a), 0);
	cr_assert_eq(btd_tx_free(a), BTD_ERR_INVAL);
	cr_assert(heap_is_block(a)); /* at the commit */
	cr_assert_eq(btd_tx_commit(), 0);
	cr_assert(!heap_is_block(a));
	cr_assert_eq(roots_set("a", NULL), 0);
}

/* heap_free (under the preload: free, realloc) of a block the transaction
 * changed is taken over by it; of one it allocated, happens at once, and
 * its abort does not free that block again. */
Test(tx, plain_frees_inside_a_transaction)
{
	long *a = new_array(4, "a");

	cr_assert_eq(btd_tx_begin(), 0);
	long *n = btd_tx_malloc(64);

	heap_free(n);
	long *bystander = heap_malloc(64); /* may reuse n's place */

	bystander[0] = 123;
	cr_assert_eq(btd_tx_add(&a[1], 8), 0);
	a[1] = 55;
	heap_free(a); /* deferred: the rollback restores a[1] in a live block */
	cr_assert(heap_is_block(a));
	btd_tx_abort();
	cr_assert(heap_is_block(a));
	cr_assert_eq(a[1], 1);
	cr_assert(heap_is_block(bystander));
	cr_assert_eq(bystander[0], 123);
	cr_assert_eq(heap_check(2), 0);
}
