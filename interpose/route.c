/* route.c: the slow paths of route.h, and the interposer's start-up.
 *
 * Everything that is not jemalloc's fast path lands here: calls before the
 * constructor (served by the bootstrap shims of transient.c), calls made
 * from inside btd (the depth guard), and -- when stats are on -- every call,
 * so that it is counted.  The policy decision of the persistent heap slots
 * in at route_decide(). */
#include "route.h"

#include <stdint.h>
#include <string.h>

#include "../common/log.h"
#include "interpose.h"
#include "stats.h"

/* Until interpose_init() has run, every call is slow: it is counted as a
 * bootstrap call and served by the shims. */
struct route route = { .min = 0, .own_lo = 0, .own_span = UINTPTR_MAX };

/* > 0 while this thread runs btd's own code: its allocations go transient
 * (invariant 6, the allocator never allocates through itself). */
static BTD_TLS unsigned tls_depth;

static int ready;
static int stats_on;

struct settings interpose_settings;

void interpose_enter(void)
{
	tls_depth++;
}

void interpose_leave(void)
{
	tls_depth--;
}

/* Which route serves this call.  The persistent heap's policy joins here. */
static enum route_kind route_decide(size_t n)
{
	(void)n;
	if (unlikely(!ready))
		return ROUTE_BOOTSTRAP;
	return ROUTE_TRANSIENT;
}

static void count(enum entry e, enum route_kind r, size_t bytes)
{
	if (stats_on || !ready)
		stats_count(e, r, bytes);
}

void *route_alloc_slow(enum entry e, size_t n, size_t align, int zero)
{
	enum route_kind r = tls_depth ? ROUTE_BOOTSTRAP : route_decide(n);
	void *p;

	if (align)
		p = transient.aligned_alloc(align, n);
	else if (zero)
		p = transient.calloc(1, n);
	else
		p = transient.malloc(n);
	if (p)
		count(e, r, n);
	return p;
}

void *route_realloc_slow(enum entry e, void *p, size_t n)
{
	if (!p)
		return route_alloc_slow(e, n, 0, 0);
	if (n == 0) {
		/* glibc's realloc(p, 0): free p, return NULL. */
		route_free_slow(e, p);
		return NULL;
	}
	enum route_kind r = tls_depth ? ROUTE_BOOTSTRAP : route_decide(n);
	void *q = transient.realloc(p, n);

	if (!q) {
		errno = ENOMEM;
		return NULL;
	}
	count(e, r, n);
	return q;
}

void route_free_slow(enum entry e, void *p)
{
	int saved = errno;

	if (p) {
		if (stats_on || !ready)
			stats_count(e, ready ? ROUTE_TRANSIENT : ROUTE_BOOTSTRAP,
				    transient.usable_size(p));
		transient.free(p);
	}
	errno = saved;
}

size_t route_usable_size_slow(void *p)
{
	size_t n = p ? transient.usable_size(p) : 0;

	count(ENTRY_USABLE_SIZE, ready ? ROUTE_TRANSIENT : ROUTE_BOOTSTRAP, 0);
	return n;
}

int interpose_init(char *const *envp, int secure)
{
	struct settings *s = &interpose_settings;
	int problems;

	interpose_enter();
	problems = settings_parse(s, envp, secure);
	log_verbosity = s->verbose;
	if (s->policy != POLICY_NONE) {
		log_msg(LOG_WARN, "BTD_POLICY=%s: this build has no persistent heap yet, "
			"so every allocation stays on jemalloc; set BTD_POLICY=none "
			"to silence this", settings_policy_name(s->policy));
		problems++;
	}
	if (transient_bind())
		problems++;
	stats_on = s->stats;
	route.errno_off = (char *)&errno - (char *)__builtin_thread_pointer();
	ready = 1;
	/* Publish the fast path last: from here on only the calls that need
	 * btd leave jemalloc's fast path. */
	if (!stats_on) {
		__atomic_store_n(&route.own_span, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&route.min, SIZE_MAX, __ATOMIC_RELEASE);
	}
	log_msg(LOG_INFO, "started: policy %s, stats %s, jemalloc %s",
		settings_policy_name(s->policy), stats_on ? "on" : "off",
		transient_is_bound() ? "fast paths" : "mallocx entry points");
	interpose_leave();
	return problems;
}
