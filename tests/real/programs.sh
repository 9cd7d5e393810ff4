#!/usr/bin/env bash
# Real programs' workloads, each run under glibc's malloc and then with
# LD_PRELOAD=libspanalloc.so: both must exit 0 with identical stdout and
# stderr (and identical output files), and every process of the preloaded
# run (children too) must have run on spanalloc.
#
#   git     a repository of 2,000 files, 30 commits of edits, adds, deletes
#           and renames, a branch merged back, git gc, fsck, log, blame, diff
#   sqlite  200,000 rows, two indexes, grouped and joined queries, updates,
#           deletes, VACUUM, integrity check
#   gcc     g++ -O2 -g compiling two files of this project (the page heap and
#           the gtest-heavy API conformance suite): identical objects
#
# Usage: programs.sh git|sqlite|gcc LIBSPANALLOC
set -uo pipefail
prog=${1:?git, sqlite or gcc}
LIB=${2:?path to libspanalloc.so}
source "$(dirname "$0")/lib.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)  # the project, for gcc's inputs
export SRC

git_workload() {
  export HOME=$PWD/home GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
  export GIT_AUTHOR_NAME=Tester GIT_AUTHOR_EMAIL=tester@example.invalid
  export GIT_COMMITTER_NAME=Tester GIT_COMMITTER_EMAIL=tester@example.invalid
  mkdir -p home
  git init -q -b main repo && cd repo || return 1
  git config pack.threads 2  # both cores: pack-objects allocates from threads
  # 2,000 files in 40 folders, 1-12 KiB each.
  awk 'BEGIN { for (f = 0; f < 2000; f++) {
           name = sprintf("d%02d/file%04d.txt", f % 40, f)
           if (f % 40 == f) system("mkdir -p d" sprintf("%02d", f))
           for (l = 0; l < 20 + (f * 37) % 300; l++) print "file", f, "line", l, "value", (f * 131 + l * 17) % 1009 > name
           close(name) } }'
  commit() { git add -A && GIT_AUTHOR_DATE="@$((1767225600 + $1 * 3600)) +0000" \
    GIT_COMMITTER_DATE="@$((1767225600 + $1 * 3600)) +0000" git commit -q -m "commit $1"; }
  commit 0 || return 1
  for c in $(seq 1 30); do
    ((c == 15)) && git checkout -q -b side HEAD~4
    if ((c == 22)); then  # merge: content conflicts go to the side branch, the rest is committed as is
      git checkout -q main || return 1
      export GIT_AUTHOR_DATE="@$((1767225600 + c * 3600 - 60)) +0000" GIT_COMMITTER_DATE="@$((1767225600 + c * 3600 - 60)) +0000"
      git merge -q --no-edit -X theirs side >/dev/null 2>&1 || { git add -A && git commit -q --no-edit; } || return 1
      unset GIT_AUTHOR_DATE GIT_COMMITTER_DATE
    fi
    # Edit 60 files, append to 20, delete 5, add 10, rename 3.
    awk -v c="$c" 'BEGIN { for (k = 0; k < 60; k++) {
             f = (c * 67 + k * 29) % 2000; name = sprintf("d%02d/file%04d.txt", f % 40, f)
             out = ""; n = 0
             while ((getline line < name) > 0) { n++; if (n % (c % 7 + 2) == 0) line = line " edited " c; out = out line "\n" }
             close(name); if (n == 0) continue; printf "%s", out > name; close(name) }
           for (k = 0; k < 20; k++) { f = (c * 13 + k * 101) % 2000; name = sprintf("d%02d/file%04d.txt", f % 40, f)
             if ((getline line < name) > 0) { close(name); print "appended in", c >> name; close(name) } else close(name) }
           for (k = 0; k < 10; k++) { name = sprintf("d%02d/new%02d_%02d.txt", (c + k) % 40, c, k)
             for (l = 0; l < 50 * k + 5; l++) print "new", c, k, l > name; close(name) } }'
    for k in 1 2 3 4 5; do rm -f "d$(printf %02d $(((c * 7 + k) % 40)))/file$(printf %04d $(((c * 7 + k * 40) % 2000))).txt"; done
    for k in 1 2 3; do
      f=$(((c * 53 + k * 211) % 2000)); src=d$(printf %02d $((f % 40)))/file$(printf %04d $f).txt
      [[ -f $src ]] && git mv "$src" "d$(printf %02d $(((f + 1) % 40)))/moved$(printf %04d $f)_$c.txt" 2>/dev/null
    done
    commit "$c" || return 1
  done
  git gc --quiet --aggressive || return 1
  git fsck --full --no-progress --strict || return 1
  git count-objects -v | grep -E '^(count|in-pack|packs):'
  git rev-list --count --all
  git rev-list --objects --all | wc -l
  git log --stat -M --format='%H %an %s' | md5sum
  git log --oneline --graph --all | head -40
  git diff --stat -M HEAD~20 HEAD | tail -5
  git diff HEAD~10 HEAD | md5sum
  git blame -s d01/file0041.txt | md5sum
  git grep -c "edited 2" HEAD~3 | md5sum
  git ls-tree -r HEAD | md5sum
  git archive --format=tar HEAD | md5sum
  git cat-file -p HEAD
}

sqlite_workload() {
  sqlite3 test.db <<'SQL'
PRAGMA journal_mode = WAL;
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, val REAL, payload BLOB);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000)
INSERT INTO t SELECT x, 'name-' || x || '-' || substr('abcdefghijklmnopqrstuvwxyz', 1 + x % 26),
                     (x * 7919) % 997, ((x * 104729) % 100003) / 4.0, zeroblob(x % 400) FROM c;
