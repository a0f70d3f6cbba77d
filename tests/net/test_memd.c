/* test_memd.c: the memory node driven in-process through memd_handle -- handshake, leases, commits (and forged ones), bulk, list, redo at restart, refused pools. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/error.h"
#include "../../net/memd.h"
#include "../../net/memd_layout.h"
#include "btd.h"

#define MiB ((uint64_t)1 << 20)

static char dir[64], path[128];
static const uint8_t key[] = "0123456789abcdef-the-test-key";
static struct memd *m;
static int evicted;
static union {
	struct msg_hdr h;
	struct msg_hello hello;
	struct msg_auth_ok auth_ok;
	struct msg_lease_ok lease_ok;
	struct msg_ack ack;
	struct msg_list_ok list_ok;
	struct msg_error error;
	unsigned char bytes[NET_MSG_MAX];
} rep;
static size_t rep_len;

static void on_evict(void *ctx, struct memd_session *s)
{
	(void)ctx;
	evicted++;
	memd_session_free(s);
}

static int node_open(uint64_t size, struct memd **out)
{
	struct memd_config cfg = {
		.path = path, .size = size, .key = key, .key_len = sizeof(key) - 1, .verbose = -1,
		.ops = { .evict = on_evict },
	};

	return memd_open(&cfg, out);
}

static void setup(void)
{
	strcpy(dir, "/dev/shm/btd-memd-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/node.pool", dir);
	cr_assert_eq(node_open(6 * PROTO_CHUNK, &m), 0, "%s", err_last());
	evicted = 0;
}

static void teardown(void)
{
	char cmd[160];

	memd_close(m);
	m = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(memd, .init = setup, .fini = teardown);

static int send_msg(struct memd_session *s, void *msg, size_t len)
{
	int keep = memd_handle(m, s, msg, len, &rep, &rep_len);

	cr_assert_eq(memd_check(m), 0, "%s", err_last());
	if (rep_len)
		cr_assert_eq(msg_check(&rep, rep_len), 0, "the node's answer is malformed");
	return keep;
}

static void expect_error(int status)
{
	cr_assert_eq(rep.h.type, MSG_ERROR, "type %u, not ERROR", rep.h.type);
	cr_assert_eq(rep.error.status, status, "status %d (%s), not %d", rep.error.status,
		     rep.error.text, status);
	cr_assert(rep.error.text[0] && strlen(rep.error.text) < PROTO_TEXT);
}

static struct memd_session *session(const uint8_t *k, size_t klen, int expect_ok)
{
	struct memd_session *s = memd_session_new(m, "test");
	struct msg_auth a = { 0 };
	uint8_t nonce_n[PROTO_NONCE], mac[PROTO_MAC];

	cr_assert_eq(memd_hello(s, &rep), sizeof(struct msg_hello));
	cr_assert_eq(msg_check(&rep, sizeof(struct msg_hello)), 0);
	memcpy(nonce_n, rep.hello.nonce, PROTO_NONCE);
	msg_init(&a.h, MSG_AUTH, sizeof(a), 1);
	proto_random(a.nonce, PROTO_NONCE);
	cr_assert_eq(proto_mac(k, klen, "btd-c", nonce_n, a.nonce, a.mac), 0);
	int keep = send_msg(s, &a, sizeof(a));

	if (!expect_ok) {
		cr_assert_eq(keep, 0);
		expect_error(BTD_ERR_PERM);
		memd_session_free(s);
		return NULL;
	}
	cr_assert_eq(keep, 1);
	cr_assert_eq(rep.h.type, MSG_AUTH_OK);
	cr_assert_eq(rep.h.seq, 1);
	proto_mac(k, klen, "btd-n", a.nonce, nonce_n, mac);
	cr_assert(proto_mac_equal(mac, rep.auth_ok.mac), "AUTH_OK's mac is wrong");
	return s;
}

static struct memd_session *authed(void)
{
	return session(key, sizeof(key) - 1, 1);
}

static int lease(struct memd_session *s, const uint8_t uuid[16], uint64_t size)
{
	struct msg_lease l = { 0 };

	msg_init(&l.h, MSG_LEASE, sizeof(l), 2);
	memcpy(l.uuid, uuid, 16);
	l.base = 0x7f0000000000;
	l.image_size = size;
	snprintf(l.path, sizeof(l.path), "/pools/%02x.pool", uuid[0]);
	return send_msg(s, &l, sizeof(l));
}

static const uint8_t U1[16] = { 1, 1, 1, 1 }, U2[16] = { 2, 2, 2, 2 }, U3[16] = { 3 };

/* Stage a batch: n ranges, each filled with its index + fill. */
static uint64_t stage(const uint8_t uuid[16], const struct batch_range *r, uint64_t n, int fill,
		      uint64_t *data_len)
{
	unsigned char *st = memd_test_staging(m, uuid);
	uint64_t pos = n * sizeof(*r);

	cr_assert_not_null(st);
	memcpy(st, r, n * sizeof(*r));
	for (uint64_t i = 0; i < n; i++) {
		if (r[i].len > MiB)
			continue; /* a forged length: no bytes behind it */
		memset(st + pos, (int)(fill + i), r[i].len);
		pos += r[i].len;
	}
	*data_len = pos - n * sizeof(*r);
	return batch_sum(st, pos);
}

