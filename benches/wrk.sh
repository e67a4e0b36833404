#!/usr/bin/env bash
# End-to-end throughput/latency: httpkit's hello example against a minimal hyper 1.x server
# (benches/peers, current_thread and multi_thread with 2 workers) and `floor` (benches/peers: one
# mio thread answering a canned response with no parsing, no hand-off, no allocation: the ceiling
# of any one-reactor server on this machine), interleaved, ROUNDS times (default 2):
#   unpinned: wrk -t2 -c256 -d10s --latency
#   pinned:   server on CPU 0, `taskset -c 1 wrk -t1 -c64 -d10s --latency`
# Besides req/s and latency it prints the server's CPU time over the run (from /proc/PID/stat)
# and requests per server CPU-second: wrk shares this machine's cores, so req/s alone mostly
# measures who shares best.
#
# Usage: benches/wrk.sh [DURATION] [BEFORE_BINARY]   (needs wrk: apt-get install -y wrk)
#   With BEFORE_BINARY (a hello example built from another commit, e.g. copied out of
#   target/release/examples/hello before a change), it runs as `httpkit-before` beside
#   `httpkit` in the same interleaved rounds. PEERS=0 skips hyper and floor.
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-10s}
before=${2:-}
rounds=${ROUNDS:-2}
peers=${PEERS:-1}
cargo build --release --example hello
if [ "$peers" = 1 ]; then (cd benches/peers && cargo build --release); fi
peer=benches/peers/target/release/hyper_hello
floor=benches/peers/target/release/floor
hz=$(getconf CLK_TCK)

cpu_ticks() { # utime + stime of a process, in clock ticks
  awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0
}

run() { # name pin cmd...
  local name=$1 pin=$2; shift 2
  local port=18080
  local args=()
  for a in "$@"; do args+=("${a//\{port\}/$port}"); done
  if [ "$pin" = pinned ]; then taskset -c 0 "${args[@]}" >/dev/null 2>&1 & else "${args[@]}" >/dev/null 2>&1 & fi
  local pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
  local out t0 t1
  t0=$(cpu_ticks $pid)
  if [ "$pin" = pinned ]; then
    out=$(taskset -c 1 wrk -t1 -c64 -d"$dur" --latency http://127.0.0.1:$port/)
  else
    out=$(wrk -t2 -c256 -d"$dur" --latency http://127.0.0.1:$port/)
  fi
  t1=$(cpu_ticks $pid)
  kill $pid; wait $pid 2>/dev/null || true
  local rps p50 p99 errs total cpu per_cpu
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  total=$(echo "$out" | awk '/requests in/ {print $1}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  errs=$(echo "$out" | awk '/Socket errors|Non-2xx/ {print}' | tr '\n' ' ')
  cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) / hz }')
  per_cpu=$(awk -v n="$total" -v c="$cpu" 'BEGIN { if (c > 0) printf "%.0f", n / c; else print "-" }')
  printf '%-22s %-8s %12s req/s  %8s req/cpu-s  cpu %6ss  p50 %-9s p99 %-9s %s\n' \
    "$name" "$pin" "$rps" "$per_cpu" "$cpu" "$p50" "$p99" "$errs"
}

for r in $(seq "$rounds"); do
  for pin in unpinned pinned; do
    run httpkit "$pin" ./target/release/examples/hello '{port}'
    if [ -n "$before" ]; then run httpkit-before "$pin" "$before" '{port}'; fi
    if [ "$peers" = 1 ]; then
      run hyper-current_thread "$pin" $peer '{port}' current
      run hyper-multi_thread "$pin" $peer '{port}' multi
      run floor "$pin" $floor '{port}'
    fi
  done
done
