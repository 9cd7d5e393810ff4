#!/usr/bin/env python3
"""Compares spanalloc with itself under two settings (environment variables),
on the benchmark suite's workloads, interleaved repetition by repetition.

    python3 bench/variants.py --a SPANALLOC_HUGEPAGES=0 --b SPANALLOC_HUGEPAGES=1 [--reps 5]
        [--build-dir build] [--only churn,app] [--quick] [--title T] [--report PATH]
    python3 bench/variants.py --lib-a OLD/libspanalloc.so --lib-b NEW/libspanalloc.so ...

Two builds (a commit against its parent) compare with --lib-a/--lib-b: the
workloads' binaries come from --build-dir, the library each setting preloads
from these paths (default: the build's own library for both).

Each repetition runs every workload (at 1 thread, and at 2 for the
multi-threaded ones, as the suite's geometric means do) under A then B, or B
then A on odd repetitions. Reports per workload: median time (the workload's
own), min-max spread, peak RSS (VmHWM) and minor page faults (wait4) of each
setting, the time ratio B/A; then the geometric mean of the ratios and the
run-to-run spread (geometric mean over workloads of max/min time within one
setting), so a difference can be read against the noise. Markdown on stdout
(or --report).
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from allocators import lib_path  # noqa: E402
from runs import WORKLOADS  # noqa: E402


def run(binary, args, env_extra, lib):
    env = dict(os.environ)
    env["LD_PRELOAD"] = lib
    for kv in env_extra:
        k, _, v = kv.partition("=")
        env[k] = v
    p = subprocess.Popen([binary] + args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    out = p.stdout.read().decode(errors="replace")
    _, status, ru = os.wait4(p.pid, 0)
    line = next((l for l in out.splitlines() if l.startswith('{"bench":"spanalloc"')), None)
    if os.waitstatus_to_exitcode(status) != 0 or line is None:
        return None
    r = json.loads(line)
    return {"seconds": r["seconds"], "rss_kb": r.get("peak_rss_kb", ru.ru_maxrss), "minflt": ru.ru_minflt}


def geomean(xs):
    xs = [x for x in xs if x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--a", action="append", default=[], help="NAME=VALUE of setting A (repeatable)")
    ap.add_argument("--b", action="append", default=[], help="NAME=VALUE of setting B (repeatable)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--build-dir", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build"))
    ap.add_argument("--lib-a", default="", help="library preloaded for A (default: the build's)")
    ap.add_argument("--lib-b", default="", help="library preloaded for B (default: the build's)")
    ap.add_argument("--only", default="")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--title", default="")
    ap.add_argument("--report", default="")
    args = ap.parse_args()
    lib = lib_path("spanalloc", args.build_dir)
    libs = {"a": args.lib_a or lib, "b": args.lib_b or lib}
    for v, path in libs.items():
        if not os.path.exists(path):
            sys.exit(f"variants.py: library for {v.upper()} not found: {path}")
    only = set(args.only.split(",")) if args.only else None
    configs = []
    for name, _, multi, _ in WORKLOADS:
        if only and name not in only:
            continue
        for threads in ([1, 2] if multi else [1]):
            configs.append((name, threads))
    res = {(c, v): [] for c in configs for v in "ab"}
    t0 = time.monotonic()
    for rep in range(args.reps):
        for (name, threads) in configs:
            binary = os.path.join(args.build_dir, "bin", "bench_" + name)
            wargs = ["--threads", str(threads)] + (["--quick"] if args.quick else [])
            order = "ab" if rep % 2 == 0 else "ba"
            for v in order:
                r = run(binary, wargs, args.a if v == "a" else args.b, libs[v])
                if r:
                    res[((name, threads), v)].append(r)
        print(f"variants.py: repetition {rep + 1}/{args.reps} done ({time.monotonic() - t0:.0f} s)", file=sys.stderr)
    a_s, b_s = " ".join(args.a) or "(defaults)", " ".join(args.b) or "(defaults)"
    if args.lib_a or args.lib_b:
        a_s, b_s = f"{a_s}, {libs['a']}", f"{b_s}, {libs['b']}"
    lines = []
    if args.title:
        lines += [f"### {args.title}", ""]
    lines += [f"A = `{a_s}`, B = `{b_s}`; {args.reps} interleaved repetitions, medians; "
              f"spread = min-max of the repetitions.", ""]
    lines += ["| workload | threads | time A (s) | spread A | time B (s) | spread B | B/A | peak RSS A (MiB) | "
              "peak RSS B (MiB) | page faults A | page faults B |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    ratios, spreads, rss_ratios, flt_ratios = [], [], [], []
    for c in configs:
        ra, rb = res[(c, "a")], res[(c, "b")]
        if not ra or not rb:
            lines.append(f"| {c[0]} | {c[1]} | failed | | | | | | | | |")
            continue
        ta = [r["seconds"] for r in ra]
        tb = [r["seconds"] for r in rb]
        ma, mb = statistics.median(ta), statistics.median(tb)
        rssa = statistics.median(r["rss_kb"] for r in ra) / 1024
        rssb = statistics.median(r["rss_kb"] for r in rb) / 1024
        fa = statistics.median(r["minflt"] for r in ra)
        fb = statistics.median(r["minflt"] for r in rb)
        ratios.append(mb / ma)
        spreads += [max(ta) / min(ta), max(tb) / min(tb)]
        rss_ratios.append(rssb / rssa)
        flt_ratios.append(fb / fa if fa else 1.0)
        lines.append(f"| {c[0]} | {c[1]} | {ma:.3f} | {min(ta):.3f}-{max(ta):.3f} | {mb:.3f} | "
                     f"{min(tb):.3f}-{max(tb):.3f} | {mb / ma:.3f} | {rssa:.1f} | {rssb:.1f} | {fa:.0f} | {fb:.0f} |")
    lines += ["", f"Geometric mean of B/A: time **{geomean(ratios):.3f}**, peak RSS {geomean(rss_ratios):.3f}, "
              f"page faults {geomean(flt_ratios):.3f}. Run-to-run spread (geometric mean of max/min time "
              f"within one setting): {geomean(spreads):.3f}.", ""]
    text = "\n".join(lines)
    if args.report:
        with open(args.report, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
