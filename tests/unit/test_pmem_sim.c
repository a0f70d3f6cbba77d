/* test_pmem_sim.c: the simulated power failure itself (heap/pmem_sim.c):
 * what was flushed and drained survives, what was not survives in about
 * half the seeds, and a lost word comes back with its durable value. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../heap/pmem.h"
#include "../../heap/pmem_sim.h"

#define LEN ((size_t)1 << 20)
#define SEEDS 400
#define W(i) (map[(i)])

static char dir[64], path[128];
static int fd = -1;
static uint64_t *map;

static void setup(void)
{
	strcpy(dir, "/dev/shm/btd-sim-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sim.pool", dir);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)LEN), 0);
	map = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(map, MAP_FAILED);
}

static void teardown(void)
{
	pmem_sim_remove();
	munmap(map, LEN);
	close(fd);
	unlink(path);
	rmdir(dir);
}

TestSuite(pmem_sim, .init = setup, .fini = teardown);

/* An empty file, simulated with this seed from now on. */
static void power_on(uint64_t seed)
{
	cr_assert_eq(ftruncate(fd, 0), 0);
	cr_assert_eq(ftruncate(fd, (off_t)LEN), 0);
	pmem_sim_install(seed);
	pmem_select(map, LEN, 0);
	cr_assert_str_eq(pmem_backend().ops->name, "sim");
}

static void persist(const void *p, size_t n)
{
	pmem_flush_why(p, n, PMEM_WHY_USER);
	pmem_drain_why(PMEM_WHY_USER);
}

/* The word at i as the file holds it (not through the mapping). */
static uint64_t file_word(size_t i)
{
	uint64_t v;

	cr_assert_eq(pread(fd, &v, sizeof(v), (off_t)(i * sizeof(v))), (ssize_t)sizeof(v));
	return v;
}

Test(pmem_sim, flushed_and_drained_always_survives)
{
	for (uint64_t seed = 0; seed < SEEDS; seed++) {
		power_on(seed);
		W(0) = 0x1111;
		W(8) = 0x2222;
		persist(&W(0), 8);
		persist(&W(8), 8);
		W(8) = 0x3333; /* and changed after: that one may go */
		cr_assert_eq(pmem_sim_power_fail(NULL), 1);
		cr_assert_eq(file_word(0), 0x1111, "seed %llu", (unsigned long long)seed);
		cr_assert(file_word(8) == 0x2222 || file_word(8) == 0x3333);
	}
}

/* Over the seeds: how often the word at i kept the value the test stored
 * last, after fill() -- and the others must be the old value exactly. */
static unsigned survivals(void (*fill)(void), size_t i, uint64_t stored, uint64_t old)
{
	unsigned kept = 0;

	for (uint64_t seed = 0; seed < SEEDS; seed++) {
		power_on(seed);
		fill();
		pmem_sim_power_fail(NULL);
		uint64_t v = file_word(i);

		cr_assert(v == stored || v == old, "seed %llu: word %zu is %llx, neither the new "
			  "%llx nor the old %llx", (unsigned long long)seed, i,
			  (unsigned long long)v, (unsigned long long)stored,
			  (unsigned long long)old);
		kept += v == stored;
	}
	return kept;
}

/* A coin per seed: between 40% and 60% of the seeds. */
static void about_half(unsigned kept)
{
	cr_assert(kept > SEEDS * 4 / 10 && kept < SEEDS * 6 / 10, "kept in %u of %u seeds", kept,
		  SEEDS);
}

static void never_flushed(void)
{
	W(100) = 0xaaaa;
	persist(&W(100), 8);
	W(100) = 0xbbbb;
}

Test(pmem_sim, a_word_never_flushed_survives_in_about_half_the_seeds)
{
	about_half(survivals(never_flushed, 100, 0xbbbb, 0xaaaa));
}

static void flushed_not_drained(void)
{
	W(200) = 0xcccc;
	pmem_flush_why(&W(200), 8, PMEM_WHY_USER);
}

Test(pmem_sim, a_word_flushed_not_drained_survives_in_about_half_the_seeds)
{
	about_half(survivals(flushed_not_drained, 200, 0xcccc, 0));
}

/* A flush writes back the line as it is then: a store after the flush is
 * not made durable by the drain. */
static void stored_after_flush(void)
{
	W(300) = 0xdddd;
	pmem_flush_why(&W(300), 8, PMEM_WHY_USER);
	W(300) = 0xeeee;
	pmem_drain_why(PMEM_WHY_USER);
}

