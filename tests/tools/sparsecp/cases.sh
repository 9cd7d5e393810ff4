#!/usr/bin/env bash
# cases.sh CASE: one sparsecp test case (registered one by one in CTest).
# GNU cp --sparse=MODE is the oracle for bytes, size and allocated blocks.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

case_help() {
  "$SPARSECP" --help >"$W/help"
  local s
  for s in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" EXAMPLES; do
    grep -q "^$s\$" "$W/help" || die "--help lacks section $s"
  done
  grep -q -- '--sparse=WHEN' "$W/help" || die "--help lacks --sparse"
  "$SPARSECP" --version | grep -q '^sparsecp ' || die "--version"
}

case_usage() {
  expect_fail 2 "missing file operand" "$SPARSECP"
  expect_fail 2 "missing destination file operand after 'a'" "$SPARSECP" a
  expect_fail 2 "invalid argument 'sometimes' for '--sparse'" "$SPARSECP" --sparse=sometimes a b
  grep -q "Valid arguments are: 'auto', 'always', 'never'" "$W/err" || die "no list of valid --sparse"
  expect_fail 2 "unrecognized option '--nope'" "$SPARSECP" --nope a b
  expect_fail 2 "invalid option -- 'q'" "$SPARSECP" -q a b
  grep -q "Try 'sparsecp --help'" "$W/err" || die "no --help hint"
  mkfile "$W/a" d:10; mkfile "$W/b" d:10
  expect_fail 2 "target '$W/c': No such file or directory" "$SPARSECP" "$W/a" "$W/b" "$W/c"
  [[ ! -e $W/c ]] || die "usage error created the target"
  expect_fail 2 "target '$W/b': Not a directory" "$SPARSECP" "$W/a" "$W/a" "$W/b"
}

case_ends_in_hole() {
  mkfile "$W/src" d:1 h:1M
  vs_cp_all "$W/src"
  mkfile "$W/src2" d:8K h:3M
  vs_cp_all "$W/src2"
  [[ $(blocks_of "$W/ours.auto") -le 16 ]] || die "trailing hole was allocated"
}

case_all_hole() {
  truncate -s 10M "$W/src"
  vs_cp_all "$W/src"
  [[ $(blocks_of "$W/ours.auto") == 0 ]] || die "hole-only file got blocks"
}

case_empty() {
  : >"$W/src"
  vs_cp_all "$W/src"
  [[ $(size_of "$W/ours.auto") == 0 ]] || die "empty copy is not empty"
}

# Alternating data and holes at many granularities (as coreutils sparse.sh).
case_patterns() {
  local n
  for n in 1 511 4K 4097 64K 1M; do
    mkfile "$W/src" d:"$n" h:"$n" d:"$n" h:1M d:"$n"
    vs_cp_all "$W/src"
    mkfile "$W/src" h:"$n" d:"$n" h:"$n"
    vs_cp_all "$W/src"
  done
}

# Random layouts (fixed seed) on the given folder's file system.
random_layouts() {
  local dir=$1 i j segs kinds=(d z h) sizes=(1 511 4K 4097 64K 300K 1M)
  RANDOM=20261127
  for i in $(seq 12); do
    segs=()
    for j in $(seq $((RANDOM % 5 + 2))); do
      segs+=("${kinds[RANDOM % 3]}:${sizes[RANDOM % 7]}")
    done
    mkfile "$dir/src" "${segs[@]}"
    vs_cp_all "$dir/src" || die "layout ${segs[*]}"
  done
}

case_layouts_tmp() { random_layouts "$W"; }

case_layouts_shm() {
  [[ -d /dev/shm && -w /dev/shm ]] || die "precondition: /dev/shm (tmpfs) must be writable"
  SHM_DIR=$(mktemp -d /dev/shm/sparsecp-test.XXXXXX)
  trap 'rm -rf "$W0" "$SHM_DIR"' EXIT
  W=$SHM_DIR random_layouts "$SHM_DIR"
}

# --sparse=always turns zeros stored as data into holes; auto keeps them.
case_always_digs() {
  mkfile "$W/src" z:1M d:1 z:64K d:4K z:3000
  vs_cp_all "$W/src"
  [[ $(blocks_of "$W/ours.always") -lt $(blocks_of "$W/src") ]] || die "always dug no hole"
  [[ $(blocks_of "$W/ours.auto") == $(blocks_of "$W/src") ]] || die "auto changed a dense file"
}

# never gives a fully allocated file from a sparse one.
case_never_fills() {
  mkfile "$W/src" d:4K h:4M d:4K
  vs_cp never "$W/src"
  [[ $(blocks_of "$W/ours.never") -ge $(((4096 * 1026) / 512)) ]] || die "never left holes"
}

