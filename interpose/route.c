/* route.c: the slow paths of route.h -- the policy, the persistent heap,
 * and the interposer's start-up.
 *
 * Everything that is not jemalloc's fast path lands here: calls before the
 * constructor (served by the bootstrap shims of transient.c), calls made
 * from inside btd (the depth guard), sizes at or above the thread's
 * threshold, pointers in the owned range, and -- with stats on -- every
 * call, so that it is counted.
 *
 * The pool opens lazily, at the first allocation the policy sends to it,
 * or at the program's first btd_* call that needs it (the API's opener is
 * route_open_for_api, registered by the constructor): a process that never
 * allocates persistently never creates a pool (the shells, compilers and
 * coreutils of a build under `btd run` stay cheap), and the API and the
 * routing share the one pool.
 *
 * FALLBACKS, and what each says (BTD_STRICT=1 exits with status 78 where a
 * warning is printed, and only there):
 *   pool unavailable       warning; the process runs on jemalloc
 *   pool held by a process of this tree (one with a common ancestor below
 *     the session's leader: BTD_POOL set for a whole build or script) -- the expected
 *     case: no warning (an INFO line), no exit; runs on jemalloc
 *   BTD_POOL_PROGRAM does not name the program: silence, never tried
 *   a request larger than the pool's whole data area (GNU sort probes with
 *     gigabytes and retries smaller): jemalloc serves it, silently
 *   the pool cannot serve a request it could hold (full, or its file
 *     system is): jemalloc serves it; a warning, once; later allocations
 *     still try the pool
 * Each is counted for the stats report. */
#include "route.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "btd.h"
#include "../common/log.h"
#include "../store/api.h"
#include "../store/store.h"
#include "../heap/heap.h"
#include "../heap/pmem.h"
#include "interpose.h"
#include "sites.h"
#include "stats.h"

struct route route = { .own_lo = 0, .own_span = UINTPTR_MAX, .direct_min = SIZE_MAX };

BTD_TLS size_t route_min;
BTD_TLS unsigned route_depth;
/* btd_tag_begin nesting of this thread. */
static BTD_TLS unsigned tls_tagged;

static int ready;
static int stats_on;
static size_t min_global = SIZE_MAX; /* the threshold of an untagged thread */

/* The persistent heap for routing: 0 not tried yet, 1 open, -1 unavailable
 * (failed to open, held by the process tree, not this program's, a fork
 * child, or after exit).  The API may still open it later (1 then). */
static int heap_state;
static pthread_mutex_t heap_open_lock = PTHREAD_MUTEX_INITIALIZER;

struct settings interpose_settings;
struct interpose_counters interpose_counters;

void interpose_enter(void)
{
	route_depth++;
}

