#!/usr/bin/env bash
# Integration tests of iolimit, run as root.
#   iolimit_test.sh IOLIMIT v1   cgroup v1 blkio: O_DIRECT writes and reads under
#                                byte and IOPS limits, rates measured (within 25 %),
#                                cleanup (normal, leftovers, SIGTERM, Ctrl-C), errors
#   iolimit_test.sh IOLIMIT v2   cgroup v2 io.max + memory: buffered writes throttled;
#                                exits 77 (skipped, reason printed) without the io controller
set -u
IOL=${1:?usage: iolimit_test.sh PATH_TO_IOLIMIT v1|v2}
MODE=${2:?usage: iolimit_test.sh PATH_TO_IOLIMIT v1|v2}
fails=0
# The work files must sit on a real disk (not tmpfs or overlay): the first
# of these directories whose file system has a block device (major != 0).
disk_dir=""
for d in ${TMPDIR_DISK:-} /var/tmp /tmp "$PWD"; do
  [[ -d $d && -w $d && $(stat -c %Hd "$d" 2>/dev/null) != 0 ]] && { disk_dir=$d; break; }
done
if [[ -z $disk_dir ]]; then
  echo "SKIP: no writable directory on a block device (all on tmpfs/overlay); cannot measure disk rates"
  exit 77
fi
tmp=$(mktemp -d "$disk_dir/iolimit-test.XXXXXX")
loopdev=""
cleanup() {
  [[ -n $loopdev ]] && losetup -d "$loopdev" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
skip() { echo "SKIP: $*"; exit 77; }
run() {  # run WANT_RC DESCRIPTION -- CMD...: output in $tmp/out, $tmp/err
  local want=$1 what=$2
  shift 3
  "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
  local rc=$?
  if [[ $rc -eq $want ]]; then pass "$what (exit $rc)"; else
    fail "$what: exit $rc, wanted $want"; sed 's/^/  stderr: /' "$tmp/err" | head -6; fi
}
err_has() {
  if grep -Eq -- "$1" "$tmp/err"; then pass "$2"; else fail "$2: stderr lacks /$1/"; sed 's/^/  stderr: /' "$tmp/err" | head -6; fi
}
now_ns() { date +%s%N; }
# within PCT MEASURED WANTED: |measured/wanted - 1| <= PCT %
within() { python3 -c 'import sys; m,w,p=map(float,sys.argv[1:]); sys.exit(0 if abs(m/w-1)<=p/100 else 1)' "$2" "$3" "$1"; }
ratio() { python3 -c 'import sys; print("%.3f" % (float(sys.argv[1])/float(sys.argv[2])))' "$1" "$2"; }
cgroup_of() { sed -n 's/.* in \(\/[^:]*\):.*/\1/p' "$tmp/err" | head -1; }
gone() {  # gone PATH DESCRIPTION
  if [[ -n $1 && ! -e $1 ]]; then pass "$2: cgroup $1 removed"; else fail "$2: cgroup '$1' still there"; fi
}

[[ $(id -u) -eq 0 ]] || { echo "FAIL: must run as root"; exit 1; }
MiB=1048576

# measure_rate WHAT LIMIT_OPT LIMIT BYTES_OR_OPS UNIT -- CMD...: runs iolimit, checks rate.
measure_rate() {
  local what=$1 opt=$2 limit=$3 amount=$4 unit=$5
  shift 6
  local t0 t1 secs
  t0=$(now_ns)
  "$IOL" --cgroup "$MODE" --device "$tmp" "$opt" "$limit" -- "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
  local rc=$?
  t1=$(now_ns)
  secs=$(python3 -c 'import sys; print((int(sys.argv[2])-int(sys.argv[1]))/1e9)' "$t0" "$t1")
  local want
  want=$(python3 -c 'import sys; print(sys.argv[1].rstrip("M").isdigit() and (int(sys.argv[1].rstrip("M"))*(1048576 if sys.argv[1].endswith("M") else 1)))' "$limit")
  local got
  got=$(python3 -c 'import sys; print(float(sys.argv[1])/float(sys.argv[2]))' "$amount" "$secs")
  if [[ $rc -ne 0 ]]; then fail "$what: exit $rc"; sed 's/^/  stderr: /' "$tmp/err" | head -6; return; fi
  if within 25 "$got" "$want"; then
    pass "$what: $opt $limit held: $(printf '%.0f' "$got") $unit/s for $amount $unit in $(printf '%.2f' "$secs") s (ratio $(ratio "$got" "$want"))"
  else
    fail "$what: $opt $limit NOT held: $(printf '%.0f' "$got") $unit/s in $(printf '%.2f' "$secs") s (ratio $(ratio "$got" "$want"))"
  fi
  gone "$(cgroup_of)" "$what"
}

if [[ $MODE == v2 ]]; then
  v2root=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)
  [[ -n $v2root ]] || skip "cgroup v2 path not tested: no cgroup2 filesystem is mounted"
  ctrls=$(cat "$v2root/cgroup.controllers")
  [[ " $ctrls " == *" io "* ]] || skip "cgroup v2 path not tested: $v2root/cgroup.controllers has no io controller (it has: ${ctrls:-nothing}); io is bound to cgroup v1 on this machine"
  # Buffered writes: only v2 with io+memory throttles their writeback.
  measure_rate "v2 buffered write" --wbps 1M $((4 * MiB)) B -- \
    dd if=/dev/zero of="$tmp/buffered" bs=1M count=4 conv=fsync
  grep -q "with cgroup v2 (io.max" "$tmp/err" && pass "v2 used" || fail "v2 not used"
  measure_rate "v2 O_DIRECT write" --wbps 1M $((4 * MiB)) B -- \
    dd if=/dev/zero of="$tmp/direct" bs=256k count=16 oflag=direct
  grep -q "wrote 4194304 bytes" "$tmp/err" && pass "v2 io.stat reports 4 MiB written" || fail "v2 io.stat report"
  echo "iolimit v2: $fails failure(s)"
  exit $((fails > 0))