# Preallocated extents inside and past the end of file (sparse-extents.sh).
case_prealloc() {
  mkfile "$W/src" d:4K p:1M d:4K k:2M
  vs_cp_all "$W/src"
  mkfile "$W/src" p:256K h:1M
  vs_cp_all "$W/src"
}

# 1 TiB, all hole, and 1 TiB with a byte at both ends: no hole is read
# (read counts by the shim) and none is written (allocated blocks).
case_one_tib() {
  truncate -s 1T "$W/src"
  timeout 60 env LD_PRELOAD="$FAULT_SHIM" FAULT_LOG="$W/shim.log" "$SPARSECP" "$W/src" "$W/dst"
  [[ $(size_of "$W/dst") == $((1 << 40)) ]] || die "1T size"
  [[ $(blocks_of "$W/dst") == 0 ]] || die "1T copy allocated $(blocks_of "$W/dst") blocks"
  [[ $(shim_count read_bytes) == 0 && $(shim_count cfr_bytes) == 0 ]] || die "read a hole: $(tail -1 "$W/shim.log")"
  printf a | dd of="$W/src" conv=notrunc status=none
  printf z | dd of="$W/src" bs=1 seek=$(((1 << 40) - 1)) conv=notrunc status=none
  local m
  for m in auto always; do
    rm -f "$W/dst"
    timeout 60 env LD_PRELOAD="$FAULT_SHIM" FAULT_LOG="$W/shim.log" "$SPARSECP" --sparse=$m "$W/src" "$W/dst"
    [[ $(size_of "$W/dst") == $((1 << 40)) ]] || die "1T size ($m)"
    [[ $(blocks_of "$W/dst") == $(blocks_of "$W/src") ]] || die "$m: blocks $(blocks_of "$W/dst") vs $(blocks_of "$W/src")"
    local moved=$(($(shim_count read_bytes) + $(shim_count cfr_bytes)))
    [[ $moved -le 8192 ]] || die "$m: moved $moved bytes, holes were read"
    [[ $(head -c 1 "$W/dst") == a && $(tail -c 1 "$W/dst") == z ]] || die "$m: end bytes"
  done
}

# Larger than 4 GiB, with a data extent across the 4 GiB line. cmp of the
# whole file reads 4.5 GiB twice, so it runs once (auto); always is checked
# by size, blocks against cp, and cmp of every region that holds data.
case_over_4g() {
  mkfile "$W/src" d:64K h:4095M d:2M h:400M d:1
  local size; size=$(size_of "$W/src")
  [[ $size -gt $((4 << 30)) ]] || die "setup: not over 4 GiB"
  "$SPARSECP" "$W/src" "$W/ours"
  same_bytes "$W/src" "$W/ours"
  [[ $(blocks_of "$W/ours") == $(blocks_of "$W/src") ]] || die "auto: blocks"
  "$SPARSECP" --sparse=always "$W/src" "$W/ours2"
  cp --sparse=always "$W/src" "$W/theirs2"
  [[ $(size_of "$W/ours2") == "$size" ]] || die "always: size"
  [[ $(blocks_of "$W/ours2") == $(blocks_of "$W/theirs2") ]] || die "always: blocks vs cp"
  local start=$(((4095 << 20) + (64 << 10)))
  cmp -n $((64 << 10)) "$W/src" "$W/ours2" || die "always: first extent"
  cmp -i $start -n $((2 << 20)) "$W/src" "$W/ours2" || die "always: extent across 4 GiB"
  cmp -i $((size - 1)) "$W/src" "$W/ours2" || die "always: last byte"
}

# /proc files say size 0 and have content; /sys files say 4096 and have
# less (and SEEK_HOLE there reports one extent: zero detection, short read).
case_proc() {
  local f
  for f in /proc/version /proc/filesystems /proc/sys/kernel/ostype /sys/devices/system/cpu/possible; do
    cat "$f" >"$W/expect"
    "$SPARSECP" "$f" "$W/dst"
    cmp "$W/expect" "$W/dst" || die "$f copied wrong"
    vs_cp auto "$f"
  done
}

# A pipe, /dev/null and a fifo as destination get real zeros.
case_pipe_dest() {
  mkfile "$W/src" d:100 h:1M d:4K h:64K
  "$SPARSECP" "$W/src" /dev/stdout | cmp - "$W/src" || die "pipe destination"
  "$SPARSECP" --sparse=always "$W/src" /dev/stdout | cmp - "$W/src" || die "pipe destination (always)"
  "$SPARSECP" "$W/src" /dev/null || die "/dev/null destination"
  mkfifo "$W/fifo"
  cat "$W/fifo" >"$W/out" &
  "$SPARSECP" "$W/src" "$W/fifo"
  wait $!
  same_bytes "$W/src" "$W/out"
  [[ -p $W/fifo ]] || die "fifo was replaced"
}

