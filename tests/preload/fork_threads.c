/* fork_threads.c: fork while other threads allocate.  Some children go on
 * allocating (jemalloc's and btd's locks must be sane in the child), some
 * exec a program (the common case, which must stay cheap). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define THREADS 3
#define FORKS 60

static atomic_int stop;

static void *churn(void *arg)
{
	uint64_t x = (uintptr_t)arg * 2654435761u + 1;
	void *slots[256] = { 0 };

	while (!atomic_load(&stop)) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		unsigned i = x % 256;

		free(slots[i]);
		slots[i] = malloc(16 + x % 8000);
		CHECK(slots[i], "malloc in thread");
		*(char *)slots[i] = 1;
	}
	for (unsigned i = 0; i < 256; i++)
		free(slots[i]);
	return NULL;
}

static void child_allocates(void)
{
	/* Only this thread exists in the child; it must be able to use the
	 * heap, create threads, and free blocks its parent's threads made. */
	void *blocks[1000];

	for (int i = 0; i < 1000; i++)
		blocks[i] = malloc(1 + i * 7);
	for (int i = 0; i < 1000; i++)
		free(blocks[i]);
	pthread_t t;

	atomic_store(&stop, 0);
	CHECK(pthread_create(&t, NULL, churn, (void *)7) == 0, "thread in child");
	usleep(2000);
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	_exit(42);
}

int main(void)
{
	expect_btd();
	pthread_t t[THREADS];

	for (uintptr_t i = 0; i < THREADS; i++)
		CHECK(pthread_create(&t[i], NULL, churn, (void *)(i + 1)) == 0, "create");
	for (int f = 0; f < FORKS; f++) {
		pid_t pid = fork();

		CHECK(pid >= 0, "fork");
		if (pid == 0) {
			if (f % 2)
				child_allocates();
			execl("/bin/sh", "sh", "-c", "exit 43", (char *)NULL);
			_exit(99);
		}
		int status;

		CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == (f % 2 ? 42 : 43),
		      "child %d ended with status 0x%x", f, status);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	puts("fork_threads: ok");
	return 0;
}