CREATE INDEX t_grp ON t(grp, val);
CREATE INDEX t_name ON t(name);
SELECT count(*), sum(id), total(val), sum(length(payload)) FROM t;
SELECT grp, count(*), round(sum(val), 2), max(length(name)) FROM t WHERE grp < 20 GROUP BY grp ORDER BY grp;
SELECT count(*), sum(id) FROM t WHERE name LIKE 'name-1%xyz' OR val BETWEEN 100 AND 120;
SELECT name FROM t WHERE name > 'name-19999' ORDER BY name LIMIT 10;
SELECT a.grp, count(*) FROM t a JOIN t b ON b.id = a.id + 1 AND b.grp = (a.grp + 1) % 997 GROUP BY a.grp ORDER BY 2 DESC, 1 LIMIT 5;
SELECT grp, group_concat(id, ',') FROM (SELECT grp, id FROM t WHERE grp IN (3, 500, 996) ORDER BY id) GROUP BY grp;
SELECT length(group_concat(name, ',')) FROM (SELECT name FROM t ORDER BY val DESC, id);
UPDATE t SET payload = zeroblob(1000), name = name || '-updated' WHERE id % 10 = 0;
DELETE FROM t WHERE id % 3 = 0;
SELECT count(*), total(val), sum(length(payload)), sum(length(name)) FROM t;
PRAGMA wal_checkpoint(TRUNCATE);
VACUUM;
SELECT count(*) FROM t INDEXED BY t_grp WHERE grp = 42;
PRAGMA integrity_check;
SQL
  sqlite3 test.db .dump | md5sum
}

gcc_workload() {
  # From the project's root, so the debug information's paths are the same
  # in both runs; only the outputs go to this run's folder.
  local out=$PWD
  local gen=$GEN_INCLUDE
  (cd "$SRC" && g++ -std=c++20 -O2 -g -Wall -Wextra -frandom-seed=spanalloc -Isrc -Iinclude -I"$gen" \
     -c src/page_heap.cc -o "$out/page_heap.o" &&
   g++ -std=c++20 -O2 -g -Wall -Wextra -frandom-seed=spanalloc -Iinclude -I"$gen" -Itests/api -DSPANALLOC_API_LINKED=0 \
     -c tests/api/conformance.cc -o "$out/conformance.o" &&
   g++ -std=c++20 -O2 -Wall -Wextra -frandom-seed=spanalloc -Isrc -Iinclude -I"$gen" \
     -S src/page_heap.cc -o "$out/page_heap.s") || return 1
  md5sum page_heap.o conformance.o page_heap.s
  size page_heap.o conformance.o
}

# probe: a short command whose processes are counted (each prints its
# report at exit with SPANALLOC_REPORT=1), and how many there must be.
probe() {
  case $prog in
    git) git -C "$T/preload/repo" gc --quiet ;;  # gc, repack, pack-objects, ...
    sqlite) sqlite3 :memory: 'select 1;' ;;
    gcc) (cd "$T" && echo 'int main() { return 0; }' >p.cc && g++ -c p.cc -o p.o) ;;  # g++, cc1plus, as
  esac
}
case $prog in git) probe_min=3 ;; sqlite) probe_min=1 ;; gcc) probe_min=3 ;; *) echo "unknown program $prog"; exit 2 ;; esac
case $prog in git) need git ;; sqlite) need sqlite3 ;; gcc) need g++ as ;; esac

run_once() {  # run_once NAME PRELOAD
  mkdir -p "$T/$1"
  (cd "$T/$1" && LD_PRELOAD=$2 bash -c "${prog}_workload") >"$T/$1.out" 2>"$T/$1.err"
  echo $? >"$T/$1.rc"
}
# The build folder's include/ holds the configured spanalloc_version.h.
GEN_INCLUDE=$(dirname "$LIB")/include
export GEN_INCLUDE
export -f git_workload sqlite_workload gcc_workload

start=$SECONDS
run_once system ""
t1=$((SECONDS - start))
run_once preload "$LIB"
t2=$((SECONDS - start - t1))
echo "$prog: glibc exit $(cat "$T/system.rc") in $t1 s, spanalloc exit $(cat "$T/preload.rc") in $t2 s," \
  "$(wc -l <"$T/system.out") lines of output"
[[ $(cat "$T/system.rc") == 0 ]] || { fail "the workload fails under glibc (test bug):"; tail -20 "$T/system.err"; }
[[ $(cat "$T/preload.rc") == 0 ]] || { fail "exit status $(cat "$T/preload.rc") under spanalloc:"; tail -20 "$T/preload.err"; }
[[ -s $T/system.out ]] || fail "the workload printed nothing"
same_file stdout "$T/system.out" "$T/preload.out"
same_file stderr "$T/system.err" "$T/preload.err"
if [[ $prog == gcc ]]; then
  for f in page_heap.o conformance.o page_heap.s; do same_file "$f" "$T/system/$f" "$T/preload/$f"; done
fi
n=$( (LD_PRELOAD=$LIB SPANALLOC_REPORT=1 probe) 2>&1 >/dev/null | grep -c -- '- spanalloc report')
((n >= probe_min)) || fail "$n processes reported running on spanalloc in the probe, want >= $probe_min"
echo "$prog: $n processes of the probe ran on spanalloc"
finish "$prog"
