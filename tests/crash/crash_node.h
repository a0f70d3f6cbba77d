/* crash_node.h: the node of the crash test, with a checksum over all of it. */
#ifndef BTD_TESTS_CRASH_NODE_H
#define BTD_TESTS_CRASH_NODE_H

#include <stdint.h>
#include <string.h>

struct crash_node {
	struct crash_node *next;
	uint64_t seq;
	uint64_t extra;      /* payload bytes after the struct */
	uint64_t sum;        /* over seq, extra and the payload */
	unsigned char payload[];
};

static inline uint64_t crash_node_sum(const struct crash_node *n)
{
	uint64_t h = 1469598103934665603u ^ n->seq ^ (n->extra << 32);

	for (uint64_t i = 0; i < n->extra; i++)
		h = (h ^ n->payload[i]) * 1099511628211u;
	return h;
}

static inline void crash_node_fill(struct crash_node *n, uint64_t seq,
				   struct crash_node *next, uint64_t extra)
{
	n->next = next;
	n->seq = seq;
	n->extra = extra;
	for (uint64_t i = 0; i < extra; i++)
		n->payload[i] = (unsigned char)(seq * 31 + i);
	n->sum = crash_node_sum(n);
}

#endif
