/* memd_pool.c: the memory node's pool on media -- creation, validation, leases, chunk map, the commit and its redo (memd_layout.h). */
#include <errno.h>
#include <fcntl.h>
#include <libpmem.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "../common/error.h"
#include "btd.h"
#include "../common/log.h"
#include "memd_int.h"

#define REC_SUMMED offsetof(struct memd_lease_rec, checksum)
#define HDR_SUMMED offsetof(struct memd_header, checksum)

void memd_log(const struct memd *m, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (m && m->verbose < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "memd: %s\n", line);
}

void memd_persist(const struct memd *m, const void *p, size_t n)
{
	if (m->is_pmem)
		pmem_persist(p, n);
	else if (pmem_msync(p, n))
		memd_log(m, "msync failed: %s", pmem_errormsg());
}

void *memd_chunk(const struct memd *m, uint64_t c)
{
	if (c == 0 || c >= m->nchunks)
		btd_fatal("memd: chunk %llu is not a data chunk of the node pool",
			  (unsigned long long)c);
	return m->base + c * PROTO_CHUNK;
}

/* ---- creation ---- */

static int pool_create(const char *path, uint64_t size)
{
	uint64_t nchunks = size / PROTO_CHUNK;

	if (nchunks < MEMD_MIN_CHUNKS || nchunks > MEMD_MAX_CHUNKS)
		return err_set(BTD_ERR_INVAL, "--size %llu MiB: a node pool holds %u to %llu chunks of "
			       "16 MiB", (unsigned long long)(size >> 20), MEMD_MIN_CHUNKS,
			       (unsigned long long)MEMD_MAX_CHUNKS);
	size = nchunks * PROTO_CHUNK;
	char tmp[4200];
	size_t meta = MEMD_MAP_OFF + nchunks * 8;
	unsigned char *buf = calloc(1, meta);

	if (!buf)
		return err_set(BTD_ERR_NOMEM, "out of memory");
	snprintf(tmp, sizeof(tmp), "%s.new.XXXXXX", path);
	int fd = mkostemp(tmp, O_CLOEXEC);

	if (fd < 0) {
		free(buf);
		return err_set(err_status(errno), "cannot create %s: %s", tmp, err_text(errno));
	}
	struct memd_header *h = (struct memd_header *)buf;
	uint64_t *map = (uint64_t *)(buf + MEMD_MAP_OFF);
	int e;

	memcpy(h->magic, MEMD_MAGIC, 8);
	h->version = MEMD_VERSION;
	h->header_size = sizeof(*h);
	h->size = size;
	h->chunk_size = PROTO_CHUNK;
	h->nchunks = nchunks;
	h->leases = MEMD_LEASES;
	h->lease_off = MEMD_LEASE_OFF;
	h->map_off = MEMD_MAP_OFF;
	h->created = (uint64_t)time(NULL);
	map[0] = MEMD_MAP_META;
	int st = proto_random(h->uuid, sizeof(h->uuid)) ? BTD_ERR_IO : 0;

	h->checksum = memd_sum(h, HDR_SUMMED);
	if (!st && (e = posix_fallocate(fd, 0, (off_t)size)))
		st = err_set(err_status(e), "cannot allocate %llu MiB for %s: %s",
			     (unsigned long long)(size >> 20), path, err_text(e));
	else if (!st && (pwrite(fd, buf, meta, 0) != (ssize_t)meta || fsync(fd)))
		st = err_set(BTD_ERR_IO, "cannot write %s: %s", tmp, err_text(errno));
	else if (st)
		err_set(st, "no random bytes for the node's uuid");
	close(fd);
	free(buf);
	if (!st && link(tmp, path) && errno != EEXIST) /* EEXIST: another memd made it */
		st = err_set(err_status(errno), "cannot create %s: %s", path, err_text(errno));
	unlink(tmp);
	return st;
}

/* ---- open and validation: nothing is written until all of it passed ---- */

