#!/usr/bin/env bash
# End-to-end throughput/latency: httpkit's hello example against a minimal hyper 1.x server
# (benches/peers, current_thread and multi_thread with 2 workers) and `floor` (benches/peers: one
# mio thread answering a canned response with no parsing, no hand-off, no allocation: the ceiling
# of any one-reactor server on this machine), interleaved, each twice:
#   unpinned: wrk -t2 -c256 -d10s --latency
#   pinned:   server on CPU 0, `taskset -c 1 wrk -t1 -c64 -d10s --latency`
# Usage: benches/wrk.sh [DURATION]   (needs wrk: apt-get install -y wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-10s}
rounds=${ROUNDS:-2}
cargo build --release --example hello
(cd benches/peers && cargo build --release)
peer=benches/peers/target/release/hyper_hello
floor=benches/peers/target/release/floor

run() { # name pin cmd...
  local name=$1 pin=$2; shift 2
  local port=18080
  local args=()
  for a in "$@"; do args+=("${a//\{port\}/$port}"); done
  if [ "$pin" = pinned ]; then taskset -c 0 "${args[@]}" >/dev/null 2>&1 & else "${args[@]}" >/dev/null 2>&1 & fi
  local pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
  local out
  if [ "$pin" = pinned ]; then
    out=$(taskset -c 1 wrk -t1 -c64 -d"$dur" --latency http://127.0.0.1:$port/)
  else
    out=$(wrk -t2 -c256 -d"$dur" --latency http://127.0.0.1:$port/)
  fi
  kill $pid; wait $pid 2>/dev/null || true
  local rps p50 p99 errs
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  errs=$(echo "$out" | awk '/Socket errors|Non-2xx/ {print}' | tr '\n' ' ')
  printf '%-22s %-8s %12s req/s  p50 %-9s p99 %-9s %s\n' "$name" "$pin" "$rps" "$p50" "$p99" "$errs"
}

for r in $(seq "$rounds"); do
  for pin in unpinned pinned; do
    run httpkit "$pin" ./target/release/examples/hello '{port}'
    run hyper-current_thread "$pin" $peer '{port}' current
    run hyper-multi_thread "$pin" $peer '{port}' multi
    run floor "$pin" $floor '{port}'
  done
done
