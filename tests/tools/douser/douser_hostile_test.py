#!/usr/bin/env python3
"""douser against a hostile but fair caller: each fault of issue 11 and
each class of bad input (closed fds, signals, huge inputs, odd numbers,
tiny limits), run as root in a private mount namespace (see CMakeLists.txt
and douser_harness.py). Each check names what it proves; a check that
cannot run here says why."""
import ctypes
import os
import random
import re
import resource
import signal
import subprocess
import sys
import termios
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import douser_harness as h
from douser_harness import LOG_AUTH, PASSWORD, PW_PROMPT, check, run_plain, run_tty

PW = [(PW_PROMPT, PASSWORD + "\n")]
bad_inputs = []  # (name, handled well) for the summary


def tried(name, ok, detail=""):
    bad_inputs.append((name, bool(ok)))
    return check(ok, name, detail)


def shared_file(e, name):
    """A file in the test directory that any user may write."""
    p = os.path.join(e.tmp, name)
    open(p, "w").close()
    os.chmod(p, 0o666)
    return p


# 1. A process left behind by the command cannot read what the caller types
#    once douser has returned, nor push input into the caller's shell.
def leftover_cannot_read(e):
    stolen = shared_file(e, "stolen")
    code = ("import os,select,signal,time,fcntl,termios\n"
            "try:\n"
            "  for c in b'INJECTED\\n': fcntl.ioctl(0, termios.TIOCSTI, bytes([c]))\n"
            "except OSError: pass\n"
            "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
            "if os.fork(): os._exit(0)\n"
            "time.sleep(1.0)\n"
            "got=b''; end=time.time()+2.5\n"
            "while time.time()<end:\n"
            "  if select.select([0],[],[],0.2)[0]:\n"
            "    try: d=os.read(0,100)\n"
            "    except OSError as x: got+=b'<E%d>'%x.errno; break\n"
            "    if not d: got+=b'<EOF>'; break\n"
            "    got+=d\n"
            f"open('{stolen}','ab').write(got or b'<nothing>')\n")
    shell = (f"{e.du} -u {e.T} python3 -c \"$CODE\"; echo READY; read line; echo \"GOT:[$line]\"; "
             "sleep 3.5")
    r = run_tty(["/bin/sh", "-c", shell], e.caller, cwd=e.tmp,
                env={"PATH": "/usr/bin:/bin", "TERM": "xterm", "CODE": code},
                script=PW + [("READY", "secret-1\nsecret-2\nsecret-3\n")], timeout=40)
    got = open(stolen).read()
    check("GOT:[secret-1]" in r.output, "the caller's shell reads what is typed after douser returns (not input "
          "pushed by the command)", r.output)
    tried("a process left by the command cannot read the caller's typing after douser returns",
          got and "secret" not in got, f"it read: {got!r}")


