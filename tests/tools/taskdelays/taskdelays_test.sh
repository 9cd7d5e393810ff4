#!/usr/bin/env bash
# Integration tests of taskdelays, run as root: live queries of this shell
# and a child, -c exit statuses, listen mode, every error case (the privilege
# error as nobody), and, with kernel.task_delayacct=1 set here and restored
# on exit, non-zero CPU delay for two CPU-bound processes sharing one core.
set -u
TD=${1:?usage: taskdelays_test.sh PATH_TO_TASKDELAYS}
fails=0
tmp=$(mktemp -d /tmp/taskdelays-test.XXXXXX)
orig_delayacct=$(cat /proc/sys/kernel/task_delayacct 2>/dev/null || echo "")
bg_pids=()

cleanup() {
  for p in "${bg_pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
  if [[ -n $orig_delayacct ]]; then echo "$orig_delayacct" >/proc/sys/kernel/task_delayacct; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# expect_rc WANT DESCRIPTION -- COMMAND...: runs COMMAND, output to $tmp/out, $tmp/err.
expect_rc() {
  local want=$1 what=$2
  shift 3
  "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
  local rc=$?
  if [[ $rc -eq $want ]]; then pass "$what (exit $rc)"; else
    fail "$what: exit $rc, wanted $want"; sed 's/^/  stderr: /' "$tmp/err" | head -5; fi
}
expect_err() {  # expect_err REGEX DESCRIPTION: checks $tmp/err
  if grep -Eq -- "$1" "$tmp/err"; then pass "$2"; else fail "$2: stderr lacks /$1/"; sed 's/^/  stderr: /' "$tmp/err" | head -5; fi
}
expect_out() {
  if grep -Eq -- "$1" "$tmp/out"; then pass "$2"; else fail "$2: stdout lacks /$1/"; head -5 "$tmp/out"; fi
}
# json_check FILE PYTHON_EXPR: asserts an expression over the parsed JSON object `j`.
json_check() {
  python3 - "$1" "$2" <<'PY'
import json, sys
j = json.loads(open(sys.argv[1]).readline())
ok = eval(sys.argv[2].strip().replace("\n", " "))
if not ok:
    print("  json:", json.dumps(j)[:400])
sys.exit(0 if ok else 1)
PY
}

[[ $(id -u) -eq 0 ]] || { echo "FAIL: these tests must run as root"; exit 1; }
[[ -n $orig_delayacct ]] || { echo "FAIL: /proc/sys/kernel/task_delayacct missing"; exit 1; }

# --- help ---------------------------------------------------------------
expect_rc 0 "--help" -- "$TD" --help
expect_out "^SYNOPSIS" "--help is a man page (SYNOPSIS)"
expect_out "EXIT STATUS" "--help documents exit statuses"

# --- this shell: every field parses ---------------------------------------
expect_rc 0 "-p own pid --json" -- "$TD" -p $$ -i -q --json
if json_check "$tmp/out" '
  j["pid"] == '$$' and j["version"] >= 8 and j["payload_bytes"] >= 300
  and j["comm"] == "bash" and j["ac_tgid"] == '$$' and j["ac_uid"] == 0
  and set(j["delays"]) == {"cpu","blkio","swapin","reclaim","thrashing","compact","wpcopy","irq"}
  and all(isinstance(v["count"], int) and isinstance(v["total_ns"], int) for v in j["delays"].values() if v is not None)
  and (j["version"] < 16 or all(v is not None and v["max_ns"] is not None and v["min_ns"] is not None for v in j["delays"].values()))
  and all(isinstance(j["io"][k], int) for k in j["io"])
  and j["context_switches"]["voluntary"] > 0
'; then pass "own pid: all fields parse (kernel v$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["version"])' "$tmp/out"))"
else fail "own pid: JSON fields"; fi

expect_rc 0 "-p own pid text" -- "$TD" -p $$ -i -q
for row in "CPU" "block I/O" "swap-in" "reclaim" "thrashing" "compaction" "write-protect copy" "IRQ" \
           "cpu run time" "I/O: read" "context switches"; do
  expect_out "^  $row" "text shows '$row'"
done

# --- a child, per thread and per thread group ---------------------------
sleep 30 &
child=$!
bg_pids+=("$child")
# Until the child has exec'd sleep it is a copy of this shell named bash (seen
# on a loaded machine): wait for the name, up to 10 s.
for _ in $(seq 100); do [[ $(cat /proc/$child/comm 2>/dev/null) == sleep ]] && break; sleep 0.1; done
expect_rc 0 "-p child" -- "$TD" -p "$child" --json
json_check "$tmp/out" 'j["pid"] == '"$child"' and j["comm"] == "sleep" and j["ac_ppid"] == '$$ \
  && pass "child record names the child" || fail "child record"
