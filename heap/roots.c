/* roots.c: the named-root table; every update is failure-atomic, every
 * entry checked (see ROOTS in layout.h). */
#include "roots.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "../common/crash.h"
#include "../common/error.h"
#include "../common/log.h"
#include "btd.h"
#include "heap.h"
#include "heap_int.h"
#include "pmem.h"
#include "tx.h"

static pthread_mutex_t roots_lock = PTHREAD_MUTEX_INITIALIZER;

/* Slots in the log of a transaction in flight (roots_lock). */
static uint64_t tx_held[POOL_ROOTS_MAX / 64];

static int held(const struct pool_root *r)
{
	size_t i = (size_t)(r - heap.pool.roots);

	return (tx_held[i / 64] >> (i % 64)) & 1;
}

/* A slot a new root may take. */
static int slot_free(const struct pool_root *r)
{
	return !r->tag && !held(r);
}

void roots_tx_release(struct pool_root *r)
{
	size_t i = (size_t)(r - heap.pool.roots);

	pthread_mutex_lock(&roots_lock);
	tx_held[i / 64] &= ~((uint64_t)1 << (i % 64));
	pthread_mutex_unlock(&roots_lock);
}

void roots_tx_reset(void)
{
	memset(tx_held, 0, sizeof(tx_held));
}

/* The address of slot r when it is a valid root of this pool, else 0. */
static uint64_t slot_addr(const struct pool_root *r)
{
	uint64_t a;

	if (!r->tag || !root_valid(r, heap.pool.hdr.minor, &a))
		return 0;
	if (a && !pool_contains(&heap.pool, (const void *)(uintptr_t)a))
		return 0;
	return a;
}

static struct pool_root *find(const char *name, uint64_t tag)
{
	struct pool_root *r = heap.pool.roots;

	for (unsigned i = 0; i < POOL_ROOTS_MAX; i++)
		if (r[i].tag == tag && !strncmp(r[i].name, name, sizeof(r[i].name)) &&
		    slot_addr(&r[i]))
			return &r[i];
	return NULL;
}

/* Inside a transaction: the slot is added to the log and written without
 * a flush; the commit makes it durable with the transaction's ranges, and
 * a rollback restores it.  Caller holds roots_lock. */
static int set_in_tx(struct pool_root *r, const char *name, size_t len, uint64_t tag,
		     uint64_t word, const void *p)
{
	if (!r && !p)
		return BTD_OK;
	for (unsigned i = 0; !r && i < POOL_ROOTS_MAX; i++)
		if (slot_free(&heap.pool.roots[i]))
			r = &heap.pool.roots[i];
	if (!r)
		return err_set(BTD_ERR_NOMEM, "btd_root_set(%s): all %u roots are in use",
			       name, POOL_ROOTS_MAX);
	int ret = tx_add_meta(r, sizeof(*r));

	if (ret)
		return ret;
	size_t i = (size_t)(r - heap.pool.roots);

	tx_held[i / 64] |= (uint64_t)1 << (i % 64);
	if (!p) {
		__atomic_store_n(&r->tag, 0, __ATOMIC_RELEASE);
	} else if (r->tag == tag) {
		__atomic_store_n(&r->ptr, word, __ATOMIC_RELEASE);
	} else {
		memset(r->name, 0, sizeof(r->name));
		memcpy(r->name, name, len);
		r->ptr = word;
		__atomic_store_n(&r->tag, tag, __ATOMIC_RELEASE);
	}
	return BTD_OK;
}

