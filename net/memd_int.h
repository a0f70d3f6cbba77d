/* memd_int.h: the memory node's private state, shared by memd_pool.c (the media) and memd.c (the dispatcher). */
#ifndef BTD_NET_MEMD_INT_H
#define BTD_NET_MEMD_INT_H

#include <stddef.h>
#include <stdint.h>

#include "memd.h"
#include "memd_layout.h"

#define MEMD_KEY_MAX 4096

/* A lease slot in memory: its record (the counting copy), where its
 * chunks are, and their registrations of this node run. */
struct memd_lease {
	struct memd_lease_rec rec;
	unsigned cur;                        /* the copy rec came from */
	uint32_t chunk[PROTO_MAX_CHUNKS];    /* image chunk i -> chunk of the file */
	struct net_mr mr_staging;
	struct net_mr mr[PROTO_MAX_CHUNKS];
	uint32_t nreg;                       /* image chunks registered; staging too when > 0 */
	struct memd_session *holder;
};

struct memd {
	char path[4096];
	uint8_t key[MEMD_KEY_MAX];
	size_t key_len;
	int verbose;
	struct memd_ops ops;
	int fd;                              /* holds the flock */
	unsigned char *base;                 /* the mapping */
	uint64_t size;
	int is_pmem;
	const struct memd_header *hdr;
	struct memd_lease_rec *table;        /* MEMD_LEASES x 2 copies */
	uint64_t *map;
	uint64_t nchunks;
	struct memd_lease lease[MEMD_LEASES];
	int crash_after_redo;
	int crashed;                         /* the hook fired: only memd_close is right */
};

enum memd_state { SESSION_HELLO, SESSION_AUTHED, SESSION_LEASED };

struct memd_session {
	struct memd *m;
	enum memd_state state;
	int slot;                            /* the lease held, -1 none */
	int bulk;                            /* a BULK_BEGIN was acked */
	int observer;                        /* attached to read (restore, a probe)
					      * while another session holds the lease */
	uint8_t nonce[PROTO_NONCE];          /* ours, of the HELLO */
	char peer[64];
	void *ctx;
};

/* memd_pool.c */
void memd_persist(const struct memd *m, const void *p, size_t n);
void *memd_chunk(const struct memd *m, uint64_t c);
int memd_lease_find(const struct memd *m, const uint8_t uuid[16]);
/* A new lease (0 with *slot), or BTD_ERR_NOSPC / BTD_ERR_INVAL. */
int memd_lease_create(struct memd *m, const uint8_t uuid[16], uint64_t base, const char *path,
		      uint64_t image_size, int *slot);
/* Grow slot's image to image_size (no-op when it holds that much). */
int memd_lease_grow(struct memd *m, int slot, uint64_t image_size);
/* Free a lease: its record first (durably), then its chunks, zeroed (as
 * orphans are at open).  For `btd memd --drop`, with no session on it. */
void memd_lease_drop(struct memd *m, int slot);
/* Write rec as slot's new record (the other copy, gen + 1), persisted. */
void memd_lease_write(struct memd *m, int slot, const struct memd_lease_rec *rec);
/* The COMMIT protocol of memd_layout.h; 0 or a btd_status (err_last()). */
int memd_commit(struct memd *m, int slot, uint64_t epoch, uint64_t nranges, uint64_t data_len,
		uint64_t sum);
/* Persist the whole image of slot. */
void memd_image_persist(struct memd *m, int slot);
void memd_log(const struct memd *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
