/* raw_client.c: a client of `btd memd` that misbehaves, for the tests.
 *
 *   raw_client HOST PORT KEYFILE MODE
 * MODE:
 *   forge-offset  a COMMIT whose range lies past the lease's image, then
 *                 one whose lengths overflow: both must be refused
 *   forge-key     an RMA write into the staging region under a wrong key:
 *                 it must fail, and the node must still answer
 *   garbage SEED  sessions of random and mutated messages (before and
 *                 after authentication); the node must survive them
 * Exit 0 when the node behaved, 1 when it did not, 2 on a setup failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/error.h"
#include "../../net/net.h"
#include "../../net/proto.h"
#include "btd.h"

static struct net_domain *dom;
static uint8_t key[4096];
static size_t key_len;
static const char *host, *port;
static uint8_t uuid[16]; /* one lease for all of this process's sessions */

static int setup_fail(const char *what)
{
	fprintf(stderr, "raw_client: %s: %s\n", what, err_last());
	exit(2);
}

static int recv_any(struct net_ep *ep, void *buf, int timeout)
{
	size_t len;

	if (net_recv(ep, buf, NET_MSG_MAX, &len, timeout))
		return -1;
	if (msg_check(buf, len))
		return -2;
	return ((struct msg_hdr *)buf)->type;
}

/* Connect, authenticate and lease 1 MiB of image under a random uuid. */
static struct net_ep *session(struct msg_lease_ok *lease)
{
	union {
		struct msg_hello hello;
		struct msg_auth_ok ok;
		char raw[NET_MSG_MAX];
	} in;
	struct msg_auth auth;
	struct msg_lease m;
	struct net_ep *ep;

	if (net_connect(dom, host, port, 5000, &ep))
		setup_fail("connect");
	if (recv_any(ep, &in, 5000) != MSG_HELLO)
		setup_fail("no HELLO");
	msg_init(&auth.h, MSG_AUTH, sizeof(auth), 1);
	proto_random(auth.nonce, sizeof(auth.nonce));
	proto_mac(key, key_len, "btd-c", in.hello.nonce, auth.nonce, auth.mac);
	if (net_send(ep, &auth, sizeof(auth), 5000) || recv_any(ep, &in, 5000) != MSG_AUTH_OK)
		setup_fail("authentication");
	if (!lease)
		return ep;
	memset(&m, 0, sizeof(m));
	msg_init(&m.h, MSG_LEASE, sizeof(m), 2);
	memcpy(m.uuid, uuid, sizeof(uuid));
	m.image_size = 1 << 20;
	snprintf(m.path, sizeof(m.path), "/nonexistent/raw-client-%d", (int)getpid());
	if (net_send(ep, &m, sizeof(m), 5000) || recv_any(ep, &in, 5000) != MSG_LEASE_OK)
		setup_fail("lease");
	memcpy(lease, &in, sizeof(*lease));
	return ep;
}

/* A COMMIT of one staged range; the node's answer type. */
static int commit_range(struct net_ep *ep, const struct msg_lease_ok *l, struct net_mr *mr,
			uint64_t off, uint64_t len, uint64_t data_len)
{
	char *buf = mr->buf;
	struct batch_range r = { off, len };
	struct msg_commit c;
	char in[NET_MSG_MAX];

	memcpy(buf, &r, sizeof(r));
	memset(buf + sizeof(r), 0x5a, 64);
	size_t total = sizeof(r) + 64;

	if (net_write(ep, mr, buf, total, l->staging.addr, l->staging.key, 5000))
		return -1;
	msg_init(&c.h, MSG_COMMIT, sizeof(c), 3);
	c.epoch = l->epoch + 1;
	c.nranges = 1;
	c.data_len = data_len;
	c.sum = batch_sum(buf, total);
	if (net_send(ep, &c, sizeof(c), 5000))
		return -1;
	return recv_any(ep, in, 5000);
}

static int forge_offset(void)
{
	struct msg_lease_ok l;
	struct net_ep *ep = session(&l);
	struct net_mr mr;
	static char buf[1 << 16];
	int t, bad = 0;

	if (net_mr_reg(dom, buf, sizeof(buf), NET_ACCESS_LOCAL, &mr))
		setup_fail("register");
	/* past the image */
	t = commit_range(ep, &l, &mr, l.image_size, 64, 64);
	/* Refused: an ERROR, or the session closed before it could be read. */
	printf("range past the image: %s\n", t != MSG_ACK ? "refused" : "ACCEPTED");
	bad |= t == MSG_ACK;
	net_ep_close(ep);
	/* lengths that wrap around */
	ep = session(&l);
	t = commit_range(ep, &l, &mr, 64, UINT64_MAX - 31, 64);
	printf("overflowing range: %s\n", t != MSG_ACK ? "refused" : "ACCEPTED");
	bad |= t == MSG_ACK;
	net_ep_close(ep);
	/* a range inside, as a control: accepted */
	ep = session(&l);
	t = commit_range(ep, &l, &mr, 4096, 64, 64);
	printf("honest range: %s\n", t == MSG_ACK ? "accepted" : "REFUSED");
	bad |= t != MSG_ACK;
	net_ep_close(ep);
	return bad;
}