# 2. Terminal relay: typing, window size, Ctrl-C, exit status, modes restored.
def relay(e):
    def winsize(rows, cols):
        return lambda: termios.tcsetwinsize(0, (rows, cols))
    code = ("import os,signal,sys,termios\n"
            "print('SIZE', *termios.tcgetwinsize(0), flush=True)\n"
            "signal.signal(signal.SIGWINCH, lambda *a: os.write(1, b'RESIZED %d %d\\n' % termios.tcgetwinsize(0)))\n"
            "line=sys.stdin.readline().strip()\n"
            "print('LINE', line[::-1], flush=True)\n"
            "while True: signal.pause()\n")
    r = run_tty([e.du, "python3", "-c", code], e.root, cwd=e.tmp, preexec=winsize(33, 111),
                script=[("SIZE", "hello relay\n"), ("LINE", lambda pid, m: termios.tcsetwinsize(m, (44, 122))),
                        ("RESIZED", "\x03")])
    check("SIZE 33 111" in r.output, "the caller's window size reaches the command", f"exit {r.status}\n{r.output}")
    check("LINE yaler olleh" in r.output, "typed input reaches the command through the new terminal", r.output)
    check("RESIZED 44 122" in r.output, "a window-size change (SIGWINCH) reaches the command", r.output)
    check(r.status == 130, f"Ctrl-C typed reaches the command (exit 130, got {r.status})", r.output)
    check(r.echo and r.canonical, "the caller's terminal modes are restored after the relay")
    r = run_tty([e.du, "sh", "-c", "exit 7"], e.root, cwd=e.tmp)
    check(r.status == 7, "exit status through the relay", r.output)
    # Output larger than the relay's buffers, all of it, in order.
    r = run_tty([e.du, "seq", "1", "60000"], e.root, cwd=e.tmp, timeout=60)
    nums = r.output.split()
    check(r.status == 0 and len(nums) == 60000 and nums[-1] == "60000", "60,000 lines relayed in full",
          f"{len(nums)} lines, last {nums[-1:]}")
    # A command that closes its terminal and keeps running: douser waits
    # without spinning (the pseudo-terminal then reports a hang-up at once).
    ticks = []

    def cpu(pid):
        return sum(map(int, open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[11:13]))

    def measure(pid, m):
        time.sleep(0.3)
        t0 = cpu(pid)
        time.sleep(2)
        ticks.append(cpu(pid) - t0)
    r = run_tty([e.du, "sh", "-c", "echo GO; exec 0<&- 1>&- 2>&-; sleep 3"], e.root, cwd=e.tmp,
                script=[("GO", measure)])
    check(r.status == 0 and ticks and ticks[0] <= 20,
          f"a command that closed its terminal: douser idles ({ticks} CPU ticks in 2 s)", r.output)
    # The command stops: douser shows its output, stops with it, and both go on after SIGCONT.
    state = []

    def cont(pid, m):
        for _ in range(100):
            state[:] = [open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]]
            if state[0] == "T":
                state.append(termios.tcgetattr(m)[3] & termios.ICANON != 0)  # modes while stopped
                break
            time.sleep(0.1)
        os.kill(pid, signal.SIGCONT)
    r = run_tty([e.du, "sh", "-c", "echo STOPPING; kill -STOP $$; echo RESUMED"], e.root, cwd=e.tmp,
                script=[("STOPPING", cont)])
    check(state == ["T", True] and r.status == 0 and "RESUMED" in r.output and r.echo and r.canonical,
          "the command stops: douser stops with it (terminal modes given back) and both continue", r.output)
    # stdin a pipe, stdout the terminal: the pipe goes straight through.
    r = run_tty(["/bin/sh", "-c", f"printf 'piped\\n' | {e.du} cat"], e.root, cwd=e.tmp)
    check(r.status == 0 and "piped" in r.output, "piped stdin goes to the command as it is", r.output)


# 3. Every logged value escaped and cut.
def syslog_escaping(e):
    log = e.log
    forged = "x\ndouser[1]: root ran 'id' as root (uid 0) on forged"
    for what, argv in (("a long option", [e.du, "--" + forged, "id"]), ("a user name", [e.du, "-u", forged, "id"])):
        mark = log.mark()
        r = run_tty(argv, e.caller, cwd=e.tmp)
        raw = [m for m in log.raw_since(mark) if "douser" in m]
        tried(f"newline in {what} cannot forge a syslog line (escaped)",
              r.status in (1, 2) and raw and all("\n" not in m.rstrip("\n") for m in raw) and
              any(re.search(r"x\\(n|x0a)douser\[1\]: root ran", m) for m in raw), raw)
    for what, argv in (("100 KB option", [e.du, "--" + "A" * 100_000, "id"]),
                       ("100 KB user name", [e.du, "-u", "B" * 100_000, "id"]),
                       ("100 KB argument of a granted command", [e.du, "true", "C" * 100_000])):
        mark = log.mark()
        r = run_tty(argv, e.root if "granted" in what else e.caller, cwd=e.tmp)
        raw = [m for m in log.raw_since(mark) if "douser" in m]
        longest = max((len(m) for m in raw), default=0)
        tried(f"{what}: one bounded syslog line ({longest} bytes) and a bounded message ({len(r.output)} bytes)",
              raw and longest <= 2048 and len(r.output) <= 1024, f"exit {r.status} {r.output[:200]}")


