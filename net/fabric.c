/* fabric.c: the transport of net.h over libfabric.
 *
 * LOADING.  libfabric is loaded with dlopen, never linked: this code ends
 * up in the preloaded library, and a linked libfabric would bring
 * libibverbs, librdmacm, libnl and the rest into every `ls`.  Only six
 * entry points are real symbols (fab_load resolves them once); everything
 * else -- fi_domain, fi_endpoint, fi_mr_reg, fi_writemsg, fi_cq_read... --
 * is a static inline of <rdma/fi_*.h> calling through the ops tables of
 * the objects those six hand out, so it needs no symbol.  fi_allocinfo is
 * such an inline over the real fi_dupinfo: use fab.dupinfo(NULL).
 *
 * ONE PATH FOR EVERY PROVIDER.  The hints ask for connected FI_EP_MSG
 * endpoints with messages and RMA, and accept every mr_mode bit we honour:
 * FI_MR_LOCAL (descriptors passed for every local buffer: our message
 * buffers are registered), FI_MR_VIRT_ADDR (a region's addr is its base
 * address, else 0), FI_MR_PROV_KEY (the provider's key; otherwise each
 * registration asks for a random 64-bit key and retries on a collision),
 * FI_MR_ALLOCATED, FI_MR_ENDPOINT (bind and enable; see net_mr_reg for its
 * one-endpoint limit).  A provider that needs FI_MR_RAW is refused by
 * name.  The domain is the provider's first; endpoints of every address
 * are opened on it (the tcp provider names a domain after an interface,
 * but its endpoints and regions do not care which).
 *
 * ORDER.  net.h promises that a message sent after net_write returned is
 * seen after the written bytes are in place.  net_write returns only when
 * every piece has completed locally, and the message is posted after
 * that.  A local completion alone does not place the bytes (the default is
 * transmit-complete), so the hints ask for FI_ORDER_SAW (sends after
 * writes, at the target): tcp (one byte stream per endpoint, handled in
 * order) and verbs (RC queue pairs) offer it.  A provider without it is
 * still taken, and then every write asks for FI_DELIVERY_COMPLETE: its
 * completion means the bytes are visible at the target.
 *
 * PROGRESS AND WAITING.  The tcp provider moves data only inside calls
 * (fi_cq_read, fi_eq_read): a node places its peers' writes only while
 * net_poll reads its completion queue.  Queues are opened with
 * FI_WAIT_FD; a wait is fi_trywait then poll(2) on their descriptors, so
 * an idle node sleeps in the kernel.  A provider without FI_WAIT_FD gets
 * 1 ms naps instead.
 *
 * LOST PEERS.  Nothing here aborts: a reset connection, a killed peer, an
 * FI_SHUTDOWN or an error completion make the endpoint DOWN and the call
 * returns BTD_ERR_IO naming the peer.  SIGPIPE: the tcp provider sends
 * with MSG_NOSIGNAL everywhere (1.17: src/common.c's bsock, the connection
 * manager), verbs writes no socket; the process's signal dispositions are
 * left alone.  unit-net kills a node under a writing client to prove it.
 *
 * CONTEXTS.  Every posted operation carries a struct net_op whose first
 * member is a struct fi_context2 (FI_CONTEXT and FI_CONTEXT2 providers
 * keep their state there) and which names its endpoint, so one completion
 * queue can serve every endpoint of a listener. */
#include "net.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_eq.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#include "btd.h"
#include "../common/compiler.h"
#include "../common/error.h"
#include "../common/log.h"

#define FAB_VERSION FI_VERSION(FI_MAJOR_VERSION, FI_MINOR_VERSION)

#define RX_SLOTS 8              /* receive buffers posted per endpoint */
#define TX_MAX 64               /* RMA pieces in flight per endpoint, at most */
#define RMA_PIECE (1u << 20)    /* the largest piece, even where the provider takes more */
#define LISTEN_CQ 4096          /* the shared completion queue of a listener */
#define MR_ENDPOINT_MAX 64      /* regions waiting for the endpoint of an FI_MR_ENDPOINT domain */

/* ---- loading libfabric ---- */

static struct {
	__typeof__(fi_getinfo) *getinfo;
	__typeof__(fi_freeinfo) *freeinfo;
	__typeof__(fi_dupinfo) *dupinfo;
	__typeof__(fi_fabric) *fabric;
	__typeof__(fi_strerror) *strerror;
	__typeof__(fi_version) *version;
} fab;

static pthread_once_t fab_once = PTHREAD_ONCE_INIT;
static char fab_why[256];

static void fab_load_once(void)
{
	void *h = dlopen("libfabric.so.1", RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		const char *e = dlerror();

		strncpy(fab_why, e ? e : "dlopen failed", sizeof(fab_why) - 1);
		return;
	}
	*(void **)&fab.getinfo = dlsym(h, "fi_getinfo");
	*(void **)&fab.freeinfo = dlsym(h, "fi_freeinfo");
	*(void **)&fab.dupinfo = dlsym(h, "fi_dupinfo");
	*(void **)&fab.fabric = dlsym(h, "fi_fabric");
	*(void **)&fab.strerror = dlsym(h, "fi_strerror");
	*(void **)&fab.version = dlsym(h, "fi_version");
	if (!fab.getinfo || !fab.freeinfo || !fab.dupinfo || !fab.fabric || !fab.strerror ||
	    !fab.version) {
		strcpy(fab_why, "a symbol of fi_getinfo, fi_freeinfo, fi_dupinfo, fi_fabric, "
				"fi_strerror, fi_version is missing");
		fab.getinfo = NULL;
	}
}

static int fab_load(void)
{
	pthread_once(&fab_once, fab_load_once);
	if (!fab.getinfo)
		return err_set(BTD_ERR_IO, "cannot load libfabric.so.1 (%s): install libfabric1",
			       fab_why);
	return 0;
}

/* fi_strerror of a negative (or positive) libfabric return. */
static const char *fe(long ret)
{
	return fab.strerror((int)(ret < 0 ? -ret : ret));
}

static uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static uint64_t deadline(int timeout_ms)
{
	return now_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);
}

static int remaining(uint64_t end)
{
	uint64_t t = now_ms();

	return t >= end ? 0 : (int)(end - t);
}

/* ---- objects ---- */

