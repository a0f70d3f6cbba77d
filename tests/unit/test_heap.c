/* test_heap.c: the allocator and the recovery GC. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../heap/heap.h"
#include "../../store/store.h"
#include "../../heap/heap_int.h"
#include "../../heap/pmem.h"
#include "../../heap/roots.h"
#include "../../recovery/recovery.h"
#include "btd.h"

#define MiB ((size_t)1 << 20)

static char dir[64], path[128];

static void setup(void)
{
	strcpy(dir, "/dev/shm/btd-test-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/h.pool", dir);
	cr_assert_eq(store_open(path, 256 * MiB, GC_AUTO, NULL), 0, "%s", btd_last_error());
}

static void teardown(void)
{
	store_close();
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(heap, .init = setup, .fini = teardown);
TestSuite(gc, .init = setup, .fini = teardown);

static void crash_and_reopen(struct heap_open_info *info)
{
	store_abandon();
	cr_assert_eq(store_open(path, 256 * MiB, GC_AUTO, info), 0, "%s", btd_last_error());
	cr_assert(info->was_dirty);
}

Test(heap, every_size_class_and_large_sizes)
{
	for (size_t n = 1; n <= 300000; n = n < 64 ? n + 1 : n * 9 / 8) {
		unsigned char *p = heap_malloc(n);

		cr_assert_not_null(p, "size %zu", n);
		cr_assert_eq((uintptr_t)p % 16, 0);
		cr_assert(heap_owns(p));
		cr_assert_geq(heap_usable_size(p), n);
		memset(p, 0xab, heap_usable_size(p));
		heap_free(p);
	}
	for (unsigned c = 0; c < HEAP_CLASSES; c++) {
		void *p = heap_malloc(heap_class_size[c]);

		cr_assert_eq(heap_usable_size(p), heap_class_size[c]);
		heap_free(p);
	}
	cr_assert_eq(heap_check(2), 0);
}

Test(heap, small_fast_path_does_no_flush_and_no_fence)
{
	void *warm = heap_malloc(64); /* the slab exists, persisted */
	struct pmem_counts before = pmem_counts();
	void *ps[512];

	for (int round = 0; round < 100; round++) {
		for (int i = 0; i < 200; i++)
			ps[i] = heap_malloc(64);
		for (int i = 0; i < 200; i++)
			heap_free(ps[i]);
	}
	struct pmem_counts after = pmem_counts();

	for (unsigned w = 0; w < PMEM_WHY_COUNT; w++)
	{
		cr_assert_eq(after.flushes[w], before.flushes[w], "flush of kind %u", w);
		cr_assert_eq(after.drains[w], before.drains[w], "drain of kind %u", w);
	}
	heap_free(warm);
}

Test(heap, blocks_do_not_overlap)
{
	enum { N = 20000 };
	static unsigned char *p[N];
	static size_t sz[N];

	for (int i = 0; i < N; i++) {
		sz[i] = 1 + (size_t)(i * 7919) % (i % 50 == 0 ? 100000 : 3000);
		p[i] = heap_malloc(sz[i]);
		cr_assert_not_null(p[i]);
		memset(p[i], i & 0xff, sz[i]);
	}
	for (int i = 0; i < N; i += 2)
		heap_free(p[i]);
	for (int i = 0; i < N; i += 2) {
		p[i] = heap_malloc(sz[i]);
		memset(p[i], i & 0xff, sz[i]);
	}
	for (int i = 0; i < N; i++)
		for (size_t k = 0; k < sz[i]; k += 97)
			cr_assert_eq(p[i][k], i & 0xff, "block %d was overwritten", i);
	cr_assert_eq(heap_check(2), 0);
}

Test(heap, alignments)
{
	for (size_t a = 16; a <= 1 << 20; a <<= 1) {
		for (size_t n = 1; n < 40000; n = n * 3 + 5) {
			void *p = heap_aligned(a, n);

			cr_assert_not_null(p);
			cr_assert_eq((uintptr_t)p % a, 0, "align %zu size %zu: %p", a, n, p);
			cr_assert_geq(heap_usable_size(p), n);
			heap_free(p);
		}
	}
	cr_assert_eq(heap_check(2), 0);
}

