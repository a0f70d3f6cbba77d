/* test_settings.c: parsing of the BTD_* environment. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdint.h>

#include "../../common/log.h"
#include "../../common/settings.h"

Test(settings, sizes)
{
	static const struct {
		const char *in;
		size_t out;
	} ok[] = {
		{ "0", 0 }, { "123", 123 }, { "64K", 65536 }, { "64k", 65536 },
		{ "16M", 16u << 20 }, { "1G", 1u << 30 }, { "2T", (size_t)2 << 40 },
		{ "4KiB", 4096 }, { "4KB", 4096 }, { "512B", 512 },
	};
	static const char *const bad[] = {
		"", "K", "-1", "+5", "12x", "1.5G", "64 K", "1KK", "18446744073709551616",
		"17179869184G", "4Ki",
	};
	size_t n;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_assert_eq(settings_parse_size(ok[i].in, &n), 0, "%s", ok[i].in);
		cr_assert_eq(n, ok[i].out, "%s gave %zu", ok[i].in, n);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(settings_parse_size(bad[i], &n), -1, "'%s' accepted", bad[i]);
}

Test(settings, defaults_without_btd_variables)
{
	char *env[] = { "HOME=/root", "BTDX=1", "XBTD_POLICY=all", NULL };
	struct settings s;

	cr_assert_eq(settings_parse(&s, env, 0), 0);
	cr_assert_eq(s.policy, POLICY_LARGE);
	cr_assert_eq(s.stats, 0);
	cr_assert_eq(s.verbose, LOG_WARN);
	cr_assert_eq(s.strict, 0);
	cr_assert_eq(s.gc, GC_AUTO);
	cr_assert_str_empty(s.pool);
	cr_assert_eq(s.large_min, 262144);
}

Test(settings, every_variable_parses)
{
	char *env[] = {
		"BTD_POOL=/dev/shm/x.pool", "BTD_POOL_SIZE=256M", "BTD_POLICY=all",
		"BTD_LARGE_MIN=1M", "BTD_TAG_SITES=libfoo.so*,bar_*", "BTD_STATS=./s.txt",
		"BTD_VERBOSE=3", "BTD_STRICT=true", "BTD_GC=never", NULL,
	};
	struct settings s;

	cr_assert_eq(settings_parse(&s, env, 0), 0);
	cr_assert_str_eq(s.pool, "/dev/shm/x.pool");
	cr_assert_eq(s.pool_size, 256u << 20);
	cr_assert_eq(s.policy, POLICY_ALL);
	cr_assert_eq(s.large_min, 1u << 20);
	cr_assert_str_eq(s.tag_sites, "libfoo.so*,bar_*");
	cr_assert_eq(s.stats, 1);
	cr_assert_str_eq(s.stats_path, "./s.txt");
	cr_assert_eq(s.verbose, 3);
	cr_assert_eq(s.strict, 1);
	cr_assert_eq(s.gc, GC_NEVER);
}

Test(settings, stats_values)
{
	struct settings s;
	char *on[] = { "BTD_STATS=1", NULL }, *off[] = { "BTD_STATS=off", NULL };

	cr_assert_eq(settings_parse(&s, on, 0), 0);
	cr_assert(s.stats && !s.stats_path[0]);
	cr_assert_eq(settings_parse(&s, off, 0), 0);
	cr_assert(!s.stats);
}

Test(settings, bad_values_name_the_variable_and_keep_the_default,
     .init = cr_redirect_stderr)
{
	char *env[] = { "BTD_POLICY=sometimes", "BTD_STATS=yes please", "BTD_POOL_SIZE=1M",
			"BTD_VERBOSE=7", "BTD_GC", NULL };
	struct settings s;

	cr_assert_eq(settings_parse(&s, env, 0), 5);
	cr_assert_eq(s.policy, POLICY_LARGE);
	cr_assert_eq(s.stats, 0);
	cr_assert_eq(s.pool_size, 1u << 30);
	cr_assert_eq(s.gc, GC_AUTO);
	fflush(stderr);
	cr_assert_stderr_eq_str(
		"btd: BTD_POLICY=sometimes is not valid: use none, tagged, large or all; using the default\n"
		"btd: BTD_STATS=yes please is not valid: use 0, 1 (to stderr) or a file path containing '/' (./btd-stats.txt); using the default\n"
		"btd: BTD_POOL_SIZE=1M is not valid: use a size of at least 2M, with an optional K, M, G or T suffix (1G); using the default\n"
		"btd: BTD_VERBOSE=7 is not valid: use 0, 1, 2 or 3; using the default\n"
		"btd: BTD_GC= is not valid: use auto, always or never; using the default\n");
}

Test(settings, unknown_variable_is_one_line, .init = cr_redirect_stderr)
{
	char *env[] = { "BTD_POLCY=all", NULL };
	struct settings s;

	cr_assert_eq(settings_parse(&s, env, 0), 1);
	fflush(stderr);
	cr_assert_stderr_eq_str(
		"btd: unknown variable BTD_POLCY: check the spelling; known: BTD_POOL "
		"BTD_POOL_PROGRAM BTD_POOL_SIZE BTD_POLICY BTD_LARGE_MIN BTD_TAG_SITES "
		"BTD_STATS BTD_VERBOSE BTD_STRICT BTD_GC BTD_REPLICAS BTD_MIN_REPLICAS BTD_KEY_FILE "
		"BTD_FABRIC_PROVIDER BTD_REPLICA_TIMEOUT BTD_CRASH_AT BTD_CRASH_SIM BTD_CRASH_DROP\n");
}

Test(settings, replication_values, .init = cr_redirect_stderr)
{
	char *good[] = { "BTD_REPLICAS=10.0.0.1:7000,node2:7001", "BTD_MIN_REPLICAS=1",
			 "BTD_KEY_FILE=/etc/btd.key", "BTD_REPLICA_TIMEOUT=250",
			 "BTD_FABRIC_PROVIDER=verbs", NULL };
	char *bad[] = { "BTD_REPLICAS=node-without-port", "BTD_MIN_REPLICAS=9",
			"BTD_MIN_REPLICAS=-1", "BTD_REPLICA_TIMEOUT=5", "BTD_KEY_FILE=", NULL };
	char *all[] = { "BTD_MIN_REPLICAS=all", NULL };
	struct settings s;

	settings_parse(&s, NULL, 0);
	cr_assert_eq(s.min_replicas, -1, "the default is all");
	cr_assert_eq(s.replica_timeout_ms, 5000);
	cr_assert_eq(settings_parse(&s, good, 0), 0);
	cr_assert_str_eq(s.replicas, "10.0.0.1:7000,node2:7001");
	cr_assert_eq(s.min_replicas, 1);
	cr_assert_str_eq(s.key_file, "/etc/btd.key");
	cr_assert_eq(s.replica_timeout_ms, 250);
	cr_assert_str_eq(s.fabric_provider, "verbs");
	cr_assert_eq(settings_parse(&s, bad, 0), 5);
	cr_assert_str_empty(s.replicas);
	cr_assert_eq(s.min_replicas, -1);
	cr_assert_eq(s.replica_timeout_ms, 5000);
	cr_assert_eq(settings_parse(&s, all, 0), 0);
	cr_assert_eq(s.min_replicas, -1);
}

Test(settings, too_long_strings_are_refused, .init = cr_redirect_stderr)
{
	static char pool[PATH_MAX + 20] = "BTD_POOL=";
	char *env[] = { pool, NULL };
	struct settings s;

	memset(pool + 9, 'a', PATH_MAX + 5);
	cr_assert_eq(settings_parse(&s, env, 0), 1);
	cr_assert_str_empty(s.pool);
}

Test(settings, secure_mode_ignores_the_environment)
{
	char *env[] = { "BTD_POLICY=all", "BTD_STATS=/tmp/x", "BTD_BOGUS=1", NULL };
	struct settings s;

	cr_assert_eq(settings_parse(&s, env, 1), 0);
	cr_assert_eq(s.policy, POLICY_LARGE);
	cr_assert_eq(s.stats, 0);
}

Test(settings, verbose_zero_silences_errors_not, .init = cr_redirect_stderr)
{
	/* Errors always print, whatever BTD_VERBOSE says. */
	char *env[] = { "BTD_VERBOSE=0", "BTD_GC=sometimes", NULL };
	struct settings s;

	log_verbosity = LOG_WARN;
	cr_assert_eq(settings_parse(&s, env, 0), 1);
	fflush(stderr);
	cr_assert_stderr_eq_str(
		"btd: BTD_GC=sometimes is not valid: use auto, always or never; using the default\n");
}

