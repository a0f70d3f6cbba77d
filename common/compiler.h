/* compiler.h: attributes and branch hints shared by every module. */
#ifndef BTD_COMMON_COMPILER_H
#define BTD_COMMON_COMPILER_H

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Symbols the preloaded library exports; everything else is hidden by
 * -fvisibility=hidden and the version script. */
#define BTD_EXPORT __attribute__((visibility("default")))

/* Thread-locals of a preloaded library live in static TLS: one %fs-relative
 * load, no __tls_get_addr call (which can allocate). */
#define BTD_TLS __thread __attribute__((tls_model("initial-exec")))

#define BTD_NOINLINE __attribute__((noinline))
#define BTD_INLINE   inline __attribute__((always_inline))
#define BTD_COLD     __attribute__((cold, noinline))
#define BTD_NORETURN __attribute__((noreturn))
#define BTD_PRINTF(f, a) __attribute__((format(printf, f, a)))

#define BTD_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
