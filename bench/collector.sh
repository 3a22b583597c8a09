#!/usr/bin/env bash
# Log collector benchmarks (issue 4), release build, a real manager and agent on loopback:
#  1. throughput: lines per CPU-second through the agent's collector (read, frame, engine, alert
#     events into the outbox and to the manager) vs the engine alone (`bannin-agent logtest --json`,
#     ruleset load time subtracted) on the same file and ruleset: the "collector overhead" figure
#     (goal: under 10%).
#  2. rename rotation: time from the rename (logrotate's default) until the first line of the new
#     file is stored by the manager (anchor: OSSEC took up to 108 s to notice).
#  3. copytruncate anchor: 6,000 lines written at 100 lines/s with a copytruncate rotation every
#     10 s; lines lost (anchor: OSSEC lost 1,975 of 6,000).
# Needs python3 and ../shared (corpus generator and OSSEC ruleset) for part 1; parts 2-3 use a tiny
# ruleset written here (every line alerts, so lines are counted by the manager).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
TARGET=${CARGO_TARGET_DIR:-target}
LINES=${LINES:-300000}
ANCHOR_LINES=${ANCHOR_LINES:-6000}
cargo build --release -q -p bannin-agent -p bannin-manager
B=$TARGET/release
W=$(mktemp -d /tmp/bannin-bench-collector.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"' EXIT
hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

"$B/bannin-manager" init --data-dir "$W/m" --json > "$W/init.json"
FP=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["ca_fingerprint"])' "$W/init.json")
BANNIN_LOG=warn "$B/bannin-manager" serve --data-dir "$W/m" --listen 127.0.0.1:0 2>"$W/m.log" &
until [ -f "$W/m/manager.addr" ]; do sleep 0.1; done
PORT=$(cut -d: -f2 "$W/m/manager.addr")

# Enrolls agent $1 and writes its config with [logs] ruleset $2 and followed file $3.
agent_setup() {
  local name=$1 ruleset=$2 file=$3
  local tok
  tok=$("$B/bannin-manager" token create --data-dir "$W/m" 2>/dev/null)
  "$B/bannin-agent" enroll --manager "https://localhost:$PORT" --token "$tok" --ca-fingerprint "$FP" \
    --state-dir "$W/$name" --name "$name" >/dev/null
  mkdir -p "$W/$name-watched"
  cat > "$W/$name.toml" <<EOF
state_dir = "$W/$name"
[logs]
ruleset = ["$ruleset"]
only_future_events = false
[[logs.files]]
path = "$file"
[[fim.paths]]
path = "$W/$name-watched"
EOF
}

agent_start() {
  BANNIN_LOG=info "$B/bannin-agent" run --config "$W/$1.toml" 2>"$W/$1.agent.log" &
  APID=$!
  until grep -q "logs: collecting" "$W/$1.agent.log"; do
    kill -0 $APID 2>/dev/null || { cat "$W/$1.agent.log"; exit 1; }
    sleep 0.1
  done
}

# Saved offset of the collector for file $2 of agent $1 (flushed every second).
offset() { python3 - "$W/$1/logs.db" "$2" <<'PY'
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=30)
r = c.execute("select max(offset) from files where path = ?", (sys.argv[2],)).fetchone()
print(r[0] or 0)
PY
}

# Distinct seq=N numbers in the manager's stored log events whose line holds $1.
stored_seqs() { python3 - "$W/m/bannin.db" "$1" <<'PY'
import sqlite3, sys, re, json
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=30)
seen = set()
for (body,) in c.execute("select body from events where kind = 'log'"):
    line = json.loads(body).get("full_log", "") if body else ""
    if sys.argv[2] in line:
        m = re.search(r"seq=(\d+)", line)
        if m: seen.add(int(m.group(1)))
print(len(seen))
PY
}

