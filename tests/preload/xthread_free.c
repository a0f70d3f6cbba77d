/* xthread_free.c: producers allocate, consumers free -- every free is a
 * remote one; and one thread frees what another thread reallocs. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "check.h"

#define PAIRS 2
#define ITEMS 200000
#define RING 1024

struct ring {
	_Atomic(char *) slot[RING];
	atomic_ulong sum_made, sum_freed;
};

static struct ring rings[PAIRS];

static void *producer(void *arg)
{
	struct ring *r = arg;

	for (unsigned i = 0; i < ITEMS; i++) {
		size_t n = 8 + i % 500;
		char *p = malloc(n);

		CHECK(p, "malloc");
		memset(p, (int)(i & 0x7f), n);
		p[0] = (char)(i & 0x7f);
		atomic_fetch_add(&r->sum_made, (unsigned char)p[0]);
		_Atomic(char *) *s = &r->slot[i % RING];
		char *expect = NULL;

		while (!atomic_compare_exchange_weak(s, &expect, p))
			expect = NULL;
	}
	return NULL;
}

static void *consumer(void *arg)
{
	struct ring *r = arg;

	for (unsigned i = 0; i < ITEMS; i++) {
		_Atomic(char *) *s = &r->slot[i % RING];
		char *p;

		while (!(p = atomic_exchange(s, NULL)))
			;
		atomic_fetch_add(&r->sum_freed, (unsigned char)p[0]);
		if (i % 16 == 0)
			p = realloc(p, 4000); /* realloc of a remote block */
		free(p);
	}
	return NULL;
}

int main(void)
{
	expect_btd();
	pthread_t t[2 * PAIRS];

	for (int i = 0; i < PAIRS; i++) {
		pthread_create(&t[2 * i], NULL, producer, &rings[i]);
		pthread_create(&t[2 * i + 1], NULL, consumer, &rings[i]);
	}
	for (int i = 0; i < 2 * PAIRS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < PAIRS; i++)
		CHECK(rings[i].sum_made == rings[i].sum_freed, "ring %d lost blocks", i);
	puts("xthread_free: ok");
	return 0;
}
