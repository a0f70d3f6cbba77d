/* nvm_bench.c: the benchmark of nvm_malloc (the one the original bartender
 * README ran), written here from its description, for bench/peer.sh.
 *
 *	nvm_bench_{btd,pmemobj,jemalloc} WORKLOAD T SIZE [BLOCKS]
 *
 * T threads; SIZE is 64 (every payload 64 B) or 64-4096 (uniform per
 * block); BLOCKS per thread, default 100000.  nvm_malloc allocates in two
 * steps, reserve and activate; here
 *   reserve   = allocate (btd_malloc, pmemobj_alloc, malloc)
 *   activate  = write the payload, persist it, store the block's reference
 *               in its link word (a slot of a persistent array, or the
 *               previous node's next field) and persist that word
 * and a free first clears the link word and persists it, then frees.
 *
 *   alloc_free        each thread reserves, writes and activates BLOCKS
 *                     blocks (each linked from a slot of its own persistent
 *                     array), then frees them all: 2 ops per block
 *   alloc_free_alloc  the same, then allocates (and activates) them all
 *                     again: 3 ops per block
 *   fastalloc         an allocation loop: reserve, tag the first word and
 *                     activate by linking (no payload write, one persist of
 *                     the link word per block): 1 op per block
 *   linkedlist        each thread builds a persistent list of BLOCKS nodes:
 *                     allocate a node, write it (next = null, payload),
 *                     persist it, then link it from the previous node's next
 *                     field (the first from the thread's head word) and
 *                     persist that field: 1 op per node
 *   recovery          a child process builds the T lists of linkedlist and
 *                     exits without closing the pool; the parent times
 *                     reopening it (btd_cluster_create: btd's recovery GC;
 *                     pmemobj_open: libpmemobj's recovery), then walks and
 *                     checks every list outside the clock.  ops = nodes
 *
 * Built three ways from this one source:
 *   nvm_bench_btd       (-DNVM_BENCH_BTD) libbtd: btd_malloc, btd_persist,
 *                       btd_free; one root ("nvm_bench") holds the arrays and
 *                       list heads.  Pool: BTD_POOL (BTD_POOL_SIZE), closed
 *                       cleanly at the end (except recovery's child)
 *   nvm_bench_pmemobj   (-DNVM_BENCH_PMEMOBJ) libpmemobj: pmemobj_alloc,
 *                       pmemobj_persist, pmemobj_free; links are offsets from
 *                       the pool's base, the root object holds the arrays and
 *                       heads.  Pool: NVM_BENCH_POOL (default
 *                       /dev/shm/nvm_bench.<pid>), NVM_BENCH_POOL_SIZE MiB
 *                       (default 2048), created fresh and removed at the end
 *   nvm_bench_jemalloc  plain malloc/free, which bench/peer.sh runs under
 *                       LD_PRELOAD=libjemalloc.so.2 (as every jemalloc
 *                       figure of the suite): the volatile baseline.  Persist
 *                       is nothing at all, and recovery is not applicable
 *                       (it prints seconds=NA)
 *
 * Prints one line
 *	impl=<btd|pmemobj|jemalloc> workload=<w> threads=<T> size=<SIZE>
 *	ops=<total> seconds=<wall> mops=<Mops/s>
 * Every block carries a tag (first and last word) checked before it is
 * freed or when its list is walked; a mismatch exits with status 3. */
#include <errno.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(NVM_BENCH_BTD)
#include "btd.h"
static const char *bench_name = "nvm_bench_btd";
static const char *impl = "btd";
#elif defined(NVM_BENCH_PMEMOBJ)
#include <libpmemobj.h>
static const char *bench_name = "nvm_bench_pmemobj";
static const char *impl = "pmemobj";
#else
static const char *bench_name = "nvm_bench_jemalloc";
static const char *impl = "jemalloc";
#endif

#include "peer_common.h"

#define MAX_THREADS 64
#define DEFAULT_BLOCKS 100000

/* What the root reaches: per thread a slot array and a list head. */
struct nvm_root {
	uint64_t slots[MAX_THREADS];
	uint64_t head[MAX_THREADS];
};

/* A list node; the payload follows. */
struct node {
	uint64_t next;
	uint64_t tag;
};

/* ---- the allocator under test ---------------------------------------- */

#if defined(NVM_BENCH_BTD)
static struct btd_cluster *cluster;

static void nv_init(void)
{
}

