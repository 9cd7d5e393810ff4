#!/usr/bin/env bash
# Runs every test: the release build (allocator, tools, bench driver smoke test),
# the real programs and test suites under spanalloc (label real: CPython's
# regression tests, redis, git, sqlite3, gcc; about 10 min on 2 cores), then
# the allocator's internal tests under ASan, UBSan (debug build, with the
# allocator's debug checks) and TSan, and the fuzzers (clang's libFuzzer with
# ASan, a bounded time each; tests/fuzz/README.md).
# Usage: bash scripts/test.sh [--no-sanitizers] [--no-real]
#   --no-sanitizers  release build only: no ASan/UBSan/TSan builds, no fuzzers
#   --no-real        leave out the real programs and suites (label real)
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh || exit 1
jobs=$(nproc)
sanitizers=(address undefined thread)
fuzz=1 real=1
for arg in "$@"; do
  case $arg in
    --no-sanitizers) sanitizers=() fuzz=0 ;;
    --no-real) real=0 ;;
    *) echo "test.sh: unknown option $arg (--no-sanitizers, --no-real)" >&2; exit 2 ;;
  esac
done

total_pass=0; total_fail=0; failed_suites=()
run_ctest() {  # run_ctest BUILD_DIR LABEL [ctest args...]
  local dir=$1 label=$2; shift 2
  local log; log=$(mktemp)
  ctest --test-dir "$dir" --output-on-failure -j "$jobs" "$@" 2>&1 | tee "$log"
  local line; line=$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+" "$log" | tail -1)
  if [[ -z "$line" ]]; then
    echo "test.sh: $label: ctest ran no test" >&2; total_fail=$((total_fail + 1)); failed_suites+=("$label")
  else
    local failed all
    failed=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
    all=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/' <<<"$line")
    total_pass=$((total_pass + all - failed)); total_fail=$((total_fail + failed))
    ((failed)) && failed_suites+=("$label")
  fi
  rm -f "$log"
}

build() {  # build DIR cmake-args...
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja "$@" >/dev/null && cmake --build "$dir" -j "$jobs"
}

if build build -DCMAKE_BUILD_TYPE=Release; then
  run_ctest build release -LE real
  ((real)) && run_ctest build real -L real
else
  echo "test.sh: release build failed" >&2; total_fail=$((total_fail + 1)); failed_suites+=("release-build")
fi

for san in "${sanitizers[@]}"; do
  # UBSan runs on a Debug build, so the allocator's debug checks
  # (SPANALLOC_DCHECK: locks held, span states) run too.
  type=RelWithDebInfo; [[ $san == undefined ]] && type=Debug
  if build "build-$san" -DCMAKE_BUILD_TYPE=$type -DSPANALLOC_SANITIZE="$san" \
       -DSPANALLOC_BUILD_TOOLS=OFF -DSPANALLOC_BUILD_BENCH=OFF; then
    run_ctest "build-$san" "$san" -L internal
  else
    echo "test.sh: $san build failed" >&2; total_fail=$((total_fail + 1)); failed_suites+=("$san-build")
  fi
done

if ((fuzz)); then
  # libFuzzer is clang's: the fuzzers get a build of their own (tests/fuzz).
  if CC=clang CXX=clang++ build build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPANALLOC_FUZZ=ON \
       -DSPANALLOC_SANITIZE=address -DSPANALLOC_BUILD_TOOLS=OFF -DSPANALLOC_BUILD_BENCH=OFF; then
    run_ctest build-fuzz fuzz -L fuzz
  else
    echo "test.sh: fuzz build failed" >&2; total_fail=$((total_fail + 1)); failed_suites+=("fuzz-build")
  fi
fi

echo
((${#failed_suites[@]})) && echo "failing: ${failed_suites[*]}"
echo "all: $total_pass passed, $total_fail failed"
[[ $total_fail -eq 0 ]]