# A pipe as source is read to the end; always digs holes from it.
case_pipe_source() {
  mkfile "$W/src" z:1M d:10 z:128K
  cat "$W/src" | "$SPARSECP" --sparse=always /dev/stdin "$W/dst"
  cat "$W/src" | cp --sparse=always /dev/stdin "$W/theirs"
  same_bytes "$W/src" "$W/dst"
  [[ $(blocks_of "$W/dst") == $(blocks_of "$W/theirs") ]] || die "pipe always: blocks $(blocks_of "$W/dst") vs cp $(blocks_of "$W/theirs")"
  cat "$W/src" | "$SPARSECP" /dev/stdin "$W/dst2"
  same_bytes "$W/src" "$W/dst2"
}

# Same file through the same name, a hard link, symbolic links, a folder
# target and /proc/self/fd: refused before anything is truncated.
case_same_file() {
  mkfile "$W/a" d:5000 h:1M d:7
  cp "$W/a" "$W/orig"
  ln "$W/a" "$W/hard"
  ln -s "$W/a" "$W/sym"
  local d
  for d in "$W/a" "$W/hard" "$W/sym" "$W" "/proc/self/fd/7"; do
    expect_fail 1 "'$W/a' and '.*' are the same file" "$SPARSECP" "$W/a" "$d" 7<"$W/a"
    same_bytes "$W/orig" "$W/a"
  done
  expect_fail 1 "are the same file" "$SPARSECP" "$W/sym" "$W/a"
  expect_fail 1 "are the same file" "$SPARSECP" "$W/hard" "$W/sym"
  same_bytes "$W/orig" "$W/a"
}

# An existing larger destination is truncated; no stale bytes remain.
case_overwrite() {
  mkfile "$W/src" d:4K h:1M d:4K
  mkfile "$W/ours.auto" d:3M
  mkfile "$W/theirs.auto" d:3M
  vs_cp auto "$W/src"
}

# Folder targets, several sources, folders and missing sources as operands.
case_targets() {
  mkdir "$W/dir" "$W/sub"
  mkfile "$W/a" d:1 h:64K
  mkfile "$W/b" h:64K d:1
  "$SPARSECP" "$W/a" "$W/b" "$W/dir/"
  same_bytes "$W/a" "$W/dir/a"
  same_bytes "$W/b" "$W/dir/b"
  rm "$W/dir/a"
  expect_fail 1 "omitting directory '$W/sub'" "$SPARSECP" "$W/sub" "$W/a" "$W/dir"
  same_bytes "$W/a" "$W/dir/a"
  expect_fail 1 "cannot stat '$W/nope': No such file or directory" "$SPARSECP" "$W/nope" "$W/dir"
  ln -s "$W/missing" "$W/dangling"
  expect_fail 1 "not writing through dangling symlink '$W/dangling'" "$SPARSECP" "$W/a" "$W/dangling"
  [[ ! -e $W/missing ]] || die "wrote through a dangling symlink"
  expect_fail 1 "cannot create regular file '$W/nodir/x': No such file or directory" \
    "$SPARSECP" "$W/a" "$W/nodir/x"
  chmod 000 "$W/a"
  "$SPARSECP" "$W/a" "$W/dir/c"  # root reads anyway; mode 000 copied
  [[ $(stat -c %a "$W/dir/c") == 0 ]] || die "mode not copied"
}

# ENOSPC on a device and on a full file system; EIO on read and on write.
case_errors() {
  mkfile "$W/src" d:1M h:1M d:1M
  expect_fail 1 "^sparsecp: error writing '/dev/full': No space left on device$" "$SPARSECP" "$W/src" /dev/full
  expect_fail 1 "^sparsecp: error reading '/proc/self/mem': Input/output error$" "$SPARSECP" /proc/self/mem "$W/x"
  local m
  for m in auto always never; do
    expect_fail 1 "^sparsecp: error writing '$W/eio': Input/output error$" \
      shim FAULT_WRITE_EIO_AFTER=4096 -- "$SPARSECP" --sparse=$m "$W/src" "$W/eio"
  done
  [[ $(id -u) == 0 ]] || die "precondition: the full-file-system case needs root (unshare --mount)"
  for m in auto always never; do
    expect_fail 1 "^sparsecp: error writing '$W/mnt/dst': No space left on device$" \
      unshare --mount sh -c 'mkdir -p "$1/mnt" && mount -t tmpfs -o size=512k none "$1/mnt" &&
        exec "$2" --sparse="$3" "$1/src" "$1/mnt/dst"' sh "$W" "$SPARSECP" "$m"
  done
}

