// cxx_ops.cc: all 20 replaceable operators resolve to btd, and follow the
// standard on failure (new_handler, std::bad_alloc, nothrow nullptr).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "check.h"

struct alignas(256) Wide {
	char bytes[300];
};

static int handler_calls;

static void handler_once()
{
	handler_calls++;
	std::set_new_handler(nullptr); // next failure throws
}

static bool aligned(const void *p, std::size_t a)
{
	return (reinterpret_cast<std::uintptr_t>(p) & (a - 1)) == 0;
}

int main()
{
	using std::align_val_t;
	using std::nothrow;
	using std::size_t;
	const std::nothrow_t &nt = nothrow;

	// Every operator, addressed so the check sees what the program links to.
	const void *ops[] = {
		(void *)static_cast<void *(*)(size_t)>(&operator new),
		(void *)static_cast<void *(*)(size_t)>(&operator new[]),
		(void *)static_cast<void *(*)(size_t, const std::nothrow_t &) noexcept>(&operator new),
		(void *)static_cast<void *(*)(size_t, const std::nothrow_t &) noexcept>(&operator new[]),
		(void *)static_cast<void *(*)(size_t, align_val_t)>(&operator new),
		(void *)static_cast<void *(*)(size_t, align_val_t)>(&operator new[]),
		(void *)static_cast<void *(*)(size_t, align_val_t, const std::nothrow_t &) noexcept>(&operator new),
		(void *)static_cast<void *(*)(size_t, align_val_t, const std::nothrow_t &) noexcept>(&operator new[]),
		(void *)static_cast<void (*)(void *) noexcept>(&operator delete),
		(void *)static_cast<void (*)(void *) noexcept>(&operator delete[]),
		(void *)static_cast<void (*)(void *, size_t) noexcept>(&operator delete),
		(void *)static_cast<void (*)(void *, size_t) noexcept>(&operator delete[]),
		(void *)static_cast<void (*)(void *, const std::nothrow_t &) noexcept>(&operator delete),
		(void *)static_cast<void (*)(void *, const std::nothrow_t &) noexcept>(&operator delete[]),
		(void *)static_cast<void (*)(void *, align_val_t) noexcept>(&operator delete),
		(void *)static_cast<void (*)(void *, align_val_t) noexcept>(&operator delete[]),
		(void *)static_cast<void (*)(void *, size_t, align_val_t) noexcept>(&operator delete),
		(void *)static_cast<void (*)(void *, size_t, align_val_t) noexcept>(&operator delete[]),
		(void *)static_cast<void (*)(void *, align_val_t, const std::nothrow_t &) noexcept>(&operator delete),
		(void *)static_cast<void (*)(void *, align_val_t, const std::nothrow_t &) noexcept>(&operator delete[]),
	};
	static_assert(sizeof(ops) / sizeof(ops[0]) == 20, "all 20 operators");
	for (size_t i = 0; i < 20; i++)
		CHECK(from_btd(ops[i]), "operator #%zu resolves elsewhere", i);

	// Each one called.
	void *p = operator new(10);
	operator delete(p);
	p = operator new[](10);
	operator delete[](p);
	p = operator new(10, nt);
	operator delete(p, nt);
	p = operator new[](10, nt);
	operator delete[](p, nt);
	p = operator new(10, align_val_t(512));
	CHECK(aligned(p, 512), "aligned new");
	operator delete(p, align_val_t(512));
	p = operator new[](10, align_val_t(1024));
	CHECK(aligned(p, 1024), "aligned new[]");
	operator delete[](p, align_val_t(1024));
	p = operator new(10, align_val_t(64), nt);
	CHECK(aligned(p, 64), "aligned nothrow new");
	operator delete(p, align_val_t(64), nt);
	p = operator new[](10, align_val_t(64), nt);
	operator delete[](p, align_val_t(64), nt);
	p = operator new(24);
	operator delete(p, 24);
	p = operator new[](24);
	operator delete[](p, 24);
	p = operator new(24, align_val_t(128));
	operator delete(p, 24, align_val_t(128));
	p = operator new[](24, align_val_t(128));
	operator delete[](p, 24, align_val_t(128));

	// The language's own uses: over-aligned types, containers, strings.
	Wide *w = new Wide[3];
	CHECK(aligned(w, 256), "new Wide[]");
	delete[] w;
	auto u = std::make_unique<Wide>();
	CHECK(aligned(u.get(), 256), "make_unique<Wide>");
	std::vector<std::string> v;
	for (int i = 0; i < 10000; i++)
		v.push_back(std::string(40, char('a' + i % 26)));
	CHECK(v[9999][0] == 'a' + 9999 % 26, "vector<string>");

	// Failure: nothrow forms return nullptr, throwing forms throw.
	const size_t huge = SIZE_MAX / 2;
	CHECK(operator new(huge, nt) == nullptr, "nothrow new of a huge size");
	CHECK(operator new[](huge, align_val_t(64), nt) == nullptr, "aligned nothrow new[]");
	bool threw = false;
	try {
		p = operator new(huge);
	} catch (const std::bad_alloc &) {
		threw = true;
	}
	CHECK(threw, "new of a huge size did not throw bad_alloc");
	threw = false;
	try {
		p = operator new[](huge, align_val_t(4096));
	} catch (const std::bad_alloc &) {
		threw = true;
	}
	CHECK(threw, "aligned new[] of a huge size did not throw");

	// The new_handler is called, then bad_alloc once it uninstalls itself.
	std::set_new_handler(handler_once);
	threw = false;
	try {
		p = operator new(huge);
	} catch (const std::bad_alloc &) {
		threw = true;
	}
	CHECK(threw && handler_calls == 1, "new_handler called %d times", handler_calls);
	// A nothrow form calls the handler too, and turns its throw into nullptr.
	std::set_new_handler([] { throw std::bad_alloc(); });
	CHECK(operator new(huge, nt) == nullptr, "nothrow new with a throwing handler");
	std::set_new_handler(nullptr);
	std::puts("cxx_ops: ok");
	return 0;
}