struct net_domain {
	struct fi_info *info;     /* the provider's, as chosen */
	struct fi_info *hints;    /* kept for the fi_getinfo of each address */
	struct fid_fabric *fabric;
	struct fid_domain *domain;
	struct net_caps caps;
	uint64_t write_flags;     /* FI_DELIVERY_COMPLETE without FI_ORDER_SAW */
	size_t tx_depth;          /* RMA pieces in flight per endpoint */
	int listen;
	/* FI_MR_ENDPOINT: the one endpoint regions bind to, and the regions
	 * registered before it existed. */
	struct net_ep *mr_ep;
	struct fid_mr *mr_unbound[MR_ENDPOINT_MAX];
	int n_unbound;
};

enum op_kind { OP_RECV = 1, OP_SEND, OP_RMA };

struct net_op {
	struct fi_context2 fctx; /* first: the provider's scratch */
	struct net_ep *ep;
	uint8_t kind;
	uint8_t busy;
	uint16_t slot;
	size_t len;              /* OP_RECV: bytes received */
};

enum ep_state { EP_ACCEPTING, EP_CONNECTED, EP_DOWN };

/* The descriptors and fids a wait polls. */
struct waiter {
	struct fid *fid[2];
	struct pollfd pfd[2];
	int n;           /* 0: the provider has no FI_WAIT_FD, nap */
};

struct net_ep {
	struct net_domain *d;
	struct net_listener *l;  /* the node side: the listener that accepted it */
	struct net_ep *next;     /* in l->eps */
	struct fid_ep *ep;
	struct fid_cq *cq;       /* the client's own, or the listener's */
	struct fid_eq *eq;       /* the client's own, or the listener's */
	struct fid_mr *msg_mr;   /* rx and tx buffers, for FI_MR_LOCAL */
	void *msg_desc;
	struct waiter w;         /* the client's */
	void *ctx;
	int state;
	int closing;             /* completions of a closing endpoint are dropped */
	int close_reported;
	int err;                 /* the first failure: a -FI_ errno, or 0 for a shutdown */
	const char *err_call;    /* and the call that saw it */
	int tx_busy;             /* OP_SEND and OP_RMA ops in flight */
	int tx_err;              /* the first error completion of the running call */
	unsigned ready_head, ready_n; /* received slots, in order */
	uint8_t ready[RX_SLOTS];
	char peer[80];
	struct net_op rx_op[RX_SLOTS];
	struct net_op tx_op[TX_MAX + 1]; /* [TX_MAX]: the send */
	uint8_t tx_buf[NET_MSG_MAX];
	uint8_t rx_buf[RX_SLOTS][NET_MSG_MAX];
};

struct net_listener {
	struct net_domain *d;
	struct fid_pep *pep;
	struct fid_eq *eq;
	struct fid_cq *cq;
	struct waiter w;         /* its queues: net_poll */
	struct waiter wcq;       /* its completion queue: its endpoints' calls */
	struct net_ep *eps;
	struct net_ep *held;     /* the message net_poll handed out last */
	int held_slot;
	struct net_ep *cursor;   /* where the next scan starts, for fairness */
	int port;
	char name[80];
};

/* ---- the domain ---- */

static const uint64_t mr_mode_ok = FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED |
				   FI_MR_PROV_KEY | FI_MR_ENDPOINT;

static struct fi_info *make_hints(const char *provider, uint64_t caps, uint64_t mr_mode,
				  uint64_t order)
{
	struct fi_info *h = fab.dupinfo(NULL);

	if (!h)
		return NULL;
	h->caps = caps;
	h->mode = FI_CONTEXT | FI_CONTEXT2;
	h->ep_attr->type = FI_EP_MSG;
	h->domain_attr->mr_mode = mr_mode;
	h->domain_attr->threading = FI_THREAD_DOMAIN;
	h->tx_attr->msg_order = order;
	h->rx_attr->msg_order = order;
	h->fabric_attr->prov_name = strdup(provider);
	if (!h->fabric_attr->prov_name) {
		fab.freeinfo(h);
		return NULL;
	}
	return h;
}

/* Does the provider offer `cap` as well?  (Providers need not list caps
 * they were not asked for.) */
static int probe_cap(struct net_domain *d, uint64_t cap)
{
	struct fi_info *info;

	if (d->info->caps & cap)
		return 1;
	uint64_t keep = d->hints->caps;

	d->hints->caps |= cap;
	int ret = fab.getinfo(FAB_VERSION, NULL, NULL, 0, d->hints, &info);

	d->hints->caps = keep;
	if (ret)
		return 0;
	fab.freeinfo(info);
	return 1;
}