Test(heap, realloc_across_classes_keeps_data)
{
	size_t n = 1;
	unsigned char *p = heap_malloc(n);

	p[0] = 1;
	for (size_t m = 2; m < 2 * MiB; m = m * 3 / 2 + 1) {
		p = heap_realloc(p, m);
		cr_assert_not_null(p);
		for (size_t i = 0; i < n; i += 1 + n / 64)
			cr_assert_eq(p[i], (unsigned char)(i * 31 + 1), "byte %zu at size %zu", i, m);
		for (size_t i = 0; i < m; i++)
			p[i] = (unsigned char)(i * 31 + 1);
		n = m;
	}
	p = heap_realloc(p, 10);
	cr_assert_eq(p[9], (unsigned char)(9 * 31 + 1));
	heap_free(p);
	cr_assert_eq(heap_check(2), 0);
}

Test(heap, large_realloc_grows_in_place_when_it_can)
{
	void *p = heap_malloc(100000);
	void *q = heap_realloc(p, 200000);

	cr_assert_eq(p, q, "the pages after a fresh large block are free");
	heap_free(q);
}

Test(heap, calloc_zeroes_reused_blocks)
{
	unsigned char *p = heap_malloc(300);

	memset(p, 0xff, 300);
	heap_free(p);
	unsigned char *q = heap_calloc(300);

	for (int i = 0; i < 300; i++)
		cr_assert_eq(q[i], 0);
	heap_free(q);
}

struct xarg {
	void **blocks;
	int n;
};

static void *xfree_thread(void *arg)
{
	struct xarg *x = arg;

	for (int i = 0; i < x->n; i++)
		heap_free(x->blocks[i]);
	return NULL;
}

static void *alloc_thread(void *arg)
{
	struct xarg *x = arg;

	for (int i = 0; i < x->n; i++) {
		x->blocks[i] = heap_malloc(16 + (size_t)i % 2000);
		memset(x->blocks[i], 1, 16);
	}
	return NULL; /* and exit: its slabs are abandoned */
}

Test(heap, cross_thread_frees_and_thread_exit)
{
	enum { N = 100000 };
	static void *blocks[N];
	struct xarg x = { blocks, N };
	pthread_t t;

	for (int round = 0; round < 3; round++) {
		pthread_create(&t, NULL, alloc_thread, &x);
		pthread_join(t, NULL);
		pthread_create(&t, NULL, xfree_thread, &x);
		pthread_join(t, NULL);
	}
	cr_assert_eq(heap_check(2), 0);
	struct heap_stats st;

	heap_stats(&st);
	cr_assert_eq(st.small_live, 0, "%llu blocks still live", (unsigned long long)st.small_live);
	/* The abandoned slabs are reused, not leaked: a new round fits. */
	size_t used = st.pages_used;

	pthread_create(&t, NULL, alloc_thread, &x);
	pthread_join(t, NULL);
	heap_stats(&st);
	cr_assert_leq(st.pages_used, used + 8 * SLAB_PAGES * HEAP_CLASSES);
}

static void *producer(void *arg)
{
	void *volatile *slot = arg;

	for (int i = 0; i < 200000; i++) {
		void *p = heap_malloc(64);

		while (__atomic_load_n(slot, __ATOMIC_ACQUIRE))
			;
		__atomic_store_n(slot, p, __ATOMIC_RELEASE);
	}
	return NULL;
}

Test(heap, producer_consumer_all_remote)
{
	void *volatile slot = NULL;
	pthread_t t;

	pthread_create(&t, NULL, producer, (void *)&slot);
	for (int i = 0; i < 200000; i++) {
		void *p;

		while (!(p = __atomic_load_n(&slot, __ATOMIC_ACQUIRE)))
			;
		__atomic_store_n(&slot, NULL, __ATOMIC_RELEASE);
		heap_free(p);
	}
	pthread_join(t, NULL);
	struct heap_stats st;

	heap_stats(&st);
	cr_assert_lt(st.pages_used, 4096, "remote frees were not reused: %llu pages",
		     (unsigned long long)st.pages_used);
	cr_assert_eq(heap_check(2), 0);
}

