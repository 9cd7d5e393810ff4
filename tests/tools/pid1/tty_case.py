"""tty_case.py PID1 PROBE DIR: pid1 on a terminal (a pty).

The child must be the terminal's foreground process group, so Ctrl-Z and
Ctrl-C from the terminal reach it (and not pid1, which is not stopped), and
SIGTERM to pid1 still ends everything with the child's status.
"""
import os
import pty
import signal
import sys
import time

pid1, probe, work = sys.argv[1:4]
ready = os.path.join(work, "tty-ready")
log = os.path.join(work, "tty-log")


def fail(msg):
    print("FAIL: tty: " + msg, file=sys.stderr)
    sys.exit(1)


def wait_for(pred, what):
    end = time.monotonic() + 10
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.01)
    fail("timed out waiting for " + what)


def recorded():
    try:
        with open(log) as f:
            return f.read().split()
    except FileNotFoundError:
        return []


def stat_fields(pid):
    """state, pgrp, tpgid of pid from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return rest[0], int(rest[2]), int(rest[5])


pid, master = pty.fork()
if pid == 0:
    os.execv(pid1, [pid1, "--", probe, "record", ready, log])

try:
    wait_for(lambda: os.path.exists(ready), "the child")
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        child = int(f.read().split()[0])
    state, pgrp, tpgid = stat_fields(pid)
    if tpgid != child:
        fail("foreground group is %d, not the child's (%d)" % (tpgid, child))
    if pgrp == tpgid:
        fail("pid1 is in the foreground group")
    os.write(master, b"\x1a")  # Ctrl-Z: SIGTSTP to the foreground group
    wait_for(lambda: str(signal.SIGTSTP.value) in recorded(), "SIGTSTP at the child")
    os.write(master, b"\x03")  # Ctrl-C: SIGINT
    wait_for(lambda: str(signal.SIGINT.value) in recorded(), "SIGINT at the child")
    if stat_fields(pid)[0] == "T":
        fail("pid1 was stopped")
    os.kill(pid, signal.SIGTERM)
    _, status = os.waitpid(pid, 0)
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        fail("pid1 ended with wait status %d, want exit 0" % status)
    if recorded().count(str(signal.SIGINT.value)) != 1:
        fail("SIGINT arrived %d times" % recorded().count(str(signal.SIGINT.value)))
finally:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
print("ok: tty")