static int commit(struct memd_session *s, uint64_t epoch, uint64_t nranges, uint64_t data_len,
		  uint64_t sum)
{
	struct msg_commit c = { 0 };

	msg_init(&c.h, MSG_COMMIT, sizeof(c), 3);
	c.epoch = epoch;
	c.nranges = nranges;
	c.data_len = data_len;
	c.sum = sum;
	return send_msg(s, &c, sizeof(c));
}

static unsigned char *image_at(const uint8_t uuid[16], uint64_t off)
{
	unsigned char *c = memd_test_image(m, uuid, (uint32_t)(off / PROTO_CHUNK));

	cr_assert_not_null(c);
	return c + off % PROTO_CHUNK;
}

Test(memd, handshake)
{
	struct memd_session *s = authed();

	memd_session_free(s);
	const uint8_t wrong[] = "0123456789abcdef-a-wrong-key";

	cr_assert_null(session(wrong, sizeof(wrong) - 1, 0));
}

Test(memd, nothing_before_auth)
{
	struct memd_session *s = memd_session_new(m, "test");
	struct msg_list l = { 0 };

	memd_hello(s, &rep);
	msg_init(&l.h, MSG_LIST, sizeof(l), 9);
	cr_assert_eq(send_msg(s, &l, sizeof(l)), 0);
	expect_error(BTD_ERR_PERM);
	cr_assert_eq(rep.h.seq, 9);
	memd_session_free(s);
	s = memd_session_new(m, "test");
	memd_hello(s, &rep);
	cr_assert_eq(lease(s, U1, 1), 0);
	expect_error(BTD_ERR_PERM);
	memd_session_free(s);
}

Test(memd, malformed)
{
	struct memd_session *s = authed();
	struct msg_list l = { 0 };

	msg_init(&l.h, MSG_LIST, sizeof(l) + 1, 4);
	cr_assert_eq(send_msg(s, &l, sizeof(l)), 0); /* len says one more byte */
	cr_assert_eq(rep.h.type, MSG_ERROR);
	memd_session_free(s);
	s = authed();
	cr_assert_eq(send_msg(s, "xy", 2), 0);
	cr_assert_eq(rep.h.type, MSG_ERROR);
	memd_session_free(s);
	s = authed();
	struct msg_commit c = { 0 };

	msg_init(&c.h, MSG_COMMIT, sizeof(c), 4);
	cr_assert_eq(send_msg(s, &c, sizeof(c)), 0); /* no lease yet */
	expect_error(BTD_ERR_INVAL);
	memd_session_free(s);
}

