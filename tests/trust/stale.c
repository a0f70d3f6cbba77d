/* stale.c: a correct program whose live block keeps stale pointers in the
 * part it never wrote (a 64-byte block reused for 50 bytes): `btd check`
 * must call its pool ok. */
#include <btd.h>
#include <string.h>

int main(void)
{
	void *b = btd_malloc(NULL, 64);
	void **a = btd_malloc(NULL, 64);

	for (int i = 0; i < 8; i++)
		a[i] = b;
	btd_free(b);
	btd_free(a);
	char *c = btd_malloc(NULL, 50); /* a's block, its tail still pointing at b */

	memset(c, 'x', 50);
	btd_persist(c, 50);
	return btd_root_set("c", c) != 0;
}
