/* layout.h: the on-media format of a bartender pool.
 *
 * Only heap/ and recovery/ include this file.  Every field is fixed-width and
 * little-endian (the host's: pools are not portable across byte orders, and
 * the magic says so when one is opened on the wrong kind of host).
 *
 *   offset          size              what
 *   0               4 KiB             header copy 0
 *   4 KiB           4 KiB             header copy 1
 *   8 KiB           64 KiB            root table: 1024 named roots of 64 bytes
 *   72 KiB          16 x log_bytes    transaction logs (format 1.2), one per thread in a transaction
 *   logs_end        npages * 8        page descriptors, one u64 per data page
 *   desc_end        npages * 4 KiB/128  block-start bitmap, 1 bit per 16 bytes
 *   data_off        npages * 4 KiB    data: slabs and large runs, in pages
 *
 * The file is as long as the reservation (BTD_POOL_SIZE) but sparse: space
 * is taken with fallocate as the heap grows (heap_top), so a full file
 * system is a clean error when the heap grows, never a SIGBUS later.  The
 * pool is mapped at `base`, the address recorded at creation, so raw
 * pointers stored in blocks stay valid across runs.
 *
 * HEADER.  Two copies; each carries an epoch and a checksum.  An update
 * writes the copy with the older epoch, with epoch + 1, and persists it: a
 * torn write leaves the other copy valid.  Open takes the valid copy with
 * the newest epoch.
 *
 * ROOTS.  An entry is in use when `tag` is not 0, and valid when `tag` is
 * ROOT_TAG(root_name_hash(name)) of a NUL-terminated name and `ptr` carries
 * its check (format 1.1): bits 0..47 hold the address, bits 48..63 a 16-bit
 * hash of the address and the tag, so the whole word is still written with
 * one failure-atomic 8-byte store.  Random bytes over the table pass both
 * checks with a probability of about 2^-79 per slot.  Creating a root
 * writes name and ptr, persists, then writes tag and persists; changing
 * the pointer of a live root is one 8-byte store and a persist; deleting
 * clears tag.  Pools of format 1.0 have no check in ptr (its top 16 bits
 * are 0); a writable open adds the checks, root by root, and then records
 * minor 1 -- a crash in between leaves words of either form, and both are
 * accepted while the header says 1.0.
 *
 * PAGE DESCRIPTORS.  Stored when a run is created or released; a release
 * is persisted before the run's pages can be reused, a new head (and the
 * release mark or new class of a run kept empty for reuse) at the next
 * durability point, before anything in the run can be durably reachable
 * (heap/retain.c says why every state in between is one of these).
 * A run (a slab of small blocks, or one large block) is live when the
 * descriptor of its first page is a head (LARGE or SLAB) that desc_run_pages
 * accepts; the descriptors of its other pages are 0.  A release clears the
 * head before the pages can be reused, so a head never lies inside another
 * live run.  Recovery, the checker and `btd info` walk the descriptors from
 * page 0 with desc_run_pages, jumping over each live run.  Anything else is
 * damage: a descriptor that is not a valid head, or a head inside another
 * run.  When a large run claims pages that hold another valid head, its
 * length was damaged (a slab's is fixed): it is cut where that head begins.
 *
 * RELEASE MARKS (format 1.1).  Releasing a run writes DESC_FREE(npages) at
 * its head instead of 0, and publishing a head over a mark that covered
 * more pages first moves the mark's rest behind the new run.  So every page
 * that was ever part of a released run is covered by a mark, and recovery
 * can tell a reachable pointer into such a page -- a dangling pointer, as
 * correct C leaves behind (free, then a crash before the field is
 * reassigned), to be ignored -- from one into a page no run ever released:
 * a lost head, which is damage.  Marks are hints: stale ones inside live
 * runs mean nothing, and neither 0 nor a mark is ever damage.
 *
 * BITMAP.  One bit per 16-byte granule of data, set at the start of each
 * allocated block.  Kept in memory order without flushes while the heap
 * runs; persisted whole at a clean close.  After a crash it is rebuilt by
 * the recovery GC and never trusted.
 *
 * TRANSACTION LOGS (format 1.2).  POOL_LOG_SLOTS undo logs of log_bytes
 * each (POOL_LOG_BYTES, or less in a pool under 16 MiB: pool_layout); a thread holds one for the length of a transaction.
 * A slot starts with struct tx_log_head; entries follow, each a struct
 * tx_entry and then `len` bytes: the snapshot of [addr, addr + len) taken
 * before the transaction changed it, the whole padded to a cache line
 * (tx_entry_span), so that no two entries share a line.  An entry counts
 * when its gen equals the head's and its sum is tx_entry_sum of it (which
 * covers its offset, gen, addr, len and snapshot): entries are scanned from
 * the first until one does not count, so a torn entry, or one left by an
 * earlier transaction, ends the log.  The protocol:
 *   add     write the entry (copy, sum), flush it, drain -- before the
 *           program changes the range (one fence)
 *   commit  flush every added range and every block the transaction
 *           allocated, drain (one fence); then retire: head.gen + 1,
 *           flushed and drained (one fence).  Committed from the retire on.
 *   abort   copy every snapshot back, newest first, flush, drain; retire
 * At open, before recovery, every log with entries that count is rolled
 * back the same way and retired: idempotent, so a crash during it is one
 * more crash.  gen starts at 1 (a zeroed slot is first given gen 1).
 * Pools of format 1.1 and older have no logs (log_off 0): no transactions.
 *
 * CLEAN FLAG.  Set in the header at a clean close, after the bitmap is
 * persisted, together with meta_sum (format 1.1): a checksum of the root
 * table and of the descriptors and bitmap up to heap_top.  A clean pool is
 * trusted only while its metadata still matches meta_sum; one that does not
 * is recovered as after a crash, and the damage reported.  Cleared (and
 * persisted) when a pool is opened, before recovery writes anything and
 * before the first allocation: an open that recovery refuses writes
 * nothing at all.  A clean close may ask the next open to collect all the
 * same (collect_next): the preload's routed blocks are not the program's to
 * free, so a pool with roots used under the preload would otherwise keep
 * every run's unreachable blocks. */
