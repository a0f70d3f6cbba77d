// cxx.cc: the 20 replaceable C++ allocation operators.
//
// They share route.h with the C entry points.  On failure the throwing forms
// follow [new.delete.single]: call the installed new_handler and retry, or
// throw std::bad_alloc when there is none; the nothrow forms do the same but
// return nullptr where the plain form would throw.  Every delete form -- plain,
// sized, aligned, nothrow -- frees through the same route: the size and
// alignment hints are not needed to find a block.
#include <cstddef>
#include <new>

#include "route.h"

namespace {

void *try_alloc(enum entry e, std::size_t n, std::size_t align)
{
	return align ? route_aligned(e, align, n) : route_malloc(e, n);
}

[[gnu::noinline, gnu::cold]] void *alloc_retry(enum entry e, std::size_t n,
					       std::size_t align)
{
	for (;;) {
		std::new_handler h = std::get_new_handler();

		if (!h)
			throw std::bad_alloc();
		h();
		if (void *p = try_alloc(e, n, align))
			return p;
	}
}

[[gnu::noinline, gnu::cold]] void *alloc_retry_nothrow(enum entry e, std::size_t n,
						       std::size_t align) noexcept
{
	try {
		return alloc_retry(e, n, align);
	} catch (...) {
		return nullptr;
	}
}

inline void *op_new(enum entry e, std::size_t n, std::size_t align = 0)
{
	void *p = try_alloc(e, n, align);

	if (likely(p))
		return p;
	return alloc_retry(e, n, align);
}

inline void *op_new_nothrow(enum entry e, std::size_t n, std::size_t align = 0) noexcept
{
	void *p = try_alloc(e, n, align);

	if (likely(p))
		return p;
	return alloc_retry_nothrow(e, n, align);
}

inline std::size_t al(std::align_val_t a)
{
	return static_cast<std::size_t>(a);
}

} // namespace

#define EXPORT BTD_EXPORT

EXPORT void *operator new(std::size_t n) { return op_new(ENTRY_NEW, n); }
EXPORT void *operator new[](std::size_t n) { return op_new(ENTRY_NEW_ARRAY, n); }
EXPORT void *operator new(std::size_t n, const std::nothrow_t &) noexcept
{ return op_new_nothrow(ENTRY_NEW_NOTHROW, n); }
EXPORT void *operator new[](std::size_t n, const std::nothrow_t &) noexcept
{ return op_new_nothrow(ENTRY_NEW_ARRAY_NOTHROW, n); }
EXPORT void *operator new(std::size_t n, std::align_val_t a)
{ return op_new(ENTRY_NEW_ALIGNED, n, al(a)); }
EXPORT void *operator new[](std::size_t n, std::align_val_t a)
{ return op_new(ENTRY_NEW_ARRAY_ALIGNED, n, al(a)); }
EXPORT void *operator new(std::size_t n, std::align_val_t a, const std::nothrow_t &) noexcept
{ return op_new_nothrow(ENTRY_NEW_ALIGNED_NOTHROW, n, al(a)); }
EXPORT void *operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t &) noexcept
{ return op_new_nothrow(ENTRY_NEW_ARRAY_ALIGNED_NOTHROW, n, al(a)); }

EXPORT void operator delete(void *p) noexcept { route_free(ENTRY_DELETE, p); }
EXPORT void operator delete[](void *p) noexcept { route_free(ENTRY_DELETE_ARRAY, p); }
EXPORT void operator delete(void *p, std::size_t) noexcept
{ route_free(ENTRY_DELETE_SIZED, p); }
EXPORT void operator delete[](void *p, std::size_t) noexcept
{ route_free(ENTRY_DELETE_ARRAY_SIZED, p); }
EXPORT void operator delete(void *p, const std::nothrow_t &) noexcept
{ route_free(ENTRY_DELETE_NOTHROW, p); }
EXPORT void operator delete[](void *p, const std::nothrow_t &) noexcept
{ route_free(ENTRY_DELETE_ARRAY_NOTHROW, p); }
EXPORT void operator delete(void *p, std::align_val_t) noexcept
{ route_free(ENTRY_DELETE_ALIGNED, p); }
EXPORT void operator delete[](void *p, std::align_val_t) noexcept
{ route_free(ENTRY_DELETE_ARRAY_ALIGNED, p); }
EXPORT void operator delete(void *p, std::size_t, std::align_val_t) noexcept
{ route_free(ENTRY_DELETE_SIZED_ALIGNED, p); }
EXPORT void operator delete[](void *p, std::size_t, std::align_val_t) noexcept
{ route_free(ENTRY_DELETE_ARRAY_SIZED_ALIGNED, p); }
EXPORT void operator delete(void *p, std::align_val_t, const std::nothrow_t &) noexcept
{ route_free(ENTRY_DELETE_ALIGNED_NOTHROW, p); }
EXPORT void operator delete[](void *p, std::align_val_t, const std::nothrow_t &) noexcept
{ route_free(ENTRY_DELETE_ARRAY_ALIGNED_NOTHROW, p); }
