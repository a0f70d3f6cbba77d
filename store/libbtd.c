/* libbtd.c: what libbtd.so has and the preload does not -- fork handlers,
 * the clean close at exit, and btd_tag_begin/end stubs.
 *
 * Under the preload, a program linked to libbtd calls the preload's btd_*
 * (it comes first in the symbol search), whose destructor closes the pool
 * it opened; this library's own heap is then never opened, and its
 * destructor does nothing. */
#include <pthread.h>
#include <sys/auxv.h>

#include "../common/compiler.h"
#include "../common/crash.h"
#include "../common/error.h"
#include "../common/log.h"
#include "btd.h"
#include "../heap/heap.h"
#include "../heap/pmem_sim.h"
#include "store.h"

extern char **environ;

/* A fork child of a linked program must never write into its parent's
 * pool: the same fork handlers as the preload's (heap.c, FORK) give it a
 * private copy and freeze its heap, so that its exit does not mark the
 * parent's pool clean nor give its pages back.  Under the preload this
 * library's heap is never opened and its handlers do nothing. */
__attribute__((constructor)) static void libbtd_init(void)
{
	/* BTD_CRASH_AT and BTD_CRASH_SIM of the test builds: before any pool
	 * opens (nothing but a warning without them). */
	crash_init(environ, getauxval(AT_SECURE) != 0);
	pmem_sim_start();
	if (pthread_atfork(heap_fork_prepare, heap_fork_parent, heap_fork_child))
		log_msg(LOG_WARN, "pthread_atfork failed: a fork child could write into its "
			"parent's pool; do not fork while a pool is open");
}

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
	store_exit();
}

BTD_EXPORT int btd_tag_begin(void)
{
	return err_set(BTD_ERR_INVAL, "btd_tag_begin: tagging routes malloc, which only "
			  "the preload takes over: run under libbtd_preload.so (btd run)");
}

BTD_EXPORT int btd_tag_end(void)
{
	return btd_tag_begin();
}