Test(heap, double_free_aborts, .signal = SIGABRT)
{
	void *p = heap_malloc(40);

	heap_free(p);
	heap_free(p);
}

Test(heap, interior_free_aborts, .signal = SIGABRT)
{
	char *p = heap_malloc(400);

	heap_free(p + 16);
}

Test(heap, misaligned_free_aborts, .signal = SIGABRT)
{
	char *p = heap_malloc(400);

	heap_free(p + 3);
}

Test(heap, large_interior_free_aborts, .signal = SIGABRT)
{
	char *p = heap_malloc(100000);

	heap_free(p + 4096);
}

Test(heap, large_double_free_aborts, .signal = SIGABRT)
{
	char *p = heap_malloc(100000);

	heap_free(p);
	heap_free(p);
}

static void *remote_double(void *p)
{
	heap_free(p);
	heap_free(p);
	return NULL;
}

Test(heap, remote_double_free_aborts, .signal = SIGABRT)
{
	pthread_t t;
	void *keep = heap_malloc(48);
	void *p = heap_malloc(48);

	pthread_create(&t, NULL, remote_double, p);
	pthread_join(t, NULL);
	for (int i = 0; i < 100000; i++) /* the owner collects: aborts there at the latest */
		heap_malloc(48);
	(void)keep;
}

Test(heap, free_of_a_never_allocated_slot_aborts, .signal = SIGABRT)
{
	char *p = heap_malloc(64);

	heap_free(p + 64 * 5); /* same slab, never handed out */
}

/* ---- roots and the recovery GC ---------------------------------------- */

struct node {
	struct node *next;
	struct node *other;
	long v;
};

static struct node *list(int n, size_t extra)
{
	struct node *head = NULL;

	for (int i = 0; i < n; i++) {
		struct node *x = heap_malloc(sizeof(*x) + extra);

		x->next = head;
		x->other = NULL;
		x->v = i;
		head = x;
	}
	return head;
}

static long sum(const struct node *x)
{
	long s = 0;

	for (; x; x = x->next)
		s += x->v;
	return s;
}

Test(gc, roots_limits)
{
	char name[64];
	void *p = heap_malloc(8);

	for (unsigned i = 0; i < 1024; i++) {
		snprintf(name, sizeof(name), "root-%u", i);
		cr_assert_eq(roots_set(name, p), 0, "%s", btd_last_error());
	}
	cr_assert_eq(roots_set("one-too-many", p), BTD_ERR_NOMEM);
	cr_assert_eq(roots_set("root-7", NULL), 0);
	cr_assert_null(roots_get("root-7"));
	cr_assert_eq(roots_set("one-too-many", p), 0);
	cr_assert_eq(roots_set("", p), BTD_ERR_INVAL);
	cr_assert_eq(roots_set("0123456789012345678901234567890123456789012345678", p),
		     BTD_ERR_INVAL);
	int stack;

	cr_assert_eq(roots_set("x", &stack), BTD_ERR_INVAL);
	cr_assert(strstr(btd_last_error(), "not a pointer into the persistent heap"));
}

