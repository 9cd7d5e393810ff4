#!/usr/bin/env bash
# cases.sh CASE: one pid1 test case (registered one by one in CTest).
# PID-1 cases run pid1 as init of a new PID namespace (root, unshare);
# Debian's tini runs the same scenario where both should agree.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

case_help() {
  "$PID1" --help >"$W/help"
  local s
  for s in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" EXAMPLES; do
    grep -q "^$s\$" "$W/help" || die "--help lacks section $s"
  done
  grep -q -- '--grace SECONDS' "$W/help" || die "--help lacks --grace"
  "$PID1" --version | grep -q '^pid1 ' || die "--version"
}

case_usage() {
  expect_status 2 "$PID1"
  grep -q "pid1: missing COMMAND" "$W/err" || die "no-command message: $(cat "$W/err")"
  grep -q "Try 'pid1 --help'" "$W/err" || die "no --help hint"
  expect_status 2 "$PID1" --
  expect_status 2 "$PID1" --grace x -- true
  grep -q "invalid --grace value 'x'" "$W/err" || die "grace message: $(cat "$W/err")"
  expect_status 2 "$PID1" --grace -1 -- true
  expect_status 2 "$PID1" --nope true
  # Options stop at the command; a command may look like an option.
  printf '#!/bin/sh\necho dash-h "$@"\n' >"$W/-h"
  chmod +x "$W/-h"
  PATH="$W:$PATH" expect_status 0 "$PID1" -- -h -g
  grep -qx "dash-h -g" "$W/out" || die "command named -h: $(cat "$W/out")"
  expect_status 0 "$PID1" sh -c 'exit 0' -g
}

case_exit_codes() {
  need_tini
  local n
  for n in 0 1 2 3 42 126 127 128 200 254 255; do
    expect_status "$n" "$PID1" -- sh -c "exit $n"
    expect_status "$n" tini -s -- sh -c "exit $n"
  done
  need_root_pidns
  for n in 0 1 77 255; do
    expect_status "$n" unshare --pid --fork --mount-proc "$PID1" -- sh -c "exit $n"
  done
}

case_signal_death() {
  need_tini
  local sig n
  for sig in TERM KILL USR1 SEGV INT HUP; do
    n=$(kill -l "$sig")
    expect_status $((128 + n)) "$PID1" -- sh -c "kill -$sig \$\$"
    expect_status $((128 + n)) tini -s -- sh -c "kill -$sig \$\$"
  done
}

case_exec_errors() {
  need_tini
  expect_status 127 "$PID1" -- "$W/nope"
  grep -qx "pid1: $W/nope: command not found" "$W/err" || die "message: $(cat "$W/err")"
  expect_status 127 tini -s -- "$W/nope"
  expect_status 127 "$PID1" -- no-such-command-anywhere
  grep -qx "pid1: no-such-command-anywhere: command not found" "$W/err" || die "message: $(cat "$W/err")"
  printf '#!/bin/sh\n' >"$W/plain"
  chmod 644 "$W/plain"
  expect_status 126 "$PID1" -- "$W/plain"
  grep -qx "pid1: $W/plain: Permission denied" "$W/err" || die "message: $(cat "$W/err")"
  expect_status 126 tini -s -- "$W/plain"
  expect_status 126 "$PID1" -- "$W"
  expect_status 126 tini -s -- "$W"
  printf '#!/no/such/interpreter\n' >"$W/badint"
  chmod 755 "$W/badint"
  expect_status 127 "$PID1" -- "$W/badint"
  expect_status 127 tini -s -- "$W/badint"
  # ENOTDIR (a path component is a file): 127, the toolkit's rule for all tools.
  expect_status 127 "$PID1" -- "$W/plain/x"
  grep -qx "pid1: $W/plain/x: Not a directory" "$W/err" || die "message: $(cat "$W/err")"
  # A name with a newline cannot forge a second line.
  expect_status 127 "$PID1" -- "$(printf 'no\nsuch')"
  [[ $(wc -l <"$W/err") == 1 ]] || die "newline in the command name reached stderr: $(cat "$W/err")"
}

