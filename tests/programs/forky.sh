# shellcheck shell=bash disable=SC2005,SC2116
# (SC2005, SC2116: the "useless" echos in $( ) are the point, each is a fork)
# forky.sh: the bash workload of bash.sh, run as `bash forky.sh` in an empty
# directory.  About 2,000 forks: subshells, command substitutions,
# pipelines, background jobs with wait, and exec'd external programs, with
# bash's own allocations in between (arrays, associative arrays, strings).
# It prints a few values and checksums that must not depend on the allocator.
set -u
export LC_ALL=C

sum=0
mix()
{
	sum=$(((sum * 31 + $1) % 1000000007))
}

# 1. Command substitutions of subshells: 300 x 2 forks.
for ((i = 1; i <= 300; i++)); do
	v=$( (echo $((i * i + 7))))
	mix "$v"
done
echo "subshells $sum"

# 2. Pipelines of builtins and external programs: 150 x 3 forks.
for ((i = 1; i <= 150; i++)); do
	n=$(printf '%s\n' "line-$i" "word-$((i * 3))" "x$((i % 7))" | tr '[:lower:]' '[:upper:]' | wc -c)
	mix "$n"
done
echo "pipelines $sum"

# 3. Background jobs writing to files, then wait: 20 rounds of 12 jobs, each
#    job a subshell with its own command substitution.
for ((r = 0; r < 20; r++)); do
	for ((j = 0; j < 12; j++)); do
		(
			acc=""
			for ((k = 0; k < 40; k++)); do
				acc+="$((r * j + k)),"
			done
			echo "$r.$j $(echo "${#acc}") ${acc:0:20}"
		) >"job.$r.$j" &
	done
	wait
	for ((j = 0; j < 12; j++)); do
		read -r line <"job.$r.$j"
		mix "${#line}"
		echo "$line"
	done >>jobs.txt
done
echo "jobs $(wc -l <jobs.txt) $sum"

# 4. Process substitution, here-strings into subshells and nested $( ).
for ((i = 0; i < 100; i++)); do
	a=$(cat <(echo "p$i") <<<"ignored")
	b=$(echo "$(echo "$(echo "$i$a")")")
	mix "${#b}"
done
echo "nested $sum"

# 5. Bash's own heap: big arrays, associative arrays, string growth, with a
#    fork in the middle of each round so that children inherit a busy heap.
declare -A assoc
declare -a arr
for ((r = 0; r < 40; r++)); do
	for ((k = 0; k < 250; k++)); do
		arr[r * 250 + k]="v$((k * r))"
		assoc["k$r.$k"]=$((k ^ r))
	done
	s=""
	for ((k = 0; k < 60; k++)); do
		s+="${arr[r * 250 + k]}"
	done
	n=$(echo "${#s}" "${#assoc[@]}" | cksum)
	mix "${n%% *}"
	unset 'assoc[k'$r'.0]'
done
echo "heap ${#arr[@]} ${#assoc[@]} $sum"

# 6. Subshell exits with statuses, and ( ) || ( ) chains: 200 forks.
ok=0
for ((i = 0; i < 100; i++)); do
	if (exit $((i % 3))); then ok=$((ok + 1)); fi
	(exit 1) || ok=$((ok + 2))
done
echo "statuses $ok"

# 7. A pipeline of external programs over all the job output.
echo "sorted $(sort -t, -k2 jobs.txt | uniq | sha256sum | cut -c1-16)"
echo "final $sum"
