"""Shared harness of the douser integration tests (douser_test.py,
douser_hostile_test.py), run as root inside a private mount namespace
(`unshare -m --propagation private`, see CMakeLists.txt).

setup() creates throw-away users (a target with a known password and an
extra group, an unprivileged caller, a locked and an empty-password
account, one whose shell is nologin), installs douser set-user-ID root in a
temporary directory, installs /etc/pam.d/douser and captures syslog by
binding a copy of /etc/pam.d and a socket of its own over /etc/pam.d and
/dev/log (in this mount namespace only, so concurrent runs do not meet), and registers the removal of everything, also when a check fails.
run_tty() drives douser through a pseudo-terminal.
"""
import argparse
import atexit
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
PW_PROMPT = r"[Pp]assword: ?"
LOG_AUTH = 4
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
                print(f"    {line[:300]}")
    sys.stdout.flush()
    return ok


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
    """A datagram socket bound over /dev/log in this mount namespace. Keeps
    (time received, raw message)."""

    def __init__(self, tmp):
        self.path = os.path.join(tmp, "log")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)
        self.messages = []
        self.lock = threading.Lock()
        if not os.path.exists("/dev/log"):
            # A mount point is needed; the empty file is removed at the end.
            open("/dev/log", "w").close()
            cleanups.append(self._remove_placeholder)
        sh("mount", "--bind", self.path, "/dev/log")
        cleanups.append(lambda: subprocess.run(["umount", "/dev/log"], stderr=subprocess.DEVNULL))
        threading.Thread(target=self._run, daemon=True).start()

    @staticmethod
    def _remove_placeholder():
        if os.path.isfile("/dev/log") and os.path.getsize("/dev/log") == 0:
            os.unlink("/dev/log")

    def _run(self):
        while True:
            data = self.sock.recv(1 << 17)
            with self.lock:
                self.messages.append((time.time(), data.decode("utf-8", "replace")))

    def mark(self):
        with self.lock:
            return len(self.messages)

    def since(self, mark=0, settle=0.1):
        """(facility, severity, text, time) of every douser line after mark."""
        time.sleep(settle)
        out = []
        with self.lock:
            newer = self.messages[mark:]
        for t, m in newer:
            mm = re.match(r"<(\d+)>.*?douser\[\d+\]: (.*)", m, re.S)
            if mm:
                pri = int(mm.group(1))
                out.append((pri >> 3, pri & 7, mm.group(2).rstrip("\n\0"), t))
        return out

    def raw_since(self, mark=0):
        time.sleep(0.1)
        with self.lock:
            return [m for _, m in self.messages[mark:]]


# ---------------------------------------------------------------- users --
def add_user(name, password=None, groups=None, shell="/bin/sh", uid=None):
    sh("useradd", "-m", "-s", shell, *(["-u", str(uid)] if uid else []), name)
    cleanups.append(lambda: subprocess.run(["userdel", "-r", "-f", name], stderr=subprocess.DEVNULL,
                                           stdout=subprocess.DEVNULL))
    if password is not None:
        sh("chpasswd", input=f"{name}:{password}\n")
    if groups:
        sh("usermod", "-a", "-G", ",".join(groups), name)
    return pwd.getpwnam(name)


def drop_to(user):
    os.setgroups([])
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)


# ------------------------------------------------------------------ pty --
class Result:
    def __init__(self, status, output, prompts, lflag, elapsed):
        self.status, self.output, self.prompts, self.lflag, self.elapsed = status, output, prompts, lflag, elapsed

    @property
    def echo(self):
        return bool(self.lflag & termios.ECHO)

    @property
    def canonical(self):
        return bool(self.lflag & (termios.ICANON | termios.ISIG) == termios.ICANON | termios.ISIG)


def run_tty(argv, user, env=None, script=(), cwd=None, timeout=30, preexec=None):
    """Runs argv as `user` (a pwd entry) with a new pty as controlling
    terminal (argv is its session leader). `script`: (regex, action) pairs:
    wait for regex in the output, then type action (a str) or call
    action(pid, master). `preexec` runs in the child before exec, after the
    user change. Returns Result(exit status (128+N for signal N), output,
    [time each regex matched], final local modes of the terminal, seconds)."""
    env = env if env is not None else {"PATH": "/usr/bin:/bin", "TERM": "xterm"}
    start = time.time()
    pid, master = pty.fork()
    if pid == 0:
        try:
            if cwd:
                os.chdir(cwd)
            drop_to(user)
            if preexec:
                preexec()
            os.execve(argv[0], argv, env)
        finally:
            os._exit(99)
    buf = b""
    prompts = []
    steps = list(script)
    deadline = time.time() + timeout
    pos = 0
    done = 0
    st = 0
    while True:
        if steps:
            m = re.compile(steps[0][0].encode()).search(buf, pos)
            if m:
                prompts.append(time.time())
                pos = m.end()
                action = steps.pop(0)[1]
                if callable(action):
                    action(pid, master)
                else:
                    os.write(master, action.encode())
                continue
        left = deadline - time.time()
        if left <= 0:
            os.kill(pid, signal.SIGKILL)
            buf += b"\n[harness: timed out, killed]"
            break
        r, _, _ = select.select([master], [], [], min(left, 0.2))
        if r:
            try:
                data = os.read(master, 65536)
            except OSError:
                data = b""
            if data:
                buf += data
                continue
        # EIO: no slave fd is open right now. That is the end only once the
        # child has exited (it may reopen /dev/tty in between).
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            try:  # what it wrote just before exiting
                while select.select([master], [], [], 0)[0]:
                    data = os.read(master, 65536)
                    if not data:
                        break
                    buf += data
            except OSError:
                pass
            break
    lflag = termios.tcgetattr(master)[3]
    os.close(master)
    if not done:
        _, st = os.waitpid(pid, 0)
    status = os.waitstatus_to_exitcode(st)
    if status < 0:
        status = 128 - status
    return Result(status, buf.decode("utf-8", "replace"), prompts, lflag, time.time() - start)


