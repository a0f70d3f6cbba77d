/* classes.c: the size classes of small blocks. */
#include <pthread.h>

#include "../common/compiler.h"
#include "heap_int.h"

const uint32_t heap_class_size[HEAP_CLASSES] = {
	16, 32, 48, 64, 80, 96, 112, 128,
	160, 192, 224, 256, 320, 384, 448, 512,
	640, 768, 896, 1024, 1280, 1536, 1792, 2048,
	2560, 3072, 3584, 4096, 5120, 6144, 7168, 8192,
	10240, 12288, 14336, 16384,
};

/* Size to class: by 16 bytes up to 1 KiB, by 256 bytes above (every class
 * above 1 KiB is a multiple of 256). */
uint8_t heap_class_lo[1024 / 16 + 1];
uint8_t heap_class_hi[HEAP_SMALL_MAX / 256 + 1];
uint32_t heap_cache_cap[HEAP_CLASSES];

static void tables(void)
{
	unsigned c = 0;

	for (unsigned i = 0; i < BTD_ARRAY_SIZE(heap_class_lo); i++) {
		while (heap_class_size[c] < i * 16)
			c++;
		heap_class_lo[i] = (uint8_t)c;
	}
	c = 0;
	for (unsigned i = 0; i < BTD_ARRAY_SIZE(heap_class_hi); i++) {
		while (heap_class_size[c] < i * 256)
			c++;
		heap_class_hi[i] = (uint8_t)c;
	}
	for (c = 0; c < HEAP_CLASSES; c++) {
		uint32_t n = HEAP_CACHE_BYTES / heap_class_size[c];

		heap_cache_cap[c] = n > HEAP_CACHE_MAX ? HEAP_CACHE_MAX : n < 4 ? 4 : n;
	}
}

void classes_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, tables);
}