#ifndef BTD_HEAP_LAYOUT_H
#define BTD_HEAP_LAYOUT_H

#include <stdint.h>

#define POOL_MAGIC "BTDPOOL\0"     /* 8 bytes */
#define POOL_FORMAT_MAJOR 1        /* incompatible changes */
#define POOL_FORMAT_MINOR 2        /* compatible additions; 1: root checks, 2: logs */

#define POOL_PAGE 4096u
#define POOL_GRANULE 16u           /* block alignment; one bitmap bit */
#define POOL_HEADER_SLOT 4096u     /* each header copy */
#define POOL_ROOTS_OFF (2 * POOL_HEADER_SLOT)
#define POOL_ROOTS_MAX 1024u
#define POOL_ROOT_NAME_MAX 47u     /* bytes, without the NUL */
#define POOL_DATA_ALIGN (64u << 10)
#define POOL_CLASSES 36u           /* size classes a slab descriptor may name */
#define POOL_SLAB_PAGES 16u        /* pages of every slab */
#define POOL_LOG_SLOTS 16u         /* transaction logs (format 1.2) */
#define POOL_LOG_BYTES (64u << 10) /* each, at most: a sixteenth of a small pool in all */

struct pool_header {
	char magic[8];            /* POOL_MAGIC */
	uint16_t major;           /* POOL_FORMAT_MAJOR */
	uint16_t minor;           /* POOL_FORMAT_MINOR */
	uint32_t header_size;     /* sizeof(struct pool_header) */
	uint8_t uuid[16];         /* random, at creation */
	uint64_t base;            /* address the pool is mapped at */
	uint64_t size;            /* bytes of the file and the mapping */
	uint64_t desc_off;        /* page descriptors */
	uint64_t bitmap_off;      /* block-start bitmap */
	uint64_t data_off;        /* first data page */
	uint64_t npages;          /* data pages the reservation holds */
	uint64_t heap_top;        /* data pages backed by fallocate */
	uint64_t epoch;           /* header copy generation; newest valid wins */
	uint64_t clean;           /* 1: closed cleanly, bitmap valid */
	uint64_t opens;           /* times opened, for `btd info` */
	uint64_t crashes;         /* times opened dirty */
	uint64_t created;         /* creation time, seconds since the epoch */
	uint64_t owner_pid;       /* the process that has it open; 0 when closed */
	uint64_t meta_sum;        /* 1.1: pool_meta_sum at the clean close, else 0 */
	uint64_t close_roots;     /* 1.1: root slots in use at the clean close */
	uint64_t collect_next;    /* 1.1: the next open collects, though the pool is clean */
	uint64_t log_off;         /* 1.2: transaction logs; 0 in older pools */
	uint64_t log_slots;       /* 1.2: POOL_LOG_SLOTS */
	uint64_t log_bytes;       /* 1.2: each log's size (pool_layout) */
	uint64_t last_recovery;   /* 1.2: when the last recovery ran (seconds), 0 never */
	uint64_t last_kept;       /* 1.2: the blocks it kept */
	uint64_t last_freed;      /* 1.2: the blocks it reclaimed */
	uint64_t last_rolled_back;/* 1.2: the transactions it rolled back */
	uint64_t last_us;         /* 1.2: how long it took, microseconds */
	uint64_t reserved[3];     /* zero; for minor versions */
	uint64_t checksum;        /* fletcher64 of everything above */
};

