/* repl.c: synchronous replication to memory nodes (see repl.h).
 *
 * RECORDING.  The decorator's flush copies the flushed bytes into the
 * current redo buffer under a spin lock (flushes are off the small-object
 * fast path: run metadata, roots, logs, btd_persist).  Neighbouring
 * ranges merge.  A buffer holds at most what one staging region takes
 * (PROTO_STAGING bytes of table and data); past that it only remembers
 * that it overflowed, and the next point sends the whole image.
 *
 * Two buffers: a durability point swaps them under the spin lock and
 * ships the full one while threads record into the other.  A buffer is
 * laid out so that the batch is contiguous when shipped: the ranges are
 * kept apart while recording and copied in front of the data at the end,
 * into the TABLE_MAX bytes reserved before it.
 *
 * SHIPPING.  Under R.lock, one point at a time: the batch is written into
 * every live replica's staging, then COMMIT goes to each, then the ACKs
 * are collected -- the replicas work in parallel.  Epochs are global: every
 * replica in sync holds the same one, and a commit asks for epoch + 1. */
#include "repl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/error.h"
#include "../common/log.h"
#include "../heap/heap_int.h"
#include "../heap/pmem.h"
#include "../heap/pool.h"
#include "btd.h"
#include "net.h"
#include "proto.h"

#define TABLE_MAX ((size_t)1 << 20) /* bytes of ranges: 65,536 of them */
#define BUF_BYTES (TABLE_MAX + PROTO_STAGING)
#define RETRY_NS 1000000000ull      /* a stale replica is tried once a second */
#define DEFAULT_TIMEOUT_MS 5000

struct rbuf {
	char *mem;                /* BUF_BYTES: table room, then data */
	struct batch_range *rng;  /* the ranges, kept apart while recording */
	size_t n, data_len;
	int overflow;
	struct net_mr mr;
};

struct replica {
	char host[128];
	char port[16];
	struct net_ep *ep;
	int synced;               /* holds the image of R.epoch, whole */
	uint64_t retry_at;        /* ns: when a stale replica is tried again */
	uint32_t seq;
	int said_stale;
	int cur;                  /* which of the pool's two leases the session holds */
	struct msg_lease_ok lease;
};

static struct {
	pthread_mutex_t lock;     /* one durability point at a time */
	int configured;
	unsigned n;
	int min;                  /* after configure: a count */
	int timeout_ms;
	char key_file[PATH_MAX];
	struct replica r[REPL_MAX];
	uint8_t key[4096];
	size_t key_len;
	struct net_domain *dom;   /* NULL until the first point */
	struct net_mr pool_mr;
	int pool_registered;

	int rec_lock;             /* spin lock over cur and the buffers' counts */
	unsigned cur;
	struct rbuf b[2];

