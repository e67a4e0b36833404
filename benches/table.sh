#!/usr/bin/env bash
# One benchmark table, in one interleaved run (the successor of wrk.sh for comparisons):
#   httpkit with 1 and 2 reactors, each with the default pool and Inline (examples/bench_pools),
#   floor with 1 and 2 threads (benches/peers: the ceiling of a reactor design on this machine),
#   hyper multi-thread (2 workers) and current-thread (benches/peers),
# each unpinned (wrk -t2 -c256) and pinned (server on CPU 0, wrk -t1 -c64 on CPU 1), then paced
# (wrk -t2 -c64 with a Lua delay() of 1 ms per request per connection: about half the saturated
# rate) and light (wrk -t1 -c10, 10 ms delay: about 1 000 req/s), ROUNDS rounds (default 3).
# Prints medians: req/s, requests per server CPU-second (from /proc/PID/stat over the run),
# server CPU as % of one core, p50, p99, the server threads' context switches per request (from
# /proc/PID/task/*/status: what a hand-off between threads costs), and the ratios of req/cpu-s to
# hyper multi-thread's and to the matching floor's (1 reactor ↔ 1 thread, 2 ↔ 2; hyper ↔ floor 2).
#
# Usage: benches/table.sh [DURATION]   (default 6s; needs wrk: apt-get install -y wrk)
#   BEFORE=path/to/bench_pools (built from another commit) adds before-r1-default and
#   before-r1-inline to the same rounds; ONLY=regex keeps the servers whose names match;
#   LOADS="paced light" picks loads.
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-6s}
rounds=${ROUNDS:-3}
cargo build --release --example bench_pools
(cd benches/peers && cargo build --release)
pools=./target/release/examples/bench_pools
hyper=benches/peers/target/release/hyper_hello
floor=benches/peers/target/release/floor
hz=$(getconf CLK_TCK)
out_dir=$(mktemp -d)
trap 'rm -rf "$out_dir"' EXIT
cat > "$out_dir/paced.lua" <<'EOF'
function delay() return 1 end
EOF
cat > "$out_dir/light.lua" <<'EOF'
function delay() return 10 end
EOF

declare -A cmd=(
  [httpkit-r1-default]="$pools {port} default 1"
  [httpkit-r1-inline]="$pools {port} inline 1"
  [httpkit-r2-default]="$pools {port} default 2"
  [httpkit-r2-inline]="$pools {port} inline 2"
  [floor-1]="$floor {port} 1"
  [floor-2]="$floor {port} 2"
  [hyper-multi]="$hyper {port} multi"
  [hyper-current]="$hyper {port} current"
)
names=(httpkit-r1-default httpkit-r1-inline httpkit-r2-default httpkit-r2-inline floor-1 floor-2 hyper-multi hyper-current)
if [ -n "${BEFORE:-}" ]; then
  cmd[before-r1-default]="$BEFORE {port} default 1"
  cmd[before-r1-inline]="$BEFORE {port} inline 1"
  names+=(before-r1-default before-r1-inline)
fi
if [ -n "${ONLY:-}" ]; then
  kept=()
  for n in "${names[@]}"; do if [[ $n =~ $ONLY ]]; then kept+=("$n"); fi; done
  names=("${kept[@]}")
fi
read -r -a loads <<< "${LOADS:-unpinned pinned paced light}"
all_names="${names[*]}"
all_loads="${loads[*]}"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# Context switches of all the server's threads (voluntary and not): per request, they show what a
# hand-off between threads costs (a worker woken for each request, then asleep again).
ctx_switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {s += $2} END {print s + 0}'; }
to_ms() { # wrk latency (e.g. 1.23ms, 850.00us, 1.2s) in ms
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[0-9]s$/ && v !~ /ms$/) n *= 1000; printf "%.3f", n }'
}

