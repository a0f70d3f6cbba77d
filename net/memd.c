/* memd.c: the memory node's dispatcher -- one message of a session in, its answer out (proto.h's state machine).
 *
 * A session goes HELLO (sent, waiting for AUTH) -> AUTHED -> LEASED.  Before
 * AUTH nothing else is taken; LEASE once per session; COMMIT and BULK only
 * with a lease; BULK_END only after this session's BULK_BEGIN; LIST after
 * AUTH.  Every count and offset is checked before use, against the
 * message's own size (msg_check) and against the lease (memd_pool.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "../common/log.h"
#include "btd.h"
#include "memd_int.h"

union msg_any {
	struct msg_hdr h;
	struct msg_hello hello;
	struct msg_auth auth;
	struct msg_auth_ok auth_ok;
	struct msg_lease lease;
	struct msg_lease_ok lease_ok;
	struct msg_commit commit;
	struct msg_bulk bulk;
	struct msg_ack ack;
	struct msg_list_ok list_ok;
	struct msg_error error;
	unsigned char bytes[NET_MSG_MAX];
};

struct memd_session *memd_session_new(struct memd *m, const char *peer)
{
	struct memd_session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->m = m;
	s->slot = -1;
	s->state = SESSION_HELLO;
	snprintf(s->peer, sizeof(s->peer), "%s", peer ? peer : "?");
	return s;
}

void memd_session_free(struct memd_session *s)
{
	if (!s)
		return;
	if (s->slot >= 0 && s->m->lease[s->slot].holder == s)
		s->m->lease[s->slot].holder = NULL;
	free(s);
}

void memd_session_set_ctx(struct memd_session *s, void *ctx)
{
	s->ctx = ctx;
}

void *memd_session_ctx(const struct memd_session *s)
{
	return s->ctx;
}

size_t memd_hello(struct memd_session *s, void *reply)
{
	struct msg_hello h = { 0 };

	if (proto_random(s->nonce, sizeof(s->nonce)))
		btd_fatal("memd: no random bytes for a nonce");
	msg_init(&h.h, MSG_HELLO, sizeof(h), 0);
	memcpy(h.node_uuid, memd_uuid(s->m), 16);
	memcpy(h.nonce, s->nonce, PROTO_NONCE);
	memcpy(reply, &h, sizeof(h));
	return sizeof(h);
}

/* ---- answers ---- */

struct answer {
	union msg_any *out;
	size_t len;
	uint32_t seq;
};

/* MSG_ERROR with status and the line in err_last(); returns keep. */
static int refuse(struct answer *a, int status, int keep)
{
	struct msg_error *e = &a->out->error;

	memset(e, 0, sizeof(*e));
	msg_init(&e->h, MSG_ERROR, sizeof(*e), a->seq);
	e->status = status;
	snprintf(e->text, sizeof(e->text), "%s", err_last());
	a->len = sizeof(*e);
	return keep;
}

static int ack(struct answer *a, uint64_t epoch)
{
	memset(&a->out->ack, 0, sizeof(a->out->ack));
	msg_init(&a->out->h, MSG_ACK, sizeof(a->out->ack), a->seq);
	a->out->ack.epoch = epoch;
	a->len = sizeof(a->out->ack);
	return 1;
}

static const char *who(const struct memd_lease_rec *r, char buf[9])
{
	snprintf(buf, 9, "%02x%02x%02x%02x", r->owner[0], r->owner[1], r->owner[2], r->owner[3]);
	return buf;
}

/* ---- the messages ---- */

static int on_auth(struct memd *m, struct memd_session *s, const struct msg_auth *in,
		   struct answer *a)
{
	uint8_t mac[PROTO_MAC];

	if (proto_mac(m->key, m->key_len, "btd-c", s->nonce, in->nonce, mac))
		return refuse(a, err_set(BTD_ERR_IO, "libcrypto failed"), 0);
	if (!proto_mac_equal(mac, in->mac)) {
		memd_log(m, "authentication failed from %s (wrong key)", s->peer);
		err_set(BTD_ERR_PERM, "authentication failed: wrong key");
		return refuse(a, BTD_ERR_PERM, 0);
	}
	struct msg_auth_ok *ok = &a->out->auth_ok;

