/* settings.c: the table of BTD_* variables and their parsers. */
#include "settings.h"

#include <fnmatch.h>
#include <stdint.h>
#include <string.h>

#include "log.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define GiB ((size_t)1 << 30)

static const char *const policy_names[] = { "none", "tagged", "large", "all" };
static const char *const gc_names[] = { "auto", "always", "never" };

const char *settings_policy_name(enum btd_policy p)
{
	return (unsigned)p < BTD_ARRAY_SIZE(policy_names) ? policy_names[p] : "?";
}

void settings_default(struct settings *s)
{
	memset(s, 0, sizeof(*s));
	s->policy = POLICY_LARGE;
	s->large_min = 256 * KiB; /* bench/large_min.sh: where a persistent block
				   * costs within ~10% of jemalloc's */
	s->pool_size = 1 * GiB;
	s->verbose = LOG_WARN;
	s->gc = GC_AUTO;
	s->min_replicas = -1;
	s->replica_timeout_ms = 5000;
}

/* "123", "64K", "16M", "1G", "2T" (binary multiples, either case, an
 * optional trailing "iB" or "B").  Rejects empty strings, signs, overflow. */
int settings_parse_size(const char *v, size_t *out)
{
	uint64_t n = 0;
	const char *p = v;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (__builtin_mul_overflow(n, 10, &n) ||
		    __builtin_add_overflow(n, (uint64_t)(*p - '0'), &n))
			return -1;
	}
	unsigned shift = 0;

	switch (*p) {
	case 'k': case 'K': shift = 10; break;
	case 'm': case 'M': shift = 20; break;
	case 'g': case 'G': shift = 30; break;
	case 't': case 'T': shift = 40; break;
	}
	if (shift) {
		p++;
		if (p[0] == 'i' && p[1] == 'B')
			p += 2;
		else if (p[0] == 'B')
			p++;
	} else if (p[0] == 'B') {
		p++;
	}
	if (*p || (n << shift) >> shift != n || (n << shift) > SIZE_MAX)
		return -1;
	*out = (size_t)(n << shift);
	return 0;
}

static int parse_bool(const char *v, int *out)
{
	static const char *const yes[] = { "1", "yes", "true", "on" };
	static const char *const no[] = { "0", "no", "false", "off" };

	for (size_t i = 0; i < BTD_ARRAY_SIZE(yes); i++) {
		if (!strcmp(v, yes[i]))
			return *out = 1, 0;
		if (!strcmp(v, no[i]))
			return *out = 0, 0;
	}
	return -1;
}

static int parse_choice(const char *v, const char *const *names, size_t n, int *out)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v, names[i]))
			return *out = (int)i, 0;
	return -1;
}

static int parse_string(const char *v, char *dst, size_t cap)
{
	size_t n = strlen(v);

	if (n == 0 || n >= cap)
		return -1;
	memcpy(dst, v, n + 1);
	return 0;
}

/* One parser per variable: 0 on success, -1 leaves the default in place. */
typedef int (*var_parser)(struct settings *s, const char *v);

static int set_policy(struct settings *s, const char *v)
{
	int i;

	if (parse_choice(v, policy_names, BTD_ARRAY_SIZE(policy_names), &i))
		return -1;
	s->policy = (enum btd_policy)i;
	return 0;
}

static int set_gc(struct settings *s, const char *v)
{
	int i;

	if (parse_choice(v, gc_names, BTD_ARRAY_SIZE(gc_names), &i))
		return -1;
	s->gc = (enum btd_gc)i;
	return 0;
}

static int set_large_min(struct settings *s, const char *v)
{
	return settings_parse_size(v, &s->large_min);
}

static int set_pool_size(struct settings *s, const char *v)
{
	size_t n;

	if (settings_parse_size(v, &n) || n < 2 * MiB)
		return -1;
	s->pool_size = n;
	return 0;
}

/* A pattern knows %p, %i and %%; any other % is a mistake worth a line. */
static int set_pool(struct settings *s, const char *v)
{
	for (const char *c = strchr(v, '%'); c; c = strchr(c + 2, '%'))
		if (c[1] != 'p' && c[1] != 'i' && c[1] != '%')
			return -1;
	return parse_string(v, s->pool, sizeof(s->pool));
}

