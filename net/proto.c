/* proto.c: the control protocol's checks, checksum and keys (see proto.h).
 *
 * HMAC-SHA256 comes from OpenSSL's libcrypto, loaded with dlopen for the
 * reason libfabric is (fabric.c): this code is linked into the preloaded
 * library, and only the processes that replicate should pay for it. */
#include "proto.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "btd.h"
#include "../common/error.h"

/* ---- message checks ---- */

#define LIST_OK_HEAD offsetof(struct msg_list_ok, lease)

size_t msg_size(uint16_t type)
{
	switch (type) {
	case MSG_HELLO: return sizeof(struct msg_hello);
	case MSG_AUTH: return sizeof(struct msg_auth);
	case MSG_AUTH_OK: return sizeof(struct msg_auth_ok);
	case MSG_LEASE: return sizeof(struct msg_lease);
	case MSG_LEASE_OK: return sizeof(struct msg_lease_ok);
	case MSG_COMMIT: return sizeof(struct msg_commit);
	case MSG_BULK_BEGIN:
	case MSG_BULK_END: return sizeof(struct msg_bulk);
	case MSG_ACK: return sizeof(struct msg_ack);
	case MSG_LIST: return sizeof(struct msg_list);
	case MSG_LIST_OK: return LIST_OK_HEAD;
	case MSG_ERROR: return sizeof(struct msg_error);
	default: return 0;
	}
}

/* A fixed-size text field must end inside itself. */
static int has_nul(const char *s, size_t n)
{
	return memchr(s, '\0', n) != NULL;
}

int msg_check(const void *msg, size_t len)
{
	struct msg_hdr h;

	if (len < sizeof(h))
		return err_set(BTD_ERR_INVAL, "message of %zu bytes: shorter than its header", len);
	if (len > NET_MSG_MAX)
		return err_set(BTD_ERR_INVAL, "message of %zu bytes: longer than %d", len,
			       NET_MSG_MAX);
	memcpy(&h, msg, sizeof(h)); /* any alignment */
	if (h.magic != PROTO_MAGIC)
		return err_set(BTD_ERR_INVAL, "message with magic 0x%x: not btd's protocol",
			       h.magic);
	if (h.version != PROTO_VERSION)
		return err_set(BTD_ERR_VERSION, "message of protocol version %u (this btd speaks "
			       "%u)", (unsigned)h.version, (unsigned)PROTO_VERSION);
	size_t want = msg_size(h.type);

	if (!want)
		return err_set(BTD_ERR_INVAL, "message of unknown type %u", (unsigned)h.type);
	if (h.len != len)
		return err_set(BTD_ERR_INVAL, "message of type %u says %u bytes, %zu arrived",
			       (unsigned)h.type, h.len, len);
	if (h.type == MSG_LIST_OK) {
		struct msg_list_ok head;
		size_t body = len - LIST_OK_HEAD;

		if (len < LIST_OK_HEAD || body % sizeof(struct msg_lease_info))
			return err_set(BTD_ERR_INVAL, "LIST_OK of %zu bytes: not a head and whole "
				       "entries", len);
		memcpy(&head, msg, LIST_OK_HEAD);
		if (head.count != body / sizeof(struct msg_lease_info))
			return err_set(BTD_ERR_INVAL, "LIST_OK counts %u leases but carries %zu",
				       head.count, body / sizeof(struct msg_lease_info));
		return 0;
	}
	if (len != want)
		return err_set(BTD_ERR_INVAL, "message of type %u has %zu bytes, not %zu",
			       (unsigned)h.type, len, want);
	/* Fields whose bounds hold for every use of the type. */
	const char *m = msg;

	switch (h.type) {
	case MSG_LEASE:
		if (!has_nul(m + offsetof(struct msg_lease, path), PROTO_PATH))
			return err_set(BTD_ERR_INVAL, "LEASE with an unterminated path");
		break;
	case MSG_LEASE_OK: {
		uint32_t n;

		memcpy(&n, m + offsetof(struct msg_lease_ok, nchunks), sizeof(n));
		if (n > PROTO_MAX_CHUNKS)
			return err_set(BTD_ERR_INVAL, "LEASE_OK with %u chunks (at most %d)", n,
				       PROTO_MAX_CHUNKS);
		break;
	}
	case MSG_ERROR:
		if (!has_nul(m + offsetof(struct msg_error, text), PROTO_TEXT))
			return err_set(BTD_ERR_INVAL, "ERROR with an unterminated text");
		break;
	}
	return 0;
}

