/* stats.h: call and byte counts per entry point and route (BTD_STATS).
 *
 * Counting costs nothing when BTD_STATS is off: the route sends calls to
 * the slow path only when stats are on (see route.h).  When on, counters are
 * relaxed atomics spread over a few cache-line-sized stripes so that threads
 * rarely share a line. */
#ifndef BTD_INTERPOSE_STATS_H
#define BTD_INTERPOSE_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "entry.h"

struct stats_cell {
	uint64_t calls;
	uint64_t bytes;
};

void stats_count(enum entry e, enum route_kind r, size_t bytes);

/* The sum over stripes, for reports and tests. */
struct stats_cell stats_get(enum entry e, enum route_kind r);

/* Start again from zero (a fork child counts its own calls). */
void stats_reset(void);

/* Write the report to fd: a header naming the process, then one row per
 * entry point and route that saw a call, then totals. */
void stats_write(int fd, const char *program, long pid);

#endif