void interpose_leave(void)
{
	route_depth--;
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

/* The threshold of an untagged thread while the pool serves routing. */
static size_t policy_min(void)
{
	const struct settings *s = &interpose_settings;

	if (stats_on || (s->tag_sites[0] && s->policy != POLICY_NONE))
		return 0;
	switch (s->policy) {
	case POLICY_LARGE:
		return s->large_min;
	case POLICY_ALL:
		return 0;
	default:
		return SIZE_MAX;
	}
}

/* No pool for routing: the policy's allocations are jemalloc's now, and
 * the threads' thresholds follow at their next slow path. */
static void routing_off(void)
{
	__atomic_store_n(&heap_state, -1, __ATOMIC_RELEASE);
	__atomic_store_n(&min_global, stats_on ? 0 : SIZE_MAX, __ATOMIC_RELAXED);
}

/* A warning, or under BTD_STRICT=1 the exit. */
static void fallback_warn(const char *why, const char *then)
{
	if (interpose_settings.strict) {
		log_msg(LOG_ERROR, "%s; BTD_STRICT=1: exiting (status %d)", why,
			SETTINGS_STRICT_EXIT);
		_exit(SETTINGS_STRICT_EXIT);
	}
	log_msg(LOG_WARN, "%s; %s", why, then);
}

/* An allocation the open pool refused, served by jemalloc instead (p).
 * Larger than the pool's whole data area is no failure: the caller asked
 * for more than any pool of this size holds (GNU sort probes with
 * gigabytes, and retries smaller on NULL).  Anything else is: the first
 * one warns (or exits under BTD_STRICT=1). */
static void heap_refused(size_t n, size_t align)
{
	uintptr_t lo;
	size_t len;

	heap_range(&lo, &len);
	if (n > len || align > len) {
		__atomic_fetch_add(&interpose_counters.heap_too_big, 1, __ATOMIC_RELAXED);
		log_msg(LOG_DEBUG, "an allocation of %zu bytes is larger than the pool (%zu "
			"bytes of data): served by jemalloc", n, len);
		return;
	}
	if (__atomic_fetch_add(&interpose_counters.heap_full, 1, __ATOMIC_RELAXED))
		return;
	char why[640];

	log_format(why, sizeof(why), "persistent allocation of %zu bytes failed: %s", n,
		   btd_last_error());
	fallback_warn(why, "this allocation went to jemalloc (transient); later ones still "
		      "try the pool (this warning is not repeated; BTD_STATS=1 counts them)");
}

/* ---- who holds a taken pool ------------------------------------------- */

/* A small file of /proc into buf, without allocating; its length or 0. */
static size_t proc_read(long pid, const char *what, char *buf, size_t n)
{
	char path[64];
	ssize_t got;
	int fd;

	log_format(path, sizeof(path), "/proc/%ld/%s", pid, what);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	got = read(fd, buf, n - 1);
	close(fd);
	got = got < 0 ? 0 : got;
	buf[got] = '\0';
	return (size_t)got;
}

/* The parent of pid: the 4th field of /proc/<pid>/stat, after the name in
 * parentheses (which may hold spaces and parentheses itself); 0 unknown. */
static long parent_of(long pid)
{
	char buf[512];
	long ppid = 0;

	if (!proc_read(pid, "stat", buf, sizeof(buf)))
		return 0;
	const char *c = strrchr(buf, ')');

	if (!c || c[1] != ' ' || !c[2] || c[3] != ' ')
		return 0;
	for (c += 4; *c >= '0' && *c <= '9'; c++)
		ppid = ppid * 10 + (*c - '0');
	return ppid;
}

/* Whether pid belongs to this process's tree: it and this process have a
 * common ancestor (bounded walks up the parents; either may be the other's
 * ancestor) other than init and the session's leader -- the interactive
 * shell, whose separate commands are separate trees.  So a build, a
 * script, a pipeline, a wrapper, and the jobs of a script that turned job
 * control on (`set -m` puts each in its own process group) are one tree. */
static int in_this_tree(long pid)
{
	enum { DEPTH = 64 };
	long mine[DEPTH + 1];
	unsigned n = 0;
	long leader = (long)getsid(0);

	if (pid <= 0)
		return 0;
	if (getpgid((pid_t)pid) == getpgrp())
		return 1;
	for (long p = (long)getpid(); p > 1 && n <= DEPTH; p = parent_of(p)) {
		if (p == pid)
			return 1; /* an ancestor */
		if (p != leader)
			mine[n++] = p;
	}
	unsigned depth = 0;

	for (long p = pid; p > 1 && p != leader && depth++ < DEPTH; p = parent_of(p))
		for (unsigned i = 0; i < n; i++)
			if (mine[i] == p)
				return 1; /* a common ancestor below the leader */
	return 0;
}

/* Routing could not open the pool (caller holds heap_open_lock). */
static void routing_failed(int st, const char *path)
{
	char why[768];
	char name[32];
	long holder = st == BTD_ERR_BUSY ? api_pool_owner(path, name, sizeof(name)) : 0;

	routing_off();
	if (holder) {
		if (!name[0])
			log_format(name, sizeof(name), "?");
		if (in_this_tree(holder)) {
			/* The expected case: one pool for a process tree. */
			__atomic_fetch_add(&interpose_counters.pool_shared, 1, __ATOMIC_RELAXED);
			log_msg(LOG_INFO, "pool %s is open in process %ld (%s) of this process "
				"tree: this process runs on jemalloc", path, holder, name);
			return;
		}
		log_format(why, sizeof(why), "persistent heap unavailable: pool %s is open in "
			   "process %ld (%s), which is not of this process's tree; "
			   "give each its own pool (%%p or %%i in "
			   "BTD_POOL, or BTD_POOL_PROGRAM)", path, holder, name);
	} else {
		log_format(why, sizeof(why), "persistent heap unavailable: %s", btd_last_error());
	}
	__atomic_fetch_add(&interpose_counters.heap_fallbacks, 1, __ATOMIC_RELAXED);
	fallback_warn(why, "this process runs on jemalloc (the allocations the policy "
		      "sends to the pool are transient)");
}

/* Open the pool (caller holds heap_open_lock and the depth guard): see
 * api_open_pool for which.  On success the owned range and the direct path
 * follow it; a failure is routing_failed's to report, or, for the API, the
 * caller's (btd_last_error) -- a failed API call changes no routing. */
/* heap_malloc_direct had no block: the slow path decides again and falls
 * back (no call site: direct calls are made only without site tagging). */
static void *direct_miss(size_t n)
{
	return route_alloc_slow(ENTRY_MALLOC, n, 0, 0, NULL);
}

static int heap_start(const char *cfg_pool, size_t cfg_size, int for_api)
{
	const struct settings *s = &interpose_settings;
	struct heap_open_info *info = &interpose_counters.open;
	char path[PATH_MAX];
	int st = api_open_pool(s, cfg_pool, cfg_size, info, path, sizeof(path));

	if (st) {
		if (!for_api)
			routing_failed(st, path);
		return st;
	}
	uintptr_t lo;
	size_t len;

	heap_range(&lo, &len);
	if (!stats_on) {
		__atomic_store_n(&heap_direct_miss, direct_miss, __ATOMIC_RELAXED);
		__atomic_store_n(&route.own_lo, lo, __ATOMIC_RELAXED);
		__atomic_store_n(&route.own_span, len, __ATOMIC_RELEASE);
		/* Sizes from here up go straight from the entry points to
		 * the open heap (route.h): nothing but the size decides. */
		if (!s->tag_sites[0] && s->policy == POLICY_ALL)
			__atomic_store_n(&route.direct_min, 0, __ATOMIC_RELEASE);
		else if (!s->tag_sites[0] && s->policy == POLICY_LARGE)
			__atomic_store_n(&route.direct_min, s->large_min, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&min_global, policy_min(), __ATOMIC_RELAXED);
	log_msg(LOG_INFO, "pool %s open at %p (%zu MiB reserved)%s%s", path, (void *)lo,
		len >> 20, info->collected ? ", recovered after a crash" : info->reset ?
		", reset" : "", for_api ? ", for the btd_* API" : "");
	__atomic_store_n(&heap_state, 1, __ATOMIC_RELEASE);
	return BTD_OK;
}

static int route_pool_ready(void)
{
	int st = __atomic_load_n(&heap_state, __ATOMIC_ACQUIRE);

	if (likely(st))
		return st > 0;
	pthread_mutex_lock(&heap_open_lock);
	if (!heap_state)
		heap_start(NULL, 0, 0);
	pthread_mutex_unlock(&heap_open_lock);
	return heap_state > 0;
}

/* The API's opener (api.h): the same pool, opened the same way, and the
 * routing starts on it -- also under BTD_POLICY=none, where it routes
 * nothing but the API still has its pool. */
static int route_open_for_api(const char *cfg_pool, size_t cfg_size)
{
	const char *why;
	int st = BTD_OK;

	interpose_enter();
	/* An ordinary call, not an allocation, and outside heap_open_lock
	 * (see heap/pmem.c): libpmem may load here. */
	if (!store_is_open() && pmem_load(&why))
		log_msg(LOG_WARN, "cannot load libpmem (%s): persisting with msync", why);
	pthread_mutex_lock(&heap_open_lock);
	if (!store_is_open())
		st = heap_start(cfg_pool, cfg_size, 1);
	pthread_mutex_unlock(&heap_open_lock);
	interpose_leave();
	return st;
}

void interpose_register_api(void)
{
	api_set_opener(route_open_for_api, &interpose_settings);
}

/* Which route serves this allocation (caller holds the depth guard). */
static enum route_kind route_decide(size_t n, const void *caller)
{
	const struct settings *s = &interpose_settings;

	if (unlikely(!ready))
		return ROUTE_BOOTSTRAP;
	route_min = tls_tagged ? 0 : __atomic_load_n(&min_global, __ATOMIC_RELAXED);
	int state = __atomic_load_n(&heap_state, __ATOMIC_RELAXED);

	if (s->policy == POLICY_NONE || (state < 0 && !stats_on))
		return ROUTE_TRANSIENT;
	int persistent = tls_tagged || s->policy == POLICY_ALL ||
			 (s->policy == POLICY_LARGE && n >= s->large_min) ||
			 (s->tag_sites[0] && sites_tagged(caller));

	if (!persistent)
		return ROUTE_TRANSIENT;
	if (route_pool_ready())
		return ROUTE_PERSISTENT;
	/* Counted only with stats on: without them, a thread with no pool
	 * does not come here for every allocation. */
	__atomic_fetch_add(&interpose_counters.unpooled, 1, __ATOMIC_RELAXED);
	return ROUTE_TRANSIENT;
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

/* The entry points tried the heap already when route_direct(n) (route.h);
 * a second try here, when that one failed, is the fallback's. */
void *route_alloc_slow(enum entry e, size_t n, size_t align, int zero, const void *caller)
{
	if (route_depth) {
		void *p = transient_alloc(n, align, zero);

		if (p)
			count(e, ROUTE_BOOTSTRAP, n);
		return p;
	}
	route_depth++;
	enum route_kind r = route_decide(n, caller);
	void *p = NULL;

	if (r == ROUTE_PERSISTENT) {
		p = align ? heap_aligned(align, n) : zero ? heap_calloc(n) : heap_malloc(n);
		if (!p) {
			/* A request jemalloc cannot serve either is an ordinary
			 * ENOMEM; one it can is a fallback (heap_refused). */
			p = transient_alloc(n, align, zero);
			r = ROUTE_TRANSIENT;
			if (p)
				heap_refused(n, align);
		}
	} else {
		p = transient_alloc(n, align, zero);
	}
	if (p)
		count(e, r, n);
	route_depth--;
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

	route_depth++;
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
				heap_refused(n, 0);
			}
		}
	} else {
		if (!ready)
			r = ROUTE_BOOTSTRAP;
		q = transient.realloc(p, n);
	}
	route_depth--;
	if (!q) {
		errno = ENOMEM;
		return NULL;
	}
	count(e, r, n);
	return q;
}

