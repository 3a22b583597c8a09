//! The packet pipeline: defragmentation, flow table, TCP reassembly, application parsers and
//! detection. Sans-IO: frames and their timestamps in, [`Alert`]s out.

use crate::addr::AddrSet;
use crate::app::{self, AppState, TxRef};
use crate::decode::{self, tcpflag, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use crate::detect::{apply_transforms, match_group, Ctx};
use crate::rules::{
    Action, AppProto, Buf, FlowbitCmd, FlowbitOp, FlowintCmd, IntCmp, PktCheck, Proto, Rule, Side,
    ThresholdKind, Track, XTrack, XbitOp,
};
use crate::ruleset::RuleSet;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

/// Tunables of the pipeline. Defaults follow Suricata's default configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Verify IPv4/TCP/UDP checksums and ignore packets that fail (Suricata `-k all`).
    pub checksum_validation: bool,
    /// Pick up TCP sessions whose handshake was not seen (`stream.midstream`).
    pub midstream: bool,
    /// Most flows tracked at once; older ones are evicted first when it is reached.
    pub max_flows: usize,
    /// Bytes per direction handed to the application parsers (`stream.reassembly.depth`, 0 = unlimited).
    pub stream_depth: u64,
    /// Out-of-order bytes buffered per direction while waiting for a gap to fill.
    pub max_ooo_bytes: usize,
    /// HTTP body bytes kept per message for inspection.
    pub http_body_limit: usize,
    /// Content-Encoding layers undone (`response-body-decompress-layer-limit`).
    pub http_decompress_layers: usize,
    /// Fragmented datagrams reassembled at once.
    pub max_frag_datagrams: usize,
    pub flow_timeout_new: u64,
    pub flow_timeout_established: u64,
    pub flow_timeout_closed: u64,
    /// Alerts kept per packet (`packet-alert-max`).
    pub packet_alert_max: usize,
    /// Exception policy for TCP sessions picked up midstream: when set, such flows are passed
    /// (not inspected at all), as Suricata's `stream.midstream-policy` bypass/pass-flow/drop-flow/reject do.
    pub midstream_pass: bool,
    /// Decode VXLAN (UDP 4789) and inspect the inner packets (`decoder.vxlan.enabled`).
    pub vxlan: bool,
    /// Keep inspecting TLS payload with content rules after the handshake (Suricata's
    /// `encryption-handling: full`). Off by default: ciphertext cannot match, and skipping it
    /// saves most of the cost of HTTPS traffic.
    pub tls_inspect_encrypted: bool,
    /// Inline (IPS) semantics: a `drop`/`reject` rule matching a flow (IP-only rule, stream or
    /// application-layer match) ends inspection of that flow, as its later packets are dropped.
    pub ips: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            checksum_validation: false,
            midstream: false,
            max_flows: 65_536,
            stream_depth: 1 << 20,
            max_ooo_bytes: 256 * 1024,
            http_body_limit: 100 * 1024,
            http_decompress_layers: 2,
            max_frag_datagrams: 4096,
            flow_timeout_new: 30,
            flow_timeout_established: 300,
            flow_timeout_closed: 10,
            packet_alert_max: 15,
            midstream_pass: false,
            vxlan: true,
            tls_inspect_encrypted: false,
            ips: false,
        }
    }
}

/// Time of a packet: seconds and microseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Timestamp {
    pub secs: u64,
    pub micros: u32,
}

/// One alert, with the fields Suricata's EVE `alert` record carries.
#[derive(Debug, Clone)]
pub struct Alert {
    pub ts: Timestamp,
    pub pcap_cnt: u64,
    pub flow_id: u64,
    pub src_ip: IpAddr,
    pub src_port: u16,
    pub dest_ip: IpAddr,
    pub dest_port: u16,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6...).
    pub proto: u8,
    pub app_proto: Option<&'static str>,
    pub signature_id: u32,
    pub gid: u32,
    pub rev: u32,
    pub signature: String,
    pub category: String,
    pub severity: u8,
    /// `allowed` or `blocked`, as EVE prints it.
    pub action: &'static str,
}

/// Counters for the summary.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub packets: u64,
    pub bytes: u64,
    pub decode_errors: u64,
    pub checksum_errors: u64,
    pub flows: u64,
    pub flows_evicted: u64,
    pub fragments: u64,
    pub frag_reassembled: u64,
    pub frag_dropped: u64,
    pub alerts: u64,
    pub ooo_dropped_bytes: u64,
}

/// A `suppress`, `threshold` or `rate_filter` line of a threshold.config.
#[derive(Debug, Clone)]
pub enum ThresholdEntry {
    Suppress {
        gid: u32,
        sid: u32,
        track: Option<Track>,
        addrs: Option<AddrSet>,
    },
    Threshold {
        gid: u32,
        sid: u32,
        t: crate::rules::Threshold,
    },
    RateFilter {
        gid: u32,
        sid: u32,
        track: Track,
        count: u64,
        seconds: u64,
        new_action: Action,
        timeout: u64,
    },
}