static int lock_pool(int fd, const char *path)
{
	if (!flock(fd, LOCK_EX | LOCK_NB))
		return 0;
	if (errno != EWOULDBLOCK)
		return err_set(BTD_ERR_IO, "cannot lock %s: %s", path, err_text(errno));
	/* flock holders are listed with their pid in /proc/locks */
	struct stat st;
	long pid = 0;
	FILE *f = fopen("/proc/locks", "re");
	char line[256], dev[64];

	if (!fstat(fd, &st) && f) {
		snprintf(dev, sizeof(dev), " %02x:%02x:%llu ", major(st.st_dev), minor(st.st_dev),
			 (unsigned long long)st.st_ino);
		while (!pid && fgets(line, sizeof(line), f))
			if (strstr(line, "FLOCK") && strstr(line, dev))
				sscanf(strstr(line, "WRITE") ? strstr(line, "WRITE") + 5 : "", "%ld",
				       &pid);
	}
	if (f)
		fclose(f);
	if (pid > 0)
		return err_set(BTD_ERR_BUSY, "pool %s is served by memd pid %ld; stop it first", path,
			       pid);
	return err_set(BTD_ERR_BUSY, "pool %s is served by another memd; stop it first", path);
}

static int header_check(int fd, const char *path, struct memd_header *h)
{
	struct stat st;

	if (fstat(fd, &st))
		return err_set(BTD_ERR_IO, "cannot stat %s: %s", path, err_text(errno));
	if (pread(fd, h, sizeof(*h), 0) != (ssize_t)sizeof(*h) || memcmp(h->magic, MEMD_MAGIC, 8))
		return err_set(BTD_ERR_FORMAT, "%s is not a memd node pool (bad magic)", path);
	if (h->version != MEMD_VERSION)
		return err_set(BTD_ERR_VERSION, "%s is a node pool of version %u; this btd reads %u",
			       path, h->version, MEMD_VERSION);
	if (h->checksum != memd_sum(h, HDR_SUMMED))
		return err_set(BTD_ERR_FORMAT, "%s: the node pool's header checksum does not match",
			       path);
	if (h->header_size != sizeof(*h) || h->chunk_size != PROTO_CHUNK ||
	    h->nchunks < MEMD_MIN_CHUNKS || h->nchunks > MEMD_MAX_CHUNKS ||
	    h->size != h->nchunks * PROTO_CHUNK || h->leases != MEMD_LEASES ||
	    h->lease_off != MEMD_LEASE_OFF || h->map_off != MEMD_MAP_OFF)
		return err_set(BTD_ERR_FORMAT, "%s: the node pool's header is inconsistent", path);
	if ((uint64_t)st.st_size != h->size)
		return err_set(BTD_ERR_FORMAT, "%s: the file has %llu bytes, its header says %llu "
			       "(truncated?)", path, (unsigned long long)st.st_size,
			       (unsigned long long)h->size);
	return 0;
}

static int rec_counts(const struct memd_lease_rec *r)
{
	return r->gen != 0 && r->checksum == memd_sum(r, REC_SUMMED);
}

static int all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

static int leases_load(struct memd *m)
{
	for (unsigned s = 0; s < MEMD_LEASES; s++) {
		struct memd_lease *L = &m->lease[s];
		const struct memd_lease_rec *c = &m->table[2 * s];
		int ok0 = rec_counts(&c[0]), ok1 = rec_counts(&c[1]);

		memset(L, 0, sizeof(*L));
		if (!ok0 && !ok1) {
			if (!all_zero(c, 2 * sizeof(*c)))
				return err_set(BTD_ERR_FORMAT, "%s: lease slot %u is damaged (no copy "
					       "holds)", m->path, s);
			continue;
		}
		L->cur = ok1 && (!ok0 || c[1].gen > c[0].gen);
		L->rec = c[L->cur];
		const struct memd_lease_rec *r = &L->rec;

		if (r->state == MEMD_LEASE_FREE)
			continue;
		if (r->state != MEMD_LEASE_LIVE || r->nchunks > PROTO_MAX_CHUNKS ||
		    r->nchunks == 0 || r->image_size > (uint64_t)r->nchunks * PROTO_CHUNK ||
		    r->staging == 0 || r->staging >= m->nchunks ||
		    m->map[r->staging] != MEMD_MAP_ENTRY(s, 0) || !memchr(r->path, 0, PROTO_PATH))
			return err_set(BTD_ERR_FORMAT, "%s: lease slot %u is inconsistent", m->path, s);
	}
	return 0;
}