expect_rc 0 "-t child" -- "$TD" -t "$child" -q --json
json_check "$tmp/out" 'j["tgid"] == '"$child"' and j["comm"] == "sleep" and j["delays"]["cpu"]["count"] >= 1' \
  && pass "tgid record" || fail "tgid record"
kill "$child"; wait "$child" 2>/dev/null

# --- -c mode ------------------------------------------------------------
expect_rc 7 "-c keeps the exit status" -- "$TD" -c sh -c 'exit 7'
expect_out "command exit status 7" "-c reports the exit status"
expect_out "^pid [0-9]+ \\(sh\\)" "-c reports the command's record"
expect_rc 0 "-c true" -- "$TD" -q -c true
expect_rc 143 "-c killed by SIGTERM gives 128+15" -- "$TD" -c sh -c 'kill -TERM $$'
expect_out "killed by signal 15" "-c reports the signal"
expect_rc 127 "-c missing command" -- "$TD" -c no-such-command-xyz
expect_err "no-such-command-xyz: command not found" "-c missing command message"
expect_rc 126 "-c non-executable" -- "$TD" -c /etc
expect_rc 3 "-c --json -o FILE" -- "$TD" --json -o "$tmp/c.json" -c -- sh -c 'exit 3'
json_check "$tmp/c.json" 'j["comm"] == "sh" and j["ac_exitcode"] != 0' \
  && pass "-c JSON written to -o FILE" || fail "-c JSON file"

# --- listen mode ------------------------------------------------------------
ncpu=$(nproc --all)
"$TD" -l -m "0-$((ncpu - 1))" --json -o "$tmp/listen.json" 2>"$tmp/listen.err" &
listener=$!
bg_pids+=("$listener")
for _ in $(seq 50); do grep -q listening "$tmp/listen.err" 2>/dev/null && break; sleep 0.1; done
sleep 0.3
cp /bin/true "$tmp/tdprobe$$" && "$tmp/tdprobe$$"
found=0
for _ in $(seq 30); do grep -q "\"comm\":\"tdprobe$$\"" "$tmp/listen.json" && { found=1; break; }; sleep 0.1; done
kill -INT "$listener"; wait "$listener"; lrc=$?
[[ $found -eq 1 ]] && pass "listen mode saw the probe exit" || { fail "listen mode missed the probe"; cat "$tmp/listen.err"; }
[[ $lrc -eq 0 ]] && pass "listen mode exits 0 on SIGINT" || fail "listen exit status $lrc"
grep "\"comm\":\"tdprobe$$\"" "$tmp/listen.json" | head -1 >"$tmp/probe.json"
json_check "$tmp/probe.json" 'j["version"] >= 8 and j["ac_exitcode"] == 0' && pass "listen record parses" || fail "listen record"
# -n COUNT stops by itself once other tasks exit (the test makes sure some do).
"$TD" -l -n 2 --json -o "$tmp/n.json" 2>/dev/null &
lpid=$!
bg_pids+=("$lpid")
for _ in $(seq 40); do /bin/true; sleep 0.05; kill -0 "$lpid" 2>/dev/null || break; done
wait "$lpid"; nrc=$?
[[ $nrc -eq 0 && $(wc -l <"$tmp/n.json") -eq 2 ]] && pass "-l -n 2 prints two records and exits" \
  || fail "-l -n 2: exit $nrc, $(wc -l <"$tmp/n.json") lines"

# Listen mode from a child pid namespace: the kernel refuses (EINVAL), we explain.
expect_rc 1 "listen mode in a child pid namespace" -- unshare -pf --mount-proc "$TD" -l -n 1
expect_err "only works in the initial user and pid namespaces" "listen-in-namespace message"

# --- errors -------------------------------------------------------------
expect_rc 1 "no privilege (nobody, no capabilities)" -- \
  setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all "$TD" -p 1
expect_err "permission denied: .*CAP_NET_ADMIN" "privilege error names CAP_NET_ADMIN"
pid_max=$(cat /proc/sys/kernel/pid_max)
if ((pid_max < 4194304)); then
  expect_rc 1 "no such process" -- "$TD" -p $((pid_max + 1))
  expect_err "no such process: pid $((pid_max + 1))" "no such process message"
  expect_rc 1 "no such tgid" -- "$TD" -t $((pid_max + 1))
  expect_err "no such process: tgid" "no such tgid message"
