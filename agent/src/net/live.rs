//! The live network source of `bannin-agent run`: AF_PACKET capture on the configured interfaces,
//! a kernel BPF filter that drops the agent's own manager traffic and user exclusions before they
//! are copied, the DPI engine per interface, and alerts as `net` events.
//!
//! Sockets are opened (and their filters attached) before any capture thread starts, so a missing
//! interface or a missing privilege is reported at start, and the sockets belong to the network
//! namespace of the caller. We talk to AF_PACKET through `libc` directly rather than `pnet`:
//! `pnet`'s channel hides the socket, and we need it for SO_ATTACH_FILTER and PACKET_STATISTICS.
//! One blocking `recvfrom` per packet; a TPACKET_V3 ring is the next step if measurements show
//! the per-packet system call is the bottleneck (see bench/README.md, dpi.sh section).

use super::bpf::{self, Exclusion, LinkLayer, SockFilter};
use crate::cmd::pcap::eve_json;
use anyhow::{bail, Context, Result};
use bannin_dpi::{
    parse_threshold_config, Alert, Config, Engine, LoadOptions, RuleSet, RuleSource, Timestamp,
    Vars,
};
use bannin_proto::{Event, EventKind};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc::Sender;

/// Where the packaged default DPI rules live.
pub const DEFAULT_RULES: &str = "/usr/share/bannin/signatures/dpi";

/// Rule id of the event reporting packets the kernel dropped before we could read them.
pub const NET_CAPTURE_DROPS: u64 = 520;
/// Rule id of the event summarising rules that could not be loaded.
pub const NET_RULES_SKIPPED: u64 = 521;

/// `[net]` of the agent configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetConfig {
    /// Interfaces to capture on (`eth0`, `ens5`...). Empty: no network source.
    pub interfaces: Vec<String>,
    /// Rule files, or directories whose `*.rules` files are all loaded.
    pub rules: Vec<PathBuf>,
    /// Rule variables, e.g. `HOME_NET = "[10.0.0.0/8]"`, `HTTP_PORTS = "[80,8080]"` (names
    /// ending in `_PORTS`/`_PORT` are port variables).
    pub vars: BTreeMap<String, String>,
    /// classification.config; default: the one beside the first rules directory, else built-in.
    pub classification: Option<PathBuf>,
    /// threshold.config (suppress / threshold / rate_filter lines).
    pub threshold_file: Option<PathBuf>,
    /// Put the interfaces in promiscuous mode (off: only this host's own traffic).
    pub promiscuous: bool,
    /// Traffic the kernel drops before inspection, tcpdump-like: `host 10.0.0.5 and port 22`,
    /// `net 10.9.0.0/16`, `udp and dst port 53`. The manager connection is always excluded.
    pub bpf_exclude: Vec<String>,
    /// Kernel receive buffer per socket: packets queue here while the engine is busy.
    pub socket_buffer_bytes: usize,
    /// Largest frame kept (longer ones are truncated).
    pub snaplen: usize,
    /// Flows tracked at once per interface (oldest evicted first).
    pub max_flows: usize,
    /// Bytes per direction of a TCP session handed to the application parsers.
    pub stream_depth_bytes: u64,
    /// HTTP body bytes kept per message for inspection.
    pub http_body_limit_bytes: usize,
    /// How often kernel drop counters are read and reported.
    pub stats_interval_secs: u64,
}

impl Default for NetConfig {
    fn default() -> Self {
        let c = Config::default();
        NetConfig {
            interfaces: Vec::new(),
            rules: vec![PathBuf::from(DEFAULT_RULES)],
            vars: BTreeMap::new(),
            classification: None,
            threshold_file: None,
            promiscuous: false,
            bpf_exclude: Vec::new(),
            socket_buffer_bytes: 8 << 20,
            snaplen: 65_535,
            max_flows: c.max_flows,
            stream_depth_bytes: c.stream_depth,
            http_body_limit_bytes: c.http_body_limit,
            stats_interval_secs: 60,
        }
    }
}