_Static_assert(sizeof(struct pool_header) == 256, "header size is part of the format");
_Static_assert(sizeof(struct pool_header) <= POOL_HEADER_SLOT, "header fits its slot");

struct pool_root {
	char name[48];            /* NUL-terminated */
	uint64_t tag;             /* ROOT_TAG(hash of name) when live, else 0 */
	uint64_t ptr;             /* the root's pointer (an address in the pool) */
};

_Static_assert(sizeof(struct pool_root) == 64, "a root is one cache line");

/* The first cache line of a log slot. */
struct tx_log_head {
	uint64_t gen;             /* the generation entries carry to count; >= 1 once used */
	uint64_t reserved[7];
};

/* An undo entry: one cache line, then the `len` bytes of the snapshot
 * (tx_entry_data), padded to a cache line. */
struct tx_entry {
	uint64_t gen;             /* the head's gen of the transaction that wrote it */
	uint64_t addr;            /* where the snapshot goes back to */
	uint64_t len;
	uint64_t sum;             /* tx_entry_sum */
	uint64_t reserved[4];     /* zero */
};

_Static_assert(sizeof(struct tx_log_head) == 64, "a log head is one cache line");
_Static_assert(sizeof(struct tx_entry) == 64, "an entry's head is one cache line");

/* The bytes an entry with a snapshot of len bytes takes in its log. */
static inline uint64_t tx_entry_span(uint64_t len)
{
	return sizeof(struct tx_entry) + ((len + 63) & ~(uint64_t)63);
}

static inline void *tx_entry_data(const struct tx_entry *e)
{
	return (void *)(e + 1);
}

/* The sum of an entry at byte offset off of its slot. */
static inline uint64_t tx_entry_sum(const struct tx_entry *e, uint64_t off, const void *data)
{
	const unsigned char *b = data;
	uint64_t h = (off + 1) * 0x9e3779b97f4a7c15u ^ e->gen;

	h = (h ^ e->addr) * 0xff51afd7ed558ccdu;
	h = (h ^ e->len) * 0xc4ceb9fe1a85ec53u;
	uint64_t l[4] = { h, h ^ 0x2545f4914f6cdd1du, h ^ 0x9fb21c651e98df25u,
			  h ^ 0xbf58476d1ce4e5b9u };
	uint64_t i = 0;

	/* Four independent lanes: the multiply chains run side by side (a
	 * 4 KiB snapshot sums in about a quarter of a microsecond). */
	for (; i + 32 <= e->len; i += 32)
		for (unsigned k = 0; k < 4; k++) {
			uint64_t w;

			__builtin_memcpy(&w, b + i + 8 * k, 8);
			l[k] = (l[k] ^ w) * 0x100000001b3u;
			l[k] ^= l[k] >> 29;
		}
	for (; i < e->len; i++)
		l[0] = (l[0] ^ b[i]) * 0x100000001b3u;
	h = l[0] ^ (l[1] * 0xbf58476d1ce4e5b9u) ^ (l[2] * 0x94d049bb133111ebu) ^
	    (l[3] * 0xd6e8feb86659fd93u);
	return h ^ (h >> 32);
}

/* The entries of a log that count (see TRANSACTION LOGS): how many, the
 * bytes of their snapshots, and where each is (offs, when not NULL, gets
 * up to POOL_LOG_BYTES / sizeof(struct tx_entry) offsets).  The one reader
 * of a log: replay, `btd check` and `btd info` use it. */