else
  echo "NOTE: pid_max is the limit; using a reaped child's pid for the ESRCH case"
fi
sh -c 'exit 0' & gone=$!; wait "$gone"
expect_rc 1 "reaped child" -- "$TD" -p "$gone"
expect_err "no such process" "reaped child message"
for bad in abc -5 0 99999999999 "" 4194305; do
  expect_rc 2 "invalid pid '$bad'" -- "$TD" -p "$bad"
  expect_err "invalid pid" "message for pid '$bad'"
done
expect_rc 2 "invalid tgid" -- "$TD" -t x1
for bad in abc "0-99999" "" "3-1" "0,"; do
  expect_rc 2 "invalid CPU mask '$bad'" -- "$TD" -l -m "$bad"
  expect_err "invalid CPU mask" "message for mask '$bad'"
done
expect_rc 2 "-p with -t" -- "$TD" -p 1 -t 1
expect_rc 2 "-i with -t" -- "$TD" -t 1 -i
expect_rc 2 "-m without -l" -- "$TD" -p 1 -m 0
expect_rc 2 "no target" -- "$TD" -q
expect_rc 2 "-c without command" -- "$TD" -c
expect_rc 2 "unknown option" -- "$TD" --frobnicate
expect_rc 1 "unwritable -o" -- "$TD" -p $$ -o /proc/no/such/file
expect_err "cannot open" "unwritable -o message"

# --- delay accounting off: data plus a warning ----------------------------
echo 0 >/proc/sys/kernel/task_delayacct
expect_rc 0 "delayacct off still prints data" -- "$TD" -p $$
expect_out "^  CPU" "delayacct off: table printed"
expect_err "delay accounting is off .*sysctl kernel.task_delayacct=1.*only tasks started after" \
  "delayacct off: warning says how to enable and that only new tasks count"

# --- delay accounting on: a CPU-bound pair on one core waits for the CPU ----
echo 1 >/proc/sys/kernel/task_delayacct
expect_rc 0 "delayacct on: no warning" -- "$TD" -p $$
if grep -q "delay accounting is off" "$tmp/err"; then fail "warning printed while on"; else pass "no warning while on"; fi
taskset -c 0 sh -c 'while :; do :; done' & hog1=$!
taskset -c 0 sh -c 'while :; do :; done' & hog2=$!
bg_pids+=("$hog1" "$hog2")
sleep 1
"$TD" -p "$hog1" --json >"$tmp/h1.json" 2>/dev/null
"$TD" -p "$hog2" --json >"$tmp/h2.json" 2>/dev/null
kill -KILL "$hog1" "$hog2"; wait "$hog1" "$hog2" 2>/dev/null
for f in h1 h2; do
  if json_check "$tmp/$f.json" 'j["delays"]["cpu"]["count"] > 0 and j["delays"]["cpu"]["total_ns"] > 0 and j["delays"]["cpu"]["max_ns"] > 0'; then
    pass "CPU-bound $f shows CPU delay ($(python3 -c 'import json,sys;d=json.load(open(sys.argv[1]))["delays"]["cpu"];print(d["count"],"waits,",d["total_ns"]//1000,"us")' "$tmp/$f.json"))"
  else fail "CPU-bound $f has no CPU delay"; fi
done
echo "$orig_delayacct" >/proc/sys/kernel/task_delayacct
[[ $(cat /proc/sys/kernel/task_delayacct) == "$orig_delayacct" ]] && pass "kernel.task_delayacct restored to $orig_delayacct" \
  || fail "sysctl not restored"