Test(gc, reachable_kept_unreachable_reclaimed)
{
	struct heap_open_info info;
	struct node *keep = list(5000, 0);
	struct node *deep = list(20000, 200); /* a deep list: no recursion limits */

	keep->other = deep;
	for (int i = 0; i < 3000; i++) /* garbage */
		list(3, 100)->other = NULL;
	void *big = heap_malloc(300000);

	((struct node *)big)->next = NULL;
	list(10, 0)->other = big;       /* a large block, unreachable */
	roots_set("keep", keep);
	crash_and_reopen(&info);
	cr_assert(info.collected);
	keep = roots_get("keep");
	cr_assert_eq(sum(keep), 5000L * 4999 / 2);
	cr_assert_eq(sum(keep->other), 20000L * 19999 / 2);
	cr_assert_eq(info.kept_blocks, 25000);
	cr_assert_geq(info.freed_blocks, 9000 + 10 + 1);
	cr_assert_eq(heap_check(2), 0);
	struct recovery_audit a;

	recovery_audit(&a);
	cr_assert_eq(a.reachable, 25000);
	cr_assert_eq(a.reachable_free, 0);
	cr_assert_eq(a.leaked, 0);
}

Test(gc, cycles_are_kept_and_unreachable_cycles_freed)
{
	struct heap_open_info info;
	struct node *a = heap_malloc(sizeof(*a)), *b = heap_malloc(sizeof(*b));
	struct node *c = heap_malloc(sizeof(*c)), *d = heap_malloc(sizeof(*d));

	a->next = b, b->next = a, a->v = 1, b->v = 2;
	c->next = d, d->next = c; /* unreachable cycle */
	roots_set("cycle", b);
	crash_and_reopen(&info);
	a = roots_get("cycle");
	cr_assert_eq(a->v, 2);
	cr_assert_eq(a->next->next, a);
	cr_assert_eq(info.kept_blocks, 2);
	cr_assert_eq(info.freed_blocks, 2);
}

Test(gc, interior_pointers_keep_their_block)
{
	struct heap_open_info info;
	char *small = heap_malloc(1000);
	char *large = heap_malloc(500000);

	strcpy(small, "small");
	strcpy(large, "large");
	struct node *holder = heap_malloc(sizeof(*holder));

	holder->next = (struct node *)(small + 500);
	holder->other = (struct node *)(large + 300000);
	roots_set("holder", holder);
	roots_set("inside", small + 8);
	crash_and_reopen(&info);
	cr_assert_eq(info.kept_blocks, 3);
	cr_assert_str_eq(small, "small");
	cr_assert_str_eq(large, "large");
	/* Still live: allocating a lot does not hand them out again. */
	for (int i = 0; i < 1000; i++)
		memset(heap_malloc(1000), 0, 1000);
	cr_assert_str_eq(small, "small");
	cr_assert_eq(heap_check(2), 0);
}

Test(gc, stale_pointers_in_freed_blocks_do_not_resurrect)
{
	struct heap_open_info info;
	struct node *root = heap_malloc(sizeof(*root));
	struct node *victim = heap_malloc(sizeof(*victim) + 2000);
	struct node *freed = heap_malloc(sizeof(*freed));

	freed->next = victim;   /* a stale pointer ... */
	root->next = freed;
	roots_set("root", root);
	root->next = NULL;      /* ... in a block no longer reachable */
	heap_free(freed);
	crash_and_reopen(&info);
	cr_assert_eq(info.kept_blocks, 1, "only the root's block survives");
	struct recovery_audit a;

	recovery_audit(&a);
	cr_assert_eq(a.leaked, 0);
}

Test(gc, clean_close_is_trusted_without_collecting)
{
	struct heap_open_info info;
	struct node *l = list(1000, 0);

	list(100, 0); /* garbage, kept by a clean close: it was allocated */
	roots_set("l", l);
	store_close();
	cr_assert_eq(store_open(path, 256 * MiB, GC_AUTO, &info), 0);
	cr_assert(!info.was_dirty && !info.collected);
	cr_assert_eq(info.kept_blocks, 1100);
	store_close();
	cr_assert_eq(store_open(path, 256 * MiB, GC_ALWAYS, &info), 0);
	cr_assert(info.collected);
	cr_assert_eq(info.kept_blocks, 1000);
	cr_assert_eq(info.freed_blocks, 100);
	cr_assert_eq(sum(roots_get("l")), 1000L * 999 / 2);
}