fi

# ---------------------------------------------------------------- v1 ----
blkio=$(awk '$9 == "cgroup" && $NF ~ /(^|,)blkio(,|$)/ {print $5; exit}' /proc/self/mountinfo)
[[ -n $blkio ]] || skip "cgroup v1 path not tested: no blkio hierarchy is mounted"

run 0 "--help" -- "$IOL" --help
grep -q "^SYNOPSIS" "$tmp/out" && pass "--help is a man page" || fail "--help lacks SYNOPSIS"

# O_DIRECT write under --wbps 1M: the note's experiment, rate measured.
measure_rate "v1 O_DIRECT write" --wbps 1M $((5 * MiB)) B -- \
  dd if=/dev/zero of="$tmp/direct" bs=256k count=20 oflag=direct
[[ $(grep -c "only direct and synchronous I/O" "$tmp/err") -eq 1 ]] && pass "v1 prints exactly one warning line" \
  || fail "v1 warning line count"
grep -q "wrote 5242880 bytes (5.0 MiB) in [0-9]* ops" "$tmp/err" && pass "v1 report: 5242880 bytes written" \
  || { fail "v1 report"; cat "$tmp/err"; }
grep -q "with cgroup v1 (blkio.throttle)" "$tmp/err" && pass "v1 used" || fail "v1 not used"

# O_DIRECT read under --rbps 2M (the file just written; direct reads skip the page cache).
measure_rate "v1 O_DIRECT read" --rbps 2M $((5 * MiB)) B -- \
  dd if="$tmp/direct" of=/dev/null bs=256k iflag=direct
grep -q "read 5242880 bytes" "$tmp/err" && pass "v1 report: 5242880 bytes read" || fail "v1 read report"

# IOPS: 40 direct 4 KiB writes at 20/s.
measure_rate "v1 O_DIRECT write IOPS" --wiops 20 40 ops -- \
  dd if=/dev/zero of="$tmp/iops" bs=4k count=40 oflag=direct
grep -q "in 40 ops" "$tmp/err" && pass "v1 report: 40 write ops" || fail "v1 ops report"

# Buffered writes are NOT throttled on v1 (documented, warned): 8 MiB under 1M/s returns fast.
t0=$(now_ns)
"$IOL" --cgroup v1 --device "$tmp" --wbps 1M -- dd if=/dev/zero of="$tmp/buffered" bs=1M count=8 2>"$tmp/err" </dev/null
secs=$(python3 -c 'import sys; print((int(sys.argv[2])-int(sys.argv[1]))/1e9)' "$t0" "$(now_ns)")
python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) < 4 else 1)' "$secs" \
  && pass "v1 buffered write is not throttled ($(printf '%.2f' "$secs") s for 8 MiB), as warned" \
  || fail "v1 buffered write took $secs s"

