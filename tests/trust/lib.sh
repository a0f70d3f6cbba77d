# lib.sh: shared by the trust scripts.  Sourced with LISTPROG, DAMAGE, BTD.
set -u
tmp=$(mktemp -d /dev/shm/btd-trust.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export BTD_POOL=$tmp/p.pool
fail() { echo "$(basename "$0"): $*" >&2; exit 1; }
# Run a command, keeping its output and exit status: out, st.
run() { out=$("$@" 2>&1); st=$?; }
# The pool's bytes past the two header copies (roots, descriptors, bitmap,
# data): what "loses nothing" protects.
body() { tail -c +8193 "$BTD_POOL" | sha1sum; }
