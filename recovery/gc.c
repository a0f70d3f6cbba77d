/* gc.c: the recovery pass -- walk, mark, sweep, commit (see recovery.h).
 *
 * WALK.  Page descriptors from page 0 to heap_top, with desc_run_pages
 * (layout.h), the one rule for a valid head: a head makes a slab or a large
 * run in the page map and the walk jumps over it; anything else is a free
 * page.  A large run that claims pages holding another valid head is cut
 * where that head begins (its length was damaged; a slab's is fixed).  The
 * walk writes nothing: the descriptors are reconciled with the page map
 * once, at the end (COMMIT), so a recovery that stops leaves them as found.
 *
 * MARK.  Conservative, from the named roots.  A word is a pointer to a
 * block when its value lies anywhere inside the block -- interior pointers
 * count, so that a root or a field may point at a member of a structure
 * (as C programs do); the price is that an integer which happens to fall
 * inside a block keeps it.  Every aligned 8-byte word of a marked block is
 * scanned; free blocks are never scanned, so stale pointers left in freed
 * memory resurrect nothing, and free-list links are stored complemented
 * (heap_int.h), so the mark never follows one.  The mark bits are the
 * block-start bitmap itself, cleared first.
 *
 * WILD POINTERS.  A reachable word that points into the pool's data below
 * heap_top, but into a page of no live run, is one of two things.  Into a
 * page that a released run covered (RELEASE MARKS in layout.h) it is a
 * dangling pointer -- correct C leaves one behind when it crashes between
 * a free and the reassignment of the field -- and is ignored (counted).
 * Into a page no run ever released it is damage: a run whose head was
 * lost.  Sweeping would hand those pages out again while reachable data
 * sits in them, so recovery stops: at a program's open the open fails and
 * the pool is left as it was; `btd check` reports it; `btd check --repair`
 * restores the runs (RESTORE) and the pool is opened again.
 *
 * SWEEP.  A slab with no marked block and a large run whose head is not
 * marked are released; the rest keep their marked blocks, and their free
 * lists are rebuilt from the bitmap when a thread first takes them.
 *
 * COMMIT.  Every descriptor below heap_top is set to what the page map
 * says (a head, or 0) where it differs, then persisted; the differences
 * are counted as damage repaired (besides the releases of the sweep). */
#include "recovery.h"

#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "../common/crash.h"
#include "../common/error.h"
#include "../common/log.h"
#include "../heap/heap_int.h"
#include "../heap/pmem.h"
#include "../heap/roots.h"
#include "btd.h"

_Static_assert(POOL_CLASSES == HEAP_CLASSES, "the format's classes are the heap's");
_Static_assert(POOL_SLAB_PAGES == SLAB_PAGES, "the format's slabs are the heap's");

/* During recovery the page map also names the head of every page of a
 * large run, so that interior pointers find their block. */
#define PAGE_INTERIOR(head) (((uintptr_t)(head) << 2) | 2)
#define PAGE_IS_INTERIOR(e) (((e) & 3) == 2)
#define PAGE_INTERIOR_HEAD(e) ((e) >> 2)

/* Wild pointers remembered for RESTORE; more are counted, not kept. */
#define WILD_KEEP ((size_t)1 << 20)

struct mark_stack {
	char **v;
	size_t n, cap;
};

static uint32_t class_recip[HEAP_CLASSES];
static enum recovery_mode mode = RECOVER_OPEN;
static struct recovery_report report;
static uint64_t *wild;   /* addresses of wild pointers (WILD_KEEP at most) */
static size_t nwild;

static recovery_progress_fn progress_fn;

void recovery_set_progress(recovery_progress_fn fn)
{
	progress_fn = fn;
}

static void progress_slow(const char *phase, uint64_t done, uint64_t total)
{
	static const char *cur;
	static uint64_t next;

	if (phase != cur) {
		cur = phase;
		next = 0;
	}
	if (done >= next) {
		progress_fn(phase, done, total);
		next = done + 0x4000;
	}
}

/* One test in the hot loops when nobody watches. */
static inline void progress(const char *phase, uint64_t done, uint64_t total)
{
	if (unlikely(progress_fn))
		progress_slow(phase, done, total);
}

void recovery_set_mode(enum recovery_mode m)
{
	mode = m;
	pool_set_private(m == RECOVER_CHECK);
}

const struct recovery_report *recovery_last(void)
{
	return &report;
}