Test(memd, lease_create_grow_attach)
{
	struct memd_session *s = authed(), *t;

	cr_assert_eq(lease(s, U1, 0), 1); /* attach only: none */
	expect_error(BTD_ERR_NOENT);
	cr_assert_eq(lease(s, U1, 20 * MiB), 1);
	cr_assert_eq(rep.h.type, MSG_LEASE_OK);
	cr_assert_eq(rep.lease_ok.nchunks, 2);
	cr_assert_eq(rep.lease_ok.image_size, 20 * MiB);
	cr_assert_eq(rep.lease_ok.epoch, 0);
	cr_assert_eq(rep.lease_ok.consistent, 0);
	cr_assert_eq(rep.lease_ok.base, 0x7f0000000000);
	uint64_t st = rep.lease_ok.staging.addr;

	cr_assert(st && st != rep.lease_ok.chunk[0].addr && st != rep.lease_ok.chunk[1].addr);
	cr_assert_eq(lease(s, U2, 20 * MiB), 0); /* one lease per session */
	expect_error(BTD_ERR_INVAL);
	memd_session_free(s);

	t = authed(); /* grows, then a newer session takes it over */
	cr_assert_eq(lease(t, U1, 30 * MiB), 1);
	cr_assert_eq(rep.lease_ok.nchunks, 2);
	cr_assert_eq(lease(t, U1, 40 * MiB), 1, "a session grows its own lease");
	cr_assert_eq(rep.h.type, MSG_LEASE_OK);
	cr_assert_eq(rep.lease_ok.nchunks, 3);
	cr_assert_eq(rep.lease_ok.staging.addr, st);
	s = authed(); /* an attach to read (restore) leaves the owner alone */
	cr_assert_eq(lease(s, U1, 0), 1);
	cr_assert_eq(rep.h.type, MSG_LEASE_OK);
	cr_assert_eq(rep.lease_ok.nchunks, 3);
	cr_assert_eq(rep.lease_ok.image_size, 40 * MiB);
	cr_assert_eq(evicted, 0, "an attach to read closed the owner's session");
	cr_assert_eq(commit(s, 1, 0, 0, 0), 0, "a reader's commit: refused and closed");
	expect_error(BTD_ERR_BUSY);
	memd_session_free(s);
	s = authed(); /* a lease of a size takes it over */
	cr_assert_eq(lease(s, U1, 40 * MiB), 1);
	cr_assert_eq(rep.h.type, MSG_LEASE_OK);
	cr_assert_eq(evicted, 1, "the older session was not closed");
	memd_session_free(s);

	memd_close(m); /* it survives a restart */
	cr_assert_eq(node_open(0, &m), 0, "%s", err_last());
	s = authed();
	cr_assert_eq(lease(s, U1, 0), 1);
	cr_assert_eq(rep.lease_ok.nchunks, 3);
	cr_assert_eq(rep.lease_ok.staging.addr, st);
	memd_session_free(s);
}

Test(memd, nospc)
{
	struct memd_session *s = authed(), *t = authed();

	cr_assert_eq(lease(s, U1, 4 * PROTO_CHUNK), 1); /* 5 of the 5 data chunks */
	cr_assert_eq(rep.h.type, MSG_LEASE_OK);
	cr_assert_eq(lease(t, U2, 1), 1);
	expect_error(BTD_ERR_NOSPC);
	cr_assert_eq(lease(t, U2, 241 * PROTO_CHUNK), 1);
	expect_error(BTD_ERR_INVAL);
	memd_session_free(s);
	memd_session_free(t);
}

