/* route.c: the slow paths of route.h -- the policy, the persistent heap,
 * and the interposer's start-up.
 *
 * Everything that is not jemalloc's fast path lands here: calls before the
 * constructor (served by the bootstrap shims of transient.c), calls made
 * from inside btd (the depth guard), sizes at or above the thread's
 * threshold, pointers in the owned range, and -- with stats on -- every
 * call, so that it is counted.
 *
 * The pool opens lazily, at the first allocation the policy sends to it:
 * a process that never allocates persistently never creates a pool (the
 * shells, compilers and coreutils of a build under `btd run` stay cheap).
 * When the pool cannot be opened, or is full, the call is served by
 * jemalloc instead, with one warning and a counter; BTD_STRICT=1 exits. */
#include "route.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "btd.h"
#include "../common/log.h"
#include "../heap/heap.h"
#include "interpose.h"
#include "sites.h"
#include "stats.h"

struct route route = { .own_lo = 0, .own_span = UINTPTR_MAX };

BTD_TLS size_t route_min;

/* > 0 while this thread runs btd's own code: its allocations go transient
 * (invariant 6, the allocator never allocates through itself). */
static BTD_TLS unsigned tls_depth;
/* btd_tag_begin nesting of this thread. */
static BTD_TLS unsigned tls_tagged;

static int ready;
static int stats_on;
static size_t min_global = SIZE_MAX; /* the threshold of an untagged thread */
/* Sizes from here up go straight to the open heap, skipping the general
 * decision: set when the pool opens under `all` or `large`, with no stats
 * and no call-site tagging to attend to. */
static size_t direct_min = SIZE_MAX;

/* The persistent heap: 0 not tried yet, 1 open, -1 unavailable (failed to
 * open, a fork child, or switched off after a full pool). */
static int heap_state;
static pthread_mutex_t heap_open_lock = PTHREAD_MUTEX_INITIALIZER;

struct settings interpose_settings;
struct interpose_counters interpose_counters;

void interpose_enter(void)
{
	tls_depth++;
}

void interpose_leave(void)
{
	tls_depth--;
}

/* The slow path the thread's next call takes sets its threshold again. */
static void thread_refresh(void)
{
	route_min = 0;
}

int interpose_tag(int delta)
{
	if (delta < 0 && !tls_tagged)
		return -1;
	tls_tagged += (unsigned)delta;
	thread_refresh();
	return 0;
}

static void give_up_heap(const char *why)
{
	__atomic_fetch_add(&interpose_counters.heap_fallbacks, 1, __ATOMIC_RELAXED);
	if (interpose_settings.strict) {
		log_msg(LOG_ERROR, "%s; BTD_STRICT=1: exiting (status %d)", why,
			SETTINGS_STRICT_EXIT);
		_exit(SETTINGS_STRICT_EXIT);
	}
	log_msg(LOG_WARN, "%s; continuing on jemalloc (persistent allocations are now "
		"transient)", why);
}

/* The first allocation the pool could not serve: the heap's own reason
 * (the pool's reservation is used up, or its file system is full). */
static void heap_full_warning(void)
{
	char why[640];

	log_format(why, sizeof(why), "persistent allocation failed: %s", btd_last_error());
	give_up_heap(why);
}

/* Open the pool: BTD_POOL, or the program's default, or -- when another
 * process of the same program holds that -- the next free instance. */
static void heap_start(void)
{
	const struct settings *s = &interpose_settings;
	struct heap_open_info *info = &interpose_counters.open;
	char path[PATH_MAX];
	int st = 0;

	if (s->pool[0]) {
		st = heap_open(s->pool, s->pool_size, s->gc, info);
	} else {
		for (unsigned i = 0; i < 16; i++) {
			st = heap_default_path(path, sizeof(path), program_invocation_short_name, i);
			if (!st)
				st = heap_open(path, s->pool_size, s->gc, info);
			if (st != BTD_ERR_BUSY)
				break;
		}
	}
	if (st) {
		char why[640];

		log_format(why, sizeof(why), "persistent heap unavailable: %s", btd_last_error());
		give_up_heap(why);
		__atomic_store_n(&heap_state, -1, __ATOMIC_RELEASE);
		return;
	}
	uintptr_t lo;
	size_t len;

	heap_range(&lo, &len);
	if (!stats_on) {
		__atomic_store_n(&route.own_lo, lo, __ATOMIC_RELAXED);
		__atomic_store_n(&route.own_span, len, __ATOMIC_RELEASE);
		if (!s->tag_sites[0] && s->policy == POLICY_ALL)
			direct_min = 0;
		else if (!s->tag_sites[0] && s->policy == POLICY_LARGE)
			direct_min = s->large_min;
	}
	log_msg(LOG_INFO, "pool open at %p (%zu MiB reserved)%s", (void *)lo, len >> 20,
		info->collected ? ", recovered after a crash" : info->reset ? ", reset" : "");
	__atomic_store_n(&heap_state, 1, __ATOMIC_RELEASE);
}

