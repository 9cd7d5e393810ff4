#!/usr/bin/env python3
"""What sampling costs on the benchmark suite: every workload of bench/runs.py
under spanalloc, with sampling off and on, interleaved run by run.

  python3 bench/sampling_cost.py [--build-dir build] [--reps 5] [--scale 1]
                                 [--env SPANALLOC_PROFILE_RATE=524288 ...]

"On" is a heap profile at the default rate (SPANALLOC_PROFILE=<tmp>/p.%p.heap,
written at each run's exit) unless --env gives other SPANALLOC_* settings
(e.g. --env SPANALLOC_GUARD_SAMPLE=1000 for guarded sampling alone). Prints
one line per workload (median of the workload's own time, as BENCHMARKS.md
reports it, and of peak RSS, on/off) and the geometric means. Run on a quiet
machine: the figures are ratios of medians.
"""
import argparse
import math
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from allocators import ROOT, lib_path  # noqa: E402
from runs import WORKLOADS, run_one  # noqa: E402


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--only", default="", help="comma-separated workload names")
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE for the 'on' runs (repeatable)")
    args = ap.parse_args()
    build = os.path.abspath(args.build_dir)
    lib = lib_path("spanalloc", build)
    tmp = tempfile.mkdtemp(prefix="sampling-cost-")
    on_env = dict(kv.split("=", 1) for kv in args.env) or {"SPANALLOC_PROFILE": os.path.join(tmp, "p.%p.heap")}
    only = {x for x in args.only.split(",") if x}
    configs = [(w, 1) for w, *_ in WORKLOADS if not only or w in only]
    configs += [(w, 2) for w, _, threaded, _ in WORKLOADS if threaded and (not only or w in only)]
    runs = {}
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("SPANALLOC_")}
    for rep in range(args.reps):
        for w, t in configs:
            argv = [os.path.join(build, "bin", f"bench_{w}"), "--threads", str(t), "--scale", str(args.scale)]
            for mode in (("off", "on") if rep % 2 == 0 else ("on", "off")):
                os.environ.clear()
                os.environ.update(base_env)
                if mode == "on":
                    os.environ.update(on_env)
                r = run_one(argv, lib, 300)
                if "error" in r:
                    print(f"{w} t={t} {mode}: {r['error']} {r.get('stderr', '')}", file=sys.stderr)
                    continue
                runs.setdefault((w, t, mode), []).append(r)
        for name in os.listdir(tmp):
            os.unlink(os.path.join(tmp, name))
        print(f"repetition {rep + 1}/{args.reps} done", file=sys.stderr, flush=True)
    os.rmdir(tmp)
    print(f"sampling on: {' '.join(f'{k}={v}' for k, v in on_env.items())}; {args.reps} reps, scale {args.scale}")
    print(f"{'workload':<14} {'off s':>8} {'on s':>8} {'time':>7} {'off MiB':>8} {'on MiB':>8} {'RSS':>7}")
    t_ratios, m_ratios = [], []
    for w, t in configs:
        off, on = runs.get((w, t, "off"), []), runs.get((w, t, "on"), [])
        if not off or not on:
            print(f"{w + ' x' + str(t):<14} (no result)")
            continue
        ts = [statistics.median(x["result"]["seconds"] for x in rs) for rs in (off, on)]
        ms = [statistics.median(x["rss_kb"] for x in rs) / 1024 for rs in (off, on)]
        t_ratios.append(ts[1] / ts[0])
        m_ratios.append(ms[1] / ms[0])
        print(f"{w + ' x' + str(t):<14} {ts[0]:8.3f} {ts[1]:8.3f} {ts[1] / ts[0]:7.3f} {ms[0]:8.1f} {ms[1]:8.1f} "
              f"{ms[1] / ms[0]:7.3f}")
    print(f"{'geomean':<14} {'':>8} {'':>8} {geomean(t_ratios):7.3f} {'':>8} {'':>8} {geomean(m_ratios):7.3f}")


if __name__ == "__main__":
    main()