static int nv_open(bool fresh)
{
	struct btd_config cfg;

	(void)fresh;
	btd_config_init(&cfg);
	cluster = btd_cluster_create(&cfg);
	if (!cluster) {
		fprintf(stderr, "%s: btd_cluster_create: %s\n", bench_name, btd_last_error());
		return -1;
	}
	return 0;
}

static void nv_close(void)
{
	btd_cluster_destroy(cluster);
}

static inline void *nv_alloc(size_t n)
{
	return btd_malloc(cluster, n);
}

static inline void nv_free(void *p)
{
	btd_free(p);
}

static inline void nv_persist(const void *p, size_t n)
{
	btd_persist(p, n);
}

static inline uint64_t nv_word(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

static inline void *nv_ptr(uint64_t w)
{
	return (void *)(uintptr_t)w;
}

static struct nvm_root *nv_root(bool create)
{
	struct nvm_root *r = btd_root_get("nvm_bench");

	if (r || !create)
		return r;
	r = btd_malloc(cluster, sizeof(*r));
	if (!r)
		return NULL;
	memset(r, 0, sizeof(*r));
	btd_persist(r, sizeof(*r));
	if (btd_root_set("nvm_bench", r)) {
		fprintf(stderr, "%s: btd_root_set: %s\n", bench_name, btd_last_error());
		return NULL;
	}
	return r;
}
#elif defined(NVM_BENCH_PMEMOBJ)
static PMEMobjpool *pop;
static char pool_path[512];

/* Called before recovery's fork, so that both processes name one pool. */
static void nv_init(void)
{
	const char *path = getenv("NVM_BENCH_POOL");

	if (path)
		snprintf(pool_path, sizeof(pool_path), "%s", path);
	else
		snprintf(pool_path, sizeof(pool_path), "/dev/shm/nvm_bench.%ld", (long)getpid());
}

static int nv_open(bool fresh)
{
	const char *size_s = getenv("NVM_BENCH_POOL_SIZE");
	size_t size = (size_t)(size_s ? strtoull(size_s, NULL, 10) : 2048) << 20;

	if (fresh)
		pop = pmemobj_create(pool_path, "btd_nvm_bench", size, 0600);
	else
		pop = pmemobj_open(pool_path, "btd_nvm_bench");
	if (!pop) {
		fprintf(stderr, "%s: pmemobj_%s(%s): %s\n", bench_name, fresh ? "create" : "open",
			pool_path, pmemobj_errormsg());
		return -1;
	}
	return 0;
}

static void nv_close(void)
{
	pmemobj_close(pop);
	unlink(pool_path);
}

static inline void *nv_alloc(size_t n)
{
	PMEMoid oid;

	if (pmemobj_alloc(pop, &oid, n, 0, NULL, NULL))
		return NULL;
	return pmemobj_direct(oid);
}

static inline void nv_free(void *p)
{
	PMEMoid oid = pmemobj_oid(p);

	pmemobj_free(&oid);
}

static inline void nv_persist(const void *p, size_t n)
{
	pmemobj_persist(pop, p, n);
}

/* An offset from the pool's base: what a PMEMoid holds besides the pool. */
static inline uint64_t nv_word(const void *p)
{
	return p ? (uint64_t)((const char *)p - (const char *)pop) : 0;
}

static inline void *nv_ptr(uint64_t w)
{
	return w ? (char *)pop + w : NULL;
}

static struct nvm_root *nv_root(bool create)
{
	PMEMoid r = pmemobj_root(pop, create ? sizeof(struct nvm_root) : 0);

	return pmemobj_direct(r);
}
#else
static struct nvm_root volatile_root;

static void nv_init(void)
{
}

static int nv_open(bool fresh)
{
	(void)fresh;
	return 0;
}

static void nv_close(void)
{
}

static inline void *nv_alloc(size_t n)
{
	return malloc(n);
}

static inline void nv_free(void *p)
{
	free(p);
}

/* The volatile baseline: nothing is made durable. */
static inline void nv_persist(const void *p, size_t n)
{
	(void)p;
	(void)n;
}

static inline uint64_t nv_word(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

static inline void *nv_ptr(uint64_t w)
{
	return (void *)(uintptr_t)w;
}

static struct nvm_root *nv_root(bool create)
{
	(void)create;
	return &volatile_root;
}
#endif

/* ---- workloads --------------------------------------------------------- */

static struct nvm_root *root;
static uint64_t blocks = DEFAULT_BLOCKS;
static bool random_size;
static const char *workload;

static void *xalloc(size_t n)
{
	void *p = nv_alloc(n);

	if (__builtin_expect(!p, 0)) {
		fprintf(stderr, "%s: allocation of %zu bytes failed\n", bench_name, n);
		exit(2);
	}
	return p;
}

static inline size_t next_size(uint64_t *rng)
{
	return random_size ? 64 + rng_below(rng, 4096 - 64 + 1) : 64;
}

#define TAG(id, i) (((uint64_t)(id) + 1) << 48 | (i))

/* reserve + write + activate into *link */
static void *reserve_activate(uint64_t *link, size_t n, uint64_t tag)
{
	char *p = xalloc(n);

	memset(p + 8, (int)(tag & 0xff), n - 16);
	tag_put(p, n, tag);
	nv_persist(p, n);
	*link = nv_word(p);
	nv_persist(link, 8);
	return p;
}

/* Block sizes are not kept: the same generator gives them again. */
static void unlink_free(uint64_t *link, size_t n, uint64_t tag)
{
	void *p = nv_ptr(*link);

	tag_check(workload, p, n, tag);
	*link = 0;
	nv_persist(link, 8);
	nv_free(p);
}

static uint64_t *slot_array(unsigned id)
{
	uint64_t *s = xalloc(blocks * 8);

	memset(s, 0, blocks * 8);
	nv_persist(s, blocks * 8);
	root->slots[id] = nv_word(s);
	nv_persist(&root->slots[id], 8);
	return s;
}

static void *alloc_free_thread(void *arg)
{
	struct targ *a = arg;
	uint64_t *s = slot_array(a->id), seed = 0x9E3779B97F4A7C15ULL * (a->id + 1), rng;
	bool again = !strcmp(workload, "alloc_free_alloc");

	pthread_barrier_wait(&bar_start);
	rng = seed;
	for (uint64_t i = 0; i < blocks; i++)
		reserve_activate(&s[i], next_size(&rng), TAG(a->id, i));
	rng = seed;
	for (uint64_t i = 0; i < blocks; i++)
		unlink_free(&s[i], next_size(&rng), TAG(a->id, i));
	if (again) {
		rng = seed;
		for (uint64_t i = 0; i < blocks; i++)
			reserve_activate(&s[i], next_size(&rng), TAG(a->id, i));
	}
	a->ops = (again ? 3 : 2) * blocks;
	pthread_barrier_wait(&bar_end);
	if (again) {
		rng = seed;
		for (uint64_t i = 0; i < blocks; i++)
			unlink_free(&s[i], next_size(&rng), TAG(a->id, i));
	}
	return NULL;
}

static void *fastalloc_thread(void *arg)
{
	struct targ *a = arg;
	uint64_t *s = slot_array(a->id), seed = 0xD1B54A32D192ED03ULL * (a->id + 1), rng;

	pthread_barrier_wait(&bar_start);
	rng = seed;
	for (uint64_t i = 0; i < blocks; i++) {
		uint64_t *p = xalloc(next_size(&rng));

		p[0] = TAG(a->id, i);
		s[i] = nv_word(p);
		nv_persist(&s[i], 8);
	}
	a->ops = blocks;
	pthread_barrier_wait(&bar_end);
	for (uint64_t i = 0; i < blocks; i++) {
		uint64_t *p = nv_ptr(s[i]);

		if (p[0] != TAG(a->id, i))
			tag_error("fastalloc", p, TAG(a->id, i), p[0]);
		s[i] = 0;
		nv_free(p);
	}
	return NULL;
}

static void build_list(unsigned id)
{
	uint64_t rng = 0xBF58476D1CE4E5B9ULL * (id + 1), *link = &root->head[id];

	for (uint64_t i = 0; i < blocks; i++) {
		size_t n = next_size(&rng);
		struct node *nd = xalloc(n);

		nd->next = 0;
		memset((char *)nd + 16, (int)(i & 0xff), n - 24);
		nd->tag = TAG(id, i);
		memcpy((char *)nd + n - 8, &nd->tag, 8);
		nv_persist(nd, n);
		*link = nv_word(nd);
		nv_persist(link, 8);
		link = &nd->next;
	}
}

/* Walks (and, if asked, frees) list id: the number of nodes that held
 * their tags. */
static uint64_t walk_list(unsigned id, bool free_it)
{
	uint64_t rng = 0xBF58476D1CE4E5B9ULL * (id + 1), i = 0, w = root->head[id];

	while (w && i < blocks) {
		struct node *nd = nv_ptr(w);
		size_t n = next_size(&rng);
		uint64_t last;

		memcpy(&last, (char *)nd + n - 8, 8);
		if (nd->tag != TAG(id, i) || last != TAG(id, i)) {
			tag_error("list walk", nd, TAG(id, i), nd->tag != TAG(id, i) ? nd->tag : last);
			break;
		}
		w = nd->next;
		if (free_it)
			nv_free(nd);
		i++;
	}
	if (free_it) {
		root->head[id] = 0;
		nv_persist(&root->head[id], 8);
	}
	return i;
}

static void *linkedlist_thread(void *arg)
{
	struct targ *a = arg;

	pthread_barrier_wait(&bar_start);
	build_list(a->id);
	a->ops = blocks;
	pthread_barrier_wait(&bar_end);
	if (walk_list(a->id, true) != blocks)
		tag_error("linkedlist (nodes)", NULL, blocks, 0);
	return NULL;
}

/* recovery's child: build T lists on T threads, then exit without
 * closing anything. */
static void *recovery_build_thread(void *arg)
{
	struct targ *a = arg;

	pthread_barrier_wait(&bar_start);
	build_list(a->id);
	pthread_barrier_wait(&bar_end);
	return NULL;
}

static int run_recovery(unsigned T, double *secs)
{
	pid_t pid;
	int st;
	uint64_t ops;
	double t0;

	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 2;
	}
	if (pid == 0) {
		if (nv_open(true) || !(root = nv_root(true)))
			_exit(2);
		run_threads(T, blocks, recovery_build_thread, NULL, &ops);
		_exit(tag_errors ? 3 : 0);
	}
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "%s: recovery: the building child failed (status %#x)\n",
			bench_name, st);
		return 2;
	}
	t0 = now_s();
	if (nv_open(false))
		return 2;
	*secs = now_s() - t0;
	root = nv_root(false);
	if (!root) {
		fprintf(stderr, "%s: recovery: the root is gone after reopening\n", bench_name);
		return 3;
	}
	for (unsigned i = 0; i < T; i++) {
		uint64_t k = walk_list(i, false);

		if (k != blocks) {
			fprintf(stderr, "%s: recovery: list %u has %llu good nodes of %llu\n",
				bench_name, i, (unsigned long long)k, (unsigned long long)blocks);
			return 3;
		}
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: %s WORKLOAD T SIZE [BLOCKS]\n"
		"  WORKLOAD: alloc_free alloc_free_alloc fastalloc linkedlist recovery\n"
		"  T threads (at most %d), SIZE 64 or 64-4096, BLOCKS per thread (default %d)\n",
		bench_name, MAX_THREADS, DEFAULT_BLOCKS);
	exit(2);
}

