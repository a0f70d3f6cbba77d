/* api_tag.c: btd_tag_begin/end for programs linked to libbtd without the
 * preload, where no malloc is ours to route.  Under the preload, its own
 * versions (interpose/) come first in the symbol search. */
#include "../common/compiler.h"
#include "btd.h"
#include "pool.h"

BTD_EXPORT int btd_tag_begin(void)
{
	return pool_error(BTD_ERR_INVAL, "btd_tag_begin: tagging routes malloc, which only "
			  "the preload takes over: run under libbtd_preload.so (btd run)");
}

BTD_EXPORT int btd_tag_end(void)
{
	return btd_tag_begin();
}
