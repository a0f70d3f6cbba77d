/* roots.h: named roots in the pool's root table (see layout.h). */
#ifndef BTD_HEAP_ROOTS_H
#define BTD_HEAP_ROOTS_H

/* Set name to p (NULL deletes it); durable on return.  BTD_OK, or
 * BTD_ERR_INVAL (bad name, or p not in the pool), BTD_ERR_NOMEM (table
 * full), BTD_ERR_NOENT (no pool open). */
int roots_set(const char *name, const void *p);

/* The root's pointer, or NULL. */
void *roots_get(const char *name);

#endif
