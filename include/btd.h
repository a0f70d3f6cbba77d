/* btd.h: the public API of bartender, a persistent-memory allocator.
 *
 * Unmodified programs need none of this: they run under
 *     LD_PRELOAD=libbtd_preload.so program
 * (or `btd run -- program`), and the environment chooses what goes where.
 * Programs that link libbtd use this header for named roots, persistence
 * points, transactions and the bartender cluster API; those arrive with the
 * persistent heap.  This version of the header carries the version only. */
#ifndef BTD_H
#define BTD_H

#define BTD_VERSION_MAJOR 0
#define BTD_VERSION_MINOR 1
#define BTD_VERSION_PATCH 0
#define BTD_VERSION_STRING "0.1.0"

#endif
