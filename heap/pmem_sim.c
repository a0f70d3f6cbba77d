/* pmem_sim.c: the simulated power failure of the crash tests -- a pmem
 * decorator that knows what the media would hold.
 *
 * A pool on tmpfs survives a process crash whole: every store is in the
 * file the moment it is made, flushed or not.  So a `kill -9` test cannot
 * tell a correct flush-and-fence protocol from one that forgot a flush: it
 * passes by luck.  This backend takes the luck away.  Installed with
 * pmem_wrap over the backend pmem_select chooses (BTD_CRASH_SIM=seed, at
 * library start), it keeps a second image of the pool, the MEDIA: what
 * would have reached persistent memory.
 *
 *   wrap(base, len)   the media starts as the file is: a copy of what the
 *                     file holds (its data extents, SEEK_DATA/SEEK_HOLE:
 *                     a sparse 1 GiB pool costs what it holds)
 *   flush(p, n)       the cache lines of [p, p+n) are recorded as PENDING
 *                     for the calling thread, with their contents at the
 *                     time of the flush (a later store to the line is not
 *                     in the write-back)
 *   drain()           the calling thread's pending lines go to the media:
 *                     durable.  A fence orders its own CPU's flushes, and
 *                     the msync backend syncs its own thread's ranges: a
 *                     thread that flushes and counts on another's drain is
 *                     caught
 *   crash point       the power fails: every 8-byte word of the mapping
 *                     that differs from the media -- stored and never
 *                     flushed, or flushed and not drained -- keeps its new
 *                     value or gets the media's old value back, by a coin
 *                     that the seed and the word's offset throw; the old
 *                     values are written into the MAP_SHARED mapping,
 *                     which is the file.  Then the process dies (crash.c).
 *
 * Every verb also goes to the backend underneath, so the pool is persisted
 * as it would be without the simulation.  An 8-byte word is the unit, as it
 * is of failure atomicity on real persistent memory: a word is never torn,
 * a cache line may be.  A missing flush or fence in btd then shows up as a
 * failed check in about half the seeds, not as luck.
 *
 * WHAT IT DOES NOT MODEL
 *   - File system calls take effect when they return, durably: a page that
 *     fallocate punched reads as zero after the crash, and so does a page
 *     fallocate backs.  The media follows the file's holes at the crash and
 *     at every drain after the file's block count changed (a stat per
 *     drain; reading the holes each time would cost a walk of the file).
 *     So a page punched and backed again with no drain in between, or
 *     between two drains that see the same block count (pages punched and
 *     as many backed), keeps its old media contents: stale data in a free
 *     page, as real hardware shows for a free page never punched -- btd
 *     cannot tell the two apart, and must not need to.  The punches of btd
 *     are all of free data pages, or of everything (a rootless pool's
 *     reset, followed by a header write: a drain).  A journalled file
 *     system that loses a punch at a power failure is not modelled.
 *   - Two threads flushing one line before either drains: the line is the
 *     last flusher's, and only its drain makes it durable (on hardware the
 *     first write-back would count too).
 *   - Threads racing the crash.  At the crash point the crashing thread
 *     takes the lock of this backend, for good -- no other thread
 *     completes a flush or a drain after that, so none can report a commit
 *     that the failure undoes -- and stops every other thread
 *     (crash_stop_others) before it judges a word: what they stored until
 *     then is judged like any store.  A thread that has the stopping
 *     signal blocked runs on (it is waited for 200 ms), and may see the
 *     old values come back under it.
 *   - Stores through another mapping of the file, or write(2) to it, are
 *     taken as durable at once; only stores through the mapping are judged.
 *   - Values in between: a line the cache writes back early and that is
 *     stored to again comes back as its durable value or its newest, never
 *     as the one written back (an unflushed store that reached the media
 *     early is the coin that keeps the new value).
 *   - Media errors, torn words, reordering within a word.
 *
 * One pool at a time, the process's: a new pmem_select (the next pool
 * opened) starts a new media image.  The backend "none" (a private view)
 * is never wrapped: nothing reaches its file. */
#include "pmem_sim.h"

#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/crash.h"
#include "../common/log.h"
#include "../common/settings.h"
#include "pmem.h"

#define LINE 64u
#define PAGE 4096u

