/* libbtd.c: what libbtd.so has and the preload does not -- the clean close
 * at exit, and btd_tag_begin/end stubs.
 *
 * Under the preload, a program linked to libbtd calls the preload's btd_*
 * (it comes first in the symbol search), whose destructor closes the pool
 * it opened; this library's own heap is then never opened, and its
 * destructor does nothing. */
#include "../common/compiler.h"
#include "btd.h"
#include "heap.h"
#include "pool.h"

/* A linked program that returns from main (or calls exit) without
 * btd_cluster_destroy: mark the pool clean, as the preload does, so that
 * the next open trusts it instead of recovering it as after a crash.  The
 * heap freezes (btd_malloc returns NULL, btd_free does nothing) and the
 * mapping stays, for destructors that run later and still read persistent
 * blocks.  A program's own destructors and atexit handlers run before
 * this one (libbtd is its dependency); when another thread still holds a
 * thread heap, heap_exit leaves the pool dirty -- slower, never wrong. */
__attribute__((destructor)) static void libbtd_fini(void)
{
	heap_exit();
}

BTD_EXPORT int btd_tag_begin(void)
{
	return pool_error(BTD_ERR_INVAL, "btd_tag_begin: tagging routes malloc, which only "
			  "the preload takes over: run under libbtd_preload.so (btd run)");
}

BTD_EXPORT int btd_tag_end(void)
{
	return btd_tag_begin();
}
