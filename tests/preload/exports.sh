#!/bin/bash
# exports.sh LIB: the preload library exports the malloc family, glibc's
# aliases, the 20 C++ operators and btd_* -- and nothing else.
set -eu
lib=$1
allowed='^(malloc|free|calloc|realloc|reallocarray|posix_memalign|aligned_alloc|memalign|valloc|pvalloc|malloc_usable_size|cfree|__libc_(malloc|free|calloc|realloc|memalign|valloc|pvalloc)|__posix_memalign|_Znwm.*|_Znam.*|_ZdlPv.*|_ZdaPv.*|btd_.*)$'
syms=$(nm -D --defined-only "$lib" | awk '{print $3}')
extra=$(grep -Ev "$allowed" <<<"$syms" || true)
if [ -n "$extra" ]; then
	echo "exports.sh: $lib exports symbols outside the malloc family and btd_*:" >&2
	echo "$extra" >&2
	exit 1
fi
ops=$(grep -cE '^_Z(nw|na|dl|da)' <<<"$syms")
if [ "$ops" -ne 20 ]; then
	echo "exports.sh: $ops C++ operators exported, want 20" >&2
	exit 1
fi
for s in malloc free calloc realloc reallocarray posix_memalign aligned_alloc \
	memalign valloc pvalloc malloc_usable_size; do
	grep -qx "$s" <<<"$syms" || { echo "exports.sh: $s is not exported" >&2; exit 1; }
done
echo "exports: ok ($(wc -l <<<"$syms") symbols)"
