/* fork.c: a fork child's view of the pool -- a snapshot, paid for only by
 * the children that need one.
 *
 * THE PROBLEM.  The pool is a MAP_SHARED file mapping: a child writing into
 * it would write into its parent's heap, and it would see its parent's
 * later writes (bash and git break when it does).  The child needs the pool
 * as it was at the fork, privately.  Copying it at every fork costs O(heap)
 * (fork+exec of /bin/true took 89 ms with 100 MB of persistent heap,
 * against 6 ms without btd), and most children never look at it: they exec,
 * or run a little and exit.
 *
 * THE SNAPSHOT, LAZILY.  The child's fork handler swaps its view: the
 * shared mapping moves aside (mremap, kept -- it holds the pool's file, and
 * with it the lock, so no other process can open the pool meanwhile) and a
 * MAP_PRIVATE mapping of the same file takes its place.  A private mapping
 * shows the file until the child writes a page, then the child's own copy:
 * the child's writes never reach the file.  It is a snapshot only while
 * nobody writes the file -- so the forking thread of the parent waits, in
 * its fork handler, until the child no longer depends on the file:
 *
 *   the child execs or exits          nothing was copied
 *   it is still running after         a thread of the child copies what it
 *   FORK_GRACE_MS                     has not yet written: MADV_POPULATE_WRITE
 *                                     over the pool's used pages, then drops
 *                                     the shared mapping
 *   it forks in the meantime          it copies first (its own fork handler),
 *                                     so the grandchild inherits a snapshot
 *
 * The parent learns it from a close-on-exec socket pair (a pipe would kill
 * with SIGPIPE a child whose parent died) whose one end only the child
 * holds: a byte when the copy is done, a hang-up at exec or exit.  A
 * hang-up alone proves nothing (a child may close all its descriptors and
 * run on), so the parent then confirms in /proc/PID/maps that the child
 * maps the pool file shared no more.  The wait is bounded (FORK_WAIT_MS)
 * like the copy it replaces.
 *
 *   fork+exec, and children that exit quickly (a shell's $(...)): the
 *   parent waits for the exec or exit, and nothing is copied
 *   long-lived children (a server's workers, redis's BGSAVE): the grace
 *   period, then the same copy as before, done by the kernel
 *
 * A program whose children live on (a server forking workers or a
 * background save) would pay the grace period and a copy made while the
 * child already works, slower than a copy made before it starts.  So the
 * parent remembers: after a child that had to copy, the next forks copy at
 * once, in the child's fork handler (EAGER); every EAGER_PROBE-th fork
 * tries the lazy way again, and a child that execs or exits in time brings
 * the lazy way back.
 *
 * What the parent's other threads write while its forking thread waits may
 * show in the child, as before.  Durability in the parent is unchanged: the
 * file is always its own.  vfork and posix_spawn run no fork handlers and
 * cost nothing.  Where a step fails (the file cannot be reopened, a mapping
 * cannot move, no thread can start), the child copies at once, as the
 * eager path always did. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "heap.h"
#include "heap_int.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* How long a child may keep depending on the file before it copies. */
#define FORK_GRACE_MS 20
/* How long the parent waits at most (as it waited for the copy before). */
#define FORK_WAIT_MS 10000

/* A socket pair: [0] the parent reads, [1] the child writes (send with
 * MSG_NOSIGNAL: no SIGPIPE when the parent is gone); close-on-exec. */
static int fork_pipe[2] = { -1, -1 };

/* The parent's memory of its last children (see above); inherited. */
#define EAGER_PROBE 8
static int fork_eager;           /* this fork copies at once */
static int children_live_on;     /* the last lazy child had to copy */
static unsigned eager_forks;     /* forks copied at once since the last probe */

/* The child's side. */
static struct {
	void *shared;              /* the parent's mapping, moved aside; NULL when dropped */
	int pipe_w;                /* the write end, until the copy is done */
	dev_t pipe_dev;            /* what it is: the child may have closed the */
	ino_t pipe_ino;            /* number, and another file may hold it now */
	pthread_mutex_t lock;      /* one copy, by the thread or by a fork */
} child = { .pipe_w = -1, .lock = PTHREAD_MUTEX_INITIALIZER };

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the child ----------------------------------------------------------- */

/* Copy every used page the child has not written yet, so that it depends
 * on the file no more; then drop the shared mapping and tell the parent. */
