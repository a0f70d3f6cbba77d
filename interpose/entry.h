/* entry.h: the allocation entry points and routes that stats count.
 *
 * One X-macro table so that the C entry points, the C++ operators and the
 * stats report name them the same way. */
#ifndef BTD_INTERPOSE_ENTRY_H
#define BTD_INTERPOSE_ENTRY_H

#define BTD_ENTRIES(X)                                              \
	X(MALLOC, "malloc")                                         \
	X(CALLOC, "calloc")                                         \
	X(REALLOC, "realloc")                                       \
	X(REALLOCARRAY, "reallocarray")                             \
	X(FREE, "free")                                             \
	X(POSIX_MEMALIGN, "posix_memalign")                         \
	X(ALIGNED_ALLOC, "aligned_alloc")                           \
	X(MEMALIGN, "memalign")                                     \
	X(VALLOC, "valloc")                                         \
	X(PVALLOC, "pvalloc")                                       \
	X(USABLE_SIZE, "malloc_usable_size")                        \
	X(NEW, "operator new")                                      \
	X(NEW_ARRAY, "operator new[]")                              \
	X(NEW_NOTHROW, "operator new(nothrow)")                     \
	X(NEW_ARRAY_NOTHROW, "operator new[](nothrow)")             \
	X(NEW_ALIGNED, "operator new(align)")                       \
	X(NEW_ARRAY_ALIGNED, "operator new[](align)")               \
	X(NEW_ALIGNED_NOTHROW, "operator new(align,nothrow)")       \
	X(NEW_ARRAY_ALIGNED_NOTHROW, "operator new[](align,nothrow)") \
	X(DELETE, "operator delete")                                \
	X(DELETE_ARRAY, "operator delete[]")                        \
	X(DELETE_SIZED, "operator delete(sized)")                   \
	X(DELETE_ARRAY_SIZED, "operator delete[](sized)")           \
	X(DELETE_NOTHROW, "operator delete(nothrow)")               \
	X(DELETE_ARRAY_NOTHROW, "operator delete[](nothrow)")       \
	X(DELETE_ALIGNED, "operator delete(align)")                 \
	X(DELETE_ARRAY_ALIGNED, "operator delete[](align)")         \
	X(DELETE_SIZED_ALIGNED, "operator delete(sized,align)")     \
	X(DELETE_ARRAY_SIZED_ALIGNED, "operator delete[](sized,align)") \
	X(DELETE_ALIGNED_NOTHROW, "operator delete(align,nothrow)") \
	X(DELETE_ARRAY_ALIGNED_NOTHROW, "operator delete[](align,nothrow)")

enum entry {
#define BTD_ENTRY_ENUM(id, name) ENTRY_##id,
	BTD_ENTRIES(BTD_ENTRY_ENUM)
#undef BTD_ENTRY_ENUM
	ENTRY_COUNT
};

/* Where a call was served. */
enum route_kind {
	ROUTE_BOOTSTRAP,  /* before the constructor, or inside btd: jemalloc's *allocx */
	ROUTE_TRANSIENT,  /* jemalloc's fast paths */
	ROUTE_PERSISTENT, /* the persistent heap */
	ROUTE_COUNT
};

#endif