int net_domain_open(const char *provider, int listen, struct net_domain **out)
{
	int ret = fab_load();

	if (ret)
		return ret;
	if (!provider || !*provider)
		provider = getenv("BTD_FABRIC_PROVIDER");
	if (!provider || !*provider)
		provider = "tcp";
	if (strlen(provider) >= sizeof(((struct net_caps *)0)->provider))
		return err_set(BTD_ERR_INVAL, "fabric provider name '%s' is too long", provider);

	struct net_domain *d = calloc(1, sizeof(*d));

	if (!d)
		return err_set(BTD_ERR_NOMEM, "out of memory for a fabric domain");
	d->listen = listen;
	const uint64_t caps = FI_MSG | FI_RMA;

	d->hints = make_hints(provider, caps, mr_mode_ok, FI_ORDER_SAW);
	if (!d->hints) {
		ret = err_set(BTD_ERR_NOMEM, "out of memory for fabric hints");
		goto fail;
	}
	ret = fab.getinfo(FAB_VERSION, NULL, NULL, 0, d->hints, &d->info);
	if (ret == -FI_ENODATA) {
		/* No FI_ORDER_SAW: order writes before messages by delivery. */
		d->hints->tx_attr->msg_order = 0;
		d->hints->rx_attr->msg_order = 0;
		ret = fab.getinfo(FAB_VERSION, NULL, NULL, 0, d->hints, &d->info);
		d->write_flags = FI_DELIVERY_COMPLETE;
	}
	if (ret == -FI_ENODATA) {
		struct fi_info *raw;

		d->hints->domain_attr->mr_mode |= FI_MR_RAW;
		ret = fab.getinfo(FAB_VERSION, NULL, NULL, 0, d->hints, &raw);
		if (!ret) {
			fab.freeinfo(raw);
			ret = err_set(BTD_ERR_INVAL, "fabric provider %s needs FI_MR_RAW memory "
				      "registration, which btd does not support: choose another with "
				      "BTD_FABRIC_PROVIDER", provider);
		} else {
			ret = err_set(BTD_ERR_IO, "fabric provider %s: fi_getinfo: %s (no connected "
				      "endpoints with messages and RMA: is the provider installed, "
				      "and its device up?)", provider, fe(-FI_ENODATA));
		}
		goto fail;
	}
	if (ret) {
		ret = err_set(BTD_ERR_IO, "fabric provider %s: fi_getinfo: %s", provider, fe(ret));
		goto fail;
	}
	struct fi_info *i = d->info;

	if (i->domain_attr->mr_mode & FI_MR_RAW) {
		ret = err_set(BTD_ERR_INVAL, "fabric provider %s needs FI_MR_RAW memory "
			      "registration, which btd does not support", provider);
		goto fail;
	}
	ret = fab.fabric(i->fabric_attr, &d->fabric, NULL);
	if (ret) {
		ret = err_set(BTD_ERR_IO, "fabric provider %s: fi_fabric: %s", provider, fe(ret));
		goto fail;
	}
	ret = fi_domain(d->fabric, i, &d->domain, NULL);
	if (ret) {
		ret = err_set(BTD_ERR_IO, "fabric provider %s: fi_domain %s: %s", provider,
			      i->domain_attr->name, fe(ret));
		goto fail;
	}
	strcpy(d->caps.provider, provider);
	d->caps.mr_mode = i->domain_attr->mr_mode;
	d->caps.rma_pmem = probe_cap(d, FI_RMA_PMEM);
	d->caps.atomics = probe_cap(d, FI_ATOMIC);
	d->caps.max_rma = i->ep_attr->max_msg_size;
	if (!d->caps.max_rma || d->caps.max_rma > RMA_PIECE)
		d->caps.max_rma = RMA_PIECE;
	d->tx_depth = i->tx_attr->size;
	if (!d->tx_depth || d->tx_depth > TX_MAX)
		d->tx_depth = TX_MAX;
	*out = d;
	return 0;
fail:
	net_domain_close(d);
	return ret;
}

void net_domain_close(struct net_domain *d)
{
	if (!d)
		return;
	for (int k = 0; k < d->n_unbound; k++)
		fi_close(&d->mr_unbound[k]->fid);
	if (d->domain)
		fi_close(&d->domain->fid);
	if (d->fabric)
		fi_close(&d->fabric->fid);
	if (d->info)
		fab.freeinfo(d->info);
	if (d->hints)
		fab.freeinfo(d->hints);
	free(d);
}

const struct net_caps *net_domain_caps(const struct net_domain *d)
{
	return &d->caps;
}

/* ---- memory regions ---- */

/* FI_MR_ENDPOINT: a region serves the one endpoint it is bound to. */
static int mr_bind(struct net_domain *d, struct fid_mr *mr, struct net_ep *ep)
{
	int ret = fi_mr_bind(mr, &ep->ep->fid, 0);

	if (!ret)
		ret = fi_mr_enable(mr);
	if (ret)
		return err_set(BTD_ERR_IO, "%s: fi_mr_bind/fi_mr_enable: %s", d->caps.provider,
			       fe(ret));
	return 0;
}

static int mr_register(struct net_domain *d, void *buf, size_t len, uint64_t access,
		       struct fid_mr **mr)
{
	uint64_t mode = d->caps.mr_mode;
	size_t ksize = d->info->domain_attr->mr_key_size;
	int ret = -FI_ENOKEY;

	/* A requested key is random, so that a peer cannot guess the key of a
	 * region it was not given; a collision with a live one is retried. */
	for (int tries = 0; tries < 16; tries++) {
		uint64_t key = 0;

		if (!(mode & FI_MR_PROV_KEY)) {
			if (getrandom(&key, sizeof(key), 0) != sizeof(key))
				return err_set(BTD_ERR_IO, "getrandom for a region key failed");
			if (ksize && ksize < sizeof(key))
				key &= ((uint64_t)1 << (8 * ksize)) - 1;
		}
		ret = fi_mr_reg(d->domain, buf, len, access, 0, key, 0, mr, NULL);
		if (ret != -FI_ENOKEY && ret != -FI_EKEYREJECTED)
			break;
	}
	if (ret)
		return err_set(ret == -FI_ENOMEM ? BTD_ERR_NOMEM : BTD_ERR_IO,
			       "%s: fi_mr_reg of %zu bytes: %s", d->caps.provider, len, fe(ret));
	return 0;
}

int net_mr_reg(struct net_domain *d, void *buf, size_t len, unsigned access,
	       struct net_mr *out)
{
	uint64_t acc = 0;
	struct fid_mr *mr;

	if (!buf || !len || !(access & (NET_ACCESS_LOCAL | NET_ACCESS_REMOTE)))
		return err_set(BTD_ERR_INVAL, "net_mr_reg: no buffer, length or access");
	if (access & NET_ACCESS_LOCAL)
		acc |= FI_WRITE | FI_READ | FI_SEND | FI_RECV;
	if (access & NET_ACCESS_REMOTE)
		acc |= FI_REMOTE_WRITE | FI_REMOTE_READ;
	int ret = mr_register(d, buf, len, acc, &mr);

	if (ret)
		return ret;
	if (d->caps.mr_mode & FI_MR_ENDPOINT) {
		if (d->mr_ep) {
			ret = mr_bind(d, mr, d->mr_ep);
		} else if (d->n_unbound < MR_ENDPOINT_MAX) {
			d->mr_unbound[d->n_unbound++] = mr;
		} else {
			ret = err_set(BTD_ERR_NOMEM, "%s: more than %d regions before the first "
				      "endpoint", d->caps.provider, MR_ENDPOINT_MAX);
		}
		if (ret) {
			fi_close(&mr->fid);
			return ret;
		}
	}
	out->buf = buf;
	out->len = len;
	out->addr = (d->caps.mr_mode & FI_MR_VIRT_ADDR) ? (uint64_t)(uintptr_t)buf : 0;
	out->key = fi_mr_key(mr);
	out->desc = fi_mr_desc(mr);
	out->fid = mr;
	return 0;
}