# --- -o FILE: written only once there is something to write --------------
limited() {  # limited nofile|as N CMD...: no descriptor above 2, the limit set
  local kind=$1 n=$2 fd
  shift 2
  (
    for fd in /proc/$BASHPID/fd/*; do fd=${fd##*/}; if ((fd > 2)); then eval "exec $fd>&-"; fi; done
    if [[ $kind == nofile ]]; then ulimit -n "$n"; else ulimit -v "$n"; fi
    exec "$@"
  )
}
out_dir=$tmp/o && mkdir "$out_dir"
keep() { printf 'keep me\n' >"$out_dir/f"; chmod 640 "$out_dir/f"; }
kept() {  # kept DESCRIPTION: f untouched, nothing else in the folder
  if [[ $(cat "$out_dir/f") == "keep me" && $(ls -A "$out_dir") == f ]]; then pass "$1: -o FILE untouched"
  else fail "$1: -o FILE is now '$(head -c 80 "$out_dir/f")', folder: $(ls -A "$out_dir")"; fi
}
sh -c 'exit 0' & gone=$!; wait "$gone"
keep; expect_rc 1 "-o, no such process" -- "$TD" -p "$gone" -o "$out_dir/f"; kept "no such process"
keep; expect_rc 2 "-o, bad pid" -- "$TD" -p 0x10 -o "$out_dir/f"; kept "usage error"
keep; expect_rc 127 "-o, missing command" -- "$TD" -o "$out_dir/f" -c no-such-command-xyz; kept "command not found"
keep; expect_rc 1 "-o, no privilege" -- setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
  "$TD" -p 1 -o "$out_dir/f"; kept "no privilege"
keep; expect_rc 1 "-o, listen refused in a pid namespace" -- unshare -pf --mount-proc "$TD" -l -n 1 -o "$out_dir/f"
kept "listen refused"
keep; expect_rc 0 "-o, success" -- "$TD" -p $$ -o "$out_dir/f"
if grep -q "^pid $$ " "$out_dir/f" && [[ $(stat -c %a "$out_dir/f") == 640 && $(ls -A "$out_dir") == f ]]; then
  pass "-o replaced the content, kept mode 640, left no temporary file"
else fail "-o success: $(head -c 80 "$out_dir/f"), mode $(stat -c %a "$out_dir/f"), folder $(ls -A "$out_dir")"; fi
ln -s f "$out_dir/link"
expect_rc 0 "-o through a symbolic link" -- "$TD" -p $$ --json -o "$out_dir/link"
[[ -L $out_dir/link ]] && grep -q '"pid"' "$out_dir/f" && pass "-o wrote through the link, which stays a link" \
  || fail "-o symbolic link"
rm "$out_dir/link"
expect_rc 0 "-o /dev/null" -- "$TD" -p $$ -o /dev/null
[[ -c /dev/null ]] && pass "/dev/null is still a device" || fail "/dev/null replaced"
keep; expect_rc 1 "-o under ulimit -n 4" -- limited nofile 4 "$TD" -p $$ -o "$out_dir/f"
expect_err "cannot open '.*/f' for writing: Too many open files" "-o under ulimit -n 4: clear message"
kept "ulimit -n 4"
expect_rc 0 "ulimit -n 4: a query still works" -- limited nofile 4 "$TD" -p $$
if grep -q "missing" "$tmp/err"; then fail "ulimit -n 4: blames the kernel: $(cat "$tmp/err")"
else expect_err "cannot read /proc/sys/kernel/task_delayacct \(Too many open files\)" "ulimit -n 4: says why it cannot read the sysctl"; fi
expect_rc 1 "-c under ulimit -n 5" -- limited nofile 5 "$TD" -c true
expect_err "^taskdelays: pipe: Too many open files$" "-c under ulimit -n 5: clear message"
expect_rc 0 "-c under ulimit -n 6" -- limited nofile 6 "$TD" -c true

# --- standard descriptors closed ------------------------------------------
expect_rc 1 "stdout closed" -- sh -c 'exec "$@" >&-' sh "$TD" -p $$
expect_err "^taskdelays: write error: Bad file descriptor$" "stdout closed: write error"
keep; expect_rc 0 "0, 1, 2 closed, -o FILE" -- sh -c 'exec "$@" <&- >&- 2>&-' sh "$TD" -p $$ -o "$out_dir/f"
grep -q "^pid $$ " "$out_dir/f" && pass "0, 1, 2 closed: the report is in FILE" || fail "0, 1, 2 closed: $(cat "$out_dir/f")"
expect_rc 1 "--help to a closed stdout" -- sh -c 'exec "$@" >&-' sh "$TD" --help
expect_rc 7 "-c with 0, 1 closed" -- sh -c 'exec "$@" <&- >&-' sh "$TD" -o "$out_dir/f" -c sh -c 'exit 7'

