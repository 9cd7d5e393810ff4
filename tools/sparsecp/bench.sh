#!/usr/bin/env bash
# bench.sh [SPARSECP] [RUNS]: sparsecp against GNU cp, on the file system of
# ${TMPDIR:-/tmp} (OLD_SPARSECP=path adds a row for another build).
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

# pairs RUNS DIR LABEL_A CMD_A LABEL_B CMD_B ...: one table row per pair of
# commands (each CMD a shell word list, given SRC DST at the end). Python
# for the clock: wait4's rusage gives CPU time in microseconds.
pairs() {
  python3 - "$@" <<'PY'
import os, shlex, statistics, subprocess, sys, time
runs, d = int(sys.argv[1]), sys.argv[2]
src, dst = os.path.join(d, "src"), os.path.join(d, "dst")
def once(cmd):
    if os.path.exists(dst):
        os.unlink(dst)
    os.sync()
    t0 = time.monotonic()
    pid = os.spawnvp(os.P_NOWAIT, cmd[0], cmd + [src, dst])
    _, status, ru = os.wait4(pid, 0)
    wall = time.monotonic() - t0
    if status != 0 or subprocess.call(["cmp", "-s", src, dst]) != 0:
        sys.exit("bench.sh: %s made a wrong copy" % " ".join(cmd))
    return wall, ru.ru_utime + ru.ru_stime
args = sys.argv[3:]
for i in range(0, len(args), 4):
    la, a, lb, b = args[i], shlex.split(args[i + 1]), args[i + 2], shlex.split(args[i + 3])
    ra, rb = [], []
    for k in range(runs):
        if k % 2 == 0:
            ra.append(once(a)); rb.append(once(b))
        else:
            rb.append(once(b)); ra.append(once(a))
    med = lambda xs: statistics.median(xs)
    wall_ratio = med([x[0] / y[0] for x, y in zip(ra, rb)])
    cpu_ratio = med([x[1] / y[1] for x, y in zip(ra, rb)])
    print("| `%s` | %.3f s (%.3f s) | `%s` | %.3f s (%.3f s) | x %.2f | x %.2f |" % (
        la, med([x[0] for x in ra]), med([x[1] for x in ra]), lb, med([x[0] for x in rb]),
        med([x[1] for x in rb]), wall_ratio, cpu_ratio), flush=True)
PY
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
pairs "$runs" "$dir" \
  "sparsecp" "$bin" "cp --sparse=always" "cp --sparse=always" \
  "sparsecp --sparse=always" "$bin --sparse=always" "cp --sparse=always" "cp --sparse=always" \
  "sparsecp" "$bin" "cp" "cp" \
  "sparsecp --reflink=never" "$bin --reflink=never" "cp --reflink=never" "cp --reflink=never" \
  ${OLD_SPARSECP:+"sparsecp before (OLD_SPARSECP)" "$OLD_SPARSECP" "cp --sparse=always" "cp --sparse=always"}
echo

now() { date +%s.%N; }
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
