/* crash.c: the mechanism behind the named crash points (see crash.h).
 *
 * Compiled only with the meson option crash_points.  BTD_CRASH_AT arms one
 * point: crash_armed tells every CRASH_POINT to call crash_hit, which
 * counts the passes of the armed point (all threads together) and, at the
 * nth, crashes.  The crash is what `kill -9` would do, from the inside and
 * at an exact step: the registered action first (the simulated power
 * failure of BTD_CRASH_SIM, heap/pmem_sim.c), then SIGKILL to the process.
 * Not exit() nor abort(): no atexit handler and no destructor may run --
 * libbtd's destructor would mark the pool clean, and a core dump is not
 * what a power failure leaves.
 *
 * Once the crash has begun, every other thread that reaches a crash point
 * stops there for good, so that no thread passes another point of the
 * protocol while the action rewrites the pool.  A thread that reaches no
 * point keeps running until the SIGKILL lands -- unless the action stops
 * it first (crash_stop_others): the simulated power failure must, since a
 * thread that went on would read the words the failure takes back, follow
 * a pointer that is no more, and fault or scribble where no power failure
 * would. */
#include "crash.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "settings.h"

int crash_armed;
unsigned crash_drops;

static enum crash_id armed_id;   /* the point BTD_CRASH_AT names */
static unsigned long armed_nth;  /* and the pass that crashes */
static unsigned long passes;     /* of the armed point so far */
static int crashing;             /* the crash has begun */
static crash_action action;
static int sim_set;              /* BTD_CRASH_SIM */
static uint64_t sim_seed;

static const struct point {
	enum crash_id id;
	const char *name;
} points[] = {
#define CRASH_ROW(id, num, name) { id, name },
	CRASH_POINTS(CRASH_ROW)
#undef CRASH_ROW
};

const char *crash_name(enum crash_id id)
{
	for (size_t i = 0; i < BTD_ARRAY_SIZE(points); i++)
		if (points[i].id == id)
			return points[i].name;
	return NULL;
}

void crash_set_action(crash_action a)
{
	__atomic_store_n(&action, a, __ATOMIC_RELEASE);
}

int crash_sim_seed(uint64_t *seed)
{
	*seed = sim_seed;
	return sim_set;
}

/* STOPPING THE OTHER THREADS.  Each gets a signal whose handler parks it
 * for good; the crashing thread waits until all have arrived (a thread
 * that has the signal blocked is waited for 200 ms, then left running).
 * The process is about to die: the handler is installed only now. */
static unsigned parked;

static void park(int sig)
{
	(void)sig;
	__atomic_add_fetch(&parked, 1, __ATOMIC_ACQ_REL);
	for (;;)
		pause();
}

void crash_stop_others(void)
{
	int sig = SIGRTMIN + 3;
	struct sigaction sa;
	long self = syscall(SYS_gettid);
	unsigned sent = 0;
	char buf[4096];
	long n;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = park;
	sigfillset(&sa.sa_mask);
	if (sigaction(sig, &sa, NULL))
		return;
	int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	while (fd >= 0 && (n = getdents64(fd, buf, sizeof(buf))) > 0) {
		for (long off = 0; off < n;) {
			const struct dirent64 *d = (const void *)(buf + off);
			long tid = 0;

			for (const char *c = d->d_name; *c >= '0' && *c <= '9'; c++)
				tid = tid * 10 + (*c - '0');
			if (tid > 0 && tid != self &&
			    !syscall(SYS_tgkill, (long)getpid(), tid, sig))
				sent++;
			off += d->d_reclen;
		}
	}
	if (fd >= 0)
		close(fd);
	for (unsigned ms = 0; ms < 200 && __atomic_load_n(&parked, __ATOMIC_ACQUIRE) < sent; ms++)
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
}

static BTD_NORETURN void crash_now(void)
{
	crash_action a = __atomic_load_n(&action, __ATOMIC_ACQUIRE);

	log_msg(LOG_INFO, "crash point %s:%lu reached in pid %ld: crashing%s",
		crash_name(armed_id), armed_nth, (long)getpid(),
		a ? ", with the simulated power failure" : "");
	if (a)
		a();
	for (;;) {
		kill(getpid(), SIGKILL);
		pause();
	}
}

