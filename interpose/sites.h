/* sites.h: BTD_TAG_SITES -- tag allocations by their call site.
 *
 * A site is tagged when one of the comma-separated globs matches the base
 * name of the shared object that made the call (libfoo.so.1, python3.11) or
 * the name of the function it was made from (my_alloc_node).  The answer
 * for each return address is cached, so dladdr and fnmatch run once per
 * call site, not once per call. */
#ifndef BTD_INTERPOSE_SITES_H
#define BTD_INTERPOSE_SITES_H

void sites_init(const char *globs);
int sites_tagged(const void *caller);

#endif