static inline unsigned tx_log_scan(const void *slot, uint64_t log_bytes, uint64_t *bytes,
				   uint64_t *offs)
{
	const struct tx_log_head *h = (const struct tx_log_head *)slot;
	uint64_t off = sizeof(*h);
	unsigned n = 0;

	*bytes = 0;
	if (!h->gen || log_bytes > POOL_LOG_BYTES)
		return 0;
	while (off + sizeof(struct tx_entry) <= log_bytes) {
		const struct tx_entry *e = (const struct tx_entry *)((const char *)slot + off);

		if (e->gen != h->gen || e->len > log_bytes - off - sizeof(*e) ||
		    e->sum != tx_entry_sum(e, off, tx_entry_data(e)))
			break;
		if (offs)
			offs[n] = off;
		n++;
		*bytes += e->len;
		off += tx_entry_span(e->len);
	}
	return n;
}

/* Page descriptors.  kind in bits 0..7; bits 48..63 a check of the page
 * and the rest (format 1.1: a descriptor damaged in any bit, or written at
 * another page, fails it); the rest depends on the kind. */
enum pool_desc_kind {
	DESC_NONE = 0,            /* free, or not the first page of a run */
	DESC_LARGE = 1,           /* npages in bits 8..47 */
	DESC_SLAB = 2,            /* class in bits 8..15, npages in bits 16..47 */
	DESC_FREE = 3,            /* a release mark: npages in bits 8..47 (see above) */
};

#define DESC_BODY_MASK (((uint64_t)1 << 48) - 1)
#define DESC_KIND(d) ((unsigned)((d) & 0xff))
#define DESC_LARGE_PAGES(d) (((d) & DESC_BODY_MASK) >> 8)
#define DESC_SLAB_CLASS(d) ((unsigned)(((d) >> 8) & 0xff))
#define DESC_SLAB_PAGES(d) (((d) & DESC_BODY_MASK) >> 16)
#define DESC_FREE_PAGES(d) (((d) & DESC_BODY_MASK) >> 8)

/* The body with its check for page pg. */
static inline uint64_t desc_seal(uint64_t body, uint64_t pg)
{
	uint64_t x;

	body &= DESC_BODY_MASK;
	x = (body ^ (pg * 0xff51afd7ed558ccdu)) * 0x9e3779b97f4a7c15u;
	x ^= x >> 31;
	return body | ((x * 0xbf58476d1ce4e5b9u) >> 48 << 48);
}

static inline uint64_t desc_make_large(uint64_t n, uint64_t pg)
{
	return desc_seal((n << 8) | DESC_LARGE, pg);
}

static inline uint64_t desc_make_slab(unsigned cls, uint64_t n, uint64_t pg)
{
	return desc_seal((n << 16) | ((uint64_t)cls << 8) | DESC_SLAB, pg);
}

static inline uint64_t desc_make_free(uint64_t n, uint64_t pg)
{
	return desc_seal((n << 8) | DESC_FREE, pg);
}

/* Whether d carries its check for page pg -- or, in a pool of format 1.0
 * (minor 0), has none (its top 16 bits are 0). */
static inline int desc_checked(uint64_t d, uint64_t pg, unsigned minor)
{
	return d == desc_seal(d, pg) || (minor == 0 && !(d >> 48));
}

/* A root's tag: the name's hash with the top bit set, so a live tag is
 * never 0. */
#define ROOT_TAG(hash) ((hash) | ((uint64_t)1 << 63))

#define ROOT_ADDR_MASK (((uint64_t)1 << 48) - 1)

/* FNV-1a, 64 bits, of a root's name. */
static inline uint64_t root_name_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325u;

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 0x100000001b3u;
	}
	return h;
}

/* The 16-bit check of a root's address, mixed with its tag. */
static inline uint64_t root_check(uint64_t tag, uint64_t addr)
{
	uint64_t x = (tag ^ addr) * 0x9e3779b97f4a7c15u;

	return (x ^ (x >> 29)) >> 48;
}

/* The ptr word of a root (format 1.1). */
static inline uint64_t root_word(uint64_t tag, uint64_t addr)
{
	return root_check(tag, addr) << 48 | (addr & ROOT_ADDR_MASK);
}

