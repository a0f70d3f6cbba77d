/* test_log.c: the allocation-free formatter. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "../../common/log.h"

#define FMT_EQ(want, ...)                                                     \
	do {                                                                  \
		char b_[256];                                                 \
		size_t n_ = log_format(b_, sizeof(b_), __VA_ARGS__);          \
		cr_assert_str_eq(b_, want);                                   \
		cr_assert_eq(n_, strlen(want));                               \
	} while (0)

Test(log, conversions)
{
	FMT_EQ("plain", "plain");
	FMT_EQ("a-b", "%s-%s", "a", "b");
	const char *volatile null = NULL;

	FMT_EQ("(null)", "%s", null);
	FMT_EQ("0 -1 2147483647 -2147483648", "%d %d %d %d", 0, -1, INT_MAX, INT_MIN);
	FMT_EQ("4294967295 ff", "%u %x", UINT_MAX, 255u);
	FMT_EQ("-9223372036854775808", "%lld", LLONG_MIN);
	FMT_EQ("18446744073709551615", "%zu", SIZE_MAX);
	FMT_EQ("18446744073709551615", "%lu", ULONG_MAX);
	FMT_EQ("0xdeadbeef", "%p", (void *)0xdeadbeef);
	FMT_EQ("100% x", "100%% %c", 'x');
	FMT_EQ("abc", "%.3s", "abcdef");
	FMT_EQ("ab", "%.*s", 2, "abcdef");
}

Test(log, widths)
{
	FMT_EQ("   42|", "%5d|", 42);
	FMT_EQ("42   |", "%-5d|", 42);
	FMT_EQ("  ab|ab  |", "%4s|%-4s|", "ab", "ab");
	FMT_EQ("toolong", "%3s", "toolong");
}

Test(log, truncates_and_terminates)
{
	char b[8];

	memset(b, 'x', sizeof(b));
	cr_assert_eq(log_format(b, sizeof(b), "%s", "0123456789"), 7);
	cr_assert_str_eq(b, "0123456");
	cr_assert_eq(log_format(b, 1, "abc"), 0);
	cr_assert_str_eq(b, "");
}

Test(log, matches_printf_on_mixed_formats)
{
	char ours[256], libc[256];

	log_format(ours, sizeof(ours), "%s=%d (%u, %x) %-8s| %12llu", "k", -7, 7u, 0xabcu,
		   "left", 123456789012ULL);
	snprintf(libc, sizeof(libc), "%s=%d (%u, %x) %-8s| %12llu", "k", -7, 7u, 0xabcu,
		 "left", 123456789012ULL);
	cr_assert_str_eq(ours, libc);
}

Test(log, levels_filter_but_errors_always_print, .init = cr_redirect_stderr)
{
	log_verbosity = LOG_ERROR;
	log_msg(LOG_WARN, "hidden");
	log_msg(LOG_ERROR, "shown %d", 1);
	log_verbosity = LOG_DEBUG;
	log_msg(LOG_DEBUG, "debug %s", "too");
	fflush(stderr);
	cr_assert_stderr_eq_str("btd: shown 1\nbtd: debug too\n");
}

Test(log, fatal_aborts_with_the_message, .signal = SIGABRT, .init = cr_redirect_stderr)
{
	btd_fatal("free of %p: not a live block", (void *)0x1000);
}
