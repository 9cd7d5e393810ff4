#!/usr/bin/env python3
"""spanalloc benchmark driver: runs the workloads under every allocator and
writes BENCHMARKS.md (called by bench/run.sh, which installs the peers and
builds first; this script only runs what is already built).

Each workload binary prints one JSON line ({"bench":"spanalloc",...}); this
script runs it with LD_PRELOAD set to the allocator (glibc: none), takes the
child's peak RSS from wait4(), interleaves the allocators within each
repetition, and reports medians. Debian's python3 only, no pip packages.
"""
import argparse
import datetime
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBDIR = "/usr/lib/x86_64-linux-gnu"

# (name, issue number, threaded, title)
WORKLOADS = [
    ("churn", 1, False, "small-object churn (8-256 B): immediate reuse, LIFO and FIFO batches"),
    ("random", 2, False, "random sizes 1 B-1 MiB, random live set of 1000"),
    ("prodcons", 3, True, "producer/consumer ring: objects freed by another thread"),
    ("server", 4, True, "larson-style server: threads replace random slots of a shared array"),
    ("falseshare", 5, True, "false sharing: 8 B objects written 1000 times (active + passive)"),
    ("realloc", 6, False, "realloc growth: byte by byte to 256 KiB, doubling to 64 MiB"),
    ("large", 7, True, "large objects 64 KiB-32 MiB across threads"),
    ("frag", 8, False, "fragmentation: 1 GiB small, free 90 %, 512 MiB of other sizes"),
    ("threads", 9, True, "thread churn: thousands of short-lived threads"),
    ("app", 10, False, "application: JSON parse/serialise, hash map and tree of strings"),
]
WL = {w[0]: w for w in WORKLOADS}
SCALING = ["prodcons", "server", "large"]
# Scaling tables and chart: divisor, unit, axis label.
SCALE_DIV = {"prodcons": (1e6, "M/s", "million objects freed per second"),
             "server": (1e6, "M/s", "million replacements per second"),
             "large": (1e3, "k/s", "thousand large malloc+free per second")}
PEERS = ["glibc", "jemalloc", "tcmalloc", "mimalloc"]
ALL_ALLOCATORS = PEERS + ["spanalloc"]
PACKAGES = {"glibc": "libc6", "jemalloc": "libjemalloc2", "tcmalloc": "libtcmalloc-minimal4",
            "mimalloc": "libmimalloc2.0"}


def lib_path(name, build):
    return {"glibc": "", "jemalloc": f"{LIBDIR}/libjemalloc.so.2",
            "tcmalloc": f"{LIBDIR}/libtcmalloc_minimal.so.4",
            "mimalloc": f"{LIBDIR}/libmimalloc.so.2",
            "spanalloc": os.path.join(build, "libspanalloc.so")}[name]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


RSS_LIMIT_KB = 8 << 20  # set from --rss-limit-mb


def rss_of(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for l in f:
                if l.startswith("VmRSS:"):
                    return int(l.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def run_one(argv, preload, timeout, rss_limit_kb=None):
    """Runs one workload; returns a dict with the parsed line, wall time and peak RSS.
    A watchdog kills the run when its RSS passes the limit, so that a broken
    allocator cannot push a shared machine into the OOM killer."""
    rss_limit_kb = rss_limit_kb or RSS_LIMIT_KB
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if preload:
        env["LD_PRELOAD"] = preload
    with tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, env=env, start_new_session=True)
        timed_out = []

        def kill():
            timed_out.append(True)
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        over = []
        stop = threading.Event()

        def watch():
            while not stop.wait(0.02):
                rss = rss_of(p.pid)
                if rss > rss_limit_kb:
                    over.append(rss)
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        out = p.stdout.read().decode(errors="replace")
        p.stdout.close()
        _, status, ru = os.wait4(p.pid, 0)
        timer.cancel()
        stop.set()
        watcher.join()
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)  # keeps Popen from waiting again
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    res = {"wall": wall, "rss_kb": ru.ru_maxrss, "rc": p.returncode}
    line = next((l for l in out.splitlines() if l.startswith('{"bench":"spanalloc"')), None)
    if over:
        res["error"] = f"RSS over the limit ({over[0] >> 10} MiB > {rss_limit_kb >> 10} MiB), killed"
    elif timed_out:
        res["error"] = f"timeout ({timeout:.0f} s)"
    elif p.returncode < 0:
        res["error"] = f"crash ({signal.Signals(-p.returncode).name})"
    elif p.returncode != 0:
        res["error"] = f"exit {p.returncode}"
    elif line is None:
        res["error"] = "no result line"
    if "error" not in res:
        try:
            res["result"] = json.loads(line)
            res["rss_wait4_kb"] = res["rss_kb"]
            # The program's own VmHWM; wait4's ru_maxrss also counts the
            # driver's pages the child held between fork and exec.
            if res["result"].get("peak_rss_kb", -1) > 0:
                res["rss_kb"] = res["result"]["peak_rss_kb"]
        except ValueError:
            res["error"] = "bad result line"
    tail = stderr.strip().splitlines()[-1:] if stderr.strip() else []
    if tail:
        res["stderr"] = tail[0][:200]
    return res


