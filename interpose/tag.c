/* tag.c: btd_tag_begin/end as the preload exports them (libbtd's own
 * versions, for programs without the preload, only report an error). */
#include "../common/compiler.h"
#include "btd.h"
#include "interpose.h"

BTD_EXPORT int btd_tag_begin(void)
{
	interpose_tag(1);
	return BTD_OK;
}

BTD_EXPORT int btd_tag_end(void)
{
	return interpose_tag(-1) ? BTD_ERR_INVAL : BTD_OK;
}
