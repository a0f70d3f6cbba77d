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
 *   roots_end       npages * 8        page descriptors, one u64 per data page
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
 * ROOTS.  An entry is live when `tag` is ROOT_TAG(name hash).  Creating one
 * writes name and ptr, persists, then writes tag and persists; changing the
 * pointer of a live root is one 8-byte store and a persist; deleting clears
 * tag.  Each step is one failure-atomic 8-byte store.
 *
 * PAGE DESCRIPTORS.  Persisted eagerly when a run is created or released.
 * A run (a slab of small blocks, or one large block) is live when the
 * descriptor of its first page is a head (LARGE or SLAB); the descriptors
 * of its other pages are 0.  A release clears the head before the pages
 * can be reused, so a head never lies inside another live run.  Recovery
 * walks the descriptors from page 0, jumping over each live run.
 *
 * BITMAP.  One bit per 16-byte granule of data, set at the start of each
 * allocated block.  Kept in memory order without flushes while the heap
 * runs; persisted whole at a clean close.  After a crash it is rebuilt by
 * the recovery GC and never trusted.
 *
 * CLEAN FLAG.  Set in the header at a clean close, after the bitmap is
 * persisted; cleared (and persisted) when a pool is opened, before the first
 * allocation. */
#ifndef BTD_HEAP_LAYOUT_H
#define BTD_HEAP_LAYOUT_H

#include <stdint.h>

#define POOL_MAGIC "BTDPOOL\0"     /* 8 bytes */
#define POOL_FORMAT_MAJOR 1        /* incompatible changes */
#define POOL_FORMAT_MINOR 0        /* compatible additions */

#define POOL_PAGE 4096u
#define POOL_GRANULE 16u           /* block alignment; one bitmap bit */
#define POOL_HEADER_SLOT 4096u     /* each header copy */
#define POOL_ROOTS_OFF (2 * POOL_HEADER_SLOT)
#define POOL_ROOTS_MAX 1024u
#define POOL_ROOT_NAME_MAX 47u     /* bytes, without the NUL */
#define POOL_DATA_ALIGN (64u << 10)

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
	uint64_t reserved[14];    /* zero; for minor versions */
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

/* Page descriptors.  kind in bits 0..7; the rest depends on the kind. */
enum pool_desc_kind {
	DESC_NONE = 0,            /* free, or not the first page of a run */
	DESC_LARGE = 1,           /* npages in bits 8..63 */
	DESC_SLAB = 2,            /* class in bits 8..15, npages in bits 16..63 */
};

#define DESC_KIND(d) ((unsigned)((d) & 0xff))
#define DESC_MAKE_LARGE(n) (((uint64_t)(n) << 8) | DESC_LARGE)
#define DESC_LARGE_PAGES(d) ((d) >> 8)
#define DESC_MAKE_SLAB(cls, n) (((uint64_t)(n) << 16) | ((uint64_t)(cls) << 8) | DESC_SLAB)
#define DESC_SLAB_CLASS(d) ((unsigned)(((d) >> 8) & 0xff))
#define DESC_SLAB_PAGES(d) ((d) >> 16)

/* A root's tag: the name's hash with the top bit set, so a live tag is
 * never 0. */
#define ROOT_TAG(hash) ((hash) | ((uint64_t)1 << 63))

#endif