/// Parse threshold.config text. Errors name the line.
pub fn parse_threshold_config(
    text: &str,
    vars: &crate::addr::Vars,
) -> (Vec<ThresholdEntry>, Vec<String>) {
    let mut out = Vec::new();
    let mut errs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let (kind, rest) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
        let mut kv: HashMap<String, String> = HashMap::new();
        // `ip` may hold a bracketed list with commas; split on commas outside brackets.
        let mut depth = 0;
        let mut cur = String::new();
        let mut parts = Vec::new();
        for c in rest.chars() {
            match c {
                '[' => {
                    depth += 1;
                    cur.push(c)
                }
                ']' => {
                    depth -= 1;
                    cur.push(c)
                }
                ',' if depth == 0 => parts.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            }
        }
        parts.push(cur);
        for p in parts {
            let p = p.trim();
            if let Some((k, v)) = p.split_once(char::is_whitespace) {
                kv.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
        let num = |k: &str| kv.get(k).and_then(|v| v.parse::<u64>().ok());
        let gid = num("gen_id").unwrap_or(1) as u32;
        let Some(sid) = num("sig_id").map(|s| s as u32) else {
            errs.push(format!("line {}: missing sig_id", i + 1));
            continue;
        };
        let track = kv.get("track").and_then(|t| Track::parse(t));
        match kind {
            "suppress" => {
                let addrs = match kv.get("ip") {
                    Some(ip) => match crate::addr::parse_addr(ip, vars) {
                        Ok(a) => Some(a),
                        Err(e) => {
                            errs.push(format!("line {}: {e}", i + 1));
                            continue;
                        }
                    },
                    None => None,
                };
                out.push(ThresholdEntry::Suppress {
                    gid,
                    sid,
                    track,
                    addrs,
                });
            }
            "threshold" | "event_filter" => {
                let k = match kv.get("type").map(|s| s.as_str()) {
                    Some("limit") => ThresholdKind::Limit,
                    Some("threshold") => ThresholdKind::Threshold,
                    Some("both") => ThresholdKind::Both,
                    Some("backoff") => ThresholdKind::Backoff,
                    _ => {
                        errs.push(format!("line {}: bad or missing type", i + 1));
                        continue;
                    }
                };
                let (Some(track), Some(count)) = (track, num("count")) else {
                    errs.push(format!("line {}: threshold needs track and count", i + 1));
                    continue;
                };
                out.push(ThresholdEntry::Threshold {
                    gid,
                    sid,
                    t: crate::rules::Threshold {
                        kind: k,
                        track,
                        count,
                        seconds: num("seconds").unwrap_or(0),
                    },
                });
            }
            "rate_filter" => {
                let (Some(track), Some(count)) = (track, num("count")) else {
                    errs.push(format!("line {}: rate_filter needs track and count", i + 1));
                    continue;
                };
                let new_action = match kv.get("new_action").map(|s| s.as_str()) {
                    Some("alert") => Action::Alert,
                    Some("drop") => Action::Drop,
                    Some("pass") => Action::Pass,
                    Some("reject") => Action::Reject,
                    _ => {
                        errs.push(format!("line {}: bad or missing new_action", i + 1));
                        continue;
                    }
                };
                out.push(ThresholdEntry::RateFilter {
                    gid,
                    sid,
                    track,
                    count,
                    seconds: num("seconds").unwrap_or(0),
                    new_action,
                    timeout: num("timeout").unwrap_or(0),
                });
            }
            k => errs.push(format!("line {}: unknown directive {k:?}", i + 1)),
        }
    }
    (out, errs)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FlowKey {
    a: (IpAddr, u16),
    b: (IpAddr, u16),
    proto: u8,
}

#[derive(Default)]
struct Stream {
    isn: u32,
    init: bool,
    next: u64,
    ooo: BTreeMap<u64, Vec<u8>>,
    ooo_bytes: usize,
    delivered: u64,
    fin: bool,
    /// The last segment lay entirely before `next` (a retransmission of delivered bytes).
    last_old: bool,
}

impl Stream {
    fn start(&mut self, isn: u32) {
        self.isn = isn;
        self.next = 1;
        self.init = true;
    }

    /// Insert a segment; returns the newly contiguous bytes (first copy wins on overlap).
    fn insert(&mut self, seq: u32, data: &[u8], max_ooo: usize, dropped: &mut u64) -> Vec<u8> {
        let rel = seq.wrapping_sub(self.isn) as u64;
        // Segments claiming to be more than 1 GiB ahead are garbage or wrapped-old.
        if rel > self.next + (1 << 30) {
            return Vec::new();
        }
        let end = rel + data.len() as u64;
        if end <= self.next {
            self.last_old = true;
            return Vec::new();
        }
        let mut out = Vec::new();
        if rel <= self.next {
            let skip = (self.next - rel) as usize;
            out.extend_from_slice(&data[skip..]);
            self.next = end;
            self.drain_ooo(&mut out);
        } else if !self.ooo.contains_key(&rel) {
            if self.ooo_bytes + data.len() <= max_ooo {
                self.ooo_bytes += data.len();
                self.ooo.insert(rel, data.to_vec());
            } else {
                *dropped += data.len() as u64;
            }
        }
        self.delivered += out.len() as u64;
        out
    }

    fn drain_ooo(&mut self, out: &mut Vec<u8>) {
        while let Some((&k, _)) = self.ooo.iter().next() {
            if k > self.next {
                break;
            }
            let v = self.ooo.remove(&k).unwrap_or_default();
            self.ooo_bytes -= v.len();
            let e = k + v.len() as u64;
            if e > self.next {
                out.extend_from_slice(&v[(self.next - k) as usize..]);
                self.next = e;
            }
        }
    }

    /// At the end of a stream, skip gaps and hand over what is buffered.
    fn flush_gaps(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some((&k, _)) = self.ooo.iter().next() {
            if k > self.next {
                self.next = k;
            }
            self.drain_ooo(&mut out);
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TcpState {
    None,
    SynSent,
    SynRecv,
    Established,
    Closed,
}

struct Flow {
    id: u64,
    proto: u8,
    cli: (IpAddr, u16),
    /// Both ports as first seen, hints for protocol detection.
    ports: (u16, u16),
    last_ts: u64,
    state: TcpState,
    tracked: bool,
    established: bool,
    streams: [Stream; 2],
    app_proto: Option<AppProto>,
    app_failed: bool,
    app: AppState,
    pd_buf: [Vec<u8>; 2],
    flowbits: Vec<u64>,
    /// `flowint` variables of this flow (few per flow: a small list beats a map).
    ints: Vec<(u32, i64)>,
    alerted: HashSet<(u64, u32)>,
    seen: [bool; 2],
    /// IP-only rules whose header matches this flow direction (computed on its first packet).
    iponly: [Option<Vec<u32>>; 2],
    bytes: [u64; 2],
    closed_app: [bool; 2],
    passed: bool,
}

impl Flow {
    fn bit(&self, b: u32) -> bool {
        self.flowbits
            .get(b as usize / 64)
            .is_some_and(|w| w >> (b % 64) & 1 == 1)
    }
    fn set_bit(&mut self, b: u32, v: bool) {
        let i = b as usize / 64;
        if self.flowbits.len() <= i {
            self.flowbits.resize(i + 1, 0);
        }
        if v {
            self.flowbits[i] |= 1 << (b % 64);
        } else {
            self.flowbits[i] &= !(1 << (b % 64));
        }
    }
    fn app_name(&self) -> Option<&'static str> {
        match self.app_proto {
            Some(p) => Some(p.name()),
            None if self.app_failed => Some("failed"),
            None => None,
        }
    }
}

struct FragBuf {
    data: Vec<u8>,
    have: Vec<(u32, u32)>,
    total: Option<u32>,
    first_ts: u64,
    ttl: u8,
    header: Vec<u8>,
}

/// The view of one packet that detection works on.
struct Pkt<'a> {
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    proto: u8,
    ttl: u8,
    ip_header: &'a [u8],
    l4_header: &'a [u8],
    payload: &'a [u8],
    ipv4_options: &'a [u8],
    tcp: Option<decode::TcpHdr<'a>>,
    icmp: Option<(u8, u8, u16)>,
    /// A flow-end pseudo packet: only stream content is inspected, not headers.
    pseudo: bool,
}

/// One DPI engine instance: owns its flow table; a rule set may be shared between instances.
pub struct Engine {
    rules: Arc<RuleSet>,
    cfg: Config,
    flows: HashMap<FlowKey, Flow>,
    frags: HashMap<(IpAddr, IpAddr, u32, u8), FragBuf>,
    next_flow_id: u64,
    pcap_cnt: u64,
    last_sweep: u64,
    now: Timestamp,
    stats: Stats,
    seen_stamp: Vec<u32>,
    stamp: u32,
    thr: HashMap<(u32, u32, ThrKey), ThrState>,
    tcfg: Vec<ThresholdEntry>,
    rate: HashMap<(u32, u32, ThrKey), RateState>,
    tunnel_depth: u8,
    /// `xbits` per host or host pair: bit -> expiry (seconds; u64::MAX = until unset).
    xbits: HashMap<(u32, ThrKey), u64>,
}

/// Most host/pair bits kept at once; a flood of distinct hosts cannot grow the table further.
const MAX_XBITS: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ThrKey {
    Ip(IpAddr),
    Pair(IpAddr, IpAddr),
    Rule,
    Flow(u64),
}

#[derive(Debug, Clone, Copy)]
struct ThrState {
    start: u64,
    count: u64,
    alerted_at: u64,
}

#[derive(Debug, Clone, Copy)]
struct RateState {
    start: u64,
    count: u64,
    until: u64,
}

struct Hit {
    rule: u32,
}

impl Engine {
    pub fn new(rules: Arc<RuleSet>, cfg: Config) -> Engine {
        let n = rules.rules.len();
        Engine {
            rules,
            cfg,
            flows: HashMap::new(),
            frags: HashMap::new(),
            next_flow_id: 1,
            pcap_cnt: 0,
            last_sweep: 0,
            now: Timestamp::default(),
            stats: Stats::default(),
            seen_stamp: vec![0; n],
            stamp: 0,
            thr: HashMap::new(),
            tcfg: Vec::new(),
            rate: HashMap::new(),
            tunnel_depth: 0,
            xbits: HashMap::new(),
        }
    }

    /// Apply threshold.config entries (suppress, threshold overrides, rate filters).
    pub fn set_threshold_config(&mut self, entries: Vec<ThresholdEntry>) {
        self.tcfg = entries;
    }

    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.flows = self.next_flow_id - 1;
        s
    }

    /// Number of flows currently tracked.
    pub fn active_flows(&self) -> usize {
        self.flows.len()
    }

    /// Process one captured frame of the given pcap link type; alerts are appended to `out`.
    pub fn process(&mut self, ts: Timestamp, linktype: u32, frame: &[u8], out: &mut Vec<Alert>) {
        self.pcap_cnt += 1;
        self.stats.packets += 1;
        self.stats.bytes += frame.len() as u64;
        if ts > self.now {
            self.now = ts;
        }
        if self.now.secs >= self.last_sweep + 1 {
            self.sweep(out);
            self.last_sweep = self.now.secs;
        }
        let Some(ipb) = decode::decode_link(linktype, frame) else {
            self.stats.decode_errors += 1;
            return;
        };
        let Some(ip) = decode::decode_ip(ipb) else {
            self.stats.decode_errors += 1;
            return;
        };
        if self.cfg.checksum_validation && !ip.checksum_ok {
            self.stats.checksum_errors += 1;
            return;
        }
        if let Some(fi) = ip.frag {
            self.stats.fragments += 1;
            let Some((hdr, payload)) = self.defrag(&ip, fi) else {
                return;
            };
            let ip2 = decode::IpPacket {
                header: &hdr,
                payload: &payload,
                frag: None,
                ..ip.clone()
            };
            self.process_ip(&ip2, out);
            return;
        }
        self.process_ip(&ip, out);
    }

    fn defrag(
        &mut self,
        ip: &decode::IpPacket<'_>,
        fi: decode::FragInfo,
    ) -> Option<(Vec<u8>, Vec<u8>)> {
        const MAX_DGRAM: u32 = 65_535 + 8;
        let key = (ip.src, ip.dst, fi.id, ip.proto);
        if !self.frags.contains_key(&key) && self.frags.len() >= self.cfg.max_frag_datagrams {
            // Evict the oldest datagram so a fragment flood cannot grow memory.
            if let Some(k) = self
                .frags
                .iter()
                .min_by_key(|(_, f)| f.first_ts)
                .map(|(k, _)| *k)
            {
                self.frags.remove(&k);
                self.stats.frag_dropped += 1;
            }
        }
        let now = self.now.secs;
        let f = self.frags.entry(key).or_insert_with(|| FragBuf {
            data: Vec::new(),
            have: Vec::new(),
            total: None,
            first_ts: now,
            ttl: ip.ttl,
            header: Vec::new(),
        });
        let start = fi.offset;
        let end = start + ip.payload.len() as u32;
        if end > MAX_DGRAM || f.have.len() > 256 {
            self.frags.remove(&key);
            self.stats.frag_dropped += 1;
            return None;
        }
        if f.data.len() < end as usize {
            f.data.resize(end as usize, 0);
        }
        // First fragment wins: write only bytes no earlier fragment covered.
        for (i, b) in ip.payload.iter().enumerate() {
            let pos = start + i as u32;
            if !f.have.iter().any(|&(a, e)| a <= pos && pos < e) {
                f.data[pos as usize] = *b;
            }
        }
        f.have.push((start, end));
        if start == 0 {
            f.header = ip.header.to_vec();
            f.ttl = ip.ttl;
        }
        if !fi.more {
            f.total = Some(end);
        }
        let total = f.total?;
        let mut ranges = f.have.clone();
        ranges.sort();
        let mut cov = 0u32;
        for (a, e) in ranges {
            if a > cov {
                return None;
            }
            cov = cov.max(e);
        }
        if cov < total {
            return None;
        }
        let f = self.frags.remove(&key)?;
        self.stats.frag_reassembled += 1;
        let mut d = f.data;
        d.truncate(total as usize);
        Some((f.header, d))
    }

    fn process_ip(&mut self, ip: &decode::IpPacket<'_>, out: &mut Vec<Alert>) {
        let mut pkt = Pkt {
            src: ip.src,
            dst: ip.dst,
            sport: 0,
            dport: 0,
            proto: ip.proto,
            ttl: ip.ttl,
            ip_header: ip.header,
            l4_header: &[],
            payload: &[],
            ipv4_options: ip.ipv4_options,
            tcp: None,
            icmp: None,
            pseudo: false,
        };
        match ip.proto {
            PROTO_TCP => {
                let Some((h, payload)) = decode::decode_tcp(ip.payload) else {
                    self.stats.decode_errors += 1;
                    return;
                };
                if self.cfg.checksum_validation
                    && !decode::l4_checksum_ok(&ip.src, &ip.dst, PROTO_TCP, ip.payload)
                {
                    self.stats.checksum_errors += 1;
                    return;
                }
                pkt.sport = h.sport;
                pkt.dport = h.dport;
                pkt.l4_header = h.header;
                pkt.payload = payload;
                pkt.tcp = Some(h);
            }
            PROTO_UDP => {
                let Some((sp, dp, hdr, payload)) = decode::decode_udp(ip.payload) else {
                    self.stats.decode_errors += 1;
                    return;
                };
                if self.cfg.checksum_validation
                    && u16::from_be_bytes([hdr[6], hdr[7]]) != 0
                    && !decode::l4_checksum_ok(&ip.src, &ip.dst, PROTO_UDP, ip.payload)
                {
                    self.stats.checksum_errors += 1;
                    return;
                }
                if self.cfg.vxlan
                    && dp == 4789
                    && payload.len() > 8
                    && payload[0] & 0x08 != 0
                    && self.tunnel_depth < 2
                {
                    // VXLAN: inspect the encapsulated Ethernet frame as a packet of its own.
                    if let Some(inner) =
                        decode::decode_link(decode::linktype::ETHERNET, &payload[8..])
                            .and_then(decode::decode_ip)
                    {
                        if inner.frag.is_none() {
                            self.tunnel_depth += 1;
                            self.process_ip(&inner, out);
                            self.tunnel_depth -= 1;
                            return;
                        }
                    }
                }
                pkt.sport = sp;
                pkt.dport = dp;
                pkt.l4_header = hdr;
                pkt.payload = payload;
            }
            PROTO_ICMP | PROTO_ICMPV6 => {
                if ip.payload.len() < 4 {
                    self.stats.decode_errors += 1;
                    return;
                }
                let id = if ip.payload.len() >= 6 {
                    u16::from_be_bytes([ip.payload[4], ip.payload[5]])
                } else {
                    0
                };
                pkt.icmp = Some((ip.payload[0], ip.payload[1], id));
                pkt.l4_header = &ip.payload[..ip.payload.len().min(8)];
                pkt.payload = ip.payload.get(8..).unwrap_or(&[]);
            }
            47 if self.tunnel_depth < 2 => {
                // GRE: inspect the encapsulated packet (IPv4/IPv6, Ethernet, ERSPAN type II).
                if let Some(inner) = gre_inner(ip.payload) {
                    if let Some(inner) = decode::decode_ip(inner) {
                        if inner.frag.is_none() {
                            self.tunnel_depth += 1;
                            self.process_ip(&inner, out);
                            self.tunnel_depth -= 1;
                            return;
                        }
                    }
                }
                pkt.payload = ip.payload;
            }
            _ => {
                pkt.payload = ip.payload;
            }
        }
        self.handle(&pkt, out);
    }

    fn flow_key(p: &Pkt<'_>) -> FlowKey {
        let a = (p.src, p.sport);
        let b = (p.dst, p.dport);
        if a <= b {
            FlowKey {
                a,
                b,
                proto: p.proto,
            }
        } else {
            FlowKey {
                a: b,
                b: a,
                proto: p.proto,
            }
        }
    }

    fn handle(&mut self, p: &Pkt<'_>, out: &mut Vec<Alert>) {
        let key = Self::flow_key(p);
        if !self.flows.contains_key(&key) && self.flows.len() >= self.cfg.max_flows {
            self.evict(out);
        }
        let is_new = !self.flows.contains_key(&key);
        if is_new {
            let id = self.next_flow_id;
            self.next_flow_id += 1;
            let mut cli = (p.src, p.sport);
            if let Some(t) = &p.tcp {
                if t.flags & tcpflag::SYN != 0 && t.flags & tcpflag::ACK != 0 {
                    cli = (p.dst, p.dport);
                }
            }
            self.flows.insert(
                key,
                Flow {
                    id,
                    proto: p.proto,
                    cli,
                    ports: (p.sport, p.dport),
                    last_ts: self.now.secs,
                    state: TcpState::None,
                    tracked: false,
                    established: false,
                    streams: [Stream::default(), Stream::default()],
                    app_proto: None,
                    app_failed: false,
                    app: AppState::None,
                    pd_buf: [Vec::new(), Vec::new()],
                    flowbits: Vec::new(),
                    ints: Vec::new(),
                    alerted: HashSet::new(),
                    seen: [false, false],
                    iponly: [None, None],
                    bytes: [0, 0],
                    closed_app: [false, false],
                    passed: false,
                },
            );
        }
        let mut flow = self.flows.remove(&key).expect("flow present");
        flow.last_ts = self.now.secs;
        let to_server = (p.src, p.sport) == flow.cli;
        let d = usize::from(!to_server);
        flow.seen[d] = true;
        flow.bytes[d] += p.payload.len() as u64;

        let mut events: Vec<(TxRef, bool, u8)> = Vec::new();
        let mut stream_data: Option<Vec<u8>> = None;
        flow.streams[d].last_old = false;
        match (p.proto, &p.tcp) {
            (PROTO_TCP, Some(t)) => {
                self.tcp_track(
                    &mut flow,
                    t,
                    p.payload,
                    to_server,
                    is_new,
                    &mut stream_data,
                    &mut events,
                );
            }
            (PROTO_UDP, _) => {
                if flow.seen[0] && flow.seen[1] {
                    flow.established = true;
                }
                if !p.payload.is_empty() {
                    self.udp_app(&mut flow, p, to_server, &mut events);
                }
            }
            _ => {
                if flow.seen[0] && flow.seen[1] {
                    flow.established = true;
                }
            }
        }

        if !flow.passed {
            let mark = out.len();
            let pkt_buf: &[u8] = if flow.tracked && p.proto == PROTO_TCP {
                stream_data.as_deref().unwrap_or(&[])
            } else {
                p.payload
            };
            // A retransmission of bytes the stream already delivered is not inspected again.
            let mut raw_ok = !(flow.tracked && flow.streams[d].last_old);
            let mut scan_raw = true;
            let mut pkt_buf = pkt_buf;
            if !self.cfg.tls_inspect_encrypted {
                if let AppState::Tls(t) = &flow.app {
                    if t.encrypted() {
                        pkt_buf = &[];
                        raw_ok = false;
                        scan_raw = false;
                    }
                }
            }
            self.detect_packet(&mut flow, p, to_server, pkt_buf, (raw_ok, scan_raw), out);
            for (tx, side_ts, _prog) in events {
                self.detect_tx(&mut flow, p, to_server, tx, side_ts, out);
            }
            if out.len() - mark > self.cfg.packet_alert_max {
                out.truncate(mark + self.cfg.packet_alert_max);
            }
        }
        if flow.alerted.len() > 4096 {
            flow.alerted.clear();
        }
        self.flows.insert(key, flow);
    }

    #[allow(clippy::too_many_arguments)]
    fn tcp_track(
        &mut self,
        flow: &mut Flow,
        t: &decode::TcpHdr<'_>,
        payload: &[u8],
        to_server: bool,
        is_new: bool,
        stream_data: &mut Option<Vec<u8>>,
        events: &mut Vec<(TxRef, bool, u8)>,
    ) {
        let d = usize::from(!to_server);
        let syn = t.flags & tcpflag::SYN != 0;
        let ack = t.flags & tcpflag::ACK != 0;
        if is_new {
            if syn && !ack {
                flow.state = TcpState::SynSent;
                flow.tracked = true;
                flow.streams[0].start(t.seq);
            } else if syn && ack && self.cfg.midstream && !self.cfg.midstream_pass {
                // Handshake seen from the SYN/ACK on: a midstream pickup Suricata allows.
                flow.state = TcpState::SynRecv;
                flow.tracked = true;
                flow.streams[1].start(t.seq);
            } else if self.cfg.midstream_pass {
                flow.passed = true;
            } else if self.cfg.midstream {
                flow.state = TcpState::Established;
                flow.tracked = true;
                flow.established = true;
                flow.streams[d].start(t.seq.wrapping_sub(1));
            }
        } else if flow.tracked {
            match flow.state {
                TcpState::SynSent if syn && ack && !to_server => {
                    flow.streams[1].start(t.seq);
                    flow.state = TcpState::SynRecv;
                }
                TcpState::SynSent if syn && !ack && !to_server => {
                    // Simultaneous open / split handshake: the "server" sent its own SYN.
                    flow.streams[1].start(t.seq);
                    flow.state = TcpState::SynRecv;
                }
                TcpState::SynRecv if ack && !syn && to_server => {
                    flow.state = TcpState::Established;
                    flow.established = true;
                }
                TcpState::SynRecv if ack && !syn && !to_server && !flow.streams[0].init => {
                    flow.streams[0].start(t.seq.wrapping_sub(1));
                    flow.state = TcpState::Established;
                    flow.established = true;
                }
                _ => {}
            }
            if flow.established && !flow.streams[d].init && !syn {
                flow.streams[d].start(t.seq.wrapping_sub(1));
            }
        }
        if t.flags & tcpflag::RST != 0 {
            flow.state = TcpState::Closed;
        }
        if !flow.tracked || !flow.streams[d].init {
            return;
        }
        if !payload.is_empty() {
            let seq = if syn { t.seq.wrapping_add(1) } else { t.seq };
            let depth = self.cfg.stream_depth;
            let st = &mut flow.streams[d];
            if depth == 0 || st.delivered < depth {
                let mut data = st.insert(
                    seq,
                    payload,
                    self.cfg.max_ooo_bytes,
                    &mut self.stats.ooo_dropped_bytes,
                );
                if depth != 0 && st.delivered > depth {
                    let over = (st.delivered - depth) as usize;
                    data.truncate(data.len().saturating_sub(over));
                }
                if !data.is_empty() {
                    self.app_data(flow, to_server, &data, events);
                    *stream_data = Some(data);
                }
            }
        }
        if t.flags & tcpflag::FIN != 0 || t.flags & tcpflag::RST != 0 {
            flow.streams[d].fin = true;
            let rest = flow.streams[d].flush_gaps();
            if !rest.is_empty() {
                self.app_data(flow, to_server, &rest, events);
            }
            self.app_close(flow, to_server, events);
            if t.flags & tcpflag::RST != 0 {
                self.app_close(flow, !to_server, events);
            }
        }
    }

    fn app_data(
        &mut self,
        flow: &mut Flow,
        to_server: bool,
        data: &[u8],
        events: &mut Vec<(TxRef, bool, u8)>,
    ) {
        let d = usize::from(!to_server);
        if flow.app_proto.is_none() {
            if flow.app_failed {
                return;
            }
            flow.pd_buf[d].extend_from_slice(&data[..data.len().min(512)]);
            let (pa, pb) = flow.ports;
            let buf = std::mem::take(&mut flow.pd_buf[d]);
            let det = app::detect(&buf, to_server, false, pa, pb);
            match det {
                Some(p) => {
                    flow.app_proto = Some(p);
                    flow.app = app::new_state(
                        p,
                        self.cfg.http_body_limit,
                        self.cfg.http_decompress_layers,
                    );
                    let other = std::mem::take(&mut flow.pd_buf[1 - d]);
                    if !other.is_empty() {
                        self.feed_app(flow, !to_server, &other, events);
                    }
                    self.feed_app(flow, to_server, &buf, events);
                    return;
                }
                None => {
                    if buf.len() >= 64 && (flow.pd_buf[1 - d].len() >= 16 || buf.len() >= 256)
                        || buf.len() >= 512
                    {
                        flow.app_failed = true;
                        flow.pd_buf = [Vec::new(), Vec::new()];
                    } else {
                        flow.pd_buf[d] = buf;
                    }
                    return;
                }
            }
        }
        self.feed_app(flow, to_server, data, events);
    }

    fn feed_app(
        &mut self,
        flow: &mut Flow,
        to_server: bool,
        data: &[u8],
        events: &mut Vec<(TxRef, bool, u8)>,
    ) {
        match &mut flow.app {
            AppState::Http(h) => {
                let mut ev = Vec::new();
                h.feed(to_server, data, &mut ev);
                for e in ev {
                    let side = matches!(
                        e.progress,
                        app::http::Progress::RequestHeaders | app::http::Progress::RequestDone
                    );
                    events.push((TxRef::Http(e.tx), side, e.progress as u8));
                }
            }
            AppState::Tls(t) => {
                let ev = t.feed(to_server, data);
                if ev.client_hello {
                    events.push((TxRef::Tls, true, 0));
                }
                if ev.server_hello || ev.certificate {
                    events.push((TxRef::Tls, false, 1));
                }
            }
            AppState::Ssh { banner, buf } => {
                let d = usize::from(!to_server);
                if banner[d].is_none() {
                    buf[d].extend_from_slice(&data[..data.len().min(512)]);
                    if let Some(nl) = buf[d].iter().position(|&c| c == b'\n') {
                        let mut l = buf[d][..nl].to_vec();
                        if l.last() == Some(&b'\r') {
                            l.pop();
                        }
                        banner[d] = Some(l);
                        buf[d].clear();
                        events.push((TxRef::Ssh, to_server, 0));
                    } else if buf[d].len() >= 255 {
                        buf[d].clear();
                    }
                }
            }
            AppState::Dns { tcp, last, count } => {
                let mut msgs = Vec::new();
                tcp.feed(to_server, data, &mut msgs);
                if let Some(m) = msgs.pop() {
                    *last = Some(m);
                    *count += 1;
                    events.push((TxRef::Dns, to_server, 0));
                }
            }
            _ => {}
        }
    }

    fn app_close(&mut self, flow: &mut Flow, to_server: bool, events: &mut Vec<(TxRef, bool, u8)>) {
        let d = usize::from(!to_server);
        if flow.closed_app[d] {
            return;
        }
        flow.closed_app[d] = true;
        if let AppState::Http(h) = &mut flow.app {
            let mut ev = Vec::new();
            h.close(to_server, &mut ev);
            for e in ev {
                let side = matches!(
                    e.progress,
                    app::http::Progress::RequestHeaders | app::http::Progress::RequestDone
                );
                events.push((TxRef::Http(e.tx), side, e.progress as u8));
            }
        }
    }

    fn udp_app(
        &mut self,
        flow: &mut Flow,
        p: &Pkt<'_>,
        to_server: bool,
        events: &mut Vec<(TxRef, bool, u8)>,
    ) {
        if flow.app_proto.is_none() && !flow.app_failed {
            match app::detect(p.payload, to_server, true, p.sport, p.dport) {
                Some(a) => {
                    flow.app_proto = Some(a);
                    flow.app = app::new_state(
                        a,
                        self.cfg.http_body_limit,
                        self.cfg.http_decompress_layers,
                    );
                }
                None => {
                    flow.app_failed = true;
                }
            }
        }
        if let AppState::Dns { last, count, .. } = &mut flow.app {
            if let Some(m) = app::dns::parse(p.payload) {
                let side = !m.response;
                *last = Some(m);
                *count += 1;
                events.push((TxRef::Dns, side, 0));
            }
        }
    }

    fn header_matches(r: &Rule, p: &Pkt<'_>, flow: &Flow) -> bool {
        let proto_ok = match r.proto {
            Proto::Ip => true,
            Proto::Tcp | Proto::TcpPkt | Proto::TcpStream => p.proto == PROTO_TCP,
            Proto::Udp => p.proto == PROTO_UDP,
            Proto::Icmp => p.proto == PROTO_ICMP || p.proto == PROTO_ICMPV6,
            Proto::App(a) => match flow.app_proto {
                Some(fp) => fp == a || (a == AppProto::Http2 && fp == AppProto::Http),
                None => false,
            },
        };
        if !proto_ok {
            return false;
        }
        if let (Some(a), Proto::Tcp | Proto::Udp | Proto::Ip) = (r.app, r.proto) {
            if flow.app_proto != Some(a) {
                return false;
            }
        }
        let fwd = r.src.matches(&p.src)
            && r.dst.matches(&p.dst)
            && r.sport.matches(p.sport)
            && r.dport.matches(p.dport);
        fwd || r.bidir
            && r.src.matches(&p.dst)
            && r.dst.matches(&p.src)
            && r.sport.matches(p.dport)
            && r.dport.matches(p.sport)
    }

    fn flow_matches(r: &Rule, flow: &Flow, to_server: bool) -> bool {
        let f = &r.flow;
        if f.to_server && !to_server || f.to_client && to_server {
            return false;
        }
        if f.established && !flow.established {
            return false;
        }
        if f.not_established && flow.established {
            return false;
        }
        if f.only_stream && !flow.tracked {
            return false;
        }
        if f.no_stream && flow.tracked && flow.proto == PROTO_TCP {
            return false;
        }
        true
    }

    fn checks_match(r: &Rule, p: &Pkt<'_>, flow: &Flow, tx: Option<(&AppState, TxRef)>) -> bool {
        for c in &r.checks {
            let ok = match c {
                PktCheck::Dsize(cmp) => cmp.test(p.payload.len() as i64),
                PktCheck::Ttl(cmp) => cmp.test(p.ttl as i64),
                PktCheck::Itype(cmp) => p.icmp.is_some_and(|i| cmp.test(i.0 as i64)),
                PktCheck::Icode(cmp) => p.icmp.is_some_and(|i| cmp.test(i.1 as i64)),
                PktCheck::IcmpId(id) => p.icmp.is_some_and(|i| {
                    i.2 == *id && matches!(i.0, 0 | 8 | 13 | 14 | 15 | 16 | 17 | 18 | 128 | 129)
                }),
                PktCheck::IpProto(cmp) => cmp.test(p.proto as i64),
                PktCheck::Ack(a) => p.tcp.as_ref().is_some_and(|t| t.ack == *a),
                PktCheck::Seq(s) => p.tcp.as_ref().is_some_and(|t| t.seq == *s),
                PktCheck::Window(w, neg) => {
                    p.tcp.as_ref().is_some_and(|t| (t.window == *w) != *neg)
                }
                PktCheck::TcpMss(cmp) => p
                    .tcp
                    .as_ref()
                    .and_then(|t| t.mss)
                    .is_some_and(|m| cmp.test(m as i64)),
                PktCheck::Flags { bits, mode, mask } => match &p.tcp {
                    None => false,
                    Some(t) => {
                        let f = t.flags & mask;
                        match mode {
                            0 => f == *bits,
                            1 => f & bits == *bits,
                            2 => f & bits != 0,
                            _ => f & bits == 0,
                        }
                    }
                },
                PktCheck::IpOpts(o) => ipv4_has_option(p.ipv4_options, *o),
                PktCheck::StreamSize { side, cmp } => {
                    let (c, s) = (flow.bytes[0] as i64, flow.bytes[1] as i64);
                    match side {
                        0 => cmp.test(s),
                        1 => cmp.test(c),
                        2 => cmp.test(s) && cmp.test(c),
                        _ => cmp.test(s) || cmp.test(c),
                    }
                }
                PktCheck::Urilen(cmp, raw) => match tx {
                    Some((AppState::Http(h), TxRef::Http(id))) => h.tx(id).is_some_and(|t| {
                        t.req_progress > 0
                            && cmp.test(if *raw {
                                t.uri_raw.len()
                            } else {
                                t.uri_norm.len()
                            } as i64)
                    }),
                    _ => false,
                },
                PktCheck::AppLayerProto(a, neg) => (flow.app_proto == *a) != *neg,
                PktCheck::SameIp => p.src == p.dst,
            };
            if !ok {
                return false;
            }
        }
        true
    }

    fn flowbits_ok(r: &Rule, flow: &Flow) -> bool {
        for op in &r.flowbits {
            match op {
                FlowbitOp::IsSet(b, or) => {
                    let ok = if *or {
                        b.iter().any(|x| flow.bit(*x))
                    } else {
                        b.iter().all(|x| flow.bit(*x))
                    };
                    if !ok {
                        return false;
                    }
                }
                FlowbitOp::IsNotSet(b, or) => {
                    let ok = if *or {
                        b.iter().any(|x| !flow.bit(*x))
                    } else {
                        b.iter().all(|x| !flow.bit(*x))
                    };
                    if !ok {
                        return false;
                    }
                }
                _ => {}
            }
        }
        true
    }

    fn apply_flowbits(r: &Rule, flow: &mut Flow) {
        for op in &r.flowbits {
            match op {
                FlowbitOp::Set(b) => b.iter().for_each(|x| flow.set_bit(*x, true)),
                FlowbitOp::Unset(b) => b.iter().for_each(|x| flow.set_bit(*x, false)),
                FlowbitOp::Toggle(b) => b.iter().for_each(|x| {
                    let v = flow.bit(*x);
                    flow.set_bit(*x, !v)
                }),
                _ => {}
            }
        }
    }

    fn flowint_ok(r: &Rule, flow: &Flow) -> bool {
        r.flowint.iter().filter(|o| !o.modifies()).all(|o| {
            let cur = flow.ints.iter().find(|(v, _)| *v == o.var).map(|x| x.1);
            match (o.op, cur) {
                (FlowintCmd::IsSet, c) => c.is_some(),
                (FlowintCmd::NotSet, c) => c.is_none(),
                (FlowintCmd::Cmp(_), None) => false,
                (FlowintCmd::Cmp(c), Some(x)) => match c {
                    IntCmp::Eq => x == o.value,
                    IntCmp::Ne => x != o.value,
                    IntCmp::Lt => x < o.value,
                    IntCmp::Gt => x > o.value,
                    IntCmp::Le => x <= o.value,
                    IntCmp::Ge => x >= o.value,
                },
                _ => true,
            }
        })
    }

    fn apply_flowint(r: &Rule, flow: &mut Flow) {
        for o in r.flowint.iter().filter(|o| o.modifies()) {
            let i = match flow.ints.iter().position(|(v, _)| *v == o.var) {
                Some(i) => i,
                None if flow.ints.len() < 64 => {
                    flow.ints.push((o.var, 0));
                    flow.ints.len() - 1
                }
                None => continue,
            };
            let x = &mut flow.ints[i].1;
            *x = match o.op {
                FlowintCmd::Assign => o.value,
                FlowintCmd::Add => x.saturating_add(o.value),
                _ => x.saturating_sub(o.value),
            };
        }
    }

    fn xbit_key(op: &XbitOp, p: &Pkt<'_>) -> (u32, ThrKey) {
        let k = match op.track {
            XTrack::Src => ThrKey::Ip(p.src),
            XTrack::Dst => ThrKey::Ip(p.dst),
            XTrack::Pair => {
                let (a, b) = if p.src <= p.dst {
                    (p.src, p.dst)
                } else {
                    (p.dst, p.src)
                };
                ThrKey::Pair(a, b)
            }
        };
        (op.bit, k)
    }

    fn xbit_set(&self, op: &XbitOp, p: &Pkt<'_>) -> bool {
        self.xbits
            .get(&Self::xbit_key(op, p))
            .is_some_and(|&exp| exp > self.now.secs)
    }

    fn xbits_ok(&self, r: &Rule, p: &Pkt<'_>) -> bool {
        r.xbits.iter().all(|op| match op.cmd {
            FlowbitCmd::IsSet => self.xbit_set(op, p),
            FlowbitCmd::IsNotSet => !self.xbit_set(op, p),
            _ => true,
        })
    }

    fn apply_xbits(&mut self, r: &Rule, p: &Pkt<'_>) {
        for op in &r.xbits {
            let key = Self::xbit_key(op, p);
            let exp = op
                .expire
                .map_or(u64::MAX, |e| self.now.secs.saturating_add(e));
            let set = match op.cmd {
                FlowbitCmd::Set => true,
                FlowbitCmd::Toggle => !self.xbit_set(op, p),
                FlowbitCmd::Unset => false,
                _ => continue,
            };
            if !set {
                self.xbits.remove(&key);
                continue;
            }
            if self.xbits.len() >= MAX_XBITS && !self.xbits.contains_key(&key) {
                let now = self.now.secs;
                self.xbits.retain(|_, &mut e| e > now);
                if self.xbits.len() >= MAX_XBITS {
                    continue;
                }
            }
            self.xbits.insert(key, exp);
        }
    }

    fn next_stamp(&mut self) -> u32 {
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.seen_stamp.iter_mut().for_each(|s| *s = 0);
            self.stamp = 1;
        }
        self.stamp
    }

    fn detect_packet(
        &mut self,
        flow: &mut Flow,
        p: &Pkt<'_>,
        to_server: bool,
        pkt_buf: &[u8],
        (raw_ok, scan_raw): (bool, bool),
        out: &mut Vec<Alert>,
    ) {
        let rs = self.rules.clone();
        let stamp = self.next_stamp();
        let d = usize::from(!to_server);
        if flow.iponly[d].is_none() {
            let v: Vec<u32> = rs
                .ip_only
                .iter()
                .copied()
                .filter(|&ri| Self::header_matches(&rs.rules[ri as usize], p, flow))
                .collect();
            flow.iponly[d] = Some(v);
        }
        // Prefilter hits are few: sort only them, then merge with the (already ordered) lists of
        // rules that are candidates on every packet.
        let mut hits_pf: Vec<u32> = Vec::new();
        if let Some(pf) = &rs.pkt_pf {
            let seen = &mut self.seen_stamp;
            // The raw packet only needs its own scan when it differs from the stream bytes (overlaps, retransmissions).
            let raw_differs = scan_raw && !p.payload.is_empty() && pkt_buf != p.payload;
            for hay in [pkt_buf, if raw_differs { p.payload } else { &[][..] }] {
                if hay.is_empty() {
                    continue;
                }
                pf.scan(hay, |r| {
                    if seen[r as usize] != stamp {
                        seen[r as usize] = stamp;
                        hits_pf.push(r);
                    }
                });
            }
        }
        hits_pf.sort_unstable();
        let always: &[u32] = if p.pseudo {
            &[]
        } else {
            &rs.pkt_always[match p.proto {
                PROTO_TCP => 0,
                PROTO_UDP => 1,
                _ => 2,
            }]
        };
        let iponly: &[u32] = if p.pseudo {
            &[]
        } else {
            flow.iponly[d].as_deref().unwrap_or(&[])
        };
        let mut cands: Vec<u32> = Vec::with_capacity(always.len() + iponly.len() + hits_pf.len());
        merge3(always, iponly, &hits_pf, &mut cands);
        let mut ctx = Ctx::default();
        let mut hits = Vec::new();
        for ri in cands {
            let r = &rs.rules[ri as usize];
            if r.is_app_tx
                || p.pseudo
                    && (r.proto == Proto::TcpPkt
                        || !r.checks.is_empty()
                        || r.groups.is_empty()
                        || !r.groups.iter().all(|g| g.buf == Buf::Pkt))
                || !Self::header_matches(r, p, flow)
                || !Self::flow_matches(r, flow, to_server)
            {
                continue;
            }
            if !Self::checks_match(r, p, flow, None)
                || !Self::flowbits_ok(r, flow)
                || !Self::flowint_ok(r, flow)
                || !self.xbits_ok(r, p)
            {
                continue;
            }
            let mut ok = true;
            let mut stream_match = false;
            for g in &r.groups {
                let data: Cow<'_, [u8]> = match g.buf {
                    // tcp-pkt rules see the packet as captured; others the reassembled stream.
                    Buf::Pkt if r.proto == Proto::TcpPkt => Cow::Borrowed(p.payload),
                    Buf::Pkt => Cow::Borrowed(pkt_buf),
                    Buf::TcpHdr if p.proto == PROTO_TCP => Cow::Borrowed(p.l4_header),
                    Buf::UdpHdr if p.proto == PROTO_UDP => Cow::Borrowed(p.l4_header),
                    Buf::Ipv4Hdr if p.src.is_ipv4() => Cow::Borrowed(p.ip_header),
                    Buf::Ipv6Hdr if p.src.is_ipv6() => Cow::Borrowed(p.ip_header),
                    Buf::Base64Data => Cow::Owned(ctx.b64.clone()),
                    _ => {
                        ok = false;
                        break;
                    }
                };
                // Rules that are not stream-only also get the packet as captured when it
                // differs from what the stream delivered (retransmissions, overlaps, SYN data).
                let raw_alt = raw_ok
                    && g.buf == Buf::Pkt
                    && !matches!(r.proto, Proto::TcpPkt | Proto::TcpStream)
                    && !r.flow.only_stream
                    && !p.payload.is_empty()
                    && pkt_buf != p.payload;
                if g.buf == Buf::Pkt && data.is_empty() && !g.matches.is_empty() && !raw_alt {
                    ok = false;
                    break;
                }
                let on_stream = g.buf == Buf::Pkt
                    && r.proto != Proto::TcpPkt
                    && flow.tracked
                    && p.proto == PROTO_TCP;
                let data = if g.transforms.is_empty() {
                    data
                } else {
                    Cow::Owned(apply_transforms(&g.transforms, &data))
                };
                if !data.is_empty() && match_group(&g.matches, &data, &mut ctx) {
                    stream_match |= on_stream;
                    continue;
                }
                if raw_alt {
                    let raw: Cow<'_, [u8]> = if g.transforms.is_empty() {
                        Cow::Borrowed(p.payload)
                    } else {
                        Cow::Owned(apply_transforms(&g.transforms, p.payload))
                    };
                    if match_group(&g.matches, &raw, &mut ctx) {
                        continue;
                    }
                }
                ok = false;
                break;
            }
            if !ok {
                continue;
            }
            Self::apply_flowbits(r, flow);
            Self::apply_flowint(r, flow);
            self.apply_xbits(r, p);
            // Suricata applies drop and pass to the whole flow when the rule is IP-only (or
            // like it) or matched in the stream or the application layer.
            let whole_flow = stream_match
                || r.flow.established
                || r.app.is_some()
                || rs.is_ip_only(ri) && !(r.flow.to_server || r.flow.to_client);
            if r.action == Action::Pass {
                if whole_flow {
                    flow.passed = true;
                }
                break;
            }
            if self.cfg.ips && matches!(r.action, Action::Drop | Action::Reject) && whole_flow {
                flow.passed = true;
            }
            hits.push(Hit { rule: ri });
        }
        for h in hits {
            self.emit(h.rule, p, flow, out);
        }
    }

    fn detect_tx(
        &mut self,
        flow: &mut Flow,
        p: &Pkt<'_>,
        to_server: bool,
        tx: TxRef,
        side_ts: bool,
        out: &mut Vec<Alert>,
    ) {
        let rs = self.rules.clone();
        let Some(ap) = flow.app_proto else { return };
        let stamp = self.next_stamp();
        let dns_count = match &flow.app {
            AppState::Dns { count, .. } => *count,
            _ => 0,
        };
        let txkey = tx.key(dns_count);
        let mut cands: Vec<u32> = rs.tx_always.get(&ap).cloned().unwrap_or_default();
        if ap == AppProto::Http {
            if let Some(v) = rs.tx_always.get(&AppProto::Http2) {
                cands.extend_from_slice(v);
            }
        }
        {
            let mut bufs = Vec::new();
            for (b, pf) in &rs.tx_pf {
                if b.app() != Some(ap) && b.app().is_some() {
                    continue;
                }
                bufs.clear();
                let side = match b.side() {
                    Side::Request => true,
                    Side::Response => false,
                    _ => side_ts,
                };
                app::tx_buffers(&flow.app, tx, *b, side, &mut bufs);
                let seen = &mut self.seen_stamp;
                for data in &bufs {
                    pf.scan(data, |r| {
                        if seen[r as usize] != stamp {
                            seen[r as usize] = stamp;
                            cands.push(r);
                        }
                    });
                }
            }
        }
        cands.sort_unstable();
        cands.dedup();
        let mut ctx = Ctx::default();
        let mut hits = Vec::new();
        for ri in cands {
            let r = &rs.rules[ri as usize];
            // A bare application-protocol rule (no buffer) matches once per transaction and
            // direction; the others once per transaction.
            let key = if r.groups.is_empty() && r.dir.is_none() {
                txkey | u64::from(side_ts) << 62
            } else {
                txkey
            };
            if !r.is_app_tx || flow.alerted.contains(&(key, ri)) {
                continue;
            }
            match r.dir {
                Some(true) if !side_ts => continue,
                Some(false) if side_ts => continue,
                _ => {}
            }
            if !Self::header_matches(r, p, flow) {
                continue;
            }
            // Direction keywords are judged on the transaction side, not the carrying packet.
            if !Self::flow_matches(r, flow, side_ts)
                && !(Self::flow_matches(r, flow, to_server) && side_ts == to_server)
            {
                continue;
            }
            if !Self::checks_match(r, p, flow, Some((&flow.app, tx)))
                || !Self::flowbits_ok(r, flow)
                || !Self::flowint_ok(r, flow)
                || !self.xbits_ok(r, p)
            {
                continue;
            }
            let mut ok = true;
            for g in &r.groups {
                let mut bufs: Vec<Cow<'_, [u8]>> = Vec::new();
                let side = match g.buf.side() {
                    Side::Request => true,
                    Side::Response => false,
                    _ => side_ts,
                };
                match g.buf {
                    Buf::Pkt => bufs.push(Cow::Borrowed(p.payload)),
                    Buf::Base64Data if !ctx.b64.is_empty() => {
                        bufs.push(Cow::Owned(ctx.b64.clone()))
                    }
                    _ => app::tx_buffers(&flow.app, tx, g.buf, side, &mut bufs),
                }
                let mut any = false;
                for data in &bufs {
                    let data = if g.transforms.is_empty() {
                        Cow::Borrowed(&data[..])
                    } else {
                        Cow::Owned(apply_transforms(&g.transforms, data))
                    };
                    if match_group(&g.matches, &data, &mut ctx) {
                        any = true;
                        break;
                    }
                }
                if !any {
                    ok = false;
                    break;
                }
            }
            if !ok {
                continue;
            }
            flow.alerted.insert((key, ri));
            Self::apply_flowbits(r, flow);
            Self::apply_flowint(r, flow);
            self.apply_xbits(r, p);
            if r.action == Action::Pass {
                flow.passed = true;
                break;
            }
            hits.push(Hit { rule: ri });
        }
        for h in hits {
            self.emit(h.rule, p, flow, out);
        }
    }

    fn thr_key(track: Track, p: &Pkt<'_>, flow: &Flow) -> ThrKey {
        match track {
            Track::BySrc => ThrKey::Ip(p.src),
            Track::ByDst => ThrKey::Ip(p.dst),
            Track::ByRule => ThrKey::Rule,
            Track::ByFlow => ThrKey::Flow(flow.id),
            Track::ByBoth | Track::ByEither => {
                let (a, b) = if p.src <= p.dst {
                    (p.src, p.dst)
                } else {
                    (p.dst, p.src)
                };
                ThrKey::Pair(a, b)
            }
        }
    }

    /// Apply thresholding; returns whether to alert.
    fn threshold_ok(
        &mut self,
        r: &Rule,
        t: crate::rules::Threshold,
        p: &Pkt<'_>,
        flow: &Flow,
    ) -> bool {
        let key = (r.gid, r.sid, Self::thr_key(t.track, p, flow));
        let now = self.now.secs;
        let kind_tag = t.kind as u8 as u64;
        let e = self.thr.entry(key).or_insert(ThrState {
            start: now,
            count: 0,
            alerted_at: u64::MAX - kind_tag,
        });
        if t.seconds > 0 && now >= e.start + t.seconds && t.kind != ThresholdKind::DetectionFilter {
            *e = ThrState {
                start: now,
                count: 0,
                alerted_at: u64::MAX,
            };
        }
        if t.kind == ThresholdKind::DetectionFilter && t.seconds > 0 && now >= e.start + t.seconds {
            *e = ThrState {
                start: now,
                count: 0,
                alerted_at: u64::MAX,
            };
        }
        e.count += 1;
        match t.kind {
            ThresholdKind::Limit => e.count <= t.count,
            ThresholdKind::Threshold => t.count > 0 && e.count % t.count == 0,
            ThresholdKind::Both => e.count == t.count,
            ThresholdKind::DetectionFilter => e.count > t.count,
            ThresholdKind::Backoff => {
                // Alert on the 1st match, then each time the count reaches the next multiple.
                if e.count == 1 {
                    e.alerted_at = 1;
                    true
                } else if e.alerted_at != u64::MAX
                    && e.count >= e.alerted_at.saturating_mul(t.seconds.max(2))
                {
                    e.alerted_at = e.count;
                    true
                } else {
                    false
                }
            }
        }
    }

    fn emit(&mut self, ri: u32, p: &Pkt<'_>, flow: &Flow, out: &mut Vec<Alert>) {
        let rs = self.rules.clone();
        let r = &rs.rules[ri as usize];
        let mut action = r.action;
        // threshold.config: suppressions and overrides.
        let mut thr = r.threshold;
        let mut rate = None;
        for e in &self.tcfg {
            match e {
                ThresholdEntry::Suppress {
                    gid,
                    sid,
                    track,
                    addrs,
                } if (*sid == 0 || *sid == r.sid) && (*gid == 0 || *gid == r.gid) => {
                    match (track, addrs) {
                        (None, _) | (_, None) => return,
                        (Some(Track::BySrc), Some(a)) if a.matches(&p.src) => return,
                        (Some(Track::ByDst), Some(a)) if a.matches(&p.dst) => return,
                        (Some(Track::ByEither), Some(a))
                            if a.matches(&p.src) || a.matches(&p.dst) =>
                        {
                            return
                        }
                        _ => {}
                    }
                }
                ThresholdEntry::Threshold { gid, sid, t }
                    if (*sid == 0 || *sid == r.sid) && (*gid == 0 || *gid == r.gid) =>
                {
                    if *sid != 0 || thr.is_none() {
                        thr = Some(*t);
                    }
                }
                ThresholdEntry::RateFilter { gid, sid, .. }
                    if (*sid == 0 || *sid == r.sid) && (*gid == 0 || *gid == r.gid) =>
                {
                    rate = Some(e.clone())
                }
                _ => {}
            }
        }
        if let Some(df) = r.detection_filter {
            if !self.threshold_ok(r, df, p, flow) {
                return;
            }
        }
        if let Some(t) = thr {
            if !self.threshold_ok(r, t, p, flow) {
                return;
            }
        }
        if let Some(ThresholdEntry::RateFilter {
            track,
            count,
            seconds,
            new_action,
            timeout,
            ..
        }) = rate
        {
            let key = (r.gid, r.sid, Self::thr_key(track, p, flow));
            let now = self.now.secs;
            let e = self.rate.entry(key).or_insert(RateState {
                start: now,
                count: 0,
                until: 0,
            });
            if now < e.until {
                action = new_action;
            } else {
                if seconds > 0 && now >= e.start + seconds {
                    *e = RateState {
                        start: now,
                        count: 0,
                        until: 0,
                    };
                }
                e.count += 1;
                if e.count > count {
                    action = new_action;
                    e.until = now + timeout;
                }
            }
            if action == Action::Pass {
                return;
            }
        }
        if r.noalert {
            return;
        }
        self.stats.alerts += 1;
        out.push(Alert {
            ts: self.now,
            pcap_cnt: self.pcap_cnt,
            flow_id: flow_id_hash(flow.id),
            src_ip: p.src,
            src_port: p.sport,
            dest_ip: p.dst,
            dest_port: p.dport,
            proto: p.proto,
            app_proto: flow.app_name(),
            signature_id: r.sid,
            gid: r.gid,
            rev: r.rev,
            signature: r.msg.clone(),
            category: r.category.clone(),
            severity: r.severity,
            action: action.name(),
        });
    }

    fn sweep(&mut self, out: &mut Vec<Alert>) {
        let now = self.now.secs;
        let cfg = &self.cfg;
        let expired: Vec<FlowKey> = self
            .flows
            .iter()
            .filter(|(_, f)| {
                let to = match f.state {
                    TcpState::Closed => cfg.flow_timeout_closed,
                    _ if f.established => cfg.flow_timeout_established,
                    _ => cfg.flow_timeout_new,
                };
                now > f.last_ts + to
            })
            .map(|(k, _)| *k)
            .collect();
        for k in expired {
            self.end_flow(k, out);
        }
        self.frags.retain(|_, f| now <= f.first_ts + 60);
    }

    fn evict(&mut self, out: &mut Vec<Alert>) {
        // Drop the least recently seen tenth at once, so a flood costs amortised O(1) per packet.
        let mut v: Vec<(u64, FlowKey)> = self.flows.iter().map(|(k, f)| (f.last_ts, *k)).collect();
        let n = (v.len() / 10).max(1);
        v.select_nth_unstable_by_key(n - 1, |x| x.0);
        for (_, k) in v.into_iter().take(n) {
            self.stats.flows_evicted += 1;
            self.end_flow(k, out);
        }
    }

    /// Finish a flow: close its application parsers (bodies delimited by close) and inspect.
    fn end_flow(&mut self, k: FlowKey, out: &mut Vec<Alert>) {
        let Some(mut flow) = self.flows.remove(&k) else {
            return;
        };
        let mut events = Vec::new();
        let mut rests: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
        for ts in [true, false] {
            let d = usize::from(!ts);
            if flow.tracked && flow.streams[d].init {
                let rest = flow.streams[d].flush_gaps();
                if !rest.is_empty() {
                    self.app_data(&mut flow, ts, &rest, &mut events);
                    rests[d] = rest;
                }
            }
            self.app_close(&mut flow, ts, &mut events);
        }
        if flow.passed {
            return;
        }
        let (sa, sp) = flow.cli;
        let (da, dp) = if k.a == flow.cli { k.b } else { k.a };
        // Stream bytes that waited behind a gap are inspected at flow end, as Suricata does.
        for ts in [true, false] {
            let rest = std::mem::take(&mut rests[usize::from(!ts)]);
            if rest.is_empty() {
                continue;
            }
            let (src, sport, dst, dport) = if ts {
                (sa, sp, da, dp)
            } else {
                (da, dp, sa, sp)
            };
            let p = Pkt {
                src,
                dst,
                sport,
                dport,
                proto: flow.proto,
                ttl: 0,
                ip_header: &[],
                l4_header: &[],
                payload: &[],
                ipv4_options: &[],
                tcp: None,
                icmp: None,
                pseudo: true,
            };
            self.detect_packet(&mut flow, &p, ts, &rest, (false, false), out);
        }
        for (tx, side_ts, _) in events {
            // Pseudo packet in the direction of the finished side, like Suricata's flow-end inspection.
            let (src, sport, dst, dport) = if side_ts {
                (sa, sp, da, dp)
            } else {
                (da, dp, sa, sp)
            };
            let p = Pkt {
                src,
                dst,
                sport,
                dport,
                proto: flow.proto,
                ttl: 0,
                ip_header: &[],
                l4_header: &[],
                payload: &[],
                ipv4_options: &[],
                tcp: None,
                icmp: None,
                pseudo: true,
            };
            self.detect_tx(&mut flow, &p, side_ts, tx, side_ts, out);
        }
    }

    /// End of input: finish every flow (delivering buffered data and close-delimited bodies).
    pub fn flush(&mut self, out: &mut Vec<Alert>) {
        let mut keys: Vec<(u64, FlowKey)> = self.flows.iter().map(|(k, f)| (f.id, *k)).collect();
        keys.sort_by_key(|x| x.0);
        for (_, k) in keys {
            self.end_flow(k, out);
        }
    }
}

