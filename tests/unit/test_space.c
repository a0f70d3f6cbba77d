/* test_space.c: free pages go back to the file system (heap/space.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../heap/heap.h"
#include "../../store/store.h"
#include "../../heap/heap_int.h"
#include "../../heap/roots.h"
#include "btd.h"

#define MiB ((size_t)1 << 20)
#define BLOCKS 64 /* of 1 MiB: 64 MiB */

static char dir[64], path[128];

static void open_pool(void)
{
	cr_assert_eq(store_open(path, 256 * MiB, GC_AUTO, NULL), 0, "%s", btd_last_error());
}

static void setup(void)
{
	strcpy(dir, "/dev/shm/btd-space-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s.pool", dir);
	open_pool();
}

static void teardown(void)
{
	store_close();
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(space, .init = setup, .fini = teardown);

/* What the pool file really holds. */
static size_t file_bytes(void)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0);
	return (size_t)st.st_blocks * 512;
}

static void sound(void)
{
	pthread_mutex_lock(&heap.lock);
	size_t bad = space_check();

	pthread_mutex_unlock(&heap.lock);
	cr_assert_eq(bad, 0, "%zu pages with a wrong backed/hole state", bad);
	cr_assert_eq(heap_check(2), 0);
}

static void fill(char **b, size_t n, int seed)
{
	for (size_t i = 0; i < n; i++) {
		b[i] = heap_malloc(MiB);
		cr_assert_not_null(b[i], "%s", btd_last_error());
		memset(b[i], seed + (int)i, MiB);
	}
}

static void verify(char **b, size_t n, int seed)
{
	for (size_t i = 0; i < n; i++)
		for (size_t off = 0; off < MiB; off += 4096)
			cr_assert_eq((unsigned char)b[i][off], (unsigned char)(seed + (int)i));
}

static void drop(char **b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		heap_free(b[i]);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000 };

	while (nanosleep(&ts, &ts))
		;
}

/* A pool that keeps a root, so that an open walks it instead of resetting. */
static char *keep(void)
{
	char *k = heap_malloc(100);

	strcpy(k, "kept");
	cr_assert_eq(roots_set("keep", k), 0, "%s", btd_last_error());
	return k;
}

Test(space, clean_close_gives_free_pages_back)
{
	char *b[BLOCKS];

	keep();
	fill(b, BLOCKS, 1);
	cr_assert_geq(file_bytes(), BLOCKS * MiB);
	drop(b, BLOCKS);
	store_close();
	cr_assert_lt(file_bytes(), 8 * MiB, "a closed pool with nothing in use holds %zu MiB",
		     file_bytes() >> 20);

	/* Reopened: the holes are taken back before they are handed out. */
	open_pool();
	cr_assert_str_eq(roots_get("keep"), "kept");
	fill(b, BLOCKS, 7);
	cr_assert_geq(file_bytes(), BLOCKS * MiB);
	verify(b, BLOCKS, 7);
	sound();
	drop(b, BLOCKS);
	store_close();
	cr_assert_lt(file_bytes(), 8 * MiB);
	open_pool();
	cr_assert_str_eq(roots_get("keep"), "kept");
}

Test(space, freed_pages_decay_while_open)
{
	char *b[BLOCKS];
	struct heap_stats st;

	keep();
	fill(b, BLOCKS, 1);
	drop(b, BLOCKS);
	/* Recently freed: still backed, for churn to reuse (free, or retained
	 * as runs: heap/retain.c). */
	cr_assert_geq(file_bytes(), BLOCKS * MiB);
	heap_stats(&st);
	cr_assert_geq(st.pages_free_backed + st.pages_retained, BLOCKS * MiB / 4096);
	sleep_ms(1200);
	/* A run operation after a decay period: the clock is looked at. */
	void *p = heap_malloc(100000);

	cr_assert_not_null(p);
	cr_assert_lt(file_bytes(), 8 * MiB, "free pages still held %zu MiB after the decay period",
		     file_bytes() >> 20);
	heap_stats(&st);
	cr_assert_geq(st.pages_returned, (BLOCKS - 2) * MiB / 4096);
	cr_assert_gt(st.punch_calls, 0);
	sound();
	heap_free(p);
}

Test(space, punched_pages_are_backed_before_reuse)
{
	char *b[BLOCKS];
	struct heap_stats st0, st1;

	keep();
	fill(b, BLOCKS, 1);
	drop(b, BLOCKS);
	sleep_ms(1200);
	heap_free(heap_malloc(100000)); /* the tick: punched */
	cr_assert_lt(file_bytes(), 8 * MiB);
	heap_stats(&st0);
	/* The same pages again: backed by the allocation, before any write. */
	for (size_t i = 0; i < BLOCKS; i++) {
		b[i] = heap_malloc(MiB);
		cr_assert_not_null(b[i]);
	}
	cr_assert_geq(file_bytes(), BLOCKS * MiB, "handed out %zu MiB while the file holds %zu",
		      BLOCKS * MiB >> 20, file_bytes() >> 20);
	heap_stats(&st1);
	cr_assert_gt(st1.back_calls, st0.back_calls);
	cr_assert_lt(st1.pages_returned, st0.pages_returned);
	sound();
	/* A punched page reads as zero (the last block lies past the pages the
	 * trigger's allocation reused). */
	for (size_t off = 0; off < MiB; off += 4096)
		cr_assert_eq(b[BLOCKS - 1][off], 0);
	for (size_t i = 0; i < BLOCKS; i++)
		memset(b[i], 3 + (int)i, MiB);
	verify(b, BLOCKS, 3);
	drop(b, BLOCKS);
}

