# gitwork.sh: the git workload of git.sh, run as `bash gitwork.sh` in an
# empty directory with HOME pointing at it.  Dates and identities are fixed,
# so every object and commit hash is the same from run to run and what it
# prints can be compared byte for byte.
set -eu

export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=$PWD/gitconfig
export GIT_AUTHOR_NAME="Btd Tester" GIT_AUTHOR_EMAIL=tester@example.invalid
export GIT_COMMITTER_NAME="Btd Tester" GIT_COMMITTER_EMAIL=tester@example.invalid
export TZ=UTC LC_ALL=C GIT_PAGER=cat PAGER=cat
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY

tick=1700000000
# at: fix the dates of the next commit (one minute after the last one).
at()
{
	tick=$((tick + 60))
	export GIT_AUTHOR_DATE="@$tick +0000" GIT_COMMITTER_DATE="@$tick +0000"
}

git config --global init.defaultBranch main
git config --global gc.auto 0
git config --global core.autocrlf false
git init -q repo
cd repo

# A tree of files, a few of them large enough to make delta chains in gc.
mkdir -p src/lib docs data
for i in $(seq 1 40); do
	printf 'int f%d(int x) { return x * %d + %d; }\n' "$i" "$i" $((i * i)) >"src/lib/f$i.c"
done
seq 1 5000 >data/numbers.txt
for i in $(seq 1 200); do echo "paragraph $i: the quick brown fox jumps over the lazy dog"; done >docs/text.md
git add -A
at; git commit -q -m "initial import"
git tag v1

for r in $(seq 1 20); do
	sed -i "s/return x \* $r /return x * $((r * 100)) /" "src/lib/f$r.c"
	seq $((r * 1000)) $((r * 1000 + 4000)) >data/numbers.txt
	echo "revision $r" >>docs/text.md
	git add -A
	at; git commit -q -m "revision $r"
done

git checkout -q -b feature v1
mkdir -p src/feature
for i in $(seq 1 10); do
	echo "feature $i $(seq 1 $((i * 20)) | tr '\n' ' ')" >"src/feature/g$i.txt"
done
echo "feature note" >>docs/text.md.feature
git add -A
at; git commit -q -m "feature: add g files"
git rm -q src/lib/f40.c
git mv src/lib/f39.c src/lib/f39_renamed.c
at; git commit -q -m "feature: remove f40, rename f39"

git checkout -q main
at; git merge -q --no-edit feature
git tag v2

echo "== log"
git log --oneline --graph --decorate=short --all
echo "== diff v1 v2 --stat"
git diff --stat v1 v2
echo "== diff v1 HEAD^1~2 -- src/lib/f3.c docs/text.md"
git diff v1 HEAD^1~2 -- src/lib/f3.c docs/text.md
echo "== diff --name-status -M v1 v2"
git diff --name-status -M v1 v2
echo "== show --format=%H%n%T%n%P%n%ad%n%s -s HEAD"
git show --format='%H%n%T%n%P%n%ad%n%s' -s HEAD
echo "== blame"
git blame -s -l src/lib/f2.c
echo "== log -p, grep, shortlog"
git log -p --stat --format='%H %s' main | cksum
git grep -c 'return x' v2 -- src/lib | tail -n 3
git shortlog -s -n --all
echo "== count-objects (loose)"
git count-objects | cut -d, -f1

git gc -q --aggressive --prune=now
echo "== after gc"
git count-objects -v | grep -E '^(count|in-pack|packs|garbage):'
git verify-pack -v .git/objects/pack/pack-*.idx | grep -E '^(non delta|chain length)' | sort
git fsck --full --strict --no-progress
echo "== fsck ok"

echo "== rev-list and cat-file"
git rev-list --all --objects | sort | git hash-object --stdin
git cat-file -p 'v2^{tree}'
git log --format='%h %s' --reverse main | cksum

# A reset, a revert and a cherry-pick on top of the packed repository.
at; git revert --no-edit feature~1
git checkout -q -b side v1
at; git cherry-pick feature
git checkout -q main
git reset -q --hard HEAD~1
echo "== final"
git log --oneline --all | wc -l
git rev-parse HEAD side
git status --porcelain --branch
