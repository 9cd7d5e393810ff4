#!/usr/bin/env bash
# Runs a real program's workload twice, under the system allocator and with
# LD_PRELOAD=libspanalloc.so, and checks that both exit 0 with identical
# output (stdout and stderr), and that spanalloc really was loaded in the
# preloaded run (libspanalloc in the program's /proc/PID/maps, and the
# program's malloc bound to it according to the dynamic linker).
#
# Usage: real_programs.sh python|sqlite|git /path/to/libspanalloc.so
set -uo pipefail

prog=${1:?program: python, sqlite or git}
lib=${2:?path to libspanalloc.so}
[[ -f $lib ]] || { echo "FAIL: $lib does not exist"; exit 1; }
lib=$(readlink -f "$lib")
unset LD_PRELOAD

PYTHON=/usr/bin/python3   # Debian's interpreter, not a pyenv shim
SQLITE=/usr/bin/sqlite3
GIT=/usr/bin/git

tmp=$(mktemp -d "${TMPDIR:-/tmp}/spanalloc-real.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# ---- workloads: each writes its result to stdout, run from an empty folder --

python_workload() {
  "$PYTHON" - <<'EOF'
import collections, hashlib, json, random, threading
random.seed(12345)
d = {f"key{i}": [i, str(i) * 3, {"v": i * 0.5, "t": (i, -i)}] for i in range(120000)}
vals = [random.random() for _ in range(200000)]
vals.sort()
s = "".join(str(x) for x in range(60000))
text = json.dumps(d, sort_keys=True)
back = json.loads(text)
assert back == {k: [v[0], v[1], {"v": v[2]["v"], "t": list(v[2]["t"])}] for k, v in d.items()}
counts = collections.Counter(s)
del d, back
chunks = [bytearray(b"x" * (100 + i % 5000)) for i in range(20000)]
results = [None] * 4
def work(k):
    r = random.Random(k)
    parts = []
    for i in range(40000):
        parts.append(("%d-%s" % (r.randrange(1 << 30), "y" * (i % 50))).upper())
    results[k] = hashlib.md5("|".join(sorted(parts)).encode()).hexdigest()
threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
for t in threads: t.start()
for t in threads: t.join()
h = hashlib.sha256()
h.update(text.encode())
h.update(repr(vals[::997]).encode())
h.update(repr(sorted(counts.items())).encode())
print("digest", h.hexdigest())
print("sizes", len(text), len(s), sum(len(c) for c in chunks))
print("threads", " ".join(results))
EOF
}

sqlite_workload() {
  {
    echo "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, val REAL, payload BLOB);"
    echo "BEGIN;"
    awk 'BEGIN { for (i = 1; i <= 20000; i++)
      printf "INSERT INTO t VALUES(%d, %cname-%d-%s%c, %d, %d.25, zeroblob(%d));\n",
             i, 39, i, substr("abcdefghijklmnopqrstuvwxyz", 1 + i % 26), 39, i % 37, i * 7, i % 300 }'
    echo "COMMIT;"
    echo "CREATE INDEX t_grp ON t(grp, val);"
    echo "SELECT grp, count(*), sum(val), max(length(name)), sum(length(payload)) FROM t GROUP BY grp ORDER BY grp;"
    echo "SELECT count(*), sum(id) FROM t WHERE name LIKE '%xyz%' OR val > 100000;"
    echo "SELECT a.grp, count(*) FROM t a JOIN t b ON a.id = b.id + 1 AND a.grp = (b.grp + 1) % 37 GROUP BY a.grp ORDER BY 2 DESC, 1 LIMIT 5;"
    echo "SELECT group_concat(name, ',') IS NOT NULL, length(group_concat(name, ',')) FROM (SELECT name FROM t ORDER BY name DESC);"
    echo "UPDATE t SET payload = zeroblob(500) WHERE id % 10 = 0;"
    echo "DELETE FROM t WHERE id % 3 = 0;"
    echo "VACUUM;"
    echo "SELECT count(*), total(val), sum(length(payload)) FROM t;"
    echo "PRAGMA integrity_check;"
  } >workload.sql
  "$SQLITE" test.db <workload.sql
}

