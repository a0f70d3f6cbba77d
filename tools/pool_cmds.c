/* pool_cmds.c: btd info and btd check.
 *
 * info reads the pool without writing a byte or taking its lock: the
 * header (pool_read_header), the root table, and the descriptors and
 * bitmap walked with the format's own rule (desc_run_pages), mapped
 * read-only at any address; the process that has the pool open is found
 * in /proc (pool_holder).
 *
 * check runs the recovery a program's open would run, then the heap
 * checker and the reachability audit.  Without --repair it works on a
 * private copy-on-write view of the pool (pool_set_private): the file is
 * never written.  With --repair it opens the pool for writing, lets the
 * recovery clear damaged roots, restore lost runs (and open the pool
 * again), collect leaked blocks, and closes it cleanly.  Exit status: 0
 * clean, 1 problems found (and, with --repair, repaired), 2 the pool cannot
 * be checked or repaired. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/settings.h"
#include "../heap/heap.h"
#include "../heap/heap_int.h"
#include "../heap/tx.h"
#include "../net/repl.h"
#include "../recovery/recovery.h"
#include "../store/store.h"
#include "btd.h"
#include "pool_cmds.h"

static void print_state(const struct pool_header *h, const struct stat *st)
{
	char name[32];
	long pid = pool_holder(st->st_dev, st->st_ino, (long)h->owner_pid, name, sizeof(name));

	if (pid)
		printf("state       open in pid %ld (%s)\n", pid, name);
	else if (h->clean)
		printf("state       clean\n");
	else if (h->owner_pid)
		printf("state       crashed (pid %llu had it open and is gone) -- the next open "
		       "recovers it\n", (unsigned long long)h->owner_pid);
	else
		printf("state       dirty -- the next open recovers it\n");
}

/* The transaction logs, read with the format's one reader. */
static void print_logs(const struct pool_header *h, const char *m, int open_now)
{
	unsigned used = 0, live = 0;
	uint64_t ranges = 0, bytes = 0;

	if (!h->log_off || h->log_off + h->log_slots * h->log_bytes > h->size ||
	    h->log_slots > 64) {
		printf("logs        none (format %u.%u has no transactions)\n", h->major, h->minor);
		return;
	}
	for (uint64_t s = 0; s < h->log_slots; s++) {
		const char *slot = m + h->log_off + s * h->log_bytes;
		uint64_t b;
		unsigned n = tx_log_scan(slot, h->log_bytes, &b, NULL);

		used += ((const struct tx_log_head *)slot)->gen != 0;
		if (n) {
			live++;
			ranges += n;
			bytes += b;
			printf("  log %-3llu  in flight: %u ranges, %llu bytes of snapshots\n",
			       (unsigned long long)s, n, (unsigned long long)b);
		}
	}
	printf("logs        %llu of %llu KiB, %u used so far, %u in flight", (unsigned long long)h->log_slots,
	       (unsigned long long)(h->log_bytes >> 10), used, live);
	if (live)
		printf(" (%llu ranges, %llu bytes): %s", (unsigned long long)ranges,
		       (unsigned long long)bytes, open_now ? "their threads may still commit "
		       "(the pool is open)" : "the next open rolls them back");
	printf("\n");
}

