/* settings.h: the BTD_* environment, read once, without allocating.
 *
 * The preload reads its settings in its constructor by walking environ
 * (getenv may allocate in some libcs and is not needed).  Every variable is
 * described by one row of a table in settings.c: name, kind, default and the
 * accepted values, so that parsing, the error messages and the README table
 * say the same thing.  A bad value or an unknown BTD_* name gives one line on
 * stderr naming it and what is accepted, then the default; with BTD_STRICT=1
 * the caller exits instead.  In a set-user-ID program (AT_SECURE) the
 * environment is ignored, as secure_getenv(3) would. */
#ifndef BTD_COMMON_SETTINGS_H
#define BTD_COMMON_SETTINGS_H

#include <limits.h>
#include <stddef.h>

enum btd_policy {
	POLICY_NONE,   /* everything to jemalloc */
	POLICY_TAGGED, /* tagged allocations to the persistent heap */
	POLICY_LARGE,  /* tagged ones and those of at least large_min bytes */
	POLICY_ALL,    /* everything to the persistent heap */
};

enum btd_gc {
	GC_AUTO,   /* collect a dirty pool, reset a rootless one */
	GC_ALWAYS, /* collect at every open */
	GC_NEVER,  /* trust the pool as found */
};

/* Exit status of a BTD_STRICT=1 refusal (EX_CONFIG of sysexits.h). */
#define SETTINGS_STRICT_EXIT 78

struct settings {
	enum btd_policy policy;
	size_t large_min;
	char pool[PATH_MAX];       /* "" = the per-program default; a pattern
				    * (settings_pool_expand) */
	char pool_program[256];    /* comma-separated globs; "" = every program */
	size_t pool_size;
	char tag_sites[1024];      /* comma-separated globs */
	int stats;                 /* 0 off, 1 on */
	char stats_path[PATH_MAX]; /* "" = stderr */
	int verbose;               /* 0..3, see log.h */
	int strict;
	enum btd_gc gc;
	char replicas[1024];       /* "host:port,..."; "" = none */
	int min_replicas;          /* -1 = all of them */
	char key_file[PATH_MAX];
	char fabric_provider[32];  /* "" = tcp */
	int replica_timeout_ms;
};

/* The defaults, as documented. */
void settings_default(struct settings *s);

/* Fill s from envp (defaults first).  Prints one line per problem and
 * returns how many there were.  With secure set, envp is ignored. */
int settings_parse(struct settings *s, char *const *envp, int secure);

/* BTD_POOL is a pattern: %p stands for the program's name
 * (program_invocation_short_name), %i for the instance, %% for a %.  Write
 * the path of `instance` to buf: 0, or -1 when it does not fit in n bytes. */
int settings_pool_expand(const char *pattern, const char *program, unsigned instance,
			 char *buf, size_t n);

/* Whether the pattern has %i: a taken pool then means "try the next
 * instance", as with the default path. */
int settings_pool_has_instance(const char *pattern);

/* Whether BTD_POOL_PROGRAM lets this program open a pool (always when it is
 * unset): one of its globs matches the program's name. */
int settings_program_allowed(const struct settings *s, const char *program);

/* Parsers shared with the btd command; 0 on success, -1 on a bad value. */
int settings_parse_size(const char *v, size_t *out);
const char *settings_policy_name(enum btd_policy p);

#endif