static int set_pool_program(struct settings *s, const char *v)
{
	return parse_string(v, s->pool_program, sizeof(s->pool_program));
}

int settings_pool_expand(const char *pattern, const char *program, unsigned instance,
			 char *buf, size_t n)
{
	size_t len = 0;

	for (const char *c = pattern; *c; c++) {
		char num[16];
		const char *add = num;
		size_t k;

		if (c[0] == '%' && c[1] == 'p') {
			add = program ? program : "";
			c++;
		} else if (c[0] == '%' && c[1] == 'i') {
			k = sizeof(num);
			num[--k] = '\0';
			do
				num[--k] = (char)('0' + instance % 10);
			while ((instance /= 10) && k);
			add = num + k;
			c++;
		} else {
			num[0] = *c;
			num[1] = '\0';
			c += c[0] == '%' && c[1] == '%';
		}
		k = strlen(add);
		if (len + k >= n)
			return -1;
		memcpy(buf + len, add, k);
		len += k;
	}
	if (len >= n)
		return -1;
	buf[len] = '\0';
	return 0;
}

int settings_pool_has_instance(const char *pattern)
{
	for (const char *c = strchr(pattern, '%'); c; c = strchr(c + 2, '%')) {
		if (c[1] == 'i')
			return 1;
		if (!c[1])
			break;
	}
	return 0;
}

int settings_program_allowed(const struct settings *s, const char *program)
{
	const char *list = s->pool_program;

	if (!list[0])
		return 1;
	while (*list) {
		char glob[sizeof(s->pool_program)];
		size_t k = strcspn(list, ",");

		memcpy(glob, list, k);
		glob[k] = '\0';
		if (k && program && !fnmatch(glob, program, 0))
			return 1;
		list += k + (list[k] == ',');
	}
	return 0;
}

static int set_tag_sites(struct settings *s, const char *v)
{
	return parse_string(v, s->tag_sites, sizeof(s->tag_sites));
}

static int set_stats(struct settings *s, const char *v)
{
	if (!parse_bool(v, &s->stats))
		return 0;
	if (!strchr(v, '/'))
		return -1;
	s->stats = 1;
	return parse_string(v, s->stats_path, sizeof(s->stats_path));
}

static int set_verbose(struct settings *s, const char *v)
{
	if (v[0] < '0' || v[0] > '3' || v[1])
		return -1;
	s->verbose = v[0] - '0';
	return 0;
}

static int set_strict(struct settings *s, const char *v)
{
	return parse_bool(v, &s->strict);
}

static int set_replicas(struct settings *s, const char *v)
{
	return !v[0] || !strchr(v, ':') ? -1 : parse_string(v, s->replicas, sizeof(s->replicas));
}

static int parse_uint(const char *v, unsigned max, int *out)
{
	unsigned n = 0;

	if (!*v)
		return -1;
	for (; *v; v++) {
		if (*v < '0' || *v > '9' || n > max / 10)
			return -1;
		n = n * 10 + (unsigned)(*v - '0');
	}
	if (n > max)
		return -1;
	*out = (int)n;
	return 0;
}

static int set_min_replicas(struct settings *s, const char *v)
{
	if (!strcmp(v, "all")) {
		s->min_replicas = -1;
		return 0;
	}
	return parse_uint(v, 8, &s->min_replicas);
}

static int set_key_file(struct settings *s, const char *v)
{
	return v[0] ? parse_string(v, s->key_file, sizeof(s->key_file)) : -1;
}

static int set_provider(struct settings *s, const char *v)
{
	return v[0] ? parse_string(v, s->fabric_provider, sizeof(s->fabric_provider)) : -1;
}

static int set_replica_timeout(struct settings *s, const char *v)
{
	int ms;

	if (parse_uint(v, 3600000, &ms) || ms < 10)
		return -1;
	s->replica_timeout_ms = ms;
	return 0;
}

/* BTD_CRASH_AT, BTD_CRASH_SIM and BTD_CRASH_DROP are crash_init's (crash.h), read and
 * checked at library start; here they are only known names. */
static int set_elsewhere(struct settings *s, const char *v)
{
	(void)s;
	(void)v;
	return 0;
}

