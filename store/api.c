/* api.c: the public btd_* API of include/btd.h over the heap.
 *
 * Linked into libbtd.so and into libbtd_preload.so alike: a program that
 * links libbtd and runs under the preload calls the preload's copies (it
 * comes first in the symbol search), so there is one heap per process.
 *
 * ONE WAY TO THE POOL.  Every call that needs the pool goes through
 * pool_ready(), which opens it when it is not open yet -- with the opener
 * the preload registered (api.h), else here.  So a program's first call
 * may be btd_root_get, and it finds what the last run left.  The calls
 * that need the pool: btd_cluster_create, btd_malloc, btd_root_get and
 * _set, btd_sync; btd_persist, btd_memcpy, btd_memset and btd_free only
 * when their pointer is not mapped at all (it may point into the pool of
 * an earlier run, which opening maps again) -- a copy into ordinary memory
 * never creates a pool. */
#include "api.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/compiler.h"
#include "../common/error.h"
#include "../common/log.h"
#include "btd.h"
#include "../heap/heap_int.h"
#include "../heap/pmem.h"
#include "../heap/roots.h"
#include "../heap/tx.h"
#include "../net/repl.h"
#include "store.h"

extern char **environ;

struct btd_cluster {
	int single_node;
};

static struct btd_cluster the_cluster;
static pthread_mutex_t api_lock = PTHREAD_MUTEX_INITIALIZER;

/* The preload's opener and settings (api.h); without the preload, the
 * settings read when this file last opened the pool. */
static api_opener opener;
static const struct settings *opener_settings;
static struct settings own_settings;

/* Memory nodes named by btd_cluster_create (cfg.nodes, cfg.replicas):
 * they win over BTD_REPLICAS and BTD_MIN_REPLICAS. */
static char cfg_nodes[1024];
static int cfg_min = -1;
/* Whether an open may restore a missing pool from the replicas: only from
 * an ordinary call (it connects, loads libfabric), never from inside an
 * allocation of the preload. */
static int restore_allowed;

static void repl_config_of(const struct settings *s, struct repl_config *c)
{
	memset(c, 0, sizeof(*c));
	c->nodes = cfg_nodes[0] ? cfg_nodes : s->replicas;
	c->min = cfg_nodes[0] ? cfg_min : s->min_replicas;
	c->key_file = s->key_file;
	c->timeout_ms = s->replica_timeout_ms;
}

/* A missing pool with replicas configured: rebuild it from them first.
 * None holding an image of it is a first run (the pool is created). */
static int restore_if_missing(const struct settings *s, const char *path)
{
	struct repl_config c;
	struct stat sb;
	double secs;
	uint64_t bytes;
	int st;

	repl_config_of(s, &c);
	if (!c.nodes[0] || !restore_allowed || !stat(path, &sb) || errno != ENOENT)
		return 0;
	st = repl_restore(path, &c, isatty(2), &secs, &bytes);
	if (st == BTD_ERR_NOENT)
		return 0;
	if (!st)
		log_msg(LOG_WARN, "pool %s was missing: restored from the replicas (%llu KiB in "
			"%llu ms); recovery runs as after a crash", path,
			(unsigned long long)(bytes >> 10), (unsigned long long)(secs * 1e3));
	return st;
}

void api_set_opener(api_opener open, const struct settings *s)
{
	opener_settings = s;
	opener = open;
}

int api_open_pool(const struct settings *s, const char *cfg_pool, size_t cfg_size,
		  struct heap_open_info *info, char *path, size_t path_size)
{
	const char *prog = program_invocation_short_name;
	int probe = s->pool[0] ? settings_pool_has_instance(s->pool) : !cfg_pool;
	size_t size = cfg_size ? cfg_size : s->pool_size;
	struct repl_config rc;
	int st = BTD_OK;

	repl_config_of(s, &rc);
	if (rc.nodes[0] && (st = repl_validate(&rc))) /* before anything is restored or opened */
		return err_prefix(st, "no pool opened");
	for (unsigned i = 0; i < (probe ? 16u : 1u); i++) {
		st = BTD_OK;
		if (s->pool[0]) {
			if (settings_pool_expand(s->pool, prog, i, path, path_size))
				st = err_set(BTD_ERR_INVAL, "BTD_POOL=%s is too long once %%p "
						"and %%i are expanded", s->pool);
		} else if (cfg_pool) {
			if (strlen(cfg_pool) >= path_size)
				st = err_set(BTD_ERR_INVAL, "cfg.pool is too long: %.40s...",
						cfg_pool);
			else
				strcpy(path, cfg_pool);
		} else {
			st = store_default_path(path, path_size, prog, i);
		}
		if (!st)
			st = restore_if_missing(s, path);
		if (!st)
			st = store_open(path, size, s->gc, info);
		if (st != BTD_ERR_BUSY)
			break;
	}
	if (!st) {
		struct repl_config c;

		repl_config_of(s, &c);
		if (c.nodes[0] && (st = repl_configure(&c))) {
			store_abandon();
			st = err_prefix(st, "pool %s not opened", path);
		}
	}
	return st;
}

