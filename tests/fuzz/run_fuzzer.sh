#!/usr/bin/env bash
# Runs one fuzzer for a bounded time: first every input of its corpus in the
# repository (a regression test), then new inputs for SECONDS seconds. New
# inputs go to a scratch folder, never into the repository. A crash, a leak,
# an ASan report or a failed check exits non-zero; the input that did it is
# kept in the build's fuzz-crashes/ folder.
#
# Usage: run_fuzzer.sh FUZZER CORPUS_DIR SECONDS [libFuzzer options...]
set -uo pipefail
fuzzer=${1:?fuzzer binary}
corpus=${2:?corpus folder}
seconds=${3:?seconds}
shift 3
[[ -x $fuzzer ]] || { echo "FAIL: $fuzzer is not built"; exit 1; }
[[ -d $corpus ]] && compgen -G "$corpus/*" >/dev/null || { echo "FAIL: empty corpus $corpus"; exit 1; }
scratch=$(mktemp -d "${TMPDIR:-/tmp}/spanalloc-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
crashes=$(dirname "$fuzzer")/fuzz-crashes
mkdir -p "$crashes"
log=$scratch/log
"$fuzzer" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 \
  -artifact_prefix="$crashes/$(basename "$fuzzer")-" "$@" "$scratch" "$corpus" >"$log" 2>&1
rc=$?
grep -E '^#[0-9]+ +(INITED|DONE)|^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$log"
if ((rc != 0)); then
  echo "FAIL: $(basename "$fuzzer") exited $rc; its report:"
  grep -vE '^#[0-9]+ +(NEW|REDUCE|pulse)' "$log" | tail -60
  exit 1
fi
echo "PASS: $(basename "$fuzzer"): $(ls "$corpus" | wc -l) corpus inputs replayed, then ${seconds} s of new inputs" \
  "($(ls "$scratch" | grep -vc '^log$') new interesting inputs)"