/* ---- the batch checksum ----
 *
 * Four independent lanes take a 64-bit word each per 32-byte block (the
 * multiplies overlap), each step a bijection of the lane for a given word
 * and of the word for a given lane, so one changed word always changes
 * its lane, and the final mix is a bijection of each lane in turn: any
 * single changed block changes the sum.  Loads are memcpy: any alignment. */

static inline uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static inline uint64_t load64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint64_t round64(uint64_t acc, uint64_t w)
{
	acc += w * 0xc2b2ae3d27d4eb4full;
	acc = (acc << 31) | (acc >> 33);
	return acc * 0x9e3779b185ebca87ull;
}

uint64_t batch_sum(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t lane[4] = {
		0x243f6a8885a308d3ull, 0x13198a2e03707344ull,
		0xa4093822299f31d0ull, 0x082efa98ec4e6c89ull,
	};
	size_t i = 0;

	/* The body: one multiply-rotate-multiply round per word (xxHash64's
	 * round), four independent lanes, so that a 64 KiB batch sums at
	 * memory speed (3.7 GB/s with a full mix per word was a third of
	 * a 64 KiB commit's cost, paid at both ends); the full mix finishes. */
	for (; i + 32 <= n; i += 32)
		for (int k = 0; k < 4; k++)
			lane[k] = round64(lane[k], load64(s + i + 8 * k));
	if (i < n) {
		unsigned char tail[32] = { 0 };

		memcpy(tail, s + i, n - i);
		for (int k = 0; k < 4; k++)
			lane[k] = round64(lane[k], load64(tail + 8 * k));
	}
	/* The length joins too: a tail of zeroes differs from no tail. */
	uint64_t h = mix((uint64_t)n ^ 0x452821e638d01377ull);

	for (int k = 0; k < 4; k++)
		h = mix(h ^ lane[k]);
	return h;
}

/* ---- HMAC-SHA256, through a dlopen'ed libcrypto ---- */

static struct {
	__typeof__(HMAC) *hmac;
	__typeof__(EVP_sha256) *sha256;
	__typeof__(CRYPTO_memcmp) *memcmp;
} crypto;

static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;
static char crypto_why[200];

static void crypto_load_once(void)
{
	void *h = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		const char *e = dlerror();

		strncpy(crypto_why, e ? e : "dlopen failed", sizeof(crypto_why) - 1);
		return;
	}
	/* Without OPENSSL_INIT_NO_ATEXIT, libcrypto frees its state in an
	 * atexit handler, which runs before btd's destructor sends the last
	 * durability point (and its handshake's HMAC) to the replicas: a
	 * crash at every exit. */
	int (*init)(uint64_t, const void *) = (int (*)(uint64_t, const void *))dlsym(
		h, "OPENSSL_init_crypto");

	if (!init || !init(0x00080000L /* OPENSSL_INIT_NO_ATEXIT */, NULL)) {
		strcpy(crypto_why, "OPENSSL_init_crypto is missing or failed");
		return;
	}
	*(void **)&crypto.sha256 = dlsym(h, "EVP_sha256");
	*(void **)&crypto.memcmp = dlsym(h, "CRYPTO_memcmp");
	*(void **)&crypto.hmac = dlsym(h, "HMAC");
	if (!crypto.hmac || !crypto.sha256 || !crypto.memcmp) {
		strcpy(crypto_why, "HMAC, EVP_sha256 or CRYPTO_memcmp is missing");
		crypto.hmac = NULL;
	}
}

static int crypto_load(void)
{
	pthread_once(&crypto_once, crypto_load_once);
	if (!crypto.hmac) {
		err_set(BTD_ERR_IO, "cannot load libcrypto.so.3 (%s): install libssl3", crypto_why);
		return -1;
	}
	return 0;
}

