#!/usr/bin/env bash
# Runs the Autobahn|Testsuite fuzzing client (cases 1–13; 12–13 are permessage-deflate; CASES=
# picks others, e.g. CASES='"1.*", "9.*"') against examples/echo.rs's /ws and
# prints the per-section results. Needs Python 2.7 (pyenv's 2.7.18 is used when present).
# Usage: scripts/autobahn.sh [PORT]    (results in target/autobahn/)
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-9001}
out=target/autobahn
venv=${AUTOBAHN_VENV:-target/autobahn-venv}
py2=${PYTHON2:-}
if [ -z "$py2" ]; then
  # A pyenv shim may exist without 2.7 being selected: take the first candidate that runs.
  for c in "$(command -v python2.7 || true)" "$HOME/.pyenv/versions/2.7.18/bin/python"; do
    if [ -n "$c" ] && "$c" -c 'import sys; assert sys.version_info[0] == 2' 2>/dev/null; then py2=$c; break; fi
  done
fi

if [ ! -x "$venv/bin/wstest" ]; then
  "$py2" -m pip install --quiet virtualenv
  "$py2" -m virtualenv "$venv"
  "$venv/bin/pip" install --quiet autobahntestsuite
fi

cargo build --release --example echo
mkdir -p "$out"
./target/release/examples/echo "$port" > "$out/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
  sleep 0.1
done

cases=${CASES:-'"1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*", "12.*", "13.*"'}
cat > "$out/fuzzingclient.json" <<JSON
{
  "outdir": "$PWD/$out/reports",
  "servers": [{"agent": "httpkit-channel", "url": "ws://127.0.0.1:$port/ws"},
              {"agent": "httpkit-ring", "url": "ws://127.0.0.1:$port/ring"}],
  "cases": [$cases],
  "exclude-cases": [],
  "exclude-agent-cases": {}
}
JSON
wstest=$(cd "$venv/bin" && pwd)/wstest
(cd "$out" && "$wstest" -m fuzzingclient -s fuzzingclient.json > wstest.log 2>&1)

python3 - "$out/reports/index.json" <<'PY'
import json, sys, collections
bad = []
for agent, idx in sorted(json.load(open(sys.argv[1])).items()):
    by = collections.defaultdict(collections.Counter)
    for case, r in idx.items():
        sec = case.split(".")[0]
        by[sec][r["behavior"]] += 1
        if r["behavior"] not in ("OK", "NON-STRICT", "INFORMATIONAL"):
            bad.append((agent, case, r["behavior"]))
    print(agent)
    for sec in sorted(by, key=int):
        print(f"  section {sec:>2}: " + ", ".join(f"{k} {v}" for k, v in sorted(by[sec].items())))
    total = collections.Counter()
    for c in by.values():
        total.update(c)
    print("  total: " + ", ".join(f"{k} {v}" for k, v in sorted(total.items())))
if bad:
    print("FAILED cases:", bad)
    sys.exit(1)
print("all cases OK / NON-STRICT / INFORMATIONAL")
PY