long api_pool_owner(const char *path, char *name, size_t n)
{
	struct pool_header h;
	struct stat st;
	long hint = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (name && n)
		name[0] = '\0';
	if (fd < 0)
		return 0;
	if (fstat(fd, &st)) {
		close(fd);
		return 0;
	}
	if (pool_read_header(fd, &h, NULL) >= 0) /* the slot, or a btd_status */
		hint = (long)h.owner_pid;
	close(fd);
	return pool_holder(st.st_dev, st.st_ino, hint, name, n);
}

static int refuse_program(const struct settings *s)
{
	return err_set(BTD_ERR_PERM, "BTD_POOL_PROGRAM=%s does not name this program (%s): "
			  "it opens no pool; add its name to BTD_POOL_PROGRAM",
			  s->pool_program, program_invocation_short_name);
}

/* Without the preload: open the pool as the settings of this moment say. */
static int open_here(const char *cfg_pool, size_t cfg_size)
{
	struct settings *s = &own_settings;
	char path[PATH_MAX];
	int st = BTD_OK;

	pthread_mutex_lock(&api_lock);
	if (!store_is_open()) {
		settings_parse(s, environ, getauxval(AT_SECURE) != 0);
		log_verbosity = s->verbose;
		if (!settings_program_allowed(s, program_invocation_short_name)) {
			st = refuse_program(s);
		} else {
			const char *why;

			/* An ordinary call, not an allocation: safe to dlopen here. */
			if (pmem_load(&why))
				log_msg(LOG_WARN, "cannot load libpmem (%s): persisting with msync",
					why);
			restore_allowed = 1;
			st = api_open_pool(s, cfg_pool, cfg_size, NULL, path, sizeof(path));
			restore_allowed = 0;
		}
	}
	pthread_mutex_unlock(&api_lock);
	return st;
}

/* Whether path names the pool this process has open. */
static int is_open_pool(const char *path)
{
	struct stat st;

	return !stat(path, &st) && st.st_dev == heap.pool.dev && st.st_ino == heap.pool.ino;
}

/* The pool is open when this returns BTD_OK (see the top of this file).
 * With cfg_pool (btd_cluster_create), the open pool must be that one,
 * unless BTD_POOL is set: BTD_POOL wins, as documented. */
static int pool_open_slow(const char *cfg_pool, size_t cfg_size)
{
	int st = BTD_OK;

	if (!store_is_open()) {
		if (!opener)
			st = open_here(cfg_pool, cfg_size);
		else if (!settings_program_allowed(opener_settings, program_invocation_short_name))
			st = refuse_program(opener_settings);
		else
			st = opener(cfg_pool, cfg_size);
	}
	const struct settings *s = opener ? opener_settings : &own_settings;

	if (!st && cfg_pool && !s->pool[0] && !is_open_pool(cfg_pool))
		st = err_set(BTD_ERR_BUSY, "btd_cluster_create: cfg.pool is %s, but this "
				"process has pool %s open already (an earlier allocation or btd_* "
				"call opened it): set BTD_POOL=%s so that every use opens that one",
				cfg_pool, heap.pool.path, cfg_pool);
	return st;
}

/* Whether p lies in no mapping at all: then only the pool of an earlier
 * run can make it valid, and the pool must be opened to know. */
static int unmapped(const void *p)
{
	unsigned char v;
	int saved = errno;
	int r = mincore((void *)((uintptr_t)p & ~(uintptr_t)(POOL_PAGE - 1)), 1, &v) &&
		errno == ENOMEM;

	errno = saved;
	return r;
}

/* The pool is open (the fast case: one load, on every btd_malloc and
 * btd_free), else open it. */
static inline int pool_ready(const char *cfg_pool, size_t cfg_size)
{
	if (likely(__atomic_load_n(&heap.open, __ATOMIC_ACQUIRE)) && !cfg_pool)
		return BTD_OK;
	return pool_open_slow(cfg_pool, cfg_size);
}

static BTD_NOINLINE void open_if_unmapped(const void *p)
{
	if (p && unmapped(p))
		pool_ready(NULL, 0);
}

