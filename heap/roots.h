/* roots.h: named roots in the pool's root table (see layout.h). */
#ifndef BTD_HEAP_ROOTS_H
#define BTD_HEAP_ROOTS_H

#include <stdint.h>

/* Set name to p (NULL deletes it); durable on return.  BTD_OK, or
 * BTD_ERR_INVAL (bad name, or p not in the pool), BTD_ERR_NOMEM (table
 * full), BTD_ERR_NOENT (no pool open). */
int roots_set(const char *name, const void *p);

/* The root's pointer, or NULL. */
void *roots_get(const char *name);

/* The address held by slot i when it is a valid root (pointing into the
 * pool), else 0; and how many slots hold valid roots. */
uint64_t roots_addr(unsigned i);
unsigned roots_count(void);

/* Slots in use that are not valid roots: damage.  With clear, they are
 * cleared (persisted).  *first: the first such slot. */
unsigned roots_damaged(int clear, unsigned *first);

/* Root slots a transaction in flight has in its log: no other root may
 * take them until it ends (its rollback would restore the slot over it). */
struct pool_root;
void roots_tx_release(struct pool_root *r);
void roots_tx_reset(void);

/* A pool of format 1.0: add the check to every root's word, then record
 * format 1.1 (see ROOTS in layout.h).  Idempotent. */
void roots_upgrade(void);

#endif
