/* test_net.c: net/ over real tcp endpoints on 127.0.0.1, and proto.c. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "btd.h"
#include "../../common/error.h"
#include "../../net/net.h"
#include "../../net/proto.h"

#define REGION (16u << 20)
#define T_MS 5000

/* The node's side of these tests: it answers 'E' by echoing the message,
 * and 'S' {off, len} with the batch_sum of region[off, off + len) -- so a
 * client learns what the node saw when the message arrived. */
struct node {
	struct net_domain *d;
	struct net_listener *l;
	struct net_mr mr;
	uint8_t *region;
	pthread_t thread;
	atomic_int stop;
	atomic_int connects, closes, msgs;
	char port[16];
};

struct sum_req {
	char op;
	uint64_t off, len;
};

struct sum_rep {
	char op;
	uint64_t sum;
};

static void node_serve(struct node *n, int forever)
{
	struct net_event ev;

	while (forever || !atomic_load(&n->stop)) {
		int ret = net_poll(n->l, 50, &ev);

		if (ret) {
			fprintf(stderr, "net_poll: %s\n", err_last());
			return;
		}
		switch (ev.kind) {
		case NET_EV_CONNECT:
			atomic_fetch_add(&n->connects, 1);
			break;
		case NET_EV_CLOSE:
			atomic_fetch_add(&n->closes, 1);
			net_ep_close(ev.ep);
			break;
		case NET_EV_MSG: {
			const char *m = ev.data;

			atomic_fetch_add(&n->msgs, 1);
			if (m[0] == 'E') {
				net_send(ev.ep, ev.data, ev.len, T_MS);
			} else if (m[0] == 'S') {
				struct sum_req q;
				struct sum_rep r = { 'R', 0 };

				memcpy(&q, ev.data, sizeof(q));
				r.sum = batch_sum(n->region + q.off, q.len);
				net_send(ev.ep, &r, sizeof(r), T_MS);
			}
			break;
		}
		default:
			break;
		}
	}
}

static void *node_thread(void *arg)
{
	node_serve(arg, 0);
	return NULL;
}

static void node_init(struct node *n)
{
	memset(n, 0, sizeof(*n));
	cr_assert_eq(net_domain_open(NULL, 1, &n->d), 0, "%s", err_last());
	n->region = aligned_alloc(4096, REGION);
	cr_assert(n->region);
	memset(n->region, 0, REGION);
	cr_assert_eq(net_mr_reg(n->d, n->region, REGION, NET_ACCESS_REMOTE | NET_ACCESS_LOCAL,
				&n->mr), 0, "%s", err_last());
	cr_assert_eq(net_listen(n->d, "127.0.0.1", "0", &n->l), 0, "%s", err_last());
	cr_assert_gt(net_listener_port(n->l), 0);
	snprintf(n->port, sizeof(n->port), "%d", net_listener_port(n->l));
}

static void node_start(struct node *n)
{
	node_init(n);
	pthread_create(&n->thread, NULL, node_thread, n);
}

static void node_stop(struct node *n)
{
	atomic_store(&n->stop, 1);
	pthread_join(n->thread, NULL);
	net_listener_close(n->l);
	net_mr_dereg(&n->mr);
	net_domain_close(n->d);
	free(n->region);
}

struct client {
	struct net_domain *d;
	struct net_ep *ep;
	struct net_mr mr;
	uint8_t *buf;
};

static void client_open(struct client *c, const char *port)
{
	memset(c, 0, sizeof(*c));
	cr_assert_eq(net_domain_open("tcp", 0, &c->d), 0, "%s", err_last());
	c->buf = aligned_alloc(4096, REGION);
	cr_assert(c->buf);
	cr_assert_eq(net_mr_reg(c->d, c->buf, REGION, NET_ACCESS_LOCAL, &c->mr), 0, "%s",
		     err_last());
	cr_assert_eq(net_connect(c->d, "127.0.0.1", port, T_MS, &c->ep), 0, "%s", err_last());
}

static void client_close(struct client *c)
{
	net_ep_close(c->ep);
	net_mr_dereg(&c->mr);
	net_domain_close(c->d);
	free(c->buf);
}

