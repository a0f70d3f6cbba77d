/* test_pool.c: creating, reopening and refusing pool files. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../heap/heap.h"
#include "../../store/store.h"
#include "../../heap/heap_int.h"
#include "../../heap/roots.h"
#include "btd.h"

static char dir[64], path[128];

static void setup(void)
{
	strcpy(dir, "/dev/shm/btd-test-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/p.pool", dir);
}

static void teardown(void)
{
	store_close();
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(pool, .init = setup, .fini = teardown);

#define MiB ((size_t)1 << 20)

static void write_file(const char *p, const void *buf, size_t n)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, buf, n), (ssize_t)n);
	close(fd);
}

/* The whole file, to show that a refused open changed nothing. */
static char *slurp(const char *p, size_t *n)
{
	int fd = open(p, O_RDONLY);
	struct stat st;

	cr_assert_geq(fd, 0);
	fstat(fd, &st);
	char *buf = malloc((size_t)st.st_size + 1);

	cr_assert_eq(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	*n = (size_t)st.st_size;
	return buf;
}

static void refused_unchanged(const char *p, int want, const char *words)
{
	size_t n0, n1;
	char *before = slurp(p, &n0);

	cr_assert_eq(store_open(p, 64 * MiB, GC_AUTO, NULL), want, "%s", btd_last_error());
	cr_assert(strstr(btd_last_error(), words), "message '%s' lacks '%s'",
		  btd_last_error(), words);
	char *after = slurp(p, &n1);

	cr_assert_eq(n0, n1);
	cr_assert(!memcmp(before, after, n0), "the refused file was changed");
	free(before);
	free(after);
}

Test(pool, create_reopen_same_base_and_contents)
{
	struct heap_open_info info;

	cr_assert_eq(store_open(path, 64 * MiB, GC_AUTO, &info), 0, "%s", btd_last_error());
	char *p = heap_malloc(100);

	strcpy(p, "persistent");
	cr_assert_eq(roots_set("r", p), 0);
	void *base = heap.pool.base;

	store_close();
	cr_assert_eq(store_open(path, 64 * MiB, GC_AUTO, &info), 0, "%s", btd_last_error());
	cr_assert_eq(heap.pool.base, base, "reopened at another address");
	cr_assert(!info.was_dirty);
	cr_assert_eq(roots_get("r"), p);
	cr_assert_str_eq(roots_get("r"), "persistent");
	cr_assert_eq(heap_check(2), 0);
}

Test(pool, a_pool_takes_space_as_it_grows)
{
	struct stat st;

	cr_assert_eq(store_open(path, 1024 * MiB, GC_AUTO, NULL), 0);
	stat(path, &st);
	cr_assert_eq(st.st_size, (off_t)1024 * MiB, "the file spans the reservation");
	cr_assert_lt(st.st_blocks * 512, 2 * MiB, "but holds only what is used: %lld",
		     (long long)st.st_blocks * 512);
	for (int i = 0; i < 100; i++)
		cr_assert_not_null(heap_malloc(100000));
	stat(path, &st);
	cr_assert_gt(st.st_blocks * 512, 10 * MiB);
	cr_assert_lt(st.st_blocks * 512, 40 * MiB);
}

Test(pool, not_a_pool_is_refused_and_left_alone)
{
	char junk[20000];

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 7 + 3);
	write_file(path, junk, sizeof(junk));
	refused_unchanged(path, BTD_ERR_FORMAT, "is not a btd pool");
}

Test(pool, empty_file_is_refused)
{
	write_file(path, "", 0);
	refused_unchanged(path, BTD_ERR_FORMAT, "is not a btd pool");
}

Test(pool, corrupt_headers_are_refused)
{
	cr_assert_eq(store_open(path, 16 * MiB, GC_AUTO, NULL), 0);
	store_close();
	int fd = open(path, O_RDWR);

	/* Flip a byte in each header copy: both checksums fail. */
	for (int slot = 0; slot < 2; slot++) {
		char c;

		pread(fd, &c, 1, slot * POOL_HEADER_SLOT + 40);
		c ^= 0x40;
		pwrite(fd, &c, 1, slot * POOL_HEADER_SLOT + 40);
	}
	close(fd);
	refused_unchanged(path, BTD_ERR_FORMAT, "corrupt");
}

Test(pool, one_torn_header_copy_is_survived)
{
	cr_assert_eq(store_open(path, 16 * MiB, GC_AUTO, NULL), 0);
	void *p = heap_malloc(10);

	roots_set("x", p);
	store_close();
	/* Tear the newest copy: the older one is used. */
	struct pool_header h[2];
	int fd = open(path, O_RDWR);

	pread(fd, &h[0], sizeof(h[0]), 0);
	pread(fd, &h[1], sizeof(h[1]), POOL_HEADER_SLOT);
	int newest = h[1].epoch > h[0].epoch;

	pwrite(fd, "XXXX", 4, newest * POOL_HEADER_SLOT + 100);
	close(fd);
	cr_assert_eq(store_open(path, 16 * MiB, GC_AUTO, NULL), 0, "%s", btd_last_error());
	cr_assert_eq(roots_get("x"), p);
}