def check_allocator(name, build, probe):
    """None when usable, else the reason it is not."""
    lib = lib_path(name, build)
    if not lib:
        return None
    if not os.path.exists(lib):
        return f"not built ({os.path.relpath(lib, ROOT)} missing)"
    r = run_one(probe, lib, 30, 1 << 20)
    # ld.so only warns (and carries on) when a preload fails to load.
    if "cannot be preloaded" in r.get("stderr", ""):
        return "fails to load: " + r["stderr"]
    if r.get("error"):
        return f"fails a 1/1000 churn run: {r['error']} {r.get('stderr', '')}".strip()
    return None


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:
        return ""


def machine_info(build):
    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-").strip() or platform.processor()
    info = {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "cores": sh("lscpu -p=CORE 2>/dev/null | grep -v '^#' | sort -u | wc -l"),
        "mem": sh("free -g | awk '/^Mem:/ {print $2\" GiB\"}'"),
        "kernel": platform.release(),
        "os": sh(". /etc/os-release && echo $PRETTY_NAME"),
        "thp": sh("cat /sys/kernel/mm/transparent_hugepage/enabled"),
        "gcc": sh("g++ --version | head -1"),
        "commit": sh(f"git -C {ROOT} rev-parse --short HEAD") + ("+dirty" if sh(f"git -C {ROOT} status --porcelain -- src include") else ""),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load_start": os.getloadavg(),
        "versions": {},
    }
    for a, pkg in PACKAGES.items():
        info["versions"][a] = (pkg + " " + sh(f"dpkg-query -W -f='${{Version}}' {pkg} 2>/dev/null")).strip()
    info["versions"]["spanalloc"] = "build of commit " + info["commit"]
    return info


def fmt_t(s):
    return f"{s:.3f}" if s < 10 else f"{s:.2f}"


def fmt_mb(kb):
    mb = kb / 1024
    return f"{mb:.1f}" if mb < 100 else f"{mb:.0f}"


def fmt_r(r):
    return f"{r:.2f}" if r is not None else "–"


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


class Results:
    def __init__(self):
        self.runs = {}  # (workload, threads, allocator) -> list of run dicts

    def add(self, key, r):
        self.runs.setdefault(key, []).append(r)

    def cell(self, key):
        """(median seconds, median rss kb, median ops, error text, n ok, n runs, extra medians)"""
        rs = self.runs.get(key, [])
        ok = [r for r in rs if "result" in r]
        if not ok:
            errs = sorted({r.get("error", "?") for r in rs})
            return None if not rs else {"error": ", ".join(errs), "n": len(rs), "ok": 0,
                                        "stderr": next((r.get("stderr") for r in rs if r.get("stderr")), "")}
        extra = {}
        for k in ok[0]["result"].get("extra", {}):
            extra[k] = statistics.median(r["result"]["extra"].get(k, 0) for r in ok)
        return {"t": statistics.median(r["result"]["seconds"] for r in ok),
                "rss": statistics.median(r["rss_kb"] for r in ok),
                "ops": statistics.median(r["result"]["ops"] for r in ok),
                "wall": statistics.median(r["wall"] for r in ok),
                "tmin": min(r["result"]["seconds"] for r in ok),
                "tmax": max(r["result"]["seconds"] for r in ok),
                "unit": ok[0]["result"].get("unit", ""), "extra": extra,
                "n": len(rs), "ok": len(ok),
                "error": ", ".join(sorted({r["error"] for r in rs if "error" in r}))}