/// Counters of the network source, readable at any time (for the heartbeat).
#[derive(Debug, Default)]
pub struct NetStats {
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    /// Packets the kernel dropped because our socket buffer was full.
    pub kernel_drops: AtomicU64,
    pub alerts: AtomicU64,
    /// Alerts lost because the pipeline was gone.
    pub events_lost: AtomicU64,
}

/// A plain copy of [`NetStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct NetStatsSnapshot {
    pub packets: u64,
    pub bytes: u64,
    pub kernel_drops: u64,
    pub alerts: u64,
    pub events_lost: u64,
}

impl NetStats {
    pub fn snapshot(&self) -> NetStatsSnapshot {
        NetStatsSnapshot {
            packets: self.packets.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            kernel_drops: self.kernel_drops.load(Ordering::Relaxed),
            alerts: self.alerts.load(Ordering::Relaxed),
            events_lost: self.events_lost.load(Ordering::Relaxed),
        }
    }
}

/// The network source's counters since the agent started (all interfaces together).
pub static NET_STATS: NetStats = NetStats {
    packets: AtomicU64::new(0),
    bytes: AtomicU64::new(0),
    kernel_drops: AtomicU64::new(0),
    alerts: AtomicU64::new(0),
    events_lost: AtomicU64::new(0),
};

/// Level (0-15) of a DPI alert from its Suricata severity (1 = high ... 4 = informational; the
/// rule's `priority` or its classtype's).
pub fn severity_level(severity: u8) -> u8 {
    match severity {
        0 | 1 => 12,
        2 => 9,
        3 => 6,
        _ => 3,
    }
}

/// The `net` event of an alert: rule id = sid, title = msg, body = the EVE alert record.
pub fn alert_event(a: &Alert, iface: &str) -> Event {
    let mut body = eve_json(a);
    body["in_iface"] = serde_json::Value::String(iface.to_string());
    let mut e = Event::new(
        EventKind::Net,
        u64::from(a.signature_id),
        severity_level(a.severity),
        a.signature.clone(),
    )
    .with_groups(["ids", "dpi"])
    .with_body(body);
    let nanos = i128::from(a.ts.secs) * 1_000_000_000 + i128::from(a.ts.micros) * 1000;
    if let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        e = e.with_timestamp(t);
    }
    e
}

/// Rules, variables and thresholds of a [`NetConfig`], loaded once and shared by all interfaces.
pub struct Loaded {
    pub rules: Arc<RuleSet>,
    pub thresholds: Vec<bannin_dpi::ThresholdEntry>,
    pub warnings: Vec<String>,
}

fn rule_files(p: &Path) -> Result<Vec<PathBuf>> {
    if p.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(p)
            .with_context(|| format!("net: cannot list rules directory {}", p.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "rules"))
            .collect();
        v.sort();
        Ok(v)
    } else if p.is_file() {
        Ok(vec![p.to_path_buf()])
    } else {
        bail!("net: rules path {} does not exist", p.display())
    }
}

/// Load the rules and thresholds a configuration names. Errors name the file at fault.
pub fn load(cfg: &NetConfig) -> Result<Loaded> {
    let mut vars = Vars::default();
    let text: String = cfg.vars.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
    let errs = vars.load_text(&text);
    if let Some(e) = errs.first() {
        bail!("net.vars: {e}");
    }
    let mut texts = Vec::new();
    for r in &cfg.rules {
        for f in rule_files(r)? {
            let t = std::fs::read(&f)
                .with_context(|| format!("net: cannot read rules file {}", f.display()))?;
            texts.push((
                f.display().to_string(),
                String::from_utf8_lossy(&t).into_owned(),
            ));
        }
    }
    let class_path = cfg.classification.clone().or_else(|| {
        cfg.rules
            .iter()
            .map(|r| {
                if r.is_dir() {
                    r.join("classification.config")
                } else {
                    r.with_file_name("classification.config")
                }
            })
            .find(|p| p.is_file())
    });
    let class = match &class_path {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("net: cannot read {}", p.display()))?,
        ),
        None => None,
    };
    let sources: Vec<RuleSource<'_>> = texts
        .iter()
        .map(|(n, t)| RuleSource { name: n, text: t })
        .collect();
    let rs = RuleSet::load(
        &sources,
        &LoadOptions {
            vars: &vars,
            classification: class.as_deref(),
            action_order: &[],
        },
    );
    let mut warnings = rs.stats.warnings.clone();
    let mut thresholds = Vec::new();
    if let Some(tf) = &cfg.threshold_file {
        let t = std::fs::read_to_string(tf)
            .with_context(|| format!("net: cannot read threshold file {}", tf.display()))?;
        let (entries, errs) = parse_threshold_config(&t, &vars);
        warnings.extend(errs.into_iter().map(|e| format!("{}: {e}", tf.display())));
        thresholds = entries;
    }
    Ok(Loaded {
        rules: Arc::new(rs),
        thresholds,
        warnings,
    })
}