# --- signals --------------------------------------------------------------
# -c: a signal to taskdelays reaches the command, which is not left behind.
for sig in TERM HUP USR1 USR2 ALRM; do
  rm -f "$tmp/cmd.pid"
  "$TD" -o "$out_dir/sig" -c sh -c 'echo $$ >"$1"; exec sleep 30' sh "$tmp/cmd.pid" 2>/dev/null &
  tdp=$!
  for _ in $(seq 100); do [[ -s $tmp/cmd.pid ]] && break; sleep 0.05; done
  sleep 0.1
  kill -"$sig" "$tdp"; wait "$tdp"; src=$?
  signo=$(kill -l "$sig")
  if [[ $src -eq $((128 + signo)) ]] && ! kill -0 "$(cat "$tmp/cmd.pid")" 2>/dev/null &&
    grep -q "killed by signal $signo" "$out_dir/sig"; then pass "-c, SIG$sig passed on: command ended, reported, exit $src"
  else fail "-c, SIG$sig: exit $src, command $(kill -0 "$(cat "$tmp/cmd.pid")" 2>/dev/null && echo still running)"; fi
done
rm -f "$out_dir/sig"
# -l: any catchable signal ends it; nothing is left in the output folder.
for sig in INT TERM HUP QUIT USR1 ALRM; do
  rm -f "$tmp/l.err"  # wait for this listener's line, not the last one's
  env --default-signal "$TD" -l -o "$out_dir/l" 2>"$tmp/l.err" &
  lp=$!
  for _ in $(seq 100); do grep -q listening "$tmp/l.err" 2>/dev/null && break; sleep 0.05; done
  kill -"$sig" "$lp"; wait "$lp"; src=$?
  extra=$(ls -A "$out_dir" | grep -vx 'f\|l')
  [[ -z $extra ]] && pass "-l, SIG$sig (exit $src): nothing left behind" || fail "-l, SIG$sig left $extra"
done

# --- huge inputs and numbers ------------------------------------------------
big=$(head -c 100000 /dev/zero | tr '\0' 7)
expect_rc 2 "100 KB pid" -- "$TD" -p "$big"
(($(wc -c <"$tmp/err") < 1000)) && pass "100 KB pid: short message" || fail "100 KB pid: $(wc -c <"$tmp/err") bytes"
expect_rc 2 "100 KB CPU mask" -- "$TD" -l -m "$big"
(($(wc -c <"$tmp/err") < 1000)) && pass "100 KB mask: short message" || fail "100 KB mask: $(wc -c <"$tmp/err") bytes"
expect_rc 0 "100 KB argument for -c" -- "$TD" -o "$tmp/c100" -c sh -c '[ ${#1} -eq 100000 ]' sh "$big"
expect_rc 0 "30000 environment variables reach the -c command" -- \
  env -i PATH="$PATH" $(printf 'V%d=x ' $(seq 30000)) "$TD" -o "$tmp/c30k" -c sh -c '[ "$(env | grep -c "^V")" -eq 30000 ]'
many=(); for _ in $(seq 50000); do many+=(-d); done
expect_rc 0 "50000 options" -- "$TD" "${many[@]}" -p $$
for bad in 0x10 1e3 -5 +5 " 5" "5 " 5.0 99999999999999999999 18446744073709551617; do
  expect_rc 2 "pid '$bad'" -- "$TD" -p "$bad"
done
for args in "-n 0x10" "-n -1" "-n 1e2" "-r 1e9" "-r 1073741825" "--timeout 0x5" "--timeout 1.5" \
  "--timeout 99999999999999999999999" "-m 0x1" "-m 1e0" "-m -1"; do
  expect_rc 2 "$args" -- "$TD" -l $args
  expect_err "invalid" "$args: says invalid"
done

# --- ulimit -v: from the least that starts, each run is right or says so ----
v=4096
while ! limited as $v "$TD" --version >/dev/null 2>&1 && ((v < 65536)); do v=$((v + 512)); done
vbad=0; vok=0; verr=0
for ((top = v + 8192; v < top; v += 512)); do
  limited as $v "$TD" -p $$ >"$tmp/out" 2>"$tmp/err"; rc=$?
  if ((rc == 0)) && grep -q "^pid $$ " "$tmp/out"; then vok=$((vok + 1))
  elif ((rc == 1)) && grep -Eq "memory exhausted|Cannot allocate memory|Out of memory" "$tmp/err"; then verr=$((verr + 1))
  else vbad=$((vbad + 1)); echo "  ulimit -v $v: exit $rc: $(head -c 200 "$tmp/err")"; fi
done
((vbad == 0 && vok > 0)) && pass "ulimit -v sweep: $vok reports, $verr clear memory errors" || fail "ulimit -v sweep: $vbad unclear"

echo "taskdelays integration: $fails failure(s)"
exit $((fails > 0))
