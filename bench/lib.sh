# bench/lib.sh: what the benchmark scripts share.  Sourced, not run.

# find_jemalloc: the path of libjemalloc.so.2 for this machine's
# architecture (JEMALLOC=path overrides), or nothing.
find_jemalloc() {
	local arch_tag="" multiarch="" p
	if [ -n "${JEMALLOC:-}" ]; then
		echo "$JEMALLOC"
		return
	fi
	case $(uname -m) in
	x86_64) arch_tag=x86-64 ;;
	aarch64) arch_tag=AArch64 ;;
	esac
	if command -v ldconfig >/dev/null 2>&1 || [ -x /sbin/ldconfig ]; then
		while read -r p; do
			if [ -e "$p" ]; then
				echo "$p"
				return
			fi
		done < <(PATH=$PATH:/sbin:/usr/sbin ldconfig -p 2>/dev/null |
			awk -v tag="$arch_tag" '$1 == "libjemalloc.so.2" &&
				(tag == "" || index($0, tag)) { print $NF }')
	fi
	if command -v gcc >/dev/null 2>&1; then
		multiarch=$(gcc -print-multiarch 2>/dev/null || true)
	fi
	for p in /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 \
		${multiarch:+/usr/lib/$multiarch/libjemalloc.so.2} \
		${multiarch:+/lib/$multiarch/libjemalloc.so.2} \
		/usr/lib64/libjemalloc.so.2 /usr/lib/libjemalloc.so.2; do
		if [ -e "$p" ]; then
			echo "$p"
			return
		fi
	done
}

# bench_commit ROOT: the checkout's short commit id, with " (dirty tree)"
# when it has uncommitted changes: every report says what it measured.
bench_commit() {
	local c
	c=$(git -C "$1" rev-parse --short HEAD 2>/dev/null || echo unknown)
	if [ -n "$(git -C "$1" status --porcelain 2>/dev/null)" ]; then
		c="$c (dirty tree)"
	fi
	echo "$c"
}