/* What the node's region holds at [off, off + len) when it reads our message. */
static uint64_t node_sum(struct client *c, uint64_t off, uint64_t len)
{
	struct sum_req q = { 'S', off, len };
	struct sum_rep r;
	size_t got;
	uint8_t buf[NET_MSG_MAX];

	cr_assert_eq(net_send(c->ep, &q, sizeof(q), T_MS), 0, "%s", err_last());
	cr_assert_eq(net_recv(c->ep, buf, sizeof(buf), &got, T_MS), 0, "%s", err_last());
	cr_assert_eq(got, sizeof(r));
	memcpy(&r, buf, sizeof(r));
	cr_assert_eq(r.op, 'R');
	return r.sum;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

Test(net, caps)
{
	struct net_domain *d;

	cr_assert_eq(net_domain_open(NULL, 0, &d), 0, "%s", err_last());
	const struct net_caps *c = net_domain_caps(d);

	cr_assert_str_eq(c->provider, "tcp");
	cr_assert_gt(c->max_rma, 0);
	net_domain_close(d);
	cr_assert_neq(net_domain_open("no-such-provider", 0, &d), 0);
	cr_assert(strstr(err_last(), "no-such-provider"), "%s", err_last());
}

Test(net, messages_in_order)
{
	struct node n;
	struct client c;
	uint8_t buf[NET_MSG_MAX];
	size_t got;

	node_start(&n);
	client_open(&c, n.port);
	cr_assert_str_eq(net_ep_peer(c.ep), strcat(strcpy((char[32]){ 0 }, "127.0.0.1:"), n.port));
	/* More than the receive buffers posted on either side. */
	for (int i = 0; i < 40; i++) {
		char m[NET_MSG_MAX];

		memset(m, i, sizeof(m));
		m[0] = 'E';
		size_t len = i == 39 ? NET_MSG_MAX : (size_t)(8 + i);

		cr_assert_eq(net_send(c.ep, m, len, T_MS), 0, "%s", err_last());
	}
	for (int i = 0; i < 40; i++) {
		cr_assert_eq(net_recv(c.ep, buf, sizeof(buf), &got, T_MS), 0, "%s", err_last());
		cr_assert_eq(got, i == 39 ? NET_MSG_MAX : (size_t)(8 + i));
		cr_assert_eq(buf[0], 'E');
		cr_assert_eq(buf[got - 1], (uint8_t)i, "message %d out of order", i);
	}
	cr_assert_eq(net_send(c.ep, buf, NET_MSG_MAX + 1, T_MS), BTD_ERR_INVAL);
	client_close(&c);
	node_stop(&n);
}

Test(net, writes_then_message)
{
	struct node n;
	struct client c;

	node_start(&n);
	client_open(&c, n.port);
	size_t max = net_domain_caps(c.d)->max_rma;
	size_t sizes[] = { 1, 4096, 3u << 20, 2 * max + 123 };
	uint64_t off = 0;

	for (size_t k = 0; k < BTD_ARRAY_SIZE(sizes); k++) {
		size_t len = sizes[k];
		uint64_t at = off + 1; /* unaligned on both sides */

		cr_assert_leq(at + len, REGION);
		fill(c.buf + at, len, (unsigned)k + 1);
		cr_assert_eq(net_write(c.ep, &c.mr, c.buf + at, len, n.mr.addr + at, n.mr.key, T_MS),
			     0, "%s", err_last());
		cr_assert_eq(node_sum(&c, at, len), batch_sum(c.buf + at, len), "size %zu", len);
		cr_assert_eq(memcmp(n.region + at, c.buf + at, len), 0);
		off = (at + len + 4095) & ~(uint64_t)4095;
		if (off + sizes[BTD_ARRAY_SIZE(sizes) - 1] + 1 > REGION)
			off = 0;
	}
	/* A batch of ranges at once. */
	struct net_iov v[3] = {
		{ c.buf + 100, 10, n.mr.addr + 200000, n.mr.key },
		{ c.buf + 5000, 70000, n.mr.addr + 300000, n.mr.key },
		{ c.buf + 9, 3 * max, n.mr.addr + 1000000, n.mr.key },
	};
	fill(c.buf, 4 * max, 77);
	cr_assert_eq(net_writev(c.ep, &c.mr, v, 3, T_MS), 0, "%s", err_last());
	for (int k = 0; k < 3; k++)
		cr_assert_eq(node_sum(&c, v[k].raddr - n.mr.addr, v[k].len),
			     batch_sum(v[k].src, v[k].len));
	/* And back. */
	uint8_t *dst = c.buf + (8u << 20);

	memset(dst, 0, 3 * max);
	cr_assert_eq(net_read(c.ep, &c.mr, dst, 3 * max, n.mr.addr + 1000000, n.mr.key, T_MS), 0,
		     "%s", err_last());
	cr_assert_eq(memcmp(dst, c.buf + 9, 3 * max), 0);
	/* Outside the local region. */
	cr_assert_eq(net_write(c.ep, &c.mr, c.buf + REGION - 10, 11, n.mr.addr, n.mr.key, T_MS),
		     BTD_ERR_INVAL);
	client_close(&c);
	node_stop(&n);
}

Test(net, wrong_key_then_second_client)
{
	struct node n;
	struct client c, c2;

	node_start(&n);
	client_open(&c, n.port);
	fill(c.buf, 4096, 3);
	int ret = net_write(c.ep, &c.mr, c.buf, 4096, n.mr.addr, n.mr.key ^ 0x5a5a, T_MS);

	if (!ret) { /* a provider may accept the post: the next exchange must fail */
		ret = net_send(c.ep, "E", 1, T_MS);
		if (!ret) {
			uint8_t b[NET_MSG_MAX];
			size_t got;

			ret = net_recv(c.ep, b, sizeof(b), &got, T_MS);
		}
	}
	cr_assert_eq(ret, BTD_ERR_IO, "a write with a wrong key: %d", ret);
	cr_assert(strstr(err_last(), "127.0.0.1:"), "%s", err_last());
	cr_assert_eq(memcmp(n.region, c.buf, 16) == 0 && c.buf[0], 0, "the bytes landed");
	client_close(&c);

	client_open(&c2, n.port);
	fill(c2.buf, 4096, 4);
	cr_assert_eq(net_write(c2.ep, &c2.mr, c2.buf, 4096, n.mr.addr, n.mr.key, T_MS), 0, "%s",
		     err_last());
	cr_assert_eq(node_sum(&c2, 0, 4096), batch_sum(c2.buf, 4096));
	client_close(&c2);
	node_stop(&n);
}

Test(net, client_vanishes)
{
	struct node n;

	node_start(&n);
	pid_t pid = fork();

	if (!pid) {
		struct net_domain *d;
		struct net_ep *ep;

		if (net_domain_open(NULL, 0, &d) || net_connect(d, "127.0.0.1", n.port, T_MS, &ep))
			_exit(2);
		net_send(ep, "E-hello", 7, T_MS);
		_exit(0); /* no close: the kernel resets the connection */
	}
	int st;

	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	for (int i = 0; i < 500 && atomic_load(&n.closes) < 1; i++)
		usleep(10000);
	cr_assert_eq(atomic_load(&n.connects), 1);
	cr_assert_eq(atomic_load(&n.closes), 1, "no NET_EV_CLOSE for a vanished client");

	/* And one that closes its endpoint itself. */
	struct client c;

	client_open(&c, n.port);
	cr_assert_eq(node_sum(&c, 0, 1), batch_sum(n.region, 1));
	client_close(&c);
	for (int i = 0; i < 500 && atomic_load(&n.closes) < 2; i++)
		usleep(10000);
	cr_assert_eq(atomic_load(&n.closes), 2);
	node_stop(&n);
}

Test(net, node_dies)
{
	int pfd[2];

	cr_assert_eq(pipe(pfd), 0);
	pid_t pid = fork();

	if (!pid) {
		struct node n;

		node_init(&n);
		if (write(pfd[1], n.port, sizeof(n.port)) != sizeof(n.port))
			_exit(2);
		node_serve(&n, 1);
		_exit(0);
	}
	char port[16];

	cr_assert_eq(read(pfd[0], port, sizeof(port)), (ssize_t)sizeof(port));
	struct client c;

	client_open(&c, port);
	uint8_t b[NET_MSG_MAX];
	size_t got;

	cr_assert_eq(net_send(c.ep, "E-ping", 6, T_MS), 0, "%s", err_last());
	cr_assert_eq(net_recv(c.ep, b, sizeof(b), &got, T_MS), 0, "%s", err_last());
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	/* SIGPIPE keeps its default action: a send into the dead socket would
	 * kill this process. */
	signal(SIGPIPE, SIG_DFL);
	int ret = 0;

	for (int i = 0; i < 50 && !ret; i++) {
		ret = net_write(c.ep, &c.mr, c.buf, 1u << 20, 0, 1, T_MS);
		if (!ret)
			ret = net_send(c.ep, "E-x", 3, T_MS);
	}
	cr_assert_eq(ret, BTD_ERR_IO, "%d", ret);
	cr_assert(strstr(err_last(), port), "%s", err_last());
	cr_assert_eq(net_recv(c.ep, b, sizeof(b), &got, 100), BTD_ERR_IO);
	client_close(&c);
	/* And connecting to it now is refused, not hung. */
	struct net_domain *d;
	struct net_ep *ep;

	cr_assert_eq(net_domain_open(NULL, 0, &d), 0);
	cr_assert_eq(net_connect(d, "127.0.0.1", port, T_MS, &ep), BTD_ERR_IO);
	net_domain_close(d);
}

Test(net, recv_timeout)
{
	struct node n;
	struct client c;
	uint8_t b[NET_MSG_MAX];
	size_t got;

	node_start(&n);
	client_open(&c, n.port);
	cr_assert_eq(net_recv(c.ep, b, sizeof(b), &got, 200), BTD_ERR_IO);
	cr_assert(strstr(err_last(), "timed out after 200 ms"), "%s", err_last());
	/* Still usable. */
	cr_assert_eq(net_send(c.ep, "E-after", 7, T_MS), 0, "%s", err_last());
	cr_assert_eq(net_recv(c.ep, b, sizeof(b), &got, T_MS), 0, "%s", err_last());
	cr_assert_eq(got, 7);
	client_close(&c);
	node_stop(&n);
}

/* ---- proto.c ---- */

static struct msg_ack ack(void)
{
	struct msg_ack a;

	memset(&a, 0, sizeof(a));
	msg_init(&a.h, MSG_ACK, sizeof(a), 7);
	return a;
}

Test(proto, msg_check)
{
	struct msg_ack a = ack();

	cr_assert_eq(msg_check(&a, sizeof(a)), 0, "%s", err_last());
	a.h.magic ^= 1;
	cr_assert_eq(msg_check(&a, sizeof(a)), BTD_ERR_INVAL);
	a = ack();
	a.h.version = 2;
	cr_assert_lt(msg_check(&a, sizeof(a)), 0);
	a = ack();
	a.h.type = MSG_TYPE_MAX;
	cr_assert_eq(msg_check(&a, sizeof(a)), BTD_ERR_INVAL);
	a.h.type = 0;
	cr_assert_eq(msg_check(&a, sizeof(a)), BTD_ERR_INVAL);
	a = ack();
	a.h.len = sizeof(a) + 1;
	cr_assert_eq(msg_check(&a, sizeof(a)), BTD_ERR_INVAL);
	cr_assert_eq(msg_check(&a, 8), BTD_ERR_INVAL);

	/* Short and long for its type, with a consistent len. */
	uint8_t big[NET_MSG_MAX + 8];

	a = ack();
	a.h.len = sizeof(a) - 8;
	cr_assert_eq(msg_check(&a, sizeof(a) - 8), BTD_ERR_INVAL);
	memset(big, 0, sizeof(big));
	a.h.len = sizeof(a) + 8;
	memcpy(big, &a, sizeof(a));
	cr_assert_eq(msg_check(big, sizeof(a) + 8), BTD_ERR_INVAL);
	cr_assert_eq(msg_check(big, NET_MSG_MAX + 1), BTD_ERR_INVAL);

	/* Every fixed type at its size, at an odd address. */
	for (uint16_t t = 1; t < MSG_TYPE_MAX; t++) {
		size_t n = msg_size(t);

		cr_assert_gt(n, 0);
		memset(big, 0, sizeof(big));
		struct msg_hdr h;

		msg_init(&h, t, n, 1);
		memcpy(big + 1, &h, sizeof(h));
		cr_assert_eq(msg_check(big + 1, n), 0, "type %u: %s", t, err_last());
	}
	cr_assert_eq(msg_size(0), 0);
	cr_assert_eq(msg_size(MSG_TYPE_MAX), 0);
}

Test(proto, list_ok)
{
	static struct msg_list_ok l;
	size_t head = offsetof(struct msg_list_ok, lease);
	size_t two = head + 2 * sizeof(struct msg_lease_info);

	memset(&l, 0, sizeof(l));
	msg_init(&l.h, MSG_LIST_OK, two, 1);
	l.count = 2;
	cr_assert_eq(msg_check(&l, two), 0, "%s", err_last());
	l.count = 3;
	cr_assert_eq(msg_check(&l, two), BTD_ERR_INVAL);
	l.count = 0;
	l.h.len = (uint32_t)head;
	cr_assert_eq(msg_check(&l, head), 0, "%s", err_last());
	l.h.len = (uint32_t)(two - 1);
	l.count = 1;
	cr_assert_eq(msg_check(&l, two - 1), BTD_ERR_INVAL);
	l.h.len = (uint32_t)(head - 4);
	cr_assert_eq(msg_check(&l, head - 4), BTD_ERR_INVAL);
}

Test(proto, hmac_rfc4231_case2)
{
	static const uint8_t want[PROTO_MAC] = {
		0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24,
		0x26, 0x08, 0x95, 0x75, 0xc7, 0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27,
		0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43,
	};
	const char *data = "what do ya want for nothing?";
	uint8_t out[PROTO_MAC];

	cr_assert_eq(proto_hmac((const uint8_t *)"Jefe", 4, data, strlen(data), out), 0, "%s",
		     err_last());
	cr_assert_eq(memcmp(out, want, PROTO_MAC), 0);
	cr_assert(proto_mac_equal(out, want));
	out[31] ^= 1;
	cr_assert(!proto_mac_equal(out, want));

	/* proto_mac is HMAC over tag, a, b. */
	uint8_t a[PROTO_NONCE], b[PROTO_NONCE], m1[PROTO_MAC], m2[PROTO_MAC];
	uint8_t cat[5 + 2 * PROTO_NONCE];
	const uint8_t key[16] = "0123456789abcdef";

	cr_assert_eq(proto_random(a, sizeof(a)), 0);
	cr_assert_eq(proto_random(b, sizeof(b)), 0);
	cr_assert_eq(proto_mac(key, 16, "btd-c", a, b, m1), 0);
	memcpy(cat, "btd-c", 5);
	memcpy(cat + 5, a, PROTO_NONCE);
	memcpy(cat + 5 + PROTO_NONCE, b, PROTO_NONCE);
	cr_assert_eq(proto_hmac(key, 16, cat, sizeof(cat), m2), 0);
	cr_assert_eq(memcmp(m1, m2, PROTO_MAC), 0);
	cr_assert_eq(proto_mac(key, 16, "btd-n", a, b, m2), 0);
	cr_assert(!proto_mac_equal(m1, m2));
}

Test(proto, batch_sum)
{
	uint8_t buf[1000];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 37);
	uint64_t s = batch_sum(buf + 3, 517);

	cr_assert_eq(s, batch_sum(buf + 3, 517));
	for (size_t bit = 0; bit < 517 * 8; bit += 13) {
		buf[3 + bit / 8] ^= (uint8_t)(1 << (bit % 8));
		cr_assert_neq(batch_sum(buf + 3, 517), s, "bit %zu", bit);
		buf[3 + bit / 8] ^= (uint8_t)(1 << (bit % 8));
	}
	/* Same bytes at another alignment, and lengths that differ only by zeroes. */
	uint8_t copy[600];

	memcpy(copy + 1, buf + 3, 517);
	cr_assert_eq(batch_sum(copy + 1, 517), s);
	memset(copy, 0, sizeof(copy));
	cr_assert_neq(batch_sum(copy, 40), batch_sum(copy, 41));
	cr_assert_neq(batch_sum(copy, 0), batch_sum(copy, 1));
}