	memset(ok, 0, sizeof(*ok));
	msg_init(&ok->h, MSG_AUTH_OK, sizeof(*ok), a->seq);
	if (proto_mac(m->key, m->key_len, "btd-n", in->nonce, s->nonce, ok->mac))
		return refuse(a, err_set(BTD_ERR_IO, "libcrypto failed"), 0);
	a->len = sizeof(*ok);
	s->state = SESSION_AUTHED;
	return 1;
}

static int mr_reg(struct memd *m, void *buf, struct net_mr *mr)
{
	if (m->ops.reg)
		return m->ops.reg(m->ops.ctx, buf, PROTO_CHUNK, mr);
	memset(mr, 0, sizeof(*mr));
	mr->buf = buf;
	mr->len = PROTO_CHUNK;
	mr->addr = (uint64_t)((unsigned char *)buf - m->base);
	return 0;
}

/* Register what of slot's chunks is not yet: each its own region and key. */
static int lease_register(struct memd *m, int slot)
{
	struct memd_lease *L = &m->lease[slot];
	int st;

	if (L->nreg == 0 && (st = mr_reg(m, memd_chunk(m, L->rec.staging), &L->mr_staging)))
		return st;
	for (; L->nreg < L->rec.nchunks; L->nreg++)
		if ((st = mr_reg(m, memd_chunk(m, L->chunk[L->nreg]), &L->mr[L->nreg]))) {
			if (L->nreg == 0 && m->ops.dereg)
				m->ops.dereg(m->ops.ctx, &L->mr_staging);
			return st;
		}
	return 0;
}

static void lease_ok(const struct memd *m, int slot, struct answer *a)
{
	const struct memd_lease *L = &m->lease[slot];
	struct msg_lease_ok *ok = &a->out->lease_ok;

	memset(ok, 0, sizeof(*ok));
	msg_init(&ok->h, MSG_LEASE_OK, sizeof(*ok), a->seq);
	ok->epoch = L->rec.epoch;
	ok->consistent = L->rec.consistent;
	ok->nchunks = L->rec.nchunks;
	ok->image_size = L->rec.image_size;
	ok->base = L->rec.base;
	ok->staging.addr = L->mr_staging.addr;
	ok->staging.key = L->mr_staging.key;
	for (uint32_t i = 0; i < L->rec.nchunks; i++) {
		ok->chunk[i].addr = L->mr[i].addr;
		ok->chunk[i].key = L->mr[i].key;
	}
	a->len = sizeof(*ok);
}

static int on_lease(struct memd *m, struct memd_session *s, const struct msg_lease *in,
		    struct answer *a)
{
	char path[PROTO_PATH], id[9];
	int slot = memd_lease_find(m, in->uuid), st;
	const char *what = "attached";

	memcpy(path, in->path, PROTO_PATH);
	path[PROTO_PATH - 1] = '\0';
	if (slot < 0 && in->image_size == 0) {
		err_set(BTD_ERR_NOENT, "no lease for this pool on the node");
		return refuse(a, BTD_ERR_NOENT, 1);
	}
	if (slot < 0) {
		if ((st = memd_lease_create(m, in->uuid, in->base, path, in->image_size, &slot)))
			return refuse(a, st, 1);
		what = "new";
	} else if (in->image_size) {
		struct memd_lease_rec r;

		if (in->image_size > m->lease[slot].rec.image_size)
			what = "grown";
		if ((st = memd_lease_grow(m, slot, in->image_size)))
			return refuse(a, st, 1);
		r = m->lease[slot].rec;
		if (r.base != in->base || strcmp(r.path, path)) {
			r.base = in->base;
			snprintf(r.path, sizeof(r.path), "%s", path);
			memd_lease_write(m, slot, &r);
		}
	}
	if ((st = lease_register(m, slot)))
		return refuse(a, st, 0);
	struct memd_lease *L = &m->lease[slot];
	struct memd_session *old = L->holder;