Test(memd, commit_across_chunks)
{
	struct memd_session *s = authed();
	struct batch_range r[3] = {
		{ PROTO_CHUNK - 100, 300 }, /* across the boundary */
		{ 5, 7 },
		{ 2 * PROTO_CHUNK + 10, 0 },
	};
	uint64_t len, sum;

	cr_assert_eq(lease(s, U1, 3 * PROTO_CHUNK), 1);
	sum = stage(U1, r, 3, 0x40, &len);
	cr_assert_eq(commit(s, 1, 3, len, sum), 1);
	cr_assert_eq(rep.h.type, MSG_ACK, "%s", rep.error.text);
	cr_assert_eq(rep.ack.epoch, 1);
	for (uint64_t i = 0; i < 300; i++)
		cr_assert_eq(*image_at(U1, PROTO_CHUNK - 100 + i), 0x40);
	cr_assert_eq(*image_at(U1, 4), 0);
	cr_assert_eq(*image_at(U1, 5), 0x41);
	cr_assert_eq(*image_at(U1, 11), 0x41);
	cr_assert_eq(*image_at(U1, 12), 0);
	sum = stage(U1, r + 1, 1, 0x50, &len);
	cr_assert_eq(commit(s, 2, 1, len, sum), 1);
	cr_assert_eq(rep.ack.epoch, 2);
	cr_assert_eq(*image_at(U1, 5), 0x50);
	cr_assert_eq(commit(s, 3, 0, 0, batch_sum("", 0)), 1); /* an empty batch */
	cr_assert_eq(rep.ack.epoch, 3);
	memd_session_free(s);
}

/* Each forged COMMIT is refused, ends the session, and changes nothing. */
static void forged(const char *why, uint64_t epoch, uint64_t nranges, uint64_t data_len,
		   uint64_t sum, int restage, const struct batch_range *r, uint64_t n)
{
	struct memd_session *s = authed();
	uint64_t len;

	cr_assert_eq(lease(s, U1, 2 * PROTO_CHUNK), 1);
	cr_assert_eq(rep.lease_ok.epoch, 0);
	if (restage) {
		uint64_t good = stage(U1, r, n, 0x77, &len);

		sum = sum ? sum : good;
		data_len = data_len ? data_len : len;
	}
	cr_assert_eq(commit(s, epoch, nranges, data_len, sum), 0);
	expect_error(BTD_ERR_INVAL);
	cr_assert_not_null(strstr(rep.error.text, why), "refused for: %s", rep.error.text);
	memd_session_free(s);
	for (uint64_t off = 0; off < 64; off++)
		cr_assert_eq(*image_at(U1, off), 0);
	cr_assert_eq(*image_at(U1, 2 * PROTO_CHUNK - 1), 0);
}

Test(memd, forged_commits)
{
	struct batch_range in = { 0, 16 }, out = { 2 * PROTO_CHUNK - 8, 16 };
	struct batch_range wrap = { UINT64_MAX - 3, 8 }, huge = { 0, UINT64_MAX };
	struct batch_range two[2] = { { 0, 8 }, { 8, 8 } };

	forged("outside", 1, 1, 0, 0, 1, &out, 1);               /* outside the image */
	forged("outside", 1, 1, 8, 0, 1, &wrap, 1);              /* off + len wraps */
	forged("outside", 1, 1, 16, 0, 1, &huge, 1);             /* len beyond everything */
	forged("add up", 1, 2, 8, 0, 1, two, 2);                 /* lengths do not add up */
	forged("sum", 1, 1, 0, 12345, 1, &in, 1);                /* wrong sum */
	forged("epoch", 2, 1, 0, 0, 1, &in, 1);                  /* epoch skips one */
	forged("epoch", 0, 1, 0, 0, 1, &in, 1);                  /* epoch goes back */
	forged("ranges", 1, PROTO_STAGING / 16 + 1, 0, 0, 0, NULL, 0); /* too many ranges */
	forged("ranges", 1, UINT64_MAX / 16 + 2, 0, 0, 0, NULL, 0);    /* nranges * 16 wraps */
	forged("staging", 1, 1, PROTO_STAGING - 8, 0, 0, NULL, 0);     /* head + data too long */
	forged("staging", 1, 0, UINT64_MAX - 7, 0, 0, NULL, 0);        /* data_len wraps */
}

static void bulk(struct memd_session *s, enum msg_type type, uint64_t epoch, uint64_t size)
{
	struct msg_bulk b = { 0 };

	msg_init(&b.h, type, sizeof(b), 5);
	b.epoch = epoch;
	b.image_size = size;
	send_msg(s, &b, sizeof(b));
}