def workload_table(res, w, threads, allocs, status):
    lines = ["| allocator | time (s) | × glibc | × best peer | peak RSS (MiB) | × glibc | × best peer | throughput | time min-max (s) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    cells = {a: res.cell((w, threads, a)) for a in allocs}
    good = {a: c for a, c in cells.items() if c and c.get("ok")}
    best_t = min((good[a]["t"] for a in PEERS if a in good), default=None)
    best_m = min((good[a]["rss"] for a in PEERS if a in good), default=None)
    g = good.get("glibc")
    notes = []
    for a in allocs:
        c = cells[a]
        if status.get(a):
            lines.append(f"| {a} | {status[a]} | | | | | | | |")
            continue
        if not c or not c.get("ok"):
            err = c["error"] if c else "not run"
            if c and c.get("stderr"):
                err += f" (`{c['stderr'][:80]}`)"
            lines.append(f"| {a} | **{err}** | | | | | | | |")
            continue
        mark = ""
        if c["ok"] < c["n"]:
            mark = " †"
            notes.append(f"† {a}: {c['n'] - c['ok']} of {c['n']} runs failed ({c['error']}); median of the rest.")
        thr = c["ops"] / c["t"] if c["t"] > 0 else 0
        lines.append(
            f"| {a}{mark} | {fmt_t(c['t'])} | {fmt_r(c['t'] / g['t']) if g else '–'} | "
            f"{fmt_r(c['t'] / best_t) if best_t else '–'} | {fmt_mb(c['rss'])} | "
            f"{fmt_r(c['rss'] / g['rss']) if g else '–'} | {fmt_r(c['rss'] / best_m) if best_m else '–'} | "
            f"{thr / 1e6:.3g} M/s | {fmt_t(c['tmin'])}-{fmt_t(c['tmax'])} |" if thr >= 1e5 else
            f"| {a}{mark} | {fmt_t(c['t'])} | {fmt_r(c['t'] / g['t']) if g else '–'} | "
            f"{fmt_r(c['t'] / best_t) if best_t else '–'} | {fmt_mb(c['rss'])} | "
            f"{fmt_r(c['rss'] / g['rss']) if g else '–'} | {fmt_r(c['rss'] / best_m) if best_m else '–'} | "
            f"{thr / 1e3:.3g} k/s | {fmt_t(c['tmin'])}-{fmt_t(c['tmax'])} |")
    if w == "frag":
        lines.append("")
        lines.append("| allocator | RSS after freeing 90 % (MiB) | RSS at the end, before the last frees (MiB) |")
        lines.append("| --- | ---: | ---: |")
        for a in allocs:
            c = good.get(a)
            if c and "rss_after_free_kb" in c["extra"]:
                lines.append(f"| {a} | {fmt_mb(c['extra']['rss_after_free_kb'])} | {fmt_mb(c['extra']['rss_final_kb'])} |")
    return lines + ([""] + notes if notes else [])


def geomean_table(res, configs, allocs, status):
    """Geometric means over the workloads in configs [(w, threads)], over the
    workloads where every usable allocator has a result."""
    usable = [a for a in allocs if not status.get(a)]
    common = [k for k in configs if all((c := res.cell((k[0], k[1], a))) and c.get("ok") for a in usable)]
    missing = {a: [k[0] for k in configs if not ((c := res.cell((k[0], k[1], a))) and c.get("ok"))] for a in usable}
    gm = {}
    for a in usable:
        gm[a] = (geomean([res.cell((w, t, a))["t"] for w, t in common]),
                 geomean([res.cell((w, t, a))["rss"] for w, t in common]))
    lines = ["| allocator | time (geomean, s) | × glibc | × best peer | peak RSS (geomean, MiB) | × glibc | × best peer |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    if not common:
        return lines + ["| (no workload with a result for every allocator) | | | | | | |"], gm, common
    best_t = min(gm[a][0] for a in usable if a in PEERS) if any(a in PEERS for a in usable) else None
    best_m = min(gm[a][1] for a in usable if a in PEERS) if any(a in PEERS for a in usable) else None
    g = gm.get("glibc")
    for a in allocs:
        if status.get(a):
            lines.append(f"| {a} | {status[a]} | | | | | |")
            continue
        t, m = gm[a]
        lines.append(f"| {a} | {fmt_t(t)} | {fmt_r(t / g[0]) if g else '–'} | {fmt_r(t / best_t) if best_t else '–'} | "
                     f"{fmt_mb(m)} | {fmt_r(m / g[1]) if g else '–'} | {fmt_r(m / best_m) if best_m else '–'} |")
    dropped = sorted({w for ws in missing.values() for w in ws})
    if dropped:
        lines.append("")
        lines.append("Left out of these means because some allocator has no result: " + ", ".join(
            f"{w} ({', '.join(a for a, ws in missing.items() if w in ws)})" for w in dropped) + ".")
    return lines, gm, common


def goals_section(res, configs1, configs2, allocs, status, summaries):
    """spanalloc against the project's goals, and the workloads it loses;
    causes go in bench/NOTES.md (by hand, from a profile), included here."""
    L = ["### spanalloc against the goals", ""]
    if "spanalloc" not in allocs:
        return []
    if status.get("spanalloc"):
        L += [f"spanalloc has no results: {status['spanalloc']}.", ""]
    else:
        L.append("Goal: geometric-mean time below every peer's, geometric-mean peak RSS within 10 % of the best "
                 "peer's, on 1 and on 2 threads.")
        L.append("")
        for label, gm in summaries:
            if "spanalloc" not in gm or gm["spanalloc"][0] is None:
                continue
            peers = {a: v for a, v in gm.items() if a in PEERS and v[0] is not None}
            if not peers:
                continue
            t, m = gm["spanalloc"]
            bt = min(v[0] for v in peers.values())
            bm = min(v[1] for v in peers.values())
            L.append(f"- {label}: time × best peer {t / bt:.2f} ({'met' if t < bt else '**not met**'}), "
                     f"peak RSS × best peer {m / bm:.2f} ({'met' if m <= 1.1 * bm else '**not met**'})")
        lost_t, lost_m = [], []
        for w, t in configs1 + configs2:
            c = res.cell((w, t, "spanalloc"))
            peer = [res.cell((w, t, a)) for a in PEERS if a in allocs and not status.get(a)]
            peer = [p for p in peer if p and p.get("ok")]
            if not peer:
                continue
            if not (c and c.get("ok")):
                lost_t.append(f"{w} ({t} thr): {c['error'] if c else 'not run'}")
                continue
            bt = min(p["t"] for p in peer)
            bm = min(p["rss"] for p in peer)
            if c["t"] > bt:
                lost_t.append(f"{w} ({t} thr) × {c['t'] / bt:.2f}")
            if c["rss"] > 1.1 * bm:
                lost_m.append(f"{w} ({t} thr) × {c['rss'] / bm:.2f}")
        L.append(f"- Slower than the best peer: {', '.join(lost_t) if lost_t else 'none'}")
        L.append(f"- Peak RSS more than 10 % above the best peer: {', '.join(lost_m) if lost_m else 'none'}")
        L.append("")
    notes = os.path.join(ROOT, "bench", "NOTES.md")
    if os.path.exists(notes):
        L.append(open(notes).read().strip())
    else:
        L.append("Causes of the losses (from a callgrind or perf profile) and their fixes go in `bench/NOTES.md`, "
                 "which the driver copies here.")
    L.append("")
    return L


def make_chart(res, configs1, configs2, allocs, status, chart, tmpdir):
    """Two panels: time and peak RSS relative to glibc, per workload (1 thread,
    then 2 threads) and the geometric means. Returns an error text or None."""
    usable = [a for a in allocs if not status.get(a)]
    if "glibc" not in usable:
        return "no glibc baseline"
    rows = []
    for label_set, cfgs in (("", configs1), ("2T ", configs2)):
        rt_all = {a: [] for a in usable}
        rm_all = {a: [] for a in usable}
        for w, t in cfgs:
            g = res.cell((w, t, "glibc"))
            if not (g and g.get("ok")):
                continue
            row_t, row_m = [], []
            for a in usable:
                c = res.cell((w, t, a))
                if c and c.get("ok"):
                    row_t.append(c["t"] / g["t"])
                    row_m.append(c["rss"] / g["rss"])
                    rt_all[a].append(row_t[-1])
                    rm_all[a].append(row_m[-1])
                else:
                    row_t.append(float("nan"))
                    row_m.append(float("nan"))
            rows.append((f"{label_set}{w}", row_t, row_m))
        if cfgs:
            rows.append((f"{label_set}geomean" if label_set else "1T geomean",
                         [geomean(rt_all[a]) or float("nan") for a in usable],
                         [geomean(rm_all[a]) or float("nan") for a in usable]))
    if not rows:
        return "no data"
    dat = os.path.join(tmpdir, "chart.dat")
    with open(dat, "w") as f:
        for label, rt, rm in rows:
            f.write(f'"{label}" ' + " ".join(f"{x:.4f}" if x == x else "NaN" for x in rt + rm) + "\n")
    n = len(usable)
    colors = {"glibc": "#888888", "jemalloc": "#1f77b4", "tcmalloc": "#2ca02c", "mimalloc": "#ff7f0e",
              "spanalloc": "#d62728"}
    plot_t = ", ".join(f"'{dat}' using {i + 2}:xtic(1) title '{a}' lc rgb '{colors.get(a, '#000000')}'"
                       for i, a in enumerate(usable))
    plot_m = ", ".join(f"'{dat}' using {n + i + 2}:xtic(1) title '{a}' lc rgb '{colors.get(a, '#000000')}'"
                       for i, a in enumerate(usable))
    gp = f"""
set terminal pngcairo size 1400,900 font 'sans,10'
set output '{chart}'
set multiplot layout 2,1 title 'spanalloc benchmark suite: relative to glibc (lower is better), log scale'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y 2
set grid ytics
set key outside right top
set xtics rotate by -35 nomirror
set xrange [-0.6:{len(rows) - 0.4}]
set yrange [0.0625:16]
set ytics ('1/16' 0.0625, '1/8' 0.125, '1/4' 0.25, '1/2' 0.5, '1' 1, '2' 2, '4' 4, '8' 8, '16' 16)
set ylabel 'time / glibc time'
plot {plot_t}
set ylabel 'peak RSS / glibc peak RSS'
plot {plot_m}
unset multiplot
"""
    gpf = os.path.join(tmpdir, "chart.gp")
    with open(gpf, "w") as f:
        f.write(gp)
    r = subprocess.run(["gnuplot", gpf], capture_output=True, text=True)
    if r.returncode != 0:
        return "gnuplot failed: " + r.stderr.strip()[-300:]
    return None


def make_scaling_chart(res, scaling_wl, threads, allocs, status, chart, tmpdir):
    usable = [a for a in allocs if not status.get(a)]
    colors = {"glibc": "#888888", "jemalloc": "#1f77b4", "tcmalloc": "#2ca02c", "mimalloc": "#ff7f0e",
              "spanalloc": "#d62728"}
    gp = [f"set terminal pngcairo size {420 * len(scaling_wl) + 200},450 font 'sans,10'",
          f"set output '{chart}'",
          f"set multiplot layout 1,{len(scaling_wl)} title 'thread scaling (higher is better; {os.cpu_count()} CPUs)'",
          "set logscale x 2", "set grid", "set key below", "set xlabel 'threads'",
          "set yrange [0:*]"]
    for w in scaling_wl:
        dat = os.path.join(tmpdir, f"scal-{w}.dat")
        with open(dat, "w") as f:
            for t in threads:
                vals = []
                for a in usable:
                    c = res.cell((w, t, a))
                    vals.append(f"{c['ops'] / c['t'] / SCALE_DIV[w][0]:.5g}" if c and c.get("ok") else "NaN")
                f.write(f"{t} " + " ".join(vals) + "\n")
        gp.append(f"set title '{WL[w][1]}. {w}'")
        gp.append(f"set ylabel '{SCALE_DIV[w][2]}'")
        gp.append("plot " + ", ".join(f"'{dat}' using 1:{i + 2} title '{a}' with linespoints lw 2 "
                                      f"lc rgb '{colors.get(a, '#000000')}'" for i, a in enumerate(usable)))
    gp.append("unset multiplot")
    gpf = os.path.join(tmpdir, "scal.gp")
    with open(gpf, "w") as f:
        f.write("\n".join(gp) + "\n")
    r = subprocess.run(["gnuplot", gpf], capture_output=True, text=True)
    return None if r.returncode == 0 else "gnuplot failed: " + r.stderr.strip()[-300:]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--quick", action="store_true", help="smoke run: 1/10 of the work, 3 repetitions, no scaling")
    ap.add_argument("--only", default="", help="comma-separated workload names or numbers (1-10; 11 = scaling)")
    ap.add_argument("--threads", default="1,2,4,8,16", help="thread counts of the scaling run (workload 11)")
    ap.add_argument("--scaling-only", action="store_true", help="run only the scaling run (workloads 3, 4, 7)")
    ap.add_argument("--no-scaling", action="store_true")
    ap.add_argument("--no-fastpath", action="store_true")
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
    global RSS_LIMIT_KB
    mem_kb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 1024
    RSS_LIMIT_KB = (args.rss_limit_mb << 10) if args.rss_limit_mb else min(8 << 20, mem_kb // 2)
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
            elif 1 <= n <= 10:
                only.add(WORKLOADS[n - 1][0])
            else:
                ap.error(f"no workload {x}")
        elif x in WL or x == "scaling":
            only.add(x)
        else:
            ap.error(f"unknown workload {x} (known: {', '.join(WL)}, scaling)")
    selected = [w[0] for w in WORKLOADS if not only or w[0] in only]
    if args.scaling_only:
        selected = []
        scaling_wl = [w for w in SCALING if w in only] or SCALING[:]
    elif "scaling" in only or (not only and not args.quick and not args.no_scaling):
        scaling_wl = SCALING[:]
    else:
        scaling_wl = []

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
    for w in set(selected) | set(scaling_wl) if not saved else []:
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
    for w in scaling_wl:
        for t in scal_threads:
            if (w, t) not in configs1 + configs2:
                plan.append((w, t, scal_reps))
    total = sum(r for _, _, r in plan) * sum(1 for a in allocs if not status[a])
    log(f"bench: {len(plan)} configurations, {reps} repetitions, scale {scale}, {total} runs")

    res = Results()
    skip = set()
    raw = []
    done = 0
    t_start = time.monotonic()
    usable = [a for a in allocs if not status[a]]
    for x in (saved["runs"] if saved else []):
        res.add((x["workload"], x["threads"], x["allocator"]), x)
        raw.append(x)
    for rep in range(reps if not saved else 0):
        order = usable[rep % len(usable):] + usable[:rep % len(usable)] if usable else []
        for w, t, r in plan:
            if rep >= r:
                continue
            argv = [os.path.join(bindir, f"bench_{w}"), "--threads", str(t), "--scale", str(scale)]
            for a in order:
                if (w, t, a) in skip:
                    continue
                rr = run_one(argv, lib_path(a, build), timeout)
                if "timeout" in rr.get("error", "") or "RSS over" in rr.get("error", ""):
                    skip.add((w, t, a))  # expensive; not repeated
                res.add((w, t, a), rr)
                raw.append({"rep": rep, "workload": w, "threads": t, "allocator": a, **rr})
                done += 1
                if "error" in rr:
                    log(f"bench: {w} threads={t} {a}: {rr['error']} {rr.get('stderr', '')}")
        log(f"bench: repetition {rep + 1}/{reps} done ({done}/{total} runs, {time.monotonic() - t_start:.0f} s)")
    run_seconds = time.monotonic() - t_start
    if saved:
        run_seconds = saved.get("plan", {}).get("run_seconds", sum(x["wall"] for x in raw))

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

    if not saved:
        info["load_end"] = os.getloadavg()
        plan_info = {"selected": selected, "scaling_wl": scaling_wl, "scal_threads": scal_threads,
                     "allocs": allocs, "run_seconds": run_seconds, "quick": args.quick,
                     "scaling_only": args.scaling_only, "only": args.only, "threads": args.threads}
        os.makedirs(os.path.dirname(raw_path), exist_ok=True)
        with open(raw_path, "w") as f:
            json.dump({"info": info, "status": status, "scale": scale, "reps": reps, "runs": raw,
                       "fastpath": fast, "plan": plan_info}, f)

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

    # ---- the report ----
    mode = "scaling only" if args.scaling_only else ("quick (smoke run, 1/10 of the work)" if args.quick else "full")
    L = []
    if args.scaling_only:
        L.append(f"# spanalloc thread scaling on {info['cpus']} CPUs")
    else:
        L.append("# spanalloc benchmarks")
    L.append("")
    L.append(f"Generated by `bash bench/run.sh{' --quick' if args.quick else ''}{' --scaling-only' if args.scaling_only else ''}"
             f"{' --only ' + args.only if args.only else ''}"
             f"{' --threads ' + args.threads if args.threads != '1,2,4,8,16' else ''}"
             f"{f' --scale {scale:g}' if scale != (0.1 if args.quick else 1.0) else ''}` on {info['date']} "
             f"({mode}; {reps} repetitions, medians; allocators interleaved within each repetition; "
             f"{run_seconds / 60:.1f} min of runs). Do not edit by hand.")
    L.append("")
    L.append("## Machine")
    L.append("")
    L.append(f"- CPU: {info['cpu']}; {info['cpus']} logical CPUs ({info['cores']} cores); memory {info['mem']}")
    L.append(f"- Kernel: Linux {info['kernel']} ({info['os']}); transparent huge pages: {info['thp']}")
    L.append(f"- Compiler for the workloads: {info['gcc']}, -O2")
    L.append(f"- Load average at start {info['load_start'][0]:.2f}, at end {info['load_end'][0]:.2f} "
             "(the machine may be shared: other work adds noise)")
    L.append("- Allocators:")
    for a in allocs:
        path = lib_path(a, build)
        L.append(f"  - {a}: {info['versions'].get(a, '')}"
                 + (f", `LD_PRELOAD={os.path.relpath(path, ROOT) if a == 'spanalloc' else path}`" if path else ", no preload")
                 + (f" — **{status[a]}**" if status[a] else ""))
    L.append("")
    L.append("Time is the workload's own wall-clock time for its work (it excludes process start-up); peak RSS is "
             "the program's high-water mark (`VmHWM` of `/proc/self/status` at its end; `wait4`'s `ru_maxrss` "
             "would also count the driver's pages held between fork and exec, and is kept in the raw results). \"× glibc\" and \"× best peer\" divide by glibc's value and by "
             "the best of glibc, jemalloc, tcmalloc and mimalloc on that row set; lower is better for both.")
    L.append("")

    if configs1 or configs2:
        summaries = []
        L.append("## Summary: geometric means")
        L.append("")
        for title, cfgs in ((f"1 thread: all workloads run with one thread ({len(configs1)} workloads)", configs1),
                            (f"2 threads: the multi-threaded workloads run with two threads ({len(configs2)} workloads)", configs2)):
            if not cfgs:
                continue
            L.append(f"### {title}")
            L.append("")
            lines, gm, common = geomean_table(res, cfgs, allocs, status)
            summaries.append((title.split(":")[0], gm))
            L += lines
            L.append("")
        L += goals_section(res, configs1, configs2, allocs, status, summaries)
        if chart and not args.no_chart:
            if chart_err:
                L.append(f"(chart not made: {chart_err})")
            else:
                L.append(f"![time and peak RSS relative to glibc]({os.path.relpath(chart, os.path.dirname(report))})")
            L.append("")

    if fast:
        L.append("## Fast path: instructions per malloc+free pair")
        L.append("")
        L.append("`bash bench/fastpath.sh`: callgrind instructions (Ir) inside the measured loop, the calls into "
                 "`malloc`/`free` included, (Ir(2N) − Ir(N)) / N with N = %s. (a) `malloc(32)` then `free` at once; "
                 "(b) 256 live 32 B objects allocated, then freed in LIFO order." %
                 next((str(x["pairs"]) for x in fast if "pairs" in x), "?"))
        L.append("")
        L.append("| allocator | (a) malloc+free | (b) 256 live, LIFO |")
        L.append("| --- | ---: | ---: |")
        for x in fast:
            if x.get("status") == "ok":
                L.append(f"| {x['fastpath']} | {x['a']:.1f} | {x['b']:.1f} |")
            else:
                L.append(f"| {x['fastpath']} | {x.get('status')} | |")
        L.append("")

    if configs1 or configs2:
        L.append("## Workloads")
        L.append("")
        for w, num, threaded, title in WORKLOADS:
            if w not in selected:
                continue
            for t in ([1, 2] if threaded else [1]):
                L.append(f"### {num}. {w}, {t} thread{'s' if t > 1 else ''}: {title}")
                L.append("")
                c = next((res.cell((w, t, a)) for a in allocs if res.cell((w, t, a)) and res.cell((w, t, a)).get("ok")), None)
                if c:
                    L.append(f"`bench_{w} --threads {t} --scale {scale:g}`; throughput in {c['unit']} per second.")
                    L.append("")
                L += workload_table(res, w, t, allocs, status)
                L.append("")

    if scaling_wl:
        L.append(f"## {11 if not args.scaling_only else 'Workload 11'}. Thread scaling" if not args.scaling_only else "## Thread scaling (workload 11)")
        L.append("")
        L.append(f"Throughput (per second, medians of {scal_reps} or more runs) of workloads 3, 4 and 7 at "
                 f"{', '.join(map(str, scal_threads))} threads, on this machine ({info['cpus']} logical CPUs: "
                 "beyond that the threads time-share). The work is fixed and divided among the threads. "
                 f"Rerun on a bigger machine with `bash bench/run.sh --scaling-only --threads {args.threads}`.")
        L.append("")
        if scal_chart:
            L.append(f"(scaling chart not made: {scal_err})" if scal_err else
                     f"![thread scaling]({os.path.relpath(scal_chart, os.path.dirname(report))})")
            L.append("")
        scal_notes = []
        for w in scaling_wl:
            unit = next((res.cell((w, t, a))["unit"] for t in scal_threads for a in allocs
                         if res.cell((w, t, a)) and res.cell((w, t, a)).get("ok")), "ops")
            L.append(f"### {WL[w][1]}. {w} ({unit}, {SCALE_DIV[w][1]})")
            L.append("")
            L.append("| allocator | " + " | ".join(f"{t} thr" for t in scal_threads) + " |")
            L.append("| --- |" + " ---: |" * len(scal_threads))
            for a in allocs:
                if status[a]:
                    L.append(f"| {a} | {status[a]} |" + " |" * (len(scal_threads) - 1))
                    continue
                cells = []
                for t in scal_threads:
                    c = res.cell((w, t, a))
                    if c and c.get("ok"):
                        mark = " †" if c["ok"] < c["n"] else ""
                        if mark:
                            scal_notes.append(f"† {a}, {w}, {t} threads: {c['n'] - c['ok']} of {c['n']} runs "
                                              f"failed ({c['error']}); median of the rest.")
                        cells.append(f"{c['ops'] / c['t'] / SCALE_DIV[w][0]:.3g}{mark}")
                    else:
                        cells.append(f"**{c['error'] if c else 'not run'}**")
                L.append(f"| {a} | " + " | ".join(cells) + " |")
            L.append("")
        if scal_notes:
            L += scal_notes + [""]

    if not args.scaling_only:
        others = sorted(f for f in os.listdir(os.path.join(ROOT, "bench"))
                        if f.startswith("scaling-") and f.endswith(".md") and f != f"scaling-{os.cpu_count()}cpu.md")
        if others:
            L.append("## Thread scaling on other machines")
            L.append("")
            for f in others:
                L.append(f"- [{f}](bench/{f}) (`bash bench/run.sh --scaling-only` there)")
            L.append("")

    L.append("## Method")
    L.append("")
    L.append("- Driver: `bash bench/run.sh [--quick] [--only NAMES] [--threads LIST] [--scaling-only] [--reps N]`: installs "
             "the peers (`scripts/deps.sh`), builds the project in release mode into `build/`, runs "
             "`bench/bench.py`, which writes this file. Raw runs: `build/bench-raw.json`.")
    L.append("- Workloads: `bench/*.cc`, one program each, standard `malloc`/`free`/`realloc`/`new`/`delete` only, "
             "built with -O2 and linked with no allocator; the allocator comes from `LD_PRELOAD`.")
    L.append("- Multi-threaded workloads divide a fixed amount of work among their threads.")
    L.append("- A run that crashes, fails or exceeds the time limit shows its error instead of a number.")
    L.append("")
    os.makedirs(os.path.dirname(report), exist_ok=True)
    with open(report, "w") as f:
        f.write("\n".join(L))
    log(f"bench: wrote {report}" + (f" and {chart}" if chart and not chart_err and not args.no_chart and (configs1 or configs2) else ""))
    log(f"bench: raw results in {raw_path}")
    failed = sum(1 for x in raw if "error" in x)
    if failed:
        log(f"bench: {failed} runs failed (see the report)")


if __name__ == "__main__":
    main()