# 4. uid 0 in an unprivileged user namespace is not root.
def user_namespace(e):
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "true"], preexec_fn=lambda: h.drop_to(e.caller),
                           stderr=subprocess.PIPE, text=True)
    if probe.returncode != 0:
        print(f"SKIP: unprivileged user namespaces unavailable here ({probe.stderr.strip()})")
        return
    mark = e.log.mark()
    r = run_tty(["/usr/bin/unshare", "--user", "--map-root-user", e.du, "id", "-u"], e.caller, cwd=e.tmp)
    lines = e.log.since(mark)
    tried("inside `unshare --user --map-root-user`: refused, not run as 'root'",
          r.status == 1 and "user namespace" in r.output and not re.search(r"^0\s*$", r.output, re.M), r.output)
    check(any("refused" in t and "user namespace" in t for _, _, t, _ in lines) and
          not any(" ran " in t for _, _, t, _ in lines), "user namespace: logged as refused, no 'ran' line", lines)


# 5. The caller's working directory, entered as the target, or a clear failure.
def working_directory(e):
    private = os.path.join(e.tmp, "private")
    os.mkdir(private, 0o700)
    os.chown(private, e.caller.pw_uid, e.caller.pw_gid)
    for d, text in ((private, "CALLER-SCRIPT"), (e.target.pw_dir, "TARGET-HOME-SCRIPT")):
        p = os.path.join(d, "script")
        with open(p, "w") as f:
            f.write(f"#!/bin/sh\necho {text}\n")
        os.chmod(p, 0o755)
    r = run_tty([e.du, "-u", e.T, "./script"], e.caller, cwd=private, script=PW)
    tried("cwd the target cannot enter: fails clearly, runs nothing (not the target's ./script)",
          r.status == 1 and "cannot run in" in r.output and "SCRIPT" not in r.output, r.output)
    r = run_tty([e.du, "-u", e.T, "pwd"], e.caller, cwd=e.tmp, script=PW)
    check(r.status == 0 and r.output.strip().endswith(e.tmp), "a cwd the target can enter is kept", r.output)


# 6. Accounts without a login shell, locked and empty passwords.
def accounts(e):
    for shell in ("/usr/sbin/nologin", "/bin/false"):
        u = h.add_user(f"dun{len(shell)}{e.sfx}", PASSWORD, shell=shell)
        r = run_tty([e.du, "-u", u.pw_name, "id"], e.caller, cwd=e.tmp, script=PW, timeout=15)
        tried(f"account with shell {shell}: refused (as su)",
              r.status == 1 and "not available" in r.output and "uid=" not in r.output, r.output)
    usable = run_tty([e.du, "-u", e.T, "id"], e.caller, cwd=e.tmp, script=[(PW_PROMPT, "\x04")])
    for acct, fact in ((e.locked, "account locked"), (e.empty, "empty password")):
        mark = e.log.mark()
        r = run_tty([e.du, "-u", acct.pw_name, "id"], e.caller, cwd=e.tmp,
                    script=[(PW_PROMPT, "anything\n"), (PW_PROMPT, "\x04")])
        before_prompt = r.output.split("assword")[0]
        tried(f"{fact}: nothing told before the prompt, 'Authentication failure' after it (as su)",
              r.prompts and before_prompt == usable.output.split("assword")[0] and
              "Authentication failure" in r.output and "lock" not in r.output and "empty" not in r.output, r.output)
        check(any(fact in t for _, _, t, _ in e.log.since(mark)), f"{fact}: the log (root only) says so")


# 7. pam_keyinit: the caller's session keyring does not reach the command.
def keyring(e):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(250, 0, -3, 0) < 0 and ctypes.get_errno() in (1, 38):
        print("SKIP: keyctl not allowed here")
        return
    check("pam_keyinit.so force revoke" in e.pam_text, "shipped PAM stack has pam_keyinit force revoke")
    # A target with a uid of its own: the kernel's per-uid key quota (200
    # keys, revoked ones counted until collected minutes later) would be
    # spent by earlier runs under a reused uid, and pam_keyinit is optional.
    target = h.add_user(f"duk{e.sfx}", PASSWORD, uid=random.randrange(200_000, 2_000_000_000))

    def caller_keyring():
        lc = ctypes.CDLL(None, use_errno=True)
        lc.syscall(250, 1, b"douser-caller-ring")  # KEYCTL_JOIN_SESSION_KEYRING
        lc.syscall(248, b"user", b"douser-secret", b"s3cret", 6, -3)  # add_key to the session keyring
    code = ("import ctypes\n"
            "lc=ctypes.CDLL(None,use_errno=True)\n"
            "buf=ctypes.create_string_buffer(256)\n"
            "lc.syscall(250,6,-3,buf,256)\n"  # KEYCTL_DESCRIBE session keyring
            "print('RING', buf.value.decode())\n"
            "print('SECRET', lc.syscall(250,10,-3,b'user',b'douser-secret',0))\n")  # KEYCTL_SEARCH
    mark = e.log.mark()
    r = run_tty([e.du, "-u", target.pw_name, "python3", "-c", code], e.caller, cwd=e.tmp, script=PW,
                preexec=caller_keyring)
    tried("the caller's session keyring and its keys do not reach the command (pam_keyinit)",
          "RING" in r.output and "douser-caller-ring" not in r.output and "SECRET -1" in r.output,
          r.output + "\n" + "\n".join(e.log.raw_since(mark)))