unsigned recovery_root_count(void)
{
	return roots_count();
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *scratch(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static int push(struct mark_stack *st, char *b)
{
	if (st->n == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 1 << 16;
		char **v = scratch(cap * sizeof(*v));

		if (!v)
			return -1;
		if (st->v) {
			memcpy(v, st->v, st->n * sizeof(*v));
			munmap(st->v, st->cap * sizeof(*v));
		}
		st->v = v;
		st->cap = cap;
	}
	st->v[st->n++] = b;
	return 0;
}

/* Pages some released run covered (RELEASE MARKS in layout.h), built at
 * the first pointer into a free page: one pass over the descriptors. */
static uint64_t *released;
static size_t released_bytes;
static int marks_known; /* the pool records releases (format 1.1) */

static int was_released(size_t page)
{
	const struct pool *p = &heap.pool;

	if (!marks_known)
		return 1; /* format 1.0: no marks; every such pointer is taken as dangling */
	if (!released) {
		released_bytes = (p->heap_top + 64) / 8;
		released = scratch(released_bytes);
		if (!released)
			return 1;
		for (size_t pg = 0; pg < p->heap_top; pg++) {
			uint64_t d = p->desc[pg];

			if (!desc_is_mark(d, pg))
				continue;
			for (size_t i = pg; i < pg + DESC_FREE_PAGES(d) && i < p->heap_top; i++)
				released[i / 64] |= (uint64_t)1 << (i % 64);
		}
	}
	return (int)((released[page / 64] >> (page % 64)) & 1);
}

static void note_wild(uintptr_t v)
{
	size_t page = (v - (uintptr_t)heap.pool.data) / POOL_PAGE;

	if (was_released(page)) {
		report.dangling++;
		return;
	}
	if (!report.wild++)
		report.wild_first = v;
	if (!wild)
		wild = scratch(WILD_KEEP * sizeof(*wild));
	if (wild && nwild < WILD_KEEP)
		wild[nwild++] = v;
}

/* Mark the block that v points into, if any.  Returns -1 when out of memory. */
static inline int mark(struct mark_stack *st, uintptr_t v)
{
	uintptr_t lo = (uintptr_t)heap.pool.data;

	if (v - lo >= (uintptr_t)heap.pool.heap_top * POOL_PAGE)
		return 0;
	size_t page = (v - lo) / POOL_PAGE;
	page_entry e = heap.pagemap[page];
	char *b;

	if (!e) {
		note_wild(v);
		return 0;
	}
	if (PAGE_IS_INTERIOR(e)) {
		page = PAGE_INTERIOR_HEAD(e);
		e = heap.pagemap[page];
	}
	if (PAGE_IS_LARGE(e)) {
		if (PAGE_IS_LARGE_IDLE(e))
			return 0; /* retained (the audit of an open heap): no block */
		b = heap.pool.data + page * POOL_PAGE;
	} else {
		struct slab *s = (struct slab *)e;
		uint64_t off = v - (uintptr_t)s->start;

		if (s->list == LIST_RETAINED)
			return 0; /* likewise */
		uint64_t idx = (off * class_recip[s->cls]) >> 32;

		if (idx >= s->nblocks)
			return 0; /* the tail a slab cannot use */
		b = s->start + idx * s->size;
	}
	unsigned bit;
	uint64_t *w = heap_bitword(b, &bit);

	if (*w & ((uint64_t)1 << bit))
		return 0;
	*w |= (uint64_t)1 << bit;
	return push(st, b);
}

static size_t block_size(const char *b)
{
	size_t page = pool_page_of(&heap.pool, b);
	page_entry e = heap.pagemap[page];

	return PAGE_IS_LARGE(e) ? PAGE_LARGE_PAGES(e) * POOL_PAGE : ((struct slab *)e)->size;
}

/* Mark from values (roots, or wild pointers whose runs RESTORE brought
 * back), then everything they reach. */
static int mark_from(const uint64_t *v, size_t n, int roots)
{
	struct mark_stack st = { 0 };
	int ret = 0;

	report.wild = report.dangling = 0;
	nwild = 0;
	for (size_t i = 0; i < n && !ret; i++) {
		uint64_t a = roots ? roots_addr((unsigned)i) : v[i];

		if (a)
			ret = mark(&st, a);
	}
	uint64_t popped = 0;

	while (st.n && !ret) {
		char *b = st.v[--st.n];

		progress("mark", ++popped, 0);
		const uint64_t *w = (const uint64_t *)b;
		size_t nw = block_size(b) / sizeof(uint64_t);

		for (size_t i = 0; i < nw && !ret; i++)
			ret = mark(&st, w[i]);
	}
	if (st.v)
		munmap(st.v, st.cap * sizeof(*st.v));
	return ret ? err_set(BTD_ERR_NOMEM, "out of memory for the recovery GC's mark stack") : 0;
}

static int mark_all(void)
{
	return mark_from(NULL, POOL_ROOTS_MAX, 1);
}

/* Build the page map from the descriptors (see WALK).  -1: out of memory. */
static int walk(void)
{
	struct pool *p = &heap.pool;
	struct desc_walk w = desc_walk_start(p->desc, p->heap_top, p->hdr.minor);
	struct desc_run r;
	size_t free_from = 0;

	heap.top = p->heap_top;
	while (desc_walk_next(&w, &r)) {
		size_t pg = r.page, n = r.npages;

		progress("walk", pg, p->heap_top);
		if (DESC_KIND(r.d) == DESC_SLAB) {
			struct slab *s = slab_new(pg, DESC_SLAB_CLASS(r.d));

			if (!s)
				return -1;
			s->bump = s->nblocks;
			s->rebuild = 1;
		} else {
			run_map_large(pg, n);
			for (size_t i = 1; i < n; i++)
				heap.pagemap[pg + i] = PAGE_INTERIOR(pg);
		}
		if (free_from < pg)
			run_free(free_from, pg - free_from);
		free_from = pg + n;
	}
	if (free_from < heap.top)
		run_free(free_from, heap.top - free_from);
	report.cut_runs = w.cut;
	report.suspicious = w.suspicious;
	return 0;
}

/* Release what holds no marked block; count the rest. */
static void sweep(struct heap_open_info *info)
{
	struct pool *p = &heap.pool;

	for (size_t pg = 0; pg < p->heap_top;) {
		page_entry e = heap.pagemap[pg];

		progress("sweep", pg, p->heap_top);
		if (!e) {
			pg++;
		} else if (PAGE_IS_LARGE(e)) {
			size_t n = PAGE_LARGE_PAGES(e);

			for (size_t i = 1; i < n; i++)
				heap.pagemap[pg + i] = 0;
			if (heap_bit_test(heap.pool.data + pg * POOL_PAGE)) {
				info->kept_blocks++;
				info->kept_bytes += n * POOL_PAGE;
			} else {
				heap.pagemap[pg] = 0;
				run_desc_stage(pg, desc_make_free(n, pg));
				run_free(pg, n);
			}
			pg += n;
		} else {
			struct slab *s = (struct slab *)e;
			uint32_t live = heap_slab_live(s);

			info->kept_blocks += live;
			info->kept_bytes += (uint64_t)live * s->size;
			pg += SLAB_PAGES;
			if (live) {
				slab_park(s);
			} else {
				size_t head = pool_page_of(p, s->start);

				run_desc_stage(head, desc_make_free(SLAB_PAGES, head));
				for (unsigned i = 0; i < SLAB_PAGES; i++)
					heap.pagemap[head + i] = 0;
				run_free(head, SLAB_PAGES);
				s->next = heap.slab_free; /* spare, for the next slab */
				heap.slab_free = s;
			}
		}
	}
}

/* What the descriptor of page pg must be, by the page map (see COMMIT). */
static uint64_t desc_of(size_t pg)
{
	page_entry e = heap.pagemap[pg];

	if (!e || PAGE_IS_INTERIOR(e))
		return 0;
	if (PAGE_IS_LARGE(e))
		return desc_make_large(PAGE_LARGE_PAGES(e), pg);
	const struct slab *s = (const struct slab *)e;

	return s->start == heap.pool.data + pg * POOL_PAGE ? desc_make_slab(s->cls, SLAB_PAGES, pg) : 0;
}

/* A pool of format 1.0 kept no release marks, so any of its free pages may
 * have been released: each free gap gets a mark before the pool says 1.1,
 * so that a reachable pointer into one stays dangling, not a lost run. */
static void mark_free_gaps(void)
{
	struct pool *p = &heap.pool;

	for (size_t pg = 0, end; pg < p->heap_top; pg = end) {
		page_entry e = heap.pagemap[pg];

		if (e) {
			end = pg + (PAGE_IS_LARGE(e) ? PAGE_LARGE_PAGES(e) : SLAB_PAGES);
			continue;
		}
		for (end = pg + 1; end < p->heap_top && !heap.pagemap[end]; end++)
			;
		p->desc[pg] = desc_make_free(end - pg, pg);
	}
}

/* Reconcile the descriptors with the page map (a head where a run lives,
 * else 0 or a release mark); returns how many differed: damage. */
static uint64_t commit(void)
{
	struct pool *p = &heap.pool;
	uint64_t changed = 0;

	for (size_t pg = 0; pg < p->heap_top; pg++) {
		uint64_t want = desc_of(pg), cur = p->desc[pg];

		if (cur != want && !(want == 0 && desc_is_idle(cur, pg))) {
			run_desc_stage(pg, want);
			/* A pool of format 1.0 gets its checks: not damage. */
			changed += !(p->hdr.minor == 0 && cur == (want & DESC_BODY_MASK));
		}
	}
	CRASH_POINT(CRASH_RECOVERY_COMMIT);
	run_desc_sync(0, p->heap_top);
	return changed;
}

/* ---- RESTORE (btd check --repair) ----------------------------------------
 *
 * Wild pointers are grouped by the free gap they fall in and by 16-page
 * windows.  A group becomes a slab when the gap has room for one around
 * it: the head and class chosen are those that put the most pointers at
 * block starts -- the wild ones and those the surrounding pages hold
 * among themselves -- then the head that tiles the free pages from their
 * start, then the larger class (a 64-byte node's links fall on 16- and
 * 32-byte starts too).  Pointers only to page starts, with no such
 * structure around them, make a large run.  Otherwise the group becomes a large run from its first
 * page to its last.  Restored blocks may hold more than the lost run did;
 * nothing reachable is left in free pages. */

/* The block-start bitmap as recovery found it (before marking): where it
 * is intact (a clean pool, a process crash on tmpfs) it shows block starts
 * exactly; elsewhere it is one more hint. */
static const uint64_t *found_bits;

static int found_bit(size_t granule)
{
	return found_bits && (found_bits[granule / 64] >> (granule % 64)) & 1;
}

/* The found bitmap's block starts in page pg: how many, and whether one
 * is at the page's start. */
static unsigned page_starts(size_t pg, int *at_start)
{
	unsigned n = 0;
	size_t g0 = pg * (POOL_PAGE / POOL_GRANULE);

	*at_start = found_bit(g0);
	for (size_t g = g0; g < g0 + POOL_PAGE / POOL_GRANULE; g++)
		n += (unsigned)found_bit(g);
	return n;
}

/* A large block's head, by the found bitmap: one block start in the page,
 * at its start. */
static int looks_large(size_t pg)
{
	int at_start;

	return page_starts(pg, &at_start) == 1 && at_start;
}

static void sort_u64(uint64_t *v, size_t n)
{
	for (size_t gap = n / 2; gap > 0; gap /= 2)
		for (size_t i = gap; i < n; i++)
			for (size_t j = i; j >= gap && v[j - gap] > v[j]; j -= gap) {
				uint64_t t = v[j];

				v[j] = v[j - gap];
				v[j - gap] = t;
			}
}

static void gap_of(size_t pg, size_t *lo, size_t *hi)
{
	*lo = *hi = pg;
	while (*lo > 0 && !heap.pagemap[*lo - 1])
		--*lo;
	while (*hi + 1 < heap.pool.heap_top && !heap.pagemap[*hi + 1])
		++*hi;
}

static void restore_run(size_t head, size_t n, uint64_t d)
{
	struct pool *p = &heap.pool;

	for (size_t i = 1; i < n; i++)
		run_desc_stage(head + i, 0);
	run_desc_stage(head, d);
	run_desc_sync(head, n);
	/* Live in the page map too, so that marking goes on into it. */
	if (DESC_KIND(d) == DESC_SLAB) {
		struct slab *s = slab_new(head, DESC_SLAB_CLASS(d));

		if (s) {
			s->bump = s->nblocks;
			s->rebuild = 1;
		}
	} else {
		run_map_large(head, n);
		for (size_t i = 1; i < n; i++)
			heap.pagemap[head + i] = PAGE_INTERIOR(head);
	}
	report.restored_runs++;
	log_msg(LOG_WARN, "pool %s: restored a %s run of %zu pages at page %zu",
		p->path, DESC_KIND(d) == DESC_SLAB ? "slab" : "large", n, head);
}

/* Score head h and class c: how many pointers of the evidence fall on
 * block starts of that slab. */
static size_t slab_hits(const uint64_t *ev, size_t n, size_t h, unsigned c)
{
	uintptr_t start = (uintptr_t)heap.pool.data + h * POOL_PAGE;
	size_t hits = 0, size = heap_class_size[c];

	for (size_t i = 0; i < n; i++) {
		size_t off = ev[i] - start;

		hits += ev[i] >= start && off % size == 0 && off / size < SLAB_BYTES / size;
	}
	return hits;
}

static void restore_group(const uint64_t *t, size_t n, size_t glo, size_t ghi)
{
	uintptr_t data = (uintptr_t)heap.pool.data;
	size_t a = (t[0] - data) / POOL_PAGE, b = (t[n - 1] - data) / POOL_PAGE;
	size_t lo = a >= glo + SLAB_PAGES - 1 ? a - (SLAB_PAGES - 1) : glo;
	size_t hi = b + SLAB_PAGES - 1 <= ghi ? b + SLAB_PAGES - 1 : ghi;
	/* Heads that hold the first pointer: the group may span two slabs,
	 * and pointers the slab chosen does not hold wait for the next round. */
	size_t hlo = lo;
	/* The evidence: the wild pointers, and the words of the pages around
	 * them that point among those pages (a lost slab's blocks point at
	 * each other: a list's links land on its class's block starts). */
	size_t cap = n + (hi - lo + 1) * (POOL_PAGE / 8 + POOL_PAGE / POOL_GRANULE), m = n;
	uint64_t *ev = scratch(cap * sizeof(*ev));
	size_t best_h = SIZE_MAX, best_hits = 0;
	unsigned best_c = 0;

	if (!ev)
		return;
	memcpy(ev, t, n * sizeof(*ev));
	for (const uint64_t *w = (const uint64_t *)(data + lo * POOL_PAGE);
	     w < (const uint64_t *)(data + (hi + 1) * POOL_PAGE); w++)
		if (*w - (data + lo * POOL_PAGE) < (hi - lo + 1) * POOL_PAGE)
			ev[m++] = *w;
	/* ... and the block starts the found bitmap shows there (at most one
	 * per 16 bytes: the array was sized for one per 8). */
	for (size_t g = lo * (POOL_PAGE / POOL_GRANULE); g < (hi + 1) * (POOL_PAGE / POOL_GRANULE); g++)
		if (found_bit(g))
			ev[m++] = data + g * POOL_GRANULE;
	size_t best_score = 0;

	/* Ties (a class that divides the page fits at any head) go to the head
	 * that tiles the free pages from their start, as slabs carved from the
	 * top of the heap do. */
	for (size_t h = hlo; h <= a && h + SLAB_PAGES - 1 <= ghi; h++) {
		for (unsigned c = HEAP_CLASSES; c-- > 0;) {
			size_t hits = slab_hits(ev, m, h, c);
			size_t score = 2 * hits + ((h - glo) % SLAB_PAGES == 0);

			if (best_h == SIZE_MAX || score > best_score) {
				best_h = h;
				best_c = c;
				best_hits = hits;
				best_score = score;
			}
		}
	}
	munmap(ev, cap * sizeof(*ev));
	/* A class that divides the page puts its blocks at the same addresses
	 * from any head: take the head that tiles the free pages from their
	 * start, where there is one. */
	if (best_h != SIZE_MAX && POOL_PAGE % heap_class_size[best_c] == 0) {
		for (size_t h = hlo; h <= a && h + SLAB_PAGES - 1 <= ghi; h++) {
			if ((h - glo) % SLAB_PAGES == 0) {
				best_h = h;
				break;
			}
		}
	}
	/* Pointers only to page starts, and nothing around them that looks
	 * like a slab's blocks pointing at each other: a large block.  Its
	 * length is lost; it runs to the end of the free pages (more than it
	 * had, perhaps: a leak, never reachable data in free pages). */
	int aligned = 1;

	for (size_t i = 0; i < n; i++)
		aligned &= t[i] % POOL_PAGE == 0;
	if (best_h != SIZE_MAX && !(aligned && best_hits <= n))
		restore_run(best_h, SLAB_PAGES, desc_make_slab(best_c, SLAB_PAGES, best_h));
	else
		restore_run(a, (aligned ? ghi : b) - a + 1, desc_make_large((aligned ? ghi : b) - a + 1, a));
}

static void restore(void)
{
	uintptr_t data = (uintptr_t)heap.pool.data;

	sort_u64(wild, nwild);
	for (size_t i = 0; i < nwild;) {
		size_t pg = (wild[i] - data) / POOL_PAGE, glo, ghi, j = i + 1;

		if (heap.pagemap[pg]) { /* a run restored for an earlier group */
			i++;
			continue;
		}
		gap_of(pg, &glo, &ghi);
		if (wild[i] % POOL_PAGE == 0 && looks_large(pg)) {
			/* A large block: to the next block start the bitmap shows. */
			size_t end = pg + 1;

			while (end <= ghi && !page_starts(end, &(int){ 0 }))
				end++;
			restore_run(pg, end - pg, desc_make_large(end - pg, pg));
			i++;
			continue;
		}
		while (j < nwild && (wild[j] - data) / POOL_PAGE < pg + SLAB_PAGES &&
		       (wild[j] - data) / POOL_PAGE <= ghi &&
		       !(wild[j] % POOL_PAGE == 0 && looks_large((wild[j] - data) / POOL_PAGE)))
			j++;
		restore_group(wild + i, j - i, glo, ghi);
		i = j;
	}
}

/* ---- the pass ------------------------------------------------------------ */

/* Blocks the bitmap calls allocated before marking, that marking did not
 * keep: what recovery reclaims (counted at valid block starts only, so
 * that the report adds up: kept + reclaimed = allocated + resurrected). */
static void count_reclaimed(const uint64_t *before, struct heap_open_info *info)
{
	size_t words = heap.pool.heap_top * POOL_PAGE / POOL_GRANULE / 64;

	for (size_t w = 0; w < words; w++) {
		uint64_t v = before[w] & ~heap.pool.bitmap[w];

		while (v) {
			const char *b = heap.pool.data + (w * 64 + (unsigned)__builtin_ctzll(v)) *
							POOL_GRANULE;
			page_entry e = heap.pagemap[pool_page_of(&heap.pool, b)];

			v &= v - 1;
			if (!e || PAGE_IS_INTERIOR(e))
				continue;
			if (PAGE_IS_LARGE(e)) {
				if ((uintptr_t)b % POOL_PAGE)
					continue;
				info->freed_bytes += PAGE_LARGE_PAGES(e) * POOL_PAGE;
			} else {
				const struct slab *s = (const struct slab *)e;
				size_t off = (size_t)(b - s->start);

				if (off % s->size || off / s->size >= s->nblocks)
					continue;
				info->freed_bytes += s->size;
			}
			info->freed_blocks++;
		}
	}
}

static int stop(const char *what)
{
	report.stopped = 1;
	return err_set(BTD_ERR_FORMAT, "pool %s is damaged: %s; recovery stopped and left it "
			  "as it was: run `btd check --repair %s`", heap.pool.path, what,
			  heap.pool.path);
}

/* A damaged header copy may have been the newer one: heap_top is then
 * taken as far as the descriptors show live runs. */
static void heap_top_from_descriptors(struct pool *p)
{
	size_t top = p->heap_top;

	struct desc_walk w = desc_walk_start(p->desc, p->npages, p->hdr.minor);
	struct desc_run r;

	while (desc_walk_next(&w, &r))
		if (r.page + r.npages > top)
			top = r.page + r.npages;
	if (top == p->heap_top)
		return;
	/* The newer header had backed them; back them again in case it was
	 * not so (a write into a hole must never be how we learn). */
	if (pool_file_open(p) || pool_back(p, p->heap_top, top - p->heap_top)) {
		pool_file_close(p);
		return;
	}
	pool_file_close(p);
	log_msg(LOG_WARN, "pool %s: live runs reach page %zu, above the %zu pages of the "
		"header copy that is left: taken as the heap's top", p->path, top, p->heap_top);
	report.top_raised = top - p->heap_top;
	p->heap_top = p->hdr.heap_top = top;
}

int recovery_run(enum btd_gc gc, struct heap_open_info *info)
{
	struct pool *p = &heap.pool;
	uint64_t t0 = now_ns();
	char what[200];
	int ret = 0;

	memset(&report, 0, sizeof(report));
	if (released)
		munmap(released, released_bytes);
	released = NULL;
	marks_known = p->hdr.minor >= 1;
	for (unsigned c = 0; c < HEAP_CLASSES; c++)
		class_recip[c] = (uint32_t)((((uint64_t)1 << 32) + heap_class_size[c] - 1) /
					    heap_class_size[c]);
	info->was_dirty = p->was_dirty;
	if (p->bad_header_copy >= 0)
		heap_top_from_descriptors(p);
	/* Nothing has been written yet: a clean pool is trusted only while its
	 * metadata is what its clean close left (CLEAN FLAG in layout.h). */
	report.meta_mismatch = p->clean_sum && pool_meta_sum(p) != p->clean_sum;
	report.damaged_roots = roots_damaged(0, &report.first_damaged_root);
	report.roots = roots_count();
	if (report.damaged_roots && mode == RECOVER_OPEN) {
		log_format(what, sizeof(what), "%u root slots fail their checks (the first is slot "
			   "%u)", report.damaged_roots, report.first_damaged_root);
		return stop(what);
	}
	if (report.meta_mismatch && report.roots == 0 && p->clean_roots && mode == RECOVER_OPEN)
		return stop("its metadata does not match what its clean close recorded, and none "
			    "of the roots it had is left (the root table was damaged)");
	if (report.meta_mismatch && !report.roots && !p->clean_roots)
		report.meta_mismatch = 0; /* rootless then and now: reset, nothing to lose */
	if (report.meta_mismatch)
		log_msg(mode == RECOVER_CHECK ? LOG_INFO : LOG_WARN, "pool %s: its metadata does "
			"not match what its clean close recorded: recovered as after a crash",
			p->path);
	if (mode == RECOVER_REPAIR) {
		pool_mark_open(p);
		roots_damaged(1, NULL);
	}
	if (report.roots == 0) {
		/* Nothing can be reachable: drop it all without looking. */
		if (p->heap_top) {
			pool_mark_open(p);
			ret = pool_reset(p);
			if (ret)
				return ret;
			info->reset = 1;
		}
		heap.top = 0;
		if (mode != RECOVER_CHECK)
			roots_upgrade();
		info->gc_ns = now_ns() - t0;
		return 0;
	}
	/* A clean pool of format 1.0 recorded no checksum to be trusted by: it
	 * is collected once, at the open that upgrades it. */
	int collect = gc == GC_ALWAYS ||
		      (gc == GC_AUTO && (p->was_dirty || report.meta_mismatch || p->clean_collect ||
					 p->hdr.minor == 0));

	if (walk())
		return err_set(BTD_ERR_NOMEM, "out of memory while opening pool %s", p->path);
	if (report.suspicious && !collect && gc != GC_NEVER) {
		/* A clean pool, yet descriptors fail their checks: it is not what
		 * its close left; recover it as after a crash. */
		log_msg(mode == RECOVER_CHECK ? LOG_INFO : LOG_WARN, "pool %s was closed cleanly, "
			"but %llu page descriptors fail their checks: recovered as after a crash",
			p->path, (unsigned long long)report.suspicious);
		report.meta_mismatch = 1;
		collect = 1;
	}
	uint64_t *before = NULL;
	size_t bitmap_bytes = p->heap_top * POOL_PAGE / POOL_GRANULE / 8;

	if (collect) {
		/* The bitmap is cleared to mark into, and put back if recovery
		 * stops: a clean pool's meta_sum (or a dirty pool, whose bitmap
		 * nobody trusts) covers a crash in between. */
		info->collected = 1;
		before = scratch(bitmap_bytes + 8);
		if (!before)
			return err_set(BTD_ERR_NOMEM, "out of memory while recovering pool %s",
					  p->path);
		memcpy(before, p->bitmap, bitmap_bytes);
		memset(p->bitmap, 0, bitmap_bytes);
		ret = mark_all();
		if (!ret && report.wild && mode == RECOVER_REPAIR) {
			/* Restore the runs the wild pointers show, mark on from them,
			 * until nothing reachable is left in free pages; then the pool
			 * is opened again, to be walked from its repaired descriptors. */
			uint64_t first_wild = report.wild, first_at = report.wild_first;

			pool_mark_open(p);
			found_bits = before;
			for (unsigned round = 0; !ret && report.wild && round < 100000; round++) {
				uint64_t *again = scratch(nwild * sizeof(*again) + 8);

				if (!again) {
					ret = err_set(BTD_ERR_NOMEM, "out of memory while "
							 "repairing pool %s", p->path);
					break;
				}
				size_t n = nwild;

				memcpy(again, wild, n * sizeof(*again));
				restore();
				ret = mark_from(again, n, 0);
				munmap(again, n * sizeof(*again) + 8);
			}
			found_bits = NULL;
			if (!ret && report.wild)
				ret = err_set(BTD_ERR_FORMAT, "pool %s: reachable pointers still lead "
						 "into free pages after restoring %llu runs",
						 p->path, (unsigned long long)report.restored_runs);
			report.wild = first_wild; /* what was found, for the report */
			report.wild_first = first_at;
			report.restart = 1;
			if (!ret)
				ret = err_set(BTD_ERR_FORMAT, "pool %s: runs restored; open it again",
						 p->path);
		} else if (!ret && report.wild && mode == RECOVER_OPEN) {
			log_format(what, sizeof(what), "%llu reachable pointers lead into pages no "
				   "run ever held (the first: %p): a lost run",
				   (unsigned long long)report.wild, (void *)(uintptr_t)report.wild_first);
			ret = stop(what);
		}
		if (!ret)
			count_reclaimed(before, info);
		else /* stopped: leave the bitmap as found, too */
			memcpy(p->bitmap, before, bitmap_bytes);
		munmap(before, bitmap_bytes + 8);
		if (ret)
			return ret;
	}
	pool_mark_open(p);
	sweep(info);
	if (p->hdr.minor == 0 && mode != RECOVER_CHECK)
		mark_free_gaps();
	CRASH_POINT(CRASH_RECOVERY_SWEPT);
	report.bad_descs = commit();
	if (mode != RECOVER_CHECK)
		roots_upgrade(); /* after commit: the descriptors have their checks */
	if (report.bad_descs || report.cut_runs)
		log_msg(mode == RECOVER_CHECK ? LOG_INFO : LOG_WARN,
			"pool %s: %llu page descriptors were damaged (%llu large runs cut where "
			"another run began) and were repaired", p->path,
			(unsigned long long)report.bad_descs, (unsigned long long)report.cut_runs);
	info->gc_ns = now_ns() - t0;
	return 0;
}

/* The audit of the crash tests and `btd check`: walk from the roots with
 * a private mark set and compare with the heap's bitmap.  Reachable blocks
 * must all be allocated (none free while reachable) and lie in live runs;
 * allocated blocks that nothing reaches are leaks. */
void recovery_audit(struct recovery_audit *a)
{
	size_t words = heap.pool.heap_top * POOL_PAGE / POOL_GRANULE / 64;
	uint64_t *saved = scratch(words * 8 + 8);

	memset(a, 0, sizeof(*a));
	if (!saved)
		return;
	pthread_mutex_lock(&heap.lock);
	/* Mark into the bitmap itself, then compare and restore it. */
	memcpy(saved, heap.pool.bitmap, words * 8);
	for (size_t pg = 0; pg < heap.top;) { /* interior pages, as recovery sees them */
		page_entry e = heap.pagemap[pg];

		if (e && PAGE_IS_LARGE(e)) {
			for (size_t i = 1; i < PAGE_LARGE_PAGES(e); i++)
				heap.pagemap[pg + i] = PAGE_INTERIOR(pg);
			pg += PAGE_LARGE_PAGES(e);
		} else {
			pg += e ? SLAB_PAGES : 1;
		}
	}
	memset(heap.pool.bitmap, 0, words * 8);
	uint64_t wild_before = report.wild, first_before = report.wild_first;
	uint64_t dangling_before = report.dangling;

	if (released)
		munmap(released, released_bytes);
	released = NULL;

	mark_all();
	a->wild = report.wild;
	a->wild_first = report.wild_first;
	a->dangling = report.dangling;
	report.wild = wild_before;
	report.wild_first = first_before;
	report.dangling = dangling_before;
	for (size_t w = 0; w < words; w++) {
		uint64_t reach = heap.pool.bitmap[w], alloc = saved[w];

		a->reachable += (uint64_t)__builtin_popcountll(reach);
		a->allocated += (uint64_t)__builtin_popcountll(alloc);
		a->reachable_free += (uint64_t)__builtin_popcountll(reach & ~alloc);
		a->leaked += (uint64_t)__builtin_popcountll(alloc & ~reach);
	}
	memcpy(heap.pool.bitmap, saved, words * 8);
	for (size_t pg = 0; pg < heap.top; pg++)
		if (PAGE_IS_INTERIOR(heap.pagemap[pg]))
			heap.pagemap[pg] = 0;
	pthread_mutex_unlock(&heap.lock);
	munmap(saved, words * 8 + 8);
}