void net_mr_dereg(struct net_mr *mr)
{
	if (!mr || !mr->fid)
		return;
	/* An FI_MR_ENDPOINT region still waiting for its endpoint. */
	struct fid_mr *f = mr->fid;

	fi_close(&f->fid);
	mr->fid = NULL;
}

/* ---- waiting ---- */

static void waiter_init(struct waiter *w, struct fid *a, struct fid *b)
{
	struct fid *f[2] = { a, b };

	w->n = 0;
	for (int k = 0; k < 2 && f[k]; k++) {
		int fd = -1;

		if (fi_control(f[k], FI_GETWAIT, &fd) || fd < 0) {
			w->n = 0;
			return;
		}
		w->fid[w->n] = f[k];
		w->pfd[w->n].fd = fd;
		w->pfd[w->n].events = POLLIN;
		w->n++;
	}
}

/* Sleep until a queue of w may have something, at most ms. */
static void waiter_wait(struct net_domain *d, struct waiter *w, int ms)
{
	if (ms <= 0)
		return;
	if (!w->n) {
		struct timespec t = { 0, 1000000 };

		nanosleep(&t, NULL);
		return;
	}
	/* fi_trywait says whether sleeping on the descriptors is safe (nothing
	 * queued that they would not signal); otherwise read again. */
	int ret = fi_trywait(d->fabric, w->fid, w->n);

	if (ret == -FI_EAGAIN)
		return;
	/* A provider that cannot say: a short poll, never a spin. */
	poll(w->pfd, (nfds_t)w->n, ret == FI_SUCCESS ? ms : 1);
}

/* ---- completions ---- */

static void ep_down(struct net_ep *ep, int err, const char *call)
{
	if (ep->state != EP_DOWN || (!ep->err && err)) {
		ep->err = err;
		ep->err_call = call;
	}
	ep->state = EP_DOWN;
}

static void op_done(struct net_op *op, size_t len, int err)
{
	if (!op)
		return;
	struct net_ep *ep = op->ep;

	if (ep->closing)
		return;
	switch (op->kind) {
	case OP_RECV:
		op->busy = 0;
		if (err) {
			ep_down(ep, err, "receive");
			return;
		}
		op->len = len;
		ep->ready[(ep->ready_head + ep->ready_n) % RX_SLOTS] = (uint8_t)op->slot;
		ep->ready_n++;
		break;
	case OP_SEND:
	case OP_RMA:
		if (op->busy) {
			op->busy = 0;
			ep->tx_busy--;
		}
		if (err) {
			if (!ep->tx_err)
				ep->tx_err = err;
			/* A failed transfer leaves a connection nobody can trust. */
			ep_down(ep, err, op->kind == OP_SEND ? "send completion" :
				"RMA completion");
		}
		break;
	}
}

/* Read every completion of cq; a negative return is the queue's own failure. */
static int cq_drain(struct fid_cq *cq)
{
	struct fi_cq_msg_entry e[16];

	for (;;) {
		ssize_t n = fi_cq_read(cq, e, BTD_ARRAY_SIZE(e));

		if (n == -FI_EAGAIN)
			return 0;
		if (n == -FI_EAVAIL) {
			struct fi_cq_err_entry err;

			memset(&err, 0, sizeof(err));
			n = fi_cq_readerr(cq, &err, 0);
			if (n == -FI_EAGAIN)
				continue;
			if (n < 0)
				return (int)n;
			op_done(err.op_context, err.len, -(err.err ? err.err : FI_EIO));
			continue;
		}
		if (n < 0)
			return (int)n;
		for (ssize_t k = 0; k < n; k++)
			op_done(e[k].op_context, e[k].len, 0);
	}
}

static int post_recv(struct net_ep *ep, int slot)
{
	struct net_op *op = &ep->rx_op[slot];

	op->ep = ep;
	op->kind = OP_RECV;
	op->slot = (uint16_t)slot;
	op->busy = 1;
	for (;;) {
		ssize_t ret = fi_recv(ep->ep, ep->rx_buf[slot], NET_MSG_MAX, ep->msg_desc, 0, op);

		if (ret == -FI_EAGAIN) {
			cq_drain(ep->cq);
			continue;
		}
		if (ret) {
			op->busy = 0;
			ep_down(ep, (int)ret, "fi_recv");
			return err_set(BTD_ERR_IO, "%s: fi_recv: %s", ep->peer, fe(ret));
		}
		return 0;
	}
}

/* The client's connection events: the peer's shutdown, errors. */
static void eq_client(struct net_ep *ep)
{
	struct fi_eq_cm_entry cm;
	uint32_t event;

	for (;;) {
		ssize_t n = fi_eq_read(ep->eq, &event, &cm, sizeof(cm), 0);

		if (n == -FI_EAVAIL) {
			struct fi_eq_err_entry err;

			memset(&err, 0, sizeof(err));
			if (fi_eq_readerr(ep->eq, &err, 0) < 0)
				return;
			ep_down(ep, -(err.err ? err.err : FI_EIO), "connection");
			continue;
		}
		if (n < 0)
			return;
		if (event == FI_CONNECTED && ep->state == EP_ACCEPTING)
			ep->state = EP_CONNECTED;
		else if (event == FI_SHUTDOWN)
			ep_down(ep, 0, "connection");
	}
}

static void ep_progress(struct net_ep *ep)
{
	int ret = cq_drain(ep->cq);

	if (ret)
		ep_down(ep, ret, "fi_cq_read");
	if (!ep->l)
		eq_client(ep);
}

static void ep_wait(struct net_ep *ep, int ms)
{
	waiter_wait(ep->d, ep->l ? &ep->l->wcq : &ep->w, ms);
}

static int ep_lost(struct net_ep *ep, const char *call)
{
	if (ep->err)
		return err_set(BTD_ERR_IO, "%s: %s: connection lost (%s: %s)", ep->peer, call,
			       ep->err_call ? ep->err_call : "?", fe(ep->err));
	return err_set(BTD_ERR_IO, "%s: %s: connection lost (the peer shut it down)", ep->peer,
		       call);
}

static int ep_timeout(struct net_ep *ep, const char *call, int timeout_ms)
{
	return err_set(BTD_ERR_IO, "%s: %s timed out after %d ms", ep->peer, call, timeout_ms);
}

/* One turn of a wait loop whose condition was not met after progress: the
 * peer lost, the deadline passed, else wait for the next event (up to
 * max_ms).  0 to go round again. */
