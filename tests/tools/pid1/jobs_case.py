"""jobs_case.py PROGRAM CASE [ARG...]: PROGRAM ARG... (default ARG: --)
running a command, as a job of an interactive bash on a pty (pid1; iolimit
uses the ctrl_z case too).

background: `pid1 -- sleep 2 &` must leave the terminal to the shell (it
    used to hand it to its child, and bash, reading from a terminal it no
    longer had, exited).
ctrl_z: Ctrl-Z on pid1's child must stop pid1 with it, as one job, so
    the shell gets its prompt back; `fg` continues both, with the terminal;
    Ctrl-C then ends the child and pid1 exits 130.
"""
import os
import pty
import select
import shlex
import signal
import sys
import time

pid1, case = sys.argv[1:3]
COMMAND = " ".join(shlex.quote(a) for a in [pid1] + (sys.argv[3:] or ["--"]))
PROMPT = b"PID1TEST> "


def fail(msg, seen=b""):
    tail = seen[-400:].decode(errors="replace")
    print("FAIL: %s: %s\n--- terminal (last 400 bytes) ---\n%s" % (case, msg, tail), file=sys.stderr)
    sys.exit(1)


class Shell:
    def __init__(self):
        env = dict(os.environ, PS1=PROMPT.decode(), TERM="dumb", PID1=pid1)
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execvpe("bash", ["bash", "--norc", "--noprofile", "-i"], env)
        self.seen = b""
        self.expect(PROMPT, "the first prompt")

    def send(self, text):
        os.write(self.fd, text if isinstance(text, bytes) else text.encode())

    def expect(self, what, why, limit=10):
        """Reads until WHAT appears after what was already consumed."""
        end = time.monotonic() + limit
        while what not in self.seen:
            left = end - time.monotonic()
            if left <= 0:
                fail("timed out waiting for %r (%s)" % (what, why), self.seen)
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                continue
            try:
                data = os.read(self.fd, 4096)
            except OSError:
                data = b""
            if not data:
                fail("the shell's terminal closed while waiting for %r (%s): the shell exited" % (what, why),
                     self.seen)
            self.seen += data
        self.seen = self.seen[self.seen.index(what) + len(what):]

    def foreground_group(self):
        with open("/proc/%d/stat" % self.pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[5])  # tpgid

    def close(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


sh = Shell()
try:
    if case == "background":
        sh.send(COMMAND + " sleep 2 &\n")
        sh.expect(PROMPT, "the prompt after starting pid1 in the background")
        time.sleep(0.5)  # the child has started by now (it used to take the terminal here)
        if sh.foreground_group() != sh.pid:
            fail("the terminal's foreground group is %d, not the shell's (%d)" % (sh.foreground_group(), sh.pid),
                 sh.seen)
        sh.send("echo ALIVE-$((40 + 2))\n")
        sh.expect(b"ALIVE-42", "the shell still reading commands")
        sh.send("wait; echo rc=$?\n")
        sh.expect(b"rc=0", "the background pid1's exit status")
    elif case == "ctrl_z":
        sh.send(COMMAND + " sleep 30\n")
        time.sleep(1)  # pid1 and its child are running in the foreground
        sh.send(b"\x1a")  # Ctrl-Z
        sh.expect(b"Stopped", "the shell reporting its job stopped")
        sh.expect(PROMPT, "the prompt back after Ctrl-Z")
        if sh.foreground_group() != sh.pid:
            fail("after Ctrl-Z the terminal belongs to group %d, not the shell" % sh.foreground_group(), sh.seen)
        sh.send("echo ALIVE-$((40 + 2))\n")
        sh.expect(b"ALIVE-42", "the shell reading commands while the job is stopped")
        sh.send("fg\n")
        time.sleep(1)  # pid1 continued and handed the terminal to its child
        if sh.foreground_group() == sh.pid:
            fail("after fg the shell still has the terminal", sh.seen)
        sh.send(b"\x03")  # Ctrl-C: to the child, now in the foreground again
        sh.expect(PROMPT, "the prompt after Ctrl-C")
        sh.send("echo rc=$?\n")
        sh.expect(b"rc=130", "the exit status after the command died of SIGINT")
    else:
        fail("no such case")
    sh.send("exit 0\n")
    _, status = os.waitpid(sh.pid, 0)
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        fail("bash ended with wait status %d" % status, sh.seen)
finally:
    sh.close()
print("ok: jobs " + case)