int cmd_info(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct pool_header h;
	struct stat st;
	int bad_copy;

	if (fd < 0) {
		fprintf(stderr, "btd info: cannot open %s: %s\n", path, strerror(errno));
		return 2;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || pool_read_header(fd, &h, &bad_copy) < 0) {
		fprintf(stderr, "btd info: %s is not a btd pool (no valid header)\n", path);
		close(fd);
		return 2;
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
	printf("grown to    %llu MiB of data; the file holds %llu MiB\n",
	       (unsigned long long)(h.heap_top * POOL_PAGE >> 20),
	       (unsigned long long)((uint64_t)st.st_blocks * 512 >> 20));
	print_state(&h, &st);
	printf("opens       %llu (%llu after a crash)\n", (unsigned long long)h.opens,
	       (unsigned long long)h.crashes);
	if (bad_copy >= 0)
		printf("header      copy %d is damaged; the next open repairs it from copy %d\n",
		       bad_copy, !bad_copy);
	if (h.last_recovery) {
		time_t t = (time_t)h.last_recovery;
		struct tm tm;
		char when[64];

		if (!localtime_r(&t, &tm) || !strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm))
			snprintf(when, sizeof(when), "time %llu (not a date)",
				 (unsigned long long)h.last_recovery);
		printf("recovery    last at %s: kept %llu blocks, reclaimed %llu, rolled back %llu "
		       "transactions, in %.1f ms\n", when, (unsigned long long)h.last_kept,
		       (unsigned long long)h.last_freed, (unsigned long long)h.last_rolled_back,
		       (double)h.last_us / 1e3);
	}
	const char *nodes = getenv("BTD_REPLICAS");

	if (nodes && *nodes) {
		/* Ask each node what it holds of this pool. */
		struct repl_config c = { .nodes = nodes, .key_file = getenv("BTD_KEY_FILE") };

		printf("replicas    %s\n", nodes);
		fflush(stdout);
		repl_describe(&c, h.uuid, 1);
	}

	if ((uint64_t)st.st_size != h.size || h.major != POOL_FORMAT_MAJOR ||
	    h.desc_off >= h.size || h.bitmap_off >= h.size || h.heap_top > h.npages) {
		/* Mapped past its end, the file would SIGBUS on the first read. */
		fprintf(stderr, "btd info: %s is %lld bytes but its header says %llu: truncated "
			"or extended by something else; roots and usage cannot be read\n", path,
			(long long)st.st_size, (unsigned long long)h.size);
		close(fd);
		return 2;
	}
	struct pool_header lay = h;

	if (pool_layout(h.size, h.log_off != 0, &lay) || lay.desc_off != h.desc_off ||
	    lay.bitmap_off != h.bitmap_off || lay.npages != h.npages ||
	    lay.log_off != h.log_off || lay.log_slots != h.log_slots ||
	    lay.log_bytes != h.log_bytes) {
		/* The descriptors and the bitmap would be read past the file. */
		fprintf(stderr, "btd info: %s has an inconsistent header (its layout does not "
			"match its size); roots and usage cannot be read\n", path);
		close(fd);
		return 2;
	}
	char *m = mmap(NULL, h.size, PROT_READ, MAP_SHARED, fd, 0);

	close(fd);
	if (m == MAP_FAILED) {
		fprintf(stderr, "btd info: cannot map %s: %s\n", path, strerror(errno));
		return 2;
	}
	const struct pool_root *roots = (const void *)(m + POOL_ROOTS_OFF);
	unsigned nroots = 0, damaged = 0;
	uint64_t a;

	for (unsigned i = 0; i < POOL_ROOTS_MAX; i++) {
		if (!roots[i].tag)
			continue;
		if (root_valid(&roots[i], h.minor, &a))
			nroots++;
		else
			damaged++;
	}
	printf("roots       %u", nroots);
	if (damaged)
		printf(" (and %u damaged slots: see btd check)", damaged);
	printf("\n");
	for (unsigned i = 0; i < POOL_ROOTS_MAX; i++)
		if (roots[i].tag && root_valid(&roots[i], h.minor, &a))
			printf("  %-47.47s 0x%llx\n", roots[i].name, (unsigned long long)a);
	print_logs(&h, m, pool_holder(st.st_dev, st.st_ino, (long)h.owner_pid, NULL, 0) != 0);
	const uint64_t *desc = (const void *)(m + h.desc_off);
	const uint64_t *bits = (const void *)(m + h.bitmap_off);
	uint64_t slabs = 0, large = 0, pages = 0, blocks = 0;

	struct desc_walk walk = desc_walk_start(desc, h.heap_top, h.minor);
	struct desc_run r;

	while (desc_walk_next(&walk, &r)) {
		*(DESC_KIND(r.d) == DESC_SLAB ? &slabs : &large) += 1;
		pages += r.npages;
	}
	for (uint64_t w = 0; w < h.heap_top * POOL_PAGE / POOL_GRANULE / 64; w++)
		blocks += (uint64_t)__builtin_popcountll(bits[w]);
	printf("used        %llu MiB in %llu slabs and %llu large blocks\n",
	       (unsigned long long)(pages * POOL_PAGE >> 20), (unsigned long long)slabs,
	       (unsigned long long)large);
	if (walk.suspicious)
		printf("damage      %llu page descriptors are neither a run nor free "
		       "(btd check tells more)\n", (unsigned long long)walk.suspicious);
	if (h.clean)
		printf("live blocks %llu\n", (unsigned long long)blocks);
	else
		printf("live blocks unknown until recovery (about %llu before it)\n",
		       (unsigned long long)blocks);
	munmap(m, h.size);
	return 0;
}

