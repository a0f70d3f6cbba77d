/* dlopen_cxx.c: a C program that loads a C++ library at run time. */
#include "check.h"

int main(int argc, char **argv)
{
	expect_btd();
	CHECK(argc == 2, "usage: dlopen_cxx PLUGIN.so");
	for (int round = 0; round < 3; round++) {
		void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);

		CHECK(h, "dlopen: %s", dlerror());
		long (*work)(int) = (long (*)(int))dlsym(h, "plugin_work");

		CHECK(work, "dlsym: %s", dlerror());
		long n = 20000, want = n * (n - 1) / 2 + 200 + 1000;

		CHECK(work((int)n) == want, "plugin_work gave %ld, want %ld", work((int)n), want);
		CHECK(dlclose(h) == 0, "dlclose");
	}
	puts("dlopen_cxx: ok");
	return 0;
}
