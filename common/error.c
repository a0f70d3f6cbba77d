/* error.c: the thread's last error (see error.h). */
#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "btd.h"
#include "log.h"

static __thread char last_error[512];

int err_set(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vformat(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return status;
}

int err_prefix(int status, const char *fmt, ...)
{
	char old[sizeof(last_error)], head[256];
	va_list ap;

	memcpy(old, last_error, sizeof(old)); /* formatting may not read what it writes */
	va_start(ap, fmt);
	log_vformat(head, sizeof(head), fmt, ap);
	va_end(ap);
	return err_set(status, "%s: %s", head, old);
}

const char *err_last(void)
{
	return last_error;
}

int err_status(int e)
{
	switch (e) {
	case ENOENT: return BTD_ERR_NOENT;
	case EACCES: case EPERM: case EROFS: return BTD_ERR_PERM;
	case ENOSPC: case EDQUOT: case EFBIG: return BTD_ERR_NOSPC;
	case ENOMEM: return BTD_ERR_NOMEM;
	default: return BTD_ERR_IO;
	}
}

const char *err_text(int e)
{
	const char *s = strerrordesc_np(e);

	return s ? s : "unknown error";
}