/* The first 64 bytes of staging and of image chunk 0, read back. */
static void snapshot(struct net_ep *ep, const struct msg_lease_ok *l, struct net_mr *mr,
		     char *buf, char out[128])
{
	if (net_read(ep, mr, buf, 64, l->staging.addr, l->staging.key, 5000) ||
	    net_read(ep, mr, buf + 64, 64, l->chunk[0].addr, l->chunk[0].key, 5000))
		setup_fail("read back");
	memcpy(out, buf, 128);
}

/* A forged write may complete at this end (the tcp provider completes a
 * write once it is sent); what counts is that the node's memory is
 * untouched and that it still serves: read back over a new session. */
static int forged(struct msg_lease_ok *l, struct net_mr *mr, char *buf, uint64_t raddr,
		  uint64_t rkey, const char *what)
{
	char before[128], after[128];
	struct net_ep *ep = session(l);

	snapshot(ep, l, mr, buf, before);
	memset(buf, 0xa5, 64);
	net_write(ep, mr, buf, 64, raddr, rkey, 3000);
	net_ep_close(ep);
	ep = session(l);
	snapshot(ep, l, mr, buf, after);
	net_ep_close(ep);
	if (memcmp(before, after, sizeof(before))) {
		printf("%s: the node's memory CHANGED\n", what);
		return 1;
	}
	printf("%s: refused (the node's memory is untouched)\n", what);
	return 0;
}

static int forge_key(void)
{
	struct msg_lease_ok l;
	struct net_ep *ep = session(&l);
	struct net_mr mr;
	static char buf[4096];
	int bad = 0;

	net_ep_close(ep);
	if (net_mr_reg(dom, buf, sizeof(buf), NET_ACCESS_LOCAL, &mr))
		setup_fail("register");
	bad |= forged(&l, &mr, buf, l.staging.addr, l.staging.key ^ 0x5a5a5a5a5a5a5a5aull,
		      "a write under a forged key");
	bad |= forged(&l, &mr, buf, l.staging.addr + PROTO_STAGING, l.staging.key,
		      "a write past the region");
	bad |= forged(&l, &mr, buf, l.staging.addr - 64, l.staging.key,
		      "a write before the region");
	printf("the node still serves\n");
	return bad;
}

static int garbage(unsigned seed)
{
	char msg[NET_MSG_MAX];

	srand(seed);
	for (int s = 0; s < 40; s++) {
		struct msg_lease_ok l;
		struct net_ep *ep = s % 2 ? session(s % 4 == 1 ? &l : NULL) : NULL;

		if (!ep && net_connect(dom, host, port, 5000, &ep))
			setup_fail("connect");
		for (int i = 0; i < 20; i++) {
			size_t len = (size_t)(rand() % (int)sizeof(msg)) + 1;

			for (size_t k = 0; k < len; k++)
				msg[k] = (char)rand();
			if (rand() % 2 && len >= sizeof(struct msg_hdr)) {
				/* a plausible header, so the body gets parsed */
				msg_init((struct msg_hdr *)msg, (enum msg_type)(rand() % MSG_TYPE_MAX),
					 rand() % 4 ? msg_size((uint16_t)(rand() % MSG_TYPE_MAX)) : len,
					 (uint32_t)i);
				if (rand() % 2)
					len = ((struct msg_hdr *)msg)->len <= sizeof(msg) &&
					      ((struct msg_hdr *)msg)->len >= sizeof(struct msg_hdr)
						      ? ((struct msg_hdr *)msg)->len : len;
			}
			if (net_send(ep, msg, len, 2000))
				break; /* the node closed us: fine */
		}
		net_ep_close(ep);
	}
	/* Alive: a clean session still works. */
	struct net_ep *ep = session(NULL);

	net_ep_close(ep);
	printf("the node survived the garbage\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: raw_client HOST PORT KEYFILE forge-offset|forge-key|"
			"garbage SEED\n");
		return 2;
	}
	host = argv[1];
	port = argv[2];
	if (proto_key_load(argv[3], key, sizeof(key), &key_len))
		setup_fail("key");
	proto_random(uuid, sizeof(uuid));
	if (net_domain_open(NULL, 0, &dom))
		setup_fail("domain");
	if (!strcmp(argv[4], "forge-offset"))
		return forge_offset();
	if (!strcmp(argv[4], "forge-key"))
		return forge_key();
	if (!strcmp(argv[4], "garbage"))
		return garbage(argc > 5 ? (unsigned)atoi(argv[5]) : 1);
	return 2;
}