Test(gc, recovery_is_idempotent)
{
	struct heap_open_info info;
	struct node *l = list(3000, 50);

	list(3000, 50);
	roots_set("l", l);
	for (int i = 0; i < 3; i++) {
		crash_and_reopen(&info);
		cr_assert_eq(info.kept_blocks, 3000);
		cr_assert_eq(sum(roots_get("l")), 3000L * 2999 / 2);
		cr_assert_eq(heap_check(2), 0);
	}
}

Test(gc, freed_space_is_reused_after_recovery)
{
	struct heap_open_info info;
	struct node *l = list(100, 0);

	roots_set("l", l);
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < 2000; i++)
			heap_malloc(5000); /* garbage each round */
		crash_and_reopen(&info);
	}
	struct heap_stats st;

	heap_stats(&st);
	cr_assert_lt(st.pages_top, 6000, "recovery must hand the garbage back: top %llu pages",
		     (unsigned long long)st.pages_top);
	cr_assert_eq(sum(roots_get("l")), 100L * 99 / 2);
}

Test(gc, reciprocal_division_is_exact)
{
	/* recovery maps an address to its block with a multiply: check every
	 * offset of every class against a division. */
	for (unsigned c = 0; c < HEAP_CLASSES; c++) {
		uint32_t size = heap_class_size[c];
		uint64_t m = (((uint64_t)1 << 32) + size - 1) / size;

		for (uint64_t off = 0; off < SLAB_BYTES; off++)
			if (((off * m) >> 32) != off / size)
				cr_assert_fail("class %u offset %llu", size, (unsigned long long)off);
	}
}

Test(gc, clean_close_after_remote_frees_persists_an_exact_bitmap)
{
	enum { N = 20000 };
	static void *blocks[N];
	struct xarg x = { blocks, N };
	struct heap_open_info info;
	pthread_t t;

	roots_set("anchor", heap_malloc(8));
	pthread_create(&t, NULL, alloc_thread, &x);
	pthread_join(t, NULL);
	xfree_thread(&x); /* all remote: the owner is gone */
	store_close();
	cr_assert_eq(store_open(path, 256 * MiB, GC_AUTO, &info), 0);
	cr_assert(!info.collected);
	cr_assert_eq(info.kept_blocks, 1, "remote frees came back as live blocks");
}

static size_t resident_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0, resident = 0;

	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%lu %lu", &size, &resident), 2);
	fclose(f);
	return resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* The slab structs of a closed pool, of a failed open and of the slabs
 * recovery releases are reused: a process that opens pools again and
 * again (btd check --repair, the fuzzer) does not grow (it did by 128
 * bytes per slab per open). */
Test(gc, reopening_does_not_grow)
{
	struct heap_open_info info;
	size_t before = 0;

	for (unsigned c = 0; c < 30; c++) {
		char name[8];

		snprintf(name, sizeof(name), "c%u", c);
		roots_set(name, heap_malloc(heap_class_size[c]));
	}
	heap_free(heap_malloc(HEAP_SMALL_MAX)); /* an empty slab, released at the next open */
	for (unsigned i = 0; i < 400; i++) {
		if (i == 10)
			before = resident_bytes();
		store_close();
		cr_assert_eq(store_open(path, 256 * MiB, i % 2 ? GC_ALWAYS : GC_AUTO, &info), 0,
			     "%s", btd_last_error());
	}
	cr_assert_lt(resident_bytes() - before, MiB / 2, "grew by %zu bytes in 390 opens",
		     resident_bytes() - before);
}

/* Issue 10: a program whose footprint is stable makes no run once warm
 * (retain.c), so it persists nothing: no msync on a pool that is not pmem. */
static void churn_round(void **ps, unsigned n, uint64_t *rng)
{
	for (unsigned i = 0; i < n; i++) {
		*rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
		unsigned r = (unsigned)(*rng >> 33);
		size_t sz = r % 16 == 0 ? 16384 + r % (600 << 10) : 16 + r % 2000;

		ps[i] = heap_malloc(sz);
		cr_assert_not_null(ps[i]);
		memset(ps[i], (int)i, 16);
	}
	for (unsigned i = n; i-- > 0;)
		heap_free(ps[i]);
}