# SIGTERM sent to PID 1 (from the parent namespace) reaches a child that
# handles it; same with tini.
case_forward_term_pid1() {
  need_root_pidns
  need_tini
  local init rc
  for init in "$PID1" "$(command -v tini)"; do
    rm -f "$W/ready"
    in_pidns "$init" -- "$PROBE" catch "$W/ready" TERM
    wait_file "$W/ready"
    kill -TERM "$NS_INIT"
    wait_job "$NS_JOB"; rc=$RC
    [[ $rc == 15 ]] || die "$init: exit $rc, want 15 (child caught SIGTERM); stderr: $(cat "$W/err")"
    grep -qx "caught 15" "$W/out" || die "$init: child did not catch SIGTERM"
  done
}

# From inside the namespace too (where PID 1 only gets handled signals).
case_forward_inside() {
  need_root_pidns
  need_tini
  expect_status 15 unshare --pid --fork --mount-proc "$PID1" -- "$PROBE" kill1 TERM
  expect_status 15 unshare --pid --fork --mount-proc tini -- "$PROBE" kill1 TERM
  # Without an init that takes signals, kill(1, SIGTERM) from inside is lost.
  expect_status 99 unshare --pid --fork --mount-proc sh -c "\"$PROBE\" kill1 TERM 1; exit \$?"
}

# Every catchable signal: the child gets it (exit status = its number);
# tini agrees, except for SIGTTIN/SIGTTOU, which tini ignores for itself
# and so never forwards (pid1 forwards them: they cannot stop it anyway).
case_forward_all() {
  need_root_pidns
  need_tini
  local sig n
  for sig in HUP INT QUIT USR1 USR2 WINCH CONT TSTP TTIN TTOU PIPE ALRM URG RTMIN RTMIN+3 RTMAX; do
    expect_status_sig "$sig"
  done
}

expect_status_sig() {
  local sig=$1 n
  case $sig in
    RTMIN) n=$(kill -l RTMIN) ;;
    RTMIN+3) n=$(($(kill -l RTMIN) + 3)) ;;
    RTMAX) n=$(kill -l RTMAX) ;;
    *) n=$(kill -l "$sig") ;;
  esac
  expect_status "$n" unshare --pid --fork --mount-proc "$PID1" -- "$PROBE" kill1 "$sig"
  [[ $sig == TTIN || $sig == TTOU ]] && return
  expect_status "$n" unshare --pid --fork --mount-proc tini -- "$PROBE" kill1 "$sig"
}

# Not PID 1: signals sent to pid1 reach the child all the same.
case_forward_subreaper() {
  local sig n rc
  for sig in TERM INT HUP QUIT USR2 WINCH; do
    n=$(kill -l "$sig")
    rm -f "$W/ready"
    in_background "$PID1" -- "$PROBE" catch "$W/ready" "$sig"
    wait_file "$W/ready"
    kill "-$sig" "$JOB"
    wait_job "$JOB"; rc=$RC
    [[ $rc == "$n" ]] || die "$sig: exit $rc, want $n; stderr: $(cat "$W/err")"
  done
}

# A child that ignores SIGTERM is killed when the grace period is over
# (not before); pid1 exits 128 + SIGKILL.
case_grace_kill() {
  need_root_pidns
  in_pidns "$PID1" --grace 0.5 -- "$PROBE" ignore "$W/ready" TERM
  wait_file "$W/ready"
  local t0 t1 rc
  t0=$(date +%s%N)
  kill -TERM "$NS_INIT"
  wait_job "$NS_JOB"; rc=$RC
  t1=$(date +%s%N)
  [[ $rc == 137 ]] || die "exit $rc, want 137; stderr: $(cat "$W/err")"
  grep -q "grace period over: sending SIGKILL" "$W/err" || die "no escalation message: $(cat "$W/err")"
  (((t1 - t0) >= 500000000)) || die "killed after $(((t1 - t0) / 1000000)) ms, before the 0.5 s grace period"
}

# A second SIGTERM within the grace period escalates at once.
case_second_term() {
  need_root_pidns
  in_pidns "$PID1" -v --grace 600 -- "$PROBE" ignore "$W/ready" TERM
  wait_file "$W/ready"
  kill -TERM "$NS_INIT"
  wait_grep "forwarded SIGTERM" "$W/err"  # the first one was taken
  kill -TERM "$NS_INIT"
  local rc
  wait_job "$NS_JOB"; rc=$RC
  [[ $rc == 137 ]] || die "exit $rc, want 137; stderr: $(cat "$W/err")"
  grep -q "second SIGTERM within the grace period" "$W/err" || die "no message: $(cat "$W/err")"
}

