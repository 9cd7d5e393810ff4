"""Charts (gnuplot, PNG): time and peak RSS relative to glibc per workload,
and thread scaling."""
import os
import subprocess

from allocators import COLORS
from report import geomean
from runs import SCALE_DIV, WL


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
    plot_t = ", ".join(f"'{dat}' using {i + 2}:xtic(1) title '{a}' lc rgb '{COLORS.get(a, '#000000')}'"
                       for i, a in enumerate(usable))
    plot_m = ", ".join(f"'{dat}' using {n + i + 2}:xtic(1) title '{a}' lc rgb '{COLORS.get(a, '#000000')}'"
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
                                      f"lc rgb '{COLORS.get(a, '#000000')}'" for i, a in enumerate(usable)))
    gp.append("unset multiplot")
    gpf = os.path.join(tmpdir, "scal.gp")
    with open(gpf, "w") as f:
        f.write("\n".join(gp) + "\n")
    r = subprocess.run(["gnuplot", gpf], capture_output=True, text=True)
    return None if r.returncode == 0 else "gnuplot failed: " + r.stderr.strip()[-300:]