Test(heap, steady_churn_persists_nothing_once_warm)
{
	static void *ps[3000];

	for (int round = 0; round < 3; round++) { /* warm: the same sizes each round */
		uint64_t rng = 42;

		churn_round(ps, 3000, &rng);
	}
	struct pmem_counts before = pmem_counts();

	for (int round = 0; round < 30; round++) {
		uint64_t rng = 42;

		churn_round(ps, 3000, &rng);
	}
	struct pmem_counts after = pmem_counts();

	for (unsigned w = 0; w < PMEM_WHY_COUNT; w++)
		cr_assert_eq(after.drains[w], before.drains[w], "drains of kind %u: %llu more", w,
			     (unsigned long long)(after.drains[w] - before.drains[w]));
	cr_assert_eq(heap_check(2), 0);
}

Test(heap, a_recut_slab_persists_its_class_at_the_next_durability_point)
{
	static void *ps[3 * SLAB_BYTES / 64];
	unsigned n = 3 * SLAB_BYTES / 64;

	/* Three slabs of 64 B, then all free: the thread keeps its current
	 * slab and one on its partial list; the other is retained. */
	for (unsigned i = 0; i < n; i++)
		ps[i] = heap_malloc(64);
	for (unsigned i = 0; i < n; i++)
		heap_free(ps[i]);
	cr_assert_eq(heap.nempty, 1);
	struct slab *kept = heap.empty[size_class(64)];

	cr_assert_not_null(kept);
	cr_assert_eq(heap_check(2), 0);
	/* A class with no slab takes the empty one, cut anew in place, and
	 * persists nothing until a durability point. */
	struct pmem_counts before = pmem_counts();
	void *q = heap_malloc(3000);
	struct pmem_counts after = pmem_counts();

	cr_assert_eq((page_entry)kept, heap.pagemap[pool_page_of(&heap.pool, q)], "reused");
	cr_assert_eq(after.drains[PMEM_WHY_DESC], before.drains[PMEM_WHY_DESC]);
	cr_assert_eq(heap.desc_pending, 1);
	cr_assert_eq(heap_check(2), 0); /* the pool's descriptor says the new class */
	cr_assert_eq(btd_persist(q, 64), 0); /* a durability point */
	cr_assert_eq(heap.desc_pending, 0);
	cr_assert_eq(pmem_counts().drains[PMEM_WHY_DESC], after.drains[PMEM_WHY_DESC] + 1);
	heap_free(q);
	cr_assert_eq(heap_check(2), 0);
}

Test(heap, a_full_pool_releases_retained_runs)
{
	static void *ps[512];
	unsigned n = 0;

	while (n < 512 && (ps[n] = heap_malloc(1 * MiB - 4096)))
		n++;
	cr_assert_gt(n, 100);
	for (unsigned i = 0; i < n; i++)
		heap_free(ps[i]); /* 64 MiB of them retained */
	cr_assert_gt(heap.nidle, 0);
	/* Only the whole pool serves this: the retained runs must go back. */
	void *big = heap_malloc((size_t)(n - 2) * MiB);

	cr_assert_not_null(big, "%s", btd_last_error());
	cr_assert_eq(heap.nidle, 0);
	heap_free(big);
	cr_assert_eq(heap_check(2), 0);
}

Test(heap, a_clean_close_leaves_no_empty_run)
{
	static void *ps[12000];

	for (unsigned i = 0; i < 12000; i++)
		ps[i] = heap_malloc(i % 10 ? 48 : 40000);
	for (unsigned i = 0; i < 12000; i++)
		heap_free(ps[i]);
	cr_assert(heap.nempty > 0 && heap.nidle > 0);
	store_close();
	cr_assert_eq(store_open(path, 256 * MiB, GC_AUTO, NULL), 0, "%s", btd_last_error());
	struct heap_stats st;

	heap_stats(&st);
	cr_assert_eq(st.slabs, 0, "%llu slabs", (unsigned long long)st.slabs);
	cr_assert_eq(st.large_runs, 0);
	cr_assert_eq(heap_check(2), 0);
}