# --- 1. throughput -------------------------------------------------------------------------------
# Two corpora: `nomatch` (no alerts: the collector's own cost) and `mixed` (many alerts: adds the
# cost of turning them into events, the outbox and delivery to the manager).
throughput() {
  local kind=$1 RS=$2
  python3 "$SHARED/tools/gen_syslog_corpus.py" "$kind" 100000 42 > "$W/$kind.gen"
  : > "$W/$kind.corpus"
  while [ "$(wc -l < "$W/$kind.corpus")" -lt "$LINES" ]; do cat "$W/$kind.gen" >> "$W/$kind.corpus"; done
  local n size lt_cpu lt_load alerts c0 c1 t0 t1 rss
  n=$(wc -l < "$W/$kind.corpus")
  size=$(stat -c %s "$W/$kind.corpus")
  cat "$W/$kind.corpus" > /dev/null
  /usr/bin/time -f "%U %S" -o "$W/lt.time" "$B/bannin-agent" logtest --json --ruleset "$RS" \
    < "$W/$kind.corpus" > "$W/lt.out" 2> "$W/lt.err"
  lt_cpu=$(awk '{print $1+$2}' "$W/lt.time")
  lt_load=$(sed -n 's/.*loaded in \([0-9.]*\) ms.*/\1/p' "$W/lt.err" | head -1)
  alerts=$(grep -c '"alert":true' "$W/lt.out" || true)
  agent_setup "tput-$kind" "$RS" "$W/tput-$kind.followed"
  : > "$W/tput-$kind.followed"
  agent_start "tput-$kind"
  sleep 1
  c0=$(cpu_ticks $APID)
  t0=$(date +%s.%N)
  cat "$W/$kind.corpus" >> "$W/tput-$kind.followed"
  while [ "$(offset "tput-$kind" "$W/tput-$kind.followed")" -lt "$size" ]; do sleep 0.1; done
  t1=$(date +%s.%N)
  c1=$(cpu_ticks $APID)
  rss=$(awk '/VmHWM/ {print $2}' /proc/$APID/status)
  kill -TERM $APID; wait $APID || true
  python3 - "$n" "$lt_cpu" "$lt_load" "$c0" "$c1" "$hz" "$t0" "$t1" "$rss" "$kind" "$alerts" <<'PY'
import sys
n = int(sys.argv[1]); lt_cpu = float(sys.argv[2]); load = float(sys.argv[3] or 0) / 1000
c0, c1, hz = float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
wall = float(sys.argv[8]) - float(sys.argv[7]); rss = int(sys.argv[9]) / 1024
kind, alerts = sys.argv[10], int(sys.argv[11])
eng = max(lt_cpu - load, 1e-9); col = max((c1 - c0) / hz, 1e-9)
print(f"throughput, {kind} corpus ({n} lines, {alerts} alerts, OSSEC ruleset):")
print(f"  engine alone (logtest --json, load {load*1000:.0f} ms subtracted): {eng:.2f} CPU-s = {n/eng:,.0f} lines/CPU-s")
print(f"  collector + engine (bannin-agent run, alerts to the manager):  {col:.2f} CPU-s = {n/col:,.0f} lines/CPU-s "
      f"({wall:.1f} s wall incl. up to 1 s offset flush), agent peak RSS {rss:.1f} MB")
print(f"  collector overhead: {(col/eng - 1)*100:+.1f}% (goal: under +10%)")
PY
}
if [ -d "$SHARED/corpus/logs/ossec" ]; then
  for kind in nomatch mixed; do throughput "$kind" "$SHARED/corpus/logs/ossec"; done
else
  echo "throughput: SKIP ($SHARED/corpus/logs absent)"
fi

# --- tiny ruleset: every line with seq= alerts ----------------------------------------------------
mkdir -p "$W/tiny"
echo '<decoder name="any"><prematch>seq=</prematch></decoder>' > "$W/tiny/d.xml"
cat > "$W/tiny/r.xml" <<'EOF'
<group name="bench,">
  <rule id="1" level="0" noalert="1"><category>syslog</category><description>base</description></rule>
  <rule id="100100" level="3"><if_sid>1</if_sid><match>seq=</match><description>sequenced line</description></rule>
</group>
EOF

# --- 2. rename rotation latency ------------------------------------------------------------------
agent_setup rot "$W/tiny" "$W/rot.log"
echo "Jan  1 00:00:00 h app: rotprobe seq=0" > "$W/rot.log"
agent_start rot
until [ "$(stored_seqs rotprobe)" -ge 1 ]; do sleep 0.05; done
lat=()
for i in 1 2 3 4 5; do
  mv "$W/rot.log" "$W/rot.log.1"
  t0=$(date +%s.%N)
  echo "Jan  1 00:00:00 h app: rotprobe seq=$i" > "$W/rot.log"
  until [ "$(stored_seqs rotprobe)" -ge $((i + 1)) ]; do sleep 0.02; done
  t1=$(date +%s.%N)
  lat+=("$(python3 -c "print(f'{$t1-$t0:.3f}')")")
  sleep 1
done
kill -TERM $APID; wait $APID || true
echo "rename rotation: first line of the new file stored by the manager after ${lat[*]} s (OSSEC: up to 108 s)"

# --- 3. copytruncate anchor ----------------------------------------------------------------------
agent_setup ct "$W/tiny" "$W/ct.log"
: > "$W/ct.log"
agent_start ct
python3 - "$W/ct.log" "$ANCHOR_LINES" <<'PY'
import os, shutil, sys, time
path, n = sys.argv[1], int(sys.argv[2])
f = open(path, "a", buffering=1)
start = time.time(); rotations = 0
for i in range(n):
    f.write(f"Jan  1 00:00:00 h app: ctprobe seq={i} payload\n")
    if (i + 1) % 1000 == 0 and i + 1 < n:
        # logrotate copytruncate: copy, then truncate in place; the writer keeps its O_APPEND fd.
        shutil.copyfile(path, path + ".1")
        os.truncate(path, 0)
        rotations += 1
    time.sleep(max(0, start + (i + 1) / 100 - time.time()))
print(f"copytruncate: wrote {n} lines at 100 lines/s with {rotations} copytruncate rotations", file=sys.stderr)
PY
deadline=$(( $(date +%s) + 20 ))
while [ "$(stored_seqs ctprobe)" -lt "$ANCHOR_LINES" ] && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.5; done
got=$(stored_seqs ctprobe)
kill -TERM $APID; wait $APID || true
echo "copytruncate: $got of $ANCHOR_LINES lines stored, $((ANCHOR_LINES - got)) lost (OSSEC: 1,975 lost)"