static int ep_step(struct net_ep *ep, uint64_t end, int timeout_ms, int max_ms, const char *call)
{
	if (ep->state == EP_DOWN)
		return ep_lost(ep, call);
	int ms = remaining(end);

	if (!ms)
		return ep_timeout(ep, call, timeout_ms);
	ep_wait(ep, ms < max_ms ? ms : max_ms);
	return 0;
}

/* Until op's completion has come. */
static int op_wait(struct net_ep *ep, struct net_op *op, uint64_t end, int timeout_ms,
		   const char *call)
{
	int st;

	for (;;) {
		ep_progress(ep);
		if (!op->busy)
			return ep->state == EP_DOWN ? ep_lost(ep, call) : 0;
		if ((st = ep_step(ep, end, timeout_ms, INT_MAX, call)))
			return st;
	}
}

/* ---- endpoints ---- */

static void ep_peer_name(struct net_ep *ep, const struct sockaddr *sa, size_t len)
{
	char host[64], serv[16];

	if (sa && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) &&
	    !getnameinfo(sa, (socklen_t)len, host, sizeof(host), serv, sizeof(serv),
			 NI_NUMERICHOST | NI_NUMERICSERV)) {
		if (sa->sa_family == AF_INET6)
			log_format(ep->peer, sizeof(ep->peer), "[%s]:%s", host, serv);
		else
			log_format(ep->peer, sizeof(ep->peer), "%s:%s", host, serv);
	} else {
		log_format(ep->peer, sizeof(ep->peer), "peer %p", (void *)ep);
	}
}

/* fi_endpoint, its queues, its message buffers, enabled with receives
 * posted: what both sides do before fi_connect / fi_accept. */
static int ep_setup(struct net_domain *d, struct fi_info *info, struct net_ep *ep)
{
	int ret;

	if ((d->caps.mr_mode & FI_MR_ENDPOINT) && d->mr_ep)
		return err_set(BTD_ERR_INVAL, "%s: provider %s binds regions to one endpoint "
			       "(FI_MR_ENDPOINT): btd uses one endpoint per domain there",
			       ep->peer, d->caps.provider);
	ret = fi_endpoint(d->domain, info, &ep->ep, ep);
	if (ret)
		return err_set(BTD_ERR_IO, "%s: fi_endpoint: %s", ep->peer, fe(ret));
	ret = fi_ep_bind(ep->ep, &ep->eq->fid, 0);
	if (!ret)
		ret = fi_ep_bind(ep->ep, &ep->cq->fid, FI_TRANSMIT | FI_RECV);
	if (ret)
		return err_set(BTD_ERR_IO, "%s: fi_ep_bind: %s", ep->peer, fe(ret));
	if (d->caps.mr_mode & (FI_MR_LOCAL | FI_MR_ENDPOINT)) {
		ret = mr_register(d, ep->tx_buf, sizeof(ep->tx_buf) + sizeof(ep->rx_buf),
				  FI_SEND | FI_RECV, &ep->msg_mr);
		if (ret)
			return ret;
		ep->msg_desc = fi_mr_desc(ep->msg_mr);
	}
	ret = fi_enable(ep->ep);
	if (ret)
		return err_set(BTD_ERR_IO, "%s: fi_enable: %s", ep->peer, fe(ret));
	if (d->caps.mr_mode & FI_MR_ENDPOINT) {
		d->mr_ep = ep;
		ret = mr_bind(d, ep->msg_mr, ep);
		for (int k = 0; !ret && k < d->n_unbound; k++)
			ret = mr_bind(d, d->mr_unbound[k], ep);
		d->n_unbound = 0;
		if (ret)
			return ret;
	}
	for (int k = 0; k < RX_SLOTS; k++) {
		ret = post_recv(ep, k);
		if (ret)
			return ret;
	}
	return 0;
}

static struct net_ep *ep_new(struct net_domain *d)
{
	struct net_ep *ep = calloc(1, sizeof(*ep));

	if (!ep)
		return NULL;
	ep->d = d;
	ep->state = EP_ACCEPTING;
	for (int k = 0; k <= TX_MAX; k++)
		ep->tx_op[k].ep = ep;
	return ep;
}

static void ep_free(struct net_ep *ep)
{
	if (ep->ep)
		fi_close(&ep->ep->fid);
	if (ep->d->mr_ep == ep)
		ep->d->mr_ep = NULL;
	/* Closing the endpoint flushed its posted operations into the queue
	 * as errors: read them now, while their contexts still exist. */
	if (ep->l)
		cq_drain(ep->cq);
	if (ep->msg_mr)
		fi_close(&ep->msg_mr->fid);
	if (!ep->l) {
		if (ep->cq)
			fi_close(&ep->cq->fid);
		if (ep->eq)
			fi_close(&ep->eq->fid);
	}
	free(ep);
}

static int open_queues(struct net_domain *d, size_t cq_size, struct fid_cq **cq,
		       struct fid_eq **eq, const char *who)
{
	struct fi_cq_attr ca;
	struct fi_eq_attr ea;
	int ret;

	memset(&ca, 0, sizeof(ca));
	ca.size = cq_size;
	ca.format = FI_CQ_FORMAT_MSG;
	ca.wait_obj = FI_WAIT_FD;
	ret = fi_cq_open(d->domain, &ca, cq, NULL);
	if (ret == -FI_ENOSYS || ret == -FI_EINVAL) {
		ca.wait_obj = FI_WAIT_NONE;
		ret = fi_cq_open(d->domain, &ca, cq, NULL);
	}
	if (ret)
		return err_set(BTD_ERR_IO, "%s: fi_cq_open: %s", who, fe(ret));
	memset(&ea, 0, sizeof(ea));
	ea.size = 64;
	ea.wait_obj = FI_WAIT_FD;
	ret = fi_eq_open(d->fabric, &ea, eq, NULL);
	if (ret == -FI_ENOSYS || ret == -FI_EINVAL) {
		ea.wait_obj = FI_WAIT_NONE;
		ret = fi_eq_open(d->fabric, &ea, eq, NULL);
	}
	if (ret) {
		fi_close(&(*cq)->fid);
		*cq = NULL;
		return err_set(BTD_ERR_IO, "%s: fi_eq_open: %s", who, fe(ret));
	}
	return 0;
}

