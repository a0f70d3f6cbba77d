/* repl.h: synchronous replication of the durable heap to memory nodes.
 *
 * A decorator over the durability seam (heap/pmem.h) records, at every
 * flush of the pool, the flushed bytes as they are at that moment: the
 * redo of the next durability point.  At a durability point (repl_point)
 * the recorded batch is written into each replica's staging region and
 * committed there (proto.h): the replica applies it whole or not at all.
 * Recording the bytes at flush time, not reading them at the durability
 * point, is what keeps a replica's image a state the local pool could
 * have been left in by a power failure -- the state recovery is built for
 * -- while other threads go on writing: a line written after another was
 * made durable is recorded after it, and batches apply in order.
 *
 * When the batch outgrows staging (btd_sync, a clean close, the first
 * point of a run, a replica returning), the replica gets the whole image
 * instead: BULK_BEGIN, the image written straight into its chunks, then
 * the redo recorded meanwhile as one COMMIT, then BULK_END.  One replica
 * at a time, so at most one is ever inconsistent.
 *
 * A replica that fails or times out is stale; the durability point still
 * succeeds while at least `min` replicas took it, else it returns
 * BTD_ERR_IO (never an abort).  A stale replica is tried again at a later
 * point (at most once a second) and resynced with a bulk transfer.
 *
 * Nothing here runs inside an allocation: repl_configure only records the
 * configuration and installs the decorator; the key file, libfabric and
 * the connections are taken at the first durability point. */
#ifndef BTD_NET_REPL_H
#define BTD_NET_REPL_H

#include <stddef.h>
#include <stdint.h>

#define REPL_MAX 8

struct repl_config {
	const char *nodes;    /* "host:port,..." */
	int min;              /* replicas a durability point needs; -1: all */
	const char *key_file;
	int timeout_ms;       /* 0: the default (5000) */
	const char *uuid;     /* restore: the image of this pool (hex, a prefix of
	                       * 8 or more digits), whatever its path */
};

/* Check a configuration: 0, or BTD_ERR_INVAL and the reason (a bad node
 * list, a node twice, more required than named, no key file). */
int repl_validate(const struct repl_config *c);

/* Parse the configuration (a bad one: BTD_ERR_INVAL and the reason) and
 * start recording; replicas are reached at the first repl_point. */
int repl_configure(const struct repl_config *c);
int repl_active(void);

/* A durability point: what was flushed since the last one is durable on
 * every live replica when this returns 0.  `what` names the caller in
 * messages.  0 when replication is off. */
int repl_point(const char *what);

/* The last point of a run (clean close or exit): the whole image to every
 * replica, then disconnect.  The mapping must still be there. */
int repl_final(void);

/* Forget everything (a crash-like abandon, a fork child). */
void repl_reset(void);

/* Restore: rebuild the pool file at path from the newest consistent image
 * the nodes hold for it: the lease of that path, or of c->uuid.  Leases of
 * two different pools (uuids) for one path: BTD_ERR_INVAL naming them.  The file must not exist.  progress: draw a bar on
 * stderr.  0, or a btd_status with the reason. */
int repl_restore(const char *path, const struct repl_config *c, int progress,
		 double *seconds, uint64_t *bytes);

/* One line per replica for `btd info`: its state for the pool of uuid. */
void repl_describe(const struct repl_config *c, const uint8_t uuid[16], int fd);

struct repl_stats {
	uint64_t points;        /* durability points that reached replicas */
	uint64_t bytes;         /* bytes written to replicas */
	uint64_t round_trips;   /* commit/persist round trips */
	uint64_t rtt_ns;        /* their total time */
	uint64_t bulks;         /* whole-image transfers */
	uint64_t stale_events;  /* replicas marked stale */
	unsigned live, configured;
};
void repl_get_stats(struct repl_stats *s);

#endif