# 8. A failed attempt is logged before the failure delay.
def log_before_delay(e):
    mark = e.log.mark()
    typed = []

    def wrong(pid, m):
        typed.append(time.time())
        os.write(m, b"wrong\n")
    r = run_tty([e.du, "-u", e.T, "true"], e.caller, cwd=e.tmp, script=[(PW_PROMPT, wrong), (PW_PROMPT, "\x04")])
    # douser's own line (pam_unix logs one of its own under douser's name, before the delay too)
    lines = [l for l in e.log.since(mark) if l[2].startswith("authentication failure: ")]
    delay = r.prompts[1] - typed[0] if len(r.prompts) > 1 and typed else 0
    tried("a failed attempt is logged before the 2 s delay",
          lines and typed and lines[0][3] - typed[0] < 1.0 and delay >= 1.8,
          f"logged after {lines[0][3] - typed[0]:.2f} s, next prompt after {delay:.2f} s" if lines else "no line")


# 9. After pam_authenticate, PAM_USER is read back and looked up again.
def pam_user(e, module):
    other = h.add_user(f"duo{e.sfx}", PASSWORD)
    for name, want in ((other.pw_name, "runs"), (f"gone{e.sfx}", "refused")):
        h.install_pam(f"auth required {module} user={name}\naccount required pam_permit.so\n"
                      "session required pam_permit.so\n")
        r = run_tty([e.du, "-u", e.T, "id", "-un"], e.caller, cwd=e.tmp)
        if want == "runs":
            tried("PAM changes the user: the command runs as the user PAM authenticated",
                  r.status == 0 and r.output.strip().splitlines()[-1:] == [other.pw_name], r.output)
        else:
            tried("PAM names an unknown user: refused", r.status == 1 and "unknown user" in r.output, r.output)
    h.install_pam(e.pam_text)


# 10. Interrupting the password prompt: keys and every signal that can end it.
def prompt_interrupted(e):
    for key, name, status in (("\x03", "Ctrl-C", 128 + signal.SIGINT), ("\x1c", "Ctrl-\\", 128 + signal.SIGQUIT),
                              ("\x1a", "Ctrl-Z", 1), ("\x04", "Ctrl-D (end of input)", 1)):
        at = []
        r = run_tty([e.du, "-u", e.T, "id"], e.caller, cwd=e.tmp,
                    script=[(PW_PROMPT, lambda pid, m, k=key: (at.append(time.time()), os.write(m, k.encode())))])
        took = r.elapsed - (at[0] - (time.time() - r.elapsed)) if at else 99
        tried(f"{name} at the prompt: exits at once (exit {status}), echo restored",
              r.status == status and "interrupted" in r.output and r.echo and r.canonical and "uid=" not in r.output,
              f"exit {r.status}, echo {r.echo}\n{r.output}")
    catchable = [s for s in range(1, 32) if s not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD, signal.SIGCONT,
                                                      signal.SIGURG, signal.SIGWINCH)]
    catchable += [signal.SIGRTMIN + 2, signal.SIGRTMAX]
    bad = []
    for sig in catchable:
        sent = []
        r = run_tty([e.du, "-u", e.T, "id"], e.caller, cwd=e.tmp, timeout=15,
                    script=[(PW_PROMPT, lambda pid, m, s=sig: (sent.append(time.time()), os.kill(pid, s)))])
        stop = sig in (signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)
        want = 1 if stop else 128 + sig
        if not (r.status == want and r.echo and r.canonical and r.elapsed < 10 and "uid=" not in r.output):
            bad.append(f"signal {sig}: exit {r.status} (want {want}), echo {r.echo}: {r.output[-120:]!r}")
    tried(f"each of {len(catchable)} catchable signals at the prompt: douser ends at once, echo restored, "
          "dies of that signal (or exit 1 for stop signals)", not bad, "\n".join(bad))


