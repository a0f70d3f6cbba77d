/* fuzz_pool.c: the pool fuzzer -- patched seed pools through btd check, btd info, --repair and a program's open.
 *
 * SEED POOLS.  Built once per process with the library itself, in a
 * private temporary directory: a pool with roots, a linked list over two
 * slabs, slabs of eight more classes (one of them empty), large blocks (one
 * aligned, one freed: a release mark and a dangling pointer), interior
 * pointers and a cycle, closed cleanly; the same pool reopened, changed and
 * abandoned as a crash leaves it; and the clean one rewritten as format
 * 1.0.  Each is moved to one fixed base address and given a fixed uuid, so
 * that a pool, and so every input, is the same byte for byte in every run
 * and every build.
 *
 * INPUT.  Byte 0 picks the seed pool (bits 0-1, modulo the number of seeds)
 * and, with bit 2 set, records afterwards the checksum of the patched
 * metadata in both header copies (meta_sum, each copy resealed if its own
 * checksum held), so that a cleanly closed pool with damaged metadata is
 * trusted as clean.  Then patches, each an op byte and its operands, applied
 * in order until the input ends:
 *
 *   op bits 0-3   region, by index in the table below (modulo its length)
 *   op bits 4-5   0 bytes:    off:u32 len:u8 bytes[len]
 *                 1 pointer:  off:u32 target:u32  the 8-byte word at off
 *                             (aligned down) := the address of data byte
 *                             target modulo (data pages + 1) * 4 KiB
 *                 2 fill:     off:u32 n:u8 value:u8  8 * n bytes
 *                 3 add:      off:u32 delta:i32   the 8-byte word at off
 *                             (aligned down) += delta
 *   op bit 6      seal: make what the patch touched pass its checks again
 *                 (a header copy's checksum, a descriptor's check, a root
 *                 slot's tag and pointer check), so that mutations reach
 *                 past the checks into what the code believes
 *
 * Offsets are taken modulo the region's length, writes clipped at its end;
 * integers are little-endian.  REGIONS is the one table of where metadata
 * lives: a new region of the format (the transaction log) is one entry,
 * and entries are only ever appended, so that a region keeps its index.
 *
 * CHECKS.  For each input the patched pool is written to a file, then:
 *   a. btd check: exit 0, 1 or 2, and the file is unchanged, byte for byte;
 *   b. btd info: exit 0 or 2, the file unchanged;
 *   c. btd check --repair: exit 2 with the file unchanged, or 0/1 after
 *      which a program's open succeeds with every heap invariant holding
 *      and (unless forged) allocates and frees soundly, and btd check
 *      after its close says 0;
 *   d. a program's open of the patched pool (written afresh): refused with
 *      the file unchanged, or opened with every heap invariant holding
 *      (unless the input forged a clean close: see program_open), and
 *      (unless forged) then allocating and freeing soundly;
 *   and when the patches forged nothing and spared the roots and the data
 *   (and, for the open after a repair, the bitmap), neither open may lose
 *   a block the seed pool could reach (see judge).
 * An exit 2 must come with exactly one line on stderr naming the problem
 * ("btd check: ...") or "PROBLEMS REMAIN" (a repair that could not finish).
 * Output goes to memory files, shown when a check fails; a failure, a
 * crash, a sanitizer report or a hang (libFuzzer's -timeout, the replay
 * driver's alarm) is a finding.
 *
 * STATE.  One process runs every input: libFuzzer reads the coverage of
 * each from the process's own counters, which a child's run would not
 * reach (a fork per input, measured: 10 ms for the fork of a 60 MiB ASan
 * process, on 20-30 ms of work, and no coverage left to guide by).  The heap
 * is opened and closed through its own entry points, which reset it; the
 * recovery mode (and with it the private view) is set before every open.
 * What else outlives a close is reused, never grown (the slab structs
 * were not, and grew the process by 128 bytes per slab and open), so an
 * input does the same in one long run as alone. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../heap/heap.h"
#include "../../heap/heap_int.h"
#include "../../heap/layout.h"
#include "../../heap/pool.h"
#include "../../heap/roots.h"
#include "../../recovery/recovery.h"
#include "../../store/store.h"
#include "../../tools/pool_cmds.h"
#include "btd.h"
#include "fuzz_pool.h"

#define SEED_SIZE ((size_t)2304 << 10) /* 1 MiB of it transaction logs */
#define SEED_PAGES (SEED_SIZE / POOL_PAGE)
#define SEED_BASE ((uint64_t)0x6c0000000000)    /* inside btd's range */
#define SEED_OWNER ((uint64_t)0x7fffff00)       /* no such pid (above pid_max) */
#define MAX_SEEDS 4
#define OUT_MAX ((size_t)64 << 10)              /* captured output shown per stream */

/* Sanitizer runtimes (ASan, UBSan) write their reports here when linked. */
void __sanitizer_set_report_fd(void *fd) __attribute__((weak));

/* ---- the regions -------------------------------------------------------- */

enum seal { SEAL_NONE, SEAL_HEADER, SEAL_ROOT, SEAL_DESC, SEAL_LOG };

struct region {
	const char *name;
	enum seal seal;
	uint64_t (*off)(const struct pool_header *h);
	uint64_t (*len)(const struct pool_header *h);
};

static uint64_t at_zero(const struct pool_header *h)
{
	(void)h;
	return 0;
}

static uint64_t at_slot1(const struct pool_header *h)
{
	(void)h;
	return POOL_HEADER_SLOT;
}