static struct sim {
	pthread_mutex_t lock;
	uint64_t seed;
	int failed;                /* the power failed: pass through from now on */
	struct pmem_backend inner;
	char *base;                /* the mapping, NULL when none is wrapped */
	size_t len;
	int fd;                    /* the mapped file, for its holes */
	long long blocks;          /* its st_blocks when the holes were last read */
	char *media;               /* len bytes: what the media holds */
	char *pend;                /* len bytes: the pending lines' contents */
	uint64_t *pbits;           /* a bit per pending line */
	uint32_t *powner;          /* per line: the thread it is pending for */
	size_t plo, phi;           /* pending lines are within [plo, phi) */
} sim = { .lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1 };

static void *anon(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static size_t pbits_bytes(size_t len)
{
	return (len / LINE + 63) / 64 * 8;
}

/* The calling thread, as a pending line's owner: 1, 2, ... */
static BTD_TLS uint32_t my_id;
static uint32_t ids;

static uint32_t me(void)
{
	if (!my_id)
		my_id = __atomic_add_fetch(&ids, 1, __ATOMIC_RELAXED);
	return my_id;
}

/* ---- the file behind the mapping ---------------------------------------- */

static unsigned long long hex(const char **s)
{
	unsigned long long v = 0;

	for (;; (*s)++) {
		unsigned c = (unsigned char)**s | 0x20;

		if (c >= '0' && c <= '9')
			v = v * 16 + (c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (c - 'a' + 10);
		else
			return v;
	}
}

/* The path of the file mapped at base, from one line of /proc/self/maps:
 * "start-end perms offset dev inode path".  0, or -1 when none is found. */
static int maps_path(const void *base, char *path, size_t n, unsigned long long *ino)
{
	char buf[4096];
	size_t have = 0;
	ssize_t got;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC), found = -1;

	if (fd < 0)
		return -1;
	while (found && (got = read(fd, buf + have, sizeof(buf) - 1 - have)) > 0) {
		char *l = buf, *end = buf + have + got, *nl;

		while (found && (nl = memchr(l, '\n', (size_t)(end - l)))) {
			const char *c = l;

			*nl = '\0';
			if (hex(&c) == (uintptr_t)base) {
				for (int field = 0; field < 4; field++) { /* to the inode */
					while (*c && *c != ' ')
						c++;
					while (*c == ' ')
						c++;
				}
				*ino = 0;
				while (*c >= '0' && *c <= '9')
					*ino = *ino * 10 + (unsigned)(*c++ - '0');
				while (*c == ' ')
					c++;
				if (*c == '/' && strlen(c) < n) {
					memcpy(path, c, strlen(c) + 1);
					found = 0;
				}
			}
			l = nl + 1;
		}
		have = (size_t)(end - l);
		memmove(buf, l, have);
		if (have == sizeof(buf) - 1)
			have = 0; /* a line longer than the buffer: not ours */
	}
	close(fd);
	return found;
}

/* The file's extents in [0, len): fn(off, n, data) for each, in order. */
static void extents(struct sim *s, void (*fn)(struct sim *s, size_t off, size_t n, int data))
{
	size_t off = 0;

	while (off < s->len) {
		off_t d = lseek(s->fd, (off_t)off, SEEK_DATA);
		size_t data = d < 0 || (size_t)d > s->len ? s->len : (size_t)d;

		if (data > off)
			fn(s, off, data - off, 0);
		if (data >= s->len)
			break;
		off_t h = lseek(s->fd, (off_t)data, SEEK_HOLE);
		size_t hole = h < 0 || (size_t)h > s->len ? s->len : (size_t)h;

		fn(s, data, hole - data, 1);
		off = hole;
	}
}

/* Zero media[off, off + n): whole pages are dropped, not written. */
static void media_zero(struct sim *s, size_t off, size_t n)
{
	size_t lo = (off + PAGE - 1) / PAGE * PAGE, hi = (off + n) / PAGE * PAGE;

	if (lo >= hi) {
		memset(s->media + off, 0, n);
		return;
	}
	memset(s->media + off, 0, lo - off);
	madvise(s->media + lo, hi - lo, MADV_DONTNEED);
	memset(s->media + hi, 0, off + n - hi);
}

static void copy_extent(struct sim *s, size_t off, size_t n, int data)
{
	if (data)
		memcpy(s->media + off, s->base + off, n);
}

static void zero_hole(struct sim *s, size_t off, size_t n, int data)
{
	if (!data)
		media_zero(s, off, n);
}

/* A hole in the file is durable zeros (see WHAT IT DOES NOT MODEL).  Read
 * again only when the file's allocation changed: a stat per drain. */
static void follow_holes(struct sim *s, int always)
{
	struct stat st;

	if (fstat(s->fd, &st))
		return;
	if (!always && (long long)st.st_blocks == s->blocks)
		return;
	s->blocks = (long long)st.st_blocks;
	extents(s, zero_hole);
}

static void detach(struct sim *s)
{
	if (!s->base)
		return;
	munmap(s->media, s->len);
	munmap(s->pend, s->len);
	munmap(s->pbits, pbits_bytes(s->len));
	munmap(s->powner, s->len / LINE * sizeof(*s->powner));
	close(s->fd);
	s->fd = -1;
	s->base = NULL;
	s->len = 0;
}

static BTD_NORETURN void attach_failed(const void *base, const char *why)
{
	log_msg(LOG_ERROR, "BTD_CRASH_SIM: cannot simulate power failures of the pool "
		"mapped at %p: %s; exiting (status %d)", base, why, SETTINGS_STRICT_EXIT);
	_exit(SETTINGS_STRICT_EXIT);
}

static void attach(struct sim *s, struct pmem_backend inner, void *base, size_t len)
{
	char path[4096];
	unsigned long long ino;
	struct stat st;

	if (maps_path(base, path, sizeof(path), &ino))
		attach_failed(base, "no file is mapped there");
	s->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0 || fstat(s->fd, &st) || (unsigned long long)st.st_ino != ino)
		attach_failed(base, "its file cannot be opened again");
	if ((size_t)st.st_size < len)
		attach_failed(base, "its file is shorter than the mapping");
	s->media = anon(len);
	s->pend = anon(len);
	s->pbits = anon(pbits_bytes(len));
	s->powner = anon(len / LINE * sizeof(*s->powner));
	if (!s->media || !s->pend || !s->pbits || !s->powner)
		attach_failed(base, "no memory for the media image");
	s->inner = inner;
	s->base = base;
	s->len = len;
	s->plo = SIZE_MAX;
	s->phi = 0;
	s->blocks = (long long)st.st_blocks;
	extents(s, copy_extent);
	log_msg(LOG_INFO, "BTD_CRASH_SIM=%llu: simulating power failures of %s",
		(unsigned long long)s->seed, path);
}

