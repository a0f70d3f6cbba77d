/* roots.c: the named-root table; every update is failure-atomic. */
#include "roots.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "btd.h"
#include "heap_int.h"
#include "pmem.h"

static pthread_mutex_t roots_lock = PTHREAD_MUTEX_INITIALIZER;

/* FNV-1a, 64 bits. */
static uint64_t name_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325u;

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 0x100000001b3u;
	}
	return h;
}

static struct pool_root *find(const char *name, uint64_t tag)
{
	struct pool_root *r = heap.pool.roots;

	for (unsigned i = 0; i < POOL_ROOTS_MAX; i++)
		if (r[i].tag == tag && !strncmp(r[i].name, name, sizeof(r[i].name)))
			return &r[i];
	return NULL;
}

int roots_set(const char *name, const void *p)
{
	size_t len = name ? strlen(name) : 0;

	if (!heap.open)
		return pool_error(BTD_ERR_NOENT, "btd_root_set(%s): no pool is open", name);
	if (len == 0 || len > POOL_ROOT_NAME_MAX)
		return pool_error(BTD_ERR_INVAL, "btd_root_set: a root name has 1 to %u bytes",
				  POOL_ROOT_NAME_MAX);
	if (p && !pool_contains(&heap.pool, p))
		return pool_error(BTD_ERR_INVAL, "btd_root_set(%s, %p): not a pointer into the "
				  "persistent heap", name, p);
	uint64_t tag = ROOT_TAG(name_hash(name));
	int ret = BTD_OK;

	pthread_mutex_lock(&roots_lock);
	struct pool_root *r = find(name, tag);

	if (r && p) { /* one 8-byte store */
		__atomic_store_n(&r->ptr, (uint64_t)(uintptr_t)p, __ATOMIC_RELEASE);
		pmem_persist_why(&r->ptr, sizeof(r->ptr), PMEM_WHY_ROOT);
	} else if (r) { /* delete: clear the tag */
		__atomic_store_n(&r->tag, 0, __ATOMIC_RELEASE);
		pmem_persist_why(&r->tag, sizeof(r->tag), PMEM_WHY_ROOT);
	} else if (p) { /* new: name and pointer, then the tag that makes it live */
		for (unsigned i = 0; !r && i < POOL_ROOTS_MAX; i++)
			if (!heap.pool.roots[i].tag)
				r = &heap.pool.roots[i];
		if (!r) {
			ret = pool_error(BTD_ERR_NOMEM, "btd_root_set(%s): all %u roots are in use",
					 name, POOL_ROOTS_MAX);
		} else {
			memset(r->name, 0, sizeof(r->name));
			memcpy(r->name, name, len);
			r->ptr = (uint64_t)(uintptr_t)p;
			pmem_persist_why(r, sizeof(*r), PMEM_WHY_ROOT);
			__atomic_store_n(&r->tag, tag, __ATOMIC_RELEASE);
			pmem_persist_why(&r->tag, sizeof(r->tag), PMEM_WHY_ROOT);
		}
	}
	pthread_mutex_unlock(&roots_lock);
	return ret;
}

void *roots_get(const char *name)
{
	if (!heap.open || !name)
		return NULL;
	pthread_mutex_lock(&roots_lock);
	struct pool_root *r = find(name, ROOT_TAG(name_hash(name)));
	void *p = r ? (void *)(uintptr_t)__atomic_load_n(&r->ptr, __ATOMIC_ACQUIRE) : NULL;

	pthread_mutex_unlock(&roots_lock);
	return p;
}
