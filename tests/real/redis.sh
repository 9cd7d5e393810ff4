#!/usr/bin/env bash
# redis-server under three allocators: its own (Debian links jemalloc),
# glibc's (through the glibc_malloc.so shim) and spanalloc's (LD_PRELOAD).
# Each run starts a server on a free port of 127.0.0.1, drives it with
# redis-benchmark (a bounded number of requests), then loads a fixed data
# set, saves it with BGSAVE (a fork), reloads it, and stops the server by
# its pid. Checks: no error from the benchmark or the server, the data set's
# digest identical under every allocator and after the reload, spanalloc
# mapped into the server. Prints requests/s per command and their geometric
# mean for each allocator (reported, not asserted: the machine is shared).
#
# Usage: redis.sh LIBSPANALLOC GLIBC_SHIM [REQUESTS_PER_TEST]
set -uo pipefail
LIB=${1:?path to libspanalloc.so}
SHIM=${2:?path to glibc_malloc.so}
N=${3:-20000}
source "$(dirname "$0")/lib.sh"
need redis-server redis-cli redis-benchmark
SHIM=$(readlink -f "$SHIM")
TESTS=set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,lrange_300,mset

# The fixed data set: the same commands, in the same order, every run.
dataset() {
  # 100k strings of 100 bytes, then lists, hashes, sorted sets and sets of
  # varied sizes built by a script (deterministic: no random input).
  echo "DEBUG POPULATE 100000 str 100"
  cat <<'LUA'
EVAL "for i = 1, 2000 do local k = 'coll:' .. i; for j = 1, i % 97 do redis.call('RPUSH', k .. ':l', string.rep('x', j * 7)); redis.call('HSET', k .. ':h', 'f' .. j, string.rep('y', (i * j) % 300)); redis.call('ZADD', k .. ':z', j * 1.5, 'm' .. j); redis.call('SADD', k .. ':s', j * i) end end; return 1" 0
EVAL "for i = 1, 2000, 3 do local k = 'coll:' .. i; redis.call('LTRIM', k .. ':l', 0, 10); redis.call('HDEL', k .. ':h', 'f1', 'f2', 'f3'); redis.call('ZREMRANGEBYRANK', k .. ':z', 0, 5); redis.call('APPEND', 'str:' .. i, string.rep('z', i)) end; return 1" 0
LUA
  echo "DBSIZE"
  echo "DEBUG DIGEST"
}

# run NAME PRELOAD: one server's life; writes $T/NAME.{csv,digest,info,log}.
run() {
  local name=$1 preload=$2 port pid i
  port=$(free_port)
  mkdir -p "$T/$name"
  LD_PRELOAD=$preload redis-server --port "$port" --bind 127.0.0.1 --dir "$T/$name" \
    --save '' --appendonly no --daemonize no --enable-debug-command yes \
    --logfile "$T/$name.log" </dev/null &
  pid=$!
  BG_PIDS+=("$pid")
  for i in $(seq 1 300); do
    [[ $(redis-cli -p "$port" ping 2>/dev/null) == PONG ]] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [[ $(redis-cli -p "$port" ping 2>/dev/null) != PONG ]]; then
    fail "$name: redis-server did not answer on port $port"; tail -5 "$T/$name.log"; return
  fi
  if [[ -n $preload ]] && ! grep -q "$(basename "$preload")" "/proc/$pid/maps"; then
    fail "$name: $(basename "$preload") is not mapped into redis-server"
  fi
  redis-benchmark -h 127.0.0.1 -p "$port" -n "$N" -c 20 -r 100000 -d 64 --csv -t "$TESTS" \
    >"$T/$name.csv" 2>"$T/$name.bench.err" </dev/null
  local rc=$?
  ((rc == 0)) || fail "$name: redis-benchmark exited $rc"
  if grep -qi error "$T/$name.csv" "$T/$name.bench.err"; then
    fail "$name: redis-benchmark reported errors:"; grep -i error "$T/$name.csv" "$T/$name.bench.err" | head -5
  fi
  redis-cli -p "$port" FLUSHALL >/dev/null
  dataset | redis-cli -p "$port" >"$T/$name.digest" 2>&1
  redis-cli -p "$port" BGSAVE >/dev/null
  for i in $(seq 1 600); do
    redis-cli -p "$port" INFO persistence | grep -q 'rdb_bgsave_in_progress:0' && break
    sleep 0.1
  done
  redis-cli -p "$port" INFO persistence | grep -q 'rdb_last_bgsave_status:ok' || fail "$name: BGSAVE failed"
  redis-cli -p "$port" DEBUG RELOAD >>"$T/$name.digest" 2>&1
  { redis-cli -p "$port" DBSIZE; redis-cli -p "$port" DEBUG DIGEST; } >>"$T/$name.digest" 2>&1
  redis-cli -p "$port" INFO stats >"$T/$name.info" 2>&1
  kill -TERM "$pid"
  wait "$pid"
  rc=$?
  ((rc == 0)) || fail "$name: redis-server exited $rc after SIGTERM"
  BG_PIDS=("${BG_PIDS[@]/$pid/}")
  local errs
  errs=$(sed -n 's/^total_error_replies:\([0-9]*\).*/\1/p' "$T/$name.info")
  [[ $errs == 0 ]] || fail "$name: the server counted ${errs:-no} error replies"
  grep -qE '^rejected_connections:0' "$T/$name.info" || fail "$name: the server rejected connections"
}

