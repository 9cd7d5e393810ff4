#!/usr/bin/env python3
"""spanalloc benchmark driver: runs the workloads under every allocator and
writes BENCHMARKS.md (called by bench/run.sh, which installs the peers and
builds first; this script only runs what is already built).

Each workload binary prints one JSON line ({"bench":"spanalloc",...}); the
driver runs it with LD_PRELOAD set to the allocator (glibc: none), takes the
child's peak RSS, interleaves the allocators within each repetition, and
reports medians. Debian's python3 only, no pip packages.

The jobs live in modules beside this file: allocators.py (the one table of
allocators every script reads), runs.py (running the workloads), report.py
(the markdown report), charts.py (gnuplot charts). This file parses the
command line, plans the runs and calls them.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import types

import footprint
import runs
from allocators import ALL_ALLOCATORS, ROOT
from charts import make_chart, make_scaling_chart
from report import render
from runs import MANY, SCALING, WL, WORKLOADS, Results, check_allocator, log, machine_info, run_plan

RunSummary = types.SimpleNamespace


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--quick", action="store_true", help="smoke run: 1/10 of the work, 3 repetitions, no scaling")
    ap.add_argument("--only", default="", help="comma-separated workload names or numbers (1-10; 11 = scaling)")
    ap.add_argument("--threads", default="1,2,4,8,16", help="thread counts of the scaling run (workload 11)")
    ap.add_argument("--scaling-only", action="store_true", help="run only the scaling run (workloads 3, 4, 7)")
    ap.add_argument("--no-scaling", action="store_true")
    ap.add_argument("--many-threads", default="1,2,8,16,64",
                    help="thread counts of the many-threads table (workload 12, livesets)")
    ap.add_argument("--no-many", action="store_true", help="skip the many-threads table")
    ap.add_argument("--no-fastpath", action="store_true")
    ap.add_argument("--no-footprint", action="store_true", help="skip the footprint table (bench/footprint.py)")
    ap.add_argument("--no-chart", action="store_true")
    ap.add_argument("--allocators", default=",".join(ALL_ALLOCATORS))
    ap.add_argument("--reps", type=int, default=0, help="repetitions (default 7, quick 3)")
    ap.add_argument("--scale", type=float, default=0, help="work multiplier (default 1, quick 0.1)")
    ap.add_argument("--timeout", type=float, default=0, help="seconds per run (default 120, quick 30)")
    ap.add_argument("--report", default="", help="markdown output (default BENCHMARKS.md; quick or --only: "
                    "BUILD/BENCHMARKS-quick.md or BUILD/BENCHMARKS-partial.md)")
    ap.add_argument("--chart", default="", help="PNG output (default bench/benchmarks.png; quick: BUILD/benchmarks-quick.png)")
    ap.add_argument("--rss-limit-mb", type=int, default=0,
                    help="kill a run whose RSS passes this (default: 8 GiB or half the memory, whichever is less)")
    ap.add_argument("--probe", default="", help=argparse.SUPPRESS)
    ap.add_argument("--from-raw", default="", help="rewrite the report from a raw results file, running nothing "
                    "(e.g. after editing bench/NOTES.md)")
    ap.add_argument("--raw", default="", help="raw per-run JSON (default BUILD/bench-raw.json)")
    args = ap.parse_args()

    build = os.path.abspath(args.build_dir)
    mem_kb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 1024
    runs.RSS_LIMIT_KB = (args.rss_limit_mb << 10) if args.rss_limit_mb else min(8 << 20, mem_kb // 2)
    if args.probe:  # used by fastpath.sh: is this allocator safe to run?
        s = check_allocator(args.probe, build, [os.path.join(build, "bin", "bench_churn"), "--scale", "0.001"])
        print(s or "ok")
        sys.exit(0 if not s else 1)
    bindir = os.path.join(build, "bin")
    reps = args.reps or (3 if args.quick else 7)
    scale = args.scale or (0.1 if args.quick else 1.0)
    timeout = args.timeout or (30 if args.quick else 120)
    scal_threads = [int(x) for x in args.threads.split(",") if x.strip()]
    allocs = [a.strip() for a in args.allocators.split(",") if a.strip()]
    for a in allocs:
        if a not in ALL_ALLOCATORS:
            ap.error(f"unknown allocator {a} (known: {', '.join(ALL_ALLOCATORS)})")
    only = set()
    for x in args.only.split(","):
        x = x.strip()
        if not x:
            continue
        if x.isdigit():
            n = int(x)
            if n == 11:
                only.add("scaling")
            elif n == 12:
                only.add(MANY)
            elif 1 <= n <= 10:
                only.add(WORKLOADS[n - 1][0])
            else:
                ap.error(f"no workload {x}")
        elif x in WL or x in ("scaling", MANY):
            only.add(x)
        else:
            ap.error(f"unknown workload {x} (known: {', '.join(WL)}, scaling, {MANY})")
    selected = [w[0] for w in WORKLOADS if not only or w[0] in only]
    if args.scaling_only:
        selected = []
        scaling_wl = [w for w in SCALING if w in only] or SCALING[:]
    elif "scaling" in only or (not only and not args.quick and not args.no_scaling):
        scaling_wl = SCALING[:]
    else:
        scaling_wl = []
    many_threads = [int(x) for x in args.many_threads.split(",") if x.strip()]
    if args.scaling_only or args.no_many or (only and MANY not in only):
        many_threads = []

    if args.scaling_only:
        default_report = os.path.join(ROOT, "bench", f"scaling-{os.cpu_count()}cpu.md")
        default_chart = ""
    elif args.quick or only:
        # Smoke and partial runs never overwrite the committed report.
        kind = "quick" if args.quick else "partial"
        default_report = os.path.join(build, f"BENCHMARKS-{kind}.md")
        default_chart = os.path.join(build, f"benchmarks-{kind}.png")
    else:
        default_report = os.path.join(ROOT, "BENCHMARKS.md")
        default_chart = os.path.join(ROOT, "bench", "benchmarks.png")
    report = os.path.abspath(args.report or default_report)
    chart = os.path.abspath(args.chart) if args.chart else default_chart
    raw_path = os.path.abspath(args.raw or os.path.join(build, "bench-raw.json"))

    saved = None
    if args.from_raw:
        saved = json.load(open(args.from_raw))
        p = saved.get("plan", {})
        selected = p.get("selected", selected)
        scaling_wl = p.get("scaling_wl", scaling_wl)
        scal_threads = p.get("scal_threads", scal_threads)
        many_threads = p.get("many_threads", [])
        allocs = p.get("allocs", list(saved["status"]))
        reps = saved.get("reps", reps)
        scale = saved.get("scale", scale)
        for k in ("quick", "scaling_only", "only", "threads"):
            if k in p:
                setattr(args, k, p[k])
        if (args.quick or args.only) and not args.scaling_only and not args.report:
            kind = "quick" if args.quick else "partial"
            report = os.path.join(build, f"BENCHMARKS-{kind}.md")
            chart = "" if args.no_chart else (os.path.abspath(args.chart) if args.chart else
                                               os.path.join(build, f"benchmarks-{kind}.png"))
    for w in set(selected) | set(scaling_wl) | ({MANY} if many_threads else set()) if not saved else []:
        if not os.access(os.path.join(bindir, f"bench_{w}"), os.X_OK):
            sys.exit(f"bench.py: {bindir}/bench_{w} is not built (run bench/run.sh without --no-build)")

    if saved:
        info = saved["info"]
        status = saved["status"]
    else:
        info = machine_info(build)
        probe = [os.path.join(bindir, "bench_churn"), "--scale", "0.001"]
        status = {a: check_allocator(a, build, probe) for a in allocs}
    for a, s in status.items():
        if s:
            log(f"bench: {a}: {s}")

    # Configurations: (workload, threads, repetitions).
    configs1 = [(w, 1) for w in selected]
    configs2 = [(w, 2) for w in selected if WL[w][2]]
    plan = [(w, t, reps) for w, t in configs1 + configs2]
    scal_reps = max(1, min(reps, 5) if not args.quick else 1)
    for t in many_threads:
        plan.append((MANY, t, reps))
    for w in scaling_wl:
        for t in scal_threads:
            if (w, t) not in configs1 + configs2:
                plan.append((w, t, scal_reps))
    total = sum(r for _, _, r in plan) * sum(1 for a in allocs if not status[a])
    log(f"bench: {len(plan)} configurations, {reps} repetitions, scale {scale}, {total} runs")

    res = Results()
    raw = []
    usable = [a for a in allocs if not status[a]]
    for x in (saved["runs"] if saved else []):
        res.add((x["workload"], x["threads"], x["allocator"]), x)
        raw.append(x)
    if saved:
        run_seconds = saved.get("plan", {}).get("run_seconds", sum(x["wall"] for x in raw))
    else:
        run_seconds = run_plan(plan, usable, build, bindir, scale, timeout, reps, res, raw, total)

    fast = saved.get("fastpath", []) if saved else []
    if not saved and not args.no_fastpath and not args.scaling_only and not only:
        log("bench: fast-path count (callgrind)")
        r = subprocess.run(["bash", os.path.join(ROOT, "bench", "fastpath.sh"), "--build-dir", build,
                            "--allocators", ",".join(allocs)], capture_output=True, text=True)
        for l in r.stdout.splitlines():
            if l.startswith('{"fastpath"'):
                fast.append(json.loads(l))
        if r.returncode != 0:
            log("bench: fastpath.sh failed: " + r.stderr.strip()[-300:])
            fast.append({"fastpath": "(all)", "status": "fastpath.sh failed: " + r.stderr.strip()[-200:]})

    foot = saved.get("footprint", []) if saved else []
    if not saved and not args.no_footprint and not args.scaling_only and not only:
        log("bench: footprint (bench/footprint.py)")
        foot = footprint.run_all(usable, build, args.quick, log)

    if not saved:
        info["load_end"] = os.getloadavg()
        plan_info = {"selected": selected, "scaling_wl": scaling_wl, "scal_threads": scal_threads, "many_threads": many_threads,
                     "allocs": allocs, "run_seconds": run_seconds, "quick": args.quick,
                     "scaling_only": args.scaling_only, "only": args.only, "threads": args.threads}
        os.makedirs(os.path.dirname(raw_path), exist_ok=True)
        with open(raw_path, "w") as f:
            json.dump({"info": info, "status": status, "scale": scale, "reps": reps, "runs": raw,
                       "fastpath": fast, "footprint": foot, "plan": plan_info}, f)

    chart_err = None
    if chart and not args.no_chart and (configs1 or configs2):
        with tempfile.TemporaryDirectory() as td:
            chart_err = make_chart(res, configs1, configs2, allocs, status, chart, td)
        if chart_err:
            log(f"bench: chart: {chart_err}")
    scal_chart, scal_err = "", None
    if scaling_wl and not args.no_chart:
        if chart:
            scal_chart = os.path.splitext(chart)[0] + "-scaling.png"
        else:
            scal_chart = os.path.splitext(report)[0] + ".png"
        with tempfile.TemporaryDirectory() as td:
            scal_err = make_scaling_chart(res, scaling_wl, scal_threads, allocs, status, scal_chart, td)
        if scal_err:
            log(f"bench: scaling chart: {scal_err}")

    summary = RunSummary(args=args, info=info, reps=reps, scale=scale, run_seconds=run_seconds, allocs=allocs,
                         status=status, build=build, res=res, configs1=configs1, configs2=configs2, chart=chart,
                         chart_err=chart_err, fast=fast, footprint=foot, scaling_wl=scaling_wl, scal_threads=scal_threads, many_threads=many_threads,
                         scal_reps=scal_reps, scal_chart=scal_chart, scal_err=scal_err, report=report,
                         selected=selected)
    text = render(summary)
    os.makedirs(os.path.dirname(report), exist_ok=True)
    with open(report, "w") as f:
        f.write(text)
    log(f"bench: wrote {report}" + (f" and {chart}" if chart and not chart_err and not args.no_chart and (configs1 or configs2) else ""))
    log(f"bench: raw results in {raw_path}")
    failed = sum(1 for x in raw if "error" in x)
    if failed:
        log(f"bench: {failed} runs failed (see the report)")


if __name__ == "__main__":
    main()
