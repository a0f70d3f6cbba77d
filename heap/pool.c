/* pool.c: create, validate, map, grow and close a pool file (see pool.h). */
#include "pool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "../common/crash.h"
#include "../common/error.h"
#include "../common/log.h"
#include "btd.h"
#include "pmem.h"

#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif
#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif

/* Where new pools are placed: between 104 and 112 TiB, far from where
 * Linux puts programs (0x55...), their heaps and their mmaps (top down from
 * 0x7f...), and above the 4 TiB that AddressSanitizer's allocator takes at
 * 0x600000000000 (so that ASan builds can open the same pools).  The slot
 * is drawn from the pool's UUID, so that two pools rarely collide, and
 * probed onwards when taken. */
#define POOL_ADDR_LO ((uintptr_t)0x680000000000)
#define POOL_ADDR_HI ((uintptr_t)0x700000000000)
#define POOL_ADDR_STEP ((uintptr_t)1 << 30)
#define POOL_GROW_MIN ((size_t)256) /* pages: 1 MiB */

static int open_private; /* pool_set_private */

/* Fletcher-64 over 32-bit words, as PMDK checksums its headers. */
uint64_t pool_checksum(const void *buf, size_t n)
{
	const uint32_t *w = buf;
	uint64_t lo = 0, hi = 0;

	for (size_t i = 0; i < n / 4; i++) {
		lo = (lo + w[i]) % 0xffffffffu;
		hi = (hi + lo) % 0xffffffffu;
	}
	return hi << 32 | lo;
}

static size_t round_up(size_t x, size_t a)
{
	return (x + a - 1) / a * a;
}

int pool_layout(size_t size, int logs, struct pool_header *h)
{
	size_t fixed = POOL_ROOTS_OFF + POOL_ROOTS_MAX * sizeof(struct pool_root);

	h->log_off = h->log_slots = h->log_bytes = 0;
	if (logs) {
		/* POOL_LOG_BYTES each, but the logs take at most a sixteenth of
		 * a small pool: a power of two, at least a page. */
		size_t each = POOL_LOG_BYTES;

		while (each > POOL_PAGE && (size_t)POOL_LOG_SLOTS * each > size / 16)
			each /= 2;
		h->log_off = round_up(fixed, POOL_PAGE);
		h->log_slots = POOL_LOG_SLOTS;
		h->log_bytes = each;
		fixed = h->log_off + (size_t)POOL_LOG_SLOTS * each;
	}
	/* Per data page: the page, its descriptor, its bitmap bytes. */
	size_t per_page = POOL_PAGE + sizeof(uint64_t) + POOL_PAGE / POOL_GRANULE / 8;

	if (size < fixed + 2 * POOL_DATA_ALIGN)
		return -1;
	size_t npages = (size - fixed - 2 * POOL_DATA_ALIGN) / per_page;

	for (; npages > 0; npages--) {
		size_t desc_off = round_up(fixed, POOL_PAGE);
		size_t bitmap_off = round_up(desc_off + npages * sizeof(uint64_t), POOL_PAGE);
		size_t data_off = round_up(bitmap_off + npages * POOL_PAGE / POOL_GRANULE / 8,
					   POOL_DATA_ALIGN);

		if (data_off + npages * POOL_PAGE <= size) {
			h->desc_off = desc_off;
			h->bitmap_off = bitmap_off;
			h->data_off = data_off;
			h->npages = npages;
			h->size = size;
			return 0;
		}
	}
	return -1;
}

static void header_seal(struct pool_header *h)
{
	h->checksum = pool_checksum(h, offsetof(struct pool_header, checksum));
}

static int header_valid(const struct pool_header *h)
{
	return !memcmp(h->magic, POOL_MAGIC, 8) &&
	       h->checksum == pool_checksum(h, offsetof(struct pool_header, checksum));
}

