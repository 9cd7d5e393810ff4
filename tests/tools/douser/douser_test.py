#!/usr/bin/env python3
"""Integration tests of douser, run as root inside a private mount namespace
(`unshare -m --propagation private`, see CMakeLists.txt).

Creates throw-away users (a target with a known password and an extra
group, an unprivileged caller, a locked and an empty-password account),
installs douser set-user-ID root in a temporary directory, installs
/etc/pam.d/douser if needed, captures syslog by bind-mounting a socket of
its own over /dev/log (in this mount namespace only), drives the password
prompt through a pseudo-terminal, and removes everything again, also when a
check fails.
"""
import argparse
import atexit
import fcntl
import grp
import os
import pty
import pwd
import random
import re
import select
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import termios
import threading
import time

PASSWORD = "Corr3ct-Horse-" + "".join(random.choice(string.ascii_letters) for _ in range(6))
failures = 0
cleanups = []  # run in reverse order at exit


def check(ok, what, detail=""):
    global failures
    if ok:
        print(f"PASS: {what}")
    else:
        failures += 1
        print(f"FAIL: {what}")
        if detail:
            for line in str(detail).splitlines()[:12]:
                print(f"    {line}")


def cleanup():
    while cleanups:
        fn = cleanups.pop()
        try:
            fn()
        except Exception as e:  # keep cleaning up
            print(f"cleanup error: {e}")


def sh(*argv, **kw):
    return subprocess.run(argv, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


# --------------------------------------------------------------- syslog --
class SyslogCapture:
    """A datagram socket bound over /dev/log in this mount namespace."""

    def __init__(self, tmp):
        self.path = os.path.join(tmp, "log")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)
        self.messages = []
        self.lock = threading.Lock()
        self.placeholder = False
        if not os.path.exists("/dev/log"):
            # A mount point is needed; the empty file is removed at the end.
            open("/dev/log", "w").close()
            self.placeholder = True
            cleanups.append(self._remove_placeholder)
        sh("mount", "--bind", self.path, "/dev/log")
        cleanups.append(lambda: subprocess.run(["umount", "/dev/log"], stderr=subprocess.DEVNULL))
        threading.Thread(target=self._run, daemon=True).start()

    def _remove_placeholder(self):
        if os.path.isfile("/dev/log") and os.path.getsize("/dev/log") == 0:
            os.unlink("/dev/log")

    def _run(self):
        while True:
            data = self.sock.recv(8192)
            with self.lock:
                self.messages.append(data.decode("utf-8", "replace"))

    def douser_lines(self):
        """(facility, severity, text) of every douser line so far."""
        time.sleep(0.1)
        out = []
        with self.lock:
            for m in self.messages:
                mm = re.match(r"<(\d+)>.*?douser\[\d+\]: (.*)", m, re.S)
                if mm:
                    pri = int(mm.group(1))
                    out.append((pri >> 3, pri & 7, mm.group(2).rstrip("\n\0")))
        return out

    def mark(self):
        with self.lock:
            return len(self.messages)

    def since(self, mark):
        lines = self.douser_lines()
        with self.lock:
            newer = self.messages[mark:]
        return [l for l in lines if any(l[2] in m for m in newer)]


LOG_AUTH = 4


# ---------------------------------------------------------------- users --
def add_user(name, password=None, groups=None):
    sh("useradd", "-m", "-s", "/bin/sh", name)
    cleanups.append(lambda: subprocess.run(["userdel", "-r", "-f", name], stderr=subprocess.DEVNULL,
                                           stdout=subprocess.DEVNULL))
    if password is not None:
        sh("chpasswd", input=f"{name}:{password}\n")
    if groups:
        sh("usermod", "-a", "-G", ",".join(groups), name)
    return pwd.getpwnam(name)


# ------------------------------------------------------------------ pty --
class Result:
    def __init__(self, status, output, prompts):
        self.status, self.output, self.prompts = status, output, prompts


