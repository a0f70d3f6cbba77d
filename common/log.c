/* log.c: a formatter and line writer that never allocate (see log.h). */
#include "log.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int log_verbosity = LOG_WARN;

#define LOG_LINE_MAX 512

struct out {
	char *buf;
	size_t size; /* capacity including the NUL */
	size_t len;
};

static void out_char(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void out_padded(struct out *o, const char *s, size_t n, int width, int left)
{
	size_t pad = width > 0 && (size_t)width > n ? (size_t)width - n : 0;

	if (!left)
		while (pad--)
			out_char(o, ' ');
	while (n--)
		out_char(o, *s++);
	if (left)
		while (pad--)
			out_char(o, ' ');
}

/* Digits of v in the given base, right-aligned to width. */
static void out_unsigned(struct out *o, uint64_t v, unsigned base, int neg,
			 int width, int left)
{
	char tmp[24];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (neg)
		tmp[--i] = '-';
	out_padded(o, tmp + i, sizeof(tmp) - i, width, left);
}

size_t log_vformat(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = { buf, size, 0 };

	for (const char *f = fmt; *f; f++) {
		if (*f != '%') {
			out_char(&o, *f);
			continue;
		}
		f++;
		int left = 0, width = 0, lng = 0;

		if (*f == '-') {
			left = 1;
			f++;
		}
		while (*f >= '0' && *f <= '9')
			width = width * 10 + (*f++ - '0');
		int prec = -1;

		if (*f == '.') {
			f++;
			if (*f == '*') {
				prec = va_arg(ap, int);
				f++;
			} else {
				for (prec = 0; *f >= '0' && *f <= '9'; f++)
					prec = prec * 10 + (*f - '0');
			}
		}
		while (*f == 'l' || *f == 'z') {
			lng = *f == 'z' ? 2 : lng + 1;
			f++;
		}
		switch (*f) {
		case 's': {
			const char *s = va_arg(ap, const char *);

			if (!s)
				s = "(null)";
			size_t n = strlen(s);

			if (prec >= 0 && (size_t)prec < n)
				n = (size_t)prec;
			out_padded(&o, s, n, width, left);
			break;
		}
		case 'c':
			out_char(&o, (char)va_arg(ap, int));
			break;
		case 'd':
		case 'i': {
			int64_t v = lng ? va_arg(ap, long long) : va_arg(ap, int);
			uint64_t mag = v < 0 ? -(uint64_t)v : (uint64_t)v;

			out_unsigned(&o, mag, 10, v < 0, width, left);
			break;
		}
		case 'u':
		case 'x': {
			uint64_t v = lng ? va_arg(ap, unsigned long long)
					 : va_arg(ap, unsigned);

			out_unsigned(&o, v, *f == 'u' ? 10 : 16, 0, width, left);
			break;
		}
		case 'p':
			out_char(&o, '0');
			out_char(&o, 'x');
			out_unsigned(&o, (uintptr_t)va_arg(ap, void *), 16, 0, 0, 0);
			break;
		case '%':
			out_char(&o, '%');
			break;
		case '\0':
			f--; /* a lone '%' at the end */
			break;
		default:
			out_char(&o, '%');
			out_char(&o, *f);
			break;
		}
	}
	if (size)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return o.len < size ? o.len : (size ? size - 1 : 0);
}

size_t log_format(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	size_t n = log_vformat(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

/* write(2) until done; errno is the caller's, so it is saved. */
static void write_all(int fd, const char *s, size_t n)
{
	int saved = errno;

	while (n) {
		ssize_t w = write(fd, s, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		s += w;
		n -= (size_t)w;
	}
	errno = saved;
}

static void vline(int fd, const char *prefix, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t n = strlen(prefix);

	memcpy(line, prefix, n);
	n += log_vformat(line + n, sizeof(line) - n - 1, fmt, ap);
	line[n++] = '\n';
	write_all(fd, line, n);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if ((int)level > log_verbosity)
		return;
	va_start(ap, fmt);
	vline(STDERR_FILENO, "btd: ", fmt, ap);
	va_end(ap);
}

void log_fd(int fd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vline(fd, "", fmt, ap);
	va_end(ap);
}

static log_fatal_hook fatal_hook;

log_fatal_hook log_set_fatal_hook(log_fatal_hook hook)
{
	return __atomic_exchange_n(&fatal_hook, hook, __ATOMIC_ACQ_REL);
}

void btd_fatal(const char *fmt, ...)
{
	char msg[LOG_LINE_MAX];
	va_list ap;

	va_start(ap, fmt);
	log_vformat(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_msg(LOG_ERROR, "fatal: %s", msg);
	log_fatal_hook hook = __atomic_load_n(&fatal_hook, __ATOMIC_ACQUIRE);

	if (hook)
		hook(msg);
	abort();
}
