#!/usr/bin/env python3
"""Every object linked into douser is hardened, and so is the binary.

The link map (-Wl,-Map) names every object file the linker took, archive
members included. Each one built in this tree must carry, in its
.GCC.command.line section (-frecord-gcc-switches), -fstack-protector-strong
and position-independent code, and its compile command
(compile_commands.json) must have -D_FORTIFY_SOURCE=2 with optimisation.
The binary must be a PIE with full RELRO (BIND_NOW), and import
__stack_chk_fail and fortified (_chk) functions."""
import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

failures = 0


def check(ok, what, detail=""):
    global failures
    print(("PASS: " if ok else "FAIL: ") + what)
    if not ok:
        failures += 1
        for line in str(detail).splitlines()[:20]:
            print("    " + line)


def readelf(*args):
    return subprocess.run(["readelf", "-W", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True).stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--douser", required=True)
    ap.add_argument("--map", required=True)
    ap.add_argument("--build-dir", required=True)
    a = ap.parse_args()
    build = os.path.realpath(a.build_dir)

    # Objects of this tree that went into the link: plain ones and archive members.
    mapped = open(a.map).read()
    objects = set()
    for m in re.finditer(r"^LOAD (\S+\.o)$", mapped, re.M):
        objects.add((m.group(1), None))
    for m in re.finditer(r"^(\S+\.a)\((\S+\.o)\)", mapped, re.M):
        objects.add((m.group(1), m.group(2)))
    ours = sorted(o for o in objects if os.path.realpath(os.path.join(build, o[0])).startswith(build + "/"))
    check(len(ours) >= 2, f"the link map names this tree's objects ({len(ours)})", mapped[:500])

    commands = {}
    for entry in json.load(open(os.path.join(build, "compile_commands.json"))):
        argv = shlex.split(entry["command"])
        if "-o" in argv:
            out = os.path.realpath(os.path.join(entry["directory"], argv[argv.index("-o") + 1]))
            commands[os.path.basename(out)] = (out, argv)

    with tempfile.TemporaryDirectory() as tmp:
        for archive, member in ours:
            path = os.path.join(build, archive)
            name = f"{archive}({member})" if member else archive
            if member:
                subprocess.run(["ar", "x", os.path.realpath(path), member], cwd=tmp, check=True)
                path = os.path.join(tmp, member)
            switches = readelf("-p", ".GCC.command.line", path)
            check("-fstack-protector-strong" in switches and re.search(r"-f(PIE|PIC|pie|pic)\b", switches),
                  f"{name}: built with -fstack-protector-strong and position-independent code", switches)
            cmd = commands.get(os.path.basename(member or archive))
            ok = cmd and "-D_FORTIFY_SOURCE=2" in cmd[1] and any(re.fullmatch(r"-O[1-3s]", x) for x in cmd[1])
            check(ok, f"{name}: compiled with -D_FORTIFY_SOURCE=2 and optimisation",
                  " ".join(cmd[1]) if cmd else "no compile command recorded")

    header = readelf("-h", a.douser)
    dynamic = readelf("-d", a.douser)
    segments = readelf("-l", a.douser)
    symbols = readelf("--dyn-syms", a.douser)
    check("DYN" in header and re.search(r"FLAGS_1.*\bPIE\b", dynamic), "douser is a PIE", dynamic)
    check("GNU_RELRO" in segments and re.search(r"\(FLAGS\).*BIND_NOW", dynamic) and
          re.search(r"FLAGS_1.*\bNOW\b", dynamic), "douser has full RELRO (relro + now)", dynamic)
    check("__stack_chk_fail" in symbols, "douser imports __stack_chk_fail (stack protector in use)")
    chk = sorted(set(re.findall(r"\b(__\w+_chk)\b", symbols)) - {"__stack_chk_fail"})
    check(len(chk) >= 1, f"douser imports fortified functions ({', '.join(chk)})")
    print(f"douser hardening: {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
