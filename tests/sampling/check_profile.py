#!/usr/bin/env python3
"""Profiles profile_sites.c and reads the profile with the real readers.

  check_profile.py --program PROG [--preload LIB] [--mode exit|api|signal]
                   [--rate BYTES] [--mib N] [--tolerance POINTS]

The program's live heap is held 60/30/10 % by parse_records, build_index and
load_images. Both `google-pprof --text` and `go tool pprof -top` must name
the three functions with flat shares within --tolerance points of those, and
the profile's total must estimate the live heap within 15 %.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

EXPECTED = {"parse_records": 60.0, "build_index": 30.0, "load_images": 10.0}


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def run(cmd, env=None, timeout=120):
    r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    return r.returncode, r.stdout


def shares_google_pprof(prog, profile, env):
    # "    39.0  61.2%  61.2%     39.0  61.2% parse_records"
    rc, out = run(["google-pprof", "--text", prog, profile], env=env)
    if rc != 0:
        fail("google-pprof failed:\n" + out)
    rows = re.findall(r"^\s*[\d.]+\s+([\d.]+)%\s+[\d.]+%\s+[\d.]+\s+[\d.]+%\s+(\S+)\s*$", out, re.M)
    return {name: float(pct) for pct, name in rows}, out


def shares_go_pprof(prog, profile, env):
    # "      39MB 61.24% 61.24%       39MB 61.24%  parse_records"
    rc, out = run(["go", "tool", "pprof", "-top", prog, profile], env=env)
    if rc != 0:
        fail("go tool pprof failed:\n" + out)
    rows = re.findall(r"^\s*[\d.]+\w*\s+([\d.]+)%\s+[\d.]+%\s+[\d.]+\w*\s+[\d.]+%\s+(\S+)\s*$", out, re.M)
    return {name: float(pct) for pct, name in rows}, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--program", required=True)
    ap.add_argument("--preload")
    ap.add_argument("--mode", default="exit", choices=["exit", "api", "signal"])
    ap.add_argument("--rate", type=int, default=16384)
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--tolerance", type=float, default=4.0)
    args = ap.parse_args()
    for tool in ("google-pprof", "go"):
        if shutil.which(tool) is None:
            fail(tool + " is missing: run scripts/deps.sh (google-perftools, golang-go)")

    tmp = tempfile.mkdtemp(prefix="spanalloc-profile-")
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPANALLOC_") and k != "LD_PRELOAD"}
        env["SPANALLOC_PROFILE"] = os.path.join(tmp, "prof.%p.heap")
        env["SPANALLOC_PROFILE_RATE"] = str(args.rate)
        cmd = [args.program, str(args.mib)]
        if args.mode == "api":
            cmd += ["api", os.path.join(tmp, "api.heap")]
        if args.mode == "signal":
            env["SPANALLOC_PROFILE_SIGNAL"] = "USR2"
            cmd += ["signal"]
        if args.preload:
            env["LD_PRELOAD"] = args.preload
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            fail("%s exited with %d:\n%s" % (cmd, proc.returncode, err))
        pid = proc.pid
        at_exit = os.path.join(tmp, "prof.%d.heap" % pid)
        if not os.path.exists(at_exit):
            fail("no profile written at exit (%s); files: %s" % (at_exit, os.listdir(tmp)))
        profile = {"exit": at_exit, "api": os.path.join(tmp, "api.heap"), "signal": at_exit + ".1"}[args.mode]
        if not os.path.exists(profile):
            fail("no profile at %s; files: %s" % (profile, os.listdir(tmp)))
        text = open(profile).read()
        m = re.match(r"heap profile: +(\d+): +(\d+) \[ +0: +0\] @ heapprofile\n", text)
        if not m:
            fail("bad header: " + text.splitlines()[0])
        if "\nMAPPED_LIBRARIES:\n" not in text:
            fail("no MAPPED_LIBRARIES section")
        total = int(m.group(2)) / (1 << 20)
        # The live heap: what the three sites hold (the churn frees all of it).
        if abs(total - args.mib) > 0.15 * args.mib:
            fail("profile estimates %.1f MiB live, the program holds %d MiB" % (total, args.mib))

        renv = dict(env)
        renv.pop("LD_PRELOAD", None)
        for k in [k for k in renv if k.startswith("SPANALLOC_")]:
            renv.pop(k)
        renv["PPROF_TMPDIR"] = tmp
        renv.setdefault("HOME", tmp)
        for reader, fn in (("google-pprof --text", shares_google_pprof), ("go tool pprof -top", shares_go_pprof)):
            shares, out = fn(args.program, profile, renv)
            for name, want in EXPECTED.items():
                got = shares.get(name)
                if got is None:
                    fail("%s does not name %s:\n%s" % (reader, name, out))
                if abs(got - want) > args.tolerance:
                    fail("%s gives %s %.1f %%, expected %.0f +- %.0f:\n%s" % (reader, name, got, want, args.tolerance, out))
            print("%s: %s (total %.1f MiB)" % (reader, ", ".join("%s %.1f%%" % (n, shares[n]) for n in EXPECTED), total))
        print("ok")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
