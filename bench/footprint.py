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


def table(results):
    lines = ["| allocator | start | 1 GiB live | right after the frees | after 1 s idle | after 5 s idle | "
             "after malloc_trim(0) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in results:
        if "error" in r:
            lines.append(f"| {name} | {r['error']} | | | | | |")
            continue
        e = r["result"]["extra"]
        lines.append(f"| {name} | {mib(e['rss_start_kb'])} | {mib(e['rss_full_kb'])} | {mib(e['rss_after_free_kb'])} | "
                     f"{mib(e['rss_idle1_kb'])} | {mib(e['rss_idle_kb'])} | {mib(e['rss_trim_kb'])} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build"))
    ap.add_argument("--allocators", default=",".join(ALL_ALLOCATORS))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--report", default="")
    args = ap.parse_args()
    binary = os.path.join(args.build_dir, "bin", "bench_footprint")
    results = []
    for name in args.allocators.split(","):
        lib = lib_path(name, args.build_dir)
        if lib and not os.path.exists(lib):
            results.append((name, {"error": f"missing {lib}"}))
            continue
        r = run_one([binary] + (["--quick"] if args.quick else []), lib, timeout=120)
        results.append((name, r))
        print(f"footprint.py: {name} done", file=sys.stderr)
    text = ("RSS in MiB of `bench_footprint`: 1 GiB of mixed objects (70 % 16 B-32 KiB, 30 % 64 KiB-4 MiB, "
            "every page written) freed in random order, then 5 s idle, then `malloc_trim(0)`; one run.\n\n" +
            table(results) + "\n")
    if args.report:
        with open(args.report, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