# Short transfers and EINTR on every call: loops must make the same copy.
case_short_eintr() {
  mkfile "$W/src" d:70K h:1M d:5000 z:64K d:1 h:10K
  local m
  for m in auto always never; do
    vs_cp $m "$W/src" shim FAULT_SHORT=1 FAULT_EINTR=1 --
  done
  [[ $(shim_count eintr) -gt 0 && $(shim_count short) -gt 0 ]] || die "shim did not inject"
  shim FAULT_SHORT=1 FAULT_EINTR=1 -- "$SPARSECP" "$W/src" /dev/stdout | cmp - "$W/src" || die "pipe under short I/O"
  shim FAULT_SHORT=1 FAULT_EINTR=1 -- "$SPARSECP" /proc/version "$W/pv"
  cmp /proc/version "$W/pv" || die "/proc under short I/O"
}

# Every error copy_file_range is known to give, and 0 bytes: read/write.
case_offload_fallback() {
  mkfile "$W/src" d:100K h:1M d:3
  local e
  for e in EXDEV EINVAL ENOSYS EOPNOTSUPP EPERM ETXTBSY EBADF EIO ZERO; do
    rm -f "$W/ours.auto"
    shim FAULT_CFR=$e -- "$SPARSECP" -v "$W/src" "$W/ours.auto" >"$W/v"
    [[ $(shim_count cfr_fail) -gt 0 ]] || die "$e: copy_file_range was not tried"
    grep -q 'data: read/write)' "$W/v" || die "$e: no fallback: $(cat "$W/v")"
    cp --sparse=auto "$W/src" "$W/theirs"
    same_bytes "$W/src" "$W/ours.auto"
    [[ $(blocks_of "$W/ours.auto") == $(blocks_of "$W/theirs") ]] || die "$e: blocks"
  done
  "$SPARSECP" -v "$W/src" "$W/dst" >"$W/v"
  grep -q 'data: copy_file_range)' "$W/v" || die "copy_file_range not used: $(cat "$W/v")"
}

# File systems that do not report holes: zero detection by aligned blocks.
case_seek_fallback() {
  mkfile "$W/src" d:8K h:1M d:8K h:64K
  local how
  for how in EINVAL EOPNOTSUPP TRIVIAL; do
    rm -f "$W/dst"
    shim FAULT_SEEK=$how -- "$SPARSECP" -v "$W/src" "$W/dst" >"$W/v"
    grep -q '(holes: zeros;' "$W/v" || die "$how: no zero detection: $(cat "$W/v")"
    same_bytes "$W/src" "$W/dst"
    [[ $(blocks_of "$W/dst") == $(blocks_of "$W/src") ]] || die "$how: blocks $(blocks_of "$W/dst") vs $(blocks_of "$W/src")"
  done
  # A dense source with zeros: auto keeps it dense even without SEEK_HOLE.
  mkfile "$W/dense" d:4K z:64K d:4K
  shim FAULT_SEEK=EINVAL -- "$SPARSECP" "$W/dense" "$W/dst2"
  same_bytes "$W/dense" "$W/dst2"
  [[ $(blocks_of "$W/dst2") == $(blocks_of "$W/dense") ]] || die "dense source lost blocks"
}

# A source that shrinks or grows while it is copied (the shim truncates it
# after 64 KiB were read): no error, no endless loop. A grown source is
# copied to its new end. A shrunk one gives a copy that ends exactly where
# the source now ends, and those bytes are the original's.
case_grow_shrink() {
  local m how segs to ds orig
  for m in auto always never; do
    for how in "d:2M 600K" "d:64K h:1M d:64K 100K" "d:2M 3M" "d:64K h:1M d:64K 2M"; do
      segs=(${how% *})
      to=$(numfmt --from=iec "${how##* }")
      mkfile "$W/src" "${segs[@]}"
      cp "$W/src" "$W/orig"
      orig=$(size_of "$W/orig")
      rm -f "$W/dst"
      shim FAULT_RESIZE_PATH="$W/src" FAULT_RESIZE_AFTER=65536 FAULT_RESIZE_TO="$to" FAULT_SHORT=1 -- \
        timeout 30 "$SPARSECP" --sparse=$m "$W/src" "$W/dst" || die "$m $how: failed"
      [[ $(size_of "$W/src") == "$to" ]] || die "$m $how: the shim did not resize"
      if ((to > orig)); then
        same_bytes "$W/src" "$W/dst"
        continue
      fi
      # The README promises a copy that ends where the source ends.
      ds=$(size_of "$W/dst")
      ((ds == to)) || die "$m $how: copy has $ds bytes, the source now $to"
      cmp -n "$ds" "$W/orig" "$W/dst" || die "$m $how: copy differs from the original"
    done
  done
}

