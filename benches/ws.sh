#!/usr/bin/env bash
# WebSocket echo, closed loop (benches/ws_echo.rs), in one interleaved run: httpkit's
# examples/echo on /ws (channel API) and /ring (Ring-style listener API), against a
# tokio-tungstenite echo server (benches/peers ws_echo, 2 worker threads); compression off on
# both. Loads: 64 connections x 32 B, 64 x 4 KiB, 1000 x 32 B; then the server's RSS per idle
# WebSocket (5000 connections). ROUNDS rounds (default 3); each line is one run.
#
# BEFORE=<another build of examples/echo> adds its /ws and /ring (before-ws, before-ring) to
# every round, for a before/after comparison in the same run.
#
# Usage: ulimit -n 20000; benches/ws.sh [SECS]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
rounds=${ROUNDS:-3}
cargo build --release --example echo
cargo build --release --bench ws_echo
(cd benches/peers && cargo build --release)
client=$(ls -t target/release/deps/ws_echo-* | grep -v '\.d$' | head -1)
port=18095
names="httpkit-ws httpkit-ring tungstenite"
if [ -n "${BEFORE:-}" ]; then names="before-ws before-ring $names"; fi

start() { # name -> sets pid and path
  case $1 in
    httpkit-ws) ./target/release/examples/echo $port >/dev/null 2>&1 & pid=$!; path=/ws ;;
    httpkit-ring) ./target/release/examples/echo $port >/dev/null 2>&1 & pid=$!; path=/ring ;;
    before-ws) "$BEFORE" $port >/dev/null 2>&1 & pid=$!; path=/ws ;;
    before-ring) "$BEFORE" $port >/dev/null 2>&1 & pid=$!; path=/ring ;;
    tungstenite) benches/peers/target/release/ws_echo $port 2 >/dev/null 2>&1 & pid=$!; path=/ ;;
  esac
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
}

for r in $(seq "$rounds"); do
  for load in "64 32" "64 4096" "1000 32"; do
    for name in $names; do
      start $name
      printf '%-13s ' "$name"
      # shellcheck disable=SC2086
      $client echo $port $path $load "$secs" $pid
      kill $pid; wait $pid 2>/dev/null || true
    done
  done
done
for name in $names; do
  start $name
  printf '%-13s ' "$name"
  $client idle $port $path 5000 $pid
  kill $pid; wait $pid 2>/dev/null || true
done