	if (in->image_size == 0 && old && old != s) {
		/* An attach while the owner is connected (a restore on another
		 * machine, a client probing which of its leases is newest):
		 * read-only, and the owner keeps its session. */
		s->slot = slot;
		s->state = SESSION_LEASED;
		s->observer = 1;
		s->bulk = 0;
		lease_ok(m, slot, a);
		return 1;
	}
	s->observer = 0;
	if (old && old != s) {
		memd_log(m, "lease %s: taken over by %s; the session of %s is closed",
			 who(&L->rec, id), s->peer, old->peer);
		old->slot = -1;
		old->state = SESSION_AUTHED;
		L->holder = NULL;
		if (m->ops.evict)
			m->ops.evict(m->ops.ctx, old);
	}
	if (L->holder != s)
		s->bulk = 0; /* a grow inside a bulk transfer keeps it going */
	L->holder = s;
	s->slot = slot;
	s->state = SESSION_LEASED;
	memd_log(m, "lease %s %s for %s: %llu MiB in %u chunk(s), epoch %llu%s (%s)",
		 who(&L->rec, id), what, s->peer, (unsigned long long)(L->rec.image_size >> 20),
		 L->rec.nchunks, (unsigned long long)L->rec.epoch,
		 L->rec.consistent ? "" : ", inconsistent", L->rec.path);
	lease_ok(m, slot, a);
	return 1;
}

static int on_commit(struct memd *m, struct memd_session *s, const struct msg_commit *in,
		     struct answer *a)
{
	char id[9];
	int st = memd_commit(m, s->slot, in->epoch, in->nranges, in->data_len, in->sum);
	const struct memd_lease_rec *r = &m->lease[s->slot].rec;

	if (st == 1)
		return 0; /* the test hook's crash: no answer */
	if (st) {
		memd_log(m, "lease %s: commit from %s refused: %s", who(r, id), s->peer, err_last());
		return refuse(a, st, 0);
	}
	if (m->verbose > 0)
		memd_log(m, "lease %s: epoch %llu committed (%llu ranges, %llu bytes)", who(r, id),
			 (unsigned long long)r->epoch, (unsigned long long)in->nranges,
			 (unsigned long long)in->data_len);
	return ack(a, r->epoch);
}

static int on_bulk(struct memd *m, struct memd_session *s, const struct msg_hdr *h,
		   const struct msg_bulk *in, struct answer *a)
{
	struct memd_lease_rec r = m->lease[s->slot].rec;

	if (h->type == MSG_BULK_BEGIN) {
		/* The image is the client's to overwrite from here; the commits of
		 * what it flushes during the copy follow from `epoch`. */
		if (r.consistent || r.epoch != in->epoch) {
			r.consistent = 0;
			r.epoch = in->epoch;
			memd_lease_write(m, s->slot, &r);
		}
		s->bulk = 1;
		return ack(a, r.epoch);
	}
	if (!s->bulk) {
		err_set(BTD_ERR_INVAL, "BULK_END without a BULK_BEGIN");
		return refuse(a, BTD_ERR_INVAL, 0);
	}
	if (in->image_size == 0 || in->image_size > (uint64_t)r.nchunks * PROTO_CHUNK) {
		err_set(BTD_ERR_INVAL, "BULK_END of an image of %llu bytes: the lease holds %llu",
			(unsigned long long)in->image_size,
			(unsigned long long)r.nchunks * PROTO_CHUNK);
		return refuse(a, BTD_ERR_INVAL, 0);
	}
	memd_image_persist(m, s->slot);
	r.epoch = in->epoch;
	r.image_size = in->image_size;
	r.consistent = 1;
	memd_lease_write(m, s->slot, &r);
	s->bulk = 0;
	return ack(a, r.epoch);
}