# -v: extents, bytes of data and of holes, per file.
case_verbose() {
  mkfile "$W/src" d:4K h:1M d:4K
  "$SPARSECP" -v "$W/src" "$W/dst" >"$W/v"
  grep -qx "'$W/src' -> '$W/dst': 2 extents, 8192 bytes data, 1048576 bytes holes (holes: SEEK_HOLE; data: copy_file_range)" "$W/v" ||
    die "verbose auto: $(cat "$W/v")"
  "$SPARSECP" -v --sparse=never "$W/src" "$W/dst" >"$W/v"
  grep -q ": 2 extents, 8192 bytes data, 1048576 bytes zeros written (holes: SEEK_HOLE; data: read/write)" "$W/v" ||
    die "verbose never: $(cat "$W/v")"
  mkfile "$W/z" z:1M d:1
  "$SPARSECP" -v --sparse=always "$W/z" "$W/dst" >"$W/v"
  grep -q ": 1 extents, 1 bytes data, 1048576 bytes holes (holes: SEEK_HOLE + zeros; data: read/write)" "$W/v" ||
    die "verbose always: $(cat "$W/v")"
}

# cp's message for a target named as a folder that is not one.
case_missing_dir() {
  mkfile "$W/a.txt" d:10
  local args
  for args in "newdir/" "a.txt/" "a.txt/x" "nope/x"; do
    (cd "$W" && "$SPARSECP" a.txt $args) 2>"$W/ours.err" && die "sparsecp a.txt $args succeeded"
    (cd "$W" && cp a.txt $args) 2>"$W/cp.err" && die "cp a.txt $args succeeded"
    [[ $(sed 's/^sparsecp:/cp:/' "$W/ours.err") == $(cat "$W/cp.err") ]] ||
      die "a.txt $args: '$(cat "$W/ours.err")', cp says '$(cat "$W/cp.err")'"
  done
  [[ ! -e $W/newdir ]] || die "newdir was created"
  same_bytes "$W/a.txt" "$W/a.txt"
}

# oracle WANT SETUP ARGS...: in two fresh folders made by the shell code
# SETUP, runs sparsecp ARGS and cp ARGS. Both leave the same files; the
# messages are cp's (program name aside, and our usage hint), sparsecp
# exits WANT (cp's 1 for a usage error is our 2).
oracle() {
  local want=$1 setup=$2 t rc
  shift 2
  for t in ours cp; do
    rm -rf "$W/$t" && mkdir "$W/$t"
    (cd "$W/$t" && eval "$setup")
    rc=0
    if [[ $t == ours ]]; then
      (cd "$W/$t" && "$SPARSECP" "$@") 2>"$W/$t.err" || rc=$?
      ((rc == want)) || die "sparsecp $*: exit $rc, want $want; $(cat "$W/$t.err")"
    else
      (cd "$W/$t" && cp "$@") 2>"$W/$t.err" || true
    fi
    (cd "$W/$t" && find . -type f -exec md5sum {} + | sort) >"$W/$t.tree"
  done
  sed -i 's/^sparsecp:/cp:/; /^Try /d' "$W/ours.err"
  sed -i '/^Try /d' "$W/cp.err"
  cmp -s "$W/ours.err" "$W/cp.err" || die "$*: says '$(cat "$W/ours.err")', cp '$(cat "$W/cp.err")'"
  cmp -s "$W/ours.tree" "$W/cp.tree" || die "$*: files $(cat "$W/ours.tree"), cp's $(cat "$W/cp.tree")"
}

# cp's rules when several operands meet, GNU cp as the oracle.
case_multi_file() {
  local base='mkdir -p x y d && echo a >a && echo 1 >x/f && echo 2 >y/f && ln a hard'
  oracle 0 "$base" a a d/             # "specified more than once", one copy
  oracle 0 "$base" a ./a d            # the same, by another name
  oracle 0 "$base" a x/f a d/
  oracle 1 "$base" x/f y/f d/         # "will not overwrite just-created"
  oracle 0 "$base" a hard d/          # one file, two names: two copies
  oracle 1 "$base" a a                # "are the same file"
  oracle 1 "$base && cp a d/a" d/a d/
  oracle 1 "$base && mkdir d/a" a d   # "cannot overwrite directory"
  oracle 1 "$base && mkdir d/a" a y/f d
  oracle 2 "$base" a y/f nod          # "target 'nod': No such file or directory"
  oracle 2 "$base" a y/f x/f          # "target 'x/f': Not a directory"
  oracle 1 "$base" nope a d
}