fn gre_inner(g: &[u8]) -> Option<&[u8]> {
    if g.len() < 4 {
        return None;
    }
    let flags = g[0];
    let proto = u16::from_be_bytes([g[2], g[3]]);
    let mut off = 4;
    if flags & 0x80 != 0 {
        off += 4;
    }
    if flags & 0x20 != 0 {
        off += 4;
    }
    if flags & 0x10 != 0 {
        off += 4;
    }
    // Enhanced GRE (version 1, PPTP) may carry an acknowledgment number.
    if g[1] & 0x07 == 1 && g[1] & 0x80 != 0 {
        off += 4;
    }
    let rest = g.get(off..)?;
    match proto {
        0x0800 | 0x86dd => Some(rest),
        0x880b => decode::decode_link(decode::linktype::PPP, rest),
        0x6558 => decode::decode_link(decode::linktype::ETHERNET, rest),
        0x88be => decode::decode_link(decode::linktype::ETHERNET, rest.get(8..)?),
        _ => None,
    }
}

/// Merge three ascending lists into `out` (ascending, duplicates removed).
fn merge3(a: &[u32], b: &[u32], c: &[u32], out: &mut Vec<u32>) {
    let (mut i, mut j, mut k) = (0, 0, 0);
    loop {
        let x = a.get(i).copied().unwrap_or(u32::MAX);
        let y = b.get(j).copied().unwrap_or(u32::MAX);
        let z = c.get(k).copied().unwrap_or(u32::MAX);
        let m = x.min(y).min(z);
        if m == u32::MAX {
            break;
        }
        if out.last() != Some(&m) {
            out.push(m);
        }
        if x == m {
            i += 1;
        }
        if y == m {
            j += 1;
        }
        if z == m {
            k += 1;
        }
    }
}

fn ipv4_has_option(opts: &[u8], want: u8) -> bool {
    let mut i = 0;
    while i < opts.len() {
        let t = opts[i];
        if want == 255 && t != 0 {
            return true;
        }
        if t == want {
            return true;
        }
        match t {
            0 => return false,
            1 => i += 1,
            _ => {
                let l = *opts.get(i + 1).unwrap_or(&0) as usize;
                if l < 2 {
                    return false;
                }
                i += l;
            }
        }
    }
    false
}

fn flow_id_hash(id: u64) -> u64 {
    (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 13) & ((1 << 51) - 1)
}
