/* pool_cmds.c: btd info and btd check.
 *
 * info reads the pool without writing a byte or taking its lock: the two
 * header copies, the root table, and -- for a cleanly closed pool -- the
 * descriptors and bitmap, mapped read-only at any address.  check opens the
 * pool as a program would (a dirty pool is recovered first), then runs
 * heap_check and the reachability audit, and closes it cleanly. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/settings.h"
#include "../heap/heap.h"
#include "../heap/heap_int.h"
#include "../recovery/recovery.h"
#include "btd.h"
#include "pool_cmds.h"

static int newest_header(int fd, struct pool_header *out)
{
	struct pool_header h[2];
	int ok[2];

	for (int i = 0; i < 2; i++) {
		ok[i] = pread(fd, &h[i], sizeof(h[i]), (off_t)i * POOL_HEADER_SLOT) == sizeof(h[i]) &&
			!memcmp(h[i].magic, POOL_MAGIC, 8) &&
			h[i].checksum == pool_checksum(&h[i], offsetof(struct pool_header, checksum));
	}
	if (!ok[0] && !ok[1])
		return -1;
	*out = h[ok[0] && ok[1] ? h[1].epoch > h[0].epoch : ok[1]];
	return 0;
}

int cmd_info(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct pool_header h;
	struct stat st;

	if (fd < 0) {
		fprintf(stderr, "btd info: cannot open %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || newest_header(fd, &h)) {
		fprintf(stderr, "btd info: %s is not a btd pool (no valid header)\n", path);
		close(fd);
		return 1;
	}
	char uuid[40];

	for (int i = 0; i < 16; i++)
		snprintf(uuid + 2 * i, 3, "%02x", h.uuid[i]);
	printf("pool        %s\n", path);
	printf("format      %u.%u\n", h.major, h.minor);
	printf("uuid        %s\n", uuid);
	printf("base        0x%llx\n", (unsigned long long)h.base);
	printf("reserved    %llu MiB (%llu data pages)\n", (unsigned long long)(h.size >> 20),
	       (unsigned long long)h.npages);
	printf("backed      %llu MiB of data; file holds %llu MiB\n",
	       (unsigned long long)(h.heap_top * POOL_PAGE >> 20),
	       (unsigned long long)((uint64_t)st.st_blocks * 512 >> 20));
	printf("state       %s\n", h.clean ? "clean" : h.owner_pid ?
	       "open (or crashed) -- the next open recovers it" : "dirty -- the next open recovers it");
	if (!h.clean && h.owner_pid)
		printf("owner pid   %llu\n", (unsigned long long)h.owner_pid);
	printf("opens       %llu (%llu after a crash)\n", (unsigned long long)h.opens,
	       (unsigned long long)h.crashes);

	if ((uint64_t)st.st_size != h.size) {
		/* Mapped past its end, the file would SIGBUS on the first read. */
		fprintf(stderr, "btd info: %s is %lld bytes but its header says %llu: truncated "
			"or extended by something else; roots and usage cannot be read\n", path,
			(long long)st.st_size, (unsigned long long)h.size);
		close(fd);
		return 1;
	}
	char *m = mmap(NULL, h.size, PROT_READ, MAP_SHARED, fd, 0);

	close(fd);
	if (m == MAP_FAILED) {
		fprintf(stderr, "btd info: cannot map %s: %s\n", path, strerror(errno));
		return 1;
	}
	const struct pool_root *roots = (const void *)(m + POOL_ROOTS_OFF);
	unsigned nroots = 0;

	for (unsigned i = 0; i < POOL_ROOTS_MAX; i++)
		nroots += roots[i].tag != 0;
	printf("roots       %u\n", nroots);
	for (unsigned i = 0; i < POOL_ROOTS_MAX; i++)
		if (roots[i].tag)
			printf("  %-47.47s 0x%llx\n", roots[i].name, (unsigned long long)roots[i].ptr);
	const uint64_t *desc = (const void *)(m + h.desc_off);
	const uint64_t *bits = (const void *)(m + h.bitmap_off);
	uint64_t slabs = 0, large = 0, pages = 0, blocks = 0;

	for (uint64_t pg = 0; pg < h.heap_top;) {
		uint64_t d = desc[pg], n = 1;

		if (DESC_KIND(d) == DESC_SLAB && DESC_SLAB_PAGES(d) == SLAB_PAGES) {
			slabs++;
			n = SLAB_PAGES;
		} else if (DESC_KIND(d) == DESC_LARGE && DESC_LARGE_PAGES(d) &&
			   DESC_LARGE_PAGES(d) <= h.heap_top - pg) {
			large++;
			n = DESC_LARGE_PAGES(d);
		} else {
			pg++;
			continue;
		}
		pages += n;
		pg += n;
	}
	for (uint64_t w = 0; w < h.heap_top * POOL_PAGE / POOL_GRANULE / 64; w++)
		blocks += (uint64_t)__builtin_popcountll(bits[w]);
	printf("used        %llu MiB in %llu slabs and %llu large blocks\n",
	       (unsigned long long)(pages * POOL_PAGE >> 20), (unsigned long long)slabs,
	       (unsigned long long)large);
	if (h.clean)
		printf("live blocks %llu\n", (unsigned long long)blocks);
	else
		printf("live blocks unknown until recovery (about %llu before it)\n",
		       (unsigned long long)blocks);
	munmap(m, h.size);
	return 0;
}

int cmd_check(const char *path)
{
	struct heap_open_info info;

	if (access(path, F_OK)) {
		fprintf(stderr, "btd check: no pool at %s\n", path);
		return 1;
	}
	int st = heap_open(path, 0, GC_AUTO, &info);

	if (st) {
		fprintf(stderr, "btd check: %s\n", btd_last_error());
		return 1;
	}
	if (info.reset)
		printf("rootless pool: reset\n");
	else if (info.collected)
		printf("recovered: kept %llu blocks (%llu bytes), reclaimed %llu blocks "
		       "(%llu bytes) in %.1f ms\n",
		       (unsigned long long)info.kept_blocks, (unsigned long long)info.kept_bytes,
		       (unsigned long long)info.freed_blocks, (unsigned long long)info.freed_bytes,
		       (double)info.gc_ns / 1e6);
	unsigned long bad = heap_check(STDOUT_FILENO);
	struct recovery_audit a;

	recovery_audit(&a);
	printf("blocks      %llu allocated, %llu reachable from %u roots\n",
	       (unsigned long long)a.allocated, (unsigned long long)a.reachable,
	       recovery_root_count());
	if (a.reachable_free)
		printf("btd check: %llu reachable blocks are free\n",
		       (unsigned long long)a.reachable_free);
	if (a.leaked)
		printf("btd check: %llu allocated blocks are unreachable (leaked)\n",
		       (unsigned long long)a.leaked);
	heap_close();
	int ok = !bad && !a.reachable_free;

	printf("%s\n", ok ? "ok" : "PROBLEMS FOUND");
	return ok ? 0 : 1;
}