/// The BPF exclusions of a configuration: the manager connection plus `bpf_exclude`.
pub fn exclusions(cfg: &NetConfig, manager: Option<SocketAddr>) -> Result<Vec<Exclusion>> {
    let mut v = Vec::new();
    if let Some(m) = manager {
        v.push(Exclusion::manager(m));
    }
    for (i, e) in cfg.bpf_exclude.iter().enumerate() {
        v.push(Exclusion::parse(e).map_err(|err| anyhow::anyhow!("net.bpf_exclude[{i}]: {err}"))?);
    }
    Ok(v)
}

/// An AF_PACKET socket bound to one interface, with its filter attached.
pub struct Capture {
    fd: OwnedFd,
    pub iface: String,
    /// pcap link type of the frames it returns.
    pub linktype: u32,
    loopback: bool,
}

fn errno_ctx(what: &str, iface: &str) -> anyhow::Error {
    let e = std::io::Error::last_os_error();
    let hint = if e.raw_os_error() == Some(libc::EPERM) {
        " (live capture needs root or CAP_NET_RAW)"
    } else {
        ""
    };
    anyhow::anyhow!("net: {what} on interface {iface}: {e}{hint}")
}

fn setsockopt<T>(fd: i32, level: i32, name: i32, v: &T) -> i32 {
    // SAFETY: `v` points to a live value of the size we pass.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            v as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    }
}