/* ---- the verbs ---------------------------------------------------------- */

static int inside(const struct sim *s, const void *p, size_t n)
{
	uintptr_t off = (uintptr_t)p - (uintptr_t)s->base; /* huge below the base */

	return s->base && !s->failed && off < s->len && n <= s->len - off;
}

/* Record the lines of [p, p+n) as pending for this thread, with their
 * contents now. */
static void record(struct sim *s, const void *p, size_t n)
{
	uint32_t id = me();

	if (!n)
		return;
	pthread_mutex_lock(&s->lock);
	if (inside(s, p, n)) {
		size_t lo = (size_t)((const char *)p - s->base) / LINE;
		size_t hi = ((size_t)((const char *)p - s->base) + n + LINE - 1) / LINE;

		memcpy(s->pend + lo * LINE, s->base + lo * LINE, (hi - lo) * LINE);
		for (size_t l = lo; l < hi; l++) {
			s->pbits[l / 64] |= (uint64_t)1 << (l % 64);
			s->powner[l] = id;
		}
		s->plo = lo < s->plo ? lo : s->plo;
		s->phi = hi > s->phi ? hi : s->phi;
	}
	pthread_mutex_unlock(&s->lock);
}

static void sim_flush(void *ctx, const void *p, size_t n)
{
	struct sim *s = ctx;

	s->inner.ops->flush(s->inner.ctx, p, n);
	record(s, p, n);
}

static void sim_drain(void *ctx)
{
	struct sim *s = ctx;

	uint32_t id = me();

	s->inner.ops->drain(s->inner.ctx);
	pthread_mutex_lock(&s->lock);
	if (s->base && !s->failed) {
		size_t lo = SIZE_MAX, hi = 0; /* what stays pending: other threads' */

		for (size_t w = s->plo / 64; s->plo < s->phi && w <= (s->phi - 1) / 64; w++) {
			uint64_t bits = s->pbits[w];

			while (bits) {
				size_t l = w * 64 + (unsigned)__builtin_ctzll(bits);

				bits &= bits - 1;
				if (s->powner[l] != id) {
					lo = l < lo ? l : lo;
					hi = l + 1;
					continue;
				}
				s->pbits[w] &= ~((uint64_t)1 << (l % 64));
				memcpy(s->media + l * LINE, s->pend + l * LINE, LINE);
			}
		}
		s->plo = lo;
		s->phi = hi;
		follow_holes(s, 0);
	}
	pthread_mutex_unlock(&s->lock);
}

