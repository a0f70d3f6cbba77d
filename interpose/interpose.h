/* interpose.h: what the interposer's modules share, and what the unit tests
 * reach.  The entry points are compiled twice from alloc.c: as malloc,
 * free, ... into libbtd_preload.so, and as interpose_malloc,
 * interpose_free, ... into the internal library the tests link, so that the
 * tests exercise the very code the preload exports without preloading the
 * test runner. */
#ifndef BTD_INTERPOSE_INTERPOSE_H
#define BTD_INTERPOSE_INTERPOSE_H

#include <stddef.h>

#include "../common/settings.h"
#include "../heap/heap.h"

extern struct settings interpose_settings;

/* What the stats report says about the persistent heap. */
struct interpose_counters {
	struct heap_open_info open; /* what opening the pool found and did */
	unsigned long heap_fallbacks; /* times the pool could not be opened */
	unsigned long pool_shared;    /* ... because a process of this tree held it */
	int pool_filtered;            /* BTD_POOL_PROGRAM does not name this program */
	unsigned long unpooled;       /* allocations the policy chose, served by
				       * jemalloc for want of a pool (with stats) */
	unsigned long heap_full;      /* allocations the pool could hold but refused */
	unsigned long heap_too_big;   /* allocations larger than the whole pool */
};

extern struct interpose_counters interpose_counters;

/* Read the settings from envp, bind jemalloc's fast paths and open the
 * fast path.  Returns the number of problems reported on stderr. */
int interpose_init(char *const *envp, int secure);

/* Make the public API open the pool through the route (store/api.h), so
 * that the API and malloc routing share it.  The preload's constructor
 * calls it. */
void interpose_register_api(void);

/* The depth guard around btd's own code (see route.c). */
void interpose_enter(void);
void interpose_leave(void);

/* btd_tag_begin (+1) / btd_tag_end (-1) of this thread; -1 on an
 * unmatched end. */
int interpose_tag(int delta);

/* fork handlers and the exit of the process. */
void interpose_fork_prepare(void);
void interpose_fork_parent(void);
void interpose_fork_child(void);
void interpose_exit(void);

void *interpose_malloc(size_t n);
void *interpose_calloc(size_t count, size_t n);
void *interpose_realloc(void *p, size_t n);
void *interpose_reallocarray(void *p, size_t count, size_t n);
void interpose_free(void *p);
int interpose_posix_memalign(void **out, size_t align, size_t n);
void *interpose_aligned_alloc(size_t align, size_t n);
void *interpose_memalign(size_t align, size_t n);
void *interpose_valloc(size_t n);
void *interpose_pvalloc(size_t n);
size_t interpose_malloc_usable_size(void *p);

#endif
