/* memd_layout.h: the on-media format of a memory node's pool (`btd memd --pool`).
 *
 * Only net/memd*.c include this file.  Fixed-width fields, the host's byte
 * order (the magic says so on the wrong kind of host).  The file is cut
 * into chunks of PROTO_CHUNK (16 MiB), the lease granule of proto.h;
 * chunk 0 holds the metadata, every other chunk is data:
 *
 *   offset          size              what
 *   0               4 KiB             header (struct memd_header)
 *   4 KiB           64 x 2 x 256 B    lease table: MEMD_LEASES slots, each two
 *                                     copies of struct memd_lease_rec
 *   36 KiB          nchunks x 8 B     chunk map: one u64 per chunk of the file
 *   ...             to 16 MiB         unused (zero)
 *   16 MiB          (nchunks-1) x 16 MiB   data chunks: stagings and images
 *
 * The file is allocated whole at creation (posix_fallocate), so a full
 * file system is an error at creation and never a SIGBUS later.
 *
 * HEADER.  Written once, never changed.  CREATION is ordered: the whole
 * metadata chunk is written and persisted in a temporary file beside the
 * pool, which is then link()ed to the pool's name (failing if a pool
 * appeared there meanwhile) -- so a file under the pool's name is always a
 * complete pool, and a crash during creation leaves only the temporary.
 *
 * LEASE TABLE.  A slot is a lease of one client pool (its uuid).  Each slot
 * has two copies; a copy counts when gen != 0 and its checksum holds, and
 * the counting copy with the larger gen is the record.  An update writes
 * the other copy with gen + 1 and persists it: a torn write leaves the
 * previous record.  A slot whose copies are both zero is free; a slot with
 * no counting copy that is not zero is damage (the pool is refused).
 *
 * CHUNK MAP.  map[c] says who owns chunk c: MEMD_MAP_FREE, MEMD_MAP_META
 * (chunk 0), or MEMD_MAP_ENTRY(slot, idx) -- idx 0 the staging of the
 * lease in `slot`, idx i >= 1 its image chunk i - 1 (image bytes
 * [(i-1) * PROTO_CHUNK, i * PROTO_CHUNK)).  One 8-byte store each.  A free
 * chunk holds zeros.  ALLOCATION writes and persists the map entries first,
 * then the lease record that counts them (nchunks, staging): a crash in
 * between leaves entries no record counts -- ORPHANS (slot free, or idx
 * beyond the record's nchunks) -- which open reclaims: zero the chunk,
 * persist, clear the entry, persist.  Entries are never removed otherwise.
 *
 * COMMIT (proto.h): the client RMA-writes the batch into staging; the node
 *   1. checks the batch (ranges inside image_size, lengths adding up to
 *      data_len, batch_sum), persists staging [0, nranges * 16 + data_len);
 *   2. writes a record with redo = {epoch + 1, length, sum} (persisted);
 *   3. copies the ranges into the image chunks, persists them;
 *   4. writes a record with epoch + 1 and redo cleared (persisted); acks.
 * At open, a record with a redo whose staging sums right (and whose ranges
 * pass the checks of step 1) is applied again (step 3 is idempotent) and
 * completed with step 4; any other redo is dropped (the client got no
 * ack).  So an image is epoch e's or e + 1's, never a mix.
 *
 * BULK: BULK_BEGIN {epoch} records consistent = 0 and the epoch the
 * commits during the copy follow from; BULK_END persists every image
 * chunk whole, then records epoch, image_size and consistent = 1.  A new
 * lease starts at epoch 0, inconsistent (its image is not yet the
 * client's). */
#ifndef BTD_NET_MEMD_LAYOUT_H
#define BTD_NET_MEMD_LAYOUT_H

#include <stdint.h>

#include "proto.h"

