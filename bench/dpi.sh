#!/usr/bin/env bash
# DPI offline benchmark: builds a realistic HTTP/TLS/DNS capture with ../shared/tools/gen_traffic.py
# (inside a private network namespace, captured by tcpdump on its loopback), then measures
# `bannin-agent pcap` with the ET Open rules: rule load time, throughput (Mbit/s, packets/s on one
# core) and peak RSS. Anchor: Suricata 8.0.6, one thread, ET Open: ~1.3 Gbit/s, 170k pkt/s,
# 6-13 s rule load, 300 MB RSS.
#
# Needs: root (unshare -n), tcpdump, ethtool (apt-get install -y tcpdump ethtool), openssl, python3, GNU time (/usr/bin/time) or falls back to
# reading VmHWM. Usage: bench/dpi.sh [BYTES]   (default 200 MB of application payload)
#        bench/dpi.sh live   (kernel drop rate of live capture on a veth pair)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
if [ "${1:-}" = live ]; then
  # Live capture: UDP at increasing rates over a veth pair between two network namespaces,
  # captured by the agent's AF_PACKET source with the ET Open rules; prints where the kernel
  # starts dropping. Needs root and iproute2.
  exec cargo test --release -q -p bannin-agent --test dpi_live -- --ignored --nocapture live_capture_drop_rate_on_veth
fi
SHARED=${SHARED:-$ROOT/../shared}
BYTES=${1:-200000000}
WORK=${WORK:-/tmp/bannin-bench-dpi}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
mkdir -p "$WORK"
PCAP=$WORK/traffic-$BYTES.pcap

if [ ! -s "$PCAP" ]; then
  command -v tcpdump >/dev/null || { echo "tcpdump missing: apt-get install -y tcpdump" >&2; exit 1; }
  openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=bench.example -days 2 \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
  echo "generating $BYTES bytes of traffic into $PCAP ..." >&2
  unshare -n bash -c "
    ip link set lo up
    ip link set lo mtu 1500
    ethtool -K lo tso off gso off gro off 2>/dev/null || true
    for i in 2 3 4; do ip addr add 127.0.0.\$i/8 dev lo 2>/dev/null || true; done
    tcpdump -i lo -s0 -U -w '$PCAP' 2>/dev/null & TD=\$!
    sleep 1
    python3 '$SHARED/tools/gen_traffic.py' --bytes $BYTES --seconds 300 \
      --cert '$WORK/cert.pem' --key '$WORK/key.pem' --samples '$SHARED/tools/et_samples.json' >&2 || true
    sleep 1; kill \$TD; wait \$TD 2>/dev/null || true
  "
fi

cargo build --release -q -p bannin-agent
BIN=$TARGET/release/bannin-agent
PKTS_BYTES=$(python3 - "$PCAP" <<'PY'
import struct,sys
d=open(sys.argv[1],'rb'); d.read(24); n=b=0
while True:
    h=d.read(16)
    if len(h)<16: break
    cl=struct.unpack('<IIII',h)[2]; d.seek(cl,1); n+=1; b+=cl
print(n,b)
PY
)
read -r PKTS BYTES_CAP <<<"$PKTS_BYTES"
cat "$PCAP" > /dev/null  # warm the page cache right before the timed runs

run() {  # $1 = rules path; prints "cpu_seconds peak_rss_kb"
  local err=$WORK/stderr.txt
  /usr/bin/time -f "%U %S %M" -o "$WORK/time.txt" "$BIN" pcap "$PCAP" --rules "$1" -k none > "$WORK/alerts.json" 2> "$err"
  read -r u s m < "$WORK/time.txt"
  echo "$(python3 -c "print($u+$s)") $m"
}

EMPTY=$WORK/empty.rules; : > "$EMPTY"
read -r CPU_EMPTY RSS_EMPTY <<<"$(run "$EMPTY")"
read -r CPU_ET RSS_ET <<<"$(run "$SHARED/corpus/dpi/et-open")"
LOAD=$(grep -o 'in [0-9.]*s' "$WORK/stderr.txt" | head -1 | tr -dc '0-9.')
ALERTS=$(wc -l < "$WORK/alerts.json")
grep '^rules:' "$WORK/stderr.txt" >&2 || true
python3 - <<PY
pk=$PKTS; by=$BYTES_CAP; cpu=$CPU_ET; load=float("$LOAD" or 0); cpu0=$CPU_EMPTY
insp=max(cpu-load,1e-9)
mbit=by*8/insp/1e6; pps=pk/insp
print(f"capture: {pk} packets, {by/1e6:.1f} MB")
print(f"ET Open rule load: {load:.2f} s  (Suricata 8.0.6: 6-13 s)")
print(f"inspection, one core: {mbit:.0f} Mbit/s, {pps/1e3:.0f}k packets/s  (Suricata: 1300 Mbit/s, 170k pkt/s; ratio {mbit/1300:.2f})")
print(f"no rules (decode+flows+app parsing only): {by*8/max(cpu0,1e-9)/1e6:.0f} Mbit/s")
print(f"peak RSS with ET Open: {$RSS_ET/1024:.0f} MB  (Suricata: 300 MB; goal < 100 MB)")
print(f"alerts: $ALERTS")
PY
