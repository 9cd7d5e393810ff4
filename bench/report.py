"""The report: tables of times and peak RSS with ratios to glibc and to the
best peer, geometric means, spanalloc against its goals, and the markdown
file bench.py writes (BENCHMARKS.md or a partial report)."""
import math
import os

import footprint
from allocators import PEERS, ROOT, lib_path
from runs import MANY, MANY_TITLE, SCALE_DIV, WL, WORKLOADS


def fmt_t(s):
    return f"{s:.3f}" if s < 10 else f"{s:.2f}"


def fmt_mb(kb):
    mb = kb / 1024
    return f"{mb:.1f}" if mb < 100 else f"{mb:.0f}"


def fmt_r(r):
    return f"{r:.2f}" if r is not None else "–"


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


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


def many_threads_section(r):
    """Workload 12: time and peak RSS at thread counts above the core count,
    with spanalloc's RSS against glibc's (goal: within x 1.2 at 64 threads)."""
    L = [f"## 12. {MANY}: {MANY_TITLE}", "",
         f"`bench_{MANY} --threads N --scale {r.scale:g}`: the work is per thread (weak scaling), so time grows "
         f"with the threads beyond the {r.info['cpus']} CPUs. Cells: median time (s) / median peak RSS (MiB), "
         "then peak RSS × glibc's at that thread count.", "",
         "| allocator | " + " | ".join(f"{t} thr" for t in r.many_threads) + " |",
         "| --- |" + " ---: |" * len(r.many_threads)]
    for a in r.allocs:
        if r.status[a]:
            L.append(f"| {a} | {r.status[a]} |" + " |" * (len(r.many_threads) - 1))
            continue
        cells = []
        for t in r.many_threads:
            c, g = r.res.cell((MANY, t, a)), r.res.cell((MANY, t, "glibc"))
            if c and c.get("ok"):
                ratio = f" (× {c['rss'] / g['rss']:.2f})" if g and g.get("ok") else ""
                cells.append(f"{fmt_t(c['t'])} / {fmt_mb(c['rss'])}{ratio}")
            else:
                cells.append(f"**{c['error'] if c else 'not run'}**")
        L.append(f"| {a} | " + " | ".join(cells) + " |")
    L.append("")
    top = max(r.many_threads)
    c, g = r.res.cell((MANY, top, "spanalloc")), r.res.cell((MANY, top, "glibc"))
    if c and c.get("ok") and g and g.get("ok"):
        ratio = c["rss"] / g["rss"]
        L += [f"Goal: spanalloc's peak RSS at {top} threads within × 1.2 of glibc's: × {ratio:.2f} "
              f"({'met' if ratio <= 1.2 else '**not met**'}).", ""]
    return L