static void child_materialize(void)
{
	struct pool *p = &heap.pool;

	pthread_mutex_lock(&child.lock);
	if (child.shared) {
		madvise(p->base, POOL_ROOTS_OFF + POOL_ROOTS_MAX * sizeof(struct pool_root),
			MADV_POPULATE_WRITE);
		/* Used data pages, not the holes: a free page's content is
		 * nobody's, and the reservation may be far larger than the heap. */
		for (size_t pg = space_next(0, heap.top, 0); pg < heap.top;) {
			size_t end = space_next(pg, heap.top, 1);

			madvise(p->data + pg * POOL_PAGE, (end - pg) * POOL_PAGE, MADV_POPULATE_WRITE);
			pg = space_next(end, heap.top, 0);
		}
		munmap(child.shared, p->size);
		child.shared = NULL;
	}
	struct stat st;

	/* Only if the number is still our socket: a child that closed its
	 * descriptors may have given the number to a file of its own. */
	if (child.pipe_w >= 0 && !fstat(child.pipe_w, &st) && st.st_dev == child.pipe_dev &&
	    st.st_ino == child.pipe_ino) {
		if (send(child.pipe_w, "d", 1, MSG_NOSIGNAL) < 0) {
			/* the parent sees the hang-up and our maps */
		}
		close(child.pipe_w);
	}
	child.pipe_w = -1;
	pthread_mutex_unlock(&child.lock);
}

static void *grace_thread(void *arg)
{
	struct timespec ts = { 0, FORK_GRACE_MS * 1000000L };

	(void)arg;
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
	child_materialize();
	return NULL;
}

/* Swap the child's view for a private one (see THE SNAPSHOT); -1 when it
 * cannot, and nothing was changed. */
static int child_private_view(void)
{
	struct pool *p = &heap.pool;
	struct stat st;
	int fd = open(p->path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) || st.st_dev != p->dev || st.st_ino != p->ino) {
		close(fd);
		return -1;
	}
	void *aside = mmap(NULL, p->size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			   -1, 0);

	if (aside == MAP_FAILED) {
		close(fd);
		return -1;
	}
	void *moved = mremap(p->base, p->size, p->size, MREMAP_MAYMOVE | MREMAP_FIXED, aside);

	if (moved == MAP_FAILED) {
		munmap(aside, p->size);
		close(fd);
		return -1;
	}
	void *view = mmap(p->base, p->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, 0);

	close(fd);
	if (view == MAP_FAILED) { /* put the shared mapping back: the eager copy follows */
		mremap(moved, p->size, p->size, MREMAP_MAYMOVE | MREMAP_FIXED, p->base);
		return -1;
	}
	child.shared = moved;
	return 0;
}

/* The eager copy: a private copy of the used pool in anonymous memory at
 * the same addresses, the shared mapping gone. */
static void *copy_out(const char *src, size_t len, size_t top_pages)
{
	char *tmp = len ? mmap(NULL, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) : MAP_FAILED;

	if (tmp == MAP_FAILED)
		return NULL;
	if (!top_pages) {
		memcpy(tmp, src, len);
		return tmp;
	}
	/* Data pages, but for the holes: reading one through the shared
	 * mapping would fill it again (tmpfs). */
	for (size_t pg = space_next(0, top_pages, 0); pg < top_pages;) {
		size_t end = space_next(pg, top_pages, 1);

		memcpy(tmp + pg * POOL_PAGE, src + pg * POOL_PAGE, (end - pg) * POOL_PAGE);
		pg = space_next(end, top_pages, 0);
	}
	return tmp;
}