def run_tty(argv, user, env=None, script=(), extra_fd=False, cwd=None, timeout=30, check_echo=None,
            stdout_file=None):
    """Runs argv as `user` (a pwd entry) with a pty as controlling terminal.
    `script`: (regex, text) pairs: wait for regex in the output, then type text.
    Returns Result(exit status, output, [times each regex matched])."""
    env = env if env is not None else {"PATH": "/usr/bin:/bin", "TERM": "xterm"}
    pid, master = pty.fork()
    if pid == 0:
        try:
            if cwd:
                os.chdir(cwd)
            if stdout_file:
                # Controlling terminal kept, but no standard fd is a tty.
                null = os.open("/dev/null", os.O_RDONLY)
                os.dup2(null, 0)
                out = os.open(stdout_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
                os.dup2(out, 1)
                os.dup2(out, 2)
            if extra_fd:
                fd = os.open("/etc/hostname", os.O_RDONLY)
                os.dup2(fd, 7)
                os.set_inheritable(7, True)
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(99)
    buf = b""
    prompts = []
    steps = list(script)
    deadline = time.time() + timeout
    pos = 0
    done = 0
    while True:
        if steps:
            m = re.compile(steps[0][0].encode()).search(buf, pos)
            if m:
                prompts.append(time.time())
                pos = m.end()
                os.write(master, steps[0][1].encode())
                steps.pop(0)
                continue
        left = deadline - time.time()
        if left <= 0:
            os.kill(pid, signal.SIGKILL)
            break
        r, _, _ = select.select([master], [], [], min(left, 0.5))
        if r:
            try:
                data = os.read(master, 4096)
            except OSError:
                data = b""
            if data:
                buf += data
                continue
            # EIO: no slave fd is open right now. That is the end only once
            # the child has exited (it may reopen /dev/tty in between).
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
    if check_echo is not None:
        check_echo.append(bool(termios.tcgetattr(master)[3] & termios.ECHO))
    os.close(master)
    if not done:
        _, st = os.waitpid(pid, 0)
    status = os.waitstatus_to_exitcode(st)
    if status < 0:
        status = 128 - status
    return Result(status, buf.decode("utf-8", "replace"), prompts)


def run_plain(argv, user, env=None):
    """No terminal at all: own session, stdin /dev/null."""
    def drop():
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=env or {"PATH": "/usr/bin:/bin"}, preexec_fn=drop, start_new_session=True,
                       timeout=30)
    return Result(p.returncode, p.stdout.decode("utf-8", "replace"), [])