static uint64_t header_len(const struct pool_header *h)
{
	(void)h;
	return sizeof(struct pool_header);
}

static uint64_t at_roots(const struct pool_header *h)
{
	(void)h;
	return POOL_ROOTS_OFF;
}

static uint64_t roots_used_len(const struct pool_header *h)
{
	(void)h;
	return 8 * sizeof(struct pool_root); /* the seeds' roots are in the first slots */
}

static uint64_t roots_len(const struct pool_header *h)
{
	(void)h;
	return POOL_ROOTS_MAX * sizeof(struct pool_root);
}

static uint64_t at_desc(const struct pool_header *h)
{
	return h->desc_off;
}

static uint64_t desc_len(const struct pool_header *h)
{
	return h->npages * sizeof(uint64_t);
}

static uint64_t at_bitmap(const struct pool_header *h)
{
	return h->bitmap_off;
}

static uint64_t bitmap_len(const struct pool_header *h)
{
	return h->npages * POOL_PAGE / POOL_GRANULE / 8;
}

static uint64_t at_data(const struct pool_header *h)
{
	return h->data_off;
}

static uint64_t data_len(const struct pool_header *h)
{
	return h->npages * POOL_PAGE;
}

static uint64_t file_len(const struct pool_header *h)
{
	return h->size;
}

static uint64_t at_log(const struct pool_header *h)
{
	return h->log_off;
}

static uint64_t log_len(const struct pool_header *h)
{
	return h->log_off ? h->log_bytes : 0;
}

/* Append only: an input names a region by its index here. */
static const struct region regions[] = {
	{ "header0", SEAL_HEADER, at_zero, header_len },
	{ "header1", SEAL_HEADER, at_slot1, header_len },
	{ "roots", SEAL_ROOT, at_roots, roots_used_len },
	{ "desc", SEAL_DESC, at_desc, desc_len },
	{ "bitmap", SEAL_NONE, at_bitmap, bitmap_len },
	{ "data", SEAL_NONE, at_data, data_len },
	{ "roottab", SEAL_ROOT, at_roots, roots_len },
	{ "file", SEAL_NONE, at_zero, file_len },
	{ "log0", SEAL_LOG, at_log, log_len },
};

#define NREGIONS (sizeof(regions) / sizeof(regions[0]))

/* ---- state -------------------------------------------------------------- */

struct seed {
	const char *name;
	uint8_t *img;                         /* SEED_SIZE bytes */
	struct pool_header h;                 /* its newest header copy */
	uint64_t used[SEED_PAGES / 64 + 1];   /* pages not all zero */
	uint64_t reachable;                   /* blocks a program's open finds reachable */
};

static struct seed seeds[MAX_SEEDS];
static unsigned nseeds;
static char dir[64], path[96];
static uint8_t *img, *readback;           /* the patched pool; the file read back */
static uint64_t write_pages[SEED_PAGES / 64 + 1];
static int cap_out = -1, cap_err = -1;    /* memory files for the tools' output */
static int saved_out = -1, saved_err = -1;
static FILE *report;                      /* the real stderr */
static const char *input_name = "(libFuzzer input)";
static const char *stage = "";

void fuzz_set_input_name(const char *name)
{
	input_name = name;
}

/* ---- reporting ---------------------------------------------------------- */

static void cleanup(void);

static void loud(void)
{
	fflush(stdout);
	fflush(stderr);
	if (saved_out >= 0) {
		dup2(saved_out, STDOUT_FILENO);
		dup2(saved_err, STDERR_FILENO);
	}
}

static void quiet(void)
{
	fflush(stdout);
	fflush(stderr);
	ftruncate(cap_out, 0);
	ftruncate(cap_err, 0);
	lseek(cap_out, 0, SEEK_SET);
	lseek(cap_err, 0, SEEK_SET);
	dup2(cap_out, STDOUT_FILENO);
	dup2(cap_err, STDERR_FILENO);
}

/* What a captured stream holds (NUL-terminated, at most OUT_MAX bytes). */
static const char *captured(int fd, char *buf)
{
	ssize_t n = pread(fd, buf, OUT_MAX - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void show_output(void)
{
	static char buf[OUT_MAX];

	fprintf(report, "---- its stdout:\n%s", captured(cap_out, buf));
	fprintf(report, "---- its stderr:\n%s----\n", captured(cap_err, buf));
}

__attribute__((noreturn, format(printf, 1, 2))) static void finding(const char *fmt, ...)
{
	va_list ap;

	loud();
	fprintf(report, "fuzz_pool: FINDING in %s, at %s: ", input_name, stage);
	va_start(ap, fmt);
	vfprintf(report, fmt, ap);
	va_end(ap);
	fprintf(report, "\n");
	show_output();
	fflush(report);
	cleanup(); /* fuzz_replay --pool makes the pool again */
	abort();
}

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...)
{
	va_list ap;

	loud();
	fprintf(report ? report : stderr, "fuzz_pool: ");
	va_start(ap, fmt);
	vfprintf(report ? report : stderr, fmt, ap);
	va_end(ap);
	fprintf(report ? report : stderr, "\n");
	exit(2);
}

/* btd_fatal in the library: say which input, then let it abort. */
static void fatal_hook(const char *msg)
{
	loud();
	fprintf(report, "fuzz_pool: FINDING in %s, at %s: btd: fatal: %s\n", input_name, stage,
		msg);
	show_output();
	fflush(report);
	cleanup();
}

/* ---- files -------------------------------------------------------------- */

/* A new file at p holding im, of which only the pages in `pages` can be
 * other than zero (the file is sparse, as pools are). */
static void store(const char *p, const uint8_t *im, const uint64_t *pages)
{
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || ftruncate(fd, (off_t)SEED_SIZE))
		die("cannot write %s: %s", p, strerror(errno));
	for (size_t pg = 0; pg < SEED_PAGES; pg++)
		if ((!pages || (pages[pg / 64] >> (pg % 64)) & 1) &&
		    pwrite(fd, im + pg * POOL_PAGE, POOL_PAGE, (off_t)(pg * POOL_PAGE)) != POOL_PAGE)
			die("cannot write %s: %s", p, strerror(errno));
	close(fd);
}

