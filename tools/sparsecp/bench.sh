#!/usr/bin/env bash
# bench.sh [SPARSECP] [RUNS]: sparsecp against GNU cp, on the file system of
# ${TMPDIR:-/tmp}.
#   1. the table of tools/sparsecp/README.md: a 1 GiB file with 7 x 64 MiB
#      of random data (the rest holes), RUNS paired runs (default 11) of
#      each pair of commands, the order inside a pair alternating, the page
#      cache flushed (sync) and the copy removed before every run (not
#      timed); prints the median time of each command and the median of the
#      per-pair ratios;
#   2. 1 TiB sparse files (the "well under a second" claim), once each.
# Kept out of the tests: timings on a shared machine are for people to read.
set -euo pipefail
bin=${1:-$(dirname "$0")/../../build/bin/sparsecp}
runs=${2:-11}
[[ -x $bin ]] || { echo "bench.sh: no sparsecp at $bin (build first or pass the path)" >&2; exit 1; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/sparsecp-bench.XXXXXX")
trap 'rm -rf "$dir"' EXIT

now() { date +%s.%N; }
# seconds CMD...: runs CMD on $dir/src -> $dir/dst; prints its wall time
# and its CPU time (user + system), in seconds.
seconds() {
  rm -f "$dir/dst"
  sync
  /usr/bin/time -f "%e %U %S" -o "$dir/t" "$@" "$dir/src" "$dir/dst"
  cmp -s "$dir/src" "$dir/dst" || { echo "bench.sh: $* made a wrong copy" >&2; exit 1; }
  awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }' "$dir/t"
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# pair LABEL_A CMD_A -- LABEL_B CMD_B: one row of the table.
pair() {
  local la=$1 i ta tb a=() b=()
  shift
  while [[ $1 != -- ]]; do a+=("$1"); shift; done
  shift
  local lb=$1
  shift
  b=("$@")
  : >"$dir/ta"; : >"$dir/tb"
  for ((i = 0; i < runs; i++)); do
    if ((i % 2 == 0)); then ta=$(seconds "${a[@]}"); tb=$(seconds "${b[@]}")
    else tb=$(seconds "${b[@]}"); ta=$(seconds "${a[@]}"); fi
    echo "$ta" >>"$dir/ta"; echo "$tb" >>"$dir/tb"
  done
  paste "$dir/ta" "$dir/tb" | awk '{ print $1 / $3 }' >"$dir/wall_ratio"
  paste "$dir/ta" "$dir/tb" | awk '{ print ($4 > 0 ? $2 / $4 : 1) }' >"$dir/cpu_ratio"
  printf '| `%s` | %.3f s (%.3f s) | `%s` | %.3f s (%.3f s) | x %.2f | x %.2f |\n' "$la" \
    "$(cut -d' ' -f1 "$dir/ta" | median)" "$(cut -d' ' -f2 "$dir/ta" | median)" "$lb" \
    "$(cut -d' ' -f1 "$dir/tb" | median)" "$(cut -d' ' -f2 "$dir/tb" | median)" \
    "$(median <"$dir/wall_ratio")" "$(median <"$dir/cpu_ratio")"
}

truncate -s 1G "$dir/src"
for i in 0 1 2 3 4 5 6; do
  head -c $((64 << 20)) /dev/urandom | dd of="$dir/src" bs=1M seek=$((i * 140 + 10)) conv=notrunc status=none
done
fs=$(df -T "$dir" | awk 'NR == 2 { print $2 }')
echo "1 GiB, 7 x 64 MiB random data, on $fs ($(uname -r), $(nproc) CPUs), median of $runs paired runs:"
echo
echo "| sparsecp | wall (CPU) | cp 9.1 | wall (CPU) | wall ratio | CPU ratio |"
echo "|---|---|---|---|---|---|"
pair "sparsecp" "$bin" -- "cp --sparse=always" cp --sparse=always
pair "sparsecp --sparse=always" "$bin" --sparse=always -- "cp --sparse=always" cp --sparse=always
pair "sparsecp" "$bin" -- "cp" cp
pair "sparsecp --reflink=never" "$bin" --reflink=never -- "cp --reflink=never" cp --reflink=never
echo

timed() {  # timed LABEL CMD...: prints seconds and the copy's blocks
  local t0 t1
  rm -f "$dir/dst"
  t0=$(now); "${@:2}"; t1=$(now)
  printf '%-34s %8.3f s  size %s  blocks %s\n' "$1" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
    "$(stat -c %s "$dir/dst")" "$(stat -c %b "$dir/dst")"
}

rm -f "$dir/src"
truncate -s 1T "$dir/src"
echo "1 TiB, all hole:"
timed "  sparsecp" "$bin" "$dir/src" "$dir/dst"
timed "  sparsecp --sparse=always" "$bin" --sparse=always "$dir/src" "$dir/dst"
timed "  cp --sparse=auto" cp "$dir/src" "$dir/dst"

printf a | dd of="$dir/src" conv=notrunc status=none
printf z | dd of="$dir/src" bs=1 seek=$(((1 << 40) - 1)) conv=notrunc status=none
head -c $((64 << 20)) /dev/urandom | dd of="$dir/src" bs=1M seek=$((512 << 10)) conv=notrunc status=none
echo "1 TiB, a byte at each end and 64 MiB of data in the middle:"
timed "  sparsecp" "$bin" "$dir/src" "$dir/dst"
timed "  sparsecp --sparse=always" "$bin" --sparse=always "$dir/src" "$dir/dst"
timed "  cp --sparse=auto" cp "$dir/src" "$dir/dst"