#define MEMD_MAGIC "btdmemd1"      /* 8 bytes */
#define MEMD_VERSION 1
#define MEMD_LEASES 64u            /* lease slots */
#define MEMD_HEADER_SLOT 4096u
#define MEMD_LEASE_OFF MEMD_HEADER_SLOT
#define MEMD_MAP_OFF (MEMD_LEASE_OFF + MEMD_LEASES * 2 * sizeof(struct memd_lease_rec))
#define MEMD_MIN_CHUNKS 3u         /* metadata, one staging, one image chunk */
/* Chunks the map can name within chunk 0 (2 million: 32 TiB). */
#define MEMD_MAX_CHUNKS ((uint64_t)(PROTO_CHUNK - MEMD_MAP_OFF) / 8)

struct memd_header {
	char magic[8];           /* MEMD_MAGIC */
	uint32_t version;        /* MEMD_VERSION */
	uint32_t header_size;    /* sizeof(struct memd_header) */
	uint8_t uuid[16];        /* the node's, random at creation (HELLO) */
	uint64_t size;           /* bytes of the file: nchunks * chunk_size */
	uint64_t chunk_size;     /* PROTO_CHUNK */
	uint64_t nchunks;        /* chunks of the file, chunk 0 included */
	uint64_t leases;         /* MEMD_LEASES */
	uint64_t lease_off;      /* MEMD_LEASE_OFF */
	uint64_t map_off;        /* MEMD_MAP_OFF */
	uint64_t created;        /* seconds since the epoch */
	uint64_t reserved[4];    /* zero */
	uint64_t checksum;       /* memd_sum of everything above */
};

_Static_assert(sizeof(struct memd_header) == 128, "header size is part of the format");

enum { MEMD_LEASE_FREE = 0, MEMD_LEASE_LIVE = 1 };

struct memd_lease_rec {
	uint64_t gen;            /* copy generation; 0: never written */
	uint32_t state;          /* MEMD_LEASE_FREE or MEMD_LEASE_LIVE */
	uint32_t consistent;     /* 1: the image is epoch's, whole */
	uint8_t owner[16];       /* the client pool's uuid */
	uint64_t base;           /* the client pool's base address */
	uint64_t image_size;     /* bytes of the image (<= nchunks * PROTO_CHUNK) */
	uint64_t epoch;          /* last committed durability point */
	uint32_t nchunks;        /* image chunks (<= PROTO_MAX_CHUNKS) */
	uint32_t staging;        /* the staging chunk's index in the file */
	uint64_t redo_epoch;     /* 0: no redo; else the epoch being applied */
	uint64_t redo_len;       /* staged bytes of the batch: nranges * 16 + data_len */
	uint64_t redo_sum;       /* their batch_sum */
	uint64_t redo_nranges;
	char path[PROTO_PATH];   /* the client pool's path, NUL-terminated */
	uint64_t reserved[3];    /* zero */
	uint64_t checksum;       /* memd_sum of everything above */
};

_Static_assert(sizeof(struct memd_lease_rec) == 256, "lease record size is part of the format");

#define MEMD_MAP_FREE ((uint64_t)0)
#define MEMD_MAP_META (~(uint64_t)0)
#define MEMD_MAP_TAG ((uint64_t)0xb7d1 << 48)
#define MEMD_MAP_ENTRY(slot, idx) (MEMD_MAP_TAG | (uint64_t)(slot) << 32 | (uint32_t)(idx))
#define MEMD_MAP_IS_ENTRY(e) (((e) >> 48) == 0xb7d1 && (((e) >> 32) & 0xffff) < MEMD_LEASES)
#define MEMD_MAP_SLOT(e) ((unsigned)(((e) >> 32) & 0xffff))
#define MEMD_MAP_IDX(e) ((uint32_t)(e))

/* The metadata checksum (not the batch's, which is proto.h's batch_sum):
 * FNV-1a over the bytes, then a final mix; never 0. */
static inline uint64_t memd_sum(const void *p, uint64_t n)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325u;

	for (uint64_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3u;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdu;
	h ^= h >> 33;
	return h ? h : 1;
}

#endif