impl Capture {
    /// Open a capture on `iface`. Exclusions are compiled for the interface's link layer and
    /// attached before the socket is bound, so no excluded packet is ever queued.
    pub fn open(iface: &str, cfg: &NetConfig, excl: &[Exclusion]) -> Result<Capture> {
        let cname = std::ffi::CString::new(iface)
            .map_err(|_| anyhow::anyhow!("net: bad interface name {iface:?}"))?;
        // SAFETY: a valid NUL-terminated string.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if ifindex == 0 {
            return Err(errno_ctx(
                "looking up the interface (if_nametoindex)",
                iface,
            ));
        }
        // Protocol 0: the socket receives nothing until it is bound, after the filter is in.
        // SAFETY: plain system call.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(errno_ctx("socket(AF_PACKET)", iface));
        }
        // SAFETY: `raw` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // The hardware type, asked of the socket (so of its network namespace, unlike /sys).
        // SAFETY: zeroed ifreq is valid; the name fits (checked) and is NUL-terminated.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        if iface.len() >= ifr.ifr_name.len() {
            bail!("net: interface name {iface:?} is too long");
        }
        for (d, s) in ifr.ifr_name.iter_mut().zip(iface.bytes()) {
            *d = s as libc::c_char;
        }
        // SAFETY: SIOCGIFHWADDR fills the ifreq we pass.
        if unsafe { libc::ioctl(raw, libc::SIOCGIFHWADDR, &mut ifr) } < 0 {
            return Err(errno_ctx("SIOCGIFHWADDR", iface));
        }
        // SAFETY: the kernel filled the hwaddr member of the union.
        let hw = u32::from(unsafe { ifr.ifr_ifru.ifru_hwaddr.sa_family });
        // ARPHRD_ETHER 1, ARPHRD_LOOPBACK 772 carry Ethernet headers; NONE/RAWIP carry IP.
        let (link, linktype) = match hw {
            1 | 772 => (LinkLayer::Ethernet, bannin_dpi::decode::linktype::ETHERNET),
            0xfffe | 519 => (LinkLayer::RawIp, bannin_dpi::decode::linktype::RAW),
            other => bail!("net: interface {iface} has link type {other}, which we cannot decode"),
        };
        let prog: Vec<SockFilter> =
            bpf::compile(excl, link).map_err(|e| anyhow::anyhow!("net: capture filter: {e}"))?;
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_ptr() as *mut libc::sock_filter,
        };
        if setsockopt(raw, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog) < 0 {
            return Err(errno_ctx("SO_ATTACH_FILTER", iface));
        }
        let buf = cfg.socket_buffer_bytes.min(i32::MAX as usize) as libc::c_int;
        if setsockopt(raw, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &buf) < 0 {
            // Without CAP_NET_ADMIN the ordinary option is capped by net.core.rmem_max.
            setsockopt(raw, libc::SOL_SOCKET, libc::SO_RCVBUF, &buf);
        }
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 200_000,
        };
        if setsockopt(raw, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv) < 0 {
            return Err(errno_ctx("SO_RCVTIMEO", iface));
        }
        // SAFETY: zeroed sockaddr_ll is valid; we fill the fields bind needs.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: `sll` is a valid sockaddr_ll of the given size.
        let rc = unsafe {
            libc::bind(
                raw,
                &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(errno_ctx("bind", iface));
        }
        if cfg.promiscuous {
            // SAFETY: zeroed packet_mreq is valid.
            let mut mr: libc::packet_mreq = unsafe { std::mem::zeroed() };
            mr.mr_ifindex = ifindex as i32;
            mr.mr_type = libc::PACKET_MR_PROMISC as u16;
            if setsockopt(raw, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mr) < 0 {
                return Err(errno_ctx("PACKET_ADD_MEMBERSHIP (promiscuous)", iface));
            }
        }
        // Clear the kernel counters so the first report covers only our own capture.
        let _ = read_kernel_stats(raw);
        Ok(Capture {
            fd,
            iface: iface.to_string(),
            linktype,
            loopback: hw == 772,
        })
    }

    /// Receive one frame into `buf`; `Ok(None)` on timeout. Returns the captured length.
    pub fn recv(&self, buf: &mut [u8]) -> std::io::Result<Option<usize>> {
        loop {
            // SAFETY: zeroed sockaddr_ll is valid output storage.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut sl = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: buffer and address pointers are valid for the lengths given.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    0,
                    &mut sll as *mut libc::sockaddr_ll as *mut libc::sockaddr,
                    &mut sl,
                )
            };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                return match e.kind() {
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Ok(None),
                    std::io::ErrorKind::Interrupted => continue,
                    _ => Err(e),
                };
            }
            // On loopback every packet is seen twice (outgoing and incoming): keep one copy.
            if self.loopback && sll.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            return Ok(Some(n as usize));
        }
    }

    /// Packets received and dropped by the kernel since the last call (the kernel resets them).
    pub fn kernel_stats(&self) -> (u64, u64) {
        read_kernel_stats(self.fd.as_raw_fd()).unwrap_or((0, 0))
    }
}

fn read_kernel_stats(fd: i32) -> Option<(u64, u64)> {
    // SAFETY: zeroed tpacket_stats is valid output storage of the size we pass.
    let mut st: libc::tpacket_stats = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
    // SAFETY: pointers valid for `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            &mut st as *mut libc::tpacket_stats as *mut libc::c_void,
            &mut len,
        )
    };
    (rc == 0).then_some((u64::from(st.tp_packets), u64::from(st.tp_drops)))
}

fn engine_config(cfg: &NetConfig) -> Config {
    Config {
        max_flows: cfg.max_flows.max(1),
        stream_depth: cfg.stream_depth_bytes,
        http_body_limit: cfg.http_body_limit_bytes,
        // Live traffic on a host: sessions already open when the agent starts are still inspected.
        midstream: true,
        ..Config::default()
    }
}

fn now_ts() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        secs: d.as_secs(),
        micros: d.subsec_micros(),
    }
}

