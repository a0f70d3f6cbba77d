/* api.c: the public btd_* API of include/btd.h over the heap.
 *
 * Linked into libbtd.so and into libbtd_preload.so alike: a program that
 * links libbtd and runs under the preload calls the preload's copies (it
 * comes first in the symbol search), so there is one heap per process. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "../common/compiler.h"
#include "../common/log.h"
#include "../common/settings.h"
#include "btd.h"
#include "heap.h"
#include "heap_int.h"
#include "pmem.h"
#include "roots.h"

extern char **environ;

#pragma GCC visibility push(default)

struct btd_cluster {
	int single_node;
};

static struct btd_cluster the_cluster;
static pthread_mutex_t api_lock = PTHREAD_MUTEX_INITIALIZER;

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
	default: return "unknown btd status";
	}
}

const char *btd_last_error(void)
{
	return pool_last_error();
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
	case BTD_ERR_INVAL: case BTD_ERR_FORMAT: case BTD_ERR_VERSION: return EINVAL;
	default: return EIO;
	}
}

struct btd_cluster *btd_cluster_create(struct btd_config *cfg)
{
	struct settings s;
	int inited = cfg && cfg->magic == BTD_CONFIG_MAGIC;
	int st = BTD_OK;

	if (!cfg) {
		errno = EINVAL;
		pool_error(BTD_ERR_INVAL, "btd_cluster_create: no config");
		return NULL;
	}
	if (!cfg->single_node || (inited && cfg->nodes)) {
		errno = EINVAL;
		pool_error(BTD_ERR_INVAL, "btd_cluster_create: memory nodes are not supported "
			   "by this build yet; set single_node = 1");
		return NULL;
	}
	settings_parse(&s, environ, 0);
	pthread_mutex_lock(&api_lock);
	if (!heap_is_open()) {
		const char *why;

		/* An ordinary call, not an allocation: safe to dlopen here. */
		if (pmem_load(&why))
			log_msg(LOG_WARN, "cannot load libpmem (%s): persisting with msync",
				why);
		char path[PATH_MAX];
		size_t size = inited && cfg->pool_size ? cfg->pool_size : s.pool_size;

		if (s.pool[0])
			strcpy(path, s.pool);
		else if (inited && cfg->pool && strlen(cfg->pool) < sizeof(path))
			strcpy(path, cfg->pool);
		else
			st = pool_default_path(path, sizeof(path), program_invocation_short_name, 0);
		if (!st)
			st = heap_open(path, size, s.gc, NULL);
	}
	pthread_mutex_unlock(&api_lock);
	if (st) {
		errno = status_errno(st);
		return NULL;
	}
	the_cluster.single_node = 1;
	return &the_cluster;
}

void btd_cluster_destroy(struct btd_cluster *c)
{
	if (c == &the_cluster) {
		pthread_mutex_lock(&api_lock);
		heap_close();
		pthread_mutex_unlock(&api_lock);
	}
}

void *btd_malloc(struct btd_cluster *c, size_t n)
{
	if (!c || !heap_is_open()) {
		errno = EINVAL;
		return NULL;
	}
	return heap_malloc(n);
}

void btd_free(void *p)
{
	if (p && heap_owns(p))
		heap_free(p);
	else if (p)
		pool_error(BTD_ERR_INVAL, "btd_free(%p): not a block of the persistent heap", p);
}

static int in_pool(const void *p, size_t n)
{
	return heap_owns(p) && n <= (size_t)(heap.pool.data + heap.pool.npages * POOL_PAGE -
					     (const char *)p);
}

int btd_persist(const void *p, size_t n)
{
	if (!in_pool(p, n))
		return pool_error(BTD_ERR_INVAL, "btd_persist(%p, %zu): not inside the pool", p, n);
	pmem_persist_why(p, n, PMEM_WHY_USER);
	return BTD_OK;
}

void *btd_memcpy(void *dst, const void *src, size_t n)
{
	if (in_pool(dst, n))
		return pmem_copy_persist(dst, src, n, PMEM_WHY_USER);
	return memcpy(dst, src, n);
}

void *btd_memset(void *dst, int c, size_t n)
{
	memset(dst, c, n);
	if (in_pool(dst, n))
		pmem_persist_why(dst, n, PMEM_WHY_USER);
	return dst;
}

int btd_sync(void)
{
	if (!heap_is_open())
		return pool_error(BTD_ERR_NOENT, "btd_sync: no pool is open");
	pmem_persist_why(heap.pool.data, heap.pool.heap_top * POOL_PAGE, PMEM_WHY_USER);
	return BTD_OK;
}

int btd_root_set(const char *name, const void *p)
{
	return roots_set(name, p);
}

void *btd_root_get(const char *name)
{
	return roots_get(name);
}

#pragma GCC visibility pop