static const struct var {
	const char *name;
	var_parser parse;
	const char *accepted; /* completes "use ..." in the error line */
} vars[] = {
	{ "BTD_POOL", set_pool, "a file path shorter than PATH_MAX, where %p is the program's "
	  "name, %i the instance and %% a %" },
	{ "BTD_POOL_PROGRAM", set_pool_program, "a comma-separated list of globs of program "
	  "names, under 256 bytes" },
	{ "BTD_POOL_SIZE", set_pool_size, "a size of at least 2M, with an optional K, M, G or T suffix (1G)" },
	{ "BTD_POLICY", set_policy, "none, tagged, large or all" },
	{ "BTD_LARGE_MIN", set_large_min, "a size in bytes, with an optional K, M, G or T suffix (256K)" },
	{ "BTD_TAG_SITES", set_tag_sites, "a comma-separated list of globs, under 1024 bytes" },
	{ "BTD_STATS", set_stats, "0, 1 (to stderr) or a file path containing '/' (./btd-stats.txt)" },
	{ "BTD_VERBOSE", set_verbose, "0, 1, 2 or 3" },
	{ "BTD_STRICT", set_strict, "0 or 1" },
	{ "BTD_GC", set_gc, "auto, always or never" },
	{ "BTD_REPLICAS", set_replicas, "a comma-separated list of memory nodes host:port "
	  "(btd memd), under 1024 bytes" },
	{ "BTD_MIN_REPLICAS", set_min_replicas, "a count from 0 to 8, or all (all)" },
	{ "BTD_KEY_FILE", set_key_file, "the path of the file holding the memory nodes' "
	  "shared key (mode 600)" },
	{ "BTD_FABRIC_PROVIDER", set_provider, "a libfabric provider name: tcp or verbs (tcp)" },
	{ "BTD_REPLICA_TIMEOUT", set_replica_timeout, "milliseconds, from 10 to 3600000 (5000)" },
	{ "BTD_CRASH_AT", set_elsewhere, "a crash point, name or name:nth" },
	{ "BTD_CRASH_SIM", set_elsewhere, "a seed" },
	{ "BTD_CRASH_DROP", set_elsewhere, "tx.commit or slab.head (test builds)" },
};

static const struct var *var_find(const char *name, size_t len)
{
	for (size_t i = 0; i < BTD_ARRAY_SIZE(vars); i++)
		if (strlen(vars[i].name) == len && !memcmp(vars[i].name, name, len))
			return &vars[i];
	return NULL;
}

int settings_parse(struct settings *s, char *const *envp, int secure)
{
	int problems = 0;

	settings_default(s);
	if (secure || !envp)
		return 0;
	/* BTD_VERBOSE first, so that it governs the lines about the others. */
	for (char *const *e = envp; *e; e++)
		if (!strncmp(*e, "BTD_VERBOSE=", 12))
			set_verbose(s, *e + 12);
	for (char *const *e = envp; *e; e++) {
		const char *kv = *e;

		if (strncmp(kv, "BTD_", 4))
			continue;
		const char *eq = strchr(kv, '=');
		size_t len = eq ? (size_t)(eq - kv) : strlen(kv);
		const struct var *v = var_find(kv, len);

		problems++;
		if (!v) {
			char known[512];
			size_t k = 0;

			for (size_t i = 0; i < BTD_ARRAY_SIZE(vars); i++)
				k += log_format(known + k, sizeof(known) - k, "%s%s",
						i ? " " : "", vars[i].name);
			log_msg(LOG_ERROR, "unknown variable %.*s: check the spelling; known: %s",
				(int)len, kv, known);
		} else if (!eq || v->parse(s, eq + 1)) {
			log_msg(LOG_ERROR, "%s=%s is not valid: use %s; using the default",
				v->name, eq ? eq + 1 : "", v->accepted);
		} else {
			problems--;
		}
	}
	if (s->replicas[0]) {
		unsigned n = 1;

		for (const char *c = s->replicas; *c; c++)
			n += *c == ',';
		if (n > 8) {
			log_msg(LOG_ERROR, "BTD_REPLICAS names %u memory nodes: at most 8; using none", n);
			s->replicas[0] = '\0';
			problems++;
		} else if (s->min_replicas > (int)n) {
			log_msg(LOG_ERROR, "BTD_MIN_REPLICAS=%d but BTD_REPLICAS names %u memory nodes: "
				"using all of them", s->min_replicas, n);
			s->min_replicas = -1;
			problems++;
		}
	}
	return problems;
}