/* One line per kind of problem; returns how many kinds there were. */
static unsigned report_problems(const struct recovery_report *r, unsigned long bad,
				const struct recovery_audit *a, int repair, int collected)
{
	unsigned n = 0;
	const char *done = repair ? "repaired: " : "";

	if (r->meta_mismatch && ++n)
		printf("btd check: %sthe pool was closed cleanly, but its roots, descriptors or "
		       "bitmap changed since: recovered as after a crash\n", done);
	if (r->top_raised && ++n)
		printf("btd check: %slive runs reach %llu pages above the top the header records\n",
		       done, (unsigned long long)r->top_raised);
	if (r->damaged_roots && ++n)
		printf("btd check: %s%u root slots fail their checks (the first is slot %u)%s\n",
		       done, r->damaged_roots, r->first_damaged_root, repair ? "; cleared" : "");
	if ((r->bad_descs || r->cut_runs) && ++n)
		printf("btd check: %s%llu page descriptors disagree with the runs (%llu large runs "
		       "claim another run's pages)\n", done, (unsigned long long)r->bad_descs,
		       (unsigned long long)r->cut_runs);
	if (r->wild && ++n)
		printf("btd check: %llu reachable pointers lead into pages of no live run (the "
		       "first: 0x%llx): a run's descriptor is lost, or a live block keeps a "
		       "dangling pointer; a program's open would stop\n",
		       (unsigned long long)r->wild, (unsigned long long)r->wild_first);
	if (a->wild && !r->wild && ++n)
		printf("btd check: %llu reachable pointers lead into pages of no live run (the "
		       "first: 0x%llx)\n", (unsigned long long)a->wild,
		       (unsigned long long)a->wild_first);
	if (bad && ++n)
		printf("btd check: %lu violations of the heap's invariants (above)\n", bad);
	if (a->reachable_free && collected && ++n)
		printf("btd check: %llu reachable blocks are free\n",
		       (unsigned long long)a->reachable_free);
	if (a->leaked && ++n)
		printf("btd check: %llu allocated blocks are unreachable (leaked)%s\n",
		       (unsigned long long)a->leaked,
		       repair ? "" : ": the next recovery or --repair reclaims them");
	return n;
}

/* A progress bar on stderr for the long phases of a large pool's
 * recovery (only when stderr is a terminal). */
static void bar(const char *phase, uint64_t done, uint64_t total)
{
	if (total) {
		unsigned pct = (unsigned)(done * 100 / total), fill = pct * 30 / 100;
		char b[31];

		memset(b, '=', fill);
		memset(b + fill, ' ', 30 - fill);
		b[30] = '\0';
		fprintf(stderr, "\rbtd check: %-5s [%s] %3u%%", phase, b, pct);
	} else {
		fprintf(stderr, "\rbtd check: %-5s %llu blocks marked          ", phase,
			(unsigned long long)done);
	}
}

static void bar_done(void)
{
	fprintf(stderr, "\r%60s\r", "");
}

/* Recovery shows progress when stderr is a terminal and the heap is large
 * (1 GiB of data; BTD_PROGRESS=1 forces it, for tests). */
