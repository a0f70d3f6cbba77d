/* preload.c: the life of libbtd_preload.so inside a process.
 *
 *   before the constructor  calls are served by jemalloc's mallocx shims
 *                           (libstdc++ asks for its 72,704-byte emergency
 *                           pool before any constructor of ours runs)
 *   constructor             settings, jemalloc's fast paths, fork handlers;
 *                           the btd_* API is told to open the pool through
 *                           the route (store/api.h)
 *   first persistent call   the pool opens (route.c): the first allocation
 *                           the policy sends there, or the first btd_* call
 *                           that needs it
 *   fork                    the child sees the pool privately and allocates
 *                           no more from it (heap.c, FORK); it starts its
 *                           own stats
 *   destructor              the heap freezes and the pool is marked clean
 *                           (heap_exit), then the stats report; frees that
 *                           arrive later (from other destructors, TSD
 *                           destructors of exiting threads) still go to
 *                           jemalloc, or are ignored for pool blocks, and
 *                           the pool stays mapped for destructors that
 *                           still read persistent blocks
 *
 * Our constructor runs after jemalloc's (libjemalloc.so.2 is our
 * dependency), so jemalloc has registered its fork handlers before we
 * register ours: prefork handlers run in reverse order of registration, so
 * ours will take btd's locks before jemalloc takes its own, and release them
 * after -- btd's locks are the outer ones, as they must be since btd calls
 * jemalloc while holding them. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "../common/crash.h"
#include "../common/log.h"
#include "../heap/pmem.h"
#include "../net/repl.h"
#include "../heap/pmem_sim.h"
#include "../store/store.h"
#include "interpose.h"
#include "stats.h"

extern char **environ;

/* Where stderr pointed at start-up, when that is a file or a terminal:
 * some programs close fd 2 before the destructors run (gnulib's
 * close_stdout, used by coreutils, does), and the report then goes there.
 * No descriptor is held open for it: programs see exactly the descriptors
 * they made. */
static char stderr_path[PATH_MAX];


static void write_heap_stats(int fd)
{
	const struct interpose_counters *c = &interpose_counters;
	const struct heap_open_info *o = &c->open;
	struct pmem_counts pc = pmem_counts();
	static const char *const why[] = { "header", "roots", "descriptors", "btd_persist",
					   "close", "recovery", "transactions" };

	if (!store_is_open()) {
		/* Why there is none: BTD_POOL_PROGRAM, the process tree, or a
		 * problem the warning named. */
		if (c->pool_filtered)
			log_fd(fd, "btd:   pool: none, BTD_POOL_PROGRAM does not name this program");
		else if (c->pool_shared)
			log_fd(fd, "btd:   pool: none, a process of this tree has it open");
		else if (c->heap_fallbacks)
			log_fd(fd, "btd:   pool: unavailable (see the warning above)");
		if (c->unpooled)
			log_fd(fd, "btd:   fallbacks to jemalloc: %lu allocations the policy chose",
			       c->unpooled);
		return;
	}
	log_fd(fd, "btd:   pool: %s%s%s", o->was_dirty ? "opened dirty" : "opened clean",
	       o->reset ? ", rootless: reset" : "", o->collected ? ", collected" : "");
	if (o->collected || o->kept_blocks)
		log_fd(fd, "btd:   recovery: kept %llu blocks (%llu bytes), reclaimed %llu blocks "
		       "(%llu bytes) in %llu us",
		       (unsigned long long)o->kept_blocks, (unsigned long long)o->kept_bytes,
		       (unsigned long long)o->freed_blocks, (unsigned long long)o->freed_bytes,
		       (unsigned long long)(o->gc_ns / 1000));
	if (o->rolled_back)
		log_fd(fd, "btd:   recovery: rolled back %llu transactions in flight",
		       (unsigned long long)o->rolled_back);
	_Static_assert(BTD_ARRAY_SIZE(why) == PMEM_WHY_COUNT, "a name for every pmem_why");
	for (unsigned w = 0; w < PMEM_WHY_COUNT; w++)
		if (pc.flushes[w] || pc.drains[w])
			log_fd(fd, "btd:   flushes for %-12s %14llu, drains %llu",
			       why[w], (unsigned long long)pc.flushes[w],
			       (unsigned long long)pc.drains[w]);
	struct repl_stats rs;

	repl_get_stats(&rs);
	if (rs.configured)
		log_fd(fd, "btd:   replicas: %u configured, %u live at the last point; %llu "
		       "durability points, %llu bytes replicated (%llu whole images), %llu commit "
		       "round trips of %llu us on average, %llu times a replica went stale",
		       rs.configured, rs.live, (unsigned long long)rs.points,
		       (unsigned long long)rs.bytes, (unsigned long long)rs.bulks,
		       (unsigned long long)rs.round_trips,
		       (unsigned long long)(rs.round_trips ? rs.rtt_ns / rs.round_trips / 1000 : 0),
		       (unsigned long long)rs.stale_events);
	if (c->heap_full || c->heap_too_big)
		log_fd(fd, "btd:   served by jemalloc: %lu allocations the pool refused (full), "
		       "%lu larger than the whole pool", c->heap_full, c->heap_too_big);
}

