#!/usr/bin/env bash
# Foundation benchmarks (issue 2), release build, loopback:
#  1. events/s stored by one manager from one agent (goal >= 50,000/s on 2 cores): N synthetic events
#     are queued in the agent's outbox while it is stopped, then the agent is started and we time
#     until the manager's SQLite holds all N (mTLS, zstd batches, one transaction per batch).
#  2. agent idle RSS (goal < 15 MB) and idle CPU (goal < 1%) over IDLE_SECS with a watched directory.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-300000}
IDLE_SECS=${IDLE_SECS:-30}
cargo build --release --locked -q -p bannin-agent -p bannin-manager
B=$PWD/target/release
W=$(mktemp -d /tmp/bannin-bench-spine.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"' EXIT

"$B/bannin-manager" init --data-dir "$W/m" --json > "$W/init.json"
FP=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["ca_fingerprint"])' "$W/init.json")
BANNIN_LOG=warn "$B/bannin-manager" serve --data-dir "$W/m" --listen 127.0.0.1:0 2>"$W/m.log" &
MPID=$!
until [ -f "$W/m/manager.addr" ]; do sleep 0.1; done
PORT=$(cut -d: -f2 "$W/m/manager.addr")
TOK=$("$B/bannin-manager" token create --data-dir "$W/m" 2>/dev/null)
"$B/bannin-agent" enroll --manager "https://localhost:$PORT" --token "$TOK" --ca-fingerprint "$FP" --state-dir "$W/a" --name bench >/dev/null
mkdir -p "$W/watched"
printf 'state_dir = "%s"\n[manager]\nheartbeat_secs = 30\n[[fim.paths]]\npath = "%s"\nrealtime = true\n' "$W/a" "$W/watched" > "$W/agent.toml"

count() { python3 - "$W/m/bannin.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=30)
print(c.execute("select count(*) from events where rule_id = 999").fetchone()[0])
PY
}

"$B/bannin-agent" outbox --state-dir "$W/a" fill --count "$N" >/dev/null
t0=$(date +%s.%N)
mcpu0=$(awk '{print $14+$15}' /proc/$MPID/stat)
BANNIN_LOG=warn "$B/bannin-agent" run --config "$W/agent.toml" 2>"$W/a.log" &
APID=$!
while [ "$(count)" -lt "$N" ]; do sleep 0.2; done
t1=$(date +%s.%N)
mcpu1=$(awk '{print $14+$15}' /proc/$MPID/stat)
hz=$(getconf CLK_TCK)
python3 - "$N" "$t0" "$t1" "$mcpu0" "$mcpu1" "$hz" <<'PY'
import sys
n, t0, t1, c0, c1, hz = int(sys.argv[1]), *map(float, sys.argv[2:6]), int(sys.argv[6])
wall = t1 - t0
cpu = (c1 - c0) / hz
print(f"ingest: {n} events in {wall:.2f} s wall = {n/wall:,.0f} events/s "
      f"(goal 50,000/s: {n/wall/50000:.2f}x); manager CPU {cpu:.2f} s = {n/max(cpu,1e-9):,.0f} events per manager CPU-second")
PY

# Idle: the outbox is drained; measure RSS and CPU over IDLE_SECS.
sleep 3
c0=$(awk '{print $14+$15}' /proc/$APID/stat)
sleep "$IDLE_SECS"
c1=$(awk '{print $14+$15}' /proc/$APID/stat)
rss=$(awk '/VmRSS/ {print $2}' /proc/$APID/status)
hwm=$(awk '/VmHWM/ {print $2}' /proc/$APID/status)
python3 - "$c0" "$c1" "$hz" "$IDLE_SECS" "$rss" "$hwm" <<'PY'
import sys
c0, c1, hz, secs, rss, hwm = map(float, sys.argv[1:7])
pct = (c1 - c0) / hz / secs * 100
print(f"agent idle: RSS {rss/1024:.1f} MB (goal < 15 MB), CPU {pct:.2f}% over {secs:.0f} s (goal < 1%); "
      f"peak RSS while sending the backlog {hwm/1024:.1f} MB")
PY