Test(settings, pool_patterns_expand)
{
	static const struct {
		const char *pattern;
		unsigned instance;
		const char *out;
	} ok[] = {
		{ "/p/x.pool", 3, "/p/x.pool" },
		{ "/p/%p.pool", 0, "/p/make.pool" },
		{ "/p/%p.%i.pool", 0, "/p/make.0.pool" },
		{ "/p/%p.%i.pool", 15, "/p/make.15.pool" },
		{ "/p/%i/%p-%p", 7, "/p/7/make-make" },
		{ "/p/100%%.pool", 1, "/p/100%.pool" },
		{ "/p/%%p%%i", 2, "/p/%p%i" },
		{ "%p", 0, "make" },
	};
	char buf[64];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_assert_eq(settings_pool_expand(ok[i].pattern, "make", ok[i].instance, buf,
						  sizeof(buf)), 0, "%s", ok[i].pattern);
		cr_assert_str_eq(buf, ok[i].out, "%s gave %s", ok[i].pattern, buf);
	}
	cr_assert_eq(settings_pool_expand("/p/%p.pool", "make", 0, buf, 13), 0);
	cr_assert_str_eq(buf, "/p/make.pool");
	cr_assert_eq(settings_pool_expand("/p/%p.pool", "make", 0, buf, 12), -1, "no room");
	cr_assert_eq(settings_pool_expand("/p/%i", "make", 10, buf, 5), -1, "no room");
	cr_assert_eq(settings_pool_has_instance("/p/%p.%i.pool"), 1);
	cr_assert_eq(settings_pool_has_instance("/p/%p.pool"), 0);
	cr_assert_eq(settings_pool_has_instance("/p/%%i.pool"), 0, "%%i is a literal");
	cr_assert_eq(settings_pool_has_instance("/p/%%%i.pool"), 1);
}