# Exit status and cleanup.
run 5 "exit status passed back" -- "$IOL" --wbps 1M -- sh -c 'exit 5'
gone "$(cgroup_of)" "normal exit"
run 0 "command left a background process" -- "$IOL" --wbps 1M -- sh -c "sleep 300 & echo \$! > $tmp/bg.pid; exit 0"
err_has "killed 1 process" "leftover process reported"
gone "$(cgroup_of)" "leftover"
sleep 0.2
bgstate=$(ps -o stat= -p "$(cat "$tmp/bg.pid")" 2>/dev/null)
if [[ -z $bgstate || $bgstate == Z* ]]; then pass "leftover sleep killed"; else fail "leftover sleep still alive ($bgstate)"; fi

# SIGTERM to iolimit: passed to the command, cgroup removed, 128+15.
"$IOL" --wbps 1M -- dd if=/dev/zero of="$tmp/long" bs=256k count=400 oflag=direct 2>"$tmp/err" </dev/null &
p=$!
for _ in $(seq 50); do [[ -n $(cgroup_of) ]] && break; sleep 0.1; done
cg=$(cgroup_of)
sleep 0.5
kill -TERM "$p"; wait "$p"; rc=$?
[[ $rc -eq 143 ]] && pass "SIGTERM: exit 143" || fail "SIGTERM: exit $rc"
gone "$cg" "SIGTERM"

# Ctrl-C: SIGINT to the whole foreground process group (own session, SIGINT not ignored).
python3 -c 'import os, signal, sys; os.setsid(); signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
  "$IOL" --wbps 1M -- dd if=/dev/zero of="$tmp/long" bs=256k count=400 oflag=direct 2>"$tmp/err" </dev/null &
p=$!
for _ in $(seq 50); do [[ -n $(cgroup_of) ]] && break; sleep 0.1; done
cg=$(cgroup_of)
sleep 0.5
kill -INT -- "-$p"; wait "$p"; rc=$?
[[ $rc -eq 130 ]] && pass "Ctrl-C: exit 130" || fail "Ctrl-C: exit $rc"
gone "$cg" "Ctrl-C"

# Partition given: resolved to its disk. This kernel has no partition-table
# parsers, so the partition is added to a loop device with BLKPG (addpart).
truncate -s 8M "$tmp/disk.img"
if loopdev=$(losetup -f --show "$tmp/disk.img" 2>/dev/null) && addpart "$loopdev" 1 2048 8192; then
  for _ in $(seq 20); do [[ -b ${loopdev}p1 ]] && break; sleep 0.1; done
  if [[ -b ${loopdev}p1 ]]; then
    want=$(cat "/sys/class/block/${loopdev#/dev/}/dev")
    part=$(cat "/sys/class/block/${loopdev#/dev/}p1/dev")
    run 0 "partition ${loopdev}p1 ($part)" -- "$IOL" --device "${loopdev}p1" --wbps 1M -- true
    err_has "limiting $want \\(${loopdev#/dev/}\\)" "partition $part resolved to its disk $want"
    run 0 "partition given as MAJ:MIN $part" -- "$IOL" --device "$part" --wbps 1M -- true
    err_has "limiting $want " "MAJ:MIN partition resolved to its disk"
    delpart "$loopdev" 1 2>/dev/null
  else
    fail "no partition node ${loopdev}p1 appeared"
  fi
else
  fail "cannot create a partitioned loop device for the partition test"
fi

# Any catchable signal sent to iolimit (not only the four it used to take):
# passed on to the command, which dies of it; the cgroup is removed; exit
# 128+N. The command is sleep (dd would catch SIGUSR1 and go on). SIGINT
# and SIGQUIT are left out: bash starts background jobs with them ignored
# (Ctrl-C is tested above). No core files: ulimit -c 0.
ulimit -c 0
for sig in HUP USR1 USR2 ALRM PIPE VTALRM PROF XCPU XFSZ IO PWR SYS STKFLT ABRT RTMIN RTMAX; do
  : >"$tmp/err"
  "$IOL" --wbps 1M -- sleep 300 2>"$tmp/err" </dev/null &
  p=$!
  for _ in $(seq 200); do [[ -n $(cgroup_of) ]] && break; sleep 0.1; done
  cg=$(cgroup_of)
  sleep 0.3
  kill "-$sig" "$p"; wait "$p"; rc=$?
  n=$(kill -l "$sig")
  [[ $rc -eq $((128 + n)) ]] && pass "SIG$sig to iolimit: exit $rc" || fail "SIG$sig to iolimit: exit $rc, want $((128 + n))"
  gone "$cg" "SIG$sig to iolimit"
