#!/usr/bin/env bash
# User-space instructions per request, counted by callgrind: the server's own cost without the
# noise of a shared 2-core machine (the kernel's share, the same for every server here, is not
# counted). httpkit's bench_pools `hello` with the Inline pool (reactor, parsing, handler and
# answer on one thread) and with the default pool, and the `floor` peer for scale; then a
# WebSocket echo of 32-byte messages (examples/echo /ws and /ring).
#
# Usage: benches/instructions.sh [SECS]   (default 4; needs valgrind and wrk:
#   apt-get install -y valgrind wrk)
#   BEFORE=path/to/bench_pools (built from another commit) adds before-inline and
#   before-default; ANNOTATE=1 prints the top functions of each httpkit run (inclusive).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-4}
cargo build --release --example bench_pools --example echo
cargo build --release --bench ws_echo
(cd benches/peers && cargo build --release)
client=$(ls -t target/release/deps/ws_echo-* | grep -v '\.d$' | head -1)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
port=18099

wait_port() {
  for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && return; sleep 0.05; done
}

# measure NAME LOAD CMD...: starts CMD under callgrind (instrumentation off), warms up, counts
# instructions over SECS of LOAD (http, or a WebSocket PATH such as /ws), prints them per
# request or per echoed message.
measure() {
  local name=$1 load=$2
  shift 2
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out/$name.%p" "$@" >/dev/null 2>&1 &
  local pid=$!
  wait_port
  local n
  if [ "$load" = http ]; then
    wrk -t1 -c16 -d1s "http://127.0.0.1:$port/" >/dev/null
    callgrind_control -i on $pid >/dev/null 2>&1
    callgrind_control -z $pid >/dev/null 2>&1
    n=$(wrk -t1 -c16 -d"${secs}s" "http://127.0.0.1:$port/" | awk '/requests in/ {print $1}')
  else
    "$client" echo $port "$load" 16 32 1 $pid >/dev/null
    callgrind_control -i on $pid >/dev/null 2>&1
    callgrind_control -z $pid >/dev/null 2>&1
    n=$("$client" echo $port "$load" 16 32 "$secs" $pid | sed -n 's/.*(\([0-9]*\) echoes in all).*/\1/p')
  fi
  callgrind_control -d $pid >/dev/null 2>&1
  kill $pid
  wait $pid 2>/dev/null || true
  local f
  f=$(ls "$out/$name".*.1)
  local ir
  ir=$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  printf '%-16s %8d units  %7.0f instructions each\n' "$name" "$n" "$(echo "$ir / $n" | bc -l)"
  if [ -n "${ANNOTATE:-}" ] && [[ $name != floor ]]; then
    callgrind_annotate --inclusive=yes "$f" 2>/dev/null | sed -n '/file:function/,+30p' | sed 's/ \[\/.*//' | tail -n +3
  fi
}

pools=./target/release/examples/bench_pools
measure httpkit-inline http $pools $port inline 1
measure httpkit-default http $pools $port default 1
if [ -n "${BEFORE:-}" ]; then
  measure before-inline http "$BEFORE" $port inline 1
  measure before-default http "$BEFORE" $port default 1
fi
# floor's loop is instrumented from the start (its readiness loop does not survive the switch).
valgrind --tool=callgrind --callgrind-out-file="$out/floor.%p" benches/peers/target/release/floor $port 1 >/dev/null 2>&1 &
pid=$!
wait_port
n=$(wrk -t1 -c16 -d"${secs}s" "http://127.0.0.1:$port/" | awk '/requests in/ {print $1}')
callgrind_control -d $pid >/dev/null 2>&1
kill $pid
wait $pid 2>/dev/null || true
ir=$(callgrind_annotate "$(ls "$out"/floor.*.1)" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
printf '%-16s %8d units  %7.0f instructions each\n' floor "$n" "$(echo "$ir / $n" | bc -l)"
measure ws-echo /ws ./target/release/examples/echo $port
measure ring-echo /ring ./target/release/examples/echo $port