# 11. Signals sent to douser while the command runs: passed on, terminal restored, nothing left.
def signals_during_relay(e):
    bad = []
    sigs = [s for s in range(1, 32) if s not in (signal.SIGKILL, signal.SIGSTOP)] + [signal.SIGRTMIN + 2]
    for sig in sigs:
        marker = f"30.{sig:02d}7"
        def send(pid, m, s=sig):
            time.sleep(0.1)
            os.kill(pid, s)
            time.sleep(0.4)
            try:  # whatever the command did with it, end the command now
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        r = run_tty([e.du, "sh", "-c", f"echo STARTED; exec sleep {marker}"], e.root, cwd=e.tmp, timeout=15,
                    script=[("STARTED", send)])
        alive = "douser did not end" if r.status == 137 else ""
        left = subprocess.run(["pgrep", "-f", f"sleep {marker}"], stdout=subprocess.PIPE, text=True).stdout.split()
        for p in left:
            os.kill(int(p), signal.SIGKILL)
        default_ignored = sig in (signal.SIGCHLD, signal.SIGCONT, signal.SIGURG, signal.SIGWINCH, signal.SIGTSTP,
                                  signal.SIGTTIN, signal.SIGTTOU)
        want = 143 if default_ignored else 128 + sig
        if r.status != want:
            bad.append(f"signal {sig}: exit {r.status}, want {want} {alive}")
        if not (r.echo and r.canonical) or left:
            bad.append(f"signal {sig}: terminal modes {r.lflag:#x}, left {left}")
    tried(f"each of {len(sigs)} signals sent to douser during the command: passed on, terminal restored",
          not bad, "\n".join(bad))


# 12. Started with fds 0, 1 or 2 closed.
def closed_fds(e):
    where = shared_file(e, "fds")
    for fds in ((0,), (1,), (2,), (0, 1, 2)):
        def close_them(fds=fds):
            for fd in fds:
                os.close(fd)
        mark = e.log.mark()
        r = run_tty([e.du, "sh", "-c", f"ls -l /proc/self/fd/ > {where} 2>&1"], e.root, cwd=e.tmp, preexec=close_them)
        listing = open(where).read()
        targets = re.findall(r"\d+ -> (\S+)", listing)
        ok = r.status == 0 and all(t.startswith("/dev/") or t.startswith("/proc/") or t == where for t in targets[:3])
        tried(f"started with fd {'/'.join(map(str, fds))} closed: runs; the command's fds 0-2 are terminals or "
              "/dev/null", ok and not any("socket" in t or "pipe" in t for t in targets[:3]), listing)
        r = run_tty([e.du, "-u", f"nosuch{e.sfx}", "id"], e.caller, cwd=e.tmp, preexec=close_them)
        tried(f"fd {'/'.join(map(str, fds))} closed, a refusal: exit 1 and still logged",
              r.status == 1 and any("unknown user" in t for _, _, t, _ in e.log.since(mark)), r.output)


# 13. Huge inputs: linear time, bounded memory.
def letters(i):
    s = ""
    while True:
        s = chr(ord("A") + i % 26) + s
        i //= 26
        if not i:
            return s


