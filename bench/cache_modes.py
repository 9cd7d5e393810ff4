#!/usr/bin/env python3
"""Per-CPU against thread caches on the many-threads workload (livesets),
with the peers beside them, interleaved repetition by repetition.

    python3 bench/cache_modes.py [--threads 8,16,64] [--reps 5] [--scale 1]
        [--build-dir build] [--allocators glibc,jemalloc,tcmalloc,mimalloc]

Runs bench_livesets at each thread count under every peer and under
spanalloc with SPANALLOC_CACHE=thread and =cpu, in a rotated order on each
repetition. Reports per thread count the median time and median peak RSS
(VmHWM, from the workload's own JSON) of each, and both as ratios to
glibc's. Markdown on stdout.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from allocators import lib_path  # noqa: E402


def run_once(binary, threads, scale, preload, extra_env):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if preload:
        env["LD_PRELOAD"] = preload
    env.update(extra_env)
    out = subprocess.run([binary, "--threads", str(threads), "--scale", str(scale)], env=env,
                         capture_output=True, text=True, check=True).stdout
    rec = json.loads(out.strip().splitlines()[-1])
    return rec["seconds"], rec["peak_rss_kb"] / 1024.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="8,16,64")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--allocators", default="glibc,jemalloc,tcmalloc,mimalloc")
    a = ap.parse_args()
    binary = os.path.join(a.build_dir, "bin", "bench_livesets")
    variants = []
    for name in a.allocators.split(","):
        variants.append((name, lib_path(name, a.build_dir), {}))
    spanalloc = lib_path("spanalloc", a.build_dir)
    variants.append(("spanalloc thread", spanalloc, {"SPANALLOC_CACHE": "thread"}))
    variants.append(("spanalloc cpu", spanalloc, {"SPANALLOC_CACHE": "cpu"}))
    threads = [int(t) for t in a.threads.split(",")]
    res = {(v[0], t): [] for v in variants for t in threads}
    for rep in range(a.reps):
        order = variants[rep % len(variants):] + variants[:rep % len(variants)]
        for t in threads:
            for name, lib, env in order:
                res[(name, t)].append(run_once(binary, t, a.scale, lib, env))
        print(f"rep {rep + 1}/{a.reps} done", file=sys.stderr)
    print(f"livesets, {a.reps} interleaved reps, scale {a.scale}: median seconds / median peak RSS MiB "
          f"(ratio to glibc)\n")
    print("| allocator | " + " | ".join(f"{t} thr time | {t} thr RSS" for t in threads) + " |")
    print("| --- |" + " ---: | ---: |" * len(threads))
    med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)) for k, v in res.items()}
    for name, _, _ in variants:
        cells = []
        for t in threads:
            s, r = med[(name, t)]
            gs, gr = med.get(("glibc", t), (s, r))
            cells.append(f"{s:.3f} s (x{s / gs:.2f})")
            cells.append(f"{r:.0f} (x{r / gr:.2f})")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
