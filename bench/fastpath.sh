#!/usr/bin/env bash
# Fast-path cost: callgrind instructions per malloc+free pair, per allocator.
#
#   bash bench/fastpath.sh [--build-dir DIR] [--allocators glibc,jemalloc,...] [--n N]
#
# Patterns (bench/fastpath.c): (a) malloc(32) then free at once; (b) 256 live
# 32 B objects allocated, then freed in LIFO order. Only the measured loop is
# collected (--toggle-collect), the calls into malloc/free included; each
# pattern runs with N and 2N pairs and (Ir(2N) - Ir(N)) / N is reported, so
# start-up and first-touch costs cancel. Prints one JSON line per allocator
# ({"fastpath":...}) and then a table. Needs valgrind (scripts/deps.sh).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$root/build
allocators=glibc,jemalloc,tcmalloc,mimalloc,spanalloc
n=102400
while (($#)); do
  case $1 in
    --build-dir) build=$(cd "$2" && pwd); shift 2 ;;
    --allocators) allocators=$2; shift 2 ;;
    --n) n=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "fastpath.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
n=$(( (n + 255) / 256 * 256 ))
bin=$build/bin/bench_fastpath
[[ -x $bin ]] || { echo "fastpath.sh: $bin not built" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "fastpath.sh: valgrind missing (run scripts/deps.sh)" >&2; exit 1; }
py=/usr/bin/python3; [[ -x $py ]] || py=python3
# The library of allocator $1 from the one table (bench/allocators.py); "?" if unknown.
lib_of() { "$py" "$root/bench/allocators.py" path "$1" "$build" 2>/dev/null || echo "?"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Ir collected inside fp_loop_<pattern> for <count> pairs; empty on failure.
count_ir() {  # lib pattern count
  local out=$tmp/cg.$2.$3
  if ! env ${1:+LD_PRELOAD=$1} valgrind --tool=callgrind --toggle-collect="fp_loop_$2" \
      --callgrind-out-file="$out" "$bin" "$2" "$3" >"$tmp/stdout" 2>"$tmp/stderr"; then
    return 1
  fi
  grep -q '"bench":"fastpath"' "$tmp/stdout" || return 1
  awk '/^(summary|totals):/ {print $2; exit}' "$out"
}
rows=()
for a in ${allocators//,/ }; do
  lib=$(lib_of "$a")
  res=()
  status=ok
  if [[ $lib == "?" ]]; then
    status="unknown allocator"
  elif [[ -n $lib && ! -e $lib ]]; then
    status="not built ($lib missing)"
  elif [[ -n $lib ]] && ! probe=$("$py" "$root/bench/bench.py" --build-dir "$build" --probe "$a" 2>/dev/null); then
    # A short native run under an RSS watchdog first: never feed callgrind an
    # allocator that crashes or eats the machine's memory.
    status="${probe:-probe failed}"
  else
    for p in a b; do
      i1=$(count_ir "$lib" $p $n) || i1=""
      i2=$(count_ir "$lib" $p $((2 * n))) || i2=""
      if [[ -z $i1 || -z $i2 ]]; then
        status="callgrind run failed: $(tail -n 1 "$tmp/stderr" | tr -d '"\\')"
        break
      fi
      res+=("$(awk -v a="$i1" -v b="$i2" -v n="$n" 'BEGIN {printf "%.1f", (b - a) / n}')")
    done
  fi
  if [[ $status == ok ]]; then
    echo "{\"fastpath\":\"$a\",\"status\":\"ok\",\"pairs\":$n,\"a\":${res[0]},\"b\":${res[1]}}"
    rows+=("$(printf '%-10s %12s %12s' "$a" "${res[0]}" "${res[1]}")")
  else
    status=${status//[\"\\]/}
    echo "{\"fastpath\":\"$a\",\"status\":\"$status\"}"
    rows+=("$(printf '%-10s %s' "$a" "$status")")
  fi
done
echo
echo "instructions per malloc+free pair (callgrind Ir): (a) malloc+free 32 B, (b) 256 live 32 B, LIFO"
printf '%-10s %12s %12s\n' allocator "(a)" "(b)"
printf '%s\n' "${rows[@]}"