Test(pool, other_format_version_is_refused)
{
	cr_assert_eq(store_open(path, 16 * MiB, GC_AUTO, NULL), 0);
	store_close();
	int fd = open(path, O_RDWR);

	for (int slot = 0; slot < 2; slot++) {
		struct pool_header h;

		pread(fd, &h, sizeof(h), slot * POOL_HEADER_SLOT);
		h.major = 9;
		h.checksum = pool_checksum(&h, offsetof(struct pool_header, checksum));
		pwrite(fd, &h, sizeof(h), slot * POOL_HEADER_SLOT);
	}
	close(fd);
	refused_unchanged(path, BTD_ERR_VERSION, "format 9.");
}

Test(pool, truncated_pool_is_refused)
{
	cr_assert_eq(store_open(path, 16 * MiB, GC_AUTO, NULL), 0);
	store_close();
	cr_assert_eq(truncate(path, 8 * MiB), 0);
	refused_unchanged(path, BTD_ERR_FORMAT, "truncated");
}

Test(pool, a_directory_is_refused)
{
	cr_assert_eq(store_open(dir, 16 * MiB, GC_AUTO, NULL), BTD_ERR_FORMAT);
	cr_assert(strstr(btd_last_error(), "is a directory"), "%s", btd_last_error());
}

Test(pool, no_permission_is_refused)
{
	cr_assert_eq(store_open(path, 16 * MiB, GC_AUTO, NULL), 0);
	store_close();
	chmod(path, 0400);
	if (geteuid() == 0) { /* root reads anything: take the directory away instead */
		char deep[160];

		snprintf(deep, sizeof(deep), "%s/sub/p.pool", dir);
		cr_assert_eq(store_open(deep, 16 * MiB, GC_AUTO, NULL), BTD_ERR_NOENT);
		return;
	}
	refused_unchanged(path, BTD_ERR_PERM, "Permission denied");
}

Test(pool, taken_address_range_is_refused)
{
	cr_assert_eq(store_open(path, 16 * MiB, GC_AUTO, NULL), 0);
	void *base = heap.pool.base;

	store_close();
	void *m = mmap(base, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	cr_assert_eq(m, base);
	refused_unchanged(path, BTD_ERR_ADDR, "is taken in this process");
	munmap(m, 4096);
	cr_assert_eq(store_open(path, 16 * MiB, GC_AUTO, NULL), 0, "%s", btd_last_error());
}

Test(pool, second_process_gets_busy)
{
	cr_assert_eq(store_open(path, 16 * MiB, GC_AUTO, NULL), 0);
	/* A child that is not our fork (a fresh exec would be the same):
	 * simulate with a new open file description. */
	pid_t pid = fork();

	if (pid == 0) {
		store_abandon();
		int st = store_open(path, 16 * MiB, GC_AUTO, NULL);

		_exit(st == BTD_ERR_BUSY && strstr(btd_last_error(), "open in another process") ? 0 : 1);
	}
	int status;

	waitpid(pid, &status, 0);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

Test(pool, full_pool_returns_enomem_and_recovers)
{
	cr_assert_eq(store_open(path, 4 * MiB, GC_AUTO, NULL), 0);
	size_t n = 0;
	void *last = NULL;

	errno = 0;
	for (void *p; (p = heap_malloc(1000)); n++)
		last = p;
	cr_assert_eq(errno, ENOMEM);
	cr_assert_gt(n, 2000);
	cr_assert_null(heap_malloc(1 << 20));
	heap_free(last);
	cr_assert_not_null(heap_malloc(1000), "a freed block is usable again");
	cr_assert_eq(heap_check(2), 0);
}

Test(pool, rootless_pool_is_reset_at_open)
{
	struct heap_open_info info;
	struct stat st;

	cr_assert_eq(store_open(path, 64 * MiB, GC_AUTO, NULL), 0);
	for (int i = 0; i < 1000; i++)
		heap_malloc(10000);
	store_abandon(); /* a crash, no roots */
	cr_assert_eq(store_open(path, 64 * MiB, GC_AUTO, &info), 0);
	cr_assert(info.was_dirty && info.reset && !info.collected);
	stat(path, &st);
	cr_assert_lt(st.st_blocks * 512, 1 * MiB, "reset gives the space back");
	cr_assert_eq(heap_check(2), 0);
}
