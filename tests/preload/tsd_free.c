/* tsd_free.c: frees from places that run late -- pthread key destructors
 * of exiting threads (including the main thread's pthread_exit), atexit
 * handlers, and ELF destructors that run after btd's own. */
#include <pthread.h>
#include <unistd.h>

#include "check.h"

static pthread_key_t key;
static void *late_block;
static void *atexit_block;

static void key_destructor(void *p)
{
	/* Allocate and free again while the thread is being torn down. */
	void *q = malloc(123);

	free(p);
	free(q);
}

static void *thread(void *arg)
{
	(void)arg;
	pthread_setspecific(key, malloc(4096));
	return NULL;
}

static void at_exit(void)
{
	free(atexit_block);
	free(malloc(77));
}

/* Priority 101 runs last among destructors of this object; the preload's
 * destructor may already have run by then. */
__attribute__((destructor(101))) static void late(void)
{
	free(late_block);
	free(malloc(55));
	write(1, "tsd_free: destructors ok\n", 25);
}

static void *last_thread(void *arg)
{
	(void)arg;
	pthread_setspecific(key, malloc(99));
	return NULL;
}

int main(void)
{
	expect_btd();
	CHECK(pthread_key_create(&key, key_destructor) == 0, "key");
	for (int i = 0; i < 200; i++) {
		pthread_t t;

		CHECK(pthread_create(&t, NULL, thread, NULL) == 0, "create");
		pthread_join(t, NULL);
	}
	late_block = malloc(5000);
	atexit_block = malloc(6000);
	atexit(at_exit);
	pthread_setspecific(key, malloc(10));
	puts("tsd_free: threads ok");
	fflush(stdout);
	/* The main thread leaves through pthread_exit: its key destructors run,
	 * and the process exits when the last thread does. */
	pthread_t t;

	CHECK(pthread_create(&t, NULL, last_thread, NULL) == 0, "create");
	pthread_detach(t);
	pthread_exit(NULL);
}