int net_connect(struct net_domain *d, const char *host, const char *port, int timeout_ms,
		struct net_ep **out)
{
	struct fi_info *info = NULL;
	struct net_ep *ep = ep_new(d);
	uint64_t end = deadline(timeout_ms);
	int ret;

	if (!ep)
		return err_set(BTD_ERR_NOMEM, "out of memory for an endpoint");
	log_format(ep->peer, sizeof(ep->peer), "%s:%s", host, port);
	ret = fab.getinfo(FAB_VERSION, host, port, 0, d->hints, &info);
	if (ret) {
		ret = err_set(BTD_ERR_IO, "%s: fi_getinfo (%s): %s", ep->peer, d->caps.provider,
			      fe(ret));
		goto fail;
	}
	ret = open_queues(d, RX_SLOTS + TX_MAX + 8, &ep->cq, &ep->eq, ep->peer);
	if (ret)
		goto fail;
	waiter_init(&ep->w, &ep->cq->fid, &ep->eq->fid);
	ret = ep_setup(d, info, ep);
	if (ret)
		goto fail;
	ret = fi_connect(ep->ep, info->dest_addr, NULL, 0);
	if (ret) {
		ret = err_set(BTD_ERR_IO, "%s: fi_connect: %s", ep->peer, fe(ret));
		goto fail;
	}
	for (;;) {
		ep_progress(ep);
		if (ep->state == EP_CONNECTED)
			break;
		if (ep->state == EP_DOWN) {
			ret = err_set(BTD_ERR_IO, "%s: fi_connect: %s", ep->peer,
				      ep->err ? fe(ep->err) : "refused");
			goto fail;
		}
		int ms = remaining(end);

		if (!ms) {
			ret = ep_timeout(ep, "fi_connect", timeout_ms);
			goto fail;
		}
		ep_wait(ep, ms);
	}
	fab.freeinfo(info);
	*out = ep;
	return 0;
fail:
	if (info)
		fab.freeinfo(info);
	ep_free(ep);
	return ret;
}

int net_send(struct net_ep *ep, const void *msg, size_t len, int timeout_ms)
{
	struct net_op *op = &ep->tx_op[TX_MAX];
	uint64_t end = deadline(timeout_ms);

	if (len > NET_MSG_MAX || !len)
		return err_set(BTD_ERR_INVAL, "%s: a message of %zu bytes (at most %d)", ep->peer,
			       len, NET_MSG_MAX);
	/* A send that timed out earlier may still hold the buffer. */
	int st = op_wait(ep, op, end, timeout_ms, "send");

	if (st)
		return st;
	memcpy(ep->tx_buf, msg, len);
	op->kind = OP_SEND;
	for (;;) {
		ssize_t ret = fi_send(ep->ep, ep->tx_buf, len, ep->msg_desc, 0, op);

		if (!ret)
			break;
		if (ret != -FI_EAGAIN) {
			ep_down(ep, (int)ret, "fi_send");
			return err_set(BTD_ERR_IO, "%s: fi_send: %s", ep->peer, fe(ret));
		}
		ep_progress(ep);
		if ((st = ep_step(ep, end, timeout_ms, 1, "send")))
			return st;
	}
	op->busy = 1;
	ep->tx_busy++;
	return op_wait(ep, op, end, timeout_ms, "send");
}

/* Pop the oldest received slot into buf. */
static int take_message(struct net_ep *ep, void *buf, size_t *len)
{
	int slot = ep->ready[ep->ready_head];

	ep->ready_head = (ep->ready_head + 1) % RX_SLOTS;
	ep->ready_n--;
	*len = ep->rx_op[slot].len;
	memcpy(buf, ep->rx_buf[slot], *len);
	return post_recv(ep, slot);
}

int net_recv(struct net_ep *ep, void *buf, size_t cap, size_t *len, int timeout_ms)
{
	uint64_t end = deadline(timeout_ms);

	if (cap < NET_MSG_MAX)
		return err_set(BTD_ERR_INVAL, "%s: net_recv into %zu bytes (needs %d)", ep->peer,
			       cap, NET_MSG_MAX);
	for (;;) {
		ep_progress(ep);
		/* Messages that arrived before a shutdown are still delivered. */
		if (ep->ready_n)
			return take_message(ep, buf, len);
		int st = ep_step(ep, end, timeout_ms, INT_MAX, "receive");

		if (st)
			return st;
	}
}

static struct net_op *tx_op_get(struct net_ep *ep)
{
	for (size_t k = 0; k < ep->d->tx_depth; k++)
		if (!ep->tx_op[k].busy)
			return &ep->tx_op[k];
	return NULL;
}

struct rma_piece {
	void *local;
	size_t len;
	uint64_t raddr;
	uint64_t rkey;
};

static ssize_t rma_post(struct net_ep *ep, int write, const struct rma_piece *p, void *desc,
			struct net_op *op)
{
	struct iovec iov = { p->local, p->len };
	struct fi_rma_iov rma = { p->raddr, p->len, p->rkey };
	struct fi_msg_rma m;

	memset(&m, 0, sizeof(m));
	m.msg_iov = &iov;
	m.desc = &desc;
	m.iov_count = 1;
	m.rma_iov = &rma;
	m.rma_iov_count = 1;
	m.context = op;
	if (write)
		return fi_writemsg(ep->ep, &m, FI_COMPLETION | ep->d->write_flags);
	return fi_readmsg(ep->ep, &m, FI_COMPLETION);
}

/* Post the pieces of every range, at most tx_depth in flight, then wait
 * for all of them.  `call` names the operation in messages. */