static const struct msg_lease_info *listed(struct memd_session *s, const uint8_t uuid[16])
{
	struct msg_list l = { 0 };

	msg_init(&l.h, MSG_LIST, sizeof(l), 6);
	cr_assert_eq(send_msg(s, &l, sizeof(l)), 1);
	cr_assert_eq(rep.h.type, MSG_LIST_OK);
	cr_assert_eq(rep_len, 24 + rep.list_ok.count * sizeof(struct msg_lease_info));
	for (uint32_t i = 0; i < rep.list_ok.count; i++)
		if (!memcmp(rep.list_ok.lease[i].uuid, uuid, 16))
			return &rep.list_ok.lease[i];
	return NULL;
}

Test(memd, bulk_and_list)
{
	struct memd_session *s = authed(), *t = authed();

	cr_assert_null(listed(s, U1));
	cr_assert_eq(lease(s, U1, 20 * MiB), 1);
	cr_assert_eq(lease(t, U2, 1 * MiB), 1);
	bulk(s, MSG_BULK_END, 7, 20 * MiB); /* no BEGIN */
	expect_error(BTD_ERR_INVAL);
	memd_session_free(s);
	s = authed();
	cr_assert_eq(lease(s, U1, 0), 1);
	bulk(s, MSG_BULK_BEGIN, 0, 0);
	cr_assert_eq(rep.h.type, MSG_ACK);
	memset(image_at(U1, 0), 0xaa, 20 * MiB);
	bulk(s, MSG_BULK_END, 7, 18 * MiB);
	cr_assert_eq(rep.h.type, MSG_ACK);
	cr_assert_eq(rep.ack.epoch, 7);
	const struct msg_lease_info *i = listed(t, U1);

	cr_assert_not_null(i);
	cr_assert_eq(rep.list_ok.count, 2);
	cr_assert_eq(i->epoch, 7);
	cr_assert_eq(i->consistent, 1);
	cr_assert_eq(i->image_size, 18 * MiB);
	cr_assert_eq(i->base, 0x7f0000000000);
	cr_assert_str_eq(i->path, "/pools/01.pool");
	bulk(s, MSG_BULK_BEGIN, 0, 0);
	cr_assert_eq(listed(t, U1)->consistent, 0);
	bulk(s, MSG_BULK_END, 8, 33 * MiB); /* more than the lease holds */
	expect_error(BTD_ERR_INVAL);
	memd_session_free(s);
	memd_session_free(t);
}

static void redo(int damage)
{
	struct memd_session *s = authed();
	struct batch_range r[2] = { { PROTO_CHUNK - 2, 4 }, { 100, 50 } };
	uint64_t len, sum;

	cr_assert_eq(lease(s, U3, 2 * PROTO_CHUNK), 1);
	sum = stage(U3, r, 2, 0x60, &len);
	memd_test_crash_after_redo(m, 1);
	cr_assert_eq(commit(s, 1, 2, len, sum), 0);
	cr_assert_eq(rep_len, 0, "the crash answered");
	cr_assert_eq(*image_at(U3, 100), 0, "applied before the crash");
	if (damage)
		((unsigned char *)memd_test_staging(m, U3))[40] ^= 1;
	memd_session_free(s);
	memd_close(m);
	cr_assert_eq(node_open(0, &m), 0, "%s", err_last());
	cr_assert_eq(memd_check(m), 0, "%s", err_last());
	s = authed();
	cr_assert_eq(lease(s, U3, 0), 1);
	cr_assert_eq(rep.lease_ok.epoch, damage ? 0 : 1);
	cr_assert_eq(*image_at(U3, PROTO_CHUNK - 2), damage ? 0 : 0x60);
	cr_assert_eq(*image_at(U3, PROTO_CHUNK + 1), damage ? 0 : 0x60);
	cr_assert_eq(*image_at(U3, 149), damage ? 0 : 0x61);
	memd_session_free(s);
}

Test(memd, redo_replayed_at_restart)
{
	redo(0);
}

Test(memd, redo_dropped_when_staging_is_torn)
{
	redo(1);
}

static void read_head(unsigned char *buf, size_t n)
{
	int fd = open(path, O_RDONLY);

	cr_assert_eq(pread(fd, buf, n, 0), (ssize_t)n);
	close(fd);
}