# rates NAME: "command rps" lines from the benchmark's CSV.
# (Names are cut at the first blank; LRANGE's set-up rows are left out.)
rates() { sed -n '/needed to benchmark/d; s/^"\([^" ]*\)[^"]*","\([0-9.]*\)".*/\1 \2/p' "$T/$1.csv"; }

start=$SECONDS
run jemalloc ""
run glibc "$SHIM"
run spanalloc "$LIB"
echo "redis: 3 servers, $N requests per command, $((SECONDS - start)) s in all"

for name in jemalloc glibc spanalloc; do
  [[ -s $T/$name.digest ]] || fail "$name: no data-set output"
  grep -q '^OK' "$T/$name.digest" || fail "$name: DEBUG RELOAD did not answer OK"
done
# DBSIZE and digest, before and after the reload, under every allocator.
same_file "data set (DBSIZE, DEBUG DIGEST, reload)" "$T/glibc.digest" "$T/spanalloc.digest"
same_file "data set (DBSIZE, DEBUG DIGEST, reload)" "$T/jemalloc.digest" "$T/spanalloc.digest"
digests=$(grep -cE '^[0-9a-f]{40}$' "$T/spanalloc.digest")
[[ $digests == 2 ]] || fail "expected 2 digests in the spanalloc run, found $digests"
[[ $(grep -E '^[0-9a-f]{40}$' "$T/spanalloc.digest" | sort -u | wc -l) == 1 ]] ||
  fail "the digest changed across BGSAVE + DEBUG RELOAD"
echo "data set: $(sed -n 4p "$T/spanalloc.digest") keys, digest $(sed -n 5p "$T/spanalloc.digest")"

# Requests/s per command: every command ran under every allocator.
printf '%-28s %12s %12s %12s %8s\n' command jemalloc glibc spanalloc "sp/glibc"
rates glibc >"$T/g"; rates jemalloc >"$T/j"; rates spanalloc >"$T/s"
ntests=$(tr , '\n' <<<"$TESTS" | wc -l)
for f in g j s; do
  [[ $(wc -l <"$T/$f") -ge $ntests ]] || fail "a benchmark run gave $(wc -l <"$T/$f") rates, want $ntests"
done
join <(sort "$T/j") <(sort "$T/g") | join - <(sort "$T/s") | sort >"$T/all"
awk '{ printf "%-28s %12.0f %12.0f %12.0f %8.2f\n", $1, $2, $3, $4, $4 / $3
       lj += log($2); lg += log($3); ls += log($4); n++ }
     END { if (n) printf "%-28s %12.0f %12.0f %12.0f %8.2f\n", "geometric mean", exp(lj / n), exp(lg / n), exp(ls / n), exp((ls - lg) / n) }' \
  "$T/all"
finish redis