/* Fill every lease's chunk list from the map; count the orphans. */
static int map_load(struct memd *m, uint64_t *orphans)
{
	*orphans = 0;
	if (m->map[0] != MEMD_MAP_META)
		return err_set(BTD_ERR_FORMAT, "%s: chunk map entry 0 is damaged", m->path);
	for (uint64_t c = 1; c < m->nchunks; c++) {
		uint64_t e = m->map[c];

		if (e == MEMD_MAP_FREE)
			continue;
		if (!MEMD_MAP_IS_ENTRY(e))
			return err_set(BTD_ERR_FORMAT, "%s: chunk map entry %llu is damaged", m->path,
				       (unsigned long long)c);
		struct memd_lease *L = &m->lease[MEMD_MAP_SLOT(e)];
		uint32_t idx = MEMD_MAP_IDX(e);

		if (L->rec.state != MEMD_LEASE_LIVE || idx > L->rec.nchunks ||
		    (idx == 0 && c != L->rec.staging)) {
			(*orphans)++;
			continue;
		}
		if (idx == 0)
			continue;
		if (L->chunk[idx - 1])
			return err_set(BTD_ERR_FORMAT, "%s: chunks %u and %llu both claim image chunk "
				       "%u of lease slot %u", m->path, L->chunk[idx - 1],
				       (unsigned long long)c, idx - 1, MEMD_MAP_SLOT(e));
		L->chunk[idx - 1] = (uint32_t)c;
	}
	for (unsigned s = 0; s < MEMD_LEASES; s++) {
		const struct memd_lease *L = &m->lease[s];

		for (uint32_t i = 0; L->rec.state == MEMD_LEASE_LIVE && i < L->rec.nchunks; i++)
			if (!L->chunk[i])
				return err_set(BTD_ERR_FORMAT, "%s: lease slot %u lacks its image "
					       "chunk %u", m->path, s, i);
	}
	return 0;
}

/* A crash between a map entry and its record left an orphan: zero the
 * chunk (free chunks hold zeros), then free the entry. */
static void orphans_reclaim(struct memd *m)
{
	for (uint64_t c = 1; c < m->nchunks; c++) {
		uint64_t e = m->map[c];

		if (e == MEMD_MAP_FREE)
			continue;
		const struct memd_lease *L = &m->lease[MEMD_MAP_SLOT(e)];
		uint32_t idx = MEMD_MAP_IDX(e);

		if (L->rec.state == MEMD_LEASE_LIVE && idx <= L->rec.nchunks &&
		    (idx != 0 || c == L->rec.staging))
			continue;
		void *p = memd_chunk(m, c);

		memset(p, 0, PROTO_CHUNK);
		memd_persist(m, p, PROTO_CHUNK);
		m->map[c] = MEMD_MAP_FREE;
		memd_persist(m, &m->map[c], 8);
	}
}

static void redo_replay(struct memd *m, int slot);