static void patch(uint64_t off, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY);

	cr_assert_eq(pwrite(fd, p, n, (off_t)off), (ssize_t)n);
	close(fd);
}

Test(memd, second_node_refused)
{
	struct memd *n2;
	char want[200];

	cr_assert_eq(node_open(0, &n2), BTD_ERR_BUSY);
	snprintf(want, sizeof(want), "pool %s is served by memd pid %d; stop it first", path,
		 (int)getpid());
	cr_assert_str_eq(err_last(), want);
}

Test(memd, damaged_pools_refused_untouched)
{
	static unsigned char before[64 << 10], after[64 << 10];
	struct memd *n2;
	struct memd_session *s = authed();

	cr_assert_eq(lease(s, U1, 1), 1);
	memd_session_free(s);
	memd_close(m);
	m = NULL;
	static const struct { uint64_t off; unsigned char byte; int st; } cases[] = {
		{ 0, 'X', BTD_ERR_FORMAT },                         /* magic */
		{ 8, 9, BTD_ERR_VERSION },                          /* version */
		{ 40, 1, BTD_ERR_FORMAT },                          /* chunk_size: checksum */
		{ MEMD_LEASE_OFF + 40, 0x5a, BTD_ERR_FORMAT },      /* both lease copies */
		{ MEMD_MAP_OFF + 8 * 2 + 7, 0x55, BTD_ERR_FORMAT }, /* a map entry */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned char save;

		read_head(before, sizeof(before));
		save = before[cases[i].off];
		patch(cases[i].off, &cases[i].byte, 1);
		if (cases[i].off == MEMD_LEASE_OFF + 40)
			patch(MEMD_LEASE_OFF + 256 + 40, &cases[i].byte, 1);
		read_head(before, sizeof(before));
		n2 = NULL;
		cr_assert_eq(node_open(0, &n2), cases[i].st, "case %zu: %s", i, err_last());
		cr_assert_null(n2);
		cr_assert_null(strchr(err_last(), '\n'));
		read_head(after, sizeof(after));
		cr_assert_eq(memcmp(before, after, sizeof(after)), 0, "case %zu wrote", i);
		patch(cases[i].off, &save, 1);
		if (cases[i].off == MEMD_LEASE_OFF + 40)
			patch(MEMD_LEASE_OFF + 256 + 40, &save, 1);
	}
	cr_assert_eq(truncate(path, 5 * PROTO_CHUNK), 0);
	cr_assert_eq(node_open(0, &n2), BTD_ERR_FORMAT);
	cr_assert_eq(truncate(path, 6 * PROTO_CHUNK), 0);
	cr_assert_eq(node_open(0, &m), 0, "%s", err_last());
}

Test(memd, orphan_chunks_freed)
{
	memd_close(m);
	m = NULL;
	uint64_t e = MEMD_MAP_ENTRY(5, 0), junk = 0x4242424242424242;

	/* a crash after taking chunk 3 for a new lease in slot 5, before its record */
	patch(MEMD_MAP_OFF + 3 * 8, &e, 8);
	patch(3 * PROTO_CHUNK + 4096, &junk, 8);
	cr_assert_eq(node_open(0, &m), 0, "%s", err_last());
	cr_assert_eq(memd_check(m), 0, "%s", err_last());
	unsigned char head[MEMD_MAP_OFF + 64];

	read_head(head, sizeof(head));
	memcpy(&e, head + MEMD_MAP_OFF + 3 * 8, 8);
	cr_assert_eq(e, MEMD_MAP_FREE);
	struct memd_session *s = authed();

	cr_assert_eq(lease(s, U1, 4 * PROTO_CHUNK), 1); /* all five: chunk 3 is free again */
	cr_assert_eq(rep.h.type, MSG_LEASE_OK);
	for (uint32_t i = 0; i < 4; i++)
		cr_assert_eq(*(uint64_t *)((unsigned char *)memd_test_image(m, U1, i) + 4096), 0);
	cr_assert_eq(*(uint64_t *)((unsigned char *)memd_test_staging(m, U1) + 4096), 0);
	memd_session_free(s);
}
