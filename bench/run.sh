#!/usr/bin/env bash
# spanalloc benchmark suite: the one command that makes BENCHMARKS.md.
#
#   bash bench/run.sh                  full run (~10-15 min on 2 cores): BENCHMARKS.md + bench/benchmarks.png
#   bash bench/run.sh --quick          smoke run (< 3 min): build/BENCHMARKS-quick.md
#   bash bench/run.sh --only churn,app one or more workloads (names or numbers 1-10; 11 or scaling)
#   bash bench/run.sh --scaling-only --threads 1,2,4,8,16,32,64
#                                      workload 11 only: bench/scaling-<N>cpu.md
#   bash bench/fastpath.sh             fast-path instruction counts only
#
# Steps: scripts/deps.sh (installs the peers: libjemalloc2, libtcmalloc-minimal4,
# libmimalloc2.0, plus gnuplot and valgrind), a release build of the project
# into build/, then bench/bench.py runs every workload under glibc, jemalloc,
# tcmalloc, mimalloc and spanalloc (LD_PRELOAD) and writes the report.
#
# Own flags: --no-deps (skip scripts/deps.sh), --no-build (use the binaries
# already in the build folder), --build-dir DIR (default build/). Everything
# else goes to bench/bench.py (see `python3 bench/bench.py --help`): --reps N,
# --allocators LIST, --threads LIST, --no-scaling, --no-fastpath, --no-chart,
# --report PATH, --chart PATH, --timeout S, --scale F.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$root/build
deps=1
do_build=1
pass=()
while (($#)); do
  case $1 in
    --no-deps) deps=0; shift ;;
    --no-build) do_build=0; deps=0; shift ;;
    --build-dir) build=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) pass+=("$1"); shift ;;
  esac
done
[[ $build = /* ]] || build=$PWD/$build
if ((deps)); then
  bash "$root/scripts/deps.sh"
fi
if ((do_build)); then
  echo "run.sh: release build into $build" >&2
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSPANALLOC_BUILD_BENCH=ON >/dev/null
  # bench_all: the workloads and libspanalloc.so only.
  # -k 0: a broken allocator must not keep the workloads from building; the
  # report then says that spanalloc failed to build.
  if ! cmake --build "$build" --target bench_all -- -k 0 >"$build/bench-build.log" 2>&1; then
    echo "run.sh: the build had errors (see $build/bench-build.log); running what was built" >&2
    tail -n 5 "$build/bench-build.log" >&2
  fi
fi
py=/usr/bin/python3; [[ -x $py ]] || py=python3
exec "$py" "$root/bench/bench.py" --build-dir "$build" ${pass[@]+"${pass[@]}"}
