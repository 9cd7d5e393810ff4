#!/bin/sh
# iolimit_v2.sh: iolimit on cgroup v2, run inside the test VM by vm.sh
# (busybox sh; cwd is /mnt, ext4 on the virtio disk /dev/vda; iolimit and
# GNU dd in PATH; cgroup2 on /sys/fs/cgroup with every controller, no v1).
#
# Each limit is measured against the guest's clock: bytes (or operations)
# divided by the elapsed time of the whole iolimit run, which for buffered
# writes includes the final fsync. Must hold within 10 %.
MiB=1048576
CG=/sys/fs/cgroup
fails=0
pass() { echo "VMTEST PASS $*"; }
fail() { echo "VMTEST FAIL $*"; fails=$((fails + 1)); }
info() { echo "VMTEST INFO $*"; }
show_err() { sed 's/^/VMTEST INFO   stderr: /' /tmp/err | head -8; }

# Centiseconds since boot (from /proc/uptime, "SECONDS.CC").
cs() {
  read -r up _ </proc/uptime
  s=${up%.*} f=${up#*.}
  f=${f#0}
  echo $((s * 100 + f))
}

# ratio_text PERMILLE: "0.998"
ratio_text() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }

drop_caches() {
  sync
  echo 3 >/proc/sys/vm/drop_caches
}

# dd_cs: the elapsed time GNU dd reported in /tmp/err ("copied, 4.91376 s"),
# in centiseconds; it runs from dd's first I/O to its last (fsync included).
dd_cs() {
  t=$(sed -n 's/.*copied, \([0-9]*\)\.\([0-9][0-9]\).* s,.*/\1 \2/p' /tmp/err | tail -1)
  [ -n "$t" ] || { echo 0; return; }
  set -- $t
  f=${2#0}
  echo $(($1 * 100 + f))
}

# secs_text CS: "6.17"
secs_text() { printf '%d.%02d' $(($1 / 100)) $(($1 % 100)); }

# measure WHAT OPTION VALUE LIMIT AMOUNT UNIT -- CMD...: runs CMD (a GNU dd)
# under `iolimit OPTION VALUE`, LIMIT being VALUE in UNITs per second and
# AMOUNT the UNITs CMD moves. Passes when AMOUNT over dd's own elapsed time
# is within 10 % of LIMIT; the rate over the whole iolimit run (which adds
# starting both programs under the emulator) is printed beside it. Faster
# than the limit fails at once. Slower is run once more: an emulated CPU
# starved by a busy host issues I/O late, which is no fault of the limit.
measure() {
  what=$1 opt=$2 value=$3 limit=$4 amount=$5 unit=$6
  shift 7
  for try in 1 2; do
    drop_caches  # reads come from the disk, writes start with no dirty pages
    t0=$(cs)
    iolimit "$opt" "$value" -- "$@" >/tmp/out 2>/tmp/err
    rc=$?
    t1=$(cs)
    run=$((t1 - t0))
    [ $run -gt 0 ] || run=1
    el=$(dd_cs)
    [ $el -gt 0 ] || el=1
    got=$((amount * 100 / el))
    pm=$((amount * 100000 / el / limit))
    pm_run=$((amount * 100000 / run / limit))
    line="$what: $opt $value: $got $unit/s ($amount $unit in $(secs_text $el) s), $(ratio_text $pm) of the limit; whole run $(secs_text $run) s, $(ratio_text $pm_run)"
    [ $rc -eq 0 ] && [ $pm -lt 900 ] && [ $try -eq 1 ] || break
    info "$line: slower than the limit; once more"
    cgroup_gone "$what (first try)"
  done
  if [ $rc -ne 0 ]; then
    fail "$what: exit $rc"
    show_err
  elif [ $pm -ge 900 ] && [ $pm -le 1100 ]; then
    pass "$line"
  else
    fail "$line: not within 10 %"
    show_err
  fi
  cgroup_gone "$what"
}

# The cgroup named in iolimit's start line is gone.
cgroup_gone() {
  cg=$(sed -n 's/.* in \(\/[^:]*\):.*/\1/p' /tmp/err | head -1)
  if [ -z "$cg" ]; then
    fail "$1: no cgroup named on stderr"
    show_err
  elif [ -e "$cg" ]; then
    fail "$1: cgroup $cg left behind"
  else
    pass "$1: cgroup $cg removed"
  fi
}

err_has() {
  if grep -q -- "$1" /tmp/err; then pass "$2"; else
    fail "$2: stderr lacks '$1'"
    show_err
  fi
}

err_lacks() {
  if grep -q -- "$1" /tmp/err; then
    fail "$2: stderr has '$1'"
    show_err
  else pass "$2"; fi
}


# ---- control: without iolimit a buffered write is not held to 1 MiB/s ----
t0=$(cs)
dd if=/dev/zero of=control bs=1M count=6 conv=fsync 2>/dev/null
el=$(($(cs) - t0))
if [ $el -lt 300 ]; then pass "control: 6 MiB buffered write + fsync without iolimit took $el cs (< 3 s)"; else
  fail "control: 6 MiB buffered write without iolimit took $el cs; the disk is too slow to measure a 1 MiB/s limit"
fi
rm -f control

# ---- writes under --wbps 1M ---------------------------------------------
measure "direct write" --wbps 1M $MiB $((6 * MiB)) B -- \
  dd if=/dev/zero of=direct bs=256k count=24 oflag=direct
err_has "with cgroup v2 (io.max, memory)" "v2 used, with the memory controller"
err_has "wrote 6291456 bytes" "io.stat counted the 6 MiB written"
err_lacks "only direct and synchronous" "no v1 buffered-write warning on v2"
err_lacks "warning" "no warning at all on v2"
sc=$(cat $CG/cgroup.subtree_control)
case " $sc " in
  *" io "*) case " $sc " in *" memory "*) sc_ok=1 ;; esac ;;