static int rma_run(struct net_ep *ep, const struct net_mr *local, const struct net_iov *iov,
		   size_t n, int write, int timeout_ms, const char *call)
{
	struct net_domain *d = ep->d;
	uint64_t end = deadline(timeout_ms);
	size_t max = d->caps.max_rma;
	int need_desc = !!(d->caps.mr_mode & FI_MR_LOCAL);

	for (size_t k = 0; k < n; k++) {
		const uint8_t *s = iov[k].src;

		if (!iov[k].len)
			continue;
		if (need_desc && !local)
			return err_set(BTD_ERR_INVAL, "%s: %s: provider %s needs a registered "
				       "local buffer (FI_MR_LOCAL)", ep->peer, call, d->caps.provider);
		if (local && (s < (const uint8_t *)local->buf ||
			      iov[k].len > local->len ||
			      (size_t)(s - (const uint8_t *)local->buf) > local->len - iov[k].len))
			return err_set(BTD_ERR_INVAL, "%s: %s of %zu bytes at %p: outside the "
				       "registered region", ep->peer, call, iov[k].len, (void *)s);
	}
	if (ep->state == EP_DOWN)
		return ep_lost(ep, call);
	ep->tx_err = 0;
	for (size_t k = 0; k < n; k++) {
		for (size_t off = 0; off < iov[k].len && !ep->tx_err;) {
			struct rma_piece p = {
				.local = (uint8_t *)(uintptr_t)iov[k].src + off,
				.len = iov[k].len - off < max ? iov[k].len - off : max,
				.raddr = iov[k].raddr + off,
				.rkey = iov[k].rkey,
			};
			struct net_op *op = tx_op_get(ep);
			ssize_t ret = -FI_EAGAIN;

			if (op) {
				op->kind = OP_RMA;
				ret = rma_post(ep, write, &p, local ? local->desc : NULL, op);
			}
			if (!ret) {
				op->busy = 1;
				ep->tx_busy++;
				off += p.len;
				continue;
			}
			if (ret != -FI_EAGAIN) {
				ep_down(ep, (int)ret, write ? "fi_writemsg" : "fi_readmsg");
				return err_set(BTD_ERR_IO, "%s: %s: %s: %s", ep->peer, call,
					       write ? "fi_writemsg" : "fi_readmsg", fe(ret));
			}
			/* The queue is full: make room. */
			ep_progress(ep);
			if (ep->state == EP_DOWN)
				return ep_lost(ep, call);
			int ms = remaining(end);

			if (!ms)
				return ep_timeout(ep, call, timeout_ms);
			if (!tx_op_get(ep))
				ep_wait(ep, ms);
		}
	}
	for (;;) {
		ep_progress(ep);
		if (!ep->tx_busy)
			break;
		int st = ep_step(ep, end, timeout_ms, INT_MAX, call);

		if (st)
			return st;
	}
	if (ep->tx_err)
		return err_set(BTD_ERR_IO, "%s: %s: %s", ep->peer, call, fe(ep->tx_err));
	if (ep->state == EP_DOWN)
		return ep_lost(ep, call);
	return 0;
}

int net_write(struct net_ep *ep, const struct net_mr *local, const void *src, size_t len,
	      uint64_t raddr, uint64_t rkey, int timeout_ms)
{
	struct net_iov v = { src, len, raddr, rkey };

	return rma_run(ep, local, &v, 1, 1, timeout_ms, "RMA write");
}

int net_writev(struct net_ep *ep, const struct net_mr *local, const struct net_iov *iov,
	       size_t n, int timeout_ms)
{
	return rma_run(ep, local, iov, n, 1, timeout_ms, "RMA write");
}

int net_read(struct net_ep *ep, const struct net_mr *local, void *dst, size_t len,
	     uint64_t raddr, uint64_t rkey, int timeout_ms)
{
	struct net_iov v = { dst, len, raddr, rkey };

	return rma_run(ep, local, &v, 1, 0, timeout_ms, "RMA read");
}

const char *net_ep_peer(const struct net_ep *ep)
{
	return ep->peer;
}

void net_ep_set_ctx(struct net_ep *ep, void *ctx)
{
	ep->ctx = ctx;
}

void *net_ep_ctx(const struct net_ep *ep)
{
	return ep->ctx;
}

static void listener_unlink(struct net_listener *l, struct net_ep *ep)
{
	for (struct net_ep **p = &l->eps; *p; p = &(*p)->next) {
		if (*p == ep) {
			*p = ep->next;
			break;
		}
	}
	if (l->held == ep)
		l->held = NULL;
	if (l->cursor == ep)
		l->cursor = ep->next;
}

void net_ep_close(struct net_ep *ep)
{
	if (!ep)
		return;
	if (ep->l)
		listener_unlink(ep->l, ep);
	else if (ep->ep && ep->state == EP_CONNECTED)
		fi_shutdown(ep->ep, 0);
	ep->closing = 1;
	ep_free(ep);
}

/* ---- the memory node's side ---- */

int net_listen(struct net_domain *d, const char *addr, const char *port,
	       struct net_listener **out)
{
	struct fi_info *info = NULL;
	struct net_listener *l = calloc(1, sizeof(*l));
	int ret;

	if (!l)
		return err_set(BTD_ERR_NOMEM, "out of memory for a listener");
	if (!addr || !*addr)
		addr = "127.0.0.1";
	if (!port || !*port)
		port = "0";
	l->d = d;
	log_format(l->name, sizeof(l->name), "%s:%s", addr, port);
	ret = fab.getinfo(FAB_VERSION, addr, port, FI_SOURCE, d->hints, &info);
	if (ret) {
		ret = err_set(BTD_ERR_IO, "listen on %s: fi_getinfo (%s): %s", l->name,
			      d->caps.provider, fe(ret));
		goto fail;
	}
	ret = open_queues(d, LISTEN_CQ, &l->cq, &l->eq, l->name);
	if (ret)
		goto fail;
	waiter_init(&l->w, &l->cq->fid, &l->eq->fid);
	waiter_init(&l->wcq, &l->cq->fid, NULL);
	ret = fi_passive_ep(d->fabric, info, &l->pep, l);
	if (ret) {
		ret = err_set(BTD_ERR_IO, "listen on %s: fi_passive_ep: %s", l->name, fe(ret));
		goto fail;
	}
	ret = fi_pep_bind(l->pep, &l->eq->fid, 0);
	if (!ret)
		ret = fi_listen(l->pep);
	if (ret) {
		ret = err_set(ret == -FI_EADDRINUSE ? BTD_ERR_BUSY : BTD_ERR_IO,
			      "listen on %s: fi_listen: %s", l->name, fe(ret));
		goto fail;
	}
	struct sockaddr_storage ss;
	size_t sslen = sizeof(ss);

	ret = fi_getname(&l->pep->fid, &ss, &sslen);
	if (ret) {
		ret = err_set(BTD_ERR_IO, "listen on %s: fi_getname: %s", l->name, fe(ret));
		goto fail;
	}
	if (ss.ss_family == AF_INET)
		l->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	else if (ss.ss_family == AF_INET6)
		l->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	fab.freeinfo(info);
	*out = l;
	return 0;
fail:
	if (info)
		fab.freeinfo(info);
	net_listener_close(l);
	return ret;
}

