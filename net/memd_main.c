/* memd_main.c: `btd memd` -- the command line, and the loop that serves the node over libfabric.
 *
 * The thread that runs memd_main is the node's progress thread: it never
 * blocks anywhere but in net_poll (200 ms at a time), because the tcp
 * provider places peers' RMA writes only while the target polls.  Every
 * event is handled on it: a connection gets a session and a HELLO, a
 * message goes to memd_handle and its answer back, a closed connection
 * loses its session.  SIGTERM and SIGINT stop the loop; then every
 * endpoint is closed, every region deregistered and the pool unmapped. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/error.h"
#include "btd.h"
#include "memd_int.h"

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

struct server {
	struct memd *m;
	struct net_domain *d;
	struct net_listener *l;
	struct net_ep **eps;  /* the connected endpoints, each with its session as ctx */
	size_t neps, cap;
};

static int server_reg(void *ctx, void *buf, size_t len, struct net_mr *out)
{
	struct server *sv = ctx;

	return net_mr_reg(sv->d, buf, len, NET_ACCESS_REMOTE, out);
}

static void server_dereg(void *ctx, struct net_mr *mr)
{
	(void)ctx;
	net_mr_dereg(mr);
}

static void ep_drop(struct server *sv, struct net_ep *ep)
{
	for (size_t i = 0; i < sv->neps; i++)
		if (sv->eps[i] == ep) {
			sv->eps[i] = sv->eps[--sv->neps];
			break;
		}
	memd_session_free(net_ep_ctx(ep));
	net_ep_close(ep);
}

static void server_evict(void *ctx, struct memd_session *s)
{
	ep_drop(ctx, memd_session_ctx(s));
}

static void on_connect(struct server *sv, struct net_ep *ep)
{
	static unsigned char hello[NET_MSG_MAX];
	struct memd_session *s = memd_session_new(sv->m, net_ep_peer(ep));

	if (s && sv->neps == sv->cap) {
		size_t cap = sv->cap ? 2 * sv->cap : 16;
		struct net_ep **eps = realloc(sv->eps, cap * sizeof(*eps));

		if (eps) {
			sv->eps = eps;
			sv->cap = cap;
		}
	}
	if (!s || sv->neps == sv->cap) {
		memd_log(sv->m, "connection from %s refused: out of memory", net_ep_peer(ep));
		memd_session_free(s);
		net_ep_close(ep);
		return;
	}
	memd_session_set_ctx(s, ep);
	net_ep_set_ctx(ep, s);
	sv->eps[sv->neps++] = ep;
	memd_log(sv->m, "connection from %s", net_ep_peer(ep));
	size_t n = memd_hello(s, hello);

	if (net_send(ep, hello, n, 5000)) {
		memd_log(sv->m, "%s: HELLO not sent: %s", net_ep_peer(ep), err_last());
		ep_drop(sv, ep);
	}
}

static void on_message(struct server *sv, const struct net_event *ev)
{
	static unsigned char reply[NET_MSG_MAX];
	size_t n;
	int keep = memd_handle(sv->m, net_ep_ctx(ev->ep), ev->data, ev->len, reply, &n);

	if (n && net_send(ev->ep, reply, n, 5000)) {
		memd_log(sv->m, "%s: answer not sent: %s", net_ep_peer(ev->ep), err_last());
		keep = 0;
	}
	if (!keep) {
		memd_log(sv->m, "%s: session closed", net_ep_peer(ev->ep));
		ep_drop(sv, ev->ep);
	}
}

static int serve(struct server *sv)
{
	struct net_event ev;
	int st = 0;

	while (!stopping) {
		if ((st = net_poll(sv->l, 200, &ev))) {
			if (stopping)
				return 0;
			memd_log(sv->m, "the listener failed: %s", err_last());
			return st;
		}
		switch (ev.kind) {
		case NET_EV_CONNECT:
			on_connect(sv, ev.ep);
			break;
		case NET_EV_MSG:
			on_message(sv, &ev);
			break;
		case NET_EV_CLOSE:
			memd_log(sv->m, "%s went away", net_ep_peer(ev.ep));
			ep_drop(sv, ev.ep);
			break;
		case NET_EV_NONE:
			break;
		}
	}
	return 0;
}

/* "256M", "1G", "4096": bytes, or 0 when not a size. */
static uint64_t parse_size(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return 0;
	static const char units[] = "KMGT";
	const char *u = *end ? strchr(units, *end & ~0x20) : NULL;

	if (*end && (!u || end[1]))
		return 0;
	for (int shift = u ? 10 * (int)(u - units + 1) : 0; shift; shift -= 10)
		if (v > (~0ull >> 10))
			return 0;
		else
			v <<= 10;
	return v;
}

static int usage_error(const char *why)
{
	fprintf(stderr, "btd memd: %s\nusage: btd memd --pool PATH --listen [ADDR:]PORT --key FILE "
		"[--size SIZE] [-v]\n       btd memd --pool PATH --list | --drop UUID|CLIENT-POOL-PATH\n",
		why);
	return 2;
}

/* --list and --drop: the node pool offline (the lock keeps a serving
 * memd out). */
