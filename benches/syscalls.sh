#!/usr/bin/env bash
# What the kernel is asked to do per request, per server: system calls by kind and context
# switches, each per request (pinned: the server on CPU 0, `wrk -t1 -c64` on CPU 1; the server
# runs under `perf stat`, which counts every thread it starts). It shows that every server here
# makes the same two calls per request (a read and a write) and how often each polls, sleeps or
# yields besides. Counting makes each system call dearer, so CPU time and req/s under it are
# not comparable between servers: take those from benches/table.sh.
#
# Usage: benches/syscalls.sh [SECS]   (default 5; needs perf and wrk:
#   apt-get install -y linux-perf wrk)   ROUNDS=n repeats the servers in turn (default 1).
#   BEFORE=path/to/bench_pools (built from another commit) adds before-r1-inline and
#   before-r1-default; ONLY=regex keeps the servers whose names match.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
rounds=${ROUNDS:-1}
cargo build --release --example bench_pools
(cd benches/peers && cargo build --release)
pools=./target/release/examples/bench_pools
hyper=benches/peers/target/release/hyper_hello
floor=benches/peers/target/release/floor
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
port=18150

declare -A cmd=(
  [httpkit-r1-inline]="$pools {port} inline 1"
  [httpkit-r1-default]="$pools {port} default 1"
  [floor-1]="$floor {port} 1"
  [hyper-multi]="$hyper {port} multi"
  [hyper-current]="$hyper {port} current"
)
names=(httpkit-r1-inline httpkit-r1-default floor-1 hyper-multi hyper-current)
if [ -n "${BEFORE:-}" ]; then
  cmd[before-r1-inline]="$BEFORE {port} inline 1"
  cmd[before-r1-default]="$BEFORE {port} default 1"
  names+=(before-r1-inline before-r1-default)
fi
if [ -n "${ONLY:-}" ]; then
  kept=()
  for n in "${names[@]}"; do if [[ $n =~ $ONLY ]]; then kept+=("$n"); fi; done
  names=("${kept[@]}")
fi
calls=(recvfrom sendto read write writev epoll_wait sched_yield futex)
events=raw_syscalls:sys_enter,context-switches
for c in "${calls[@]}"; do events+=",syscalls:sys_enter_$c"; done

wait_port() {
  for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.05; done
}

printf '%-20s %9s %7s' server requests 'cs/req'
printf ' %7s' all "${calls[@]}"
echo
for r in $(seq "$rounds"); do
  for n in "${names[@]}"; do
    port=$((port + 1))
    c=${cmd[$n]//\{port\}/$port}
    # shellcheck disable=SC2086
    perf stat -x, -e "$events" -o "$out/$n.perf" -- taskset -c 0 $c >/dev/null 2>&1 &
    wait_port $port
    pid=$(pgrep -f "^${c%% *} $port" | head -1)
    reqs=$(taskset -c 1 wrk -t1 -c64 -d"${secs}s" "http://127.0.0.1:$port/" | awk '/requests in/ {print $1}')
    kill -INT "$pid"
    wait 2>/dev/null || true
    get() { awk -F, -v e="$1" '$3 == e {print $1}' "$out/$n.perf"; }
    printf '%-20s %9d %7.3f' "$n" "$reqs" "$(echo "$(get context-switches) / $reqs" | bc -l)"
    printf ' %7.3f' "$(echo "$(get raw_syscalls:sys_enter) / $reqs" | bc -l)"
    for k in "${calls[@]}"; do printf ' %7.3f' "$(echo "$(get "syscalls:sys_enter_$k") / $reqs" | bc -l)"; done
    echo "   (round $r)"
  done
done