static void *sim_memcpy_flush(void *ctx, void *dst, const void *src, size_t n)
{
	struct sim *s = ctx;

	s->inner.ops->memcpy_flush(s->inner.ctx, dst, src, n);
	record(s, dst, n);
	return dst;
}

static const struct pmem_ops sim_ops = {
	"sim", sim_flush, sim_drain, sim_memcpy_flush,
};

/* pmem_wrap's decorator: a new mapping gets a new media image. */
static struct pmem_backend sim_wrap(struct pmem_backend inner, void *base, size_t len)
{
	struct sim *s = &sim;

	pthread_mutex_lock(&s->lock);
	detach(s);
	s->failed = 0;
	if (base)
		attach(s, inner, base, len);
	pthread_mutex_unlock(&s->lock);
	return base ? (struct pmem_backend){ &sim_ops, s } : inner;
}

/* ---- the power failure -------------------------------------------------- */

/* The coin of the word at off: splitmix64 of the seed and the offset. */
static int keeps_new(uint64_t seed, size_t off)
{
	uint64_t x = seed ^ ((uint64_t)off * 0x9e3779b97f4a7c15u);

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
	return (int)((x ^ (x >> 31)) & 1);
}

static uint64_t judged, reverted_words;

/* Judge the words of one data extent, a page at a time. */
static void judge_extent(struct sim *s, size_t off, size_t n, int data)
{
	if (!data)
		return;
	for (size_t pg = off; pg < off + n; pg += PAGE) {
		size_t len = off + n - pg < PAGE ? off + n - pg : PAGE;
		uint64_t *m = (uint64_t *)(s->base + pg);
		const uint64_t *d = (const uint64_t *)(s->media + pg);

		if (!memcmp(m, d, len))
			continue;
		for (size_t i = 0; i < len / 8; i++) {
			if (m[i] == d[i])
				continue;
			judged++;
			if (!keeps_new(s->seed, pg + i * 8)) {
				__atomic_store_n(&m[i], d[i], __ATOMIC_RELAXED);
				reverted_words++;
			}
		}
	}
}

/* Judge every word the file holds; the caller holds the lock. */
static uint64_t power_fail_locked(struct sim *s, uint64_t *reverted)
{
	judged = reverted_words = 0;
	/* The mapping may be gone (a pool closed, an open refused): then
	 * nothing of it can be lost. */
	if (s->base && !s->failed && !msync(s->base, s->len, MS_ASYNC)) {
		follow_holes(s, 1);
		extents(s, judge_extent);
		s->failed = 1;
	}
	if (reverted)
		*reverted = reverted_words;
	return judged;
}

uint64_t pmem_sim_power_fail(uint64_t *reverted)
{
	pthread_mutex_lock(&sim.lock);
	uint64_t n = power_fail_locked(&sim, reverted);

	pthread_mutex_unlock(&sim.lock);
	return n;
}

/* The crash action: no other thread completes a flush or a drain from
 * here on (the lock stays taken until the SIGKILL), and none runs at all
 * while its words are judged (crash_stop_others, after the lock: a thread
 * stopped while holding it would hold it for ever). */
static void power_fail_and_hold(void)
{
	uint64_t reverted;

	pthread_mutex_lock(&sim.lock);
	crash_stop_others();
	uint64_t n = power_fail_locked(&sim, &reverted);

	log_msg(LOG_INFO, "BTD_CRASH_SIM=%llu: %llu words were not durable, %llu got their "
		"old value back", (unsigned long long)sim.seed, (unsigned long long)n,
		(unsigned long long)reverted);
}

void pmem_sim_install(uint64_t seed)
{
	pthread_mutex_lock(&sim.lock);
	sim.seed = seed;
	pthread_mutex_unlock(&sim.lock);
	pmem_wrap(sim_wrap);
}

void pmem_sim_remove(void)
{
	pmem_wrap(NULL);
	pthread_mutex_lock(&sim.lock);
	detach(&sim);
	pthread_mutex_unlock(&sim.lock);
}

void pmem_sim_start(void)
{
	uint64_t seed;

	if (!crash_sim_seed(&seed))
		return;
	pmem_sim_install(seed);
	crash_set_action(power_fail_and_hold);
}
