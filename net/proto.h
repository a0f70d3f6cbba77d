/* proto.h: the control protocol between a client and a memory node
 * (`btd memd`), version 1.  Specified here once, like the pool format in
 * heap/layout.h; only net/ includes it.
 *
 * Every message starts with struct msg_hdr; `len` is the whole message,
 * header included, and is at most NET_MSG_MAX.  Fixed-width little-endian
 * fields (the host's).  A receiver checks magic, version, that len equals
 * the bytes received and the size its type requires (msg_size_ok), and
 * every count and offset inside against the bytes and leases they name;
 * anything else is answered with MSG_ERROR and the connection closed.
 *
 * SESSION (client C, node N; K the shared key of --key / BTD_KEY_FILE):
 *   N -> C  HELLO     node uuid, nonce_n (32 random bytes)
 *   C -> N  AUTH      nonce_c, mac = HMAC-SHA256(K, "btd-c" nonce_n nonce_c)
 *   N -> C  AUTH_OK   mac = HMAC-SHA256(K, "btd-n" nonce_c nonce_n)
 *           (or ERROR BTD_ERR_PERM and close).  The key never crosses the
 *           wire; each side proves it knows K; nonces make replays useless.
 *   C -> N  LEASE     the client pool's uuid, base, path, and the image size
 *                     it needs (0: attach to an existing lease only, as
 *                     restore does)
 *   N -> C  LEASE_OK  the lease: epoch committed, consistent or not, image
 *                     size, the staging region and every image chunk as
 *                     (addr, key) for RMA.  Keys are fresh at every node
 *                     start (a restarted node gives new keys: clients
 *                     re-handshake).  A session holds one lease.
 *   Then any number of:
 *   C -> N  COMMIT    after RMA-writing a batch into staging -> ACK
 *   C -> N  BULK_BEGIN / RMA writes straight into image chunks / BULK_END
 *                     -> ACK each
 *   C -> N  LIST      -> LIST_OK (the leases on the node; restore picks one)
 *
 * A BATCH (one durability point) in staging:
 *   struct batch_range range[nranges];  then the ranges' bytes, in order
 * COMMIT carries nranges, data_len, the new epoch and sum = batch_sum() of
 * the staged bytes [0, nranges * 16 + data_len).  The node checks every
 * range lies inside the lease's image and that the lengths add up to
 * data_len, checks the sum (a torn or forged staging is refused), makes
 * staging durable, records the redo (epoch, length, sum) durably, copies
 * the ranges into the image, makes them durable, records the epoch as
 * committed, and acks.  A node that restarts with a recorded redo whose
 * staging still sums right applies it again; so a replica holds the image
 * of epoch e or of e + 1, never a torn mix.
 *
 * A BULK transfer (the first sync of a lease, a resync, a preload
 * program's whole heap) is larger than staging: BULK_BEGIN {epoch}
 * records the image inconsistent and its epoch as `epoch` (durably), the
 * client writes the image chunks directly, then COMMITs (epoch + 1, ...)
 * what it flushed during the copy, and BULK_END {epoch, image_size} makes
 * the image durable and records epoch, image_size and consistent.  A client sends bulk transfers to one replica at a
 * time, so at most one replica is ever inconsistent; restore takes the
 * consistent replica with the newest epoch.
 *
 * ERRORS: MSG_ERROR carries a btd_status and one line of text. */
#ifndef BTD_NET_PROTO_H
#define BTD_NET_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "net.h"

#define PROTO_MAGIC 0x31647462u /* "btd1" */
#define PROTO_VERSION 1
#define PROTO_NONCE 32
#define PROTO_MAC 32           /* HMAC-SHA256 */
#define PROTO_PATH 128         /* a pool path, NUL-terminated, truncated */
#define PROTO_CHUNK ((uint64_t)16 << 20) /* lease granule: 16 MiB */
#define PROTO_STAGING PROTO_CHUNK        /* staging per lease */
#define PROTO_TEXT 200

enum msg_type {
	MSG_HELLO = 1,
	MSG_AUTH = 2,
	MSG_AUTH_OK = 3,
	MSG_LEASE = 4,
	MSG_LEASE_OK = 5,
	MSG_COMMIT = 6,
	MSG_BULK_BEGIN = 7,
	MSG_BULK_END = 8,
	MSG_ACK = 9,
	MSG_LIST = 10,
	MSG_LIST_OK = 11,
	MSG_ERROR = 12,
	MSG_TYPE_MAX
};

struct msg_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t len;  /* of the whole message */
	uint32_t seq;  /* the request's, echoed in its answer */
};

struct msg_hello {
	struct msg_hdr h;
	uint8_t node_uuid[16];
	uint8_t nonce[PROTO_NONCE];
};

struct msg_auth {
	struct msg_hdr h;
	uint8_t nonce[PROTO_NONCE];
	uint8_t mac[PROTO_MAC];
};

struct msg_auth_ok {
	struct msg_hdr h;
	uint8_t mac[PROTO_MAC];
};

struct msg_lease {
	struct msg_hdr h;
	uint8_t uuid[16];     /* the client pool's */
	uint64_t base;        /* its base address (restore maps it there) */
	uint64_t image_size;  /* bytes to hold; 0: an existing lease only */
	char path[PROTO_PATH];
};

/* Where a peer writes or reads: addr + offset under key. */
struct msg_region {
	uint64_t addr;
	uint64_t key;
};

