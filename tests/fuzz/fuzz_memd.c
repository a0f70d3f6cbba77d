/* fuzz_memd.c: the memory node's fuzzer -- operations decoded from the input thrown at memd_handle over a fresh node pool.
 *
 * NODE.  One node pool of 4 chunks (64 MiB: metadata, and room for a
 * lease of 1 to 3 chunks) in BTD_FUZZ_TMP, else a private directory under
 * /dev/shm, created once per process.  Every input starts from it as
 * created: the file's blocks are punched out (a free chunk is zeros) and
 * the pristine metadata written back, so that an input does the same in
 * one long run as alone.
 *
 * INPUT.  Operations, each an op byte and its operands, until the input
 * ends; op bits 0-2 the kind, bit 3 the session (two, each made with its
 * HELLO when first used and dropped when the node closes it), bit 4 a
 * variant.  Integers little-endian; a missing operand byte reads as 0.
 *
 *   0 raw      len:u16 bytes[len]   a message exactly as given
 *   1 typed    type:u8 bytes[n]     n = msg_size(type) - 16 (at most 255
 *                                   bytes taken from the input, the rest
 *                                   zero): the header made right
 *   2 auth                          AUTH with the right mac (variant: a wrong key)
 *   3 lease    uuid:u8 size:u32     LEASE of uuid (% 4) for size * 4 KiB
 *   4 stage    off:u32 len:u8 bytes[len]   into the session's staging, as
 *                                   an RMA write would (off % PROTO_STAGING)
 *   5 commit   nranges:u16 data_len:u32 depoch:i8   sealed: the sum over
 *                                   what staging holds, epoch = the
 *                                   lease's + 1 + depoch
 *   6 restart                       the node stops and starts again
 *                                   (variant: the next COMMIT crashes it
 *                                   after its redo is recorded)
 *   7 bulk     what:u8 epoch:u8 size:u32   BULK_BEGIN, BULK_END (size *
 *                                   4 KiB) or LIST, by what % 3
 *
 * CHECKS.  After every operation: memd_check (the map against the lease
 * records, memory against the media); every answer at most NET_MSG_MAX
 * bytes, passing msg_check, an ERROR's text NUL-terminated.  With
 * BTD_FUZZ_VERBOSE set the node logs what it does, a line per commit too.  A crash, a
 * sanitizer report (ASan sees the process's heap; every write into the
 * pool goes through memd_chunk, which ends the process on a chunk outside
 * it), or a hang is a finding. */
#include <errno.h>
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
#include "fuzz_pool.h"

#define NODE_SIZE (4 * PROTO_CHUNK)
#define META_BYTES (MEMD_MAP_OFF + 4 * 8)

static char node_path[4096];
static unsigned char pristine[META_BYTES];
static const uint8_t key[] = "fuzz-key-0123456789abcdef";
static const char *input_name = "(input)";

static struct memd *m;
static struct memd_session *sess[2];
static uint8_t nonce_n[2][PROTO_NONCE];
static int lease_of[2] = { -1, -1 }; /* the uuid index each session leased */
static uint64_t epoch_of[4];           /* the last ACKed epoch of each uuid */

static void finding(const char *what)
{
	fprintf(stderr, "fuzz_memd: FINDING in %s: %s\n", input_name, what);
	abort();
}

static void on_evict(void *ctx, struct memd_session *s)
{
	(void)ctx;
	for (int i = 0; i < 2; i++)
		if (sess[i] == s) {
			sess[i] = NULL;
			lease_of[i] = -1;
		}
	memd_session_free(s);
}

static void node_open(void)
{
	struct memd_config cfg = {
		.path = node_path, .size = NODE_SIZE, .key = key, .key_len = sizeof(key) - 1,
		.verbose = getenv("BTD_FUZZ_VERBOSE") ? 1 : -1, /* the node's lines, to debug */
		.ops = { .evict = on_evict },
	};

	if (memd_open(&cfg, &m)) {
		fprintf(stderr, "fuzz_memd: cannot open the node pool %s: %s\n", node_path, err_last());
		finding("the node refused its own pool");
	}
}

static void node_close(void)
{
	for (int i = 0; i < 2; i++) {
		memd_session_free(sess[i]);
		sess[i] = NULL;
		lease_of[i] = -1;
	}
	memd_close(m);
	m = NULL;
}

static char dir[64];

static void remove_dir(void)
{
	unlink(node_path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("BTD_FUZZ_TMP");

	(void)argc;
	(void)argv;
	if (!tmp) {
		strcpy(dir, "/dev/shm/btd-fuzz-memd-XXXXXX");
		if (!mkdtemp(dir)) {
			fprintf(stderr, "fuzz_memd: mkdtemp: %s\n", strerror(errno));
			exit(2);
		}
		tmp = dir;
		atexit(remove_dir);
	}
	snprintf(node_path, sizeof(node_path), "%s/node-%d.pool", tmp, (int)getpid());
	unlink(node_path);
	node_open();
	node_close();
	int fd = open(node_path, O_RDONLY);

	if (fd < 0 || pread(fd, pristine, sizeof(pristine), 0) != (ssize_t)sizeof(pristine)) {
		fprintf(stderr, "fuzz_memd: cannot read %s back\n", node_path);
		exit(2);
	}
	close(fd);
	return 0;
}

static void node_reset(void)
{
	int fd = open(node_path, O_RDWR);

	if (fd < 0 || fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, NODE_SIZE) ||
	    pwrite(fd, pristine, sizeof(pristine), 0) != (ssize_t)sizeof(pristine)) {
		fprintf(stderr, "fuzz_memd: cannot reset %s: %s\n", node_path, strerror(errno));
		exit(2);
	}
	close(fd);
	memset(epoch_of, 0, sizeof(epoch_of));
	node_open();
}

