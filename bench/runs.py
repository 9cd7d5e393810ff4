"""Running the workloads: the workload table, one run under one allocator
(peak RSS from the program, a time limit and an RSS watchdog), the allocator
probe, the machine description, and the median results per configuration.
Used by bench.py; Debian's python3 only."""
import datetime
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from allocators import PACKAGES, ROOT, lib_path

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
# Workload 12, run at many thread counts for its own table (not in the means).
MANY = "livesets"
MANY_TITLE = "many threads on few cores: each thread keeps 2,000 live objects of 16-1024 B and replaces them"
SCALING = ["prodcons", "server", "large"]
# Scaling tables and chart: divisor, unit, axis label.
SCALE_DIV = {"prodcons": (1e6, "M/s", "million objects freed per second"),
             "server": (1e6, "M/s", "million replacements per second"),
             "large": (1e3, "k/s", "thousand large malloc+free per second")}


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


def run_plan(plan, usable, build, bindir, scale, timeout, reps, res, raw, total):
    """Runs plan [(workload, threads, repetitions)] under the usable
    allocators, rotating their order each repetition (interleaved, so that
    drift in the machine's load hits every allocator alike). A run that times
    out or passes the RSS limit is not repeated. Fills res and raw."""
    skip = set()
    done = 0
    t_start = time.monotonic()
    for rep in range(reps):
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
    return time.monotonic() - t_start
