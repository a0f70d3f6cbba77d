/* pool_cmds.h: the pool commands of the btd tool. */
#ifndef BTD_TOOLS_POOL_CMDS_H
#define BTD_TOOLS_POOL_CMDS_H

int cmd_info(const char *path);
int cmd_check(const char *path);

#endif