/* Freed everything: the heap serves a block of nearly the whole pool -- a
 * thread's empty slabs, which it keeps for its next allocations, go back
 * when the pool is full. */
Test(heap, an_emptied_heap_serves_nearly_the_whole_pool)
{
	static void *ps[300000];
	uintptr_t lo;
	size_t len;

	for (unsigned i = 0; i < 300000; i++)
		cr_assert_not_null(ps[i] = heap_malloc(i % 3 ? 100 : 1000));
	for (unsigned i = 0; i < 300000; i++)
		heap_free(ps[i]);
	heap_range(&lo, &len);
	void *big = heap_malloc(len - 2 * MiB);

	cr_assert_not_null(big, "%s", btd_last_error());
	heap_free(big);
	cr_assert_eq(heap_check(2), 0);
}

/* The closing thread's own empty slabs -- the current one of a class
 * included -- go too: only the slab with a live block stays. */
/* Close the heap cleanly and count the slabs the closed pool holds, as
 * `btd info` reads them (an open would collect empty slabs itself); then
 * open it again for the teardown. */
static unsigned close_and_count_slabs(void)
{
	struct pool p;
	unsigned slabs = 0;

	store_close();
	memset(&p, 0, sizeof(p));
	cr_assert_eq(pool_open(&p, path, 0, 0), 0, "%s", btd_last_error());
	struct desc_walk w = desc_walk_start(p.desc, p.heap_top, p.hdr.minor);
	struct desc_run r;

	while (desc_walk_next(&w, &r))
		slabs += DESC_KIND(r.d) == DESC_SLAB;
	pool_close(&p);
	cr_assert_eq(store_open(path, 256 * MiB, GC_AUTO, NULL), 0, "%s", btd_last_error());
	return slabs;
}

Test(heap, a_clean_close_releases_the_threads_empty_slabs)
{
	void *keep = heap_malloc(16), *ps[100];

	cr_assert_eq(roots_set("keep", keep), 0);
	for (unsigned i = 0; i < 100; i++)
		ps[i] = heap_malloc(48);
	for (unsigned i = 0; i < 100; i++)
		heap_free(ps[i]);
	unsigned slabs = close_and_count_slabs();

	cr_assert_eq(slabs, 1, "%u slabs in the closed pool", slabs);
}

/* ---- the thread's block cache ------------------------------------------ */

Test(heap, a_block_freed_into_an_older_slab_is_reused_first)
{
	enum { N = 3 * SLAB_BYTES / 512 - 8 };
	static void *ps[N];

	for (unsigned i = 0; i < N; i++)
		ps[i] = heap_malloc(512);
	/* ps[0] is in the first slab, long full; the current slab is the
	 * third, with 8 blocks never handed out.  The next block of the class is the one just freed (LIFO),
	 * warm in the cache, not a cold one of the current slab. */
	heap_free(ps[0]);
	void *q = heap_malloc(512);

	cr_assert_eq(q, ps[0], "got %p, not the block just freed (%p)", q, ps[0]);
	heap_free(ps[5]);
	heap_free(ps[N - 1]);
	cr_assert_eq(heap_malloc(512), ps[N - 1]);
	cr_assert_eq(heap_malloc(512), ps[5]);
	cr_assert_eq(heap_check(2), 0);
}

static void *free_it(void *p)
{
	heap_free(p);
	return NULL;
}

Test(heap, a_remote_free_of_a_cached_block_aborts, .signal = SIGABRT)
{
	void *p = heap_malloc(48);
	pthread_t t;

	heap_free(p); /* into this thread's cache */
	pthread_create(&t, NULL, free_it, p);
	pthread_join(t, NULL);
}

