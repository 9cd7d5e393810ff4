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
  expect_fail 2 "target '$W/c' is not a directory" "$SPARSECP" "$W/a" "$W/b" "$W/c"
  [[ ! -e $W/c ]] || die "usage error created the target"
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
# copied to its new end. A shrunk one is copied up to its new end or up to
# what had been read before it shrank, and those bytes are the original's.
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
      ds=$(size_of "$W/dst")
      ((ds >= to && ds <= orig)) || die "$m $how: copy has $ds bytes, want $to..$orig"
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

fn="case_${1:?usage: cases.sh CASE}"
declare -F "$fn" >/dev/null || die "no case $1"
"$fn"
echo "ok: $1"