/// Capture on one interface until `stop` is set; alerts and drop reports go to `tx`.
pub fn capture_loop(
    cap: Capture,
    loaded: &Loaded,
    cfg: &NetConfig,
    tx: &Sender<Event>,
    stop: &AtomicBool,
) {
    let mut engine = Engine::new(loaded.rules.clone(), engine_config(cfg));
    engine.set_threshold_config(loaded.thresholds.clone());
    let mut buf = vec![0u8; cfg.snaplen.clamp(256, 262_144)];
    let mut alerts: Vec<Alert> = Vec::new();
    let every = Duration::from_secs(cfg.stats_interval_secs.max(1));
    let mut last_stats = Instant::now();
    let mut closed = false;
    let send = |e: Event, closed: &mut bool| {
        if !*closed && tx.blocking_send(e).is_err() {
            *closed = true;
        }
        if *closed {
            NET_STATS.events_lost.fetch_add(1, Ordering::Relaxed);
        }
    };
    while !stop.load(Ordering::Relaxed) && !closed {
        match cap.recv(&mut buf) {
            Ok(Some(n)) => {
                let len = n.min(buf.len());
                NET_STATS.packets.fetch_add(1, Ordering::Relaxed);
                NET_STATS.bytes.fetch_add(n as u64, Ordering::Relaxed);
                engine.process(now_ts(), cap.linktype, &buf[..len], &mut alerts);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(iface = %cap.iface, error = %e, "net: capture failed; stopping this interface");
                break;
            }
        }
        for a in alerts.drain(..) {
            NET_STATS.alerts.fetch_add(1, Ordering::Relaxed);
            send(alert_event(&a, &cap.iface), &mut closed);
        }
        if last_stats.elapsed() >= every {
            last_stats = Instant::now();
            let (_, drops) = cap.kernel_stats();
            if drops > 0 {
                NET_STATS.kernel_drops.fetch_add(drops, Ordering::Relaxed);
                send(drop_event(&cap.iface, drops, every), &mut closed);
            }
        }
    }
    engine.flush(&mut alerts);
    for a in alerts.drain(..) {
        NET_STATS.alerts.fetch_add(1, Ordering::Relaxed);
        send(alert_event(&a, &cap.iface), &mut closed);
    }
    let (_, drops) = cap.kernel_stats();
    if drops > 0 {
        NET_STATS.kernel_drops.fetch_add(drops, Ordering::Relaxed);
        send(drop_event(&cap.iface, drops, every), &mut closed);
    }
}

fn drop_event(iface: &str, drops: u64, every: Duration) -> Event {
    Event::new(
        EventKind::Net,
        NET_CAPTURE_DROPS,
        4,
        format!("Packet capture on {iface}: the kernel dropped {drops} packets (inspection fell behind)"),
    )
    .with_groups(["ids", "dpi", "capture"])
    .with_body(serde_json::json!({
        "in_iface": iface,
        "kernel_drops": drops,
        "interval_secs": every.as_secs(),
        "totals": NET_STATS.snapshot(),
    }))
}

