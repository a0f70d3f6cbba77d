/* pool_cmds.h: the pool commands of the btd tool. */
#ifndef BTD_TOOLS_POOL_CMDS_H
#define BTD_TOOLS_POOL_CMDS_H

/* Exit status: 0, or 2 when the file is not a readable pool. */
int cmd_info(const char *path);

/* Exit status: 0 clean, 1 problems found (repaired with repair set), 2 the
 * pool cannot be checked or repaired. */
int cmd_check(const char *path, int repair);

#endif
