#!/usr/bin/env bash
# The main job on this host: builds, starts a manager (embedded SQLite under ./demo/manager), enrolls an
# agent and runs it watching ./demo/watched. Ctrl-C stops both. `--selftest` edits a file, checks that
# the event reached the manager, and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
install_debs build-essential pkg-config ca-certificates
require_cargo

selftest=0
[ "${1:-}" = "--selftest" ] && selftest=1
DEMO=${BANNIN_DEMO_DIR:-$PWD/demo}
PORT=${BANNIN_DEMO_PORT:-8443}
BIN=$PWD/target/debug

cargo build --bins --locked
mkdir -p "$DEMO/watched"
MANAGER="$BIN/bannin-manager"
AGENT="$BIN/bannin-agent"

if [ ! -f "$DEMO/manager/ca.pem" ]; then
    "$MANAGER" init --data-dir "$DEMO/manager" --port "$PORT" --json > "$DEMO/init.json"
    chmod 600 "$DEMO/init.json"
fi
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$DEMO/init.json" "$1"; }
FINGERPRINT=$(field ca_fingerprint)
ADMIN_TOKEN=$(field admin_token)
URL="https://localhost:$PORT"

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

rm -f "$DEMO/manager/manager.addr"
"$MANAGER" serve --data-dir "$DEMO/manager" --listen "127.0.0.1:$PORT" >"$DEMO/manager.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
    [ -f "$DEMO/manager/manager.addr" ] && break
    kill -0 "${pids[0]}" 2>/dev/null || { cat "$DEMO/manager.log"; echo "manager failed to start (port $PORT busy? set BANNIN_DEMO_PORT)"; exit 1; }
    sleep 0.1
done

if [ ! -f "$DEMO/agent/identity.toml" ]; then
    TOKEN=$("$MANAGER" token create --data-dir "$DEMO/manager" --ttl 10m --uses 1 2>/dev/null)
    "$AGENT" enroll --manager "$URL" --token "$TOKEN" --ca-fingerprint "$FINGERPRINT" \
        --state-dir "$DEMO/agent" --name "$(hostname)-demo"
fi
cat > "$DEMO/agent.toml" <<TOML
state_dir = "$DEMO/agent"
[manager]
heartbeat_secs = 10
[[fim.paths]]
path = "$DEMO/watched"
realtime = true
TOML
"$AGENT" run --config "$DEMO/agent.toml" >"$DEMO/agent.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do grep -q "first scan finished" "$DEMO/agent.log" && break; sleep 0.1; done

cat <<INFO

Bannin is running on this host.
  Manager URL:      $URL   (log: $DEMO/manager.log)
  Admin token:      $ADMIN_TOKEN
  CA fingerprint:   $FINGERPRINT
  Watched directory: $DEMO/watched   (agent log: $DEMO/agent.log)

Try, in another terminal:
  echo hello > $DEMO/watched/hello.txt
  $MANAGER events --data-dir $DEMO/manager
  $MANAGER agents --data-dir $DEMO/manager
  curl --cacert $DEMO/manager/ca.pem -H "Authorization: Bearer $ADMIN_TOKEN" $URL/api/v1/events
Ctrl-C stops the manager and the agent.
INFO

if [ "$selftest" = 1 ]; then
    probe="$DEMO/watched/selftest-$$.txt"
    echo "self-test $(date)" > "$probe"
    for _ in $(seq 1 100); do
        if "$MANAGER" events --data-dir "$DEMO/manager" --kind fim | grep -q "selftest-$$"; then
            echo "selftest: OK, the change reached the manager:"
            "$MANAGER" events --data-dir "$DEMO/manager" --kind fim | grep "selftest-$$"
            rm -f "$probe"
            exit 0
        fi
        sleep 0.2
    done
    echo "selftest: FAILED, no event for $probe"; tail -20 "$DEMO/agent.log" "$DEMO/manager.log"; exit 1
fi
wait
