#!/usr/bin/env python3
"""CTest bench_driver_quick: runs `bench/run.sh --no-build --quick` for two
workloads (churn; server at 1 and 2 threads), one repetition, and checks the
format of what comes out: each workload's result line, the raw results and
the generated report. It checks formats, not speed, and passes whatever
state the allocators are in, as long as the driver reports it."""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

FAILS = []


def check(cond, msg):
    if not cond:
        FAILS.append(msg)
        print("FAIL:", msg, file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--build-dir", required=True)
    a = ap.parse_args()
    bindir = os.path.join(a.build_dir, "bin")
    workloads = ["churn", "server"]

    # 1. The result line of each workload, run directly (glibc).
    for w in workloads:
        exe = os.path.join(bindir, f"bench_{w}")
        r = subprocess.run([exe, "--quick", "--threads", "2"], capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, f"{w}: exit {r.returncode}: {r.stderr[-300:]}")
        lines = [l for l in r.stdout.splitlines() if l.startswith('{"bench":"spanalloc"')]
        check(len(lines) == 1, f"{w}: expected one result line, got {r.stdout!r}")
        if lines:
            d = json.loads(lines[0])
            for k, t in (("workload", str), ("threads", int), ("seconds", float), ("ops", int),
                         ("unit", str), ("ops_per_sec", float), ("checksum", int), ("peak_rss_kb", int),
                         ("extra", dict)):
                check(isinstance(d.get(k), t) or (t is float and isinstance(d.get(k), int)),
                      f"{w}: field {k} missing or not {t.__name__}: {d.get(k)!r}")
            check(d.get("workload") == w, f"{w}: workload field is {d.get('workload')!r}")
            check(d.get("seconds", 0) > 0 and d.get("ops", 0) > 0 and d.get("peak_rss_kb", 0) > 0,
                  f"{w}: seconds, ops and peak_rss_kb must be positive: {d}")

    # 2. The driver in quick mode, without building.
    with tempfile.TemporaryDirectory() as td:
        report, raw = os.path.join(td, "report.md"), os.path.join(td, "raw.json")
        cmd = ["bash", os.path.join(a.source_dir, "bench", "run.sh"), "--no-build", "--build-dir", a.build_dir,
               "--quick", "--only", ",".join(workloads), "--reps", "1", "--no-chart",
               "--report", report, "--raw", raw]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=100)
        sys.stderr.write(r.stderr[-2000:])
        check(r.returncode == 0, f"driver exit {r.returncode}")
        check(os.path.exists(raw), "no raw results")
        check(os.path.exists(report), "no report")
        if FAILS:
            return 1
        data = json.load(open(raw))
        status = data["status"]
        check(status.get("glibc") is None, "glibc must always be usable")
        usable = [al for al, s in status.items() if not s]
        for w, t in (("churn", 1), ("server", 1), ("server", 2)):
            for al in usable:
                runs = [x for x in data["runs"] if x["workload"] == w and x["threads"] == t and x["allocator"] == al]
                check(len(runs) == 1, f"{w} threads={t} {al}: {len(runs)} runs, expected 1")
                for x in runs:
                    check("rss_kb" in x and "wall" in x, f"{w} {al}: run without rss_kb/wall: {x}")
                    if al == "glibc":
                        check("result" in x and "error" not in x, f"{w} threads={t} glibc failed: {x}")
        text = open(report).read()
        for needle in ("# spanalloc benchmarks", "## Machine", "## Summary: geometric means",
                       "### 1 thread", "### 2 threads", "### 1. churn, 1 thread", "### 4. server, 1 thread",
                       "### 4. server, 2 threads", "| allocator | time (s) | × glibc | × best peer | peak RSS (MiB) | × glibc | × best peer | throughput | time min-max (s) |"):
            check(needle in text, f"report lacks {needle!r}")
        num = r"[0-9]+(\.[0-9]+)?"
        row = re.compile(rf"^\| glibc \| {num} \| 1\.00 \| {num} \| {num} \| 1\.00 \| {num} \| {num} [kM]/s \| {num}-{num} \|$", re.M)
        check(len(row.findall(text)) == 3, "report: expected 3 glibc rows with numbers in the workload tables")
        for al in ("jemalloc", "tcmalloc", "mimalloc", "spanalloc"):
            check(re.search(rf"^\| {al}( †)? \| ", text, re.M) is not None, f"report: no row for {al}")
    if FAILS:
        print(f"{len(FAILS)} check(s) failed", file=sys.stderr)
        return 1
    print("bench driver quick test: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