def render(r):
    """The markdown text of the report for one run r (a RunSummary from bench.py)."""
    mode = "scaling only" if r.args.scaling_only else ("quick (smoke run, 1/10 of the work)" if r.args.quick else "full")
    L = []
    if r.args.scaling_only:
        L.append(f"# spanalloc thread scaling on {r.info['cpus']} CPUs")
    else:
        L.append("# spanalloc benchmarks")
    L.append("")
    L.append(f"Generated by `bash bench/run.sh{' --quick' if r.args.quick else ''}{' --scaling-only' if r.args.scaling_only else ''}"
             f"{' --only ' + r.args.only if r.args.only else ''}"
             f"{' --threads ' + r.args.threads if r.args.threads != '1,2,4,8,16' else ''}"
             f"{f' --scale {r.scale:g}' if r.scale != (0.1 if r.args.quick else 1.0) else ''}` on {r.info['date']} "
             f"({mode}; {r.reps} repetitions, medians; allocators interleaved within each repetition; "
             f"{r.run_seconds / 60:.1f} min of runs). Do not edit by hand.")
    L.append("")
    L.append("## Machine")
    L.append("")
    L.append(f"- CPU: {r.info['cpu']}; {r.info['cpus']} logical CPUs ({r.info['cores']} cores); memory {r.info['mem']}")
    L.append(f"- Kernel: Linux {r.info['kernel']} ({r.info['os']}); transparent huge pages: {r.info['thp']}")
    L.append(f"- Compiler for the workloads: {r.info['gcc']}, -O2")
    L.append(f"- Load average at start {r.info['load_start'][0]:.2f}, at end {r.info['load_end'][0]:.2f} "
             "(the machine may be shared: other work adds noise)")
    L.append("- Allocators:")
    for a in r.allocs:
        path = lib_path(a, r.build)
        L.append(f"  - {a}: {r.info['versions'].get(a, '')}"
                 + (f", `LD_PRELOAD={os.path.relpath(path, ROOT) if a == 'spanalloc' else path}`" if path else ", no preload")
                 + (f" — **{r.status[a]}**" if r.status[a] else ""))
    L.append("")
    L.append("Time is the workload's own wall-clock time for its work (it excludes process start-up); peak RSS is "
             "the program's high-water mark (`VmHWM` of `/proc/self/status` at its end; `wait4`'s `ru_maxrss` "
             "would also count the driver's pages held between fork and exec, and is kept in the raw results). \"× glibc\" and \"× best peer\" divide by glibc's value and by "
             "the best of glibc, jemalloc, tcmalloc and mimalloc on that row set; lower is better for both.")
    L.append("")

    if r.configs1 or r.configs2:
        summaries = []
        L.append("## Summary: geometric means")
        L.append("")
        for title, cfgs in ((f"1 thread: all workloads run with one thread ({len(r.configs1)} workloads)", r.configs1),
                            (f"2 threads: the multi-threaded workloads run with two threads ({len(r.configs2)} workloads)", r.configs2)):
            if not cfgs:
                continue
            L.append(f"### {title}")
            L.append("")
            lines, gm, common = geomean_table(r.res, cfgs, r.allocs, r.status)
            summaries.append((title.split(":")[0], gm))
            L += lines
            L.append("")
        L += goals_section(r.res, r.configs1, r.configs2, r.allocs, r.status, summaries)
        if r.chart and not r.args.no_chart:
            if r.chart_err:
                L.append(f"(chart not made: {r.chart_err})")
            else:
                L.append(f"![time and peak RSS relative to glibc]({os.path.relpath(r.chart, os.path.dirname(r.report))})")
            L.append("")

    if r.fast:
        L.append("## Fast path: instructions per malloc+free pair")
        L.append("")
        L.append("`bash bench/fastpath.sh`: callgrind instructions (Ir) inside the measured loop, the calls into "
                 "`malloc`/`free` included, (Ir(2N) − Ir(N)) / N with N = %s. (a) `malloc(32)` then `free` at once; "
                 "(b) 256 live 32 B objects allocated, then freed in LIFO order." %
                 next((str(x["pairs"]) for x in r.fast if "pairs" in x), "?"))
        L.append("")
        L.append("| allocator | (a) malloc+free | (b) 256 live, LIFO |")
        L.append("| --- | ---: | ---: |")
        for x in r.fast:
            if x.get("status") == "ok":
                L.append(f"| {x['fastpath']} | {x['a']:.1f} | {x['b']:.1f} |")
            else:
                L.append(f"| {x['fastpath']} | {x.get('status')} | |")
        L.append("")

    if getattr(r, "footprint", None):
        L += footprint.section([tuple(x) for x in r.footprint], r.args.quick)
    if not r.args.scaling_only:
        # Measured by hand with bench/variants.py (huge pages, background
        # release): kept in bench/RELEASE.md and copied here.
        release = os.path.join(ROOT, "bench", "RELEASE.md")
        if os.path.exists(release):
            L += [open(release).read().strip(), ""]

    if r.configs1 or r.configs2:
        L.append("## Workloads")
        L.append("")
        for w, num, threaded, title in WORKLOADS:
            if w not in r.selected:
                continue
            for t in ([1, 2] if threaded else [1]):
                L.append(f"### {num}. {w}, {t} thread{'s' if t > 1 else ''}: {title}")
                L.append("")
                c = next((r.res.cell((w, t, a)) for a in r.allocs if r.res.cell((w, t, a)) and r.res.cell((w, t, a)).get("ok")), None)
                if c:
                    L.append(f"`bench_{w} --threads {t} --scale {r.scale:g}`; throughput in {c['unit']} per second.")
                    L.append("")
                L += workload_table(r.res, w, t, r.allocs, r.status)
                L.append("")

    if r.many_threads:
        L += many_threads_section(r)

    if r.scaling_wl:
        L.append(f"## {11 if not r.args.scaling_only else 'Workload 11'}. Thread scaling" if not r.args.scaling_only else "## Thread scaling (workload 11)")
        L.append("")
        L.append(f"Throughput (per second, medians of {r.scal_reps} or more runs) of workloads 3, 4 and 7 at "
                 f"{', '.join(map(str, r.scal_threads))} threads, on this machine ({r.info['cpus']} logical CPUs: "
                 "beyond that the threads time-share). The work is fixed and divided among the threads. "
                 f"Rerun on a bigger machine with `bash bench/run.sh --scaling-only --threads {r.args.threads}`.")
        L.append("")
        if r.scal_chart:
            L.append(f"(scaling chart not made: {r.scal_err})" if r.scal_err else
                     f"![thread scaling]({os.path.relpath(r.scal_chart, os.path.dirname(r.report))})")
            L.append("")
        scal_notes = []
        for w in r.scaling_wl:
            unit = next((r.res.cell((w, t, a))["unit"] for t in r.scal_threads for a in r.allocs
                         if r.res.cell((w, t, a)) and r.res.cell((w, t, a)).get("ok")), "ops")
            L.append(f"### {WL[w][1]}. {w} ({unit}, {SCALE_DIV[w][1]})")
            L.append("")
            L.append("| allocator | " + " | ".join(f"{t} thr" for t in r.scal_threads) + " |")
            L.append("| --- |" + " ---: |" * len(r.scal_threads))
            for a in r.allocs:
                if r.status[a]:
                    L.append(f"| {a} | {r.status[a]} |" + " |" * (len(r.scal_threads) - 1))
                    continue
                cells = []
                for t in r.scal_threads:
                    c = r.res.cell((w, t, a))
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

    if not r.args.scaling_only:
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
    return "\n".join(L)
