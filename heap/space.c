/* space.c: free pages go back to the file system (decay, punch, back again).
 *
 * WHY.  A pool on tmpfs is RAM, and a page of the pool file holds its RAM
 * until the file says otherwise: a run the program freed stays in memory
 * for as long as the file lives, whether the heap reuses it or not.  So
 * free pages are punched out of the file (fallocate PUNCH_HOLE), and taken
 * back (fallocate) before they are handed out again: the file is sparse,
 * and a write into a hole must never be how the heap learns that the file
 * system is full (a SIGBUS, where an allocation failing is the contract).
 *
 * WHEN.  Punching every free run at once would put two system calls (and
 * a reopen of the file) on every large free and the next allocation --
 * the churn of a program that frees a buffer and allocates the same size
 * again.  So, as jemalloc decays its dirty pages, a free page stays backed
 * while recently freed, and is punched when it has been free for a decay
 * period.  Done coarsely, with two generations of "free and backed" pages
 * and a tick:
 *
 *       freed ──► fresh ──tick──► aged ──tick──► punched (a hole)
 *                   │               │                │
 *                   └───── taken ───┴──── taken ─────┴─► pool_back, in use
 *
 * A tick happens when a run is made or released (under heap.lock, never on
 * the small-block fast path) and the coarse clock says a period has passed
 * since the last one: it punches the aged pages -- free since before the
 * last tick, so for a period at least -- and the fresh ones age.  A page
 * is therefore given back between one and two periods after its free; and
 * when nothing was freed for a whole period, the fresh pages are punched
 * too, so that a program that stops freeing sees its memory go back at
 * the next run operation.  Steady churn reuses its pages long before they
 * age: no system call.  One tick's punches share one reopen of the file.
 *
 * WHAT IS KNOWN, PER PAGE.  Three bitmaps over the data pages (DRAM,
 * lazily touched anonymous mmaps: the heap never allocates through itself),
 * independent of how free pages are grouped into runs, so that merging and
 * splitting runs needs no care:
 *   fresh, aged   free and backed, by generation (never both)
 *   punched       free and maybe a hole: pool_back before it is handed out
 * A page in use has no bit set.  What the file holds at open is not known
 * (a crash, or a pool closed by an older btd), so every page the open
 * finds free is both punched and aged: backed again before use, punched at
 * the next purge (heap_purge_all, at the end of the open).  Pages in
 * [heap.top, heap_top) -- backed by the pool's growth, or freed at the
 * top -- are free pages like any other.
 *
 * At a clean close (and at exit, where the mapping stays for late
 * destructors) every free page is punched: free pages only, so live blocks
 * are never touched.  Nothing is written in the pool's format: holes are
 * a property of the file, and a page read as zero means nothing to the
 * recovery walk, which reads only descriptors and live blocks.
 *
 * READING A HOLE.  On tmpfs a read fault through a shared mapping fills a
 * hole with a new page, so the heap never reads free pages (the fork copy
 * skips punched ones). */
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "btd.h"
#include "heap.h"
#include "../common/error.h"
#include "heap_int.h"

/* A page is given back between one and two periods after its free. */
#define SPACE_DECAY_NS 500000000ull

static struct {
	uint64_t *fresh, *aged, *punched;
	size_t map_bytes;
	int opening;               /* frees now are what the open found */
	size_t backed_free;        /* pages in fresh or aged */
	size_t holes;              /* pages in punched */
	uint64_t last_tick;        /* coarse ns */
	uint64_t newest_free;      /* coarse ns of the last runtime free */
	uint64_t punch_calls, back_calls;
	uint64_t pages_punched, pages_backed;
} sp;

static uint64_t coarse_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- page bitmaps ------------------------------------------------------ */

/* The bits of word w inside pages [lo, hi). */
static inline uint64_t span_mask(size_t w, size_t lo, size_t hi)
{
	size_t b0 = w * 64;
	uint64_t m = ~(uint64_t)0;

	if (lo > b0)
		m &= ~(uint64_t)0 << (lo - b0);
	if (hi < b0 + 64)
		m &= ~(~(uint64_t)0 << (hi - b0));
	return m;
}