/* A pointer into the pool of an earlier run, before this run opened it. */
static inline void open_if_pointed_at(const void *p)
{
	if (unlikely(!__atomic_load_n(&heap.open, __ATOMIC_ACQUIRE)))
		open_if_unmapped(p);
}

#pragma GCC visibility push(default)

const char *btd_strerror(int status)
{
	switch (status) {
	case BTD_OK: return "success";
	case BTD_ERR_NOMEM: return "out of memory (the pool is full)";
	case BTD_ERR_INVAL: return "invalid argument";
	case BTD_ERR_NOENT: return "no such pool or root";
	case BTD_ERR_BUSY: return "pool in use by another process";
	case BTD_ERR_FORMAT: return "not a pool, or a corrupt one";
	case BTD_ERR_VERSION: return "unsupported pool format version";
	case BTD_ERR_ADDR: return "the pool's address range is taken";
	case BTD_ERR_NOSPC: return "no space left on the pool's file system";
	case BTD_ERR_IO: return "I/O error";
	case BTD_ERR_PERM: return "permission denied";
	case BTD_ERR_TX: return "no transaction in progress";
	case BTD_ERR_TXFULL: return "the transaction's log is full";
	default: return "unknown btd status";
	}
}

const char *btd_last_error(void)
{
	return err_last();
}

void btd_config_init(struct btd_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->single_node = 1;
	cfg->magic = BTD_CONFIG_MAGIC;
}

static int status_errno(int st)
{
	switch (st) {
	case BTD_ERR_NOMEM: case BTD_ERR_NOSPC: return ENOMEM;
	case BTD_ERR_NOENT: return ENOENT;
	case BTD_ERR_BUSY: return EBUSY;
	case BTD_ERR_PERM: return EACCES;
	case BTD_ERR_ADDR: return EEXIST;
	case BTD_ERR_INVAL: case BTD_ERR_FORMAT: case BTD_ERR_VERSION: case BTD_ERR_TX:
		return EINVAL;
	case BTD_ERR_TXFULL: return ENOSPC;
	default: return EIO;
	}
}

struct btd_cluster *btd_cluster_create(struct btd_config *cfg)
{
	struct btd_config defaults;
	int st;

	if (!cfg) { /* the defaults: this machine, the pool BTD_POOL or the default */
		btd_config_init(&defaults);
		cfg = &defaults;
	}
	int inited = cfg->magic == BTD_CONFIG_MAGIC;

	if (!cfg->single_node) {
		const struct settings *s = opener ? opener_settings : &own_settings;
		const char *nodes = inited && cfg->nodes ? cfg->nodes : NULL;

		if (!opener && !store_is_open())
			settings_parse(&own_settings, environ, getauxval(AT_SECURE) != 0);
		if (!nodes && !s->replicas[0]) {
			errno = EINVAL;
			err_set(BTD_ERR_INVAL, "btd_cluster_create: single_node = 0 needs memory "
				"nodes: set cfg.nodes (after btd_config_init) or BTD_REPLICAS to "
				"host:port,... of running `btd memd`s");
			return NULL;
		}
		if (nodes && strlen(nodes) >= sizeof(cfg_nodes)) {
			errno = EINVAL;
			err_set(BTD_ERR_INVAL, "btd_cluster_create: cfg.nodes is too long");
			return NULL;
		}
		if (cfg->replicas > 8) {
			errno = EINVAL;
			err_set(BTD_ERR_INVAL, "btd_cluster_create: cfg.replicas is %u: at most 8, "
				"or 0 for all of cfg.nodes", cfg->replicas);
			return NULL;
		}
		if (nodes) {
			strcpy(cfg_nodes, nodes);
			cfg_min = cfg->replicas ? (int)cfg->replicas : -1;
		}
	}
	st = pool_ready(inited ? cfg->pool : NULL, inited ? cfg->pool_size : 0);
	if (!st && !cfg->single_node && !repl_active()) {
		/* The pool was open before (the preload): replicate it from now. */
		struct repl_config c;

		repl_config_of(opener ? opener_settings : &own_settings, &c);
		st = repl_configure(&c);
	}
	if (!st && !cfg->single_node)
		st = repl_point("btd_cluster_create"); /* reach the nodes now: fail early */
	if (st) {
		errno = status_errno(st);
		return NULL;
	}
	the_cluster.single_node = cfg->single_node;
	return &the_cluster;
}

/* Under the preload the pool stays open: malloc routing uses it until the
 * process exits (when it is closed cleanly); here it is only made durable. */
