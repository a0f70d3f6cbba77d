/* error.h: the library's error status and its message, for every module.
 *
 * A failing internal call records one line of text for this thread and
 * returns a negative btd_status; the public API hands the text out as
 * btd_last_error().  The text lives in a fixed thread-local buffer, never
 * a malloc'd one (the allocator reports its own failures). */
#ifndef BTD_COMMON_ERROR_H
#define BTD_COMMON_ERROR_H

#include "compiler.h"

/* Record the message and return status: `return err_set(BTD_ERR_IO, ...)`. */
int err_set(int status, const char *fmt, ...) BTD_PRINTF(2, 3);

/* The last message with a prefix: "<prefix>: <last message>". */
int err_prefix(int status, const char *fmt, ...) BTD_PRINTF(2, 3);

/* This thread's last message ("" before the first). */
const char *err_last(void);

/* The btd_status for an errno value (ENOENT -> BTD_ERR_NOENT, ...). */
int err_status(int e);

/* The text of an errno value, untranslated.  Not strerror: it goes through
 * gettext, which takes glibc's locale lock, and the malloc that opens a
 * pool may come from setlocale, which holds that lock -- a deadlock (bash
 * under BTD_POLICY=all hung in setlocale whenever its pool did not exist
 * yet).  strerrordesc_np (glibc 2.32) takes no lock. */
const char *err_text(int e);

#endif