/// Run the network source until `shutdown` completes (or the receiver of `tx` is dropped).
/// Errors only for what makes capture impossible: unreadable rules, a bad exclusion, an interface
/// that cannot be opened. `state_dir` is not used yet (no state survives restarts).
pub async fn run_net_source(
    cfg: NetConfig,
    _state_dir: &Path,
    manager_addr: Option<SocketAddr>,
    tx: Sender<Event>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    if cfg.interfaces.is_empty() {
        shutdown.await;
        return Ok(());
    }
    let t0 = Instant::now();
    let loaded = Arc::new(load(&cfg)?);
    let s = &loaded.rules.stats;
    tracing::info!(
        loaded = s.loaded,
        skipped = s.skipped,
        secs = t0.elapsed().as_secs_f64(),
        "net: DPI rules loaded"
    );
    if !loaded.warnings.is_empty() {
        for w in loaded.warnings.iter().take(20) {
            tracing::warn!("net: {w}");
        }
        let e = Event::new(
            EventKind::Agent,
            NET_RULES_SKIPPED,
            3,
            format!("DPI: {} rules loaded, {} skipped", s.loaded, s.skipped),
        )
        .with_groups(["bannin", "dpi", "config"])
        .with_body(serde_json::json!({
            "loaded": s.loaded,
            "skipped": s.skipped,
            "by_reason": s.by_reason,
            "warnings": loaded.warnings.iter().take(50).collect::<Vec<_>>(),
        }));
        let _ = tx.send(e).await;
    }
    let excl = exclusions(&cfg, manager_addr)?;
    let mut caps = Vec::new();
    for i in &cfg.interfaces {
        caps.push(Capture::open(i, &cfg, &excl)?);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let cfg = Arc::new(cfg);
    let mut handles = Vec::new();
    for cap in caps {
        let (loaded, cfg, tx, stop) = (loaded.clone(), cfg.clone(), tx.clone(), stop.clone());
        handles.push(tokio::task::spawn_blocking(move || {
            capture_loop(cap, &loaded, &cfg, &tx, &stop)
        }));
    }
    shutdown.await;
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.await.context("net: capture thread")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_are_safe_and_unknown_keys_are_refused() {
        let c: NetConfig = toml::from_str("interfaces = [\"eth0\"]").unwrap();
        assert_eq!(c.interfaces, vec!["eth0".to_string()]);
        assert!(!c.promiscuous);
        assert_eq!(c.rules, vec![PathBuf::from(DEFAULT_RULES)]);
        assert!(c.socket_buffer_bytes >= 1 << 20);
        let e = toml::from_str::<NetConfig>("interface = \"eth0\"").unwrap_err();
        assert!(e.to_string().contains("interface"), "{e}");
    }

    #[test]
    fn severity_maps_high_to_high_levels() {
        assert_eq!(severity_level(1), 12);
        assert_eq!(severity_level(2), 9);
        assert_eq!(severity_level(3), 6);
        assert_eq!(severity_level(4), 3);
        assert!(severity_level(1) > severity_level(3));
    }

    #[test]
    fn alert_becomes_a_net_event_with_sid_msg_and_eve_body() {
        let a = Alert {
            ts: Timestamp {
                secs: 1_700_000_000,
                micros: 5,
            },
            pcap_cnt: 3,
            flow_id: 7,
            src_ip: "10.0.0.1".parse().unwrap(),
            src_port: 40000,
            dest_ip: "10.0.0.2".parse().unwrap(),
            dest_port: 80,
            proto: 6,
            app_proto: Some("http"),
            signature_id: 9_000_001,
            gid: 1,
            rev: 2,
            signature: "BANNIN WEB SQL injection".into(),
            category: "Web Application Attack".into(),
            severity: 1,
            action: "allowed",
        };
        let e = alert_event(&a, "eth0");
        assert_eq!(e.kind, EventKind::Net);
        assert_eq!(e.rule_id, 9_000_001);
        assert_eq!(e.level, 12);
        assert_eq!(e.title, "BANNIN WEB SQL injection");
        assert_eq!(e.body["alert"]["signature_id"], 9_000_001);
        assert_eq!(e.body["in_iface"], "eth0");
        assert_eq!(e.body["app_proto"], "http");
        assert_eq!(e.timestamp.unix_timestamp(), 1_700_000_000);
        e.validate().unwrap();
    }

    #[test]
    fn bad_exclusions_name_their_index() {
        let c = NetConfig {
            bpf_exclude: vec!["port 22".into(), "hots 1.2.3.4".into()],
            ..NetConfig::default()
        };
        let e = exclusions(&c, None).unwrap_err().to_string();
        assert!(e.contains("bpf_exclude[1]") && e.contains("hots"), "{e}");
        let ok = exclusions(
            &NetConfig::default(),
            Some("10.0.0.5:1515".parse().unwrap()),
        )
        .unwrap();
        assert_eq!(ok.len(), 1);
    }

    #[test]
    fn missing_rules_path_is_named() {
        let c = NetConfig {
            rules: vec![PathBuf::from("/nonexistent/bannin-rules")],
            ..NetConfig::default()
        };
        let e = load(&c).err().unwrap().to_string();
        assert!(e.contains("/nonexistent/bannin-rules"), "{e}");
    }
}
