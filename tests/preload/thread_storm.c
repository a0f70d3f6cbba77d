/* thread_storm.c: waves of short-lived threads, joined and detached, each
 * allocating, handing blocks to the next wave, and exiting. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#include "check.h"

#define WAVES 40
#define PER_WAVE 50

static void *handoff[PER_WAVE];
static atomic_int detached_done;

static void *worker(void *arg)
{
	uintptr_t i = (uintptr_t)arg;

	free(handoff[i]); /* made by a thread of the previous wave */
	handoff[i] = malloc(64 + i * 32);
	CHECK(handoff[i], "malloc");
	for (int k = 0; k < 100; k++)
		free(malloc(16 + k * 40));
	return NULL;
}

static void *detached(void *arg)
{
	free(malloc(1000 + (uintptr_t)arg));
	atomic_fetch_add(&detached_done, 1);
	return NULL;
}

int main(void)
{
	expect_btd();
	for (int w = 0; w < WAVES; w++) {
		pthread_t t[PER_WAVE];

		for (uintptr_t i = 0; i < PER_WAVE; i++)
			CHECK(pthread_create(&t[i], NULL, worker, (void *)i) == 0, "create");
		for (int i = 0; i < PER_WAVE; i++)
			pthread_join(t[i], NULL);
		pthread_t d;

		CHECK(pthread_create(&d, NULL, detached, (void *)(uintptr_t)w) == 0, "create");
		pthread_detach(d);
	}
	for (int i = 0; i < PER_WAVE; i++)
		free(handoff[i]);
	for (int spin = 0; atomic_load(&detached_done) < WAVES && spin < 5000; spin++)
		usleep(1000);
	CHECK(atomic_load(&detached_done) == WAVES, "detached threads finished");
	printf("thread_storm: ok (%d threads)\n", WAVES * (PER_WAVE + 1));
	/* Exit from a secondary thread's view too: main returns while nothing
	 * else runs, and the destructors free what they hold. */
	return 0;
}