void route_free_slow(enum entry e, void *p)
{
	/* With own_lo set, the owned range is the pool's data (route.h), so
	 * an owned p is a pool block, or misuse that heap_free reports.
	 * (realloc(p, 0) comes here with jemalloc's blocks too.)  heap_free
	 * sets no errno, so there is none to keep. */
	uintptr_t lo = route.own_lo;

	if (likely(lo && (uintptr_t)p - lo < route.own_span)) {
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
	min_global = policy_min();
	if (!settings_program_allowed(s, program_invocation_short_name)) {
		/* Not the program BTD_POOL_PROGRAM names: jemalloc, silently. */
		interpose_counters.pool_filtered = 1;
		routing_off();
		log_msg(LOG_INFO, "BTD_POOL_PROGRAM=%s does not name %s: no pool, all on "
			"jemalloc", s->pool_program, program_invocation_short_name);
	}
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
	if (fork_holds_heap) {
		heap_fork_prepare();
	} else {
		interpose_enter();
		heap_fork_settle(); /* a fork child forking */
		interpose_leave();
	}
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
	if (fork_holds_heap || heap_state > 0) {
		interpose_enter(); /* its thread's allocations are btd's own */
		heap_fork_child(); /* also when the pool opened during the fork */
		interpose_leave();
	}
	heap_state = -1;
	route.direct_min = SIZE_MAX;
	min_global = stats_on ? 0 : SIZE_MAX;
	thread_refresh();
	stats_reset();
	memset(&interpose_counters, 0, sizeof(interpose_counters));
}

void interpose_exit(void)
{
	if (heap_state > 0) {
		__atomic_store_n(&route.direct_min, SIZE_MAX, __ATOMIC_RELAXED);
		__atomic_store_n(&heap_state, -1, __ATOMIC_RELEASE);
		interpose_enter();
		/* What the policy sent to the pool, the program does not know to
		 * free: with roots, the next open collects it. */
		if (interpose_settings.policy != POLICY_NONE)
			heap_collect_next();
		store_exit();
		interpose_leave();
	}
}