static void write_pool(const uint8_t *im)
{
	store(path, im, write_pages);
}

/* Whether the file holds exactly im. */
static int file_is(const uint8_t *im)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	size_t got = 0;
	ssize_t n;

	if (fd < 0 || fstat(fd, &st))
		die("cannot read %s: %s", path, strerror(errno));
	if ((size_t)st.st_size != SEED_SIZE) {
		close(fd);
		return 0;
	}
	while (got < SEED_SIZE && (n = pread(fd, readback + got, SEED_SIZE - got, (off_t)got)) > 0)
		got += (size_t)n;
	close(fd);
	return got == SEED_SIZE && !memcmp(readback, im, SEED_SIZE);
}

static void load(const char *p, uint8_t *out)
{
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	size_t got = 0;
	ssize_t n;

	while (fd >= 0 && got < SEED_SIZE && (n = pread(fd, out + got, SEED_SIZE - got, (off_t)got)) > 0)
		got += (size_t)n;
	if (fd < 0 || got != SEED_SIZE)
		die("cannot read the seed pool %s", p);
	close(fd);
}

static void *alloc_or_die(size_t n)
{
	void *p = calloc(1, n);

	if (!p)
		die("out of memory");
	return p;
}

/* ---- headers ------------------------------------------------------------ */

static struct pool_header *copy_at(uint8_t *im, int slot)
{
	return (struct pool_header *)(im + (size_t)slot * POOL_HEADER_SLOT);
}

static int copy_valid(const struct pool_header *h)
{
	return !memcmp(h->magic, POOL_MAGIC, 8) &&
	       h->checksum == pool_checksum(h, offsetof(struct pool_header, checksum));
}

static void seal_header(struct pool_header *h)
{
	h->checksum = pool_checksum(h, offsetof(struct pool_header, checksum));
}

/* The copy an open would take (pool_read_header's rule), or NULL. */
static struct pool_header *newest(uint8_t *im)
{
	struct pool_header *h0 = copy_at(im, 0), *h1 = copy_at(im, 1);
	int v0 = copy_valid(h0), v1 = copy_valid(h1);

	if (v0 && v1)
		return h1->epoch > h0->epoch ? h1 : h0;
	return v0 ? h0 : v1 ? h1 : NULL;
}

/* meta_sum of the metadata in im, as a clean close records it. */
static uint64_t meta_sum_of(uint8_t *im, const struct pool_header *h)
{
	static struct pool p;

	memset(&p, 0, sizeof(p));
	p.roots = (struct pool_root *)(im + POOL_ROOTS_OFF);
	p.desc = (uint64_t *)(im + h->desc_off);
	p.bitmap = (uint64_t *)(im + h->bitmap_off);
	p.heap_top = h->heap_top;
	return pool_meta_sum(&p);
}

/* Record the metadata's checksum in both copies (those whose own checksum
 * holds stay valid), when the header the open takes describes the seed's
 * layout. */
static void record_meta_sum(uint8_t *im, const struct pool_header *layout)
{
	struct pool_header *h = newest(im);

	if (!h || h->heap_top > layout->npages || h->desc_off != layout->desc_off ||
	    h->bitmap_off != layout->bitmap_off)
		return;
	uint64_t sum = meta_sum_of(im, h);

	for (int slot = 0; slot < 2; slot++) {
		struct pool_header *c = copy_at(im, slot);
		int valid = copy_valid(c);

		c->meta_sum = sum;
		if (valid)
			seal_header(c);
	}
}

/* ---- patches ------------------------------------------------------------ */

struct reader {
	const uint8_t *p, *end;
};

static int take(struct reader *r, void *out, size_t n)
{
	if ((size_t)(r->end - r->p) < n)
		return 0;
	memcpy(out, r->p, n);
	r->p += n;
	return 1;
}

static void touch(uint64_t off, uint64_t len)
{
	for (uint64_t pg = off / POOL_PAGE; pg < (off + len + POOL_PAGE - 1) / POOL_PAGE &&
					     pg < SEED_PAGES; pg++)
		write_pages[pg / 64] |= (uint64_t)1 << (pg % 64);
}