# Started with standard descriptors closed: nothing lands in a file that
# took their number, and an unwritable report is an error.
case_closed_fds() {
  mkfile "$W/a" d:5000 h:64K d:7
  "$SPARSECP" "$W/a" "$W/b" <&- >&- 2>&- || die "plain copy with 0, 1, 2 closed failed"
  same_bytes "$W/a" "$W/b"
  local rc=0
  "$SPARSECP" -v "$W/a" "$W/c" >&- 2>"$W/err" || rc=$?
  ((rc == 1)) || die "-v with stdout closed: exit $rc, want 1"
  grep -qx "sparsecp: write error: Bad file descriptor" "$W/err" || die "-v with stdout closed: $(cat "$W/err")"
  same_bytes "$W/a" "$W/c"
  # Source on fd 1, destination on fd 2 if they were free: the error
  # message would be written into the copy.
  rc=0
  "$SPARSECP" /proc/self/mem "$W/d" >&- 2>&- || rc=$?
  ((rc == 1)) || die "/proc/self/mem: exit $rc"
  [[ $(size_of "$W/d") == 0 ]] || die "a message landed in the copy: $(cat "$W/d")"
  rc=0
  "$SPARSECP" --help >&- 2>/dev/null || rc=$?
  ((rc == 1)) || die "--help to a closed stdout: exit $rc"
}

# Killed by any catchable signal while copying: dies of that signal, leaves
# no file but the (partial) destination, whose bytes are the source's.
case_signals() {
  local sig pid rc
  mkfifo "$W/fifo"
  for sig in HUP INT QUIT USR1 USR2 PIPE ALRM TERM VTALRM PROF XCPU XFSZ; do
    rm -f "$W/dst"
    exec 7<>"$W/fifo"
    head -c 60000 < <(yes data) >&7
    env --default-signal "$SPARSECP" "$W/fifo" "$W/dst" 2>/dev/null &
    pid=$!
    for _ in $(seq 200); do [[ -s $W/dst && $(size_of "$W/dst") -ge 60000 ]] && break; sleep 0.05; done
    kill -"$sig" "$pid"
    rc=0; wait "$pid" || rc=$?
    exec 7>&-
    ((rc == 128 + $(kill -l "$sig"))) || die "SIG$sig: exit $rc"
    [[ $(ls "$W" | grep -v '^fifo$\|^dst$\|^a$\|^shim.log$\|^err$' | wc -l) == 0 ]] || die "SIG$sig left: $(ls "$W")"
    cmp -n "$(size_of "$W/dst")" "$W/dst" <(yes data) || die "SIG$sig: partial copy is not the source's bytes"
  done
}

# 100 KB arguments and 10000 operands: bounded messages, memory and time.
case_huge() {
  local big; big=$(head -c 100000 /dev/zero | tr '\0' x)
  mkfile "$W/a" d:10
  expect_fail 1 "cannot stat 'x{100}" "$SPARSECP" "$big" "$W/b"
  (($(wc -c <"$W/err") < 5000)) || die "100 KB name: $(wc -c <"$W/err") bytes of message"
  expect_fail 2 "invalid argument 'x{100}" "$SPARSECP" --sparse="$big" "$W/a" "$W/b"
  (($(wc -c <"$W/err") < 1000)) || die "100 KB --sparse: $(wc -c <"$W/err") bytes of message"
  expect_fail 2 "unrecognized option '--x" "$SPARSECP" --"$big" "$W/a" "$W/b"
  (($(wc -c <"$W/err") < 1000)) || die "100 KB option: $(wc -c <"$W/err") bytes of message"
  # Many files: on tmpfs, where creating them costs little.
  W=$(mktemp -d /dev/shm/sparsecp-test.XXXXXX)
  trap 'rm -rf "$W0" "$W"' EXIT
  mkfile "$W/a" d:10
  mkdir "$W/src" "$W/dst"
  local i names=()
  for i in $(seq 10000); do names+=("$i"); done
  (cd "$W/src" && touch "${names[@]}")
  local t0=$SECONDS
  (cd "$W/src" && ulimit -v 200000 && "$SPARSECP" "${names[@]}" ../dst) || die "10000 operands failed"
  [[ $(ls "$W/dst" | wc -l) == 10000 ]] || die "10000 operands: $(ls "$W/dst" | wc -l) copies"
  note "10000 operands: $((SECONDS - t0)) s"
  ((SECONDS - t0 < 60)) || die "10000 operands took $((SECONDS - t0)) s"
  # The same source 10000 times: one copy, a warning each, linear time.
  rm -f "$W/dst/a"
  (cd "$W" && ulimit -v 200000 && "$SPARSECP" $(printf "a %.0s" $(seq 10000)) dst) 2>"$W/err" || die "10000 x a"
  [[ $(grep -c "specified more than once" "$W/err") == 9999 ]] || die "duplicate warnings: $(grep -c . "$W/err")"
  # 30000 environment variables: no effect.
  rm -f "$W/dst/a"
  env -i $(printf 'V%d=x ' $(seq 30000)) "$SPARSECP" "$W/a" "$W/dst" || die "30000 environment variables"
  same_bytes "$W/a" "$W/dst/a"
}