def run_plain(argv, user, env=None, stdin=subprocess.DEVNULL, preexec=None, timeout=30):
    """No terminal at all: own session, stdin /dev/null."""
    def pre():
        drop_to(user)
        if preexec:
            preexec()
    start = time.time()
    p = subprocess.run(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=env or {"PATH": "/usr/bin:/bin"}, preexec_fn=pre, start_new_session=True,
                       timeout=timeout)
    status = p.returncode if p.returncode >= 0 else 128 - p.returncode
    return Result(status, p.stdout.decode("utf-8", "replace"), [], 0, time.time() - start)


def pick_suid_dir():
    for base in ("/tmp", "/var/tmp", os.getcwd()):
        st = os.statvfs(base)
        if not st.f_flag & os.ST_NOSUID:
            return base
    raise SystemExit("FAIL: no directory without nosuid to install douser in")


class Env:
    pass


def private_pam_dir(tmp):
    """A copy of /etc/pam.d bound over it in this mount namespace only: the
    tests' PAM files are seen by nobody else (other test runs on the same
    machine keep theirs)."""
    try:  # the parent (ctest, or a shell) is outside unshare's namespace
        shared = os.readlink("/proc/self/ns/mnt") == os.readlink(f"/proc/{os.getppid()}/ns/mnt")
    except OSError:
        shared = False
    if shared:
        print("FAIL: run me in a private mount namespace (unshare -m --propagation private)")
        sys.exit(1)
    copy = os.path.join(tmp, "pam.d")
    shutil.copytree("/etc/pam.d", copy, symlinks=True)
    sh("mount", "--bind", copy, "/etc/pam.d")
    cleanups.append(lambda: subprocess.run(["umount", "/etc/pam.d"], stderr=subprocess.DEVNULL))


def install_pam(text):
    """Writes /etc/pam.d/douser (the private copy, see private_pam_dir)."""
    with open("/etc/pam.d/douser", "w") as f:
        f.write(text)


def setup(extra_args=()):
    ap = argparse.ArgumentParser()
    ap.add_argument("--douser", required=True)
    ap.add_argument("--pam-file", required=True)
    for a in extra_args:
        ap.add_argument(a)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("FAIL: must run as root")
        sys.exit(1)
    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    e = Env()
    e.args = args
    e.tmp = tempfile.mkdtemp(prefix="douser-test.", dir=pick_suid_dir())
    os.chmod(e.tmp, 0o755)
    cleanups.append(lambda: shutil.rmtree(e.tmp, ignore_errors=True))
    e.pam_text = open(args.pam_file).read()
    private_pam_dir(e.tmp)
    install_pam(e.pam_text)
    e.log = SyslogCapture(e.tmp)

    # Users and a group, with unique names.
    e.sfx = f"{os.getpid() % 100000}{random.choice(string.ascii_lowercase)}"
    e.gname = f"dug{e.sfx}"
    sh("groupadd", e.gname)
    cleanups.append(lambda: subprocess.run(["groupdel", e.gname], stderr=subprocess.DEVNULL))
    e.target = add_user(f"dut{e.sfx}", PASSWORD, [e.gname])
    e.caller = add_user(f"duc{e.sfx}")
    e.locked = add_user(f"dul{e.sfx}", PASSWORD)
    sh("usermod", "-L", e.locked.pw_name)
    e.empty = add_user(f"due{e.sfx}", PASSWORD)
    sh("passwd", "-d", e.empty.pw_name)
    e.root = pwd.getpwnam("root")
    e.T = e.target.pw_name

    # douser installed set-user-ID root, and a copy without the bit.
    bindir = os.path.join(e.tmp, "bin")
    os.mkdir(bindir, 0o755)
    e.du = os.path.join(bindir, "douser")
    shutil.copy(args.douser, e.du)
    os.chown(e.du, 0, 0)
    os.chmod(e.du, 0o4755)
    e.nosuid = os.path.join(bindir, "douser-nosuid")
    shutil.copy(args.douser, e.nosuid)
    os.chmod(e.nosuid, 0o755)
    return e


def main_wrapper(main):
    try:
        rc = main()
    finally:
        cleanup()
    sys.exit(rc)
