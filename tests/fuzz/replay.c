/* replay.c: fuzz_replay -- runs corpus files through the fuzz harness without libFuzzer.
 *
 *   fuzz_replay [--timeout SECONDS] FILE|DIR...   every file (a directory's in
 *                                                 name order) through every
 *                                                 check of fuzz_pool.c
 *   fuzz_replay --show FILE...                    what each input patches
 *   fuzz_replay --pool FILE OUT                   write the pool FILE makes to
 *                                                 OUT (for btd info, btd check)
 *
 * Exit 0 when every input passed; a finding aborts with the input's name
 * and what failed, a hang (an input running longer than the timeout, 30 s
 * by default) exits 1 naming it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fuzz_pool.h"

#define INPUT_MAX ((size_t)1 << 20)

static char current[4096];
static unsigned timeout_s = 30;
static int report_fd = STDERR_FILENO;    /* stderr as it was: the harness captures fd 2 */
static struct sigaction previous[NSIG];

static void on_alarm(int sig)
{
	static const char a[] = "fuzz_replay: FINDING: a hang: ";
	static const char b[] = " still runs after the timeout\n";

	(void)sig;
	write(report_fd, a, sizeof(a) - 1);
	write(report_fd, current, strlen(current));
	write(report_fd, b, sizeof(b) - 1);
	_exit(1);
}

/* A crash names its input, then goes on as it would have: the previous
 * handler (a sanitizer's report) or the default action. */
static void on_crash(int sig)
{
	static const char a[] = "fuzz_replay: FINDING: signal ";
	static const char b[] = " while running ";
	char num[4] = { (char)('0' + sig / 10 % 10), (char)('0' + sig % 10), '\0' };
	const char *n = sig < 10 ? num + 1 : num;

	write(report_fd, a, sizeof(a) - 1);
	write(report_fd, n, strlen(n));
	write(report_fd, b, sizeof(b) - 1);
	write(report_fd, current, strlen(current));
	write(report_fd, "\n", 1);
	sigaction(sig, &previous[sig], NULL);
	if (sig != SIGSEGV && sig != SIGBUS && sig != SIGFPE && sig != SIGILL)
		raise(sig); /* a fault comes back by itself when the handler returns */
}

static uint8_t *slurp(const char *p, size_t *n)
{
	static uint8_t buf[INPUT_MAX];
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	ssize_t got;

	if (fd < 0) {
		fprintf(stderr, "fuzz_replay: %s: %s\n", p, strerror(errno));
		exit(2);
	}
	got = read(fd, buf, sizeof(buf));
	close(fd);
	if (got < 0) {
		fprintf(stderr, "fuzz_replay: %s: %s\n", p, strerror(errno));
		exit(2);
	}
	*n = (size_t)got;
	return buf;
}

static unsigned run_file(const char *p, int show)
{
	size_t n;
	uint8_t *in = slurp(p, &n);

	if (show) {
		printf("%s: ", p);
		fflush(stdout);
		fuzz_describe(STDOUT_FILENO, in, n);
		return 1;
	}
	snprintf(current, sizeof(current), "%s", p);
	fuzz_set_input_name(current);
	alarm(timeout_s);
	LLVMFuzzerTestOneInput(in, n);
	alarm(0);
	return 1;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static unsigned run_path(const char *p, int show)
{
	struct stat st;
	unsigned count = 0;

	if (stat(p, &st)) {
		fprintf(stderr, "fuzz_replay: %s: %s\n", p, strerror(errno));
		exit(2);
	}
	if (!S_ISDIR(st.st_mode))
		return run_file(p, show);
	DIR *d = opendir(p);
	struct dirent *e;
	char **names = NULL;
	size_t nn = 0;

	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		names = realloc(names, (nn + 1) * sizeof(*names));
		if (!names || asprintf(&names[nn], "%s/%s", p, e->d_name) < 0) {
			fprintf(stderr, "fuzz_replay: out of memory\n");
			exit(2);
		}
		nn++;
	}
	if (d)
		closedir(d);
	qsort(names, nn, sizeof(*names), by_name);
	for (size_t i = 0; i < nn; i++) {
		count += run_file(names[i], show);
		free(names[i]);
	}
	free(names);
	return count;
}

int main(int argc, char **argv)
{
	int show = 0, i = 1;
	unsigned count = 0;
	struct timespec t0, t1;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--show")) {
			show = 1;
		} else if (!strcmp(argv[i], "--pool") && i + 3 == argc) {
			size_t n;
			uint8_t *in = slurp(argv[i + 1], &n);

			return fuzz_write_pool(in, n, argv[i + 2]) ? 2 : 0;
		} else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
			timeout_s = (unsigned)strtoul(argv[++i], NULL, 10);
		} else {
			fprintf(stderr, "usage: fuzz_replay [--timeout SECONDS] FILE|DIR...\n"
					"       fuzz_replay --show FILE...\n"
					"       fuzz_replay --pool FILE OUT\n");
			return 2;
		}
	}
	if (i == argc) {
		fprintf(stderr, "fuzz_replay: no input given\n");
		return 2;
	}
	signal(SIGALRM, on_alarm);
	report_fd = dup(STDERR_FILENO);
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction sa = { .sa_handler = on_crash, .sa_flags = SA_NODEFER };

		if (sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL || sig == SIGABRT)
			sigaction(sig, &sa, &previous[sig]);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	snprintf(current, sizeof(current), "(building the seed pools)");
	alarm(timeout_s);
	LLVMFuzzerInitialize(&argc, &argv);
	alarm(0);
	for (; i < argc; i++)
		count += run_path(argv[i], show);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!show)
		printf("fuzz_replay: %u inputs passed every check in %.2f s\n", count,
		       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}