# No numeric options; words where a number could be misread are refused.
case_numbers() {
  local v
  for v in 1 0x1 -1 1e3 99999999999999999999; do
    expect_fail 2 "invalid argument '$v' for '--sparse'" "$SPARSECP" --sparse="$v" a b
    expect_fail 2 "invalid argument '$v' for '--reflink'" "$SPARSECP" --reflink="$v" a b
  done
}

# ulimit -n and -v at their smallest workable values: clear errors.
case_ulimits() {
  mkfile "$W/a" d:300K h:1M d:5
  # 3 standard descriptors + the loader's one: sparsecp starts, then has
  # no descriptor for the copy; 5 is enough.
  expect_fail 1 "^sparsecp: cannot create regular file '$W/b': Too many open files$" \
    limited nofile 4 "$SPARSECP" "$W/a" "$W/b"
  [[ ! -e $W/b ]] || die "ulimit -n 4 created the copy"
  limited nofile 5 "$SPARSECP" "$W/a" "$W/b" || die "ulimit -n 5 failed"
  same_bytes "$W/a" "$W/b"
  # Address space: from the least that starts, up 6 MiB; each run
  # either copies right or says so, never dies of a signal.
  local v=4096 rc ok=0 failed=0
  while ! limited as $v "$SPARSECP" --version >/dev/null 2>&1; do
    v=$((v + 256)); ((v < 65536)) || die "does not start under 64 MiB"
  done
  note "starts with ulimit -v $v KiB"
  local top=$((v + 6144)) msgs=""
  for ((; v < top; v += 384)); do
    rm -f "$W/c"
    rc=0
    for m in auto always never; do
      limited as $v "$SPARSECP" --sparse=$m "$W/a" "$W/c" 2>"$W/err" || rc=$?
      ((rc < 128)) || die "ulimit -v $v: killed by signal $((rc - 128)): $(cat "$W/err")"
      if ((rc == 0)); then
        same_bytes "$W/a" "$W/c"; ok=$((ok + 1))
      else
        grep -Eq "^sparsecp: (memory exhausted|.*Cannot allocate memory)$" "$W/err" || die "ulimit -v $v: $(cat "$W/err")"
        failed=$((failed + 1))
        msgs+=" $v:$(cut -c1-40 "$W/err")"
      fi
    done
  done
  note "ulimit -v sweep: $ok copies, $failed clear memory errors:$msgs"
  ((ok > 0)) || die "no copy succeeded in the sweep"
}

# --reflink as cp spells it, on the test folder's file system (ext4 here:
# no clone), GNU cp as the oracle for what clones and what fails.
case_reflink() {
  mkfile "$W/a" d:64K h:1M d:10
  expect_fail 2 "^sparsecp: --reflink can be used only with --sparse=auto$" "$SPARSECP" --reflink --sparse=always "$W/a" "$W/b"
  expect_fail 2 "^sparsecp: --reflink can be used only with --sparse=auto$" "$SPARSECP" --reflink=always --sparse=never "$W/a" "$W/b"
  [[ ! -e $W/b ]] || die "a usage error created the copy"
  "$SPARSECP" --reflink=never --sparse=always "$W/a" "$W/b" && same_bytes "$W/a" "$W/b"
  "$SPARSECP" --reflink=auto --sparse=never "$W/a" "$W/b" && same_bytes "$W/a" "$W/b"
  local rc_cp=0 rc=0
  mkdir "$W/o" "$W/t"
  cp --reflink=always "$W/a" "$W/t/b" 2>"$W/cp.err" || rc_cp=$?
  "$SPARSECP" --reflink=always "$W/a" "$W/o/b" 2>"$W/ours.err" || rc=$?
  ((rc == rc_cp)) || die "--reflink=always: exit $rc, cp $rc_cp"
  [[ $(sed 's/^sparsecp:/cp:/; s|/o/b|/t/b|' "$W/ours.err") == $(cat "$W/cp.err") ]] ||
    die "--reflink=always says '$(cat "$W/ours.err")', cp '$(cat "$W/cp.err")'"
  note "--reflink=always here: exit $rc $(cat "$W/ours.err")"
  rm -f "$W/b"
  "$SPARSECP" -v "$W/a" "$W/b" >"$W/v"
  same_bytes "$W/a" "$W/b"
  if ((rc_cp != 0)); then grep -q "data: copy_file_range)" "$W/v" || die "auto: $(cat "$W/v")"; fi
  "$SPARSECP" -v --reflink=never "$W/a" "$W/c" >"$W/v"
  grep -q "data: read/write)" "$W/v" || die "--reflink=never used copy_file_range: $(cat "$W/v")"
  same_bytes "$W/a" "$W/c"
  [[ $(blocks_of "$W/c") == $(blocks_of "$W/a") ]] || die "--reflink=never lost the holes"
}