	char *base;               /* the pool mapping the decorator serves */
	size_t len;
	struct pmem_backend inner;
	uint64_t epoch;           /* the newest any replica committed */
	struct repl_stats st;
} R = { .lock = PTHREAD_MUTEX_INITIALIZER };

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void rec_lock(void)
{
	while (__atomic_exchange_n(&R.rec_lock, 1, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(&R.rec_lock, __ATOMIC_RELAXED))
			__builtin_ia32_pause();
}

static void rec_unlock(void)
{
	__atomic_store_n(&R.rec_lock, 0, __ATOMIC_RELEASE);
}

/* ---- the decorator ----------------------------------------------------- */

static void record(const void *p, size_t n)
{
	const char *c = p;

	if (c < R.base || c >= R.base + R.len || !n)
		return;
	uint64_t off = (uint64_t)(c - R.base);

	if (n > R.len - off)
		n = R.len - off;
	rec_lock();
	struct rbuf *b = &R.b[R.cur];

	if (!b->overflow) {
		struct batch_range *last = b->n ? &b->rng[b->n - 1] : NULL;
		int merge = last && last->off + last->len == off;
		size_t table = (b->n + !merge) * sizeof(struct batch_range);

		if (table > TABLE_MAX || table + b->data_len + n > PROTO_STAGING) {
			b->overflow = 1;
		} else {
			if (merge) {
				last->len += n;
			} else {
				b->rng[b->n].off = off;
				b->rng[b->n].len = n;
				b->n++;
			}
			memcpy(b->mem + TABLE_MAX + b->data_len, p, n);
			b->data_len += n;
		}
	}
	rec_unlock();
}

static void repl_flush(void *ctx, const void *p, size_t n)
{
	(void)ctx;
	R.inner.ops->flush(R.inner.ctx, p, n);
	record(p, n);
}

static void repl_drain(void *ctx)
{
	(void)ctx;
	R.inner.ops->drain(R.inner.ctx); /* the replicas at the durability point */
}

static void *repl_memcpy_flush(void *ctx, void *dst, const void *src, size_t n)
{
	(void)ctx;
	void *r = R.inner.ops->memcpy_flush(R.inner.ctx, dst, src, n);

	record(dst, n);
	return r;
}

static const struct pmem_ops repl_ops = {
	.name = "replicated",
	.flush = repl_flush,
	.drain = repl_drain,
	.memcpy_flush = repl_memcpy_flush,
};

static struct pmem_backend repl_wrapper(struct pmem_backend inner, void *base, size_t len)
{
	if (!base) /* a private view: nothing to replicate */
		return inner;
	R.inner = inner;
	R.base = base;
	R.len = len;
	return (struct pmem_backend){ &repl_ops, NULL };
}

/* ---- configuration ---------------------------------------------------- */

static int parse_nodes(const char *list, struct replica *r, unsigned *n)
{
	const char *s = list;

	*n = 0;
	while (*s) {
		size_t k = strcspn(s, ",");
		char one[160];
		const char *colon;

		if (!k || k >= sizeof(one))
			return err_set(BTD_ERR_INVAL, "replica list \"%s\": empty or overlong entry; "
				       "use host:port,host:port", list);
		memcpy(one, s, k);
		one[k] = '\0';
		colon = strrchr(one, ':');
		if (!colon || colon == one || !colon[1] || strlen(colon + 1) >= sizeof(r->port) ||
		    strspn(colon + 1, "0123456789") != strlen(colon + 1))
			return err_set(BTD_ERR_INVAL, "replica \"%s\" is not host:port (in \"%s\")",
				       one, list);
		if (*n == REPL_MAX)
			return err_set(BTD_ERR_INVAL, "more than %d replicas in \"%s\"", REPL_MAX,
				       list);
		long port = strtol(colon + 1, NULL, 10);

		if (port < 1 || port > 65535)
			return err_set(BTD_ERR_INVAL, "replica \"%s\": the port is not 1 to 65535", one);
		if ((size_t)(colon - one) >= sizeof(r->host))
			return err_set(BTD_ERR_INVAL, "replica \"%s\": the host name is too long", one);
		memset(&r[*n], 0, sizeof(r[*n]));
		memcpy(r[*n].host, one, (size_t)(colon - one));
		snprintf(r[*n].port, sizeof(r[*n].port), "%ld", port);
		for (unsigned j = 0; j < *n; j++)
			if (!strcmp(r[j].host, r[*n].host) && !strcmp(r[j].port, r[*n].port))
				return err_set(BTD_ERR_INVAL, "replica %s is listed twice in \"%s\": "
					       "each memory node holds one replica", one, list);
		(*n)++;
		s += k + (s[k] == ',');
	}
	if (!*n)
		return err_set(BTD_ERR_INVAL, "the replica list is empty");
	return 0;
}

static void fork_child(void)
{
	/* The child owns neither the parent's pool nor its connections. */
	R.configured = 0;
	R.dom = NULL;
	for (unsigned i = 0; i < R.n; i++)
		R.r[i].ep = NULL;
	memset(&R.b[0].mr, 0, sizeof(R.b[0].mr));
	memset(&R.b[1].mr, 0, sizeof(R.b[1].mr));
	R.pool_registered = 0;
	pthread_mutex_init(&R.lock, NULL);
	R.rec_lock = 0;
}

static int map_buffers(void)
{
	for (int i = 0; i < 2; i++) {
		if (R.b[i].mem)
			continue;
		R.b[i].mem = mmap(NULL, BUF_BYTES + TABLE_MAX, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (R.b[i].mem == MAP_FAILED) {
			R.b[i].mem = NULL;
			return err_set(BTD_ERR_NOMEM, "replication: cannot map its %zu MiB buffers",
				       2 * BUF_BYTES >> 20);
		}
		R.b[i].rng = (struct batch_range *)(R.b[i].mem + BUF_BYTES);
	}
	return 0;
}

int repl_validate(const struct repl_config *c)
{
	struct replica r[REPL_MAX];
	unsigned n;
	int st;

	if (!c || !c->nodes || !c->nodes[0])
		return 0;
	if ((st = parse_nodes(c->nodes, r, &n)))
		return st;
	if (c->min > (int)n)
		return err_set(BTD_ERR_INVAL, "%d replicas are required (BTD_MIN_REPLICAS, or "
			       "cfg.replicas) but only %u memory nodes are named", c->min, n);
	if (!c->key_file || !c->key_file[0])
		return err_set(BTD_ERR_INVAL, "replicas are configured but no key file: set "
			       "BTD_KEY_FILE to the file holding the memory nodes' shared key");
	if (strlen(c->key_file) >= sizeof(R.key_file))
		return err_set(BTD_ERR_INVAL, "the key file name is too long: %.40s...", c->key_file);
	return 0;
}

int repl_configure(const struct repl_config *c)
{
	static int atfork;
	unsigned n;
	struct replica r[REPL_MAX];
	int st;

	if (!c || !c->nodes || !c->nodes[0])
		return 0;
	if ((st = repl_validate(c)) || (st = parse_nodes(c->nodes, r, &n)))
		return st;
	st = map_buffers();
	if (st)
		return st;
	pthread_mutex_lock(&R.lock);
	memcpy(R.r, r, sizeof(r));
	R.n = n;
	R.min = c->min < 0 ? (int)n : c->min;
	R.timeout_ms = c->timeout_ms > 0 ? c->timeout_ms : DEFAULT_TIMEOUT_MS;
	strcpy(R.key_file, c->key_file);
	R.key_len = 0; /* read again at the first point: it may be another file */
	R.b[0].n = R.b[1].n = R.b[0].data_len = R.b[1].data_len = 0;
	R.b[0].overflow = R.b[1].overflow = 1; /* the first point sends the image */
	R.epoch = 0;
	memset(&R.st, 0, sizeof(R.st));
	R.st.configured = n;
	R.configured = 1;
	pthread_mutex_unlock(&R.lock);
	if (!atfork && !pthread_atfork(NULL, NULL, fork_child))
		atfork = 1;
	pmem_wrap(repl_wrapper);
	return 0;
}

int repl_active(void)
{
	return R.configured;
}

/* ---- one replica ------------------------------------------------------- */

static void stale(struct replica *r, const char *why)
{
	if (r->ep)
		net_ep_close(r->ep);
	r->ep = NULL;
	r->synced = 0;
	r->retry_at = now_ns() + RETRY_NS;
	R.st.stale_events++;
	if (!r->said_stale)
		log_msg(LOG_WARN, "replica %s:%s is stale (%s); going on with the others, "
			"and trying it again at later durability points", r->host, r->port, why);
	r->said_stale = 1;
}

static int send_msg(struct replica *r, struct msg_hdr *h)
{
	h->seq = ++r->seq;
	return net_send(r->ep, h, h->len, R.timeout_ms);
}

/* The answer to the last request: `want`, or ERROR turned into a status.
 * out: msg_size(want) bytes (LIST_OK: NET_MSG_MAX). */
static int recv_msg(struct replica *r, uint16_t want, void *out)
{
	union {
		struct msg_hdr h;
		char raw[NET_MSG_MAX];
	} in;
	void *buf = &in;
	size_t len;
	int st = net_recv(r->ep, buf, sizeof(in), &len, R.timeout_ms);

	if (st)
		return st;
	if ((st = msg_check(buf, len)))
		return err_prefix(BTD_ERR_IO, "memory node %s:%s sent a malformed message",
				  r->host, r->port);
	const struct msg_hdr *h = buf;

	if (h->type == MSG_ERROR) {
		const struct msg_error *e = buf;
		int status = e->status < 0 && e->status >= BTD_ERR_TXFULL ? e->status
									   : BTD_ERR_IO;

		return err_set(status, "memory node %s:%s refused: %.*s", r->host, r->port,
			       PROTO_TEXT, e->text);
	}
	if (h->type != want)
		return err_set(BTD_ERR_IO, "memory node %s:%s answered message type %u, not %u",
			       r->host, r->port, h->type, want);
	memcpy(out, buf, len);
	return 0;
}

static int load_key(void)
{
	if (R.key_len)
		return 0;
	return proto_key_load(R.key_file, R.key, sizeof(R.key), &R.key_len);
}

static int open_domain(void)
{
	int st;

	if (!R.dom && (st = net_domain_open(NULL, 0, &R.dom)))
		return st;
	if ((st = map_buffers()))
		return st;
	for (int i = 0; i < 2; i++) {
		if (R.b[i].mr.fid)
			continue;
		st = net_mr_reg(R.dom, R.b[i].mem, BUF_BYTES, NET_ACCESS_LOCAL, &R.b[i].mr);
		if (st)
			return st;
	}
	return 0;
}

/* Connect and authenticate: both sides prove they know the key. */
static int handshake(struct net_domain *d, struct replica *r, uint8_t node_uuid[16])
{
	union {
		struct msg_hello hello;
		struct msg_auth_ok ok;
		char raw[NET_MSG_MAX];
	} in;
	struct msg_auth auth;
	uint8_t mac[PROTO_MAC];
	int st = net_connect(d, r->host, r->port, R.timeout_ms, &r->ep);

	if (st)
		return st;
	r->seq = 0;
	if ((st = recv_msg(r, MSG_HELLO, &in)))
		return st;
	if (node_uuid)
		memcpy(node_uuid, in.hello.node_uuid, 16);
	msg_init(&auth.h, MSG_AUTH, sizeof(auth), 0);
	if (proto_random(auth.nonce, sizeof(auth.nonce)) ||
	    proto_mac(R.key, R.key_len, "btd-c", in.hello.nonce, auth.nonce, auth.mac))
		return err_set(BTD_ERR_IO, "cannot compute the authentication code (libcrypto)");
	uint8_t nonce_n[PROTO_NONCE];

	memcpy(nonce_n, in.hello.nonce, sizeof(nonce_n));
	if ((st = send_msg(r, &auth.h)) || (st = recv_msg(r, MSG_AUTH_OK, &in)))
		return st;
	if (proto_mac(R.key, R.key_len, "btd-n", auth.nonce, nonce_n, mac) ||
	    !proto_mac_equal(mac, in.ok.mac))
		return err_set(BTD_ERR_PERM, "memory node %s:%s does not know our key: it is not "
			       "the node configured, or its --key differs from BTD_KEY_FILE",
			       r->host, r->port);
	return 0;
}

static uint64_t image_extent(void)
{
	return (uint64_t)(heap.pool.data - heap.pool.base) +
	       (uint64_t)__atomic_load_n(&heap.pool.heap_top, __ATOMIC_RELAXED) * POOL_PAGE;
}

/* Ask for (or grow to) a lease of `size` image bytes. */
static int lease(struct replica *r, uint64_t size, const uint8_t uuid[16], uint64_t base,
		 const char *path)
{
	struct msg_lease m;
	int st;

	memset(&m, 0, sizeof(m));
	msg_init(&m.h, MSG_LEASE, sizeof(m), 0);
	memcpy(m.uuid, uuid, 16);
	m.base = base;
	m.image_size = size;
	snprintf(m.path, sizeof(m.path), "%s", path);
	if ((st = send_msg(r, &m.h)) || (st = recv_msg(r, MSG_LEASE_OK, &r->lease)))
		return st;
	if (r->lease.nchunks > PROTO_MAX_CHUNKS ||
	    (uint64_t)r->lease.nchunks * PROTO_CHUNK < r->lease.image_size ||
	    r->lease.image_size < size)
		return err_set(BTD_ERR_IO, "memory node %s:%s gave a lease of %llu bytes in %u "
			       "chunks for %llu", r->host, r->port,
			       (unsigned long long)r->lease.image_size, r->lease.nchunks,
			       (unsigned long long)size);
	return 0;
}

/* TWO LEASES PER NODE.  A whole image is written in place, so while it is
 * on its way the lease it goes to holds no consistent image; if that were
 * the only consistent image anywhere (one replica; or the others stale),
 * a crash of the client then would leave nothing to restore.  So each
 * node holds two leases of the pool, its uuid and its twin (the last byte
 * flipped): commits go to the current one, and a whole image to the
 * other, which becomes current at its BULK_END.  The older lease stays
 * consistent all along; restore takes the newer consistent of the two. */
static void twin_uuid(const uint8_t uuid[16], int k, uint8_t out[16])
{
	memcpy(out, uuid, 16);
	out[15] ^= k ? 0x80 : 0;
}

static int lease_k(struct replica *r, int k, uint64_t size)
{
	uint8_t u[16];

	twin_uuid(heap.pool.hdr.uuid, k, u);
	return lease(r, size, u, heap.pool.hdr.base, heap.pool.path);
}

static int ensure_lease(struct replica *r, uint64_t size)
{
	if (r->lease.image_size >= size)
		return 0;
	return lease_k(r, r->cur, size);
}

/* Which of the pool's two leases on r's node has the newer consistent
 * image (0 when neither has one): attached to read, so that a session of
 * ours the node has not yet seen die keeps it. */
static int newest_lease(struct replica *r)
{
	uint64_t best_epoch = 0;
	int best = 0, found = 0;

	for (int k = 0; k < 2; k++) {
		struct replica t;

		memset(&t, 0, sizeof(t));
		memcpy(t.host, r->host, sizeof(t.host));
		memcpy(t.port, r->port, sizeof(t.port));
		if (!handshake(R.dom, &t, NULL) && !lease_k(&t, k, 0) && t.lease.consistent &&
		    (!found || t.lease.epoch > best_epoch)) {
			best = k;
			best_epoch = t.lease.epoch;
			found = 1;
		}
		if (t.ep)
			net_ep_close(t.ep);
	}
	return best;
}

static int connect_one(struct replica *r)
{
	int st;

	r->cur = newest_lease(r);
	st = handshake(R.dom, r, NULL);
	if (!st)
		st = lease_k(r, r->cur, image_extent());
	if (st) {
		if (r->ep)
			net_ep_close(r->ep);
		r->ep = NULL;
		r->retry_at = now_ns() + RETRY_NS;
		return st;
	}
	if (r->lease.epoch > R.epoch)
		R.epoch = r->lease.epoch;
	r->synced = 0; /* every connection starts with the whole image */
	if (r->said_stale)
		log_msg(LOG_WARN, "replica %s:%s is back: resyncing it", r->host, r->port);
	r->said_stale = 0;
	return 0;
}

static int ack(struct replica *r)
{
	union {
		struct msg_ack a;
		char raw[NET_MSG_MAX];
	} in;
	int st = recv_msg(r, MSG_ACK, &in);

	if (!st && in.a.h.seq != r->seq)
		st = err_set(BTD_ERR_IO, "memory node %s:%s acknowledged request %u, not %u",
			     r->host, r->port, in.a.h.seq, r->seq);
	return st;
}

/* Write and commit batch b to r (the ACK is collected by the caller). */
static int post_batch(struct replica *r, struct rbuf *b, const char *start, size_t total,
		      uint64_t sum, uint64_t epoch)
{
	struct msg_commit m;
	uint64_t end = 0;
	int st;

	for (size_t i = 0; i < b->n; i++)
		if (b->rng[i].off + b->rng[i].len > end)
			end = b->rng[i].off + b->rng[i].len;
	if ((st = ensure_lease(r, end)))
		return st;
	st = net_write(r->ep, &b->mr, start, total, r->lease.staging.addr, r->lease.staging.key,
		       R.timeout_ms);
	if (st)
		return st;
	msg_init(&m.h, MSG_COMMIT, sizeof(m), 0);
	m.epoch = epoch;
	m.nranges = b->n;
	m.data_len = b->data_len;
	m.sum = sum;
	return send_msg(r, &m.h);
}

/* Ship batch b to every replica in `set` (a bit per replica): written into
 * staging and committed everywhere, then the ACKs.  Replicas that fail go
 * stale and leave the set.  The epoch advances when any replica took it. */
static unsigned ship(struct rbuf *b, unsigned set)
{
	size_t table = b->n * sizeof(struct batch_range);
	char *start = b->mem + TABLE_MAX - table;
	size_t total = table + b->data_len;
	uint64_t t0 = now_ns(), epoch = R.epoch + 1;
	unsigned done = 0;

	if (!b->n)
		return set; /* nothing flushed since the last point */
	memcpy(start, b->rng, table);
	uint64_t sum = batch_sum(start, total);

	for (unsigned i = 0; i < R.n; i++) {
		if (!(set & 1u << i))
			continue;
		if (post_batch(&R.r[i], b, start, total, sum, epoch)) {
			stale(&R.r[i], err_last());
			set &= ~(1u << i);
		}
	}
	for (unsigned i = 0; i < R.n; i++) {
		if (!(set & 1u << i))
			continue;
		if (ack(&R.r[i])) {
			stale(&R.r[i], err_last());
			set &= ~(1u << i);
			continue;
		}
		R.r[i].lease.epoch = epoch;
		R.st.bytes += total;
		done++;
	}
	if (done) {
		R.epoch = epoch;
		R.st.round_trips++;
		R.st.rtt_ns += now_ns() - t0;
	}
	return set;
}

static struct rbuf *swap_buffers(void)
{
	rec_lock();
	struct rbuf *full = &R.b[R.cur];

	R.cur ^= 1;
	struct rbuf *fresh = &R.b[R.cur];

	fresh->n = fresh->data_len = 0;
	fresh->overflow = 0;
	rec_unlock();
	return full;
}

static int simple(struct replica *r, enum msg_type type, uint64_t epoch, uint64_t size)
{
	struct msg_bulk m;
	int st;

	memset(&m, 0, sizeof(m));
	msg_init(&m.h, type, sizeof(m), 0);
	m.epoch = epoch;
	m.image_size = size;
	if (!(st = send_msg(r, &m.h)))
		st = ack(r);
	return st;
}

/* The whole image to r, into the pool's other lease on r's node; then the
 * redo recorded meanwhile to it and to every replica in `set` (they need
 * it too); then that lease is r's current one and r joins the set. */
static unsigned bulk(struct replica *r, unsigned idx, unsigned set)
{
	uint64_t extent = image_extent();
	struct replica t;
	int st, target = r->cur ^ 1;

	if (!R.pool_registered) {
		st = net_mr_reg(R.dom, R.base, R.len, NET_ACCESS_LOCAL, &R.pool_mr);
		if (st) {
			stale(r, err_last());
			return set;
		}
		R.pool_registered = 1;
	}
	memset(&t, 0, sizeof(t));
	memcpy(t.host, r->host, sizeof(t.host));
	memcpy(t.port, r->port, sizeof(t.port));
	if ((st = handshake(R.dom, &t, NULL)) || (st = lease_k(&t, target, extent)) ||
	    (st = simple(&t, MSG_BULK_BEGIN, R.epoch, 0)))
		goto failed;
	swap_buffers(); /* what is flushed from here on goes out after the copy */
	for (uint64_t off = 0; off < extent && !st; ) {
		uint64_t i = off / PROTO_CHUNK, in = off % PROTO_CHUNK;
		uint64_t n = PROTO_CHUNK - in < extent - off ? PROTO_CHUNK - in : extent - off;

		st = net_write(t.ep, &R.pool_mr, R.base + off, n, t.lease.chunk[i].addr + in,
			       t.lease.chunk[i].key, R.timeout_ms);
		off += n;
	}
	if (st)
		goto failed;
	R.st.bytes += extent;
	R.st.bulks++;
	struct rbuf *meanwhile = swap_buffers();

	if (meanwhile->overflow) {
		/* More was flushed during the copy than a batch holds: every
		 * replica needs the image again; the next point sends it. */
		net_ep_close(t.ep);
		for (unsigned i = 0; i < R.n; i++)
			R.r[i].synced = 0;
		R.b[R.cur].overflow = 1;
		return set;
	}
	/* From here r works on the other lease; its old one stays as it was,
	 * consistent, until this one is. */
	net_ep_close(r->ep);
	r->ep = t.ep;
	r->seq = t.seq;
	r->lease = t.lease;
	r->cur = target;
	set = ship(meanwhile, set | 1u << idx);
	if (!(set & 1u << idx))
		return set;
	if ((st = simple(r, MSG_BULK_END, R.epoch, extent))) {
		stale(r, err_last());
		return set & ~(1u << idx);
	}
	r->synced = 1;
	return set;
failed:
	if (t.ep)
		net_ep_close(t.ep);
	stale(r, err_last());
	return set & ~(1u << idx);
}

static unsigned live_count(unsigned set)
{
	return (unsigned)__builtin_popcount(set);
}

static int point_locked(const char *what, int whole)
{
	int st;
	unsigned set = 0;
	uint64_t now = now_ns();

	if ((st = load_key()) || (st = open_domain()))
		return err_prefix(st, "%s: cannot reach the replicas", what);
	for (unsigned i = 0; i < R.n; i++) {
		struct replica *r = &R.r[i];

		if (!r->ep && now >= r->retry_at && connect_one(r)) {
			if (!r->said_stale)
				log_msg(LOG_WARN, "replica %s:%s: %s", r->host, r->port, err_last());
			r->said_stale = 1;
		}
		if (r->ep && r->synced)
			set |= 1u << i;
	}
	struct rbuf *b = swap_buffers();
	int fresh = 0;

	for (unsigned i = 0; i < R.n; i++)
		fresh |= R.r[i].ep && !R.r[i].synced;
	/* A replica (re)joining gets the image, and so does every other: with
	 * one writer, all of them then hold the same bytes. */
	if (b->overflow || whole || fresh) {
		for (unsigned i = 0; i < R.n; i++)
			R.r[i].synced = 0;
		set = 0;
	} else {
		set = ship(b, set);
	}
	for (unsigned i = 0; i < R.n; i++)
		if (R.r[i].ep && !R.r[i].synced)
			set = bulk(&R.r[i], i, set);
	R.st.points++;
	R.st.live = live_count(set);
	if ((int)live_count(set) < R.min) {
		char down[256];
		size_t k = 0;

		down[0] = '\0';
		for (unsigned i = 0; i < R.n; i++)
			if (!(set & 1u << i))
				k += (size_t)snprintf(down + k, k < sizeof(down) ? sizeof(down) - k : 0,
						      "%s%s:%s", k ? ", " : "", R.r[i].host,
						      R.r[i].port);
		return err_set(BTD_ERR_IO, "%s: durable here but on only %u of the %d replicas "
			       "required (BTD_MIN_REPLICAS); unreachable: %s", what,
			       live_count(set), R.min, down);
	}
	return 0;
}

int repl_point(const char *what)
{
	int st;

	if (!__atomic_load_n(&R.configured, __ATOMIC_ACQUIRE))
		return 0;
	pthread_mutex_lock(&R.lock);
	st = R.configured ? point_locked(what, 0) : 0;
	pthread_mutex_unlock(&R.lock);
	return st;
}

int repl_final(void)
{
	int st = 0;

	if (!__atomic_load_n(&R.configured, __ATOMIC_ACQUIRE))
		return 0;
	pthread_mutex_lock(&R.lock);
	if (R.configured) {
		st = point_locked("closing the pool", 1);
		if (st)
			log_msg(LOG_WARN, "%s", err_last());
		for (unsigned i = 0; i < R.n; i++) {
			if (R.r[i].ep)
				net_ep_close(R.r[i].ep);
			R.r[i].ep = NULL;
			R.r[i].synced = 0;
		}
		if (R.pool_registered)
			net_mr_dereg(&R.pool_mr);
		R.pool_registered = 0;
		R.configured = 0;
	}
	pthread_mutex_unlock(&R.lock);
	pmem_wrap(NULL);
	return st;
}

void repl_reset(void)
{
	pthread_mutex_lock(&R.lock);
	for (unsigned i = 0; i < R.n; i++) {
		if (R.r[i].ep)
			net_ep_close(R.r[i].ep);
		R.r[i].ep = NULL;
	}
	if (R.pool_registered)
		net_mr_dereg(&R.pool_mr);
	R.pool_registered = 0;
	R.configured = 0;
	pthread_mutex_unlock(&R.lock);
	pmem_wrap(NULL);
}

void repl_get_stats(struct repl_stats *s)
{
	pthread_mutex_lock(&R.lock);
	*s = R.st;
	pthread_mutex_unlock(&R.lock);
}

/* ---- restore and describe ------------------------------------------- */

/* An absolute path for p, which need not exist (restore creates it). */
static int abs_path(const char *p, char *out, size_t n)
{
	char cwd[PATH_MAX];

	if (p[0] == '/')
		return snprintf(out, n, "%s", p) < (int)n ? 0 : -1;
	if (!getcwd(cwd, sizeof(cwd)))
		return -1;
	return snprintf(out, n, "%s/%s", cwd, p) < (int)n ? 0 : -1;
}

/* Standalone use (btd restore, btd info): a configuration of our own. */
static int standalone(const struct repl_config *c)
{
	int st;

	if (!c || !c->nodes || !c->nodes[0])
		return err_set(BTD_ERR_INVAL, "no memory node given: use --from host:port or "
			       "BTD_REPLICAS");
	if ((st = parse_nodes(c->nodes, R.r, &R.n)))
		return st;
	if (!c->key_file || !c->key_file[0])
		return err_set(BTD_ERR_INVAL, "no key file: use --key FILE or BTD_KEY_FILE");
	snprintf(R.key_file, sizeof(R.key_file), "%s", c->key_file);
	R.timeout_ms = c->timeout_ms > 0 ? c->timeout_ms : DEFAULT_TIMEOUT_MS;
	R.key_len = 0;
	if ((st = load_key()))
		return st;
	if (!R.dom && (st = net_domain_open(NULL, 0, &R.dom)))
		return st;
	return 0;
}

static int list(struct replica *r, struct msg_list_ok *out)
{
	struct msg_list m;
	int st;

	msg_init(&m.h, MSG_LIST, sizeof(m), 0);
	if (!(st = send_msg(r, &m.h)))
		st = recv_msg(r, MSG_LIST_OK, out);
	return st;
}

/* Whether lease e is the one asked for: by uuid (a hex prefix of the
 * pool's uuid or of its twin), else by path; uuid_bytes: the pool's uuid
 * exactly (either of its two leases). */
static int lease_matches(const struct msg_lease_info *e, const char *path, const char *uuid,
			 const uint8_t *uuid_bytes)
{
	char hex[33], twin[33];
	uint8_t t[16];

	if (uuid_bytes)
		return proto_same_pool(e->uuid, uuid_bytes);
	if (uuid) {
		twin_uuid(e->uuid, 1, t);
		proto_uuid_hex(e->uuid, hex);
		proto_uuid_hex(t, twin);
		return !strncmp(hex, uuid, strlen(uuid)) || !strncmp(twin, uuid, strlen(uuid));
	}
	return path && !strncmp(e->path, path, sizeof(e->path));
}

static const struct msg_lease_info *find_lease(const struct msg_list_ok *l, const uint8_t *uuid)
{
	for (uint32_t i = 0; i < l->count && i < PROTO_MAX_LIST; i++)
		if (lease_matches(&l->lease[i], NULL, NULL, uuid))
			return &l->lease[i];
	return NULL;
}

static void bar(int on, uint64_t done, uint64_t total)
{
	if (!on || !total)
		return;
	int w = (int)(40 * done / total);

	fprintf(stderr, "\rbtd: restoring [%.*s%*s] %3d%%", w,
		"########################################", 40 - w, "",
		(int)(100 * done / total));
	if (done == total)
		fputc('\n', stderr);
}

int repl_restore(const char *path, const struct repl_config *c, int progress,
		 double *seconds, uint64_t *bytes)
{
	union {
		struct msg_list_ok l;
		char raw[NET_MSG_MAX];
	} in;
	char full[PATH_MAX], tmp[PATH_MAX + 16];
	struct msg_lease_info best;
	int best_i = -1, st;
	uint64_t t0 = now_ns();
	struct stat sb;

	if (abs_path(path, full, sizeof(full)))
		return err_set(BTD_ERR_INVAL, "restore: the path %s is too long", path);
	if (!stat(full, &sb))
		return err_set(BTD_ERR_BUSY, "restore: %s exists; restore only rebuilds a missing "
			       "pool (move it away first)", full);
	pthread_mutex_lock(&R.lock);
	if ((st = standalone(c)))
		goto out;
	if (c->uuid && (strlen(c->uuid) < 8 || strlen(c->uuid) > 32 ||
			strspn(c->uuid, "0123456789abcdef") != strlen(c->uuid))) {
		st = err_set(BTD_ERR_INVAL, "restore: --uuid %s: give 8 to 32 lowercase hex digits "
			     "of the pool's uuid (btd info, btd memd --list)", c->uuid);
		goto out;
	}
	memset(&best, 0, sizeof(best));
	int other = 0; /* a consistent image of another pool of this path */
	unsigned reached = 0;
	struct msg_lease_info seen;

	for (unsigned i = 0; i < R.n; i++) {
		struct replica *r = &R.r[i];

		if ((st = handshake(R.dom, r, NULL)) || (st = list(r, &in.l))) {
			log_msg(LOG_WARN, "restore: memory node %s:%s: %s", r->host, r->port,
				err_last());
		} else {
			reached++;
			for (uint32_t k = 0; k < in.l.count && k < PROTO_MAX_LIST; k++) {
				const struct msg_lease_info *e = &in.l.lease[k];

				if (!e->consistent || !lease_matches(e, full, c->uuid, NULL))
					continue;
				if (best_i >= 0 && !proto_same_pool(e->uuid, best.uuid)) {
					other = 1;
					seen = *e;
				}
				if (best_i < 0 || (proto_same_pool(e->uuid, best.uuid) &&
						   e->epoch > best.epoch)) {
					best = *e;
					best_i = (int)i;
				}
			}
		}
		if (r->ep)
			net_ep_close(r->ep);
		r->ep = NULL;
	}
	st = 0;
	if (!reached) {
		/* Not "no image": a missing pool must not be created anew. */
		st = err_prefix(BTD_ERR_IO, "restore: no memory node of %s could be reached",
				c->nodes);
		goto out;
	}
	if (other) {
		char a[33], b[33];

		proto_uuid_hex(best.uuid, a);
		proto_uuid_hex(seen.uuid, b);
		st = err_set(BTD_ERR_INVAL, "restore: the nodes hold images of two different pools "
			     "that were at %s (uuid %s, epoch %llu; uuid %s, epoch %llu): choose one "
			     "with --uuid, and drop the other with btd memd --drop", full, a,
			     (unsigned long long)best.epoch, b, (unsigned long long)seen.epoch);
		goto out;
	}
	if (best_i < 0) {
		st = err_set(BTD_ERR_NOENT, "restore: no memory node of %s holds a consistent "
			     "image of %s%s%s", c->nodes, full, c->uuid ? " or of uuid " : "",
			     c->uuid ? c->uuid : "");
		goto out;
	}
	struct replica *r = &R.r[best_i];

	if ((st = handshake(R.dom, r, NULL)) ||
	    (st = lease(r, 0, best.uuid, best.base, full)))
		goto out;
	uint64_t size = r->lease.image_size;
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.restoring", full);
	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		st = err_set(err_status(errno), "restore: cannot create %s: %s", tmp,
			     err_text(errno));
		goto out;
	}
	if ((st = map_buffers()) || (st = open_domain()))
		goto out_fd;
	for (uint64_t off = 0; off < size && !st; ) {
		uint64_t i = off / PROTO_CHUNK;
		uint64_t n = size - off < PROTO_CHUNK ? size - off : PROTO_CHUNK;

		st = net_read(r->ep, &R.b[0].mr, R.b[0].mem, n, r->lease.chunk[i].addr,
			      r->lease.chunk[i].key, R.timeout_ms);
		if (!st && pwrite(fd, R.b[0].mem, n, (off_t)off) != (ssize_t)n)
			st = err_set(err_status(errno), "restore: writing %s: %s", tmp,
				     err_text(errno));
		off += n;
		bar(progress, off, size);
	}
	if (!st) {
		struct pool_header h;

		if (pool_read_header(fd, &h, NULL) < 0)
			st = err_set(BTD_ERR_FORMAT, "restore: the image from %s:%s has no valid "
				     "pool header", r->host, r->port);
		else if (h.size < size || ftruncate(fd, (off_t)h.size) || fsync(fd))
			st = err_set(BTD_ERR_IO, "restore: sizing %s to %llu bytes failed", tmp,
				     (unsigned long long)h.size);
	}
	if (!st && rename(tmp, full))
		st = err_set(err_status(errno), "restore: renaming %s: %s", tmp, err_text(errno));
	if (!st) {
		if (seconds)
			*seconds = (double)(now_ns() - t0) / 1e9;
		if (bytes)
			*bytes = size;
		log_msg(LOG_INFO, "restored %s (%llu bytes, epoch %llu) from %s:%s", full,
			(unsigned long long)size, (unsigned long long)best.epoch, r->host, r->port);
	}
out_fd:
	close(fd);
	if (st)
		unlink(tmp);
out:
	for (unsigned i = 0; i < R.n; i++) {
		if (R.r[i].ep)
			net_ep_close(R.r[i].ep);
		R.r[i].ep = NULL;
	}
	R.n = 0;
	pthread_mutex_unlock(&R.lock);
	return st;
}

void repl_describe(const struct repl_config *c, const uint8_t uuid[16], int fd)
{
	union {
		struct msg_list_ok l;
		char raw[NET_MSG_MAX];
	} in;

	pthread_mutex_lock(&R.lock);
	if (standalone(c)) {
		dprintf(fd, "  replicas:        %s\n", err_last());
		goto out;
	}
	for (unsigned i = 0; i < R.n; i++) {
		struct replica *r = &R.r[i];
		const struct msg_lease_info *e;

		if (handshake(R.dom, r, NULL) || list(r, &in.l))
			dprintf(fd, "  replica %s:%s: unreachable (%s)\n", r->host, r->port,
				err_last());
		else if (!find_lease(&in.l, uuid))
			dprintf(fd, "  replica %s:%s: holds no image of this pool\n", r->host,
				r->port);
		else
			for (uint32_t k = 0; k < in.l.count && k < PROTO_MAX_LIST; k++)
				if (lease_matches((e = &in.l.lease[k]), NULL, NULL, uuid))
					dprintf(fd, "  replica %s:%s: lease %c: epoch %llu, %s, %llu "
						"KiB\n", r->host, r->port,
						e->uuid[15] == uuid[15] ? 'a' : 'b',
						(unsigned long long)e->epoch,
						e->consistent ? "consistent"
							      : "inconsistent (a transfer was cut)",
						(unsigned long long)(e->image_size >> 10));
		if (r->ep)
			net_ep_close(r->ep);
		r->ep = NULL;
	}
out:
	R.n = 0;
	pthread_mutex_unlock(&R.lock);
}
