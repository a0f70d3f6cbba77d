/* pmem_sim.h: the simulated power failure of the crash tests (pmem_sim.c).
 *
 * Compiled only with the meson option crash_points; without it
 * pmem_sim_start is nothing. */
#ifndef BTD_HEAP_PMEM_SIM_H
#define BTD_HEAP_PMEM_SIM_H

#ifdef BTD_CRASH_POINTS
#include <stdint.h>

/* At library start, after crash_init and before any pool opens: when
 * BTD_CRASH_SIM is set, install the simulation with its seed and make it
 * the action of the crash points. */
void pmem_sim_start(void);

/* Install the simulation over the backend pmem_select chooses (and over
 * the one in use now), with this seed; pmem_sim_remove takes it away. */
void pmem_sim_install(uint64_t seed);
void pmem_sim_remove(void);

/* The power failure, now: every word of the mapping that is not durable
 * keeps its new value or gets its durable one back, by the seed.  Returns
 * how many words were not durable; *reverted (when not NULL) how many got
 * their old value back.  The simulation stops there: later flushes and
 * drains only pass through.  The crash points call it just before the
 * SIGKILL; the unit tests call it and look at the file. */
uint64_t pmem_sim_power_fail(uint64_t *reverted);
#else
static inline void pmem_sim_start(void)
{
}
#endif

#endif
