/* txprog.c: transactions tried from outside, as a program would use them.
 *
 *	txprog commit       one transaction: counter + 1 and a new record,
 *	                    published with btd_root_set inside it
 *	txprog crash        the same, but the process dies before the commit,
 *	                    with every change already on the media
 *	txprog verify N     the counter is N and N records hang off the root
 *
 * Run linked (libbtd) and under the preload: the same promises. */
#include <btd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct rec {
	struct rec *next;
	long seq;
	char pad[200];
};

struct state {
	long count;
	struct rec *head;
};

static struct state *state(void)
{
	struct state *s = btd_root_get("txstate");

	if (!s) {
		if (btd_tx_begin())
			return NULL;
		s = btd_tx_malloc(sizeof(*s));
		if (!s)
			return NULL;
		memset(s, 0, sizeof(*s));
		btd_root_set("txstate", s);
		if (btd_tx_commit())
			return NULL;
	}
	return s;
}

static int change(struct state *s, int crash)
{
	int st = btd_tx_begin();

	if (st) {
		fprintf(stderr, "txprog: begin: %s\n", btd_last_error());
		return 1;
	}
	struct rec *r = btd_tx_malloc(sizeof(*r));

	btd_tx_add(s, sizeof(*s));
	r->seq = s->count + 1;
	memset(r->pad, (int)r->seq, sizeof(r->pad));
	r->next = s->head;
	s->head = r;
	s->count++;
	if (crash) {
		btd_persist(s, sizeof(*s)); /* the worst case: the change is on the media */
		btd_persist(r, sizeof(*r));
		_exit(0);
	}
	st = btd_tx_commit();
	if (st)
		fprintf(stderr, "txprog: commit: %s\n", btd_last_error());
	return st != 0;
}

int main(int argc, char **argv)
{
	struct state *s = state();

	if (!s || argc < 2) {
		fprintf(stderr, "txprog: %s\n", s ? "usage: txprog commit|crash|verify N" :
			btd_last_error());
		return 2;
	}
	if (!strcmp(argv[1], "commit"))
		return change(s, 0);
	if (!strcmp(argv[1], "crash"))
		return change(s, 1);
	long want = argc > 2 ? atol(argv[2]) : 0, n = 0;

	for (struct rec *r = s->head; r; r = r->next, n++)
		if (r->seq != s->count - n || r->pad[0] != (char)r->seq) {
			fprintf(stderr, "txprog: record %ld is %ld\n", n, r->seq);
			return 1;
		}
	if (s->count != want || n != want) {
		fprintf(stderr, "txprog: count %ld, %ld records; want %ld\n", s->count, n, want);
		return 1;
	}
	return 0;
}
