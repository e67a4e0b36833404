#!/usr/bin/env bash
# wrk against the hello app on each built-in executor, interleaved:
#   default ThreadPool (4 threads), ThreadPerTask, Inline.
# Usage: benches/pools.sh [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-10s}
cargo build --release --example bench_pools
bin=./target/release/examples/bench_pools
for r in $(seq "${ROUNDS:-2}"); do
  for pool in default per-task inline; do
    $bin 18085 "$pool" >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/18085) 2>/dev/null && break; sleep 0.05; done
    out=$(wrk -t2 -c256 -d"$dur" --latency http://127.0.0.1:18085/)
    kill $pid; wait $pid 2>/dev/null || true
    printf '%-9s %12s req/s  p50 %-9s p99 %s\n' "$pool" \
      "$(echo "$out" | awk '/Requests\/sec/ {print $2}')" \
      "$(echo "$out" | awk '$1=="50%" {print $2}')" \
      "$(echo "$out" | awk '$1=="99%" {print $2}')"
  done
done