/* Whether a slot in use is a valid root of a pool of format minor `minor`;
 * its address in *addr.  Callers check that the address lies in the pool. */
static inline int root_valid(const struct pool_root *r, unsigned minor, uint64_t *addr)
{
	unsigned len = 0;

	while (len < sizeof(r->name) && r->name[len])
		len++;
	if (len == 0 || len == sizeof(r->name) || r->tag != ROOT_TAG(root_name_hash(r->name)))
		return 0;
	uint64_t a = r->ptr & ROOT_ADDR_MASK;

	if (r->ptr != root_word(r->tag, a) && !(minor == 0 && r->ptr == a))
		return 0;
	*addr = a;
	return 1;
}

/* A release mark at page pg, checked. */
static inline int desc_is_mark(uint64_t d, uint64_t pg)
{
	return DESC_KIND(d) == DESC_FREE && DESC_FREE_PAGES(d) >= 1 && d == desc_seal(d, pg);
}

/* Whether d may stand at page pg that heads no run: 0 or a release mark. */
static inline int desc_is_idle(uint64_t d, uint64_t pg)
{
	return d == 0 || desc_is_mark(d, pg);
}

/* How many pages the run headed by descriptor d at page pg spans, or 0
 * when d is not a valid head there (top: the pages in use; minor: the
 * pool's format minor).  The one rule for a valid head: recovery, the
 * checker and `btd info` all use it. */
static inline uint64_t desc_run_pages(uint64_t d, uint64_t pg, uint64_t top, unsigned minor)
{
	if (!desc_checked(d, pg, minor))
		return 0;
	if (DESC_KIND(d) == DESC_SLAB)
		return DESC_SLAB_CLASS(d) < POOL_CLASSES && DESC_SLAB_PAGES(d) == POOL_SLAB_PAGES &&
		       POOL_SLAB_PAGES <= top - pg ? POOL_SLAB_PAGES : 0;
	if (DESC_KIND(d) == DESC_LARGE)
		return DESC_LARGE_PAGES(d) >= 1 && DESC_LARGE_PAGES(d) <= top - pg ?
		       DESC_LARGE_PAGES(d) : 0;
	return 0;
}

/* THE WALK.  The runs the descriptors describe, in page order, as recovery,
 * the checker and `btd info` all read them: from page 0, each valid head
 * (desc_run_pages) is a run, the walk jumps over it, and a page that heads
 * no run is skipped.  A large run is cut where another valid head begins
 * inside it (its length was damaged: a slab's is fixed).  What the walk
 * passes over that is neither 0 nor a release mark is damage, counted in
 * `suspicious` (cut runs included).
 *
 *	struct desc_walk w = desc_walk_start(desc, top, minor);
 *	struct desc_run r;
 *	while (desc_walk_next(&w, &r))
 *		... r.page, r.npages, r.d ... */
struct desc_run {
	uint64_t page, npages, d;
};

struct desc_walk {
	const uint64_t *desc;
	uint64_t top, pg;
	unsigned minor;
	uint64_t suspicious;      /* descriptors that are damage */
	uint64_t cut;             /* large runs cut where another began */
};

static inline struct desc_walk desc_walk_start(const uint64_t *desc, uint64_t top, unsigned minor)
{
	struct desc_walk w = { desc, top, 0, minor, 0, 0 };

	return w;
}

static inline int desc_walk_next(struct desc_walk *w, struct desc_run *r)
{
	while (w->pg < w->top) {
		uint64_t pg = w->pg, d = w->desc[pg];
		uint64_t n = desc_run_pages(d, pg, w->top, w->minor);

		if (!n) {
			w->suspicious += !desc_is_idle(d, pg);
			w->pg++;
			continue;
		}
		if (DESC_KIND(d) == DESC_LARGE) {
			for (uint64_t i = 1; i < n; i++) {
				if (desc_run_pages(w->desc[pg + i], pg + i, w->top, w->minor)) {
					n = i;
					w->cut++;
					w->suspicious++;
					break;
				}
			}
		}
		for (uint64_t i = 1; i < n; i++)
			w->suspicious += !desc_is_idle(w->desc[pg + i], pg + i);
		r->page = pg;
		r->npages = n;
		r->d = d;
		w->pg = pg + n;
		return 1;
	}
	return 0;
}

#endif
