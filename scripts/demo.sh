#!/usr/bin/env bash
# Builds everything in release mode (build/), then runs real programs under
# spanalloc via LD_PRELOAD beside the system allocator and prints a short
# report: same output?, wall time, peak RSS, and spanalloc's own report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)"
lib=$PWD/build/libspanalloc.so
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat >"$work/job.py" <<'PY'
import json, hashlib, random
random.seed(42)
docs = [{"id": i, "name": "item-%d" % i, "tags": [random.choice("abcdef") * random.randint(1, 40) for _ in range(8)],
         "score": random.random()} for i in range(120000)]
text = json.dumps(docs)
back = json.loads(text)
index = {}
for d in back:
    for t in d["tags"]:
        index.setdefault(t, []).append(d["id"])
print(len(text), len(index), hashlib.sha256(text.encode()).hexdigest()[:16])
PY
sql="create table t(a integer primary key, b text); with recursive c(x) as (select 1 union all select x+1 from c limit 200000) insert into t select x, hex(randomblob(24)) from c; create index tb on t(b); select count(*), sum(length(b)) from t;"

run() {  # run LABEL PRELOAD CMD...
  local label=$1 pre=$2; shift 2
  /usr/bin/time -f "%e %M" -o "$work/time" env ${pre:+LD_PRELOAD=$pre} "$@" >"$work/out.$label" 2>"$work/err.$label"
  read -r secs kib <"$work/time"
  printf "  %-10s %6.2f s  %8.1f MiB peak RSS\n" "$label" "$secs" "$(awk -v k="$kib" 'BEGIN{print k/1024}')"
}

for prog in python3 sqlite3; do
  echo "== $prog"
  if [[ $prog == python3 ]]; then cmd=(/usr/bin/python3 "$work/job.py"); else cmd=(sqlite3 ":memory:" "$sql"); fi
  run glibc "" "${cmd[@]}"
  run spanalloc "$lib" "${cmd[@]}"
  if cmp -s "$work/out.glibc" "$work/out.spanalloc"; then echo "  output identical: $(head -c 80 "$work/out.glibc")"; else echo "  OUTPUT DIFFERS"; exit 1; fi
done

echo "== spanalloc's report for the python3 run (SPANALLOC_REPORT=1)"
SPANALLOC_REPORT=1 LD_PRELOAD=$lib /usr/bin/python3 "$work/job.py" 2>&1 >/dev/null | sed -n '1,12p'
echo
echo "Library: $lib   (LD_PRELOAD=$lib your-program)"
echo "Benchmarks against jemalloc, tcmalloc and mimalloc: bash bench/run.sh (see BENCHMARKS.md)"