def huge_inputs(e):
    def run_env(n):
        env = {"PATH": "/usr/bin:/bin", "TERM": "xterm"}
        for i in range(n // 2):
            env[f"LC_X{letters(i)}"] = "C"  # letters only: names of the LC_ form
            env[f"V{i}"] = "x"
        start = time.time()
        p = subprocess.run(["/usr/bin/time", "-f", "MAXRSS %M", e.du, "env"], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
        rss = int(re.search(r"MAXRSS (\d+)", p.stderr).group(1))
        return time.time() - start, rss, p.stdout.count("\n"), p.returncode
    t0, rss0, _, _ = run_env(0)
    t1, rss1, lines1, rc1 = run_env(60_000)
    print(f"MEASURE: 60,000 environment variables: {t1:.2f} s, max RSS {rss1} KiB (none: {t0:.2f} s, {rss0} KiB)")
    # (before: all 30,000 LC_ variables reached the command, in 21 s: a quadratic duplicate check)
    tried("60,000 environment variables (30,000 LC_*): under 5 s, under 64 MiB, none reach the command",
          rc1 == 0 and t1 < 5 and rss1 < 64 * 1024 and lines1 < 20, f"{t1:.2f} s, {rss1} KiB, {lines1} lines")
    arg = "D" * 100_000
    start = time.time()
    p = subprocess.run([e.du, "printf", "%s", arg, arg, arg], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       timeout=60)
    tried("three 100 KB arguments pass untouched", p.returncode == 0 and len(p.stdout) == 300_000 and
          time.time() - start < 5)


# 14. Numbers in odd forms: -u takes names only.
def odd_numbers(e):
    for form in ("0", "00", "0x0", "-0", "1e3", "-1", "#-1", "#0", "4294967295", "4294967296",
                 "99999999999999999999", " 0", "+0"):
        r = run_tty([e.du, "-u", form, "id"], e.caller, cwd=e.tmp, timeout=10)
        tried(f"-u {form!r}: refused as an unknown user, no prompt, nothing run",
              r.status == 1 and "unknown user" in r.output and "assword" not in r.output and "uid=" not in r.output,
              r.output)


# 15. ulimit -n / -v at their smallest workable values, and below.
def tiny_limits(e, min_files, min_kib):
    def lim(res, v):
        return lambda: resource.setrlimit(res, (v, v))
    for res, name, least in ((resource.RLIMIT_NOFILE, "ulimit -n", min_files),
                             (resource.RLIMIT_AS, "ulimit -v", min_kib * 1024)):
        r = run_tty([e.du, "-u", e.T, "id", "-un"], e.caller, cwd=e.tmp, script=PW, preexec=lim(res, least),
                    timeout=20)
        tried(f"{name} {least if res == resource.RLIMIT_NOFILE else min_kib}: the right password works",
              r.status == 0 and r.output.strip().endswith(e.T), r.output)
        r = run_tty([e.du, "sh", "-c", f"ulimit {'-n' if res == resource.RLIMIT_NOFILE else '-v'}"], e.root,
                    cwd=e.tmp, preexec=lim(res, least))
        want = str(least if res == resource.RLIMIT_NOFILE else min_kib)
        check(r.status == 0 and r.output.strip() == want, f"{name}: the command gets the caller's limit back", r.output)
        for below in (least - 1, 8 if res == resource.RLIMIT_NOFILE else 6 << 20):
            r = run_tty([e.du, "-u", e.T, "id"], e.caller, cwd=e.tmp, preexec=lim(res, below), timeout=15)
            tried(f"{name} below the minimum ({below}): a clear error, no prompt",
                  r.status == 1 and ("are allowed (" + name) in r.output and "Password:" not in r.output, r.output)


def main():
    e = h.setup(extra_args=("--pam-module", "--process-header", "--only"))
    only = set((e.args.only or "").split(","))
    run = lambda fn, *a: (not e.args.only or fn.__name__ in only) and fn(e, *a)
    header = open(e.args.process_header).read()
    min_files = eval(re.search(r"kMinOpenFiles = ([\d *]+);", header).group(1))
    min_kib = eval(re.search(r"kMinAddressSpaceKiB = ([\d *]+);", header).group(1))
    run(leftover_cannot_read)
    run(relay)
    run(syslog_escaping)
    run(user_namespace)
    run(working_directory)
    run(accounts)
    run(keyring)
    run(log_before_delay)
    run(pam_user, os.path.abspath(e.args.pam_module))
    run(prompt_interrupted)
    run(signals_during_relay)
    run(closed_fds)
    run(huge_inputs)
    run(odd_numbers)
    run(tiny_limits, min_files, min_kib)
    good = sum(ok for _, ok in bad_inputs)
    print(f"BAD INPUTS: {good} of {len(bad_inputs)} handled well")
    print(f"douser hostile: {h.failures} failure(s)")
    return 1 if h.failures else 0


if __name__ == "__main__":
    h.main_wrapper(main)