esac
[ -n "${sc_ok:-}" ] && pass "io and memory in the root's cgroup.subtree_control ($sc)" ||
  fail "root cgroup.subtree_control is '$sc', wants io and memory"

measure "buffered write (conv=fsync)" --wbps 1M $MiB $((6 * MiB)) B -- \
  dd if=/dev/zero of=buffered bs=1M count=6 conv=fsync
err_lacks "only direct and synchronous" "buffered: no v1 warning"
w=$(sed -n 's/.* wrote \([0-9]*\) bytes.*/\1/p' /tmp/err)
[ "${w:-0}" -ge $((6 * MiB)) ] && pass "buffered: the cgroup was charged ${w} bytes of writeback" ||
  fail "buffered: io.stat charged ${w:-no} bytes to the cgroup, want >= 6 MiB"

# ---- reads under --rbps 1M (from the disk: caches dropped) ---------------
drop_caches
measure "direct read" --rbps 1M $MiB $((5 * MiB)) B -- \
  dd if=direct of=/dev/null bs=256k count=20 iflag=direct
drop_caches
measure "buffered read" --rbps 1M $MiB $((5 * MiB)) B -- \
  dd if=buffered of=/dev/null bs=256k count=20

# ---- operations: 80 direct 4 KiB reads / writes at 20 per second ---------
# (A limit of 25 gave 20.4 ops/s on this 6.1 kernel, consistent with its
# blk-throttle granting whole operations per 100 ms slice; 20 is exact.)
drop_caches
measure "direct 4k reads" --riops 20 20 80 ops -- \
  dd if=direct of=/dev/null bs=4k count=80 iflag=direct
err_has "read 327680 bytes (320.0 KiB) in 80 ops" "io.stat counted 80 read ops"
measure "direct 4k writes" --wiops 20 20 80 ops -- \
  dd if=/dev/zero of=small bs=4k count=80 oflag=direct
err_has "in 80 ops" "io.stat counted 80 write ops"

# ---- cleanup when the command or iolimit is killed -----------------------
# start_long CMD...: iolimit running CMD in the background; sets IOL
# (iolimit's pid) and CGP (its cgroup) once the command is in it.
start_long() {
  iolimit --wbps 256K -- "$@" >/tmp/out 2>/tmp/err &
  IOL=$!
  CGP=""
  for _ in $(seq 100); do
    CGP=$(ls -d $CG/iolimit-* 2>/dev/null | head -1)
    [ -n "$CGP" ] && [ -n "$(cat "$CGP/cgroup.procs")" ] && break
    sleep 0.1
  done
  sleep 0.3
}

start_long dd if=/dev/zero of=long bs=64k count=400 oflag=direct
kill -KILL $(cat "$CGP/cgroup.procs")
wait $IOL
rc=$?
[ $rc -eq 137 ] && pass "command killed by SIGKILL: iolimit exit 137" || fail "command killed: iolimit exit $rc"
[ -e "$CGP" ] && fail "command killed: cgroup $CGP left behind" || pass "command killed: cgroup $CGP removed"

# Any catchable signal sent to iolimit reaches the command (sleep: it dies
# of it), and the cgroup goes. SIGINT and SIGQUIT are left out: sh starts
# background jobs with them ignored.
for sig in TERM HUP USR1 USR2 ALRM PIPE VTALRM XCPU IO PWR; do
  start_long sleep 300
  kill -$sig $IOL
  wait $IOL
  rc=$?
  n=$(kill -l $sig)
  [ $rc -eq $((128 + n)) ] && pass "SIG$sig to iolimit: exit $rc" || fail "SIG$sig to iolimit: exit $rc, want $((128 + n))"
  [ -e "$CGP" ] && fail "SIG$sig to iolimit: cgroup $CGP left behind" || pass "SIG$sig to iolimit: cgroup $CGP removed"
done

left=$(ls -d $CG/iolimit-* 2>/dev/null)
[ -z "$left" ] && pass "no iolimit cgroup left" || fail "left behind: $left"
info "$fails failure(s)"
[ $fails -eq 0 ]