#define PROTO_MAX_CHUNKS 240

struct msg_lease_ok {
	struct msg_hdr h;
	uint64_t epoch;       /* last committed durability point (0: none yet) */
	uint32_t consistent;  /* 1: the image is epoch's, whole */
	uint32_t nchunks;
	uint64_t image_size;  /* bytes the lease holds (nchunks * PROTO_CHUNK >= it) */
	uint64_t base;
	struct msg_region staging; /* PROTO_STAGING bytes */
	struct msg_region chunk[PROTO_MAX_CHUNKS]; /* image [i * PROTO_CHUNK, ...) */
};

struct batch_range {
	uint64_t off;  /* in the image */
	uint64_t len;
};

struct msg_commit {
	struct msg_hdr h;
	uint64_t epoch;     /* the new one: the lease's + 1 */
	uint64_t nranges;
	uint64_t data_len;
	uint64_t sum;       /* batch_sum of the staged bytes */
};

struct msg_bulk {
	struct msg_hdr h;
	uint64_t epoch;      /* BEGIN: the lease's epoch from now; END: the image's */
	uint64_t image_size; /* BULK_END: its size */
};

struct msg_ack {
	struct msg_hdr h;
	uint64_t epoch;      /* the lease's committed epoch after the request */
};

struct msg_list {
	struct msg_hdr h;
};

struct msg_lease_info {
	uint8_t uuid[16];
	uint64_t epoch;
	uint64_t image_size;
	uint64_t base;
	uint32_t consistent;
	uint32_t pad;
	char path[PROTO_PATH];
};

#define PROTO_MAX_LIST ((NET_MSG_MAX - 24) / sizeof(struct msg_lease_info))

struct msg_list_ok {
	struct msg_hdr h;
	uint32_t count;
	uint32_t pad;
	struct msg_lease_info lease[PROTO_MAX_LIST];
};

struct msg_error {
	struct msg_hdr h;
	int32_t status;      /* a btd_status */
	uint32_t pad;
	char text[PROTO_TEXT]; /* NUL-terminated */
};

_Static_assert(sizeof(struct msg_hdr) == 16, "msg_hdr");
_Static_assert(sizeof(struct msg_lease_ok) <= NET_MSG_MAX, "lease_ok fits");
_Static_assert(sizeof(struct msg_list_ok) <= NET_MSG_MAX, "list_ok fits");
_Static_assert(sizeof(struct batch_range) == 16, "batch_range");

/* TWIN LEASES.  A client keeps two leases of its pool on each node: the
 * pool's uuid, and its twin with the top bit of the last byte flipped
 * (net/repl.c says why).  Whether two lease uuids are one pool's: */
static inline int proto_same_pool(const uint8_t a[16], const uint8_t b[16])
{
	for (int i = 0; i < 15; i++)
		if (a[i] != b[i])
			return 0;
	return !((a[15] ^ b[15]) & 0x7f);
}

/* A uuid as 32 lowercase hex digits. */
static inline void proto_uuid_hex(const uint8_t u[16], char out[33])
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < 16; i++) {
		out[2 * i] = digits[u[i] >> 4];
		out[2 * i + 1] = digits[u[i] & 15];
	}
	out[32] = '\0';
}

/* Fill a header (len = the struct's size unless the type is variable). */
static inline void msg_init(struct msg_hdr *h, enum msg_type type, size_t len, uint32_t seq)
{
	h->magic = PROTO_MAGIC;
	h->version = PROTO_VERSION;
	h->type = (uint16_t)type;
	h->len = (uint32_t)len;
	h->seq = seq;
}

/* The size a message of this type must have: exact for every type but
 * LIST_OK (at least its head, then whole entries), 0 for unknown types. */
size_t msg_size(uint16_t type);

/* 0 when [msg, msg + len) is a well-formed message (magic, version, type,
 * h.len == len, size); else a negative btd_status and the reason in
 * err_last(). */
int msg_check(const void *msg, size_t len);

/* 64-bit checksum of a staged batch (4 lanes of xxHash64-style rounds, then a full mix). */
uint64_t batch_sum(const void *p, size_t n);

/* HMAC-SHA256 of the session (proto.c, with OpenSSL's libcrypto):
 * tag "btd-c" or "btd-n", then a, then b.  0, or -1 when libcrypto fails. */
int proto_mac(const uint8_t *key, size_t key_len, const char *tag,
	      const uint8_t a[PROTO_NONCE], const uint8_t b[PROTO_NONCE],
	      uint8_t out[PROTO_MAC]);
/* HMAC-SHA256 of [data, data + len): proto_mac's primitive, exposed for
 * its known-answer test.  0, or -1 when libcrypto fails. */
int proto_hmac(const uint8_t *key, size_t key_len, const void *data, size_t len,
	       uint8_t out[PROTO_MAC]);
/* Constant-time comparison of two MACs: 1 equal. */
int proto_mac_equal(const uint8_t a[PROTO_MAC], const uint8_t b[PROTO_MAC]);
/* Fill with random bytes (getrandom). 0 or -1. */
int proto_random(void *p, size_t n);

/* Read a key file: its bytes (trailing newline dropped), 16 to 4096 of
 * them; a file that others may read is refused.  0 or a btd_status. */
int proto_key_load(const char *path, uint8_t *key, size_t cap, size_t *len);

#endif
