/* stats.c: striped relaxed counters and the exit report (see stats.h). */
#include "stats.h"

#include "../common/compiler.h"
#include "../common/log.h"

#define STATS_STRIPES 8

static const char *const entry_names[] = {
#define BTD_ENTRY_NAME(id, name) name,
	BTD_ENTRIES(BTD_ENTRY_NAME)
#undef BTD_ENTRY_NAME
};

static const char *const route_names[] = { "bootstrap", "transient", "persistent" };

static struct stats_cell cells[STATS_STRIPES][ENTRY_COUNT][ROUTE_COUNT]
	__attribute__((aligned(64)));

static unsigned next_stripe;
static BTD_TLS unsigned tls_stripe; /* stripe + 1; 0 = not chosen yet */

void stats_count(enum entry e, enum route_kind r, size_t bytes)
{
	unsigned s = tls_stripe;

	if (unlikely(!s))
		s = tls_stripe = __atomic_fetch_add(&next_stripe, 1, __ATOMIC_RELAXED)
					 % STATS_STRIPES + 1;
	struct stats_cell *c = &cells[s - 1][e][r];

	__atomic_fetch_add(&c->calls, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&c->bytes, bytes, __ATOMIC_RELAXED);
}

struct stats_cell stats_get(enum entry e, enum route_kind r)
{
	struct stats_cell sum = { 0, 0 };

	for (unsigned s = 0; s < STATS_STRIPES; s++) {
		sum.calls += __atomic_load_n(&cells[s][e][r].calls, __ATOMIC_RELAXED);
		sum.bytes += __atomic_load_n(&cells[s][e][r].bytes, __ATOMIC_RELAXED);
	}
	return sum;
}

void stats_reset(void)
{
	for (unsigned s = 0; s < STATS_STRIPES; s++)
		for (unsigned e = 0; e < ENTRY_COUNT; e++)
			for (unsigned r = 0; r < ROUTE_COUNT; r++)
				cells[s][e][r] = (struct stats_cell){ 0, 0 };
}

void stats_write(int fd, const char *program, long pid)
{
	struct stats_cell total[ROUTE_COUNT] = { { 0, 0 } };

	log_fd(fd, "btd: stats of %s (pid %ld)", program, pid);
	log_fd(fd, "btd:   %-34s %-10s %14s %18s", "entry point", "route", "calls", "bytes");
	for (unsigned e = 0; e < ENTRY_COUNT; e++) {
		for (unsigned r = 0; r < ROUTE_COUNT; r++) {
			struct stats_cell c = stats_get(e, r);

			if (!c.calls)
				continue;
			log_fd(fd, "btd:   %-34s %-10s %14llu %18llu", entry_names[e],
			       route_names[r], (unsigned long long)c.calls,
			       (unsigned long long)c.bytes);
			total[r].calls += c.calls;
			total[r].bytes += c.bytes;
		}
	}
	for (unsigned r = 0; r < ROUTE_COUNT; r++)
		log_fd(fd, "btd:   %-34s %-10s %14llu %18llu", "total", route_names[r],
		       (unsigned long long)total[r].calls,
		       (unsigned long long)total[r].bytes);
}