int memd_open(const struct memd_config *cfg, struct memd **out)
{
	struct memd *m = calloc(1, sizeof(*m));
	struct memd_header h;
	int st, created = 0;

	if (!m)
		return err_set(BTD_ERR_NOMEM, "out of memory");
	if (strlen(cfg->path) >= sizeof(m->path) || cfg->key_len > MEMD_KEY_MAX) {
		free(m);
		return err_set(BTD_ERR_INVAL, "the pool path or the key is too long");
	}
	strcpy(m->path, cfg->path);
	memcpy(m->key, cfg->key, cfg->key_len);
	m->key_len = cfg->key_len;
	m->verbose = cfg->verbose;
	m->ops = cfg->ops;
	m->fd = open(m->path, O_RDWR | O_CLOEXEC);
	if (m->fd < 0 && errno == ENOENT) {
		if ((st = pool_create(m->path, cfg->size)))
			goto fail;
		created = 1;
		m->fd = open(m->path, O_RDWR | O_CLOEXEC);
	}
	if (m->fd < 0) {
		st = err_set(err_status(errno), "cannot open %s: %s", m->path, err_text(errno));
		goto fail;
	}
	if ((st = lock_pool(m->fd, m->path)) || (st = header_check(m->fd, m->path, &h)))
		goto fail;
	size_t len;

	m->base = pmem_map_file(m->path, 0, 0, 0, &len, &m->is_pmem);
	if (!m->base || len != h.size) {
		st = err_set(BTD_ERR_IO, "cannot map %s: %s", m->path, pmem_errormsg());
		goto fail;
	}
	m->size = h.size;
	m->nchunks = h.nchunks;
	m->hdr = (const struct memd_header *)m->base;
	m->table = (struct memd_lease_rec *)(m->base + MEMD_LEASE_OFF);
	m->map = (uint64_t *)(m->base + MEMD_MAP_OFF);
	uint64_t orphans;

	if ((st = leases_load(m)) || (st = map_load(m, &orphans)))
		goto fail;
	/* valid: from here on the node writes */
	if (orphans) {
		memd_log(m, "%llu chunk(s) allocated by an interrupted lease are freed again",
			 (unsigned long long)orphans);
		orphans_reclaim(m);
	}
	for (int s = 0; s < (int)MEMD_LEASES; s++)
		if (m->lease[s].rec.state == MEMD_LEASE_LIVE && m->lease[s].rec.redo_epoch)
			redo_replay(m, s);
	memd_log(m, "%s pool %s: %llu MiB, %llu chunks of 16 MiB%s", created ? "created" : "opened",
		 m->path, (unsigned long long)(m->size >> 20), (unsigned long long)m->nchunks,
		 m->is_pmem ? ", pmem" : "");
	*out = m;
	return 0;
fail:
	if (m->base)
		pmem_unmap(m->base, m->size ? m->size : h.size);
	if (m->fd >= 0)
		close(m->fd);
	free(m);
	return st;
}

void memd_close(struct memd *m)
{
	if (!m)
		return;
	for (unsigned s = 0; s < MEMD_LEASES; s++) {
		struct memd_lease *L = &m->lease[s];

		if (L->nreg && m->ops.dereg) {
			m->ops.dereg(m->ops.ctx, &L->mr_staging);
			for (uint32_t i = 0; i < L->nreg; i++)
				m->ops.dereg(m->ops.ctx, &L->mr[i]);
		}
		L->nreg = 0;
	}
	pmem_unmap(m->base, m->size);
	close(m->fd); /* drops the flock */
	free(m);
}

const uint8_t *memd_uuid(const struct memd *m)
{
	return m->hdr->uuid;
}

/* ---- leases ---- */

void memd_lease_write(struct memd *m, int slot, const struct memd_lease_rec *rec)
{
	struct memd_lease *L = &m->lease[slot];
	unsigned to = L->rec.gen ? L->cur ^ 1 : 0;
	struct memd_lease_rec r = *rec;

	r.gen = L->rec.gen + 1;
	r.checksum = memd_sum(&r, REC_SUMMED);
	m->table[2 * slot + to] = r;
	memd_persist(m, &m->table[2 * slot + to], sizeof(r));
	L->rec = r;
	L->cur = to;
}

int memd_lease_find(const struct memd *m, const uint8_t uuid[16])
{
	for (int s = 0; s < (int)MEMD_LEASES; s++)
		if (m->lease[s].rec.state == MEMD_LEASE_LIVE && !memcmp(m->lease[s].rec.owner, uuid, 16))
			return s;
	return -1;
}

static uint64_t chunks_for(uint64_t image_size)
{
	return image_size / PROTO_CHUNK + (image_size % PROTO_CHUNK != 0);
}

/* Give n free chunks to slot as idx first.. first + n - 1: the map entries,
 * persisted (the record that counts them comes after).  Their chunk
 * numbers in got[]. */