static void write_stats(void)
{
	const struct settings *s = &interpose_settings;
	int err_fd = STDERR_FILENO;

	if (fcntl(STDERR_FILENO, F_GETFD) < 0 && stderr_path[0])
		err_fd = open(stderr_path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (err_fd < 0)
		return;
	int fd = err_fd;

	if (s->stats_path[0]) {
		/* Appending, so that the children of a program (LD_PRELOAD is
		 * inherited) add their reports after the parent's. */
		fd = open(s->stats_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0) {
			log_msg(LOG_ERROR, "cannot open BTD_STATS=%s (%s): writing the "
				"stats to stderr; set BTD_STATS to a writable path",
				s->stats_path, errno == EACCES ? "permission denied"
					       : errno == ENOENT ? "no such directory"
								 : "open failed");
			fd = err_fd;
		}
	}
	stats_write(fd, program_invocation_short_name, (long)getpid());
	write_heap_stats(fd);
	if (fd != STDERR_FILENO)
		close(fd);
	if (err_fd != fd && err_fd != STDERR_FILENO)
		close(err_fd);
}

/* libpmem flushes with CPU instructions where that beats msync: real pmem,
 * or PMEM_IS_PMEM_FORCE=1.  Load it here, in the constructor, if the pool
 * could be such -- never later, from the malloc that opens the pool (see
 * heap/pmem.c).  Pools on tmpfs (the default) do not need it. */
static void load_libpmem_if_useful(void)
{
	const struct settings *s = &interpose_settings;
	int want = 0;

	if (s->policy == POLICY_NONE)
		return;
	for (char **e = environ; e && *e && !want; e++)
		want = !strncmp(*e, "PMEM_IS_PMEM_FORCE=1", 21);
	if (!want && s->pool[0]) {
		char dir[PATH_MAX];
		struct statfs fs;
		const char *slash = strrchr(s->pool, '/');
		size_t n = slash ? (size_t)(slash - s->pool) : 0;

		memcpy(dir, n ? s->pool : ".", n ? n : 1);
		dir[n ? n : 1] = '\0';
		want = statfs(dir, &fs) || fs.f_type != TMPFS_MAGIC;
	}
	const char *why;

	if (want && pmem_load(&why))
		log_msg(LOG_WARN, "cannot load libpmem (%s): persisting with msync; "
			"install libpmem1", why);
}

__attribute__((constructor)) static void preload_init(void)
{
	int problems = interpose_init(environ, getauxval(AT_SECURE) != 0);

	if (problems && interpose_settings.strict) {
		log_msg(LOG_ERROR, "BTD_STRICT=1: exiting (status %d) because of the "
			"problems above; fix them or unset BTD_STRICT",
			SETTINGS_STRICT_EXIT);
		_exit(SETTINGS_STRICT_EXIT);
	}
	/* BTD_CRASH_AT and BTD_CRASH_SIM of the test builds: before any pool
	 * opens (nothing but a warning without them). */
	crash_init(environ, getauxval(AT_SECURE) != 0);
	pmem_sim_start();
	interpose_enter(); /* pthread_atfork and dlopen allocate */
	interpose_register_api();
	load_libpmem_if_useful();
	if (interpose_settings.stats && !interpose_settings.stats_path[0]) {
		ssize_t n = readlink("/proc/self/fd/2", stderr_path, sizeof(stderr_path) - 1);

		stderr_path[n > 0 && stderr_path[0] == '/' ? n : 0] = '\0';
	}
	if (pthread_atfork(interpose_fork_prepare, interpose_fork_parent, interpose_fork_child))
		log_msg(LOG_WARN, "pthread_atfork failed: a fork child could write into its "
			"parent's pool; run without fork or without the persistent heap");
	interpose_leave();
}

__attribute__((destructor)) static void preload_fini(void)
{
	interpose_exit();
	if (interpose_settings.stats) {
		interpose_enter();
		write_stats();
		interpose_leave();
	}
}
