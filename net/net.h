/* net.h: the transport -- libfabric, connected FI_EP_MSG endpoints.
 *
 * One code path for every provider: `verbs` (rdma-core, on InfiniBand and
 * RoCE NICs) and `tcp` (Ethernet, and every test here).  The provider is
 * BTD_FABRIC_PROVIDER (default "tcp") unless the caller names one.  Every
 * mr_mode bit the provider asks for is honoured (FI_MR_LOCAL descriptors,
 * FI_MR_VIRT_ADDR addresses, FI_MR_PROV_KEY keys, FI_MR_ALLOCATED,
 * FI_MR_ENDPOINT binding, FI_MR_RAW refused with a clear error); where the
 * provider takes requested keys, each registration gets a random 64-bit
 * key, so a peer cannot guess the key of a region it was not given.
 * Capabilities are probed, not assumed (net_caps).
 *
 * An endpoint carries two things: messages (the control protocol of
 * proto.h, at most NET_MSG_MAX bytes each, in order) and one-sided RMA
 * writes and reads into the peer's registered regions.  ORDER: a message
 * sent after net_write_wait returned is seen by the peer only after the
 * written bytes are in place at the peer.
 *
 * Threads: a domain and its endpoints may be used by one thread at a time
 * (callers lock).  Nothing here allocates through the persistent heap:
 * callers run inside btd (invariant 6).
 *
 * Errors: 0 or a negative btd_status (BTD_ERR_IO for a fabric error or a
 * lost peer, BTD_ERR_INVAL, BTD_ERR_NOMEM, BTD_ERR_PERM), with the
 * message in err_last() (common/error.h): one line naming the peer, the
 * call and fi_strerror. */
#ifndef BTD_NET_NET_H
#define BTD_NET_NET_H

#include <stddef.h>
#include <stdint.h>

#define NET_MSG_MAX 4096 /* bytes of one control message, header included */

struct net_domain;   /* a fabric, domain and the provider's fi_info */
struct net_listener; /* a passive endpoint and its event queue (memd) */
struct net_ep;       /* a connected endpoint */

/* Capabilities probed at net_domain_open. */
struct net_caps {
	char provider[32];
	int rma_pmem;       /* FI_RMA_PMEM offered */
	int atomics;        /* FI_ATOMIC offered */
	uint64_t mr_mode;   /* the provider's mr_mode bits */
	size_t max_rma;     /* largest single RMA transfer (net_write splits) */
};

/* provider: NULL for BTD_FABRIC_PROVIDER, else "tcp".  listen: a domain
 * for net_listen (FI_SOURCE) rather than net_connect. */
int net_domain_open(const char *provider, int listen, struct net_domain **out);
void net_domain_close(struct net_domain *d);
const struct net_caps *net_domain_caps(const struct net_domain *d);

/* A registered region of this process.  `addr` is what a peer puts in an
 * RMA to reach `buf` + off: addr + off (the base address when the
 * provider uses FI_MR_VIRT_ADDR, else 0); `key` its key. */
struct net_mr {
	void *buf;
	size_t len;
	uint64_t addr;
	uint64_t key;
	void *desc;   /* fi_mr_desc, for FI_MR_LOCAL providers */
	void *fid;    /* struct fid_mr * */
};

enum {
	NET_ACCESS_LOCAL = 1,  /* source of this side's writes, target of its reads */
	NET_ACCESS_REMOTE = 2, /* target of peers' writes and source of their reads */
};

int net_mr_reg(struct net_domain *d, void *buf, size_t len, unsigned access,
	       struct net_mr *out);
void net_mr_dereg(struct net_mr *mr);

/* ---- the client side ---- */

/* Connect to host:port within timeout_ms. */
int net_connect(struct net_domain *d, const char *host, const char *port, int timeout_ms,
		struct net_ep **out);

/* Send one message (len <= NET_MSG_MAX); returns once the provider took it. */
int net_send(struct net_ep *ep, const void *msg, size_t len, int timeout_ms);

/* Receive the next message into buf (cap >= NET_MSG_MAX): its length in
 * *len.  BTD_ERR_IO on timeout (the message says so) or a lost peer. */
int net_recv(struct net_ep *ep, void *buf, size_t cap, size_t *len, int timeout_ms);

/* One-sided: copy [src, src + len) (inside the registered `local`) to the
 * peer's raddr under rkey, split as the provider needs; then wait for all
 * of it.  The peer must be polling (memd always is). */
int net_write(struct net_ep *ep, const struct net_mr *local, const void *src, size_t len,
	      uint64_t raddr, uint64_t rkey, int timeout_ms);
/* Several writes posted at once, then one wait: for a batch of ranges. */
struct net_iov {
	const void *src;
	size_t len;
	uint64_t raddr;
	uint64_t rkey;
};
int net_writev(struct net_ep *ep, const struct net_mr *local, const struct net_iov *iov,
	       size_t n, int timeout_ms);
int net_read(struct net_ep *ep, const struct net_mr *local, void *dst, size_t len,
	     uint64_t raddr, uint64_t rkey, int timeout_ms);

/* "host:port" of the peer, for messages. */
const char *net_ep_peer(const struct net_ep *ep);
void net_ep_close(struct net_ep *ep);

/* ---- the memory node's side ---- */

/* Bind addr:port ("127.0.0.1" unless told otherwise; port "0" picks one:
 * net_listener_port says which). */
int net_listen(struct net_domain *d, const char *addr, const char *port,
	       struct net_listener **out);
int net_listener_port(const struct net_listener *l);
void net_listener_close(struct net_listener *l);

enum net_event_kind {
	NET_EV_NONE,    /* the timeout passed */
	NET_EV_CONNECT, /* a new endpoint, connected */
	NET_EV_MSG,     /* a message from ep: data/len valid until the next net_poll */
	NET_EV_CLOSE,   /* ep's peer went away: close it with net_ep_close */
};

struct net_event {
	enum net_event_kind kind;
	struct net_ep *ep;
	const void *data;
	size_t len;
};

/* Wait up to timeout_ms for the next event of the listener or of any
 * endpoint it accepted, driving the progress of every endpoint (the tcp
 * provider places peers' RMA writes only while this runs).  0 with the
 * event, or a negative btd_status for a fatal listener error. */
int net_poll(struct net_listener *l, int timeout_ms, struct net_event *ev);

/* The node's per-endpoint state. */
void net_ep_set_ctx(struct net_ep *ep, void *ctx);
void *net_ep_ctx(const struct net_ep *ep);

#endif