/* Make [off, off + len) of region r pass its checks again. */
static void seal(uint8_t *im, const struct region *r, uint64_t roff, uint64_t off, uint64_t len)
{
	if (r->seal == SEAL_HEADER) {
		seal_header((struct pool_header *)(im + roff));
	} else if (r->seal == SEAL_DESC) {
		for (uint64_t i = off / 8; i < (off + len + 7) / 8; i++) {
			uint64_t *d = (uint64_t *)(im + roff) + i;

			*d = desc_seal(*d, i);
		}
	} else if (r->seal == SEAL_LOG) {
		/* Every entry of the head's generation gets its sum back: the
		 * patch then reaches replay (wild addresses, lengths). */
		const struct tx_log_head *h = (const void *)(im + roff);
		uint64_t o = sizeof(*h);

		while (h->gen && o + sizeof(struct tx_entry) <= POOL_LOG_BYTES && o < off + len) {
			struct tx_entry *e = (void *)(im + roff + o);

			if (e->gen != h->gen || !e->len || e->len > POOL_LOG_BYTES - o - sizeof(*e) ||
			    roff + o + tx_entry_span(e->len) > SEED_SIZE)
				break;
			if (o + tx_entry_span(e->len) > off) { /* the patch reaches it */
				e->sum = tx_entry_sum(e, o, tx_entry_data(e));
				touch(roff + o, sizeof(*e));
			}
			o += tx_entry_span(e->len);
		}
	} else if (r->seal == SEAL_ROOT) {
		for (uint64_t i = off / sizeof(struct pool_root);
		     i < (off + len + sizeof(struct pool_root) - 1) / sizeof(struct pool_root); i++) {
			struct pool_root *rt = (struct pool_root *)(im + roff) + i;

			if (!rt->name[0] || !memchr(rt->name, '\0', POOL_ROOT_NAME_MAX + 1))
				continue;
			rt->tag = ROOT_TAG(root_name_hash(rt->name));
			rt->ptr = root_word(rt->tag, rt->ptr & ROOT_ADDR_MASK);
		}
	}
}

enum kind { KIND_BYTES, KIND_POINTER, KIND_FILL, KIND_ADD };

static const char *const kind_names[] = { "bytes", "pointer", "fill", "add" };

/* One patch, decoded. */
struct patch {
	const struct region *region;
	enum kind kind;
	int seal;
	uint64_t roff, rlen, off, len;        /* region, and the span patched in it */
	const uint8_t *bytes;                 /* KIND_BYTES */
	uint8_t value;                        /* KIND_FILL */
	uint64_t word;                        /* KIND_POINTER: the address */
	int32_t delta;                        /* KIND_ADD */
};

/* Decode the patch at r into *out; 0 at the end of the input. */
static int next_patch(struct reader *r, const struct seed *s, struct patch *out)
{
	uint8_t op, len8;
	uint32_t off, arg;

	if (!take(r, &op, 1) || !take(r, &off, 4))
		return 0;
	memset(out, 0, sizeof(*out));
	out->region = &regions[(op & 15) % NREGIONS];
	out->kind = (enum kind)((op >> 4) & 3);
	out->seal = (op >> 6) & 1;
	out->roff = out->region->off(&s->h);
	out->rlen = out->region->len(&s->h);
	out->off = off % out->rlen;
	if (out->kind == KIND_BYTES) {
		size_t have = (size_t)(r->end - r->p);

		if (!take(r, &len8, 1))
			return 0;
		have = have - 1 < len8 ? have - 1 : len8; /* the last patch may be cut short */
		out->bytes = r->p;
		r->p += have;
		out->len = have < out->rlen - out->off ? have : out->rlen - out->off;
		return 1;
	}
	if (out->kind == KIND_FILL) {
		if (!take(r, &len8, 1) || !take(r, &out->value, 1))
			return 0;
		out->len = 8u * len8 < out->rlen - out->off ? 8u * len8 : out->rlen - out->off;
		return 1;
	}
	if (!take(r, &arg, 4))
		return 0;
	out->off = out->off / 8 * 8;
	if (out->off + 8 > out->rlen)
		out->off = out->rlen - 8;
	out->len = 8;
	if (out->kind == KIND_POINTER)
		out->word = SEED_BASE + s->h.data_off + arg % ((s->h.npages + 1) * POOL_PAGE);
	else
		memcpy(&out->delta, &arg, 4);
	return 1;
}

static const struct seed *seed_of(const uint8_t *data, size_t size)
{
	return &seeds[(size ? data[0] & 3 : 0) % nseeds];
}

/* What the patches made of the seed (see judge). */
static int forged, intact, restorable;

/* forged: the pool holds metadata that passes its checks but is not the
 * seed's -- a header copy, a descriptor (any changed one in a pool of
 * format 1.0, which has no checks), a root slot, a transaction log, or
 * meta_sum recorded over the patches -- as sealed patches make and libFuzzer's comparison
 * tracing can learn to.  intact: nothing forged, and the roots and the
 * data are the seed's, so no open may lose a block the seed could reach.
 * restorable: intact, and the bitmap too, so a repair that restores lost
 * runs has their block starts to go by (without them a run's shape is a
 * guess: a slab may come back as large blocks, its blocks interior). */
