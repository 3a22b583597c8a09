#!/usr/bin/env bash
# Log-rule engine throughput: lines per CPU-second and peak RSS of bannin-logrules on the three
# 100k-line syslog corpora, with the OSSEC 4.x default ruleset and with the Wazuh 4.14.7 ruleset.
# Anchor (ossec-logtest on this kind of machine): 60k-100k lines/CPU-s verbose, 91k-165k
# alert-only, 10-33 MB RSS. Goal: at least 3x.
# Needs: python3, /usr/bin/time (GNU time), ../shared (corpora and rulesets).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
TARGET=${CARGO_TARGET_DIR:-target}
if [ ! -d "$SHARED/corpus/logs" ]; then echo "SKIP: $SHARED/corpus/logs absent"; exit 0; fi
cargo build -q --release -p bannin-logrules --example logrules_bench
BIN="$TARGET/release/examples/logrules_bench"
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
for kind in sshd mixed nomatch; do
  python3 "$SHARED/tools/gen_syslog_corpus.py" "$kind" 100000 42 > "$TMP/$kind.log"
done
printf "%-7s %-8s %12s %14s %13s %8s %9s %s\n" ruleset corpus lines/CPU-s "x ossec(100k)" eval_lines/s rss_MB load_ms alerts
for rs in ossec wazuh-4.14.7; do
  for kind in sshd mixed nomatch; do
    cat "$TMP/$kind.log" > /dev/null   # warm the page cache right before the run
    /usr/bin/time -v "$BIN" "$SHARED/corpus/logs/$rs" "$TMP/$kind.log" > "$TMP/out" 2> "$TMP/time"
    user=$(awk -F': ' '/User time/ {print $2}' "$TMP/time")
    sys=$(awk -F': ' '/System time/ {print $2}' "$TMP/time")
    rss=$(awk -F': ' '/Maximum resident/ {print $2}' "$TMP/time")
    load=$(sed -n 's/.*load_ms=\([0-9.]*\).*/\1/p' "$TMP/out")
    alerts=$(sed -n 's/.* alerts=\([0-9]*\).*/\1/p' "$TMP/out")
    evalps=$(sed -n 's/.* lines_per_s=\([0-9]*\).*/\1/p' "$TMP/out")
    # lines/CPU-s counts the whole process (ruleset load included) like the anchor did;
    # eval_lines/s is the evaluation loop alone (wall clock, one thread).
    python3 - "$user" "$sys" "$rss" "$load" "$alerts" "$rs" "$kind" "$evalps" <<'PY'
import sys
u, s, rss, load, alerts, rs, kind, evalps = sys.argv[1:]
cpu = float(u) + float(s)
lps = 100000 / cpu if cpu > 0 else float('inf')
print(f"{rs[:7]:7s} {kind:8s} {lps:12.0f} {lps/100000:14.2f} {int(evalps):13d} {int(rss)/1024:8.1f} {float(load):9.0f} {alerts}")
PY
  done
done