/* Set [lo, hi) in m but where `unless` has a bit; returns the bits set. */
static size_t bits_set(uint64_t *m, size_t lo, size_t hi, const uint64_t *unless)
{
	size_t n = 0;

	for (size_t w = lo / 64; w * 64 < hi; w++) {
		uint64_t k = span_mask(w, lo, hi) & ~m[w];

		if (unless)
			k &= ~unless[w];
		if (k) {
			m[w] |= k;
			n += (size_t)__builtin_popcountll(k);
		}
	}
	return n;
}

/* Clear [lo, hi) in m; returns the bits cleared. */
static size_t bits_clear(uint64_t *m, size_t lo, size_t hi)
{
	size_t n = 0;

	for (size_t w = lo / 64; w * 64 < hi; w++) {
		uint64_t k = span_mask(w, lo, hi) & m[w];

		if (k) {
			m[w] &= ~k;
			n += (size_t)__builtin_popcountll(k);
		}
	}
	return n;
}

/* The first page in [from, end) whose bit in m is `want`, else end. */
static size_t bits_next(const uint64_t *m, size_t from, size_t end, int want)
{
	for (size_t w = from / 64; w * 64 < end; w++) {
		uint64_t k = (want ? m[w] : ~m[w]) & span_mask(w, from, end);

		if (k)
			return w * 64 + (size_t)__builtin_ctzll(k);
	}
	return end;
}

/* ---- life cycle -------------------------------------------------------- */

