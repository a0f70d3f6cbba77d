/* log.h: messages that never allocate and never touch stdio.
 *
 * An allocator cannot print through stdio (it may allocate, and it takes
 * locks a fork or a signal may hold).  Every message is formatted into a
 * stack buffer by our own small formatter and written with write(2), one
 * line per call, prefixed with "btd: ".  The formatter knows %s %c %d %i %u
 * %x %p %% with the l, ll and z length modifiers, a width for aligned
 * columns (%12u, %-10s) and a precision for strings (%.*s). */
#ifndef BTD_COMMON_LOG_H
#define BTD_COMMON_LOG_H

#include <stdarg.h>
#include <stddef.h>

#include "compiler.h"

/* Verbosity levels, set by BTD_VERBOSE.  Errors always print. */
enum log_level {
	LOG_ERROR = 0,  /* a problem the user must fix; always shown */
	LOG_WARN = 1,   /* a fallback was taken (default level) */
	LOG_INFO = 2,   /* what btd decided at startup */
	LOG_DEBUG = 3,  /* per-event detail */
};

extern int log_verbosity;

/* Format into buf (always NUL-terminated); returns the length written. */
size_t log_format(char *buf, size_t size, const char *fmt, ...) BTD_PRINTF(3, 4);
size_t log_vformat(char *buf, size_t size, const char *fmt, va_list ap);

/* One line "btd: <message>\n" to fd 2 when level <= log_verbosity. */
void log_msg(enum log_level level, const char *fmt, ...) BTD_PRINTF(2, 3);

/* Same, to any descriptor, without the level test and without the prefix. */
void log_fd(int fd, const char *fmt, ...) BTD_PRINTF(2, 3);

/* Print "btd: fatal: <message>" and abort(): corruption and misuse end here,
 * so that a bare stack trace names the cause.  A hook set with
 * log_set_fatal_hook runs first, with the message (without the prefix):
 * a test catches the fatal path there (longjmp, or _exit with a code of its
 * own); a hook that returns lets the abort happen. */
BTD_NORETURN BTD_COLD void btd_fatal(const char *fmt, ...) BTD_PRINTF(1, 2);

typedef void (*log_fatal_hook)(const char *msg);

/* Install hook (NULL: none); returns the previous one. */
log_fatal_hook log_set_fatal_hook(log_fatal_hook hook);

#endif