Test(proto, key_load)
{
	char path[] = "/tmp/btd-key-XXXXXX";
	int fd = mkstemp(path);
	uint8_t key[4096];
	size_t len;

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "0123456789abcdefXYZ\n", 20), 20);
	close(fd);
	cr_assert_eq(chmod(path, 0600), 0);
	cr_assert_eq(proto_key_load(path, key, sizeof(key), &len), 0, "%s", err_last());
	cr_assert_eq(len, 19);
	cr_assert_eq(memcmp(key, "0123456789abcdefXYZ", 19), 0);

	cr_assert_eq(chmod(path, 0644), 0);
	cr_assert_eq(proto_key_load(path, key, sizeof(key), &len), BTD_ERR_PERM);
	cr_assert(strstr(err_last(), "mode 644"), "%s", err_last());
	cr_assert(strstr(err_last(), "chmod 600"), "%s", err_last());

	cr_assert_eq(chmod(path, 0600), 0);
	fd = open(path, O_WRONLY | O_TRUNC);
	cr_assert_eq(write(fd, "short-key\n", 10), 10);
	close(fd);
	cr_assert_eq(proto_key_load(path, key, sizeof(key), &len), BTD_ERR_INVAL);
	cr_assert_eq(proto_key_load("/nonexistent/btd-key", key, sizeof(key), &len),
		     BTD_ERR_NOENT);
	unlink(path);
}
