#!/usr/bin/env python3
"""The footprint table: RSS of an idle program after it frees what it
allocated, under every allocator, from one run (bench/footprint.cc).

    python3 bench/footprint.py [--build-dir build] [--allocators LIST] [--quick] [--report PATH]

Columns: RSS at the start, with 1 GiB live, right after the frees, after 1 s
and 5 s idle, and after malloc_trim(0) (which only glibc and spanalloc
define; under the other preloaded allocators it is glibc's, acting on an
empty glibc heap). Markdown on stdout (or --report, which is what
BENCHMARKS.md's "Footprint" section holds).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from allocators import ALL_ALLOCATORS, lib_path  # noqa: E402
from runs import run_one  # noqa: E402


def mib(kb):
    return f"{kb / 1024:.0f}" if kb >= 0 else "-"


def run_all(allocs, build, quick=False, log=None):
    """[(allocator, run_one result)] for bench_footprint under each allocator."""
    binary = os.path.join(build, "bin", "bench_footprint")
    results = []
    for name in allocs:
        lib = lib_path(name, build)
        if lib and not os.path.exists(lib):
            results.append((name, {"error": f"missing {lib}"}))
            continue
        results.append((name, run_one([binary] + (["--quick"] if quick else []), lib, timeout=120)))
        if log:
            log(f"footprint: {name} done")
    return results


def section(results, quick=False):
    """The report's "Footprint" section (markdown lines)."""
    idle = "1 s" if quick else "5 s"
    return ["## Footprint: what an idle program gives back", "",
            f"`bench_footprint{' --quick' if quick else ''}` (bench/footprint.cc), one run per allocator: "
            f"{'100 MiB' if quick else '1 GiB'} of mixed objects (70 % 16 B-32 KiB, 30 % 64 KiB-4 MiB, every page "
            f"written) freed in random order, then {idle} idle, then `malloc_trim(0)` (defined by glibc and spanalloc "
            "only; under the other preloaded allocators it is glibc's, acting on an empty glibc heap). RSS in MiB. "
            "spanalloc's background thread returns the memory after the release delay (1 s), its transfer slots "
            "a delay later; jemalloc's decay (10 s by default) has not run yet at 5 s.", "",
            table(results, quick), ""]


def table(results, quick=False):
    cols = [("rss_start_kb", "start"), ("rss_full_kb", f"{'100 MiB' if quick else '1 GiB'} live"),
            ("rss_after_free_kb", "right after the frees")]
    cols += [("rss_idle_kb", "after 1 s idle")] if quick else [("rss_idle1_kb", "after 1 s idle"),
                                                               ("rss_idle_kb", "after 5 s idle")]
    cols += [("rss_trim_kb", "after malloc_trim(0)")]
    lines = ["| allocator | " + " | ".join(h for _, h in cols) + " |", "| --- |" + " ---: |" * len(cols)]
    for name, r in results:
        if "error" in r:
            lines.append(f"| {name} | {r['error']} |" + " |" * (len(cols) - 1))
            continue
        e = r["result"]["extra"]
        lines.append(f"| {name} | " + " | ".join(mib(e[k]) for k, _ in cols) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build"))
    ap.add_argument("--allocators", default=",".join(ALL_ALLOCATORS))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--report", default="")
    args = ap.parse_args()
    results = run_all(args.allocators.split(","), args.build_dir, args.quick,
                      lambda m: print("footprint.py: " + m, file=sys.stderr))
    text = "\n".join(section(results, args.quick))
    if args.report:
        with open(args.report, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