static int chunks_take(struct memd *m, int slot, uint32_t first, uint64_t n, uint32_t *got)
{
	uint64_t avail = 0, lo = 0, hi = 0;

	for (uint64_t c = 1; c < m->nchunks; c++)
		avail += m->map[c] == MEMD_MAP_FREE;
	if (avail < n)
		return err_set(BTD_ERR_NOSPC, "the node is full: %llu chunk(s) of 16 MiB needed, "
			       "%llu free", (unsigned long long)n, (unsigned long long)avail);
	for (uint64_t c = 1, k = 0; k < n; c++) {
		if (m->map[c] != MEMD_MAP_FREE)
			continue;
		m->map[c] = MEMD_MAP_ENTRY(slot, first + k);
		got[k++] = (uint32_t)c;
		lo = lo ? lo : c;
		hi = c;
	}
	if (n)
		memd_persist(m, &m->map[lo], (hi - lo + 1) * 8);
	return 0;
}

int memd_lease_create(struct memd *m, const uint8_t uuid[16], uint64_t base, const char *path,
		      uint64_t image_size, int *slot)
{
	uint64_t n = chunks_for(image_size);
	uint32_t got[1 + PROTO_MAX_CHUNKS];
	int s, st;

	if (image_size == 0 || n > PROTO_MAX_CHUNKS)
		return err_set(BTD_ERR_INVAL, "an image of %llu bytes: a lease holds 1 to %u chunks "
			       "of 16 MiB", (unsigned long long)image_size, PROTO_MAX_CHUNKS);
	for (s = 0; s < (int)MEMD_LEASES && m->lease[s].rec.state != MEMD_LEASE_FREE; s++)
		;
	if (s == (int)MEMD_LEASES)
		return err_set(BTD_ERR_NOSPC, "the node is full: every one of its %u leases is taken",
			       MEMD_LEASES);
	if ((st = chunks_take(m, s, 0, 1 + n, got)))
		return st;
	struct memd_lease_rec r = { 0 };

	r.state = MEMD_LEASE_LIVE;
	memcpy(r.owner, uuid, 16);
	r.base = base;
	r.image_size = image_size;
	r.nchunks = (uint32_t)n;
	r.staging = got[0];
	snprintf(r.path, sizeof(r.path), "%s", path);
	memcpy(m->lease[s].chunk, got + 1, n * sizeof(got[0]));
	memd_lease_write(m, s, &r);
	*slot = s;
	return 0;
}

int memd_lease_grow(struct memd *m, int slot, uint64_t image_size)
{
	struct memd_lease *L = &m->lease[slot];
	struct memd_lease_rec r = L->rec;
	uint64_t n = chunks_for(image_size);
	int st;

	if (image_size <= r.image_size)
		return 0;
	if (n > PROTO_MAX_CHUNKS)
		return err_set(BTD_ERR_INVAL, "an image of %llu bytes: a lease holds at most %u "
			       "chunks of 16 MiB", (unsigned long long)image_size, PROTO_MAX_CHUNKS);
	if (n > r.nchunks) {
		if ((st = chunks_take(m, slot, r.nchunks + 1, n - r.nchunks, L->chunk + r.nchunks)))
			return st;
		r.nchunks = (uint32_t)n;
	}
	r.image_size = image_size;
	memd_lease_write(m, slot, &r);
	return 0;
}

void memd_lease_drop(struct memd *m, int slot)
{
	struct memd_lease_rec r = m->lease[slot].rec;

	r.state = MEMD_LEASE_FREE;
	memd_lease_write(m, slot, &r); /* a crash here leaves orphans: freed at open */
	orphans_reclaim(m);
	memset(m->lease[slot].chunk, 0, sizeof(m->lease[slot].chunk));
}

void memd_image_persist(struct memd *m, int slot)
{
	const struct memd_lease *L = &m->lease[slot];

	for (uint32_t i = 0; i < L->rec.nchunks; i++)
		memd_persist(m, memd_chunk(m, L->chunk[i]), PROTO_CHUNK);
}

/* ---- the batch ---- */

static struct batch_range range_at(const unsigned char *staging, uint64_t i)
{
	struct batch_range r;

	memcpy(&r, staging + i * sizeof(r), sizeof(r)); /* once: peers may write staging meanwhile */
	return r;
}