Test(heap, a_cached_block_is_free_for_the_gc_and_the_checks)
{
	void *keep = heap_malloc(48), *p = heap_malloc(48);

	cr_assert_eq(roots_set("keep", keep), 0);
	heap_free(p);
	cr_assert_not(heap_is_block(p), "a cached block counts as live");
	struct heap_stats st;

	heap_stats(&st);
	cr_assert_eq(st.small_live, 1);
	cr_assert_eq(heap_check(2), 0);
}

static void *fill_and_free(void *arg)
{
	enum { N = SLAB_BYTES / 48 };
	static void *ps[N];

	(void)arg;
	for (unsigned i = 0; i < N; i++)
		ps[i] = heap_malloc(48);
	for (unsigned i = 0; i < N; i++)
		heap_free(ps[i]);
	return NULL; /* and exit, with blocks in its cache */
}

Test(heap, a_thread_exit_gives_its_cached_blocks_back)
{
	pthread_t t;
	struct heap_stats st;

	pthread_create(&t, NULL, fill_and_free, NULL);
	pthread_join(t, NULL);
	heap_stats(&st);
	uint64_t pages = st.pages_used;

	/* The exited thread's slab is whole again: a slab's worth fits in it. */
	for (unsigned i = 0; i < SLAB_BYTES / 48; i++)
		heap_malloc(48);
	heap_stats(&st);
	cr_assert_eq(st.pages_used, pages, "%llu pages used, %llu before: cached blocks lost",
		     (unsigned long long)st.pages_used, (unsigned long long)pages);
	cr_assert_eq(heap_check(2), 0);
}

static void *free_at_random_and_exit(void *arg)
{
	enum { N = 32 * MiB / 64 };
	void **ps = malloc(N * sizeof(*ps));
	uint64_t rng = 88172645463325252ULL;

	(void)arg;
	for (unsigned i = 0; i < N; i++)
		ps[i] = heap_malloc(64);
	for (unsigned i = N - 1; i > 0; i--) { /* the blocks of many slabs in the cache */
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		unsigned j = (unsigned)(rng % (i + 1));
		void *t = ps[i];

		ps[i] = ps[j];
		ps[j] = t;
	}
	for (unsigned i = 0; i < N; i++)
		heap_free(ps[i]);
	free(ps);
	return NULL;
}

Test(heap, an_exited_threads_empty_slabs_are_not_left_parked)
{
	pthread_t t;
	struct heap_stats st;

	pthread_create(&t, NULL, free_at_random_and_exit, NULL);
	pthread_join(t, NULL);
	heap_stats(&st);
	/* Its cache emptied some slabs at its exit: kept or released, not
	 * parked, where only a thread of the same class could use them. */
	cr_assert_leq(st.slabs, HEAP_EMPTY_MAX + 2, "%llu slabs left by a thread with no live block",
		      (unsigned long long)st.slabs);
	void *big = heap_malloc((heap.pool.npages - 16 * MiB / POOL_PAGE) * POOL_PAGE);

	cr_assert_not_null(big, "a block of the whole pool less 16 MiB: %s", btd_last_error());
	heap_free(big);
}

Test(heap, a_clean_close_releases_parked_slabs_emptied_by_remote_frees)
{
	enum { N = 20000 };
	static void *blocks[N];
	struct xarg x = { blocks, N };
	pthread_t t;

	pthread_create(&t, NULL, alloc_thread, &x);
	pthread_join(t, NULL); /* its slabs are parked, full of live blocks */
	for (int i = 0; i < N; i++)
		heap_free(blocks[i]); /* remote frees into parked slabs */
	unsigned slabs = close_and_count_slabs();

	cr_assert_eq(slabs, 0, "%u slabs in the closed pool, with no live block", slabs);
}

Test(heap, a_remote_free_then_the_owners_aborts, .signal = SIGABRT)
{
	void *keep = heap_malloc(64), *p = heap_malloc(64);
	pthread_t t;

	pthread_create(&t, NULL, free_it, p); /* pending in the slab's rfree bits */
	pthread_join(t, NULL);
	heap_free(p); /* caught here: else the cache would hand p out twice */
	(void)keep;
}