Test(pmem_sim, a_drain_makes_durable_what_was_flushed_not_what_came_after)
{
	about_half(survivals(stored_after_flush, 300, 0xeeee, 0xdddd));
}

/* A drain makes durable what its own thread flushed, not another's. */
static void *flush_only(void *arg)
{
	(void)arg;
	W(250) = 0x2525;
	pmem_flush_why(&W(250), 8, PMEM_WHY_USER);
	return NULL;
}

static void flushed_by_another_thread(void)
{
	pthread_t t;

	cr_assert_eq(pthread_create(&t, NULL, flush_only, NULL), 0);
	pthread_join(t, NULL);
	pmem_drain_why(PMEM_WHY_USER);
}

Test(pmem_sim, a_drain_makes_durable_only_its_own_threads_flushes)
{
	about_half(survivals(flushed_by_another_thread, 250, 0x2525, 0));
}

/* The whole cache line is written back, not just the flushed bytes. */
static void neighbour_in_the_line(void)
{
	W(401) = 0x4141;
	W(400) = 0x4040;
	persist(&W(400), 8);
}

Test(pmem_sim, a_flush_takes_the_whole_cache_line)
{
	cr_assert_eq(survivals(neighbour_in_the_line, 401, 0x4141, 0), SEEDS);
}

/* Each word throws its own coin: two words of one line are not lost
 * together. */
Test(pmem_sim, words_of_one_line_are_judged_apart)
{
	unsigned seen[4] = { 0 };

	for (uint64_t seed = 0; seed < 64; seed++) {
		power_on(seed);
		W(500) = 1;
		W(501) = 1;
		pmem_sim_power_fail(NULL);
		seen[file_word(500) * 2 + file_word(501)]++;
	}
	for (unsigned i = 0; i < 4; i++)
		cr_assert_gt(seen[i], 0, "combination %u never seen", i);
}

/* What the file held when the mapping was wrapped is on the media. */
Test(pmem_sim, the_file_as_wrapped_is_durable)
{
	for (uint64_t seed = 0; seed < 64; seed++) {
		cr_assert_eq(ftruncate(fd, 0), 0);
		cr_assert_eq(ftruncate(fd, (off_t)LEN), 0);
		W(600) = 0x6060;
		W(LEN / 8 - 1) = 0x6161;
		pmem_sim_install(seed);
		pmem_select(map, LEN, 0);
		cr_assert_eq(pmem_sim_power_fail(NULL), 0);
		cr_assert_eq(file_word(600), 0x6060);
		cr_assert_eq(file_word(LEN / 8 - 1), 0x6161);
	}
}

/* A page punched out of the file is durable zeros: it does not come back,
 * not even as a page backed again later. */
Test(pmem_sim, a_punched_page_stays_zero)
{
	size_t page = 4096 / 8;

	for (uint64_t seed = 0; seed < 64; seed++) {
		power_on(seed);
		W(0) = 1;
		W(3 * page) = 0x7070;
		W(3 * page + 1) = 0x7171;
		persist(&W(0), 8);
		persist(&W(3 * page), 16);
		cr_assert_eq(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 3 * 4096,
				       4096), 0);
		W(0) = 2;
		persist(&W(0), 8); /* a drain after the punch */
		cr_assert_eq(fallocate(fd, 0, 3 * 4096, 4096), 0);
		W(3 * page + 1) = 0x7272; /* never flushed: zero or this */
		pmem_sim_power_fail(NULL);
		cr_assert_eq(file_word(3 * page), 0);
		cr_assert(file_word(3 * page + 1) == 0 || file_word(3 * page + 1) == 0x7272);
	}
}

/* After the power failure the backend only passes through, and a new
 * mapping starts again. */
Test(pmem_sim, one_failure_per_mapping)
{
	power_on(1);
	for (size_t i = 0; i < 64; i++)
		W(700 + i) = i + 1;
	cr_assert_eq(pmem_sim_power_fail(NULL), 64);
	cr_assert_eq(pmem_sim_power_fail(NULL), 0);
	pmem_select(map, LEN, 0);
	W(800) = 5;
	cr_assert_eq(pmem_sim_power_fail(NULL), 1);
}

/* The decorator forwards: the backend underneath still flushes. */
Test(pmem_sim, the_backend_underneath_is_kept)
{
	pmem_select(map, LEN, 0);
	cr_assert_str_eq(pmem_backend().ops->name, "msync");
	pmem_sim_install(3);
	cr_assert_str_eq(pmem_backend().ops->name, "sim");
	pmem_sim_remove();
	cr_assert_str_eq(pmem_backend().ops->name, "msync");
}