static void copy_back(void *tmp, char *to, size_t len)
{
	if (tmp)
		mremap(tmp, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
}

static void child_copy_now(void)
{
	struct pool *p = &heap.pool;
	size_t meta = POOL_ROOTS_OFF + POOL_ROOTS_MAX * sizeof(struct pool_root);
	size_t data = heap.top * POOL_PAGE;
	void *m = copy_out(p->base, meta, 0), *d = copy_out(p->data, data, heap.top);

	mmap(p->base, p->size, PROT_READ | PROT_WRITE,
	     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
	copy_back(m, p->base, meta);
	copy_back(d, p->data, data);
}

/* ---- the fork handlers ------------------------------------------------- */

void heap_fork_settle(void)
{
	if (__atomic_load_n(&child.shared, __ATOMIC_ACQUIRE))
		child_materialize();
}

/* A fork inside a fork of this thread (from a signal handler while the
 * parent waits): heap.lock is this thread's already; that child copies at
 * once, and nothing is locked or waited for. */
static __thread int fork_depth;
static __thread int fork_nested;

void heap_fork_prepare(void)
{
	if (fork_depth++) {
		fork_nested = 1;
		return;
	}
	heap_fork_settle(); /* a child forking: its children inherit a snapshot */
	pthread_mutex_lock(&heap.lock);
	pthread_mutex_lock(&heap.pool.grow_lock);
	if (heap.open && !heap_frozen &&
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fork_pipe))
		fork_pipe[0] = fork_pipe[1] = -1;
	fork_eager = children_live_on && eager_forks < EAGER_PROBE;
	eager_forks = fork_eager ? eager_forks + 1 : 0;
}

/* Whether process pid still maps the pool file shared (see THE SNAPSHOT). */
static int child_depends(long pid)
{
	return pid > 0 && pool_maps_shared(pid, heap.pool.dev, heap.pool.ino);
}

enum wait_outcome { CHILD_GONE, CHILD_COPIED, CHILD_TIMEOUT };

static enum wait_outcome parent_wait(int fd)
{
	uint64_t deadline = now_ms() + FORK_WAIT_MS;
	long pid = 0;
	ssize_t got = 0;

	/* The child's pid first, then a byte (copied) or the hang-up. */
	while (got < (ssize_t)sizeof(pid)) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		uint64_t now = now_ms();

		if (now >= deadline || poll(&pfd, 1, (int)(deadline - now)) == 0)
			return CHILD_TIMEOUT;
		ssize_t n = read(fd, (char *)&pid + got, sizeof(pid) - (size_t)got);

		if (n == 0) /* it copied at once (EAGER, or the lazy way failed) */
			return CHILD_COPIED;
		if (n > 0)
			got += n;
	}
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		uint64_t now = now_ms();
		char c;

		if (now >= deadline)
			break;
		if (poll(&pfd, 1, (int)(deadline - now)) == 0)
			break;
		ssize_t n = read(fd, &c, 1);

		if (n > 0)
			return CHILD_COPIED;
		if (n == 0) { /* hung up: exec'd, exited -- or closed its descriptors */
			while (child_depends(pid) && now_ms() < deadline) {
				struct timespec ts = { 0, 500000 };

				nanosleep(&ts, NULL);
			}
			return CHILD_GONE;
		}
	}
	log_msg(LOG_WARN, "a fork child (pid %ld) still depends on pool %s after %d s; "
		"continuing: it may see this process's later writes", pid, heap.pool.path,
		FORK_WAIT_MS / 1000);
	return CHILD_TIMEOUT;
}

void heap_fork_parent(void)
{
	if (fork_depth > 1) { /* the nested fork's; the outer one still waits */
		fork_depth--;
		fork_nested = 0;
		return;
	}
	if (fork_pipe[0] >= 0) {
		close(fork_pipe[1]);
		enum wait_outcome o = parent_wait(fork_pipe[0]);

		if (!fork_eager)
			children_live_on = o != CHILD_GONE;
		close(fork_pipe[0]);
		fork_pipe[0] = fork_pipe[1] = -1;
	}
	pthread_mutex_unlock(&heap.pool.grow_lock);
	pthread_mutex_unlock(&heap.lock);
	fork_depth = 0;
}

void heap_fork_child(void)
{
	if (fork_nested) { /* see heap_fork_prepare */
		fork_depth = fork_nested = 0;
		if (heap.open && !heap_frozen) {
			heap_frozen = 1;
			child_copy_now();
		}
		pthread_mutex_init(&heap.pool.grow_lock, NULL);
		pthread_mutex_init(&heap.lock, NULL);
		return;
	}
	fork_depth = 0;
	pthread_mutex_init(&heap.pool.grow_lock, NULL);
	pthread_mutex_init(&heap.lock, NULL);
	pthread_mutex_init(&child.lock, NULL);
	if (!heap.open || heap_frozen) {
		/* A grandchild: the snapshot it inherited is complete (prepare);
		 * the pipe of its parent's fork is not its to write. */
		if (child.pipe_w >= 0)
			close(child.pipe_w);
		child.pipe_w = -1;
		return;
	}
	heap_frozen = 1;
	if (fork_pipe[1] < 0 || fork_eager || child_private_view()) {
		child_copy_now();
	} else {
		long pid = (long)getpid();
		pthread_t t;
		pthread_attr_t attr;

		struct stat st;

		child.pipe_w = fork_pipe[1];
		fork_pipe[1] = -1;
		if (!fstat(child.pipe_w, &st)) {
			child.pipe_dev = st.st_dev;
			child.pipe_ino = st.st_ino;
		}
		if (send(child.pipe_w, &pid, sizeof(pid), MSG_NOSIGNAL) != sizeof(pid)) {
			child_materialize();
		} else {
			pthread_attr_init(&attr);
			pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
			pthread_attr_setstacksize(&attr, 64 << 10);
			if (pthread_create(&t, &attr, grace_thread, NULL))
				child_materialize();
			pthread_attr_destroy(&attr);
		}
	}
	if (fork_pipe[0] >= 0)
		close(fork_pipe[0]);
	if (fork_pipe[1] >= 0)
		close(fork_pipe[1]);
	fork_pipe[0] = fork_pipe[1] = -1;
}