static int want_bar(const char *path)
{
	const char *force = getenv("BTD_PROGRESS");
	struct pool_header h;
	int fd, big = 0;

	if (force)
		return *force == '1';
	if (!isatty(STDERR_FILENO) || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	if (pool_read_header(fd, &h, NULL) >= 0)
		big = h.heap_top * POOL_PAGE >= (1ull << 30);
	close(fd);
	return big;
}

int cmd_check(const char *path, int repair)
{
	struct heap_open_info info;
	struct recovery_report found = { 0 };
	uint64_t restored = 0;
	int st, bad_copy = -1;

	if (access(path, F_OK)) {
		fprintf(stderr, "btd check: no pool at %s\n", path);
		return 2;
	}
	recovery_set_mode(repair ? RECOVER_REPAIR : RECOVER_CHECK);
	int show = want_bar(path);

	if (show)
		recovery_set_progress(bar);
	/* With --repair, every run restored means one more open. */
	for (int attempt = 0;; attempt++) {
		st = store_open(path, 0, repair ? GC_ALWAYS : GC_AUTO, &info);
		const struct recovery_report *r = recovery_last();

		if (!found.wild)
			found.wild_first = r->wild_first;
		found.damaged_roots += r->damaged_roots;
		if (!attempt)
			found.first_damaged_root = r->first_damaged_root;
		found.bad_descs += r->bad_descs;
		found.cut_runs += r->cut_runs;
		found.wild += r->wild;
		found.dangling += r->dangling;
		found.meta_mismatch |= r->meta_mismatch;
		found.top_raised += r->top_raised;
		if (attempt == 0)
			bad_copy = heap.pool.bad_header_copy;
		restored += r->restored_runs;
		if (!st || !r->restart)
			break;
		if (attempt == 3) {
			fprintf(stderr, "btd check: %s: runs were restored three times and reachable "
				"pointers still lead into free pages; the pool cannot be repaired\n",
				path);
			return 2;
		}
	}
	if (show) {
		recovery_set_progress(NULL);
		bar_done();
	}
	if (st) {
		fprintf(stderr, "btd check: %s\n", btd_last_error());
		return 2;
	}
	if (info.reset)
		printf("rootless pool: all its blocks are reclaimed at %s\n",
		       repair ? "this open" : "the next open");
	else if (info.collected)
		printf("recovered%s: kept %llu blocks (%llu bytes), reclaimed %llu blocks "
		       "(%llu bytes) in %.1f ms\n", repair ? "" : " (in a private view)",
		       (unsigned long long)info.kept_blocks, (unsigned long long)info.kept_bytes,
		       (unsigned long long)info.freed_blocks, (unsigned long long)info.freed_bytes,
		       (double)info.gc_ns / 1e6);
	if (restored)
		printf("btd check: restored %llu lost runs\n", (unsigned long long)restored);
	const struct tx_replay_report *tr = tx_replay_last();

	if (tr->logs)
		printf("transactions %llu in flight (%llu ranges, %llu bytes): %s\n",
		       (unsigned long long)tr->logs, (unsigned long long)tr->ranges,
		       (unsigned long long)tr->bytes,
		       repair ? "rolled back" : "a program's open rolls them back (so does --repair)");
	unsigned long bad = heap_check(STDOUT_FILENO);
	struct recovery_audit a;

	recovery_audit(&a);
	printf("blocks      %llu allocated, %llu reachable from %u roots\n",
	       (unsigned long long)a.allocated, (unsigned long long)a.reachable,
	       recovery_root_count());
	unsigned problems = report_problems(&found, bad, &a, repair, info.collected);

	if (tr->bad_ranges && ++problems)
		printf("btd check: %llu log entries aim outside the pool: %s\n",
		       (unsigned long long)tr->bad_ranges, repair ? "skipped, the log retired" :
		       "damage; --repair skips them and retires the log");
	if (bad_copy >= 0 && ++problems)
		printf("btd check: %sheader copy %d was damaged%s\n", repair ? "repaired: " : "",
		       bad_copy, repair ? "; rewritten from the other copy" : "");
	/* A trusted (clean) pool's audit reads every word of a live block up
	 * to its size class: a block reused for a smaller request keeps old
	 * pointers in the part the program never wrote, to blocks since
	 * freed.  Dangling pointers, not damage; after a recovery that marked,
	 * a free reachable block would be. */
	if (a.reachable_free && !info.collected)
		printf("note        %llu free blocks are pointed at from live blocks (stale words "
		       "a program never overwrote; ignored)\n", (unsigned long long)a.reachable_free);
	if (found.dangling || a.dangling)
		printf("note        %llu reachable pointers lead into runs that were freed "
		       "(dangling, as a crash between a free and a reassignment leaves them; "
		       "ignored)\n", (unsigned long long)(found.dangling ? found.dangling :
							   a.dangling));

	/* A clean pool keeps no unreachable block; --repair collected some. */
	if (repair && !info.was_dirty && info.freed_blocks && ++problems)
		printf("btd check: repaired: %llu allocated blocks were unreachable (leaked); "
		       "reclaimed\n", (unsigned long long)info.freed_blocks);
	int remain = bad || (a.reachable_free && info.collected) || a.wild;

	store_close();
	if (!problems) {
		printf("ok\n");
		return 0;
	}
	if (repair && remain) {
		printf("PROBLEMS REMAIN: the pool could not be repaired\n");
		return 2;
	}
	printf(repair ? "REPAIRED\n" : "PROBLEMS FOUND (btd check --repair %s fixes them)\n", path);
	return 1;
}