git_workload() {
  export HOME=$PWD/home GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
  export GIT_AUTHOR_NAME=Tester GIT_AUTHOR_EMAIL=tester@example.invalid
  export GIT_COMMITTER_NAME=Tester GIT_COMMITTER_EMAIL=tester@example.invalid
  export GIT_AUTHOR_DATE='2026-01-01T00:00:00+0000' GIT_COMMITTER_DATE='2026-01-01T00:00:00+0000'
  mkdir -p home
  "$GIT" init -q -b main repo || return 1
  cd repo || return 1
  for c in $(seq 1 25); do
    mkdir -p "dir$((c % 5))"
    seq "$c" "$((c * 400))" >"dir$((c % 5))/numbers$c.txt"
    awk -v c="$c" 'BEGIN { for (i = 0; i < 300; i++) print "line", i, "of commit", c, i * c }' >common.txt
    [[ $c -gt 3 ]] && rm -f "dir$(((c - 3) % 5))/numbers$((c - 3)).txt"
    "$GIT" add -A && "$GIT" commit -q -m "commit $c" || return 1
  done
  "$GIT" log --stat --format='%H %s' | head -200
  "$GIT" gc --quiet || return 1
  "$GIT" fsck --full --no-progress || return 1
  "$GIT" rev-list --count HEAD
  "$GIT" diff --stat HEAD~10 HEAD
  "$GIT" grep -c "of commit" HEAD~5 -- common.txt
  "$GIT" ls-tree -r HEAD | sort
  "$GIT" cat-file -p HEAD
}

# ---- checks that spanalloc was in the preloaded process ----------------------

loaded_check() {
  case $prog in
    python) "$PYTHON" -c 'import os, sys; m = open("/proc/%d/maps" % os.getpid()).read(); sys.exit(0 if "libspanalloc" in m else 1)' ;;
    sqlite) local n; n=$("$SQLITE" :memory: '.shell grep -c libspanalloc /proc/$PPID/maps')
            [[ -n $n && $n != 0 ]] ;;
    git) "$GIT" -c alias.maps='!grep -q libspanalloc /proc/$PPID/maps' maps ;;
  esac
}

bound_to_spanalloc() {  # the dynamic linker binds the program's malloc to libspanalloc
  local bin out
  case $prog in python) bin=$PYTHON ;; sqlite) bin=$SQLITE ;; git) bin=$GIT ;; esac
  case $prog in
    python) out=$(LD_DEBUG=bindings LD_PRELOAD=$lib "$bin" -c 'print(1)' 2>&1 >/dev/null) ;;
    sqlite) out=$(LD_DEBUG=bindings LD_PRELOAD=$lib "$bin" :memory: 'select 1;' 2>&1 >/dev/null) ;;
    git) out=$(LD_DEBUG=bindings LD_PRELOAD=$lib "$bin" --version 2>&1 >/dev/null) ;;
  esac
  grep -q "to $lib \[0\]: normal symbol \`malloc'" <<<"$out" ||
    grep -q "to [^ ]*libspanalloc[^ ]* \[0\]: normal symbol \`malloc'" <<<"$out"
}

# ---- run ----------------------------------------------------------------------

run_once() {  # run_once NAME [env assignments...]
  local name=$1; shift
  mkdir -p "$tmp/$name"
  (cd "$tmp/$name" && env "$@" bash -c "${prog}_workload") \
    >"$tmp/$name.out" 2>"$tmp/$name.err"
  echo $? >"$tmp/$name.rc"
}

export PYTHON SQLITE GIT
export -f python_workload sqlite_workload git_workload

fail=0
start=$SECONDS
run_once system LD_PRELOAD=
run_once preload "LD_PRELOAD=$lib"
sys_rc=$(cat "$tmp/system.rc"); pre_rc=$(cat "$tmp/preload.rc")
echo "$prog: system allocator exit $sys_rc, $(wc -c <"$tmp/system.out") bytes of output"
echo "$prog: spanalloc        exit $pre_rc, $(wc -c <"$tmp/preload.out") bytes of output ($((SECONDS - start)) s for both)"
if [[ $sys_rc != 0 ]]; then
  echo "FAIL: the workload fails under the system allocator (test bug):"; head -20 "$tmp/system.err"; fail=1
fi
if [[ $pre_rc != 0 ]]; then
  echo "FAIL: exit status $pre_rc under LD_PRELOAD=$lib"; head -20 "$tmp/preload.err"; fail=1
fi
if ! cmp -s "$tmp/system.out" "$tmp/preload.out"; then
  echo "FAIL: stdout differs between the system allocator and spanalloc:"
  diff "$tmp/system.out" "$tmp/preload.out" | head -20; fail=1
fi
if ! cmp -s "$tmp/system.err" "$tmp/preload.err"; then
  echo "FAIL: stderr differs between the system allocator and spanalloc:"
  diff "$tmp/system.err" "$tmp/preload.err" | head -20; fail=1
fi
if [[ ! -s $tmp/system.out ]]; then
  echo "FAIL: the workload printed nothing"; fail=1
fi
if ! LD_PRELOAD=$lib loaded_check; then
  echo "FAIL: libspanalloc is not in the maps of $prog run with LD_PRELOAD"; fail=1
fi
if ! bound_to_spanalloc; then
  echo "FAIL: the dynamic linker did not bind $prog's malloc to libspanalloc"; fail=1
fi
if LD_PRELOAD= loaded_check 2>/dev/null; then
  echo "FAIL: the loaded check passes without LD_PRELOAD too (check is broken)"; fail=1
fi
((fail)) && exit 1
echo "PASS: $prog, identical output with and without spanalloc"