# --grace 0: SIGTERM is only forwarded, never escalated.
case_grace_off() {
  in_background "$PID1" -v --grace 0 -- "$PROBE" ignore "$W/ready" TERM
  wait_file "$W/ready"
  kill -TERM "$JOB"
  wait_count 1 "forwarded SIGTERM" "$W/err"
  kill -TERM "$JOB"
  wait_count 2 "forwarded SIGTERM" "$W/err"
  sleep 0.3
  kill -0 "$JOB" 2>/dev/null || die "pid1 exited although --grace 0"
  grep -q SIGKILL "$W/err" && die "escalated although --grace 0"
  local child; child=$(cat "/proc/$JOB/task/$JOB/children")
  kill -KILL $child
  local rc
  wait_job "$JOB"; rc=$RC
  [[ $rc == 137 ]] || die "exit $rc, want 137"
}

# Default (no --grace): SIGTERM is only forwarded, as tini and dumb-init do;
# no SIGKILL, not even on a second SIGTERM (the orchestrator owns the grace
# period; the old 10 s default cut it short).
case_grace_default() {
  need_root_pidns
  in_pidns "$PID1" -v -- "$PROBE" ignore "$W/ready" TERM
  wait_file "$W/ready"
  kill -TERM "$NS_INIT"
  wait_count 1 "forwarded SIGTERM" "$W/err"
  kill -TERM "$NS_INIT"
  wait_count 2 "forwarded SIGTERM" "$W/err"
  sleep 0.5
  kill -0 "$NS_JOB" 2>/dev/null || die "pid1 ended after two SIGTERMs without --grace: $(cat "$W/err")"
  grep -q SIGKILL "$W/err" && die "escalated without --grace: $(cat "$W/err")"
  kill -KILL "$NS_INIT"
  wait_job "$NS_JOB"
}

# --grace takes a plain decimal number of seconds: no sign, blank, hex,
# exponent, inf/nan, more than 9 decimals or more than 1e9 s.
case_grace_numbers() {
  local v
  for v in 0x10 0x1p3 1e3 1E1 -1 -0 +5 " 5" "5 " inf nan infinity "" . 1.2.3 5s 1,5 \
           1.0000000001 1000000001 1000000000.5 99999999999999999999 18446744073709551616; do
    expect_status 2 "$PID1" --grace "$v" -- true
    grep -q "invalid --grace value" "$W/err" || die "--grace '$v': $(cat "$W/err")"
  done
  for v in 0 0.5 .5 5. 007 1.000000001 1000000000; do
    expect_status 0 "$PID1" --grace "$v" -- true
  done
}