done

# stderr a pipe nobody reads: iolimit's own SIGPIPE (from its start line)
# neither ends it nor reaches the command; the cgroup goes.
{
  sleep 0.5  # true has exited: the pipe has no reader
  rc=0
  "$IOL" --wbps 1M -- sh -c 'sleep 0.5; exit 7' 2>&1 </dev/null || rc=$?
  echo "$rc" >"$tmp/rc"
} | true
[[ $(cat "$tmp/rc") == 7 ]] && pass "stderr a broken pipe: exit 7" || fail "stderr a broken pipe: exit $(cat "$tmp/rc"), want 7"

# As a job of an interactive shell: Ctrl-Z stops iolimit with its command
# (the shell gets its prompt back), fg continues both, Ctrl-C ends them.
if python3 "$(dirname "$0")/../pid1/jobs_case.py" "$IOL" ctrl_z --wbps 1M -- >"$tmp/out" 2>"$tmp/err"; then
  pass "Ctrl-Z / fg / Ctrl-C on an interactive shell's iolimit job"
else
  fail "Ctrl-Z job: $(head -c 600 "$tmp/err")"
fi

# Started with standard descriptors closed: runs all the same (no cgroup
# file lands on descriptor 0, 1 or 2).
for fds in "<&-" ">&-" "2>&-" "<&- >&- 2>&-"; do
  out=$(eval "\"\$IOL\" -q --wbps 1M -- sh -c 'exit 3' $fds" 2>&1)
  rc=$?
  [[ $rc -eq 3 ]] && pass "iolimit started with $fds closed: exit 3" || fail "iolimit with $fds closed: exit $rc ($out)"
done
run 1 "stderr closed, bad device: still exit 1" -- sh -c "\"$IOL\" --device /no/such --wbps 1M -- true 2>&-"

# Huge inputs: 30000 environment variables and a 100 KB argument reach the
# command in well under the time limit; a 100 KB rate is refused.
big=$(head -c 100000 /dev/zero | tr '\0' x)
# 30000 variables by execve itself (env -i with 30000 arguments alone
# takes seconds: its putenv loop is quadratic).
BIGENV='import os, sys; e = {"V%d" % i: "1" for i in range(30000)}; e["PATH"] = os.environ["PATH"]; os.execve(sys.argv[1], sys.argv[1:], e)'
t0=$(now_ns)
run 0 "30000 environment variables, 100 KB argument" -- python3 -c "$BIGENV" "$IOL" -q --wbps 1M -- \
  sh -c '[ ${#1} -eq 100000 ] && [ $(env | wc -l) -ge 30000 ]' sh "$big"
secs=$((($(now_ns) - t0) / 1000000))
((secs < 10000)) && pass "huge inputs took $secs ms" || fail "huge inputs took $secs ms"
run 2 "100 KB rate" -- "$IOL" --wbps "$big" -- true
[[ $(wc -c <"$tmp/err") -lt 2000 ]] && pass "100 KB rate: message cut ($(wc -c <"$tmp/err") bytes)" \
  || fail "100 KB rate: $(wc -c <"$tmp/err") bytes of message"
run 2 "100 KB unknown option" -- "$IOL" "--$big" -- true
[[ $(wc -c <"$tmp/err") -lt 2000 ]] && pass "100 KB unknown option: message cut ($(wc -c <"$tmp/err") bytes)" \
  || fail "100 KB unknown option: $(wc -c <"$tmp/err") bytes of message"
run 2 "100 KB --cgroup value" -- "$IOL" --cgroup "$big" --wbps 1M -- true
[[ $(wc -c <"$tmp/err") -lt 2000 ]] && pass "100 KB --cgroup value: message cut ($(wc -c <"$tmp/err") bytes)" \
  || fail "100 KB --cgroup value: $(wc -c <"$tmp/err") bytes of message"

# Smallest workable ulimit -n and -v: a clear error below, never a crash,
# never a cgroup left behind.
# (Descriptors this script inherited count too: below some n the dynamic
# loader itself fails, with its own message.)
for n in 4 5 6 7 8 16; do
  out=$( { ulimit -n "$n"; "$IOL" -q --wbps 1M -- true; } 2>&1 >/dev/null); rc=$?
  if [[ $rc -eq 0 ]]; then pass "ulimit -n $n: runs"
  elif [[ $n -lt 16 && $rc -eq 1 && $out == *"Too many open files"* ]]; then pass "ulimit -n $n: clear error (${out##*iolimit: })"
  elif [[ $n -lt 16 && $rc -eq 127 && $out == *"error while loading shared libraries"* ]]; then pass "ulimit -n $n: the loader's error"
  else fail "ulimit -n $n: exit $rc: $out"; fi