void btd_cluster_destroy(struct btd_cluster *c)
{
	if (c != &the_cluster)
		return;
	if (opener) {
		btd_sync();
		return;
	}
	pthread_mutex_lock(&api_lock);
	store_close();
	pthread_mutex_unlock(&api_lock);
}

void *btd_malloc(struct btd_cluster *c, size_t n)
{
	int st;

	if (c && c != &the_cluster) {
		errno = EINVAL;
		err_set(BTD_ERR_INVAL, "btd_malloc: %p is not a cluster of btd_cluster_create",
			   (void *)c);
		return NULL;
	}
	st = pool_ready(NULL, 0); /* c == NULL: the process's pool, opened as needed */
	if (st) {
		errno = status_errno(st);
		return NULL;
	}
	return heap_malloc(n);
}

void btd_free(void *p)
{
	open_if_pointed_at(p);
	if (p && heap_owns(p))
		heap_free(p);
	else if (p)
		err_set(BTD_ERR_INVAL, "btd_free(%p): not a block of the persistent heap", p);
}

static int in_pool(const void *p, size_t n)
{
	return heap_owns(p) && n <= (size_t)(heap.pool.data + heap.pool.npages * POOL_PAGE -
					     (const char *)p);
}

/* A durability point's status: BTD_ERR_IO when a write-back failed. */
static int durable(const char *what)
{
	int e = pmem_take_error();

	if (e)
		return err_set(BTD_ERR_IO, "%s: writing the pool back failed (%s): the data may "
			       "not be durable", what, err_text(e));
	return repl_point(what); /* and on the replicas */
}

int btd_persist(const void *p, size_t n)
{
	open_if_pointed_at(p);
	if (!in_pool(p, n))
		return err_set(BTD_ERR_INVAL, "btd_persist(%p, %zu): not inside the pool", p, n);
	heap_desc_sync();
	pmem_persist_why(p, n, PMEM_WHY_USER);
	return durable("btd_persist");
}

void *btd_memcpy(void *dst, const void *src, size_t n)
{
	open_if_pointed_at(dst);
	if (!in_pool(dst, n))
		return memcpy(dst, src, n);
	heap_desc_sync();
	pmem_copy_persist(dst, src, n, PMEM_WHY_USER);
	if (durable("btd_memcpy"))
		errno = EIO; /* it returns dst: the reason is in btd_last_error() */
	return dst;
}

void *btd_memset(void *dst, int c, size_t n)
{
	open_if_pointed_at(dst);
	memset(dst, c, n);
	if (in_pool(dst, n)) {
		heap_desc_sync();
		pmem_persist_why(dst, n, PMEM_WHY_USER);
		if (durable("btd_memset"))
			errno = EIO;
	}
	return dst;
}

int btd_sync(void)
{
	int st = pool_ready(NULL, 0);

	if (st)
		return st;
	heap_desc_sync();
	pmem_persist_why(heap.pool.data, heap.pool.heap_top * POOL_PAGE, PMEM_WHY_USER);
	return durable("btd_sync");
}

int btd_root_set(const char *name, const void *p)
{
	int st = pool_ready(NULL, 0);

	if (!st)
		st = roots_set(name, p);
	return st ? st : durable("btd_root_set");
}

/* NULL for a root that does not exist too; btd_last_error() tells which. */
void *btd_root_get(const char *name)
{
	void *p;

	if (!name) {
		err_set(BTD_ERR_INVAL, "btd_root_get: no name");
		return NULL;
	}
	if (pool_ready(NULL, 0))
		return NULL;
	p = roots_get(name);
	if (!p)
		err_set(BTD_ERR_NOENT, "btd_root_get(%s): no such root in pool %s", name,
			   heap.pool.path);
	return p;
}


/* ---- transactions (heap/tx.c) ----------------------------------------- */

int btd_tx_begin(void)
{
	int st = tx_depth() ? BTD_OK : pool_ready(NULL, 0);

	return st ? st : tx_begin();
}

int btd_tx_add(void *p, size_t n)
{
	return tx_add(p, n);
}

void *btd_tx_malloc(size_t n)
{
	return tx_malloc(n);
}

int btd_tx_free(void *p)
{
	return tx_free(p);
}

int btd_tx_commit(void)
{
	int st = tx_commit();

	/* The outermost commit is the durability point (a nested one only
	 * counts down). */
	return st || tx_depth() ? st : repl_point("btd_tx_commit");
}

void btd_tx_abort(void)
{
	tx_abort();
}

int btd_tx_depth(void)
{
	return tx_depth();
}

#pragma GCC visibility pop
