#!/usr/bin/env bash
# FIM benchmark: `bannin-agent fim baseline` / `fim check` side by side with `aide --init` (sha256 only,
# num_workers=THREADS) and `b3sum` (THREADS parallel processes) over the same files, on
#   1. a deterministic tree from ../shared/tools/make_tree.py (200,000 small files + 20 large, ~2.9 GB);
#   2. a copy of /usr.
# Prints, per tree: first baseline (wall, CPU, peak RSS), unchanged re-scan, AIDE and b3sum figures and the
# ratios the goals in issue 3 ask for; then real-time latency (write -> event printed by `fim watch`).
#
# Page cache: this VM drops file pages untouched for ~60 s, so every timed run is preceded by reading the
# files again (`warm`): all tools are measured with a warm cache. CPU seconds are user+sys from GNU time.
#
# Needs: python3, GNU time (/usr/bin/time), aide (apt-get install -y aide), b3sum (cargo install b3sum).
# Usage: bench/fim.sh            (env: THREADS=2, SMALL=200000, WORK=/tmp/bannin-bench-fim, BIN=prebuilt binary,
#                                 SKIP_USR=1 to skip the /usr copy)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${SHARED:-$ROOT/../shared}
WORK=${WORK:-/tmp/bannin-bench-fim}
THREADS=${THREADS:-2}
SMALL=${SMALL:-200000}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
mkdir -p "$WORK"

if [ -z "${BIN:-}" ]; then
  cargo build --release -q -p bannin-agent
  BIN=$TARGET/release/bannin-agent
fi
command -v aide >/dev/null || { echo "aide missing: apt-get install -y aide" >&2; exit 1; }
command -v b3sum >/dev/null || { echo "b3sum missing: cargo install b3sum" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "GNU time missing: apt-get install -y time" >&2; exit 1; }

TREE=$WORK/tree
if [ ! -d "$TREE" ]; then
  echo "making $TREE ($SMALL small files) ..." >&2
  python3 "$SHARED/tools/make_tree.py" "$TREE" --small "$SMALL" >&2
fi
if [ -z "${SKIP_USR:-}" ] && [ ! -d "$WORK/usr" ]; then
  echo "copying /usr to $WORK/usr ..." >&2
  cp -a /usr "$WORK/usr"
fi

warm() { find "$1" -type f -print0 | xargs -0 -P "$THREADS" -n 2000 cat > /dev/null 2>&1 || true; }

# measure NAME CMD... : runs CMD under GNU time; sets W (wall s), C (cpu s), R (peak RSS MB).
measure() {
  local name=$1; shift
  /usr/bin/time -f "%e %U %S %M" -o "$WORK/time.$name" "$@" > "$WORK/out.$name" 2> "$WORK/err.$name" || true
  read -r W U S M < <(tail -n1 "$WORK/time.$name")
  C=$(python3 -c "print(round($U+$S,2))")
  R=$(python3 -c "print(round($M/1024,1))")
}

ratio() { python3 -c "a,b=$1,$2; print(round(a/b,1) if b>0 else 'inf')"; }

bench_tree() {
  local name=$1 dir=$2
  local files
  files=$(find "$dir" -type f | wc -l)
  local cfg=$WORK/agent-$name.toml
  rm -rf "$WORK/state-$name"
  cat > "$cfg" <<TOML
state_dir = "$WORK/state-$name"
[fim]
threads = $THREADS
package_awareness = false
[[fim.paths]]
path = "$dir"
TOML
  cat > "$WORK/aide-$name.conf" <<CONF
database_out=file:$WORK/aide-$name.db
gzip_dbout=no
num_workers=$THREADS
S = sha256
$dir S
CONF
  warm "$dir"; measure bannin-base "$BIN" fim baseline --config "$cfg"
  local bw=$W bc=$C br=$R
  warm "$dir"; measure bannin-rescan "$BIN" fim check --config "$cfg"
  local rw=$W rc=$C rr=$R
  warm "$dir"; rm -f "$WORK/aide-$name.db"; measure aide aide --init -c "$WORK/aide-$name.conf"
  local aw=$W ac=$C ar=$R
  warm "$dir"; measure b3sum sh -c "find '$dir' -type f -print0 | xargs -0 -P $THREADS -n 2000 b3sum > /dev/null"
  local b3w=$W b3c=$C
  echo
  echo "== $name: $dir ($files files, $(du -sh "$dir" | cut -f1), $THREADS threads, warm cache) =="
  printf '%-28s %8s %8s %8s\n' "" "wall s" "cpu s" "RSS MB"
  printf '%-28s %8s %8s %8s\n' "bannin fim baseline" "$bw" "$bc" "$br"
  printf '%-28s %8s %8s %8s\n' "bannin fim check (no change)" "$rw" "$rc" "$rr"
  printf '%-28s %8s %8s %8s\n' "aide --init (sha256)" "$aw" "$ac" "$ar"
  printf '%-28s %8s %8s %8s\n' "b3sum (xargs -P$THREADS)" "$b3w" "$b3c" "-"
  echo "aide/bannin CPU: $(ratio "$ac" "$bc")x (goal >= 10)   aide/bannin wall: $(ratio "$aw" "$bw")x (goal >= 5)"
  echo "bannin/b3sum wall: $(ratio "$bw" "$b3w")x (goal <= 1.3)   baseline/re-scan wall: $(ratio "$bw" "$rw")x (goal >= 20)"
  grep -h "^baseline:" "$WORK/err.bannin-base" || true
}

bench_tree tree "$TREE"
[ -n "${SKIP_USR:-}" ] || bench_tree usr "$WORK/usr"

# Real-time latency: `fim watch` prints each event as a JSON line; time from the end of a write to its line.
RT=$WORK/rt
rm -rf "$RT" "$WORK/state-rt"; mkdir -p "$RT"
cat > "$WORK/agent-rt.toml" <<TOML
state_dir = "$WORK/state-rt"
[fim]
package_awareness = false
[[fim.paths]]
path = "$RT"
realtime = true
TOML
python3 - "$BIN" "$WORK/agent-rt.toml" "$RT" <<'PY'
import json, subprocess, sys, time, statistics, os, signal
bin_, cfg, rt = sys.argv[1:4]
p = subprocess.Popen([bin_, "fim", "watch", "--config", cfg], stdout=subprocess.PIPE, text=True, bufsize=1)
for line in p.stdout:
    if json.loads(line)["rule_id"] == 563:
        break
lat = []
for i in range(100):
    path = f"{rt}/f{i % 10}"
    with open(path, "w") as f:
        f.write(f"{i}" + "x" * 100)
    t0 = time.monotonic()
    for line in p.stdout:
        e = json.loads(line)
        if e["body"].get("path") == path:
            break
    lat.append((time.monotonic() - t0) * 1000)
    time.sleep(0.05)
p.send_signal(signal.SIGINT)
p.wait(timeout=10)
lat.sort()
print(f"\n== real-time: write -> event, 100 writes ==\nmedian {statistics.median(lat):.1f} ms (goal < 100), "
      f"p90 {lat[89]:.1f} ms, max {lat[-1]:.1f} ms (goal < 1000)")
PY
