/* sites.c: the call-site matcher and its cache (see sites.h). */
#include "sites.h"

#include <dlfcn.h>
#include <fnmatch.h>
#include <stdint.h>
#include <string.h>

#define SITES_MAX 32
#define SITES_CACHE 4096 /* entries; a power of two */

static char globs_buf[1024];
static const char *globs[SITES_MAX];
static unsigned nglobs;

/* Entry: (address << 2) | (tagged << 1) | 1; one atomic word, so a racing
 * reader sees a whole entry or none.  Addresses fit in 48 bits. */
static uint64_t cache[SITES_CACHE];

void sites_init(const char *list)
{
	strncpy(globs_buf, list, sizeof(globs_buf) - 1);
	nglobs = 0;
	for (char *tok = globs_buf; tok && *tok && nglobs < SITES_MAX;) {
		char *comma = strchr(tok, ',');

		if (comma)
			*comma = '\0';
		if (*tok)
			globs[nglobs++] = tok;
		tok = comma ? comma + 1 : NULL;
	}
}

static int matches(const char *name)
{
	if (!name)
		return 0;
	for (unsigned i = 0; i < nglobs; i++)
		if (!fnmatch(globs[i], name, 0))
			return 1;
	return 0;
}

static int resolve(const void *caller)
{
	Dl_info info;

	if (!dladdr(caller, &info))
		return 0;
	const char *obj = info.dli_fname ? strrchr(info.dli_fname, '/') : NULL;

	return matches(obj ? obj + 1 : info.dli_fname) || matches(info.dli_sname);
}

int sites_tagged(const void *caller)
{
	uint64_t key = (uint64_t)(uintptr_t)caller;
	size_t slot = (size_t)((key * 0x9e3779b97f4a7c15u) >> 52) & (SITES_CACHE - 1);
	uint64_t e = __atomic_load_n(&cache[slot], __ATOMIC_RELAXED);

	if ((e & 1) && e >> 2 == key)
		return (int)((e >> 1) & 1);
	int tagged = resolve(caller);

	__atomic_store_n(&cache[slot], key << 2 | (uint64_t)tagged << 1 | 1, __ATOMIC_RELAXED);
	return tagged;
}