# on_loop_fs TYPE MIB: a TYPE file system of MIB MiB on a loop device,
# made and mounted in a private mount namespace (gone with the test), then
# the reflink_inner case on it.
on_loop_fs() {
  local type=$1 mib=$2
  [[ $(id -u) == 0 ]] || die "precondition: loop mounts need root"
  command -v "mkfs.$type" >/dev/null || die "precondition: mkfs.$type missing (scripts/deps.sh installs it)"
  if ! grep -qw "$type" /proc/filesystems && ! modprobe "$type" 2>/dev/null; then
    echo "SKIP: the kernel has no $type file system"; exit 77
  fi
  truncate -s "${mib}M" "$W/fs.img"
  "mkfs.$type" -q "$W/fs.img" >/dev/null 2>&1 || die "mkfs.$type failed"
  mkdir "$W/mnt"
  if ! unshare --mount sh -c 'mount -o loop "$1" "$2"' sh "$W/fs.img" "$W/mnt" 2>"$W/err"; then
    echo "SKIP: cannot mount a loop device here: $(cat "$W/err")"; exit 77
  fi
  unshare --mount bash -c 'mount -o loop "$1" "$2" && exec bash "$3" reflink_inner "$2" "$4"' sh \
    "$W/fs.img" "$W/mnt" "$0" "$W" || die "on $type"
}

# Runs in the namespace of on_loop_fs: $2 is the mounted file system, $3
# the outer test folder (another file system).
case_reflink_inner() {
  local fs=$2 outer=$3 m
  mkfile "$fs/src" d:1M h:8M d:64K h:1M
  for m in "" --reflink --reflink=always --reflink=auto; do
    rm -f "$fs/dst"
    "$SPARSECP" -v $m "$fs/src" "$fs/dst" >"$W/v" || die "$m failed"
    grep -q "bytes cloned (data: reflink)" "$W/v" || die "${m:-default}: not cloned: $(cat "$W/v")"
    same_bytes "$fs/src" "$fs/dst"
    [[ $(blocks_of "$fs/dst") == $(blocks_of "$fs/src") ]] || die "${m:-default}: blocks $(blocks_of "$fs/dst") vs $(blocks_of "$fs/src")"
    filefrag -v "$fs/dst" | grep -q shared || die "${m:-default}: no shared extent: $(filefrag -v "$fs/dst")"
  done
  # never: own blocks, holes kept; --sparse=always: no clone (zeros would be cloned), as cp.
  for m in --reflink=never --sparse=always; do
    rm -f "$fs/dst"
    "$SPARSECP" -v $m "$fs/src" "$fs/dst" >"$W/v" || die "$m failed"
    grep -q "data: read/write)" "$W/v" || die "$m: $(cat "$W/v")"
    same_bytes "$fs/src" "$fs/dst"
    [[ $(blocks_of "$fs/dst") == $(blocks_of "$fs/src") ]] || die "$m: blocks"
    ! filefrag -v "$fs/dst" | grep -q shared || die "$m: shares blocks: $(filefrag -v "$fs/dst")"
  done
  # Across file systems: always fails as cp does; auto copies.
  local rc=0
  "$SPARSECP" --reflink=always "$fs/src" "$outer/x" 2>"$W/err" || rc=$?
  cp --reflink=always "$fs/src" "$outer/y" 2>"$W/cp.err" || true
  ((rc == 1)) || die "cross-fs --reflink=always: exit $rc"
  [[ $(sed 's/^sparsecp:/cp:/; s|/x|/y|' "$W/err") == $(cat "$W/cp.err") ]] || die "cross-fs: '$(cat "$W/err")', cp '$(cat "$W/cp.err")'"
  "$SPARSECP" "$fs/src" "$outer/x" && same_bytes "$fs/src" "$outer/x"
  note "$(df -T "$fs" | tail -1 | awk '{print $2}'): clones share extents; never and --sparse=always copy"
}

case_reflink_btrfs() { on_loop_fs btrfs 128; }
case_reflink_xfs() { on_loop_fs xfs 300; }

fn="case_${1:?usage: cases.sh CASE}"
declare -F "$fn" >/dev/null || die "no case $1"
"$fn" "$@"
echo "ok: $1"
