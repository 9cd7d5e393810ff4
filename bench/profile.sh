#!/usr/bin/env bash
# Profile one workload under one allocator, to find the cause of a loss for
# bench/NOTES.md.
#
#   bash bench/profile.sh WORKLOAD ALLOCATOR [--threads N] [--scale F] [--perf] [--build-dir DIR]
#
# Default: callgrind at 1/20 of the work (slow but exact), then the top
# functions by instructions (callgrind_annotate, exclusive and inclusive). --perf: perf
# record at full scale and perf report instead (needs perf and permission).
# Output files stay in build/profile/.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$root/build
threads=1
scale=0.05
use_perf=0
args=()
while (($#)); do
  case $1 in
    --threads) threads=$2; shift 2 ;;
    --scale) scale=$2; shift 2 ;;
    --perf) use_perf=1; shift ;;
    --build-dir) build=$(cd "$2" && pwd); shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done
((${#args[@]} == 2)) || { sed -n '2,11p' "$0"; exit 2; }
w=${args[0]}
a=${args[1]}
py=/usr/bin/python3; [[ -x $py ]] || py=python3
lib=$("$py" "$root/bench/allocators.py" path "$a" "$build") || { echo "profile.sh: unknown allocator $a" >&2; exit 2; }
bin=$build/bin/bench_$w
[[ -x $bin ]] || { echo "profile.sh: $bin not built" >&2; exit 1; }
out=$build/profile
mkdir -p "$out"
if ((use_perf)); then
  [[ $scale == 0.05 ]] && scale=1
  env ${lib:+LD_PRELOAD=$lib} perf record -g -o "$out/perf.$w.$a.data" "$bin" --threads "$threads" --scale "$scale"
  perf report -i "$out/perf.$w.$a.data" --no-children --sort dso,symbol --stdio 2>/dev/null | head -60
else
  f=$out/callgrind.$w.$a.out
  env ${lib:+LD_PRELOAD=$lib} valgrind --tool=callgrind --callgrind-out-file="$f" "$bin" --threads "$threads" --scale "$scale"
  echo "== exclusive"; callgrind_annotate "$f" 2>/dev/null | sed -n "/file:function/,\$p" | head -25
  echo "== inclusive"; callgrind_annotate --inclusive=yes "$f" 2>/dev/null | sed -n "/file:function/,\$p" | head -25
  echo "profile.sh: full profile in $f (callgrind_annotate $f)"
fi