void fuzz_set_input_name(const char *name)
{
	input_name = name;
}

/* ---- decoding ---- */

struct in {
	const uint8_t *p;
	size_t n;
};

static uint64_t take(struct in *in, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++) {
		uint64_t b = in->n ? (in->n--, *in->p++) : 0;

		v |= b << (8 * i);
	}
	return v;
}

static const uint8_t *take_bytes(struct in *in, size_t *len)
{
	const uint8_t *p = in->p;

	*len = *len < in->n ? *len : in->n;
	in->p += *len;
	in->n -= *len;
	return p;
}

static const uint8_t *uuid(int i)
{
	static uint8_t u[4][16] = { { 0xa0 }, { 0xa1 }, { 0xa2 }, { 0xa3 } };

	return u[i & 3];
}

/* ---- running ---- */

static struct memd_session *session(int i)
{
	if (!sess[i]) {
		static unsigned char hello[NET_MSG_MAX];
		struct msg_hello h;

		sess[i] = memd_session_new(m, i ? "peer-1" : "peer-0");
		memd_hello(sess[i], hello);
		memcpy(&h, hello, sizeof(h));
		memcpy(nonce_n[i], h.nonce, PROTO_NONCE);
	}
	return sess[i];
}

/* The node gets one message; its answer is checked. */
static void deliver(int i, const void *msg, size_t len)
{
	static union {
		struct msg_hdr h;
		struct msg_lease_ok lease_ok;
		struct msg_ack ack;
		struct msg_error error;
		unsigned char bytes[2 * NET_MSG_MAX];
	} rep;
	size_t rep_len = 12345;
	struct memd_session *s = session(i);
	int keep = memd_handle(m, s, msg, len, &rep, &rep_len);

	if (rep_len > NET_MSG_MAX)
		finding("an answer longer than NET_MSG_MAX");
	if (rep_len && msg_check(&rep, rep_len))
		finding("a malformed answer");
	if (rep_len && rep.h.type == MSG_ERROR && !memchr(rep.error.text, 0, PROTO_TEXT))
		finding("an ERROR's text without its NUL");
	if (rep_len && rep.h.type == MSG_LEASE_OK) {
		struct msg_lease l;

		memcpy(&l, msg, sizeof(l) < len ? sizeof(l) : len);
		for (int u = 0; u < 4; u++)
			if (!memcmp(l.uuid, uuid(u), 16))
				lease_of[i] = u;
		if (lease_of[i] >= 0)
			epoch_of[lease_of[i]] = rep.lease_ok.epoch;
	}
	if (rep_len && rep.h.type == MSG_ACK && lease_of[i] >= 0)
		epoch_of[lease_of[i]] = rep.ack.epoch;
	if (!keep && sess[i] == s) {
		memd_session_free(s);
		sess[i] = NULL;
		lease_of[i] = -1;
	}
	if (!keep && !rep_len) { /* the crash hook fired: the node died */
		node_close();
		node_open();
	}
	if (memd_check(m)) {
		fprintf(stderr, "fuzz_memd: %s\n", err_last());
		finding("memd_check failed");
	}
}

static void op_typed(int i, struct in *in)
{
	static unsigned char msg[NET_MSG_MAX];
	uint16_t type = (uint16_t)take(in, 1);
	size_t size = msg_size(type), n;

	if (size < sizeof(struct msg_hdr) || size > NET_MSG_MAX)
		size = sizeof(struct msg_hdr);
	n = size - sizeof(struct msg_hdr) < 255 ? size - sizeof(struct msg_hdr) : 255;
	memset(msg, 0, size);
	msg_init((struct msg_hdr *)msg, type, size, 7);
	const uint8_t *b = take_bytes(in, &n);

	memcpy(msg + sizeof(struct msg_hdr), b, n);
	deliver(i, msg, size);
}

static void op_auth(int i, int wrong)
{
	struct msg_auth a = { 0 };
	static const uint8_t bad[] = "not-the-key-of-this-node";
	struct memd_session *s = session(i);

	(void)s;
	msg_init(&a.h, MSG_AUTH, sizeof(a), 1);
	memset(a.nonce, 0x3c, PROTO_NONCE);
	proto_mac(wrong ? bad : key, wrong ? sizeof(bad) - 1 : sizeof(key) - 1, "btd-c", nonce_n[i],
		  a.nonce, a.mac);
	deliver(i, &a, sizeof(a));
}