void pool_header_write(struct pool *p)
{
	unsigned slot = p->hdr_slot ^ 1;
	struct pool_header *dst = (struct pool_header *)(p->base + slot * POOL_HEADER_SLOT);

	p->hdr.epoch++;
	p->marked_open = 1; /* p->hdr says open until pool_mark_clean */
	header_seal(&p->hdr);
	pmem_copy_flush(dst, &p->hdr, sizeof(p->hdr), PMEM_WHY_HEADER);
	CRASH_POINT(CRASH_HEADER_WRITE);
	pmem_drain_why(PMEM_WHY_HEADER);
	p->hdr_slot = slot;
}

/* THE DESCRIPTOR.  Once the pool is mapped its descriptor is closed: a
 * program must see only the descriptors it opened (an extra one shows in
 * /proc/self/fd, and closefrom() in a daemon could close it and hand its
 * number to one of the program's own files).  The exclusive flock stays:
 * it belongs to the open file description, which the mapping keeps alive
 * until it is unmapped.  Growing or resetting the pool opens the file
 * again by path, and checks that it is still the same file. */
static int pool_reopen(struct pool *p)
{
	struct stat st;
	int fd = open(p->path, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return err_set(err_status(errno), "cannot reopen pool %s to grow it: %s",
				  p->path, err_text(errno));
	if (fstat(fd, &st) || st.st_dev != p->dev || st.st_ino != p->ino) {
		close(fd);
		return err_set(BTD_ERR_IO, "pool %s was replaced or removed while in use: "
				  "the heap cannot grow; leave pool files alone while they are open",
				  p->path);
	}
	p->fd = fd;
	return 0;
}

static void pool_release_fd(struct pool *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}

/* Back [off, off + len) of the file with real blocks (p->fd is open). */
static int back(struct pool *p, size_t off, size_t len)
{
	int r;

	while ((r = fallocate(p->fd, 0, (off_t)off, (off_t)len)) && errno == EINTR)
		;
	if (!r)
		return 0;
	if (errno == EOPNOTSUPP) /* no fallocate here: write zeros is not safe either */
		return 0;
	return err_set(err_status(errno), "cannot grow pool %s to hold %zu more bytes (%s): "
			  "free space on its file system, or set BTD_POOL to a larger one",
			  p->path, len, err_text(errno));
}

void pool_set_private(int on)
{
	open_private = on;
}

int pool_file_open(struct pool *p)
{
	return p->private_view ? 0 : pool_reopen(p);
}

void pool_file_close(struct pool *p)
{
	pool_release_fd(p);
}

int pool_punch(struct pool *p, size_t page, size_t n)
{
	if (p->private_view)
		return 0;
	off_t off = (off_t)(p->hdr.data_off + page * POOL_PAGE);
	int r;

	while ((r = fallocate(p->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
			      (off_t)(n * POOL_PAGE))) && errno == EINTR)
		;
	if (r && errno != EOPNOTSUPP)
		return err_set(err_status(errno), "cannot give %zu free pages of pool %s "
				  "back to the file system: %s", n, p->path, err_text(errno));
	return 0;
}

int pool_back_log(struct pool *p, unsigned slot)
{
	if (p->private_view || !p->hdr.log_off)
		return 0;
	int ret = pool_file_open(p);

	if (!ret)
		ret = back(p, p->hdr.log_off + (size_t)slot * p->hdr.log_bytes, p->hdr.log_bytes);
	pool_file_close(p);
	return ret;
}

int pool_back(struct pool *p, size_t page, size_t n)
{
	if (p->private_view)
		return 0;
	return back(p, p->hdr.data_off + page * POOL_PAGE, n * POOL_PAGE);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* After the file system refused to grow the pool, further attempts within
 * a second fail at once: each would cost an open, a stat and a failing
 * fallocate, under the heap's lock, on every allocation that wants space. */
#define POOL_GROW_RETRY_NS 1000000000u

int pool_grow(struct pool *p, size_t top)
{
	int ret = 0;

	if (top <= __atomic_load_n(&p->heap_top, __ATOMIC_ACQUIRE))
		return 0;
	pthread_mutex_lock(&p->grow_lock);
	if (top > p->heap_top && p->grow_retry_at && now_ns() < p->grow_retry_at) {
		ret = p->grow_error;
	} else if (top > p->heap_top) {
		size_t old = p->heap_top;
		size_t want = top;

		/* Grow by at least an eighth, and at least 1 MiB. */
		if (want < old + old / 8)
			want = old + old / 8;
		if (want < old + POOL_GROW_MIN)
			want = old + POOL_GROW_MIN;
		if (want > p->npages)
			want = p->npages;
		if (top > p->npages) {
			ret = err_set(BTD_ERR_NOMEM, "pool %s is full (%zu MiB of data): "
					 "set BTD_POOL_SIZE larger when creating it",
					 p->path, p->npages * POOL_PAGE >> 20);
		} else if (p->private_view) {
			p->heap_top = p->hdr.heap_top = want;
		} else if (!(ret = pool_reopen(p))) {
			size_t d0 = old * sizeof(uint64_t), d1 = want * sizeof(uint64_t);
			size_t b0 = old * POOL_PAGE / POOL_GRANULE / 8;
			size_t b1 = want * POOL_PAGE / POOL_GRANULE / 8;

			ret = back(p, p->hdr.data_off + old * POOL_PAGE, (want - old) * POOL_PAGE);
			if (!ret)
				ret = back(p, p->hdr.desc_off + d0, d1 - d0);
			if (!ret && b1 > b0)
				ret = back(p, p->hdr.bitmap_off + b0, b1 - b0);
			pool_release_fd(p);
			if (!ret) {
				/* The new pages' descriptors and bitmap were never the
				 * heap's (holes, unless something wrote there): free,
				 * durably so before the header says they are in use. */
				memset(p->desc + old, 0, d1 - d0);
				memset((char *)p->bitmap + b0, 0, b1 - b0);
				pmem_persist_why(p->desc + old, d1 - d0, PMEM_WHY_DESC);
				CRASH_POINT(CRASH_POOL_GROW);
				p->hdr.heap_top = want;
				pool_header_write(p);
				__atomic_store_n(&p->heap_top, want, __ATOMIC_RELEASE);
			}
		}
		/* The file system said no: do not ask again at once.  (A used-up
		 * reservation is answered above without a system call.) */
		if (top <= p->npages) {
			p->grow_retry_at = ret ? now_ns() + POOL_GROW_RETRY_NS : 0;
			p->grow_error = ret;
		}
	}
	pthread_mutex_unlock(&p->grow_lock);
	return ret;
}

/* Reserve [base, base + size) with MAP_FIXED_NOREPLACE, then map the file
 * over it, with MAP_SYNC when the file system allows (real pmem). */
static int map_at(struct pool *p, uintptr_t base, size_t size)
{
	void *r = mmap((void *)base, size, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);

	if (r == MAP_FAILED)
		return -1;
	if (r != (void *)base) { /* a kernel older than 4.17 ignores the flag */
		munmap(r, size);
		errno = EEXIST;
		return -1;
	}
	void *m = p->private_view ? MAP_FAILED :
		  mmap(r, size, PROT_READ | PROT_WRITE,
		       MAP_SHARED_VALIDATE | MAP_SYNC | MAP_FIXED, p->fd, 0);

	p->map_sync = m != MAP_FAILED;
	if (p->private_view)
		m = mmap(r, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, p->fd, 0);
	if (m == MAP_FAILED)
		m = mmap(r, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, p->fd, 0);
	if (m == MAP_FAILED) {
		int e = errno;

		munmap(r, size);
		errno = e;
		return -2;
	}
	p->base = m;
	p->size = size;
	return 0;
}

static void attach(struct pool *p)
{
	struct stat st;

	if (!fstat(p->fd, &st)) {
		p->dev = st.st_dev;
		p->ino = st.st_ino;
	}
	p->roots = (struct pool_root *)(p->base + POOL_ROOTS_OFF);
	p->desc = (uint64_t *)(p->base + p->hdr.desc_off);
	p->bitmap = (uint64_t *)(p->base + p->hdr.bitmap_off);
	p->data = p->base + p->hdr.data_off;
	p->npages = p->hdr.npages;
	p->heap_top = p->hdr.heap_top;
	if (p->private_view)
		pmem_select_none();
	else
		pmem_select(p->base, p->size, p->map_sync);
}

/* Read a decimal or hex number at *s, advancing it. */
static unsigned long long scan_num(const char **s, unsigned base)
{
	unsigned long long v = 0;

	for (;; (*s)++) {
		unsigned c = (unsigned char)**s, d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (base == 16 && (c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			d = (c | 0x20) - 'a' + 10;
		else
			return v;
		v = v * base + d;
	}
}

/* Whether one line of /proc/PID/maps maps the file (dev, ino), and shared
 * when `shared` is set: "lo-hi perms offset MAJ:MIN inode path". */
static int maps_line_is(const char *l, const char *end, dev_t dev, ino_t ino, int shared)
{
	const char *perms = NULL;

	for (int field = 0; field < 3; field++) { /* skip range, perms, offset */
		if (field == 1)
			perms = l;
		while (l < end && *l != ' ')
			l++;
		while (l < end && *l == ' ')
			l++;
	}
	unsigned long long maj = scan_num(&l, 16);

	if (l >= end || *l++ != ':')
		return 0;
	unsigned long long min = scan_num(&l, 16);

	while (l < end && *l == ' ')
		l++;
	if (shared && (!perms || perms + 3 >= end || perms[3] != 's'))
		return 0;
	return maj == major(dev) && min == minor(dev) && scan_num(&l, 10) == (unsigned long long)ino;
}

static int pid_maps_file(long pid, dev_t dev, ino_t ino, int shared)
{
	char path[64], buf[4096];
	size_t have = 0;
	ssize_t n;
	int found = 0;

	log_format(path, sizeof(path), "/proc/%ld/maps", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	while (!found && (n = read(fd, buf + have, sizeof(buf) - 1 - have)) > 0) {
		char *l = buf, *end = buf + have + n, *nl;

		while (!found && (nl = memchr(l, '\n', (size_t)(end - l)))) {
			found = maps_line_is(l, nl, dev, ino, shared);
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

int pool_maps_shared(long pid, dev_t dev, ino_t ino)
{
	return pid_maps_file(pid, dev, ino, 1);
}

long pool_holder(dev_t dev, ino_t ino, long hint, char *name, size_t n)
{
	long pid = 0;

	if (hint > 0 && pid_maps_file(hint, dev, ino, 0)) {
		pid = hint;
	} else {
		int dfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		char buf[4096];
		long r;

		while (dfd >= 0 && !pid && (r = getdents64(dfd, buf, sizeof(buf))) > 0) {
			for (long off = 0; off < r && !pid;) {
				const struct dirent64 *d = (const void *)(buf + off);
				const char *q = d->d_name;
				long cand = (long)scan_num(&q, 10);

				if (!*q && cand > 0 && cand != getpid() && pid_maps_file(cand, dev, ino, 0))
					pid = cand;
				off += d->d_reclen;
			}
		}
		if (dfd >= 0)
			close(dfd);
	}
	if (name && n) {
		char path[64];
		int fd;
		ssize_t got = 0;

		log_format(path, sizeof(path), "/proc/%ld/comm", pid);
		if (pid && (fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
			got = read(fd, name, n - 1);
			close(fd);
		}
		got = got > 0 ? got : 0;
		if (got && name[got - 1] == '\n')
			got--;
		name[got] = '\0';
	}
	return pid;
}

/* A process that was just killed keeps its mappings, and so the lock, for
 * some milliseconds after its parent's wait returns: a pool whose lock is
 * held by no process that still maps it is retried for this long. */
#define POOL_LOCK_SETTLE_MS 200

static int lock_file(struct pool *p, int fd)
{
	int how = p->private_view ? LOCK_SH : LOCK_EX;
	long pid = 0;
	char name[32] = "";

	for (unsigned waited = 0;; waited += 5) {
		if (!flock(fd, how | LOCK_NB))
			return 0;
		if (errno != EWOULDBLOCK)
			return err_set(BTD_ERR_IO, "cannot lock pool %s: %s", p->path,
					  err_text(errno));
		struct pool_header h;
		struct stat st;

		if (!fstat(fd, &st))
			pid = pool_holder(st.st_dev, st.st_ino,
					  pool_read_header(fd, &h, NULL) < 0 ? 0 : (long)h.owner_pid,
					  name, sizeof(name));
		if (pid || waited >= POOL_LOCK_SETTLE_MS)
			break;
		struct timespec ts = { 0, 5000000 };

		nanosleep(&ts, NULL);
	}
	if (pid)
		return err_set(BTD_ERR_BUSY, "pool %s is open in another process (pid %ld%s%s): "
				  "one process per pool; give this one its own BTD_POOL",
				  p->path, pid, *name ? ", " : "", name);
	return err_set(BTD_ERR_BUSY, "pool %s is locked by a process that is going away "
			  "or cannot be seen here; try again, or give this one its own BTD_POOL",
			  p->path);
}

static int create(struct pool *p, const char *path, size_t size)
{
	struct pool_header h;
	char tmp[PATH_MAX + 32];

	memset(&h, 0, sizeof(h));
	if (pool_layout(size, 1, &h))
		return err_set(BTD_ERR_INVAL, "pool size %zu is too small: use at least 2M", size);
	memcpy(h.magic, POOL_MAGIC, 8);
	h.major = POOL_FORMAT_MAJOR;
	h.minor = POOL_FORMAT_MINOR;
	h.header_size = sizeof(h);
	if (getrandom(h.uuid, sizeof(h.uuid), 0) != sizeof(h.uuid))
		return err_set(BTD_ERR_IO, "getrandom failed: %s", err_text(errno));
	h.created = (uint64_t)time(NULL);
	h.clean = 1; /* nothing in it yet; pool_open marks it open */

	/* Built under a temporary name and renamed into place without
	 * replacing anything: a crash while creating leaves no half pool under
	 * the real name, and a pool created meanwhile by someone else wins. */
	log_format(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd < 0)
		return err_set(err_status(errno), "cannot create pool %s: %s", path,
				  err_text(errno));
	p->fd = fd;
	int ret = lock_file(p, fd);

	if (!ret && ftruncate(fd, (off_t)size))
		ret = err_set(err_status(errno), "cannot size pool %s to %zu bytes: %s",
				 path, size, err_text(errno));
	if (!ret)
		ret = back(p, 0, POOL_ROOTS_OFF + POOL_ROOTS_MAX * sizeof(struct pool_root));
	if (!ret) {
		uint64_t seed = pool_checksum(h.uuid, sizeof(h.uuid));
		uintptr_t slots = (POOL_ADDR_HI - POOL_ADDR_LO) / POOL_ADDR_STEP;
		int mapped = -1;

		for (uintptr_t i = 0; i < 64 && mapped; i++) {
			uintptr_t base = POOL_ADDR_LO + (seed + i * 7919) % slots * POOL_ADDR_STEP;

			if (base + size > POOL_ADDR_HI)
				continue;
			mapped = map_at(p, base, size);
			if (mapped == -2)
				break;
		}
		if (mapped)
			ret = err_set(BTD_ERR_ADDR, "no free address range of %zu bytes for pool %s: "
					 "use a smaller BTD_POOL_SIZE", size, path);
	}
	if (!ret) {
		h.base = (uintptr_t)p->base;
		h.size = size;
		h.epoch = 1;
		p->hdr = h;
		attach(p);
		/* Both copies valid from the start: epochs 2 and 3. */
		p->hdr_slot = 1;
		pool_header_write(p);
		pool_header_write(p);
		if (fsync(fd))
			ret = err_set(BTD_ERR_IO, "cannot sync new pool %s: %s", path,
					 err_text(errno));
	}
	if (!ret && renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE)) {
		ret = err_set(errno == EEXIST ? BTD_ERR_BUSY : err_status(errno),
				 "cannot create pool %s: %s", path, err_text(errno));
	}
	if (!ret) {
		pool_release_fd(p);
		return 0;
	}
	if (ret) {
		if (p->base)
			munmap(p->base, size);
		p->base = NULL;
		unlink(tmp);
		close(fd);
		p->fd = -1;
	}
	return ret;
}

int pool_read_header(int fd, struct pool_header *out, int *bad_copy)
{
	struct pool_header h[2];
	int valid[2], magic[2];

	for (int i = 0; i < 2; i++) {
		ssize_t n = pread(fd, &h[i], sizeof(h[i]), (off_t)i * POOL_HEADER_SLOT);

		magic[i] = n == sizeof(h[i]) && !memcmp(h[i].magic, POOL_MAGIC, 8);
		valid[i] = magic[i] && header_valid(&h[i]);
	}
	if (bad_copy)
		*bad_copy = valid[0] != valid[1] ? valid[0] : -1;
	if (!valid[0] && !valid[1])
		return magic[0] || magic[1] ? BTD_ERR_FORMAT : BTD_ERR_NOENT;
	int i = valid[0] && valid[1] ? h[1].epoch > h[0].epoch : valid[1];

	*out = h[i];
	return i;
}

static int validate(struct pool *p, const struct stat *st, struct pool_header *out)
{
	int i = pool_read_header(p->fd, out, &p->bad_header_copy);

	if (i == BTD_ERR_NOENT)
		return err_set(BTD_ERR_FORMAT, "%s is not a btd pool (no pool magic): "
				  "point BTD_POOL at a pool file or at a path that does not exist yet",
				  p->path);
	if (i < 0)
		return err_set(BTD_ERR_FORMAT, "pool %s is corrupt (both header copies fail "
				  "their checksum): restore it from a replica or a backup; "
				  "the file was left as it is", p->path);
	p->hdr_slot = (unsigned)i;
	if (out->major != POOL_FORMAT_MAJOR)
		return err_set(BTD_ERR_VERSION, "pool %s has format %u.%u; this btd reads %u.x: "
				  "open it with a matching btd", p->path, out->major, out->minor,
				  POOL_FORMAT_MAJOR);
	struct pool_header lay = *out;

	if (out->header_size != sizeof(*out) || pool_layout(out->size, out->log_off != 0, &lay) ||
	    lay.desc_off != out->desc_off || lay.bitmap_off != out->bitmap_off ||
	    lay.log_off != out->log_off || lay.log_slots != out->log_slots ||
	    lay.log_bytes != out->log_bytes ||
	    lay.data_off != out->data_off || lay.npages != out->npages ||
	    out->heap_top > out->npages || out->base % POOL_PAGE ||
	    out->base < POOL_PAGE || out->base + out->size < out->base)
		return err_set(BTD_ERR_FORMAT, "pool %s has an inconsistent header: restore it "
				  "from a replica or a backup; the file was left as it is", p->path);
	if ((uint64_t)st->st_size != out->size)
		return err_set(BTD_ERR_FORMAT, "pool %s is %lld bytes but its header says %llu: "
				  "truncated or extended by something else; restore it from a backup",
				  p->path, (long long)st->st_size, (unsigned long long)out->size);
	return 0;
}

static int open_existing(struct pool *p)
{
	int fd = open(p->path, (p->private_view ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	struct stat st;

	if (fd < 0) {
		int e = errno;

		if (e == EISDIR)
			return err_set(BTD_ERR_FORMAT, "%s is a directory, not a pool: set BTD_POOL "
					  "to a file path", p->path);
		return err_set(err_status(e), "cannot open pool %s: %s%s", p->path, err_text(e),
				  e == EACCES ? ": fix its permissions or choose another BTD_POOL" : "");
	}
	p->fd = fd;
	int ret = 0;

	if (fstat(fd, &st))
		ret = err_set(BTD_ERR_IO, "cannot stat pool %s: %s", p->path, err_text(errno));
	else if (!S_ISREG(st.st_mode))
		ret = err_set(BTD_ERR_FORMAT, "%s is not a regular file, so not a pool: set "
				 "BTD_POOL to a file path", p->path);
	if (!ret)
		ret = lock_file(p, fd);
	struct pool_header h;

	if (!ret)
		ret = validate(p, &st, &h);
	if (!ret) {
		p->hdr = h;
		int m = map_at(p, (uintptr_t)h.base, h.size);

		if (m == -1 && errno == EEXIST)
			ret = err_set(BTD_ERR_ADDR, "pool %s must be mapped at %p, but that range "
					 "is taken in this process: open the pool earlier (before "
					 "large mappings), or copy its data into a new pool",
					 p->path, (void *)(uintptr_t)h.base);
		else if (m == -1) /* beyond this process's address space */
			ret = err_set(BTD_ERR_ADDR, "pool %s must be mapped at %p, which this process "
					 "cannot map (%s): its address space is smaller than the one "
					 "that made the pool, or the header is damaged", p->path,
					 (void *)(uintptr_t)h.base, err_text(errno));
		else if (m == -2)
			ret = err_set(err_status(errno), "cannot map pool %s: %s", p->path,
					 err_text(errno));
	}
	if (ret) {
		close(fd);
		p->fd = -1;
		return ret;
	}
	attach(p);
	pool_release_fd(p);
	if (p->bad_header_copy >= 0)
		log_msg(LOG_WARN, "pool %s: header copy %d was damaged (a torn write, or "
			"overwritten); %s from copy %d", p->path, p->bad_header_copy,
			p->private_view ? "an open for writing repairs it" : "repaired",
			!p->bad_header_copy);
	return 0;
}

int pool_open(struct pool *p, const char *path, size_t size, int create_ok)
{
	memset(p, 0, sizeof(*p));
	p->fd = -1;
	p->bad_header_copy = -1;
	p->private_view = open_private;
	create_ok &= !open_private;
	pthread_mutex_init(&p->grow_lock, NULL);
	if (strlen(path) >= sizeof(p->path) - 16)
		return err_set(BTD_ERR_INVAL, "pool path is too long: %.40s...", path);
	strcpy(p->path, path);

	int ret = open_existing(p);

	if (ret == BTD_ERR_NOENT && create_ok) {
		ret = create(p, path, size);
		if (ret == BTD_ERR_BUSY) /* created by someone else meanwhile */
			ret = open_existing(p);
	}
	if (ret)
		return ret;
	/* From here on the pool is ours.  What the open changes in the header
	 * is written by pool_mark_open, before the first write to the pool. */
	p->marked_open = 0; /* what create wrote was the new pool, closed */
	p->was_dirty = !p->hdr.clean;
	p->hdr.clean = 0;
	p->hdr.opens++;
	p->hdr.crashes += (uint64_t)p->was_dirty;
	p->hdr.owner_pid = (uint64_t)getpid();
	p->clean_sum = p->was_dirty ? 0 : p->hdr.meta_sum;
	p->clean_roots = p->hdr.close_roots;
	p->clean_collect = !p->was_dirty && p->hdr.collect_next;
	p->hdr.collect_next = 0;
	p->hdr.meta_sum = 0;
	return 0;
}

void pool_mark_open(struct pool *p)
{
	if (!p->marked_open)
		pool_header_write(p);
}

/* Four lanes of xor-multiply-xorshift over 8-byte words (not linear:
 * damage spread over several words does not cancel out): about 3 ms for
 * the metadata of a 1 GiB heap.  Not a defence against an attacker who
 * can write the file, which nothing here is. */
static inline uint64_t meta_step(uint64_t h, uint64_t w)
{
	h = (h ^ w) * 0x9e3779b97f4a7c15u;
	return h ^ (h >> 29);
}

static void meta_mix(uint64_t h[4], const void *buf, size_t n)
{
	const uint64_t *w = buf;
	size_t i = 0;

	for (; i + 4 <= n / 8; i += 4)
		for (int l = 0; l < 4; l++)
			h[l] = meta_step(h[l], w[i + l]);
	for (; i < n / 8; i++)
		h[0] = meta_step(h[0], w[i]);
}

uint64_t pool_meta_sum(const struct pool *p)
{
	uint64_t h[4] = { 1, 2, 3, 4 };

	meta_mix(h, p->roots, POOL_ROOTS_MAX * sizeof(struct pool_root));
	meta_mix(h, p->desc, p->heap_top * sizeof(uint64_t));
	meta_mix(h, p->bitmap, p->heap_top * POOL_PAGE / POOL_GRANULE / 8);
	uint64_t x = h[0] ^ (h[1] << 1) ^ (h[2] << 2) ^ (h[3] << 3) ^ p->heap_top;

	return x ? x : 1;
}

int pool_reset(struct pool *p)
{
	size_t off = p->hdr.desc_off;
	int ret = p->private_view ? 0 : pool_reopen(p);

	if (!ret && p->private_view) {
		memset(p->desc, 0, p->heap_top * sizeof(uint64_t));
		memset(p->bitmap, 0, p->heap_top * POOL_PAGE / POOL_GRANULE / 8);
	} else if (!ret && fallocate(p->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
				     (off_t)(p->size - off))) {
		ret = err_set(err_status(errno), "cannot reset pool %s: %s", p->path,
				 err_text(errno));
	}
	pool_release_fd(p);
	if (ret)
		return ret;
	p->heap_top = 0;
	p->hdr.heap_top = 0;
	pool_header_write(p);
	return 0;
}

void pool_abandon(struct pool *p)
{
	if (p->base)
		munmap(p->base, p->size); /* the last reference: the lock goes too */
	pool_release_fd(p);
	p->base = NULL;
}

void pool_mark_clean(struct pool *p)
{
	size_t bitmap_bytes = p->heap_top * POOL_PAGE / POOL_GRANULE / 8;

	if (bitmap_bytes)
		pmem_persist_why(p->bitmap, bitmap_bytes, PMEM_WHY_CLOSE);
	CRASH_POINT(CRASH_CLOSE_BITMAP);
	p->hdr.meta_sum = p->hdr.minor >= 1 ? pool_meta_sum(p) : 0;
	p->hdr.close_roots = 0;
	for (unsigned i = 0; i < POOL_ROOTS_MAX; i++)
		p->hdr.close_roots += p->roots[i].tag != 0;
	p->hdr.collect_next = (uint64_t)p->collect_next;
	p->hdr.clean = 1;
	p->hdr.owner_pid = 0;
	pool_header_write(p);
}

void pool_close(struct pool *p)
{
	if (!p->base)
		return;
	pool_mark_clean(p);
	pool_abandon(p);
}

int pool_default_path(char *buf, size_t n, const char *program, unsigned instance)
{
	char dir[64];
	struct stat st;

	log_format(dir, sizeof(dir), "/dev/shm/btd-%u", (unsigned)getuid());
	if (mkdir(dir, 0700) && errno != EEXIST)
		return err_set(err_status(errno), "cannot create %s for the default pool: %s; "
				  "set BTD_POOL", dir, err_text(errno));
	if (lstat(dir, &st) || !S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
	    (st.st_mode & 022))
		return err_set(BTD_ERR_PERM, "%s is not a private directory of this user: "
				  "remove it, or set BTD_POOL", dir);
	if (instance)
		log_format(buf, n, "%s/%s.%u.pool", dir, program, instance);
	else
		log_format(buf, n, "%s/%s.pool", dir, program);
	return 0;
}