int main(int argc, char **argv)
{
	uint64_t T, ops = 0;
	double secs = 0;
	void *(*fn)(void *) = NULL;
	int ret = 0;

	if (argc < 4 || argc > 5 || parse_u64(argv[2], &T) || T > MAX_THREADS)
		usage();
	workload = argv[1];
	if (!strcmp(argv[3], "64-4096"))
		random_size = true;
	else if (strcmp(argv[3], "64"))
		usage();
	if (argc == 5 && parse_u64(argv[4], &blocks))
		usage();
	if (!strcmp(workload, "alloc_free") || !strcmp(workload, "alloc_free_alloc"))
		fn = alloc_free_thread;
	else if (!strcmp(workload, "fastalloc"))
		fn = fastalloc_thread;
	else if (!strcmp(workload, "linkedlist"))
		fn = linkedlist_thread;
	else if (strcmp(workload, "recovery"))
		usage();

	nv_init();
	if (!fn) {
#if !defined(NVM_BENCH_BTD) && !defined(NVM_BENCH_PMEMOBJ)
		printf("impl=%s workload=recovery threads=%llu size=%s ops=0 seconds=NA mops=NA\n",
		       impl, (unsigned long long)T, argv[3]);
		return 0;
#endif
		ret = run_recovery((unsigned)T, &secs);
		ops = T * blocks;
	} else {
		if (nv_open(true) || !(root = nv_root(true)))
			return 2;
		secs = run_threads((unsigned)T, blocks, fn, NULL, &ops);
	}
	if (ret == 0 && tag_errors)
		ret = 3;
	if (ret == 0)
		printf("impl=%s workload=%s threads=%llu size=%s ops=%llu seconds=%.6f mops=%.3f\n",
		       impl, workload, (unsigned long long)T, argv[3], (unsigned long long)ops,
		       secs, secs > 0 ? (double)ops / secs / 1e6 : 0.0);
	else if (tag_errors)
		fprintf(stderr, "%s: %s: %llu blocks did not hold what was written to them\n",
			bench_name, workload, (unsigned long long)tag_errors);
	if (root)
		nv_close();
	return ret;
}