void crash_hit(enum crash_id id)
{
	if (__atomic_load_n(&crashing, __ATOMIC_ACQUIRE)) {
		for (;;) /* another thread is crashing the process: stop here */
			pause();
	}
	if (id != armed_id)
		return;
	if (__atomic_add_fetch(&passes, 1, __ATOMIC_ACQ_REL) != armed_nth)
		return;
	__atomic_store_n(&crashing, 1, __ATOMIC_RELEASE);
	crash_now();
}

/* A decimal number no larger than max, and nothing after it. */
static int parse_number(const char *v, uint64_t max, uint64_t *out)
{
	uint64_t n = 0;

	if (*v < '0' || *v > '9')
		return -1;
	for (; *v >= '0' && *v <= '9'; v++) {
		if (__builtin_mul_overflow(n, 10, &n) ||
		    __builtin_add_overflow(n, (uint64_t)(*v - '0'), &n) || n > max)
			return -1;
	}
	if (*v)
		return -1;
	*out = n;
	return 0;
}

static BTD_NORETURN void refuse(void)
{
	_exit(SETTINGS_STRICT_EXIT);
}

static BTD_NORETURN void list_points(void)
{
	for (size_t i = 0; i < BTD_ARRAY_SIZE(points); i++)
		log_fd(STDOUT_FILENO, "%-20s %u", points[i].name, (unsigned)points[i].id);
	_exit(0);
}

/* name or name:nth */
static void arm(const char *v)
{
	const char *colon = strchr(v, ':');
	size_t len = colon ? (size_t)(colon - v) : strlen(v);
	uint64_t nth = 1;

	if (!strcmp(v, "list"))
		list_points();
	for (size_t i = 0; i < BTD_ARRAY_SIZE(points); i++) {
		if (strlen(points[i].name) == len && !memcmp(points[i].name, v, len)) {
			if (colon && (parse_number(colon + 1, UINT32_MAX, &nth) || !nth)) {
				log_msg(LOG_ERROR, "BTD_CRASH_AT=%s: the pass after ':' must be a "
					"number from 1 (the first pass of %.*s) to %u; exiting "
					"(status %d)", v, (int)len, v, UINT32_MAX,
					SETTINGS_STRICT_EXIT);
				refuse();
			}
			armed_id = points[i].id;
			armed_nth = (unsigned long)nth;
			__atomic_store_n(&crash_armed, 1, __ATOMIC_RELEASE);
			return;
		}
	}
	log_msg(LOG_ERROR, "BTD_CRASH_AT=%s: no crash point is named %.*s; use name or "
		"name:nth, with a name that BTD_CRASH_AT=list prints; exiting (status %d)",
		v, (int)len, v, SETTINGS_STRICT_EXIT);
	refuse();
}

void crash_init(char *const *envp, int secure)
{
	for (char *const *e = envp; e && *e && !secure; e++) {
		if (!strncmp(*e, "BTD_CRASH_SIM=", 14)) {
			if (parse_number(*e + 14, UINT64_MAX, &sim_seed)) {
				log_msg(LOG_ERROR, "%s: the seed must be a decimal number "
					"(BTD_CRASH_SIM=42); exiting (status %d)", *e,
					SETTINGS_STRICT_EXIT);
				refuse();
			}
			sim_set = 1;
		}
	}
	for (char *const *e = envp; e && *e && !secure; e++)
		if (!strncmp(*e, "BTD_CRASH_AT=", 13))
			arm(*e + 13);
	for (char *const *e = envp; e && *e && !secure; e++) {
		if (strncmp(*e, "BTD_CRASH_DROP=", 15))
			continue;
		if (!strcmp(*e + 15, "tx.commit")) {
			crash_drops |= CRASH_DROP_TX_COMMIT;
		} else if (!strcmp(*e + 15, "slab.head")) {
			crash_drops |= CRASH_DROP_SLAB_HEAD;
		} else {
			log_msg(LOG_ERROR, "%s: the flushes a test may drop are tx.commit and "
				"slab.head; exiting (status %d)", *e, SETTINGS_STRICT_EXIT);
			refuse();
		}
		log_msg(LOG_WARN, "%s: a flush of btd is left out, on purpose: this pool is "
			"not failure-atomic", *e);
	}
}
