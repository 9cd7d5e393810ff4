# lib.sh: helpers for the pid1 cases (sourced by cases.sh).

: "${PID1:?set PID1 to the pid1 binary}"
: "${PROBE:?set PROBE to the probe helper}"

W=$(mktemp -d "${TMPDIR:-/tmp}/pid1-test.XXXXXX")
BG=()  # background jobs to kill if a case fails half-way
cleanup() {
  local p
  for p in "${BG[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT

die() { echo "FAIL: $*" >&2; exit 1; }

need_root_pidns() {
  [[ $(id -u) == 0 ]] || die "precondition: PID-namespace cases run as root (unshare --pid)"
  unshare --pid --fork --mount-proc true ||
    die "precondition: 'unshare --pid --fork --mount-proc' does not work here"
}

need_tini() {
  command -v tini >/dev/null || die "precondition: Debian's tini is not installed (scripts/deps.sh installs it)"
}

# status CMD...: prints CMD's exit status (stdin from /dev/null, bounded).
status() {
  local rc=0
  timeout 30 "$@" </dev/null >"$W/out" 2>"$W/err" || rc=$?
  echo "$rc"
}

# expect_status WANT CMD...: CMD exits WANT.
expect_status() {
  local want=$1 rc
  shift
  rc=$(status "$@")
  [[ $rc == "$want" ]] || die "$* exited $rc, want $want; stderr: $(cat "$W/err")"
}

# wait_file PATH: waits up to 10 s for PATH to exist.
wait_file() {
  local i
  for i in $(seq 1000); do [[ -e $1 ]] && return 0; sleep 0.01; done
  die "timed out waiting for $1"
}

# wait_grep PATTERN FILE: waits up to 10 s for a line matching PATTERN.
wait_grep() {
  local i
  for i in $(seq 1000); do grep -Eq -- "$1" "$2" 2>/dev/null && return 0; sleep 0.01; done
  die "timed out waiting for /$1/ in $2: $(cat "$2" 2>/dev/null)"
}

# wait_count N PATTERN FILE: waits up to 10 s for N lines matching PATTERN.
wait_count() {
  local i
  for i in $(seq 1000); do
    [[ $(grep -Ec -- "$2" "$3" 2>/dev/null) -ge $1 ]] && return 0
    sleep 0.01
  done
  die "timed out waiting for $1 x /$2/ in $3: $(cat "$3" 2>/dev/null)"
}

# in_pidns CMD...: starts CMD as PID 1 of a new PID namespace in the
# background; sets NS_JOB (the unshare job) and NS_INIT (CMD's pid as seen
# from here).
in_pidns() {
  unshare --pid --fork --mount-proc "$@" </dev/null >"$W/out" 2>"$W/err" &
  NS_JOB=$!
  BG+=("$NS_JOB")
  local i kids=""
  for i in $(seq 1000); do
    kids=$(cat "/proc/$NS_JOB/task/$NS_JOB/children" 2>/dev/null || true)
    [[ -n $kids ]] && break
    sleep 0.01
  done
  [[ -n $kids ]] || die "no init appeared in the namespace"
  NS_INIT=${kids%% *}
  BG+=("$NS_INIT")
}

# in_background CMD...: starts CMD in the background; sets JOB.
in_background() {
  "$@" </dev/null >"$W/out" 2>"$W/err" &
  JOB=$!
  BG+=("$JOB")
}

# wait_job PID: waits for the background job PID (of this shell, so not in
# a subshell) and sets RC to its exit status.
wait_job() {
  RC=0
  wait "$1" || RC=$?
}

# state_of PID: the one-letter state from /proc/PID/stat.
state_of() { sed -E 's/^[0-9]+ \(.*\) (.) .*/\1/' "/proc/$1/stat"; }