static void judge(const struct seed *s, int meta)
{
	const uint64_t *d = (const uint64_t *)(img + s->h.desc_off);
	const uint64_t *d0 = (const uint64_t *)(s->img + s->h.desc_off);
	const struct pool_root *r = (const struct pool_root *)(img + POOL_ROOTS_OFF);
	const struct pool_root *r0 = (const struct pool_root *)(s->img + POOL_ROOTS_OFF);
	uint64_t a;

	forged = meta;
	for (int slot = 0; slot < 2; slot++)
		forged |= memcmp(copy_at(img, slot), copy_at(s->img, slot),
				 sizeof(struct pool_header)) && copy_valid(copy_at(img, slot));
	for (size_t pg = 0; pg < s->h.npages && !forged; pg++)
		forged |= d[pg] != d0[pg] && (s->h.minor == 0 || desc_checked(d[pg], pg, 1));
	for (unsigned i = 0; i < POOL_ROOTS_MAX && !forged; i++)
		forged |= memcmp(&r[i], &r0[i], sizeof(r[i])) && r[i].tag &&
			  root_valid(&r[i], s->h.minor, &a);
	/* A changed log: a torn entry ends a log as a crash during an add
	 * does (its transaction's changes then stay), a sealed one is a
	 * snapshot replay puts back -- either way the data after the open is
	 * not the seed's to judge by. */
	if (s->h.log_off)
		forged |= memcmp(img + s->h.log_off, s->img + s->h.log_off,
				 s->h.log_slots * s->h.log_bytes) != 0;
	intact = !forged && !memcmp(r, r0, POOL_ROOTS_MAX * sizeof(*r)) &&
		 !memcmp(img + s->h.data_off, s->img + s->h.data_off, s->h.npages * POOL_PAGE);
	restorable = intact && !memcmp(img + s->h.bitmap_off, s->img + s->h.bitmap_off,
				       s->h.npages * POOL_PAGE / POOL_GRANULE / 8);
}

/* The patched pool of an input into img, and the pages to write. */
static void decode(const uint8_t *data, size_t size)
{
	const struct seed *s = seed_of(data, size);
	struct reader r = { data + (size > 0), data + size };
	struct patch pt;

	memcpy(img, s->img, SEED_SIZE);
	memcpy(write_pages, s->used, sizeof(write_pages));
	while (next_patch(&r, s, &pt)) {
		uint8_t *at = img + pt.roff + pt.off;

		if (pt.kind == KIND_BYTES)
			memcpy(at, pt.bytes, pt.len);
		else if (pt.kind == KIND_FILL)
			memset(at, pt.value, pt.len);
		else if (pt.kind == KIND_POINTER)
			memcpy(at, &pt.word, 8);
		else {
			uint64_t w;

			memcpy(&w, at, 8);
			w += (uint64_t)(int64_t)pt.delta;
			memcpy(at, &w, 8);
		}
		if (pt.seal)
			seal(img, pt.region, pt.roff, pt.off, pt.len);
		touch(pt.roff + pt.off, pt.len);
		if (pt.region->seal == SEAL_HEADER)
			touch(pt.roff, sizeof(struct pool_header));
	}
	if (size && data[0] & 4) {
		record_meta_sum(img, &s->h);
		touch(0, 2 * POOL_HEADER_SLOT);
	}
	judge(s, size && data[0] & 4);
}

void fuzz_describe(int fd, const uint8_t *data, size_t size)
{
	const struct seed *s;
	struct reader r = { data + (size > 0), data + size };
	struct patch pt;

	if (!nseeds)
		LLVMFuzzerInitialize(NULL, NULL);
	s = seed_of(data, size);
	dprintf(fd, "seed %s%s\n", s->name, size && data[0] & 4 ? ", meta_sum recorded" : "");
	while (next_patch(&r, s, &pt)) {
		dprintf(fd, "  %-7s +%-6llu %-7s%s", pt.region->name, (unsigned long long)pt.off,
			kind_names[pt.kind], pt.seal ? " sealed" : "");
		if (pt.kind == KIND_BYTES) {
			dprintf(fd, " %llu:", (unsigned long long)pt.len);
			for (uint64_t i = 0; i < pt.len; i++)
				dprintf(fd, " %02x", pt.bytes[i]);
		} else if (pt.kind == KIND_FILL) {
			dprintf(fd, " %llu x %02x", (unsigned long long)pt.len, pt.value);
		} else if (pt.kind == KIND_POINTER) {
			dprintf(fd, " 0x%llx (data page %llu)", (unsigned long long)pt.word,
				(unsigned long long)((pt.word - SEED_BASE - s->h.data_off) / POOL_PAGE));
		} else {
			dprintf(fd, " %+d", pt.delta);
		}
		dprintf(fd, "\n");
	}
}

int fuzz_write_pool(const uint8_t *data, size_t size, const char *out)
{
	if (!nseeds)
		LLVMFuzzerInitialize(NULL, NULL);
	decode(data, size);
	store(out, img, write_pages);
	return 0;
}

/* ---- the tools and a program's open ------------------------------------- */

enum tool { TOOL_CHECK, TOOL_REPAIR, TOOL_INFO };

static int tool(enum tool t)
{
	int st;

	stage = t == TOOL_INFO ? "btd info" : t == TOOL_REPAIR ? "btd check --repair" : "btd check";
	quiet();
	st = t == TOOL_INFO ? cmd_info(path) : cmd_check(path, t == TOOL_REPAIR);
	loud();
	return st;
}

/* Exit 2 says what is wrong in one line: "btd check: ..." on stderr (the
 * library's own warnings, "btd: ...", may come before it), or a repair
 * that could not finish says so on stdout. */