int space_init(size_t npages)
{
	memset(&sp, 0, sizeof(sp));
	sp.map_bytes = (npages + 63) / 64 * sizeof(uint64_t);
	uint64_t **maps[] = { &sp.fresh, &sp.aged, &sp.punched };

	for (unsigned i = 0; i < 3; i++) {
		void *m = mmap(NULL, sp.map_bytes, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

		if (m == MAP_FAILED) {
			space_fini();
			return err_set(BTD_ERR_NOMEM, "cannot map the heap's page bitmaps "
					  "(%zu pages)", npages);
		}
		*maps[i] = m;
	}
	sp.opening = 1;
	return 0;
}

void space_ready(void)
{
	sp.opening = 0;
	sp.last_tick = sp.newest_free = coarse_ns();
}

void space_fini(void)
{
	uint64_t **maps[] = { &sp.fresh, &sp.aged, &sp.punched };

	for (unsigned i = 0; i < 3; i++) {
		if (*maps[i])
			munmap(*maps[i], sp.map_bytes);
		*maps[i] = NULL;
	}
}

/* ---- free, take, purge (caller holds heap.lock) ------------------------ */

void space_freed(size_t page, size_t n)
{
	if (sp.opening) { /* unknown: back before use, punch at the next purge */
		sp.holes += bits_set(sp.punched, page, page + n, NULL);
		sp.backed_free += bits_set(sp.aged, page, page + n, sp.fresh);
		return;
	}
	/* Pages that are (maybe) holes stay so, and an aged page stays aged. */
	for (size_t w = page / 64; w * 64 < page + n; w++) {
		uint64_t k = span_mask(w, page, page + n) & ~sp.fresh[w] & ~sp.aged[w] &
			     ~sp.punched[w];

		if (k) {
			sp.fresh[w] |= k;
			sp.backed_free += (size_t)__builtin_popcountll(k);
		}
	}
	sp.newest_free = coarse_ns();
}

int space_take(size_t page, size_t n)
{
	size_t end = page + n;

	sp.backed_free -= bits_clear(sp.fresh, page, end) + bits_clear(sp.aged, page, end);
	size_t first = bits_next(sp.punched, page, end, 1);

	if (first == end)
		return 0; /* all backed: the common case, no system call */
	/* One call from the first hole to the end: backing a page that is
	 * backed already changes nothing. */
	int ret = pool_file_open(&heap.pool);

	if (!ret) {
		sp.back_calls++;
		ret = pool_back(&heap.pool, first, end - first);
		pool_file_close(&heap.pool);
	}
	if (ret) {
		/* Partly backed, maybe: the holes stay holes to us, and are punched
		 * again at the next purge. */
		for (size_t w = first / 64; w * 64 < end; w++) {
			uint64_t k = span_mask(w, first, end) & sp.punched[w] & ~sp.aged[w];

			sp.aged[w] |= k;
			sp.backed_free += (size_t)__builtin_popcountll(k);
		}
		return ret;
	}
	size_t k = bits_clear(sp.punched, first, end);

	sp.holes -= k;
	sp.pages_backed += k;
	return 0;
}

/* Punch every aged page, in maximal spans, under one reopen of the file. */
static void punch_aged(void)
{
	size_t top = heap.pool.heap_top;
	int opened = 0;

	for (size_t pg = bits_next(sp.aged, 0, top, 1); pg < top;
	     pg = bits_next(sp.aged, pg, top, 1)) {
		size_t end = bits_next(sp.aged, pg, top, 0);

		if (!opened) {
			if (pool_file_open(&heap.pool))
				return; /* the pages stay backed; the next tick tries again */
			opened = 1;
		}
		sp.punch_calls++;
		if (pool_punch(&heap.pool, pg, end - pg))
			break;
		sp.backed_free -= bits_clear(sp.aged, pg, end);
		sp.holes += bits_set(sp.punched, pg, end, NULL);
		sp.pages_punched += end - pg;
		pg = end;
	}
	if (opened)
		pool_file_close(&heap.pool);
}

static void age_fresh(void)
{
	size_t words = (heap.pool.heap_top + 63) / 64;

	for (size_t w = 0; w < words; w++) {
		if (sp.fresh[w]) {
			sp.aged[w] |= sp.fresh[w];
			sp.fresh[w] = 0;
		}
	}
}

static void purge(uint64_t now, int all)
{
	if (all)
		age_fresh();
	punch_aged();
	if (!all)
		age_fresh();
	sp.last_tick = now;
}

void space_tick(void)
{
	if (!sp.backed_free && !heap.nempty && !heap.nidle)
		return; /* nothing to give back: not even a clock read */
	uint64_t now = coarse_ns();

	if (now - sp.last_tick < SPACE_DECAY_NS)
		return;
	int all = now - sp.newest_free >= SPACE_DECAY_NS;

	/* Runs retained (retain.c) and not used for a whole period go too,
	 * as pages freed that long ago. */
	if ((heap.nempty || heap.nidle) && now - heap.retain_used >= SPACE_DECAY_NS) {
		uint64_t newest = sp.newest_free;

		sp.last_tick = now; /* the releases below tick no deeper */
		retain_drop_all();
		sp.newest_free = newest;
		all = 1;
	}
	purge(now, all);
}

uint64_t space_now(void)
{
	return coarse_ns();
}

void space_purge_all(void)
{
	if (sp.aged && sp.backed_free)
		purge(coarse_ns(), 1);
}

size_t space_next(size_t from, size_t end, int hole)
{
	return bits_next(sp.punched, from, end, hole);
}

void space_stats(struct heap_stats *st)
{
	st->pages_free_backed = sp.backed_free;
	st->pages_returned = sp.holes;
	st->punch_calls = sp.punch_calls;
	st->back_calls = sp.back_calls;
	st->pages_punched_total = sp.pages_punched;
	st->pages_backed_total = sp.pages_backed;
}

/* Pages the bitmaps get wrong: a page of a live run with a bit set (it
 * could be punched under a live block, or handed out unbacked), a page in
 * both generations, counts that disagree with the bitmaps.  For tests and
 * checkers; caller holds heap.lock. */
size_t space_check(void)
{
	size_t bad = 0, backed = 0, holes = 0, top = heap.pool.heap_top;

	for (size_t w = 0; w < (top + 63) / 64; w++) {
		bad += (size_t)__builtin_popcountll(sp.fresh[w] & sp.aged[w]);
		bad += (size_t)__builtin_popcountll((sp.fresh[w] | sp.aged[w] | sp.punched[w]) &
						    ~span_mask(w, 0, top));
		backed += (size_t)__builtin_popcountll(sp.fresh[w] | sp.aged[w]);
		holes += (size_t)__builtin_popcountll(sp.punched[w]);
	}
	bad += (backed != sp.backed_free) + (holes != sp.holes);
	for (size_t pg = 0; pg < heap.top;) {
		page_entry e = heap.pagemap[pg];
		size_t n = !e ? 1 : PAGE_IS_LARGE(e) ? PAGE_LARGE_PAGES(e) : SLAB_PAGES;

		if (e) {
			for (size_t i = pg; i < pg + n; i++) {
				uint64_t bit = (uint64_t)1 << (i % 64);

				bad += ((sp.fresh[i / 64] | sp.aged[i / 64] | sp.punched[i / 64]) & bit) != 0;
			}
		}
		pg += n;
	}
	return bad;
}