# Hostile starts: standard descriptors closed, huge environment and
# arguments, the smallest workable ulimit -n / -v.
case_hostile() {
  local fds rc
  for fds in "<&-" ">&-" "2>&-" "<&- >&- 2>&-"; do
    rc=0
    eval "timeout 30 \"\$PID1\" -- sh -c 'exit 3' $fds" || rc=$?
    [[ $rc == 3 ]] || die "pid1 started with $fds closed: exit $rc, want 3"
    rc=0
    eval "timeout 30 \"\$PID1\" -- /no/such/cmd $fds" 2>/dev/null || rc=$?
    [[ $rc == 127 ]] || die "pid1 with $fds closed, missing command: exit $rc, want 127"
  done
  local big t0 ms BIGENV
  big=$(head -c 100000 /dev/zero | tr '\0' x)
  # 30000 variables by execve itself (env -i with 30000 arguments alone
  # takes seconds: its putenv loop is quadratic).
  BIGENV='import os, sys; e = {"V%d" % i: "1" for i in range(30000)}; e["PATH"] = os.environ["PATH"]; os.execve(sys.argv[1], sys.argv[1:], e)'
  t0=$(date +%s%N)
  expect_status 0 python3 -c "$BIGENV" "$PID1" -- \
    sh -c '[ ${#1} -eq 100000 ] && [ $(env | wc -l) -ge 30000 ]' sh "$big"
  ms=$((($(date +%s%N) - t0) / 1000000))
  ((ms < 10000)) || die "30000 variables and a 100 KB argument took $ms ms"
  expect_status 2 "$PID1" --grace "$big" -- true
  (($(wc -c <"$W/err") < 400)) || die "100 KB --grace value: $(wc -c <"$W/err") bytes of message"
  expect_status 2 "$PID1" "--$big" -- true
  (($(wc -c <"$W/err") < 400)) || die "100 KB unknown option: $(wc -c <"$W/err") bytes of message"
  # ulimit -n: pid1 needs one pipe (to learn whether the exec worked); below
  # that it says so, and below what the dynamic loader needs (descriptors
  # this script inherited count too) the loader says so.
  local n out
  for n in 3 4 5 6 8 16; do
    rc=0
    out=$( { ulimit -n "$n"; "$PID1" -- sh -c 'exit 5'; } 2>&1 </dev/null >/dev/null) || rc=$?
    [[ $rc == 5 || ($n -lt 16 && $rc == 127 && $out == *"error while loading shared libraries"*) ||
       ($n -lt 16 && $rc == 1 && $out == "pid1: pipe: Too many open files") ]] ||
      die "ulimit -n $n: exit $rc: $out"
  done
  local v
  for v in $(seq 2000 200 6000); do
    rc=0
    out=$( { ulimit -v "$v"; "$PID1" -- /bin/true; } 2>&1 >/dev/null) || rc=$?
    [[ $rc == 0 || ($rc == 127 && $out == *"error while loading shared libraries"*) || ($rc == 1 && $out == pid1:*) ]] ||
      die "ulimit -v $v: exit $rc: $out"
  done
}

# A SIGPIPE pid1 raises itself (-v writing to a stderr pipe nobody reads)
# is its own: it used to be forwarded and killed the child (exit 141).
case_own_sigpipe() {
  {
    local rc=0
    sh -c 'echo $$ >"$1"; shift; exec "$@"' sh "$W/pid" "$PID1" -v -- \
      sh -c 'trap "" USR1; sleep 2; exit 7' 2>&1 </dev/null || rc=$?
    echo "rc=$rc" >"$W/rc"
  } | true &
  wait_file "$W/pid"
  sleep 0.5  # true has exited by now: the pipe has no reader
  kill -USR1 "$(cat "$W/pid")"  # forwarded; the -v line then hits the broken pipe
  wait_file "$W/rc"
  [[ $(cat "$W/rc") == rc=7 ]] || die "pid1 -v with a broken stderr pipe: $(cat "$W/rc"), want rc=7"
}

# Orphans re-parented to PID 1 are reaped: none is left in /proc.
case_reap_pid1() {
  need_root_pidns
  need_tini
  local init
  for init in "$PID1" "$(command -v tini)"; do
    rm -f "$W/log"
    expect_status 0 unshare --pid --fork --mount-proc "$init" -- "$PROBE" orphans 8 "$W/log" 5000
    grep -q "reaped 8 orphans (re-parented to: 1 1 1 1 1 1 1 1 )" "$W/out" || die "$init: $(cat "$W/out")"
  done
}

# Not PID 1: pid1 is a subreaper, orphans come to it and are reaped.
case_reap_subreaper() {
  need_tini
  in_background "$PID1" -v -- "$PROBE" orphans 6 "$W/log" 5000
  local rc
  wait_job "$JOB"; rc=$RC
  [[ $rc == 0 ]] || die "exit $rc: $(cat "$W/out")"
  grep -q "re-parented to: $JOB $JOB $JOB $JOB $JOB $JOB " "$W/out" || die "not re-parented to pid1: $(cat "$W/out")"
  [[ $(grep -c "reaped orphan" "$W/err") == 6 ]] || die "-v did not report 6 orphans: $(cat "$W/err")"
  rm -f "$W/log"
  expect_status 0 tini -s -- "$PROBE" orphans 6 "$W/log" 5000
}

# The check can fail: an init that does not reap leaves zombies.
case_reap_control() {
  need_root_pidns
  expect_status 1 unshare --pid --fork --mount-proc "$PROBE" orphans 3 "$W/log" 300
  grep -q "not reaped" "$W/out" || die "control: $(cat "$W/out")"
}