Test(settings, pool_patterns_are_checked, .init = cr_redirect_stderr)
{
	char *good[] = { "BTD_POOL=/p/%p.%i-%%.pool", NULL };
	char *bad[] = { "BTD_POOL=/p/%u.pool", NULL };
	char *trailing[] = { "BTD_POOL=/p/x%", NULL };
	struct settings s;

	cr_assert_eq(settings_parse(&s, good, 0), 0);
	cr_assert_str_eq(s.pool, "/p/%p.%i-%%.pool");
	cr_assert_eq(settings_parse(&s, bad, 0), 1);
	cr_assert_str_empty(s.pool);
	cr_assert_eq(settings_parse(&s, trailing, 0), 1);
	cr_assert_str_empty(s.pool);
	fflush(stderr);
	cr_assert_stderr_eq_str(
		"btd: BTD_POOL=/p/%u.pool is not valid: use a file path shorter than PATH_MAX, "
		"where %p is the program's name, %i the instance and %% a %; using the default\n"
		"btd: BTD_POOL=/p/x% is not valid: use a file path shorter than PATH_MAX, "
		"where %p is the program's name, %i the instance and %% a %; using the default\n");
}

Test(settings, pool_program_filters_by_name)
{
	char *env[] = { "BTD_POOL_PROGRAM=python3*,cc1,my prog", NULL };
	struct settings s;

	settings_default(&s);
	cr_assert(settings_program_allowed(&s, "anything"), "unset: every program");
	cr_assert_eq(settings_parse(&s, env, 0), 0);
	cr_assert_str_eq(s.pool_program, "python3*,cc1,my prog");
	cr_assert(settings_program_allowed(&s, "python3"));
	cr_assert(settings_program_allowed(&s, "python3.11"));
	cr_assert(settings_program_allowed(&s, "cc1"));
	cr_assert(settings_program_allowed(&s, "my prog"));
	cr_assert_not(settings_program_allowed(&s, "cc1plus"));
	cr_assert_not(settings_program_allowed(&s, "timeout"));
	cr_assert_not(settings_program_allowed(&s, "python"));
	cr_assert_not(settings_program_allowed(&s, ""));
	cr_assert_not(settings_program_allowed(&s, NULL));
}