static int heap_ready(void)
{
	int st = __atomic_load_n(&heap_state, __ATOMIC_ACQUIRE);

	if (likely(st))
		return st > 0;
	pthread_mutex_lock(&heap_open_lock);
	if (!heap_state)
		heap_start();
	pthread_mutex_unlock(&heap_open_lock);
	return heap_state > 0;
}

/* Which route serves this allocation (caller holds the depth guard). */
static enum route_kind route_decide(size_t n, const void *caller)
{
	const struct settings *s = &interpose_settings;

	if (unlikely(!ready))
		return ROUTE_BOOTSTRAP;
	route_min = tls_tagged ? 0 : min_global;
	if (__atomic_load_n(&heap_state, __ATOMIC_RELAXED) < 0)
		return ROUTE_TRANSIENT;
	int persistent = tls_tagged || s->policy == POLICY_ALL ||
			 (s->policy == POLICY_LARGE && n >= s->large_min) ||
			 (s->tag_sites[0] && s->policy != POLICY_NONE && sites_tagged(caller));

	return persistent && heap_ready() ? ROUTE_PERSISTENT : ROUTE_TRANSIENT;
}

static void count(enum entry e, enum route_kind r, size_t bytes)
{
	if (stats_on || r == ROUTE_BOOTSTRAP)
		stats_count(e, r, bytes);
}

static void *transient_alloc(size_t n, size_t align, int zero)
{
	if (align)
		return transient.aligned_alloc(align, n);
	return zero ? transient.calloc(1, n) : transient.malloc(n);
}

void *route_alloc_slow(enum entry e, size_t n, size_t align, int zero, const void *caller)
{
	/* The persistent fast path: the pool is open and nothing but the size
	 * decides.  btd's own allocations (tls_depth) stay transient. */
	if (likely(n >= direct_min && !tls_depth)) {
		void *p = align ? heap_aligned(align, n) : zero ? heap_calloc(n) : heap_malloc(n);

		if (likely(p))
			return p;
	}
	if (tls_depth) {
		void *p = transient_alloc(n, align, zero);

		if (p)
			count(e, ROUTE_BOOTSTRAP, n);
		return p;
	}
	tls_depth++;
	enum route_kind r = route_decide(n, caller);
	void *p = NULL;

	if (r == ROUTE_PERSISTENT) {
		p = align ? heap_aligned(align, n) : zero ? heap_calloc(n) : heap_malloc(n);
		if (!p) {
			/* A request jemalloc cannot serve either is an ordinary
			 * ENOMEM; one it can is a fallback from a full pool. */
			p = transient_alloc(n, align, zero);
			r = ROUTE_TRANSIENT;
			if (p && !__atomic_fetch_add(&interpose_counters.heap_full, 1, __ATOMIC_RELAXED))
				heap_full_warning();
		}
	} else {
		p = transient_alloc(n, align, zero);
	}
	if (p)
		count(e, r, n);
	tls_depth--;
	return p;
}

/* A fork child reallocating its parent's persistent block: the child may
 * not allocate from the pool, so the block moves to jemalloc (the old one
 * stays in the child's private view of the pool). */
static void *realloc_out_of_pool(void *p, size_t n)
{
	size_t have = heap_usable_size(p);
	void *q = transient.malloc(n);

	if (q)
		memcpy(q, p, n < have ? n : have);
	return q;
}

void *route_realloc_slow(enum entry e, void *p, size_t n, const void *caller)
{
	if (!p)
		return route_alloc_slow(e, n, 0, 0, caller);
	if (n == 0) {
		/* glibc's realloc(p, 0): free p, return NULL. */
		route_free_slow(e, p);
		return NULL;
	}
	void *q;
	enum route_kind r = ROUTE_TRANSIENT;

	tls_depth++;
	if (heap_owns(p)) {
		/* A block keeps its home: persistent stays persistent, unless
		 * the pool is full (or left, in a fork child), when it moves to
		 * jemalloc like any fallback. */
		r = ROUTE_PERSISTENT;
		q = heap_state > 0 ? heap_realloc(p, n) : NULL;
		if (!q) {
			q = realloc_out_of_pool(p, n);
			r = ROUTE_TRANSIENT;
			if (q && heap_state > 0) {
				heap_free(p);
				if (!__atomic_fetch_add(&interpose_counters.heap_full, 1, __ATOMIC_RELAXED))
					heap_full_warning();
			}
		}
	} else {
		if (!ready)
			r = ROUTE_BOOTSTRAP;
		q = transient.realloc(p, n);
	}
	tls_depth--;
	if (!q) {
		errno = ENOMEM;
		return NULL;
	}
	count(e, r, n);
	return q;
}

