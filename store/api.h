/* api.h: how the public API (api.c) and the preload share one pool.
 *
 * Every btd_* call that needs the pool opens it when it is not open yet,
 * through one path in api.c.  Linked alone (libbtd.so), api.c opens the
 * pool itself: BTD_POOL, else cfg.pool, else the program's default.  Under
 * the preload the program's btd_* calls resolve to the preload's copy of
 * api.c, and the preload's constructor registers its opener here: the pool
 * then opens with the preload's settings, instances and fallbacks, and
 * malloc routing starts on it -- the API and the routing use one pool.
 * The heap never calls up into interpose/ but through this pointer. */
#ifndef BTD_HEAP_API_H
#define BTD_HEAP_API_H

#include <stddef.h>

#include "../common/settings.h"
#include "store.h"

/* Open the process's pool if it is not open yet.  cfg_pool and cfg_size
 * come from btd_cluster_create (NULL and 0 from every other call).
 * BTD_OK, or a btd_status with the reason in btd_last_error().  Called
 * outside any allocation, with no lock of api.c held. */
typedef int (*api_opener)(const char *cfg_pool, size_t cfg_size);

/* Register the opener and the settings it opens with (s must stay valid:
 * api.c reads BTD_POOL and BTD_POOL_PROGRAM from it). */
void api_set_opener(api_opener open, const struct settings *s);

/* Open the pool the settings name: BTD_POOL with %p and %i expanded, else
 * cfg_pool, else the program's default path.  When the pool is taken by
 * another process, the default path and a BTD_POOL with %i go on to the
 * next instance (0..15).  size: cfg_size, else BTD_POOL_SIZE.  On return
 * path holds the last path tried.  BTD_OK or a btd_status. */
int api_open_pool(const struct settings *s, const char *cfg_pool, size_t cfg_size,
		  struct heap_open_info *info, char *path, size_t path_size);

/* The process that has the pool at path open (pool_holder: the header's
 * owner, checked against /proc), its name in name[n]; 0 when none is
 * found.  No allocation. */
long api_pool_owner(const char *path, char *name, size_t n);

#endif