/* Runs merge from pages in every state: holes, aged, fresh. */
Test(space, merged_runs_keep_each_page_state)
{
	char *b[BLOCKS];

	keep();
	fill(b, BLOCKS, 1);
	for (size_t i = 0; i < BLOCKS; i += 2)
		heap_free(b[i]);
	sleep_ms(1200);
	heap_free(heap_malloc(100000)); /* even blocks punched */
	sound();
	for (size_t i = 1; i < BLOCKS; i += 2)
		heap_free(b[i]); /* odd ones fresh: merged runs of both */
	sound();
	char *big = heap_malloc(BLOCKS / 2 * MiB); /* across holes and backed pages */

	cr_assert_not_null(big);
	sound();
	memset(big, 5, BLOCKS / 2 * MiB);
	/* Grow it in place into what follows (holes or not). */
	char *bigger = heap_realloc(big, (BLOCKS - 4) * MiB);

	cr_assert_not_null(bigger);
	sound();
	memset(bigger + BLOCKS / 2 * MiB, 6, (BLOCKS / 2 - 4) * MiB);
	cr_assert_eq(bigger[0], 5);
	heap_free(bigger);
	sound();
}

Test(space, churn_makes_no_system_calls)
{
	struct heap_stats st0, st1;
	void *live[8] = { 0 };
	size_t sizes[3] = { 256 << 10, MiB, 300 << 10 };
	long i = 0;

	keep();
	for (int phase = 0; phase < 2; phase++) {
		struct timespec t0, t;

		heap_stats(&st0);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		do {
			if (live[i % 8])
				heap_free(live[i % 8]);
			live[i % 8] = heap_malloc(sizes[i % 3]);
			cr_assert_not_null(live[i % 8]);
			memset(live[i % 8], (int)i, 4096);
			i++;
			clock_gettime(CLOCK_MONOTONIC, &t);
		} while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 <
			 (phase ? 700 : 1300)); /* warm-up past two ticks, then measure */
	}
	heap_stats(&st1);
	cr_assert_eq(st1.punch_calls + st1.back_calls, st0.punch_calls + st0.back_calls,
		     "steady churn made %llu punches and %llu backs",
		     (unsigned long long)(st1.punch_calls - st0.punch_calls),
		     (unsigned long long)(st1.back_calls - st0.back_calls));
	for (int k = 0; k < 8; k++)
		heap_free(live[k]);
	sound();
}

/* At exit the mapping stays for late destructors: free pages go, live
 * blocks stay. */
Test(space, exit_punches_free_pages_only)
{
	char *b[BLOCKS];

	keep();
	fill(b, BLOCKS, 1);
	for (size_t i = 1; i < BLOCKS; i++)
		heap_free(b[i]);
	cr_assert_eq(store_exit(), 1);
	cr_assert_lt(file_bytes(), 8 * MiB);
	verify(b, 1, 1);
}

/* After a crash nothing is known of the free pages: the open gives them
 * back. */
Test(space, open_after_crash_gives_free_pages_back)
{
	char *b[BLOCKS];
	struct heap_open_info info;

	keep();
	fill(b, BLOCKS, 1);
	drop(b, BLOCKS);
	store_abandon();
	cr_assert_geq(file_bytes(), BLOCKS * MiB);
	cr_assert_eq(store_open(path, 256 * MiB, GC_AUTO, &info), 0, "%s", btd_last_error());
	cr_assert(info.was_dirty);
	cr_assert_lt(file_bytes(), 8 * MiB);
	sound();
	fill(b, BLOCKS, 9);
	verify(b, BLOCKS, 9);
	sound();
}

/* A hole that cannot be backed again (here: the pool file cannot be
 * reopened) fails the allocation cleanly, and nothing is lost. */
Test(space, a_hole_that_cannot_be_backed_fails_the_allocation)
{
	char *b[BLOCKS], moved[160];

	keep();
	fill(b, BLOCKS, 1);
	drop(b, BLOCKS);
	sleep_ms(1200);
	heap_free(heap_malloc(100000)); /* punched */
	cr_assert_lt(file_bytes(), 8 * MiB);
	snprintf(moved, sizeof(moved), "%s.moved", path);
	cr_assert_eq(rename(path, moved), 0);
	errno = 0;
	cr_assert_null(heap_malloc(32 * MiB));
	cr_assert_eq(errno, ENOMEM);
	cr_assert_neq(strlen(btd_last_error()), 0);
	sound();
	cr_assert_eq(rename(moved, path), 0);
	char *p = heap_malloc(32 * MiB);

	cr_assert_not_null(p, "%s", btd_last_error());
	memset(p, 1, 32 * MiB);
	sound();
	heap_free(p);
}

/* Runs kept for reuse (heap/retain.c) decay like free pages: unused for a
 * period, they are released and punched at the next run operation. */
Test(space, retained_runs_decay_too)
{
	char *b[BLOCKS];
	struct heap_stats st;

	keep();
	for (unsigned i = 0; i < BLOCKS; i++)
		cr_assert_not_null(b[i] = heap_malloc(1 * MiB - 8192));
	for (unsigned i = 0; i < BLOCKS; i++)
		memset(b[i], 1, 1 * MiB - 8192);
	for (unsigned i = 0; i < BLOCKS; i++)
		heap_free(b[i]);
	heap_stats(&st);
	cr_assert_gt(st.pages_retained, 0);
	sleep_ms(1200);
	void *p = heap_malloc(1 * MiB - 8192); /* the size they were: still a tick first */

	cr_assert_not_null(p);
	heap_stats(&st);
	cr_assert_eq(st.pages_retained, 0);
	cr_assert_lt(file_bytes(), 8 * MiB, "retained runs still held %zu MiB after the decay period",
		     file_bytes() >> 20);
	sound();
	heap_free(p);
}
