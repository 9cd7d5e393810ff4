#!/usr/bin/env python3
"""Checks of spanalloc's report: the exit report (SPANALLOC_REPORT=1|json,
SPANALLOC_REPORT_FILE), its JSON form and the identities of its totals,
and malloc_info's XML. One case per run:

    check_report.py CASE LIBSPANALLOC_SO WORKLOAD_PLAIN WORKLOAD_LINKED

The workload (report_workload.c) runs under LD_PRELOAD (plain) and linked."""
import glob
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

CASE, LIB, PLAIN, LINKED = sys.argv[1:5]
PAGE = 8192
# The workload keeps these large blocks live: (64 + 97 i) KiB for i not a multiple of 3, i < 24.
LIVE_LARGE = sum(((64 + 97 * i) << 10) for i in range(24) if i % 3)
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(argv, env=None, preload=False, cwd=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("SPANALLOC_")}
    e.update(env or {})
    if preload:
        e["LD_PRELOAD"] = LIB
    p = subprocess.run(argv, env=e, cwd=cwd, capture_output=True, timeout=120)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def workloads():
    return [("preload", [PLAIN], True), ("linked", [LINKED], False)]


def check_json(doc, label, live_large=0, report=None):
    """The JSON report's shape and the identities of its totals."""
    t = doc["totals"]
    parts = ["in_use_small", "in_use_large", "thread_cache_free", "central_free", "page_heap_free", "released",
             "metadata"]
    total = sum(t[k] for k in parts)
    check(total == t["mapped"], f"{label}: {' + '.join(parts)} = {total} != mapped {t['mapped']}")
    check(t["committed"] == t["mapped"] - t["released"], f"{label}: committed != mapped - released")
    check(t["mapped"] > 0 and t["metadata"] > 0 and t["thread_caches"] >= 1, f"{label}: empty totals {t}")
    check(t["in_use_large"] >= live_large, f"{label}: in_use_large {t['in_use_large']} < live {live_large}")
    classes = doc["classes"]
    check(len(classes) > 0, f"{label}: no size class listed")
    span_bytes = sum(c["span_bytes"] for c in classes)
    small = t["in_use_small"] + t["thread_cache_free"] + t["central_free"]
    check(span_bytes == small,
          f"{label}: small spans {span_bytes} != in_use_small + thread_cache_free + central_free = {small}")
    check(sum(c["free_bytes"] for c in classes) == t["central_free"], f"{label}: class free bytes != central_free")
    for c in classes:
        check(c["span_bytes"] == c["spans"] * c["span_pages"] * PAGE, f"{label}: class {c['class']} span bytes")
        check(c["free_bytes"] == (c["free_in_spans"] + c["in_slots"]) * c["size"],
              f"{label}: class {c['class']} free bytes")
    check(isinstance(doc["memory_limit"], int) and isinstance(doc["memory_limit_source"], str),
          f"{label}: memory limit fields")
    opts = doc["options"]
    for name in ["SPANALLOC_RELEASE_DELAY_MS", "SPANALLOC_THREAD_CACHE_KB", "SPANALLOC_REPORT",
                 "SPANALLOC_REPORT_FILE"]:
        check(name in opts, f"{label}: option {name} missing")
    if report is not None:
        check(opts.get("SPANALLOC_REPORT") == report, f"{label}: SPANALLOC_REPORT is {opts.get('SPANALLOC_REPORT')}")
    print(f"{label}: mapped {t['mapped']} = sum of parts; {len(classes)} classes; "
          f"in use {t['in_use_small'] + t['in_use_large']}")


def case_json_exit():
    with tempfile.TemporaryDirectory() as d:
        for label, argv, preload in workloads():
            for f in glob.glob(d + "/*"):
                os.unlink(f)
            env = {"SPANALLOC_REPORT": "json", "SPANALLOC_REPORT_FILE": d + "/report-%p.json"}
            rc, out, err = run(argv + ["exit"], env, preload)
            check(rc == 0, f"{label}: exit status {rc}: {err}")
            check("spanalloc" not in err, f"{label}: stderr not empty with a report file: {err}")
            files = glob.glob(d + "/report-*.json")
            check(len(files) == 1, f"{label}: report files {files}")
            if len(files) != 1:
                continue
            doc = json.load(open(files[0]))
            check(files[0].endswith(f"report-{doc['pid']}.json"), f"{label}: %p is not the pid: {files[0]}")
            check(doc["options"]["SPANALLOC_REPORT_FILE"] == d + "/report-%p.json", f"{label}: report file option")
            check_json(doc, label + " exit report", LIVE_LARGE, "json")


def case_json_call():
    for label, argv, preload in workloads():
        rc, out, err = run(argv + ["json"], {}, preload)
        check(rc == 0, f"{label}: exit status {rc}: {err}")
        check_json(json.loads(out), label + " spanalloc_print_report_json", LIVE_LARGE, "0")


def case_json_python():
    # A real program: python3 under LD_PRELOAD, report to stderr as JSON.
    rc, out, err = run(["python3", "-c", "import json; x = [str(i) * 50 for i in range(200000)]"],
                       {"SPANALLOC_REPORT": "json"}, True)
    check(rc == 0, f"python3: exit status {rc}")
    check_json(json.loads(err), "python3 exit report", 0, "json")