static int on_list(const struct memd *m, struct answer *a)
{
	struct msg_list_ok *ok = &a->out->list_ok;
	uint32_t n = 0;

	memset(ok, 0, sizeof(*ok));
	for (unsigned s = 0; s < MEMD_LEASES && n < PROTO_MAX_LIST; s++) {
		const struct memd_lease_rec *r = &m->lease[s].rec;
		struct msg_lease_info *i = &ok->lease[n];

		if (r->state != MEMD_LEASE_LIVE)
			continue;
		memcpy(i->uuid, r->owner, 16);
		i->epoch = r->epoch;
		i->image_size = r->image_size;
		i->base = r->base;
		i->consistent = r->consistent;
		memcpy(i->path, r->path, PROTO_PATH);
		i->path[PROTO_PATH - 1] = '\0';
		n++;
	}
	ok->count = n;
	a->len = offsetof(struct msg_list_ok, lease) + n * sizeof(struct msg_lease_info);
	msg_init(&ok->h, MSG_LIST_OK, a->len, a->seq);
	return 1;
}

static int dispatch(struct memd *m, struct memd_session *s, const union msg_any *in,
		    struct answer *a)
{
	uint16_t type = in->h.type;

	if (s->state == SESSION_HELLO) {
		if (type == MSG_AUTH)
			return on_auth(m, s, &in->auth, a);
		err_set(BTD_ERR_PERM, "not authenticated: AUTH first");
		return refuse(a, BTD_ERR_PERM, 0);
	}
	switch (type) {
	case MSG_LEASE:
		/* Again for the session's own lease: it grows (the client's heap
		 * did); another lease: refused. */
		if (s->state == SESSION_LEASED &&
		    memcmp(m->lease[s->slot].rec.owner, in->lease.uuid, 16))
			break;
		return on_lease(m, s, &in->lease, a);
	case MSG_LIST:
		return on_list(m, a);
	case MSG_COMMIT:
	case MSG_BULK_BEGIN:
	case MSG_BULK_END:
		if (s->state != SESSION_LEASED)
			break;
		if (s->observer) {
			err_set(BTD_ERR_BUSY, "this session only reads the lease: its owner is "
				"connected");
			return refuse(a, BTD_ERR_BUSY, 0);
		}
		if (type == MSG_COMMIT)
			return on_commit(m, s, &in->commit, a);
		return on_bulk(m, s, &in->h, &in->bulk, a);
	default:
		break;
	}
	if (type == MSG_LEASE)
		err_set(BTD_ERR_INVAL, "a LEASE of another pool: a session holds one lease");
	else if (type == MSG_COMMIT || type == MSG_BULK_BEGIN || type == MSG_BULK_END)
		err_set(BTD_ERR_INVAL, "no lease yet: LEASE first");
	else
		err_set(BTD_ERR_INVAL, "message type %u is not a request the node takes", type);
	return refuse(a, BTD_ERR_INVAL, 0);
}

int memd_handle(struct memd *m, struct memd_session *s, const void *msg, size_t len,
		void *reply, size_t *reply_len)
{
	static union msg_any in, out; /* one thread runs the node */
	struct answer a = { .out = &out };
	int keep, st;

	*reply_len = 0;
	if (len >= sizeof(struct msg_hdr))
		memcpy(&a.seq, (const unsigned char *)msg + offsetof(struct msg_hdr, seq), 4);
	if (len > NET_MSG_MAX) {
		err_set(BTD_ERR_INVAL, "a message of %zu bytes: at most %d", len, NET_MSG_MAX);
		keep = refuse(&a, BTD_ERR_INVAL, 0);
	} else if ((st = msg_check(msg, len))) {
		keep = refuse(&a, st, 0);
	} else {
		memset(&in, 0, sizeof(in));
		memcpy(&in, msg, len);
		keep = dispatch(m, s, &in, &a);
	}
	if (a.len) {
		memcpy(reply, &out, a.len);
		*reply_len = a.len;
	}
	return keep;
}

/* ---- test hooks ---- */

void *memd_test_staging(struct memd *m, const uint8_t uuid[16])
{
	int s = memd_lease_find(m, uuid);

	return s < 0 ? NULL : memd_chunk(m, m->lease[s].rec.staging);
}

void *memd_test_image(struct memd *m, const uint8_t uuid[16], uint32_t i)
{
	int s = memd_lease_find(m, uuid);

	return s < 0 || i >= m->lease[s].rec.nchunks ? NULL : memd_chunk(m, m->lease[s].chunk[i]);
}

void memd_test_crash_after_redo(struct memd *m, int on)
{
	m->crash_after_redo = on;
}
