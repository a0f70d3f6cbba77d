/* preload.c: the life of libbtd_preload.so inside a process.
 *
 *   before the constructor  calls are served by jemalloc's mallocx shims
 *                           (libstdc++ asks for its 72,704-byte emergency
 *                           pool before any constructor of ours runs)
 *   constructor             settings, jemalloc's fast paths, fork handlers
 *   fork                    the child starts its own stats
 *   destructor              the stats report; frees that arrive later (from
 *                           other destructors, TSD destructors of exiting
 *                           threads) still go to jemalloc, whose entry
 *                           points stay bound for the life of the process
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
#include <sys/auxv.h>
#include <unistd.h>

#include "../common/log.h"
#include "interpose.h"
#include "stats.h"

extern char **environ;

/* A copy of stderr taken at start-up: some programs close fd 2 before the
 * destructors run (gnulib's close_stdout, used by coreutils, does). */
static int stats_fd = -1;

static void atfork_child(void)
{
	stats_reset();
}

static void write_stats(void)
{
	const struct settings *s = &interpose_settings;
	int err_fd = stats_fd >= 0 ? stats_fd : STDERR_FILENO;
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
	if (fd != err_fd)
		close(fd);
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
	interpose_enter(); /* pthread_atfork allocates */
	if (interpose_settings.stats)
		stats_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 64);
	if (pthread_atfork(NULL, NULL, atfork_child))
		log_msg(LOG_WARN, "pthread_atfork failed: a fork child will report its "
			"parent's stats as its own");
	interpose_leave();
}

__attribute__((destructor)) static void preload_fini(void)
{
	if (interpose_settings.stats) {
		interpose_enter();
		write_stats();
		interpose_leave();
	}
}
