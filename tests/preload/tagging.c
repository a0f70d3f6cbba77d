/* tagging.c MODE: which allocations land in the pool.
 *   api    BTD_POLICY=tagged: btd_tag_begin/end (found with dlsym, as the
 *          preload exports them) tag this thread's allocations, nesting;
 *          another thread's stay transient
 *   sites  BTD_POLICY=tagged BTD_TAG_SITES=tagged_site_*: allocations made
 *          from functions matching the glob are persistent
 *   large  the default policy: small transient, >= BTD_LARGE_MIN persistent
 * A pointer is persistent when it lies in the mapping of $BTD_POOL. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "check.h"

static uintptr_t pool_lo, pool_hi;

static void find_pool(void)
{
	const char *pool = getenv("BTD_POOL");
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");

	CHECK(pool && f, "BTD_POOL and /proc/self/maps");
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (strstr(line, pool) && sscanf(line, "%lx-%lx", &lo, &hi) == 2) {
			if (!pool_lo || lo < pool_lo)
				pool_lo = lo;
			if (hi > pool_hi)
				pool_hi = hi;
		}
	}
	fclose(f);
}

static int persistent(const void *p)
{
	if (!pool_lo)
		find_pool();
	return (uintptr_t)p >= pool_lo && (uintptr_t)p < pool_hi;
}

void *tagged_site_alloc(size_t n);
void *plain_site_alloc(size_t n);

__attribute__((noinline)) void *tagged_site_alloc(size_t n)
{
	void *p = malloc(n);

	__asm__ volatile("" ::: "memory"); /* keep the call a call */
	return p;
}

__attribute__((noinline)) void *plain_site_alloc(size_t n)
{
	void *p = malloc(n);

	__asm__ volatile("" ::: "memory");
	return p;
}

static void *other_thread(void *arg)
{
	(void)arg;
	return malloc(48);
}

static void mode_api(void)
{
	int (*begin)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "btd_tag_begin");
	int (*end)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "btd_tag_end");

	CHECK(begin && end && from_btd((void *)begin), "btd_tag_begin is the preload's");
	void *before = malloc(48);

	CHECK(begin() == 0, "begin");
	void *tagged = malloc(48);

	CHECK(begin() == 0, "nested begin");
	CHECK(end() == 0, "nested end");
	void *still = calloc(1, 48);
	pthread_t t;
	void *theirs;

	pthread_create(&t, NULL, other_thread, NULL);
	pthread_join(t, &theirs);
	CHECK(end() == 0, "end");
	void *after = malloc(48);

	CHECK(end() != 0, "an unmatched end is an error");
	CHECK(!persistent(before), "allocation before begin is persistent");
	CHECK(persistent(tagged), "tagged allocation %p is not in the pool", tagged);
	CHECK(persistent(still), "allocation inside a nested tag is not persistent");
	CHECK(!persistent(theirs), "another thread's allocation was tagged");
	CHECK(!persistent(after), "allocation after end is persistent");
	free(before), free(tagged), free(still), free(theirs), free(after);
}

static void mode_sites(void)
{
	void *a = tagged_site_alloc(100), *b = plain_site_alloc(100), *c = malloc(100);

	CHECK(persistent(a), "the tagged site's block %p is not in the pool", a);
	CHECK(!persistent(b), "an untagged site's block is in the pool");
	CHECK(!persistent(c), "main's block is in the pool");
	for (int i = 0; i < 1000; i++) { /* the cache answers the same */
		void *x = tagged_site_alloc(32), *y = plain_site_alloc(32);

		CHECK(persistent(x) && !persistent(y), "cached site decision changed");
		free(x), free(y);
	}
	free(a), free(b), free(c);
}

static void mode_large(void)
{
	void *small = malloc(1000), *big = malloc(1 << 20);

	CHECK(!persistent(small), "a small block is persistent under the default policy");
	CHECK(persistent(big), "a 1 MiB block is not persistent under the default policy");
	big = realloc(big, 2 << 20);
	CHECK(persistent(big), "realloc moved a persistent block out of the pool");
	/* With the pool open, realloc(p, 0) of a transient block frees it
	 * through jemalloc, and of a persistent one through the heap. */
	CHECK(realloc(small, 0) == NULL, "realloc(transient, 0)");
	CHECK(realloc(big, 0) == NULL, "realloc(persistent, 0)");
}

int main(int argc, char **argv)
{
	expect_btd();
	CHECK(argc == 2, "usage: tagging api|sites|large");
	if (!strcmp(argv[1], "api"))
		mode_api();
	else if (!strcmp(argv[1], "sites"))
		mode_sites();
	else
		mode_large();
	printf("tagging %s: ok\n", argv[1]);
	return 0;
}