done
for v in $(seq 5000 100 7000); do
  out=$( { ulimit -v "$v"; "$IOL" -q --wbps 1M -- /bin/true; } 2>&1 >/dev/null); rc=$?
  if [[ $rc -eq 0 || ($rc -eq 1 && $out == *"out of memory"*) || ($rc -eq 127 && $out == *"error while loading shared libraries"*) ]]; then
    :
  else fail "ulimit -v $v: exit $rc: $out"; fi
done
pass "ulimit -v 5000..7000 KiB: each run worked, or said out of memory / the loader's error"

# Errors.
for bad in 0 -5 1.5M 10XB 99999999999999999999 ""; do
  run 2 "rate '$bad'" -- "$IOL" --wbps "$bad" -- true
done
err_has "invalid value" "rate error message"
# Numbers in unexpected forms, for every numeric option: refused (exit 2,
# the value quoted), never read as something else.
nbad=0
for opt in --rbps --wbps --riops --wiops; do
  for bad in 0x10 0X1F 1e6 1E3 -5 -0 +5 " 5" "5 " 1.5M 1,5 0 0K 00 inf nan \
             18446744073709551616 99999999999999999999 16777216T 1KB 1Q "" "1 M" $'1\n2'; do
    "$IOL" "$opt" "$bad" -- true >/dev/null 2>"$tmp/err" </dev/null
    rc=$?
    if [[ $rc -ne 2 ]] || ! grep -q "invalid value" "$tmp/err" || [[ $(wc -l <"$tmp/err") -ne 2 ]]; then
      fail "$opt '$bad': exit $rc: $(head -c 300 "$tmp/err")"; nbad=$((nbad + 1))
    fi
  done
done
((nbad == 0)) && pass "every rate option refuses hex, exponents, signs, blanks, fractions, overflow and newlines"
run 2 "iops over 32 bits" -- "$IOL" --wiops 4294967296 -- true
run 2 "no limit" -- "$IOL" -- true
err_has "at least one limit" "no limit message"
run 2 "no command" -- "$IOL" --wbps 1M --
run 2 "unknown option" -- "$IOL" --bogus 1 -- true
run 2 "bad --cgroup" -- "$IOL" --cgroup v3 --wbps 1M -- true
run 1 "tmpfs device" -- "$IOL" --device /dev/shm --wbps 1M -- true
err_has "no backing block device" "tmpfs message"
run 1 "no such device" -- "$IOL" --device 999:999 --wbps 1M -- true
err_has "no such block device 999:999" "no such device message"
run 1 "missing path" -- "$IOL" --device /no/such/dir --wbps 1M -- true
run 127 "command not found" -- "$IOL" --wbps 1M -- no-such-command-xyz
err_has "command not found" "not found message"
gone "$(cgroup_of)" "command not found"
run 126 "command not executable" -- "$IOL" --wbps 1M -- /etc
run 127 "a path through a file (ENOTDIR): the toolkit's 127" -- "$IOL" --wbps 1M -- /etc/passwd/x
err_has "/etc/passwd/x: Not a directory" "ENOTDIR message"
reason=$("$IOL" --cgroup v2 --wbps 1M -- true 2>&1 >/dev/null); rc=$?
v2root=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)
if [[ -n $v2root && " $(cat "$v2root/cgroup.controllers") " != *" io "* ]]; then
  [[ $rc -eq 1 && $reason == *"has no io controller"* ]] && pass "--cgroup v2 without io: clear error" \
    || fail "--cgroup v2 error: rc $rc, '$reason'"
fi
# Cgroups are named iolimit-PID-N: one whose iolimit still runs belongs to
# a concurrent run (another test suite on this machine), not to a leak.
leftover=0
for d in "$blkio"/iolimit-*; do
  [[ -d $d ]] || continue
  owner=${d##*/iolimit-}
  owner=${owner%-*}
  [[ $(cat "/proc/$owner/comm" 2>/dev/null) == iolimit ]] || leftover=$((leftover + 1))
done
[[ $leftover -eq 0 ]] && pass "no iolimit cgroups left behind" || fail "$leftover iolimit cgroups left"

echo "iolimit v1: $fails failure(s)"
exit $((fails > 0))