def case_text_ls():
    # coreutils close stderr in an atexit handler that runs before spanalloc's.
    rc, out, err = run(["ls", "/"], {"SPANALLOC_REPORT": "1"}, True)
    check(rc == 0 and "usr" in out, f"ls: status {rc}")
    check("spanalloc report" in err and "mapped in all" in err, f"ls: no report on stderr: {err!r}")
    for label, argv, preload in workloads():
        rc, out, err = run(argv + ["closed"], {"SPANALLOC_REPORT": "1"}, preload)
        check(rc == 0, f"{label}: exit status {rc}")
        check(err.count("spanalloc report") == 1 and "SPANALLOC_REPORT " in err,
              f"{label}: stderr closed at exit: no report: {err!r}")


def case_reused_fd():
    # The program puts another file on spanalloc's kept descriptor: the
    # report must not go into that file.
    with tempfile.TemporaryDirectory() as d:
        for label, argv, preload in workloads():
            other = f"{d}/other-{label}"
            rc, out, err = run(argv + ["reused", other], {"SPANALLOC_REPORT": "1"}, preload)
            check(rc == 0, f"{label}: exit status {rc}: {err}")
            data = open(other).read() if os.path.exists(other) else ""
            check("spanalloc" not in data, f"{label}: the report went into the program's file: {data[:200]!r}")


def case_report_file():
    with tempfile.TemporaryDirectory() as d:
        # Relative to the start-up directory, even after the program moves.
        rc, out, err = run(["python3", "-c", "import os; os.chdir('/'); print(os.getpid())"],
                           {"SPANALLOC_REPORT": "1", "SPANALLOC_REPORT_FILE": "rel-%p.txt"}, True, cwd=d)
        check(rc == 0, f"python3: exit status {rc}")
        path = f"{d}/rel-{out.strip()}.txt"
        text = open(path).read() if os.path.exists(path) else ""
        check("spanalloc report" in text and "per size class" in text, f"no text report in {path}: {os.listdir(d)}")
        check("spanalloc" not in err, f"stderr not empty: {err!r}")
        # A file that cannot be created: one clear line on stderr, status kept.
        bad = d + "/missing/dir/report.txt"
        for label, argv, preload in workloads():
            rc, out, err = run(argv + ["exit"], {"SPANALLOC_REPORT": "1", "SPANALLOC_REPORT_FILE": bad}, preload)
            check(rc == 0, f"{label}: exit status {rc}")
            want = f"spanalloc: cannot write the report to {bad}: No such file or directory\n"
            check(err == want, f"{label}: stderr {err!r}, want {want!r}")


def case_bad_value():
    for label, argv, preload in workloads():
        rc, out, err = run(argv + ["exit"], {"SPANALLOC_REPORT": "yes"}, preload)
        check(rc == 0, f"{label}: exit status {rc}")
        want = "spanalloc: ignoring SPANALLOC_REPORT=yes: expected 0, 1 or json\n"
        check(err == want, f"{label}: stderr {err!r}, want {want!r}")


def case_malloc_info():
    for label, argv, preload in workloads():
        rc, out, err = run(argv + ["info"], {}, preload)
        check(rc == 0, f"{label}: exit status {rc}")
        check(err.strip() == "rc=0 einval=22", f"{label}: malloc_info results {err!r}")
        root = ET.fromstring(out)
        check(root.tag == "malloc" and root.get("version") == "1", f"{label}: root {root.tag} {root.attrib}")
        heaps = root.findall("heap")
        check(len(heaps) == 1 and heaps[0].get("nr") == "0", f"{label}: heaps {heaps}")
        heap = heaps[0]
        sizes = heap.find("sizes")
        check(sizes is not None and len(sizes) > 0, f"{label}: no <sizes>")
        prev_to = 0
        for s in sizes:
            a = {k: int(v) for k, v in s.attrib.items()}
            check(s.tag == "size" and prev_to < a["from"] <= a["to"], f"{label}: size element {s.attrib}")
            check(a["total"] == a["count"] * a["to"], f"{label}: size total {s.attrib}")
            prev_to = a["to"]

        def typed(parent, tag):
            return {e.get("type"): {k: int(v) for k, v in e.attrib.items() if k != "type"} for e in parent.findall(tag)}

        for where, node, total_types in [("heap", heap, {"fast", "rest"}), ("malloc", root, {"fast", "rest", "mmap"})]:
            check(set(typed(node, "total")) == total_types, f"{label}: {where} totals {typed(node, 'total')}")
            check(set(typed(node, "system")) == {"current", "max"}, f"{label}: {where} system")
            check(set(typed(node, "aspace")) == {"total", "mprotect"}, f"{label}: {where} aspace")
        totals = typed(root, "total")
        system = typed(root, "system")
        check(totals["mmap"]["size"] >= LIVE_LARGE, f"{label}: mmap total {totals['mmap']} < live {LIVE_LARGE}")
        check(totals["rest"]["size"] >= sum(int(s.get("total")) for s in sizes), f"{label}: rest < sizes")
        check(0 < system["current"]["size"] <= system["max"]["size"], f"{label}: system {system}")
        print(f"{label}: malloc_info: {len(sizes)} size ranges, totals {totals}")


cases = {k[5:]: v for k, v in globals().items() if k.startswith("case_")}
if CASE not in cases:
    sys.exit(f"unknown case {CASE}; cases: {' '.join(cases)}")
cases[CASE]()
if failures:
    sys.exit(f"{len(failures)} check(s) failed")
print("ok")