int proto_hmac(const uint8_t *key, size_t key_len, const void *data, size_t len,
	       uint8_t out[PROTO_MAC])
{
	unsigned int n = 0;

	if (crypto_load())
		return -1;
	if (key_len > 4096 ||
	    !crypto.hmac(crypto.sha256(), key, (int)key_len, data, len, out, &n) ||
	    n != PROTO_MAC) {
		err_set(BTD_ERR_IO, "HMAC-SHA256 failed in libcrypto");
		return -1;
	}
	return 0;
}

int proto_mac(const uint8_t *key, size_t key_len, const char *tag,
	      const uint8_t a[PROTO_NONCE], const uint8_t b[PROTO_NONCE],
	      uint8_t out[PROTO_MAC])
{
	uint8_t buf[16 + 2 * PROTO_NONCE];
	size_t t = strlen(tag);

	if (t > 16) {
		err_set(BTD_ERR_INVAL, "MAC tag '%s' is too long", tag);
		return -1;
	}
	memcpy(buf, tag, t);
	memcpy(buf + t, a, PROTO_NONCE);
	memcpy(buf + t + PROTO_NONCE, b, PROTO_NONCE);
	return proto_hmac(key, key_len, buf, t + 2 * PROTO_NONCE, out);
}

int proto_mac_equal(const uint8_t a[PROTO_MAC], const uint8_t b[PROTO_MAC])
{
	if (!crypto_load())
		return crypto.memcmp(a, b, PROTO_MAC) == 0;
	/* Without libcrypto there is no MAC to compare, but stay constant-time. */
	volatile uint8_t d = 0;

	for (int k = 0; k < PROTO_MAC; k++)
		d |= a[k] ^ b[k];
	return d == 0;
}

int proto_random(void *p, size_t n)
{
	unsigned char *s = p;

	while (n) {
		ssize_t got = getrandom(s, n, 0);

		if (got < 0) {
			if (errno == EINTR)
				continue;
			err_set(BTD_ERR_IO, "getrandom: %s", err_text(errno));
			return -1;
		}
		s += got;
		n -= (size_t)got;
	}
	return 0;
}

/* ---- key files ---- */

#define KEY_MIN 16
#define KEY_MAX 4096

/* The formatter has no %o. */
static const char *octal(unsigned v, char buf[12])
{
	char *p = buf + 11;

	*p = '\0';
	do {
		*--p = (char)('0' + (v & 7));
		v >>= 3;
	} while (v && p > buf);
	return p;
}

int proto_key_load(const char *path, uint8_t *key, size_t cap, size_t *len)
{
	unsigned char buf[KEY_MAX + 2];
	struct stat st;
	size_t n = 0;
	int ret = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return err_set(err_status(errno), "cannot open key file %s: %s", path,
			       err_text(errno));
	if (fstat(fd, &st)) {
		ret = err_set(err_status(errno), "cannot stat key file %s: %s", path,
			      err_text(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = err_set(BTD_ERR_INVAL, "key file %s is not a regular file", path);
		goto out;
	}
	if (st.st_mode & 077) {
		char o[12];

		ret = err_set(BTD_ERR_PERM, "key file %s is readable by others (mode %s): "
			      "chmod 600 %s", path, octal(st.st_mode & 07777, o), path);
		goto out;
	}
	while (n < sizeof(buf)) {
		ssize_t got = read(fd, buf + n, sizeof(buf) - n);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			ret = err_set(err_status(errno), "cannot read key file %s: %s", path,
				      err_text(errno));
			goto out;
		}
		if (!got)
			break;
		n += (size_t)got;
	}
	if (n && buf[n - 1] == '\n')
		n--;
	if (n < KEY_MIN || n > KEY_MAX) {
		ret = err_set(BTD_ERR_INVAL, "key file %s holds %s%zu bytes: a key is %d to %d "
			      "bytes", path, n > KEY_MAX ? "more than " : "",
			      n > KEY_MAX ? (size_t)KEY_MAX : n, KEY_MIN, KEY_MAX);
		goto out;
	}
	if (n > cap) {
		ret = err_set(BTD_ERR_INVAL, "key file %s: a key of %zu bytes, room for %zu", path,
			      n, cap);
		goto out;
	}
	memcpy(key, buf, n);
	*len = n;
out:
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	return ret;
}