int roots_set(const char *name, const void *p)
{
	size_t len = name ? strlen(name) : 0;

	if (!heap.open)
		return err_set(BTD_ERR_NOENT, "btd_root_set(%s): no pool is open", name);
	if (len == 0 || len > POOL_ROOT_NAME_MAX)
		return err_set(BTD_ERR_INVAL, "btd_root_set: a root name has 1 to %u bytes",
				  POOL_ROOT_NAME_MAX);
	if (p && !pool_contains(&heap.pool, p))
		return err_set(BTD_ERR_INVAL, "btd_root_set(%s, %p): not a pointer into the "
				  "persistent heap", name, p);
	uint64_t tag = ROOT_TAG(root_name_hash(name));
	uint64_t word = root_word(tag, (uintptr_t)p);
	int ret = BTD_OK;

	pthread_mutex_lock(&roots_lock);
	struct pool_root *r = find(name, tag);

	if (tx_depth()) {
		ret = set_in_tx(r, name, len, tag, word, p);
		pthread_mutex_unlock(&roots_lock);
		return ret;
	}
	heap_desc_sync(); /* what p lies in, before p is durable */
	CRASH_POINT(CRASH_ROOT_SET);
	if (r && p) { /* one 8-byte store */
		__atomic_store_n(&r->ptr, word, __ATOMIC_RELEASE);
		pmem_persist_why(&r->ptr, sizeof(r->ptr), PMEM_WHY_ROOT);
	} else if (r) { /* delete: clear the tag */
		__atomic_store_n(&r->tag, 0, __ATOMIC_RELEASE);
		pmem_persist_why(&r->tag, sizeof(r->tag), PMEM_WHY_ROOT);
	} else if (p) { /* new: name and pointer, then the tag that makes it live */
		for (unsigned i = 0; !r && i < POOL_ROOTS_MAX; i++)
			if (slot_free(&heap.pool.roots[i]))
				r = &heap.pool.roots[i];
		if (!r) {
			ret = err_set(BTD_ERR_NOMEM, "btd_root_set(%s): all %u roots are in use",
					 name, POOL_ROOTS_MAX);
		} else {
			memset(r->name, 0, sizeof(r->name));
			memcpy(r->name, name, len);
			r->ptr = word;
			pmem_persist_why(r, sizeof(*r), PMEM_WHY_ROOT);
			CRASH_POINT(CRASH_ROOT_NAMED);
			__atomic_store_n(&r->tag, tag, __ATOMIC_RELEASE);
			pmem_persist_why(&r->tag, sizeof(r->tag), PMEM_WHY_ROOT);
		}
	}
	if (!ret)
		CRASH_POINT(CRASH_ROOT_DONE);
	pthread_mutex_unlock(&roots_lock);
	return ret;
}

void *roots_get(const char *name)
{
	if (!heap.open || !name)
		return NULL;
	pthread_mutex_lock(&roots_lock);
	struct pool_root *r = find(name, ROOT_TAG(root_name_hash(name)));
	void *p = r ? (void *)(uintptr_t)slot_addr(r) : NULL;

	pthread_mutex_unlock(&roots_lock);
	return p;
}

uint64_t roots_addr(unsigned i)
{
	return slot_addr(&heap.pool.roots[i]);
}

unsigned roots_count(void)
{
	unsigned n = 0;

	for (unsigned i = 0; i < POOL_ROOTS_MAX; i++)
		n += slot_addr(&heap.pool.roots[i]) != 0;
	return n;
}

unsigned roots_damaged(int clear, unsigned *first)
{
	unsigned n = 0;

	for (unsigned i = 0; i < POOL_ROOTS_MAX; i++) {
		struct pool_root *r = &heap.pool.roots[i];

		if (!r->tag || slot_addr(r))
			continue;
		if (!n++ && first)
			*first = i;
		if (clear) {
			__atomic_store_n(&r->tag, 0, __ATOMIC_RELEASE);
			pmem_flush_why(&r->tag, sizeof(r->tag), PMEM_WHY_ROOT);
		}
	}
	if (clear && n)
		pmem_drain_why(PMEM_WHY_ROOT);
	return n;
}

void roots_upgrade(void)
{
	struct pool *p = &heap.pool;

	if (p->hdr.minor >= 1)
		return;
	for (unsigned i = 0; i < POOL_ROOTS_MAX; i++) {
		struct pool_root *r = &p->roots[i];
		uint64_t a = slot_addr(r);

		if (a && r->ptr != root_word(r->tag, a)) {
			__atomic_store_n(&r->ptr, root_word(r->tag, a), __ATOMIC_RELEASE);
			pmem_flush_why(&r->ptr, sizeof(r->ptr), PMEM_WHY_ROOT);
		}
	}
	pmem_drain_why(PMEM_WHY_ROOT); /* the roots, before the header says 1.1 */
	p->hdr.minor = 1;
	pool_header_write(p);
	log_msg(LOG_INFO, "pool %s: format 1.0 upgraded to 1.1 (checked roots)", p->path);
}