static void one_line(const char *prefix)
{
	static char buf[OUT_MAX];
	const char *s = captured(cap_err, buf);
	unsigned lines = 0;

	for (const char *l = s; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		lines += !strncmp(l, prefix, strlen(prefix));
	if (lines == 1)
		return;
	if (!lines && strstr(captured(cap_out, buf), "\nPROBLEMS REMAIN"))
		return;
	finding("exit 2 with %u lines starting \"%s\" on stderr, not one", lines, prefix);
}

/* What a program does next: allocate a block of ten classes each, one of
 * 20 KiB, and blocks of 64 KiB until the pool is full (so that the heap
 * grows to the end of the reservation), fill them, free them.  The heap
 * must keep its invariants, and what was reachable must stay so (a block
 * handed out over reachable data would have had its pointers
 * overwritten). */
static void use_heap(void)
{
	static const size_t sizes[] = { 16, 48, 64, 128, 256, 320, 512, 1024, 4096, 16384, 20 << 10 };
	enum { N = sizeof(sizes) / sizeof(sizes[0]), MORE = 32 };
	void *p[N + MORE];
	struct recovery_audit before, after;
	unsigned long bad;
	size_t n = 0;

	stage = "a program's allocations";
	recovery_audit(&before);
	for (size_t i = 0; i < N + MORE; i++) {
		size_t size = i < N ? sizes[i] : 64 << 10;

		if (!(p[n] = heap_malloc(size)) && i >= N)
			break;
		if (p[n])
			memset(p[n++], 0xee, size);
	}
	if ((bad = heap_check(STDOUT_FILENO)))
		finding("%lu heap invariants fail after allocating", bad);
	recovery_audit(&after);
	if (after.reachable < before.reachable)
		finding("%llu blocks were reachable before allocating, %llu after: a block was "
			"handed out over reachable data", (unsigned long long)before.reachable,
			(unsigned long long)after.reachable);
	while (n)
		heap_free(p[--n]);
	if ((bad = heap_check(STDOUT_FILENO)))
		finding("%lu heap invariants fail after freeing", bad);
}

/* Open the pool as a program does (recovery may refuse); 0 when open,
 * with every heap invariant checked -- unless the input forged something
 * and the open trusted the pool: a clean pool whose metadata matches the
 * checksum its close recorded is trusted as that close left it, so a
 * forged close (meta_sum recorded over damage, a sealed header saying
 * clean) gets a heap that keeps the damage (btd check reports it, --repair
 * collects it).  When the input left the pool intact (after a repair:
 * restorable; see judge), every block the seed could reach must still be
 * reachable, none of them handed to the free lists (a repair may bring
 * back more: a freed block a dangling pointer shows, once the release
 * mark is lost).  A sound heap then serves a few allocations (use_heap),
 * unless the input forged something: a sealed header with heap_top below
 * live runs hides them from the open, and the heap grows over them.  The
 * heap stays open for the caller to close. */
static int program_open(const struct seed *s, int strict)
{
	struct heap_open_info info;
	struct recovery_audit a;
	int ret;

	stage = strict ? "a program's open of the repaired pool" : "a program's open";
	recovery_set_mode(RECOVER_OPEN);
	quiet();
	ret = store_open(path, 0, GC_AUTO, &info);
	if (!ret) {
		unsigned long bad = heap_check(STDOUT_FILENO);

		if (bad && (strict || !forged || info.collected))
			finding("a program's open succeeded, but %lu heap invariants fail", bad);
		if (s && (strict ? restorable : intact)) {
			recovery_audit(&a);
			if (a.reachable < s->reachable || a.wild)
				finding("a program's open succeeded, but only %llu blocks are reachable "
					"(the seed pool: %llu), and %llu pointers lead into free pages",
					(unsigned long long)a.reachable,
					(unsigned long long)s->reachable, (unsigned long long)a.wild);
		}
		if (!bad && !forged)
			use_heap();
	}
	loud();
	return ret;
}

static void program_close(void)
{
	stage = "a program's close";
	quiet();
	store_close();
	loud();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct seed *sd;
	int st, ret;

	if (!nseeds)
		LLVMFuzzerInitialize(NULL, NULL);
	sd = seed_of(data, size);
	decode(data, size);
	write_pool(img);

	/* a. The read-only check never writes. */
	st = tool(TOOL_CHECK);
	if (st < 0 || st > 2)
		finding("exit %d", st);
	if (!file_is(img))
		finding("the file changed without --repair (exit %d)", st);
	if (st == 2)
		one_line("btd check: ");

	/* b. info reads. */
	st = tool(TOOL_INFO);
	if (st != 0 && st != 2)
		finding("exit %d", st);
	if (!file_is(img))
		finding("btd info changed the file");
	if (st == 2)
		one_line("btd info: ");

	/* c. Repair: unusable and untouched, or repaired for good -- a
	 * program opens it, and after its close btd check finds nothing. */
	st = tool(TOOL_REPAIR);
	if (st == 2) {
		one_line("btd check: ");
		if (!file_is(img))
			finding("exit 2 (unusable), but the file was changed");
	} else if (st == 0 || st == 1) {
		if ((ret = program_open(sd, 1)) != 0)
			finding("a program cannot open the repaired pool: %s", btd_last_error());
		program_close();
		if ((st = tool(TOOL_CHECK)) != 0)
			finding("btd check of the repaired pool (opened and closed by a program "
				"since) exits %d", st);
	} else {
		finding("exit %d", st);
	}

	/* d. A program's open of the damaged pool: refused without a write, or
	 * a heap that keeps its invariants. */
	write_pool(img);
	if ((ret = program_open(sd, 0)) != 0) {
		if (!file_is(img))
			finding("the open was refused (%s), but the file was changed",
				btd_last_error());
	} else {
		program_close();
	}
	stage = "";
	return 0;
}

/* ---- the seed pools ----------------------------------------------------- */

struct node {
	struct node *next;
	uint64_t seq, sum;
	char pad[40];
};

_Static_assert(sizeof(struct node) == 64, "a list node is one 64-byte block");

static void *must(void *p)
{
	if (!p)
		die("seed pool: out of pool memory: %s", btd_last_error());
	return p;
}

static void root(const char *name, const void *p)
{
	if (roots_set(name, p))
		die("seed pool: root %s: %s", name, btd_last_error());
}

/* The clean seed's contents (see SEED POOLS above). */
static void populate(void)
{
	struct node *head = NULL, *n500 = NULL;

	for (uint64_t i = 0; i < 1200; i++) {
		struct node *n = must(heap_malloc(sizeof(*n)));

		n->next = head;
		n->seq = i;
		n->sum = i * 0x9e3779b97f4a7c15u;
		memset(n->pad, (int)(i & 0x7f), sizeof(n->pad));
		head = n;
		if (i == 500)
			n500 = n;
	}
	void **misc = must(heap_malloc(256));
	char *tiny = must(heap_malloc(16));
	void **big = must(heap_malloc(40 << 10));
	void *gone = must(heap_malloc(20 << 10));
	void **cyc = must(heap_malloc(300));
	void *empty[20];

	memset(misc, 0, 256);
	strcpy(tiny, "fifteen bytes!");
	misc[0] = tiny;
	misc[1] = must(heap_malloc(48));
	misc[2] = must(heap_malloc(1000));
	misc[3] = must(heap_malloc(4096));
	misc[4] = must(heap_malloc(16000));
	misc[5] = (char *)big + 100;              /* interior */
	misc[6] = &n500->seq;                     /* interior, into the list */
	misc[7] = gone;                           /* dangling, once freed */
	misc[8] = cyc;
	misc[9] = must(heap_aligned(8192, 20000));
	misc[10] = (void *)(uintptr_t)0x1234567890; /* an integer */
	cyc[0] = misc;                            /* a cycle */
	cyc[1] = cyc;
	memset(misc[2], 0x5a, 1000);
	memset(misc[4], 0xa5, 16000);
	memset(big, 0, 40 << 10);
	big[0] = misc;
	for (int i = 0; i < 50; i++)
		big[1 + i] = must(heap_malloc(16));
	for (int i = 0; i < 20; i++)
		empty[i] = must(heap_malloc(512));
	for (int i = 0; i < 20; i++)
		heap_free(empty[i]);                  /* an empty slab stays */
	heap_free(gone);                          /* a release mark */
	root("list", head);
	root("misc", misc);
	root("big", big);
	root("tiny", tiny);
	root("interior", (char *)misc + 8);
}

/* The dirty seed: the clean one reopened, changed, and abandoned. */
static void crash_changes(void)
{
	struct node *head = roots_get("list");
	struct node *n = head;

	for (int i = 0; i < 100 && n; i++)
		n = n->next;
	for (int i = 0; i < 100 && n && n->next; i++) { /* unlink and free 100 nodes */
		struct node *x = n->next;

		n->next = x->next;
		heap_free(x);
	}
	for (int i = 0; i < 30; i++)
		memset(must(heap_malloc(128)), 0x11, 128); /* garbage: unreachable */
	void **c = must(heap_malloc(24 << 10));

	memset(c, 0, 24 << 10);
	c[0] = roots_get("tiny");
	root("c", c);
	root("list", head->next->next); /* two nodes become unreachable */
	/* A transaction in flight: a log for replay to roll back (its
	 * snapshot of the list head, a root slot, a new block). */
	head = roots_get("list");
	if (btd_tx_begin() || btd_tx_add(head, sizeof(*head)) || btd_tx_add(c, 64))
		die("seed pool: a transaction: %s", btd_last_error());
	head->next = NULL;
	c[0] = must(btd_tx_malloc(200));
	if (btd_root_set("tiny", NULL))
		die("seed pool: root_set in a transaction: %s", btd_last_error());
}

/* Move the pool in im to SEED_BASE, with a fixed uuid, creation time and
 * owner: every pointer into its data (and every complemented one, the free
 * lists' links) in data and roots, and both header copies. */
static void rebase(uint8_t *im, int dirty)
{
	struct pool_header *h = newest(im);

	if (!h)
		die("seed pool: no valid header");
	uint64_t old = h->base, delta = SEED_BASE - old;
	uint64_t lo = old + h->data_off, span = h->npages * POOL_PAGE;
	uint64_t *w = (uint64_t *)(im + h->data_off);
	struct pool_root *r = (struct pool_root *)(im + POOL_ROOTS_OFF);

	for (size_t i = 0; i < h->heap_top * POOL_PAGE / 8; i++) {
		if (w[i] - lo < span)
			w[i] += delta;
		else if (~w[i] - lo < span)
			w[i] = ~(~w[i] + delta);
	}
	for (unsigned i = 0; i < POOL_ROOTS_MAX; i++) {
		uint64_t a = r[i].ptr & ROOT_ADDR_MASK;

		if (r[i].tag && a - lo < span)
			r[i].ptr = root_word(r[i].tag, a + delta);
	}
	for (int slot = 0; slot < 2; slot++) {
		struct pool_header *c = copy_at(im, slot);

		if (!copy_valid(c))
			die("seed pool: header copy %d is not valid", slot);
		c->base = SEED_BASE;
		memcpy(c->uuid, "btd fuzz seed!!", 16);
		c->created = 0;
		c->owner_pid = dirty && !c->clean ? SEED_OWNER : 0;
		if (c->meta_sum)
			c->meta_sum = meta_sum_of(im, c);
		seal_header(c);
	}
}

/* The clean seed as format 1.0 wrote it: root words and descriptors
 * without checks, no release marks, no 1.1 header fields. */
static void as_format_1_0(uint8_t *im)
{
	struct pool_header *h = newest(im);
	uint64_t *desc = (uint64_t *)(im + h->desc_off);
	struct pool_root *r = (struct pool_root *)(im + POOL_ROOTS_OFF);

	for (size_t pg = 0; pg < h->npages; pg++)
		desc[pg] = DESC_KIND(desc[pg]) == DESC_FREE ? 0 : desc[pg] & DESC_BODY_MASK;
	for (unsigned i = 0; i < POOL_ROOTS_MAX; i++)
		if (r[i].tag)
			r[i].ptr &= ROOT_ADDR_MASK;
	for (int slot = 0; slot < 2; slot++) {
		struct pool_header *c = copy_at(im, slot);

		c->minor = 0;
		c->meta_sum = c->close_roots = c->collect_next = 0;
		seal_header(c);
	}
}

static void add_seed(const char *name, const uint8_t *im)
{
	struct seed *s = &seeds[nseeds++];

	s->name = name;
	s->img = alloc_or_die(SEED_SIZE);
	memcpy(s->img, im, SEED_SIZE);
	s->h = *newest(s->img);
	for (size_t pg = 0; pg < SEED_PAGES; pg++) {
		const uint8_t *p = im + pg * POOL_PAGE;
		int used = p[0] || memcmp(p, p + 1, POOL_PAGE - 1);

		s->used[pg / 64] |= (uint64_t)used << (pg % 64);
	}
}

/* Open p as a program does; 1 when recovery collected it. */
static int seed_open(const char *p, size_t size)
{
	struct heap_open_info info;

	recovery_set_mode(RECOVER_OPEN);
	if (store_open(p, size, GC_AUTO, &info))
		die("seed pool: cannot open %s: %s", p, btd_last_error());
	return info.collected;
}

static void build_seeds(void)
{
	char p[128];
	uint8_t *im = alloc_or_die(SEED_SIZE);

	snprintf(p, sizeof(p), "%s/seed.pool", dir);
	seed_open(p, SEED_SIZE);
	populate();
	store_close();
	load(p, im);
	rebase(im, 0);
	add_seed("clean", im);

	/* Reopened at the fixed base: trusted, unless the rebase got its
	 * metadata's checksum wrong. */
	store(p, im, NULL);
	if (seed_open(p, 0))
		die("seed pool: the moved clean pool was not trusted at its open");
	crash_changes();
	store_abandon();
	load(p, im);
	rebase(im, 1);
	add_seed("crashed", im);

	memcpy(im, seeds[0].img, SEED_SIZE);
	as_format_1_0(im);
	add_seed("format-1.0", im);
	unlink(p);
	free(im);
}

static void cleanup(void)
{
	char p[128];

	if (!dir[0])
		return;
	loud();
	snprintf(p, sizeof(p), "%s/seed.pool", dir);
	unlink(p);
	unlink(path);
	rmdir(dir);
	dir[0] = '\0';
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("BTD_FUZZ_TMP");
	int fd;

	(void)argc;
	(void)argv;
	if (nseeds)
		return 0;
	if ((fd = dup(STDERR_FILENO)) < 0 || !(report = fdopen(fd, "w")))
		die("cannot duplicate stderr: %s", strerror(errno));
	setvbuf(report, NULL, _IOLBF, 0);
	if (__sanitizer_set_report_fd)
		__sanitizer_set_report_fd((void *)(intptr_t)fd);
	log_set_fatal_hook(fatal_hook);
	if (!tmp)
		tmp = access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm";
	snprintf(dir, sizeof(dir), "%.40s/btd-fuzz-XXXXXX", tmp);
	if (!mkdtemp(dir))
		die("cannot make a directory under %s: %s", tmp, strerror(errno));
	snprintf(path, sizeof(path), "%s/p.pool", dir);
	atexit(cleanup);
	img = alloc_or_die(SEED_SIZE);
	readback = alloc_or_die(SEED_SIZE);
	cap_out = memfd_create("fuzz-stdout", MFD_CLOEXEC);
	cap_err = memfd_create("fuzz-stderr", MFD_CLOEXEC);
	saved_out = dup(STDOUT_FILENO);
	saved_err = dup(STDERR_FILENO);
	if (cap_out < 0 || cap_err < 0 || saved_out < 0 || saved_err < 0)
		die("cannot set up the output capture: %s", strerror(errno));
	build_seeds();
	/* Every seed must check clean, or the findings would mean nothing. */
	for (unsigned i = 0; i < nseeds; i++) {
		struct recovery_audit a;
		int st;

		memcpy(write_pages, seeds[i].used, sizeof(write_pages));
		write_pool(seeds[i].img);
		input_name = seeds[i].name;
		if ((st = tool(TOOL_CHECK)) != 0)
			finding("the seed pool does not check clean (exit %d)", st);
		if (program_open(NULL, 1))
			finding("a program cannot open the seed pool: %s", btd_last_error());
		recovery_audit(&a);
		seeds[i].reachable = a.reachable;
		program_close();
	}
	input_name = "(libFuzzer input)";
	stage = "";
	return 0;
}