static int batch_check(const struct memd *m, int slot, uint64_t nranges, uint64_t data_len,
		       uint64_t sum)
{
	const struct memd_lease_rec *rec = &m->lease[slot].rec;
	const unsigned char *staging = memd_chunk(m, rec->staging);
	uint64_t total = 0;

	if (nranges > PROTO_STAGING / sizeof(struct batch_range))
		return err_set(BTD_ERR_INVAL, "COMMIT of %llu ranges: staging holds at most %llu",
			       (unsigned long long)nranges,
			       (unsigned long long)(PROTO_STAGING / sizeof(struct batch_range)));
	uint64_t head = nranges * sizeof(struct batch_range);

	if (data_len > PROTO_STAGING - head)
		return err_set(BTD_ERR_INVAL, "COMMIT of %llu ranges and %llu bytes: more than "
			       "staging holds", (unsigned long long)nranges,
			       (unsigned long long)data_len);
	for (uint64_t i = 0; i < nranges; i++) {
		struct batch_range r = range_at(staging, i);

		if (r.len > rec->image_size || r.off > rec->image_size - r.len)
			return err_set(BTD_ERR_INVAL, "COMMIT range %llu [%llu, +%llu) is outside the "
				       "image (%llu bytes)", (unsigned long long)i,
				       (unsigned long long)r.off, (unsigned long long)r.len,
				       (unsigned long long)rec->image_size);
		total += r.len; /* no overflow: < 2^20 ranges of < 2^32 bytes */
	}
	if (total != data_len)
		return err_set(BTD_ERR_INVAL, "COMMIT ranges add up to %llu bytes, data_len says %llu",
			       (unsigned long long)total, (unsigned long long)data_len);
	if (batch_sum(staging, head + data_len) != sum)
		return err_set(BTD_ERR_INVAL, "COMMIT: the staged batch does not match its sum "
			       "(torn or forged)");
	return 0;
}

/* Copy the checked batch into the image and persist it.  Every range is
 * checked again as it is read (staging may have changed since). */
static void batch_apply(struct memd *m, int slot, uint64_t nranges, uint64_t data_len)
{
	const struct memd_lease *L = &m->lease[slot];
	const unsigned char *staging = memd_chunk(m, L->rec.staging);
	const unsigned char *src = staging + nranges * sizeof(struct batch_range);
	uint64_t pos = 0, size = L->rec.image_size;

	for (uint64_t i = 0; i < nranges; i++) {
		struct batch_range r = range_at(staging, i);

		if (r.len > size || r.off > size - r.len || r.len > data_len - pos) {
			memd_log(m, "lease %02x%02x%02x%02x: staging changed under a commit; "
				 "range %llu skipped", L->rec.owner[0], L->rec.owner[1],
				 L->rec.owner[2], L->rec.owner[3], (unsigned long long)i);
			break;
		}
		while (r.len) {
			uint64_t ci = r.off / PROTO_CHUNK, in = r.off % PROTO_CHUNK;
			uint64_t n = PROTO_CHUNK - in < r.len ? PROTO_CHUNK - in : r.len;

			if (ci >= L->rec.nchunks)
				btd_fatal("memd: range beyond the lease's chunks");
			unsigned char *dst = (unsigned char *)memd_chunk(m, L->chunk[ci]) + in;

			memcpy(dst, src + pos, n);
			if (m->is_pmem)
				pmem_flush(dst, n);
			else
				memd_persist(m, dst, n);
			pos += n;
			r.off += n;
			r.len -= n;
		}
	}
	if (m->is_pmem)
		pmem_drain();
}

int memd_commit(struct memd *m, int slot, uint64_t epoch, uint64_t nranges, uint64_t data_len,
		uint64_t sum)
{
	struct memd_lease *L = &m->lease[slot];
	int st;

	if (epoch != L->rec.epoch + 1 || epoch == 0)
		return err_set(BTD_ERR_INVAL, "COMMIT of epoch %llu: the lease is at epoch %llu",
			       (unsigned long long)epoch, (unsigned long long)L->rec.epoch);
	if ((st = batch_check(m, slot, nranges, data_len, sum)))
		return st;
	uint64_t len = nranges * sizeof(struct batch_range) + data_len;
	struct memd_lease_rec r = L->rec;

	memd_persist(m, memd_chunk(m, r.staging), len ? len : 1);
	r.redo_epoch = epoch;
	r.redo_len = len;
	r.redo_sum = sum;
	r.redo_nranges = nranges;
	memd_lease_write(m, slot, &r);
	if (m->crash_after_redo) {
		m->crash_after_redo = 0;
		m->crashed = 1;
		return 1;
	}
	batch_apply(m, slot, nranges, data_len);
	r.epoch = epoch;
	r.redo_epoch = r.redo_len = r.redo_sum = r.redo_nranges = 0;
	memd_lease_write(m, slot, &r);
	return 0;
}

