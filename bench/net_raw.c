/* net_raw.c: the raw libfabric baseline -- net_write of N bytes, a 16-byte
 * persist message, the node's ack -- that the replication benchmark is
 * compared against; and bulk write bandwidth.
 *
 *   net_raw [msync]     round trips (medians of 1000) and bandwidth; with
 *                       `msync` the node msyncs the written range of a
 *                       file mapping (in NET_RAW_DIR, default /dev/shm)
 *                       before it acks, else it acks at once
 *   net_raw idle SECS   a listening node doing nothing, for measuring its
 *                       idle CPU
 *
 * The node runs in a forked child: its progress (the tcp provider places
 * writes only while the node polls) is not the client's. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/error.h"
#include "../net/net.h"

#define REGION ((size_t)64 << 20)
#define ITERS 1000
#define T_MS 10000

struct persist {         /* the 16-byte persist message */
	uint64_t off;
	uint64_t len;
};

struct setup {           /* what the node tells the client through a pipe */
	int port;
	uint64_t addr, key;
};

typedef void (*persist_fn)(uint8_t *region, uint64_t off, uint64_t len);

static void persist_none(uint8_t *region, uint64_t off, uint64_t len)
{
	(void)region, (void)off, (void)len;
}

static void persist_msync(uint8_t *region, uint64_t off, uint64_t len)
{
	uint64_t lo = off & ~(uint64_t)4095;

	msync(region + lo, off + len - lo, MS_SYNC);
}

static void die(const char *what)
{
	fprintf(stderr, "net_raw: %s: %s\n", what, err_last());
	exit(1);
}

static void node(int fd, persist_fn persist, int idle_secs)
{
	struct net_domain *d;
	struct net_listener *l;
	struct net_mr mr;
	const char *dir = getenv("NET_RAW_DIR");
	char path[4096];
	uint8_t *region;

	/* The node's file where bench/repl.sh puts memd's pools, so that
	 * both persist the same way (default /dev/shm). */
	snprintf(path, sizeof(path), "%s/net_raw.XXXXXX", dir && *dir ? dir : "/dev/shm");
	int file = mkstemp(path);

	if (file < 0 || unlink(path) || ftruncate(file, REGION))
		die("the node's file");
	region = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_SHARED, file, 0);
	if (region == MAP_FAILED)
		die("mmap");
	if (net_domain_open(NULL, 1, &d) || net_mr_reg(d, region, REGION, NET_ACCESS_REMOTE, &mr) ||
	    net_listen(d, "127.0.0.1", "0", &l))
		die("node");
	struct setup s = { net_listener_port(l), mr.addr, mr.key };

	if (write(fd, &s, sizeof(s)) != sizeof(s))
		die("pipe");
	time_t end = time(NULL) + idle_secs;

	for (;;) {
		struct net_event ev;

		if (idle_secs && time(NULL) >= end)
			_exit(0);
		if (net_poll(l, 1000, &ev))
			die("net_poll");
		if (ev.kind == NET_EV_CLOSE)
			_exit(0);
		if (ev.kind == NET_EV_MSG && ev.len == sizeof(struct persist)) {
			struct persist p;
			uint8_t ack = 1;

			memcpy(&p, ev.data, sizeof(p));
			persist(region, p.off, p.len);
			if (net_send(ev.ep, &ack, 1, T_MS))
				die("ack");
		}
	}
}

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int idle = argc > 2 && !strcmp(argv[1], "idle") ? atoi(argv[2]) : 0;
	persist_fn persist = argc > 1 && !strcmp(argv[1], "msync") ? persist_msync : persist_none;
	int pfd[2];

	if (pipe(pfd))
		return 1;
	pid_t pid = fork();

	if (!pid)
		node(pfd[1], persist, idle);
	struct setup s;

	if (read(pfd[0], &s, sizeof(s)) != sizeof(s))
		return 1;
	if (idle) {
		printf("node pid %d listening on port %d for %d s\n", (int)pid, s.port, idle);
		fflush(stdout);
		waitpid(pid, NULL, 0);
		return 0;
	}
	struct net_domain *d;
	struct net_ep *ep;
	struct net_mr mr;
	char port[16];
	uint8_t *buf = aligned_alloc(4096, REGION);

	snprintf(port, sizeof(port), "%d", s.port);
	memset(buf, 0xab, REGION);
	if (net_domain_open(NULL, 0, &d) || net_mr_reg(d, buf, REGION, NET_ACCESS_LOCAL, &mr) ||
	    net_connect(d, "127.0.0.1", port, T_MS, &ep))
		die("client");
	printf("provider %s, node persist: %s\n", net_domain_caps(d)->provider,
	       persist == persist_msync ? "msync" : "none");

	static const size_t sizes[] = { 64, 4096, 65536 };
	static double t[ITERS];

	for (size_t k = 0; k < 3; k++) {
		size_t n = sizes[k];

		for (int i = -50; i < ITERS; i++) { /* 50 warm-ups */
			struct persist p = { (uint64_t)(i & 63) * 65536, n };
			uint8_t ack[NET_MSG_MAX];
			size_t got;
			double t0 = now_us();

			if (net_write(ep, &mr, buf, n, s.addr + p.off, s.key, T_MS) ||
			    net_send(ep, &p, sizeof(p), T_MS) ||
			    net_recv(ep, ack, sizeof(ack), &got, T_MS))
				die("round trip");
			if (i >= 0)
				t[i] = now_us() - t0;
		}
		qsort(t, ITERS, sizeof(t[0]), cmp);
		printf("write %6zu B + persist + ack: median %.1f us (p99 %.1f us)\n", n,
		       t[ITERS / 2], t[ITERS * 99 / 100]);
	}

	/* Bulk: 256 MiB in writes of 256 KiB, then of 16 MiB (the chunk a
	 * memory node leases, as a whole-image transfer writes them), each
	 * ended by a persist round trip with nothing to persist. */
	static const size_t chunks[] = { 256 << 10, 16 << 20 };

	for (size_t c = 0; c < 2; c++) {
		const size_t chunk = chunks[c], total = (size_t)256 << 20;
		double t0 = now_us();

		for (size_t done = 0; done < total; done += chunk) {
			uint64_t off = done % REGION;

			if (net_write(ep, &mr, buf + off, chunk, s.addr + off, s.key, T_MS))
				die("bulk");
		}
		struct persist p = { 0, 0 };
		uint8_t ack[NET_MSG_MAX];
		size_t got;

		if (net_send(ep, &p, sizeof(p), T_MS) || net_recv(ep, ack, sizeof(ack), &got, T_MS))
			die("bulk ack");
		double secs = (now_us() - t0) / 1e6;

		printf("bulk write %zu KiB x %zu: %.0f MiB/s\n", chunk >> 10, total / chunk,
		       total / 1048576.0 / secs);
	}
	net_ep_close(ep);
	waitpid(pid, NULL, 0);
	net_mr_dereg(&mr);
	net_domain_close(d);
	return 0;
}