static void op_lease(int i, struct in *in)
{
	struct msg_lease l = { 0 };
	int u = (int)take(in, 1);

	msg_init(&l.h, MSG_LEASE, sizeof(l), 2);
	memcpy(l.uuid, uuid(u), 16);
	l.base = 0x7e0000000000;
	l.image_size = take(in, 4) * 4096;
	snprintf(l.path, sizeof(l.path), "/fuzz/%d", u & 3);
	deliver(i, &l, sizeof(l));
}

static void op_stage(int i, struct in *in)
{
	uint64_t off = take(in, 4) % PROTO_STAGING;
	size_t len = (size_t)take(in, 1);
	const uint8_t *b = take_bytes(in, &len);
	unsigned char *st = lease_of[i] >= 0 ? memd_test_staging(m, uuid(lease_of[i])) : NULL;

	if (!st)
		return;
	if (len > PROTO_STAGING - off)
		len = (size_t)(PROTO_STAGING - off);
	memcpy(st + off, b, len);
}

static void op_commit(int i, struct in *in)
{
	struct msg_commit c = { 0 };
	unsigned char *st;

	msg_init(&c.h, MSG_COMMIT, sizeof(c), 3);
	c.nranges = take(in, 2);
	c.data_len = take(in, 4);
	int8_t d = (int8_t)take(in, 1);

	c.epoch = (lease_of[i] >= 0 ? epoch_of[lease_of[i]] : 0) + 1 + (uint64_t)(int64_t)d;
	st = lease_of[i] >= 0 ? memd_test_staging(m, uuid(lease_of[i])) : NULL;
	if (st && c.nranges * 16 + c.data_len <= PROTO_STAGING)
		c.sum = batch_sum(st, c.nranges * 16 + c.data_len);
	deliver(i, &c, sizeof(c));
}

static void op_bulk(int i, struct in *in)
{
	struct msg_bulk b = { 0 };
	int what = (int)(take(in, 1) % 3);

	b.epoch = take(in, 1);
	b.image_size = take(in, 4) * 4096;
	if (what == 2) {
		struct msg_list l;

		msg_init(&l.h, MSG_LIST, sizeof(l), 6);
		deliver(i, &l, sizeof(l));
		return;
	}
	msg_init(&b.h, what ? MSG_BULK_END : MSG_BULK_BEGIN, sizeof(b), 5);
	deliver(i, &b, sizeof(b));
}

static void run(struct in *in)
{
	while (in->n) {
		int op = (int)take(in, 1), i = (op >> 3) & 1, variant = (op >> 4) & 1;

		switch (op & 7) {
		case 0: {
			size_t len = (size_t)take(in, 2) % (NET_MSG_MAX + 64);
			const uint8_t *b = take_bytes(in, &len);
			static unsigned char msg[NET_MSG_MAX + 64];

			memcpy(msg, b, len);
			deliver(i, msg, len);
			break;
		}
		case 1: op_typed(i, in); break;
		case 2: op_auth(i, variant); break;
		case 3: op_lease(i, in); break;
		case 4: op_stage(i, in); break;
		case 5: op_commit(i, in); break;
		case 6:
			node_close();
			node_open();
			memd_test_crash_after_redo(m, variant);
			break;
		case 7: op_bulk(i, in); break;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };

	node_reset();
	run(&in);
	node_close();
	return 0;
}

void fuzz_describe(int fd, const uint8_t *data, size_t size)
{
	static const char *const names[] = { "raw", "typed", "auth", "lease", "stage", "commit",
					     "restart", "bulk/list" };
	struct in in = { data, size };
	char line[128];

	while (in.n) {
		int op = (int)take(&in, 1);
		size_t n = 0;
		uint64_t a = 0;

		switch (op & 7) {
		case 0: n = (size_t)take(&in, 2) % (NET_MSG_MAX + 64); a = n; break;
		case 1: a = take(&in, 1);
			n = msg_size((uint16_t)a) > sizeof(struct msg_hdr) ?
			    msg_size((uint16_t)a) - sizeof(struct msg_hdr) : 0;
			n = n < 255 ? n : 255;
			break;
		case 3: a = take(&in, 1) & 3; take(&in, 4); break;
		case 4: a = take(&in, 4) % PROTO_STAGING; n = (size_t)take(&in, 1); break;
		case 5: a = take(&in, 2); take(&in, 5); break;
		case 7: a = take(&in, 1) % 3; take(&in, 5); break;
		}
		take_bytes(&in, &n);
		snprintf(line, sizeof(line), "%s[s%d%s %llu] ", names[op & 7], (op >> 3) & 1,
			 (op >> 4) & 1 ? " variant" : "", (unsigned long long)a);
		if (write(fd, line, strlen(line)) < 0)
			return;
	}
	if (write(fd, "\n", 1) < 0)
		return;
}

int fuzz_write_pool(const uint8_t *data, size_t size, const char *out)
{
	LLVMFuzzerTestOneInput(data, size);
	char cmd[8400];

	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", node_path, out);
	return system(cmd) ? (errno = EIO, -1) : 0;
}