run() { # name load
  local name=$1 load=$2 port=18090
  local c=${cmd[$name]}
  c=${c//\{port\}/$port}
  # shellcheck disable=SC2086
  if [ "$load" = pinned ]; then taskset -c 0 $c >/dev/null 2>&1 & else $c >/dev/null 2>&1 & fi
  local pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
  sleep 0.2
  local t0 t1 out
  t0=$(cpu_ticks $pid)
  local cs0 cs1
  cs0=$(ctx_switches $pid)
  case $load in
    unpinned) out=$(wrk -t2 -c256 -d"$dur" --latency http://127.0.0.1:$port/) ;;
    pinned) out=$(taskset -c 1 wrk -t1 -c64 -d"$dur" --latency http://127.0.0.1:$port/) ;;
    paced) out=$(wrk -t2 -c64 -d"$dur" --latency -s "$out_dir/paced.lua" http://127.0.0.1:$port/) ;;
    light) out=$(wrk -t1 -c10 -d"$dur" --latency -s "$out_dir/light.lua" http://127.0.0.1:$port/) ;;
  esac
  t1=$(cpu_ticks $pid)
  cs1=$(ctx_switches $pid)
  kill $pid; wait $pid 2>/dev/null || true
  local rps total p50 p99 cpu secs
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  total=$(echo "$out" | awk '/requests in/ {print $1}')
  secs=$(echo "$out" | awk '/requests in/ {gsub(/s,/, "", $4); print $4}')
  p50=$(to_ms "$(echo "$out" | awk '$1=="50%" {print $2}')")
  p99=$(to_ms "$(echo "$out" | awk '$1=="99%" {print $2}')")
  cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" 'BEGIN { printf "%.3f", (b - a) / hz }')
  awk -v n="$name" -v l="$load" -v r="$rps" -v t="$total" -v c="$cpu" -v s="$secs" -v p50="$p50" -v p99="$p99" \
    -v cs="$((cs1 - cs0))" \
    'BEGIN { printf "%s %s %s %.0f %.1f %s %s %.2f\n", n, l, r, (c > 0 ? t / c : 0), (s > 0 ? 100 * c / s : 0), p50, p99, (t > 0 ? cs / t : 0) }' \
    >> "$out_dir/results"
  tail -1 "$out_dir/results"
}

for r in $(seq "$rounds"); do
  for load in "${loads[@]}"; do
    for name in "${names[@]}"; do
      run "$name" "$load"
    done
  done
done

echo
echo "medians of $rounds rounds, $dur each"
awk -v all_names="$all_names" -v all_loads="$all_loads" '
  { key = $1 " " $2; n[key]++; for (i = 3; i <= 8; i++) v[key, i, n[key]] = $i }
  function med(key, i,   k, m, a, j, t) {
    m = n[key]; for (k = 1; k <= m; k++) a[k] = v[key, i, k] + 0
    for (k = 1; k <= m; k++) for (j = k + 1; j <= m; j++) if (a[j] < a[k]) { t = a[k]; a[k] = a[j]; a[j] = t }
    return a[int((m + 1) / 2)]
  }
  END {
    nl = split(all_loads, loads, " ")
    nn = split(all_names, names, " ")
    printf "| load | server | req/s | req per CPU-s | CPU %% of a core | p50 ms | p99 ms | switches per req | CPU-s ratio to hyper-multi | to floor |\n"
    printf "|---|---|---|---|---|---|---|---|---|---|\n"
    for (li = 1; li <= nl; li++) {
      l = loads[li]; hy = med("hyper-multi " l, 4)
      for (ni = 1; ni <= nn; ni++) {
        s = names[ni]; key = s " " l
        if (!(key in n)) continue
        f = (s ~ /r1|floor-1/) ? "floor-1" : "floor-2"
        fl = med(f " " l, 4); e = med(key, 4)
        printf "| %s | %s | %.0f | %.0f | %.1f | %.3f | %.3f | %.2f | %.2f | %.2f |\n", l, s, med(key, 3), e, med(key, 5), med(key, 6), med(key, 7), med(key, 8), (hy > 0 ? e / hy : 0), (fl > 0 ? e / fl : 0)
      }
    }
  }' "$out_dir/results"
