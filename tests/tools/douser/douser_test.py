#!/usr/bin/env python3
"""Integration tests of douser's ordinary behaviour (hostile inputs and the
faults of issue 11 are in douser_hostile_test.py), run as root inside a
private mount namespace; the set-up (users, douser installed set-user-ID,
syslog capture, the pty driver) is in douser_harness.py."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import douser_harness as h
from douser_harness import LOG_AUTH, PASSWORD, PW_PROMPT, check, run_plain, run_tty


def main():
    e = h.setup()
    du, T, caller, root, tmp, log = e.du, e.T, e.caller, e.root, e.tmp, e.log

    # --help needs neither a terminal nor privileges.
    r = run_plain([du, "--help"], caller)
    check(r.status == 0 and "SYNOPSIS" in r.output, "--help is a man page (exit 0)", r.output[:200])

    # 1. Right password: id runs as the target, groups included.
    expected_id = h.sh("id", T).stdout.strip()
    mark = log.mark()
    r = run_tty([du, "-u", T, "id"], caller, script=[(PW_PROMPT, PASSWORD + "\n")], cwd=tmp)
    check(r.status == 0, "right password: exit 0", r.output)
    check(expected_id in r.output, f"right password: `id` prints the target's ids ({expected_id})", r.output)
    check(len(r.prompts) == 1, "right password: one prompt on the terminal", r.output)
    check(PASSWORD not in r.output, "password is not echoed")
    check(r.echo, "terminal echo restored after the prompt")
    lines = log.since(mark)
    check(any(f == LOG_AUTH and f"{caller.pw_name} ran 'id' as {T}" in t for f, s, t, _ in lines),
          "success logged with facility auth", lines)

    # 2. Three wrong passwords: refused, about 2 s after each, every try logged.
    mark = log.mark()
    r = run_tty([du, "-u", T, "id"], caller, cwd=tmp,
                script=[(PW_PROMPT, "wrong1\n"), (PW_PROMPT, "wrong2\n"), (PW_PROMPT, "wrong3\n"),
                        (r"incorrect password attempts", "")])
    check(r.status == 1, "three wrong passwords: exit 1", r.output)
    check(r.output.count("Authentication failure") == 3, "each wrong password reported", r.output)
    check("3 incorrect password attempts" in r.output, "final refusal message", r.output)
    check("uid=" not in r.output, "command did not run", r.output)
    gaps = [b - a for a, b in zip(r.prompts, r.prompts[1:])]
    check(len(gaps) == 3 and all(1.8 <= g <= 3.5 for g in gaps),
          f"about 2 s delay after each failure ({', '.join(f'{g:.2f} s' for g in gaps)})")
    lines = log.since(mark)
    fails_logged = [t for f, s, t, _ in lines if f == LOG_AUTH and "authentication failure" in t and T in t]
    check(len(fails_logged) == 3, "each failed try logged (auth facility)", lines)
    check(any("refused" in t and "incorrect password" in t for f, s, t, _ in lines), "refusal logged", lines)

    # 3. Wrong, then right.
    r = run_tty([du, "-u", T, "id", "-un"], caller, cwd=tmp,
                script=[(PW_PROMPT, "nope\n"), (PW_PROMPT, PASSWORD + "\n")])
    check(r.status == 0 and r.output.strip().endswith(T), "wrong then right password: runs", r.output)

    # 4. Clean environment: poisoned LD_PRELOAD, PATH, IFS ... never arrive.
    evil = os.path.join(tmp, "evil")
    os.mkdir(evil, 0o755)
    for name in ("env", "id", "sh", "ls"):
        p = os.path.join(evil, name)
        with open(p, "w") as f:
            f.write("#!/bin/sh\necho PWNED\n")
        os.chmod(p, 0o755)
    poisoned = {
        "PATH": f"{evil}:/usr/bin:/bin", "LD_PRELOAD": os.path.join(evil, "libevil.so"),
        "LD_LIBRARY_PATH": evil, "IFS": " x", "BASH_ENV": os.path.join(evil, "env"),
        "ENV": os.path.join(evil, "env"), "BASH_FUNC_id%%": "() { echo PWNED; }",
        "PYTHONPATH": evil, "LANG": "C.UTF-8", "LC_ALL": "../../evil", "TERM": "xterm",
        "TZ": "Europe/Paris", "HOME": evil, "SHELL": os.path.join(evil, "sh"), "USER": "mallory",
        "LC_EVIL": "C",
    }
    r = run_tty([du, "-u", T, "env"], caller, env=poisoned, cwd=tmp, script=[(PW_PROMPT, PASSWORD + "\n")])
    out = r.output
    check(r.status == 0 and "PWNED" not in out, "caller's PATH not used to find the command", out)
    envlines = set(l.strip() for l in out.splitlines())
    for bad in ("LD_PRELOAD", "LD_LIBRARY_PATH", "IFS=", "BASH_ENV", "ENV=", "BASH_FUNC", "PYTHONPATH",
                "LC_ALL", "LC_EVIL", "mallory", evil):
        check(not any(bad in l for l in envlines if not l.startswith("douser")), f"{bad} does not reach the command", out)
    want = {f"HOME={e.target.pw_dir}", f"USER={T}", f"LOGNAME={T}", f"SHELL={e.target.pw_shell}",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
            "TERM=xterm", "TZ=Europe/Paris", f"DOUSER_USER={caller.pw_name}"}
    check(want <= envlines, "HOME, USER, LOGNAME, SHELL of the target, safe PATH, allowed TERM/LANG/TZ",
          sorted(want - envlines))
    check("cannot be preloaded" not in out, "LD_PRELOAD ignored by the loader too", out)

    # 5. Inherited file descriptors above 2 are closed.
    def open_fd7():
        fd = os.open("/etc/hostname", os.O_RDONLY)
        os.dup2(fd, 7)
        os.set_inheritable(7, True)
    r = run_tty([du, "-u", T, "ls", "/proc/self/fd"], caller, preexec=open_fd7, cwd=tmp,
                script=[(PW_PROMPT, PASSWORD + "\n")])
    nums = set(int(x) for x in re.findall(r"\b(\d+)\b", r.output.split("\n", 1)[-1]))
    check(r.status == 0 and nums and nums <= {0, 1, 2, 3}, f"only fds 0-2 reach the command (ls saw {sorted(nums)})",
          r.output)

    # 6. The command's terminal: a session of its own on a new pseudo-terminal
    #    when the caller has a terminal, none when it has no tty fd.
    probe = ["python3", "-c",
             "import fcntl,termios,os\n"
             "st=open('/proc/self/stat').read().rsplit(')',1)[1].split()\n"
             "print('SID', st[3]==str(os.getpid()), 'TTYNR', st[4], 'TTY', os.ttyname(0) if os.isatty(0) else '-')\n"]
    r = run_tty([du, "-u", T] + probe, caller, cwd=tmp, script=[(PW_PROMPT, PASSWORD + "\n")])
    m = re.search(r"SID (\w+) TTYNR (\d+) TTY (\S+)", r.output)
    check(m and m.group(1) == "True" and m.group(2) != "0" and m.group(3).startswith("/dev/pts/"),
          "command is a session leader on a terminal of its own", r.output)
    outfile = os.path.join(tmp, "probe.out")
    open(outfile, "w").close()
    os.chmod(outfile, 0o666)  # the caller cannot create files in tmp

    def redirect():  # controlling terminal kept, but no standard fd is a tty
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        out = os.open(outfile, os.O_WRONLY | os.O_TRUNC)
        os.dup2(out, 1)
        os.dup2(out, 2)
    r = run_tty([du, "-u", T] + probe, caller, cwd=tmp, script=[(PW_PROMPT, PASSWORD + "\n")], preexec=redirect)
    got = open(outfile).read()
    check(r.status == 0 and "SID True TTYNR 0 TTY -" in got,
          "stdio redirected but a controlling tty: a new session without a terminal", f"exit {r.status}\n{got}{r.output}")

    # 7. Exit status passed back.
    r = run_tty([du, "-u", T, "sh", "-c", "exit 42"], caller, cwd=tmp, script=[(PW_PROMPT, PASSWORD + "\n")])
    check(r.status == 42, f"exit status 42 passed back (got {r.status})", r.output)
    r = run_tty([du, "sh", "-c", "kill -TERM $$"], root, cwd=tmp)
    check(r.status == 143, f"killed by SIGTERM gives 143 (got {r.status})", r.output)
    r = run_tty([du, "id", "-u"], root, cwd=tmp)
    check(r.status == 0 and r.output.strip() == "0" and not r.prompts, "root caller, default target root, no prompt",
          r.output)

    # 8. Refusals, each logged.
    def refused(what, res, want_status, text, logtext):
        lines = log.since(0)
        check(res.status == want_status and text in res.output,
              f"{what}: exit {want_status}, says '{text}'", f"exit {res.status}\n{res.output}")
        texts = logtext if isinstance(logtext, tuple) else (logtext,)
        check(any(f == LOG_AUTH and all(x in t for x in texts) for f, s, t, _ in lines), f"{what}: logged", lines[-3:])

    refused("unknown user", run_tty([du, "-u", f"nosuch{e.sfx}", "id"], caller, cwd=tmp), 1, "unknown user",
            (f"refused: {caller.pw_name} as nosuch{e.sfx} on", "unknown user"))
    for bad in ("", "../etc", "-x", "a:b"):
        r = run_tty([du, "-u", bad, "id"], caller, cwd=tmp)
        check(r.status == 1 and "unknown user" in r.output and "assword" not in r.output,
              f"user name {bad!r} refused without a prompt", r.output)
    for acct in (e.locked, e.empty):
        r = run_tty([du, "-u", acct.pw_name, "id", "-un"], root, cwd=tmp)
        check(r.status == 0 and r.output.strip() == acct.pw_name, f"{acct.pw_name}: root may use it", r.output)
    refused("no set-user-ID bit", run_tty([e.nosuid, "-u", T, "id"], caller, cwd=tmp), 1,
            "not installed set-user-ID root", "not set-user-ID root")
    refused("empty command", run_tty([du, "-u", T], caller, cwd=tmp), 2, "no command given", "usage error")
    refused("empty command (--)", run_tty([du, "--"], caller, cwd=tmp), 2, "no command given", "usage error")
    refused("no terminal", run_plain([du, "-u", T, "id"], caller), 1, "a terminal is required", "no terminal")
    r = run_tty([du, "no-such-command-xyz"], root, cwd=tmp)
    check(r.status == 127 and "command not found" in r.output, "command not found: 127", r.output)
    r = run_tty([du, "/etc"], root, cwd=tmp)
    check(r.status == 126, "command not executable: 126", r.output)

    print(f"douser: {h.failures} failure(s)")
    return 1 if h.failures else 0


if __name__ == "__main__":
    h.main_wrapper(main)