static void redo_replay(struct memd *m, int slot)
{
	struct memd_lease_rec r = m->lease[slot].rec;
	uint64_t head = r.redo_nranges * sizeof(struct batch_range);
	int ok = r.redo_epoch == r.epoch + 1 && r.redo_nranges <= PROTO_STAGING / 16 &&
		 head <= r.redo_len &&
		 !batch_check(m, slot, r.redo_nranges, r.redo_len - head, r.redo_sum);

	if (ok) {
		batch_apply(m, slot, r.redo_nranges, r.redo_len - head);
		r.epoch = r.redo_epoch;
	}
	memd_log(m, "lease %02x%02x%02x%02x: the redo of epoch %llu %s", r.owner[0], r.owner[1],
		 r.owner[2], r.owner[3], (unsigned long long)r.redo_epoch,
		 ok ? "applied again" : "dropped (its staging does not hold it)");
	r.redo_epoch = r.redo_len = r.redo_sum = r.redo_nranges = 0;
	memd_lease_write(m, slot, &r);
}

/* ---- the checker ---- */

int memd_check(const struct memd *m)
{
	if (m->map[0] != MEMD_MAP_META)
		return err_set(BTD_ERR_FORMAT, "map[0] is not the metadata chunk");
	for (unsigned s = 0; s < MEMD_LEASES; s++) {
		const struct memd_lease *L = &m->lease[s];
		const struct memd_lease_rec *r = &L->rec;

		if (r->gen && memcmp(&m->table[2 * s + L->cur], r, sizeof(*r)))
			return err_set(BTD_ERR_FORMAT, "lease %u: its record in memory is not the media's", s);
		if (r->state != MEMD_LEASE_LIVE)
			continue;
		if (!rec_counts(r) || (r->redo_epoch && !m->crashed) || r->nchunks == 0 ||
		    r->nchunks > PROTO_MAX_CHUNKS || r->image_size > (uint64_t)r->nchunks * PROTO_CHUNK)
			return err_set(BTD_ERR_FORMAT, "lease %u: its record is inconsistent", s);
		if (r->staging == 0 || r->staging >= m->nchunks ||
		    m->map[r->staging] != MEMD_MAP_ENTRY(s, 0))
			return err_set(BTD_ERR_FORMAT, "lease %u: staging chunk not mapped", s);
		for (uint32_t i = 0; i < r->nchunks; i++)
			if (L->chunk[i] == 0 || L->chunk[i] >= m->nchunks ||
			    m->map[L->chunk[i]] != MEMD_MAP_ENTRY(s, i + 1))
				return err_set(BTD_ERR_FORMAT, "lease %u: image chunk %u not mapped", s, i);
		if (L->holder && L->holder->slot != (int)s)
			return err_set(BTD_ERR_FORMAT, "lease %u: its session holds another", s);
	}
	for (uint64_t c = 1; c < m->nchunks; c++) {
		uint64_t e = m->map[c];

		if (e == MEMD_MAP_FREE)
			continue;
		if (!MEMD_MAP_IS_ENTRY(e))
			return err_set(BTD_ERR_FORMAT, "chunk %llu: its map entry is damaged",
				       (unsigned long long)c);
		const struct memd_lease_rec *r = &m->lease[MEMD_MAP_SLOT(e)].rec;

		if (r->state != MEMD_LEASE_LIVE ||
		    MEMD_MAP_IDX(e) > r->nchunks || (MEMD_MAP_IDX(e) == 0 && r->staging != c))
			return err_set(BTD_ERR_FORMAT, "chunk %llu: its map entry names no lease's chunk",
				       (unsigned long long)c);
	}
	return 0;
}
