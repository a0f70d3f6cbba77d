/* memd.h: the memory node (`btd memd`) -- its pool, its leases and the dispatcher of proto.h's messages.
 *
 * The dispatcher is apart from the transport: memd_handle takes one
 * received message and writes the answer, so that tests and the fuzzer
 * drive it in-process.  The transport's parts come in through struct
 * memd_ops (registering a chunk for RMA, closing a session that lost its
 * lease to a newer one); memd_main.c plugs libfabric in.
 *
 * SESSIONS AND LEASES.  A lease is held by at most one session.  A LEASE
 * for a lease another session holds takes it over: the older session is
 * detached and closed (ops.evict) -- a client that restarted after a
 * crash reconnects before the node notices that its old connection died.
 * The older session, if it was alive after all, gets its connection closed
 * and must reconnect: there is never more than one writer per lease.
 *
 * ERRORS.  Every refusal is a MSG_ERROR with a btd_status and one line.
 * A malformed message, a message out of the session's state, a forged
 * COMMIT or a wrong MAC also end the session (memd_handle returns 0); a
 * LEASE the node cannot grant (BTD_ERR_NOSPC, BTD_ERR_NOENT) does not. */
#ifndef BTD_NET_MEMD_H
#define BTD_NET_MEMD_H

#include <stddef.h>
#include <stdint.h>

#include "net.h"
#include "proto.h"

struct memd;
struct memd_session;

struct memd_ops {
	/* Register [buf, buf + len) for peers' RMA (NET_ACCESS_REMOTE); 0 or a
	 * btd_status.  NULL: no transport (tests): addr is the offset of buf
	 * in the pool, key 0. */
	int (*reg)(void *ctx, void *buf, size_t len, struct net_mr *out);
	void (*dereg)(void *ctx, struct net_mr *mr);
	/* s lost its lease to a newer session: close its connection and
	 * memd_session_free it.  NULL: s is only detached. */
	void (*evict)(void *ctx, struct memd_session *s);
	void *ctx;
};

struct memd_config {
	const char *path;
	uint64_t size;         /* bytes, when the pool is created; rounded down to chunks */
	const uint8_t *key;    /* the shared key (proto_key_load) */
	size_t key_len;
	int verbose;           /* 1: a line per commit too; -1: no lines at all */
	struct memd_ops ops;
};

/* Open the node pool (creating it when missing), replay recorded redos,
 * lock it against a second memd.  0 with *out, or a negative btd_status
 * and one line in err_last(): BTD_ERR_BUSY (another memd serves it),
 * BTD_ERR_FORMAT / BTD_ERR_VERSION (not a node pool; the file untouched),
 * BTD_ERR_IO, BTD_ERR_NOSPC, BTD_ERR_INVAL. */
int memd_open(const struct memd_config *cfg, struct memd **out);
/* Deregister every region, unmap, unlock.  Sessions must be freed first. */
void memd_close(struct memd *m);

const uint8_t *memd_uuid(const struct memd *m);

/* A session for a new connection; peer names it in messages. */
struct memd_session *memd_session_new(struct memd *m, const char *peer);
/* Detach from its lease and free. */
void memd_session_free(struct memd_session *s);
void memd_session_set_ctx(struct memd_session *s, void *ctx);
void *memd_session_ctx(const struct memd_session *s);

/* The HELLO that opens a session (a fresh nonce); its length. */
size_t memd_hello(struct memd_session *s, void *reply);

/* Handle one message of s.  The answer (at most NET_MSG_MAX bytes) in
 * reply, its length in *reply_len (0: none).  1 to keep the session, 0 to
 * close it after sending the answer. */
int memd_handle(struct memd *m, struct memd_session *s, const void *msg, size_t len,
		void *reply, size_t *reply_len);

/* Every invariant of the node's state (map against lease records, in
 * memory against the media); 0, or -1 with the first violation in
 * err_last().  For tests and the fuzzer. */
int memd_check(const struct memd *m);

/* `btd memd ARGS` (argv without "memd"): serve until SIGTERM or SIGINT.
 * Exit status: 0 stopped, 1 failed (another memd serves the pool, the
 * listener failed), 2 bad arguments or not a node pool. */
int memd_main(int argc, char **argv);

/* Test hooks. */
/* The staging chunk and the image chunk i of the lease of uuid (NULL: none). */
void *memd_test_staging(struct memd *m, const uint8_t uuid[16]);
void *memd_test_image(struct memd *m, const uint8_t uuid[16], uint32_t i);
/* 1: the next COMMIT stops after recording its redo, as a crash would
 * there, and memd_handle returns 0 without an answer. */
void memd_test_crash_after_redo(struct memd *m, int on);

#endif