# The child starts with an empty mask and no ignored signal, although pid1
# was started with some ignored and some blocked.
case_clean_signal_state() {
  need_tini
  "$PROBE" dirty grep -E '^Sig(Blk|Ign)' /proc/self/status >"$W/dirty"
  grep -q '^SigBlk:.*[1-9a-f]' "$W/dirty" && grep -q '^SigIgn:.*[1-9a-f]' "$W/dirty" ||
    die "setup: probe dirty did not dirty: $(cat "$W/dirty")"
  "$PROBE" dirty "$PID1" -- grep -E '^Sig(Blk|Ign)' /proc/self/status >"$W/clean"
  [[ $(grep -c ':[[:space:]]*0\{16\}$' "$W/clean") == 2 ]] || die "pid1: $(cat "$W/clean")"
  # Known difference: tini hands the child the mask and ignored signals it
  # inherited itself; pid1 starts the child clean, as the issue asks.
  "$PROBE" dirty tini -s -- grep -E '^Sig(Blk|Ign)' /proc/self/status >"$W/tini"
  cmp -s "$W/tini" "$W/dirty" || die "tini changed behaviour: $(cat "$W/tini")"
}

# -g forwards to the child's process group: a shell and its background job.
case_group() {
  need_root_pidns
  need_tini
  local init rc script
  script='trap "wait \$!; exit 3" TERM; "$0" catch "$1" TERM >"$2" & wait'
  for init in "$PID1" "$(command -v tini)"; do
    rm -f "$W/ready" "$W/caught"
    in_pidns "$init" -g -- sh -c "$script" "$PROBE" "$W/ready" "$W/caught"
    wait_file "$W/ready"
    kill -TERM "$NS_INIT"
    wait_job "$NS_JOB"; rc=$RC
    [[ $rc == 3 ]] || die "$init -g: exit $rc; stderr: $(cat "$W/err")"
    grep -qx "caught 15" "$W/caught" || die "$init -g: background job did not get SIGTERM"
  done
  # Without -g only the shell gets it.
  script='trap "exit 3" TERM; "$0" catch "$1" TERM >"$2" & wait'
  rm -f "$W/ready" "$W/caught"
  in_pidns "$PID1" -- sh -c "$script" "$PROBE" "$W/ready" "$W/caught"
  wait_file "$W/ready"
  kill -TERM "$NS_INIT"
  wait_job "$NS_JOB"; rc=$RC
  [[ $rc == 3 ]] || die "no -g: exit $rc"
  [[ ! -s $W/caught ]] || die "no -g: the background job got SIGTERM"
}

# Job-control signals sent to pid1 are forwarded and never stop it.
case_job_control() {
  in_background "$PID1" -- "$PROBE" record "$W/ready" "$W/log"
  wait_file "$W/ready"
  local sig
  for sig in TSTP TTIN TTOU; do kill "-$sig" "$JOB"; done
  wait_grep "^$(kill -l TTOU)\$" "$W/log"
  wait_grep "^$(kill -l TTIN)\$" "$W/log"
  wait_grep "^$(kill -l TSTP)\$" "$W/log"
  [[ $(state_of "$JOB") != T ]] || die "pid1 was stopped"
  kill -TERM "$JOB"
  local rc
  wait_job "$JOB"; rc=$RC
  [[ $rc == 0 ]] || die "exit $rc"
}

# On a terminal: the child is the foreground group, so Ctrl-Z and Ctrl-C
# reach it; pid1 is not stopped.
# pid1 as a job of an interactive shell: background, Ctrl-Z / fg / Ctrl-C.
case_jobs_background() { python3 "$(dirname "$0")/jobs_case.py" "$PID1" background; }
case_jobs_ctrl_z() { python3 "$(dirname "$0")/jobs_case.py" "$PID1" ctrl_z; }

case_tty() {
  local py=/usr/bin/python3
  [[ -x $py ]] || py=python3
  "$py" "$(dirname "$0")/tty_case.py" "$PID1" "$PROBE" "$W"
}

fn="case_${1:?usage: cases.sh CASE}"
declare -F "$fn" >/dev/null || die "no case $1"
"$fn"
echo "ok: $1"