void route_free_slow(enum entry e, void *p)
{
	/* Once started and without stats, the owned range is the pool's data
	 * (route.h), so an owned p is a pool block, or misuse that heap_free
	 * reports.  (realloc(p, 0) comes here with jemalloc's blocks too.)
	 * heap_free sets no errno, so there is none to keep. */
	if (likely(ready && !stats_on && route_owns(p))) {
		heap_free(p);
		return;
	}
	int saved = errno;

	if (!p) {
		/* nothing */
	} else if (heap_owns(p)) {
		/* Also after exit and in a fork child, where the heap is frozen
		 * and heap_free leaves the block alone. */
		if (stats_on)
			stats_count(e, ROUTE_PERSISTENT, heap_usable_size(p));
		heap_free(p);
	} else {
		if (stats_on || !ready)
			stats_count(e, ready ? ROUTE_TRANSIENT : ROUTE_BOOTSTRAP,
				    transient.usable_size(p));
		transient.free(p);
	}
	errno = saved;
}

size_t route_usable_size_slow(void *p)
{
	if (p && heap_owns(p)) {
		count(ENTRY_USABLE_SIZE, ROUTE_PERSISTENT, 0);
		return heap_usable_size(p);
	}
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
	if (s->tag_sites[0])
		sites_init(s->tag_sites);
	if (transient_bind())
		problems++;
	stats_on = s->stats;
	switch (s->policy) {
	case POLICY_NONE:
	case POLICY_TAGGED:
		min_global = SIZE_MAX;
		break;
	case POLICY_LARGE:
		min_global = s->large_min;
		break;
	case POLICY_ALL:
		min_global = 0;
		break;
	}
	if (stats_on || (s->tag_sites[0] && s->policy != POLICY_NONE))
		min_global = 0;
	if (s->policy == POLICY_NONE)
		heap_state = -1;
	route.errno_off = (char *)&errno - (char *)__builtin_thread_pointer();
	ready = 1;
	/* Publish the fast path last. */
	if (!stats_on)
		__atomic_store_n(&route.own_span, 0, __ATOMIC_RELEASE);
	thread_refresh();
	log_msg(LOG_INFO, "started: policy %s, large_min %zu, stats %s, jemalloc %s",
		settings_policy_name(s->policy), s->large_min, stats_on ? "on" : "off",
		transient_is_bound() ? "fast paths" : "mallocx entry points");
	interpose_leave();
	return problems;
}

/* Whether prepare took the heap's locks: parent and child must act on
 * what prepare did, not on heap_state, which another thread may change
 * meanwhile (opening the pool, or exit()). */
static int fork_holds_heap;

void interpose_fork_prepare(void)
{
	fork_holds_heap = __atomic_load_n(&heap_state, __ATOMIC_ACQUIRE) > 0;
	if (fork_holds_heap)
		heap_fork_prepare();
}

void interpose_fork_parent(void)
{
	if (fork_holds_heap)
		heap_fork_parent();
}

/* The child sees the pool privately and allocates nothing more from it
 * (heap.c, FORK); it starts its own stats. */
void interpose_fork_child(void)
{
	pthread_mutex_init(&heap_open_lock, NULL);
	if (fork_holds_heap || heap_state > 0)
		heap_fork_child(); /* also when the pool opened during the fork */
	heap_state = -1;
	direct_min = SIZE_MAX;
	min_global = stats_on ? 0 : SIZE_MAX;
	thread_refresh();
	stats_reset();
	memset(&interpose_counters, 0, sizeof(interpose_counters));
}

void interpose_exit(void)
{
	if (heap_state > 0) {
		__atomic_store_n(&direct_min, SIZE_MAX, __ATOMIC_RELAXED);
		__atomic_store_n(&heap_state, -1, __ATOMIC_RELEASE);
		interpose_enter();
		heap_exit();
		interpose_leave();
	}
}