int net_listener_port(const struct net_listener *l)
{
	return l->port;
}

void net_listener_close(struct net_listener *l)
{
	if (!l)
		return;
	while (l->eps)
		net_ep_close(l->eps);
	if (l->pep)
		fi_close(&l->pep->fid);
	if (l->cq)
		fi_close(&l->cq->fid);
	if (l->eq)
		fi_close(&l->eq->fid);
	free(l);
}

static int listener_has(struct net_listener *l, struct net_ep *ep)
{
	for (struct net_ep *e = l->eps; e; e = e->next)
		if (e == ep)
			return 1;
	return 0;
}

/* FI_CONNREQ: an endpoint on our domain, receives posted, accepted.  It
 * is reported when FI_CONNECTED arrives. */
static void accept_one(struct net_listener *l, struct fi_info *info)
{
	struct net_ep *ep = ep_new(l->d);
	int ret;

	if (!ep) {
		fi_reject(l->pep, info->handle, NULL, 0);
		return;
	}
	ep_peer_name(ep, info->dest_addr, info->dest_addrlen);
	ep->l = l;
	ep->cq = l->cq;
	ep->eq = l->eq;
	ret = ep_setup(l->d, info, ep);
	if (ret) {
		/* Once fi_endpoint took the request, closing the endpoint refuses it. */
		if (!ep->ep)
			fi_reject(l->pep, info->handle, NULL, 0);
	} else {
		ret = fi_accept(ep->ep, NULL, 0);
		if (ret)
			err_set(BTD_ERR_IO, "%s: fi_accept: %s", ep->peer, fe(ret));
	}
	if (ret) {
		ep->closing = 1;
		ep_free(ep);
		return;
	}
	ep->next = l->eps;
	l->eps = ep;
}

/* One connection event: 1 when it makes *ev, 0 when it made none, -1
 * when the queue is empty (or failed: *fatal). */
static int eq_node(struct net_listener *l, struct net_event *ev, int *fatal)
{
	struct fi_eq_cm_entry cm;
	uint32_t event;
	ssize_t n = fi_eq_read(l->eq, &event, &cm, sizeof(cm), 0);

	if (n == -FI_EAGAIN)
		return -1;
	if (n == -FI_EAVAIL) {
		struct fi_eq_err_entry err;

		memset(&err, 0, sizeof(err));
		if (fi_eq_readerr(l->eq, &err, 0) < 0)
			return 0;
		if (err.fid == &l->pep->fid) {
			*fatal = err_set(BTD_ERR_IO, "listen on %s: %s", l->name,
					 fe(err.err ? err.err : FI_EIO));
			return -1;
		}
		struct net_ep *ep = err.fid ? err.fid->context : NULL;

		if (!ep || !listener_has(l, ep))
			return 0;
		if (ep->state == EP_ACCEPTING) { /* never reported: drop it quietly */
			net_ep_close(ep);
			return 0;
		}
		ep_down(ep, -(err.err ? err.err : FI_EIO), "connection");
		return 0;
	}
	if (n < 0) {
		*fatal = err_set(BTD_ERR_IO, "listen on %s: fi_eq_read: %s", l->name, fe(n));
		return -1;
	}
	if (event == FI_CONNREQ) {
		accept_one(l, cm.info);
		fab.freeinfo(cm.info);
		return 0;
	}
	struct net_ep *ep = cm.fid ? cm.fid->context : NULL;

	if (!ep || (void *)ep == (void *)l || !listener_has(l, ep))
		return 0;
	if (event == FI_CONNECTED && ep->state == EP_ACCEPTING) {
		ep->state = EP_CONNECTED;
		ev->kind = NET_EV_CONNECT;
		ev->ep = ep;
		return 1;
	}
	if (event == FI_SHUTDOWN) {
		if (ep->state == EP_ACCEPTING) {
			net_ep_close(ep);
			return 0;
		}
		ep_down(ep, 0, "connection");
	}
	return 0;
}

/* A message or a close of an endpoint, oldest first per endpoint. */
static int scan(struct net_listener *l, struct net_event *ev)
{
	struct net_ep *start = l->cursor ? l->cursor : l->eps;

	for (int pass = 0; pass < 2; pass++) {
		for (struct net_ep *e = pass ? l->eps : start; e; e = e->next) {
			if (pass && e == start)
				break;
			if (e->state == EP_ACCEPTING)
				continue;
			if (e->ready_n) {
				int slot = e->ready[e->ready_head];

				e->ready_head = (e->ready_head + 1) % RX_SLOTS;
				e->ready_n--;
				l->held = e;
				l->held_slot = slot;
				l->cursor = e->next;
				ev->kind = NET_EV_MSG;
				ev->ep = e;
				ev->data = e->rx_buf[slot];
				ev->len = e->rx_op[slot].len;
				return 1;
			}
			if (e->state == EP_DOWN && !e->close_reported) {
				e->close_reported = 1;
				l->cursor = e->next;
				ev->kind = NET_EV_CLOSE;
				ev->ep = e;
				return 1;
			}
		}
	}
	return 0;
}

int net_poll(struct net_listener *l, int timeout_ms, struct net_event *ev)
{
	uint64_t end = deadline(timeout_ms);
	int fatal = 0;

	memset(ev, 0, sizeof(*ev));
	if (l->held) {
		struct net_ep *e = l->held;

		l->held = NULL;
		if (e->state != EP_DOWN)
			post_recv(e, l->held_slot); /* a failure makes it DOWN: reported below */
	}
	for (;;) {
		int ret = cq_drain(l->cq);

		if (ret)
			return err_set(BTD_ERR_IO, "listen on %s: fi_cq_read: %s", l->name, fe(ret));
		if (scan(l, ev))
			return 0;
		int got;

		while ((got = eq_node(l, ev, &fatal)) == 0)
			;
		if (got > 0)
			return 0;
		if (fatal)
			return fatal;
		if (scan(l, ev))
			return 0;
		int ms = remaining(end);

		if (!ms) {
			ev->kind = NET_EV_NONE;
			return 0;
		}
		waiter_wait(l->d, &l->w, ms);
	}
}