def pick_suid_dir():
    for base in ("/tmp", "/var/tmp", os.getcwd()):
        st = os.statvfs(base)
        if not st.f_flag & os.ST_NOSUID:
            return base
    raise SystemExit("FAIL: no directory without nosuid to install douser in")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--douser", required=True)
    ap.add_argument("--pam-file", required=True)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("FAIL: must run as root")
        return 1
    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))

    tmp = tempfile.mkdtemp(prefix="douser-test.", dir=pick_suid_dir())
    os.chmod(tmp, 0o755)
    cleanups.append(lambda: shutil.rmtree(tmp, ignore_errors=True))

    # PAM service file: ours, restored afterwards.
    pam_path = "/etc/pam.d/douser"
    ours = open(args.pam_file).read()
    if os.path.exists(pam_path):
        before = open(pam_path).read()
        if before != ours:
            cleanups.append(lambda: open(pam_path, "w").write(before))
            open(pam_path, "w").write(ours)
    else:
        open(pam_path, "w").write(ours)
        cleanups.append(lambda: os.unlink(pam_path))

    log = SyslogCapture(tmp)

    # Users and a group, with unique names.
    sfx = f"{os.getpid() % 100000}{random.choice(string.ascii_lowercase)}"
    gname = f"dug{sfx}"
    sh("groupadd", gname)
    cleanups.append(lambda: subprocess.run(["groupdel", gname], stderr=subprocess.DEVNULL))
    target = add_user(f"dut{sfx}", PASSWORD, [gname])
    caller = add_user(f"duc{sfx}")
    locked = add_user(f"dul{sfx}", PASSWORD)
    sh("usermod", "-L", locked.pw_name)
    empty = add_user(f"due{sfx}", PASSWORD)
    sh("passwd", "-d", empty.pw_name)
    root = pwd.getpwnam("root")
    T = target.pw_name

    # douser installed set-user-ID root, and a copy without the bit.
    bindir = os.path.join(tmp, "bin")
    os.mkdir(bindir, 0o755)
    du = os.path.join(bindir, "douser")
    shutil.copy(args.douser, du)
    os.chown(du, 0, 0)
    os.chmod(du, 0o4755)
    nosuid = os.path.join(bindir, "douser-nosuid")
    shutil.copy(args.douser, nosuid)
    os.chmod(nosuid, 0o755)

    pw_prompt = r"[Pp]assword: ?"

    # --help needs neither a terminal nor privileges.
    r = run_plain([du, "--help"], caller)
    check(r.status == 0 and "SYNOPSIS" in r.output, "--help is a man page (exit 0)", r.output[:200])

    # 1. Right password: id runs as the target, groups included.
    expected_id = sh("id", T).stdout.strip()
    mark = log.mark()
    echo_state = []
    r = run_tty([du, "-u", T, "id"], caller, script=[(pw_prompt, PASSWORD + "\n")], cwd=tmp,
                check_echo=echo_state)
    check(r.status == 0, "right password: exit 0", r.output)
    check(expected_id in r.output, f"right password: `id` prints the target's ids ({expected_id})", r.output)
    check(len(r.prompts) == 1, "right password: one prompt on the terminal", r.output)
    check(PASSWORD not in r.output, "password is not echoed")
    check(echo_state == [True], "terminal echo restored after the prompt")
    lines = log.since(mark)
    check(any(f == LOG_AUTH and f"{caller.pw_name} ran 'id' as {T}" in t for f, s, t in lines),
          "success logged with facility auth", lines)

    # 2. Three wrong passwords: refused, about 2 s after each, every try logged.
    mark = log.mark()
    r = run_tty([du, "-u", T, "id"], caller, cwd=tmp,
                script=[(pw_prompt, "wrong1\n"), (pw_prompt, "wrong2\n"), (pw_prompt, "wrong3\n"),
                        (r"incorrect password attempts", "")])
    check(r.status == 1, "three wrong passwords: exit 1", r.output)
    check(r.output.count("Authentication failure") == 3, "each wrong password reported", r.output)
    check("3 incorrect password attempts" in r.output, "final refusal message", r.output)
    check("uid=" not in r.output, "command did not run", r.output)
    gaps = [b - a for a, b in zip(r.prompts, r.prompts[1:])]
    check(len(gaps) == 3 and all(1.8 <= g <= 3.5 for g in gaps),
          f"about 2 s delay after each failure ({', '.join(f'{g:.2f} s' for g in gaps)})")
    lines = log.since(mark)
    fails_logged = [t for f, s, t in lines if f == LOG_AUTH and "authentication failure" in t and T in t]
    check(len(fails_logged) == 3, "each failed try logged (auth facility)", lines)
    check(any("refused" in t and "incorrect password" in t for f, s, t in lines), "refusal logged", lines)

    # 3. Wrong, then right.
    r = run_tty([du, "-u", T, "id", "-un"], caller, cwd=tmp,
                script=[(pw_prompt, "nope\n"), (pw_prompt, PASSWORD + "\n")])
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
    }
    r = run_tty([du, "-u", T, "env"], caller, env=poisoned, cwd=tmp, script=[(pw_prompt, PASSWORD + "\n")])
    out = r.output
    check(r.status == 0 and "PWNED" not in out, "caller's PATH not used to find the command", out)
    envlines = set(l.strip() for l in out.splitlines())
    for bad in ("LD_PRELOAD", "LD_LIBRARY_PATH", "IFS=", "BASH_ENV", "ENV=", "BASH_FUNC", "PYTHONPATH",
                "LC_ALL", "mallory", evil):
        check(not any(bad in l for l in envlines if not l.startswith("douser")), f"{bad} does not reach the command", out)
    want = {f"HOME={target.pw_dir}", f"USER={T}", f"LOGNAME={T}", f"SHELL={target.pw_shell}",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
            "TERM=xterm", "TZ=Europe/Paris", f"DOUSER_USER={caller.pw_name}"}
    check(want <= envlines, "HOME, USER, LOGNAME, SHELL of the target, safe PATH, allowed TERM/LANG/TZ",
          sorted(want - envlines))
    check("cannot be preloaded" not in out, "LD_PRELOAD ignored by the loader too", out)

    # 5. Inherited file descriptors above 2 are closed.
    r = run_tty([du, "-u", T, "ls", "/proc/self/fd"], caller, extra_fd=True, cwd=tmp,
                script=[(pw_prompt, PASSWORD + "\n")])
    fds = set(re.findall(r"^\s*([\d\s]+)\s*$", r.output.split("\n", 1)[-1], re.M))
    nums = set(int(x) for chunk in fds for x in chunk.split())
    check(r.status == 0 and nums and nums <= {0, 1, 2, 3}, f"only fds 0-2 reach the command (ls saw {sorted(nums)})",
          r.output)

    # 6. TIOCSTI: with legacy_tiocsti=1 the command runs in a new session with
    #    no controlling terminal, and cannot push keystrokes into the caller's tty.
    knob = "/proc/sys/dev/tty/legacy_tiocsti"
    probe = ["python3", "-c",
             "import fcntl,termios,os\n"
             "st=open('/proc/self/stat').read().rsplit(')',1)[1].split()\n"
             "print('SID', st[3]==str(os.getpid()), 'TTYNR', st[4])\n"
             "try:\n fcntl.ioctl(0, termios.TIOCSTI, b'#'); print('TIOCSTI-OK')\n"
             "except OSError as e: print('TIOCSTI-ERRNO', e.errno)\n"]
    if os.path.exists(knob):
        orig = open(knob).read().strip()
        cleanups.append(lambda: open(knob, "w").write(orig))
        open(knob, "w").write("1")
        r = run_tty([du, "-u", T] + probe, caller, cwd=tmp, script=[(pw_prompt, PASSWORD + "\n")])
        check("SID True TTYNR 0" in r.output, "legacy_tiocsti=1: command is a session leader without a terminal", r.output)
        check("TIOCSTI-ERRNO 1" in r.output, "legacy_tiocsti=1: TIOCSTI into the caller's terminal fails (EPERM)", r.output)
        outfile = os.path.join(tmp, "probe.out")
        open(outfile, "w").close()
        os.chmod(outfile, 0o666)  # the caller cannot create files in tmp
        r = run_tty([du, "-u", T] + probe, caller, cwd=tmp, script=[(pw_prompt, PASSWORD + "\n")],
                    stdout_file=outfile)
        got = open(outfile).read() if os.path.exists(outfile) else ""
        check(r.status == 0 and "SID True TTYNR 0" in got,
              "legacy_tiocsti=1, stdio redirected but a controlling tty: still a new session",
              f"exit {r.status}\n{got}{r.output}")
        open(knob, "w").write("0")
        r = run_tty([du, "-u", T] + probe, caller, cwd=tmp, script=[(pw_prompt, PASSWORD + "\n")])
        check("SID False" in r.output and "TTYNR 0" not in r.output,
              "legacy_tiocsti=0: command keeps the caller's terminal session", r.output)
        open(knob, "w").write(orig)
        check(open(knob).read().strip() == orig, f"dev.tty.legacy_tiocsti restored to {orig}")
    else:
        r = run_tty([du, "-u", T] + probe, caller, cwd=tmp, script=[(pw_prompt, PASSWORD + "\n")])
        check("SID True TTYNR 0" in r.output, "pre-6.2 kernel: command runs in a new session", r.output)

    # 7. Exit status passed back.
    r = run_tty([du, "-u", T, "sh", "-c", "exit 42"], caller, cwd=tmp, script=[(pw_prompt, PASSWORD + "\n")])
    check(r.status == 42, f"exit status 42 passed back (got {r.status})", r.output)
    r = run_tty([du, "sh", "-c", "kill -TERM $$"], root, cwd=tmp)
    check(r.status == 143, f"killed by SIGTERM gives 143 (got {r.status})", r.output)
    r = run_tty([du, "id", "-u"], root, cwd=tmp)
    check(r.status == 0 and r.output.strip() == "0" and not r.prompts, "root caller, default target root, no prompt",
          r.output)

    # 8. Refusals, each logged.
    def refused(what, res, want_status, text, logtext):
        mark_lines = log.douser_lines()
        check(res.status == want_status and text in res.output,
              f"{what}: exit {want_status}, says '{text}'", f"exit {res.status}\n{res.output}")
        texts = logtext if isinstance(logtext, tuple) else (logtext,)
        check(any(f == LOG_AUTH and all(x in t for x in texts) for f, s, t in mark_lines), f"{what}: logged",
              mark_lines[-3:])

    refused("unknown user", run_tty([du, "-u", f"nosuch{sfx}", "id"], caller, cwd=tmp), 1, "unknown user",
            (f"refused: {caller.pw_name} as nosuch{sfx} on", "unknown user"))
    for bad in ("", "../etc", "-x", "a:b"):
        r = run_tty([du, "-u", bad, "id"], caller, cwd=tmp)
        check(r.status == 1 and "unknown user" in r.output and "assword" not in r.output,
              f"user name {bad!r} refused without a prompt", r.output)
    refused("locked account", run_tty([du, "-u", locked.pw_name, "id"], caller, cwd=tmp), 1, "is locked",
            "locked account")
    r = run_tty([du, "-u", locked.pw_name, "id", "-un"], root, cwd=tmp)
    check(r.status == 0 and r.output.strip() == locked.pw_name, "locked account: root may use it", r.output)
    refused("empty password", run_tty([du, "-u", empty.pw_name, "id"], caller, cwd=tmp), 1, "empty password",
            "empty password")
    r = run_tty([du, "-u", empty.pw_name, "id", "-un"], root, cwd=tmp)
    check(r.status == 0 and r.output.strip() == empty.pw_name, "empty password: root may use it", r.output)
    refused("no set-user-ID bit", run_tty([nosuid, "-u", T, "id"], caller, cwd=tmp), 1,
            "not installed set-user-ID root", "not set-user-ID root")
    refused("empty command", run_tty([du, "-u", T], caller, cwd=tmp), 2, "no command given", "usage error")
    refused("empty command (--)", run_tty([du, "--"], caller, cwd=tmp), 2, "no command given", "usage error")
    refused("no terminal", run_plain([du, "-u", T, "id"], caller), 1, "a terminal is required", "no terminal")
    r = run_tty([du, "-u", T, "id"], caller, cwd=tmp, script=[(pw_prompt, "\x03")], check_echo=(echo := []))
    check(r.status == 1 and "interrupted" in r.output, "Ctrl-C at the prompt: refused", r.output)
    check(echo == [True], "Ctrl-C at the prompt: echo restored")
    r = run_tty([du, "no-such-command-xyz"], root, cwd=tmp)
    check(r.status == 127 and "command not found" in r.output, "command not found: 127", r.output)
    r = run_tty([du, "/etc"], root, cwd=tmp)
    check(r.status == 126, "command not executable: 126", r.output)

    print(f"douser: {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        rc = main()
    finally:
        cleanup()
    sys.exit(rc)
