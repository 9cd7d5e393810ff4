# lib.sh: helpers shared by the real-program suites (sourced, not run).
#
# Each suite runs a real program's workload once under the C library's
# malloc and once with LD_PRELOAD=libspanalloc.so, and compares the two.
# Callers set LIB (path of libspanalloc.so) before sourcing.
: "${LIB:?set LIB to libspanalloc.so}"
[[ -f $LIB ]] || { echo "FAIL: $LIB does not exist"; exit 1; }
LIB=$(readlink -f "$LIB")
unset LD_PRELOAD

T=$(mktemp -d "${TMPDIR:-/tmp}/spanalloc-real.XXXXXX")
BG_PIDS=()  # servers this suite started, stopped by their own pid on exit
real_cleanup() {
  local p
  for p in "${BG_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap real_cleanup EXIT

FAILS=0
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
finish() {  # finish NAME: the suite's verdict, its exit status
  if ((FAILS)); then echo "$1: $FAILS check(s) failed"; exit 1; fi
  echo "PASS: $1"
}

# need CMD...: every command exists (scripts/deps.sh installs them).
need() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null || { echo "FAIL: $c not installed (run scripts/deps.sh as root)"; exit 1; }
  done
}

# in_maps PID: libspanalloc is mapped into process PID.
in_maps() { grep -q libspanalloc "/proc/$1/maps" 2>/dev/null; }

# bound_to_spanalloc BIN ARGS...: the dynamic linker binds BIN's malloc to
# libspanalloc when it is preloaded (BIN run once with ARGS).
bound_to_spanalloc() {
  local out
  out=$(LD_DEBUG=bindings LD_PRELOAD=$LIB "$@" 2>&1 >/dev/null </dev/null)
  grep -q "to [^ ]*libspanalloc[^ ]* \[0\]: normal symbol \`malloc'" <<<"$out"
}

# same_file WHAT A B: A and B are identical, else a failure showing the diff.
same_file() {
  if ! cmp -s "$2" "$3"; then
    fail "$1 differs between glibc and spanalloc:"
    diff "$2" "$3" | head -20
    return 1
  fi
}

# free_port: a TCP port on 127.0.0.1 nobody listens on now.
free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
