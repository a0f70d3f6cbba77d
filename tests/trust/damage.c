/* damage.c: damage a pool file the way media errors and bugs would, for
 * the checker's tests.  Usage: damage POOL WHAT [SEED]
 *
 *   zero-slab     zero the descriptor of the slab holding the root "list"
 *   slab-class    change that descriptor's class byte (32-byte blocks)
 *   descs SEED    overwrite 64 random descriptors below heap_top
 *   roots SEED    random bytes over the whole root table
 *   header1       break header copy 1's checksum
 *   newest        break the newer header copy's checksum
 *   bitmap0       zero the block-start bitmap
 *   descs0        zero every page descriptor
 *   roots0        zero the root table
 *   minor0        rewrite the pool as format 1.0 (root words without checks) */
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../heap/layout.h"
#include "../../heap/pool.h"

static uint64_t rng = 88172645463325252u;

static uint64_t next(void)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return rng;
}

static void reseal(struct pool_header *h)
{
	h->checksum = pool_checksum(h, offsetof(struct pool_header, checksum));
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	int fd = open(argv[1], O_RDWR);
	struct stat st;

	if (fd < 0 || fstat(fd, &st))
		return perror(argv[1]), 2;
	if (argc > 3)
		rng += strtoull(argv[3], NULL, 10) * 0x9e3779b97f4a7c15u;
	char *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	struct pool_header h;

	if (m == MAP_FAILED || pool_read_header(fd, &h, NULL) < 0)
		return fprintf(stderr, "damage: not a pool\n"), 2;
	uint64_t *desc = (uint64_t *)(m + h.desc_off);
	struct pool_root *roots = (struct pool_root *)(m + POOL_ROOTS_OFF);
	const char *what = argv[2];

	if (!strcmp(what, "zero-slab") || !strcmp(what, "slab-class")) {
		uint64_t a = 0;

		for (unsigned i = 0; i < POOL_ROOTS_MAX; i++)
			if (roots[i].tag && !strcmp(roots[i].name, "list"))
				a = roots[i].ptr & ROOT_ADDR_MASK;
		uint64_t pg = (a - h.base - h.data_off) / POOL_PAGE;

		while (pg > 0 && DESC_KIND(desc[pg]) != DESC_SLAB)
			pg--;
		if (!a || DESC_KIND(desc[pg]) != DESC_SLAB)
			return fprintf(stderr, "damage: no slab under root list\n"), 1;
		if (!strcmp(what, "slab-class"))
			desc[pg] = (desc[pg] & ~(uint64_t)0xff00) | (1u << 8);
		else
			desc[pg] = 0;
		printf("damaged the descriptor of page %llu\n", (unsigned long long)pg);
	} else if (!strcmp(what, "descs")) {
		for (int i = 0; i < 64; i++)
			desc[next() % h.heap_top] = next();
	} else if (!strcmp(what, "roots")) {
		for (size_t i = 0; i < POOL_ROOTS_MAX * sizeof(struct pool_root) / 8; i++)
			((uint64_t *)roots)[i] = next();
	} else if (!strcmp(what, "header1")) {
		((struct pool_header *)(m + POOL_HEADER_SLOT))->epoch ^= 0x40;
	} else if (!strcmp(what, "newest")) {
		struct pool_header *c0 = (struct pool_header *)m;
		struct pool_header *c1 = (struct pool_header *)(m + POOL_HEADER_SLOT);

		(c1->epoch > c0->epoch ? c1 : c0)->checksum ^= 1;
	} else if (!strcmp(what, "bitmap0")) {
		memset(m + h.bitmap_off, 0, h.heap_top * POOL_PAGE / POOL_GRANULE / 8);
	} else if (!strcmp(what, "roots0")) {
		memset(roots, 0, POOL_ROOTS_MAX * sizeof(*roots));
	} else if (!strcmp(what, "descs0")) {
		memset(desc, 0, h.heap_top * sizeof(uint64_t));
	} else if (!strcmp(what, "minor0")) {
		for (unsigned i = 0; i < POOL_ROOTS_MAX; i++)
			if (roots[i].tag)
				roots[i].ptr &= ROOT_ADDR_MASK;
		for (int slot = 0; slot < 2; slot++) {
			struct pool_header *c = (struct pool_header *)(m + slot * POOL_HEADER_SLOT);

			c->minor = 0;
			reseal(c);
		}
	} else {
		return fprintf(stderr, "damage: unknown %s\n", what), 2;
	}
	msync(m, (size_t)st.st_size, MS_SYNC);
	return 0;
}