static int admin(const char *pool, int list, const char *drop)
{
	struct memd_config cfg = { .path = pool };
	struct memd *m;
	struct stat sb;
	char hex[33];
	int st, found = -1, matches = 0;

	if (stat(pool, &sb)) {
		fprintf(stderr, "btd memd: %s: %s\n", pool, strerror(errno));
		return 2;
	}
	if ((st = memd_open(&cfg, &m))) {
		fprintf(stderr, "btd memd: %s\n", err_last());
		return st == BTD_ERR_BUSY ? 1 : 2;
	}
	for (int s = 0; s < (int)MEMD_LEASES; s++) {
		const struct memd_lease_rec *r = &m->lease[s].rec;

		if (r->state != MEMD_LEASE_LIVE)
			continue;
		proto_uuid_hex(r->owner, hex);
		if (list)
			printf("%s  epoch %-8llu %5llu MiB  %-12s %s\n", hex,
			       (unsigned long long)r->epoch, (unsigned long long)(r->image_size >> 20),
			       r->consistent ? "consistent" : "inconsistent", r->path);
		else if ((strlen(drop) >= 8 && !strncmp(hex, drop, strlen(drop))) ||
			 !strcmp(r->path, drop)) {
			/* A client keeps two leases of a pool (proto.h): one pool. */
			const uint8_t *f = m->lease[found < 0 ? s : found].rec.owner;

			if (found >= 0 && !proto_same_pool(f, r->owner))
				matches = 2;
			else if (found < 0)
				found = s, matches = 1;
		}
	}
	if (!list && matches != 1) {
		fprintf(stderr, "btd memd: --drop %s matches %s: give a uuid (at least 8 hex "
			"digits) or a client pool path of one pool that --list shows\n", drop,
			matches ? "the leases of more than one pool" : "no lease");
		memd_close(m);
		return 1;
	}
	for (int s = 0; !list && s < (int)MEMD_LEASES; s++) {
		const uint8_t *f = m->lease[found].rec.owner, *o = m->lease[s].rec.owner;

		if (m->lease[s].rec.state != MEMD_LEASE_LIVE || s == found ||
		    !proto_same_pool(f, o))
			continue;
		proto_uuid_hex(o, hex);
		memd_lease_drop(m, s);
		printf("btd memd: dropped lease %s\n", hex);
	}
	if (!list) {
		proto_uuid_hex(m->lease[found].rec.owner, hex);
		memd_lease_drop(m, found);
		printf("btd memd: dropped lease %s\n", hex);
	}
	memd_close(m);
	return 0;
}

int memd_main(int argc, char **argv)
{
	const char *pool = NULL, *listen = NULL, *keyfile = NULL, *drop = NULL;
	uint64_t size = (uint64_t)1 << 30;
	int verbose = 0, list = 0;

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], **to = NULL;

		if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			verbose = 1;
			continue;
		}
		if (!strcmp(a, "--list")) {
			list = 1;
			continue;
		}
		if (!strcmp(a, "--pool"))
			to = &pool;
		else if (!strcmp(a, "--listen"))
			to = &listen;
		else if (!strcmp(a, "--key"))
			to = &keyfile;
		else if (!strcmp(a, "--drop"))
			to = &drop;
		else if (strcmp(a, "--size"))
			return usage_error("unknown argument");
		if (i + 1 >= argc)
			return usage_error("an option lacks its value");
		if (to) {
			*to = argv[++i];
		} else if (!(size = parse_size(argv[++i]))) {
			return usage_error("--size takes a size like 256M or 1G");
		}
	}
	if (pool && (list || drop) && !listen && !keyfile)
		return list && drop ? usage_error("--list or --drop, not both") : admin(pool, list, drop);
	if (!pool || !listen || !keyfile)
		return usage_error("--pool, --listen and --key are needed");

	char addr[256] = "127.0.0.1";
	const char *port = listen, *colon = strrchr(listen, ':');

	if (colon) {
		size_t n = (size_t)(colon - listen);

		if (listen[0] == '[' && n >= 2 && listen[n - 1] == ']')
			memcpy(addr, listen + 1, n - 2), addr[n - 2] = '\0';
		else if (n && n < sizeof(addr))
			memcpy(addr, listen, n), addr[n] = '\0';
		port = colon + 1;
	}
	char *end;
	long pn = strtol(port, &end, 10);

	if (!*port || *end || pn < 0 || pn > 65535)
		return usage_error("--listen wants [ADDR:]PORT with a port from 0 (any) to 65535");
	uint8_t key[MEMD_KEY_MAX];
	size_t key_len;
	int st;

	if ((st = proto_key_load(keyfile, key, sizeof(key), &key_len))) {
		fprintf(stderr, "btd memd: %s\n", err_last());
		return 2;
	}
	struct server sv = { 0 };
	struct memd_config cfg = {
		.path = pool, .size = size, .key = key, .key_len = key_len, .verbose = verbose,
		.ops = { .reg = server_reg, .dereg = server_dereg, .evict = server_evict, .ctx = &sv },
	};

	if ((st = memd_open(&cfg, &sv.m))) {
		fprintf(stderr, "btd memd: %s\n", err_last());
		return st == BTD_ERR_FORMAT || st == BTD_ERR_VERSION || st == BTD_ERR_INVAL ? 2 : 1;
	}
	memset(key, 0, sizeof(key));
	if ((st = net_domain_open(NULL, 1, &sv.d)) || (st = net_listen(sv.d, addr, port, &sv.l))) {
		fprintf(stderr, "btd memd: %s\n", err_last());
		memd_close(sv.m);
		if (sv.d)
			net_domain_close(sv.d);
		return 1;
	}
	struct sigaction sa = { .sa_handler = on_signal };

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	memd_log(sv.m, "listening on %s:%d", addr, net_listener_port(sv.l)); /* tests read this line */
	st = serve(&sv);
	while (sv.neps)
		ep_drop(&sv, sv.eps[sv.neps - 1]);
	free(sv.eps);
	memd_close(sv.m); /* deregisters every region */
	net_listener_close(sv.l);
	net_domain_close(sv.d);
	fprintf(stderr, "memd: stopped\n");
	return st ? 1 : 0;
}
