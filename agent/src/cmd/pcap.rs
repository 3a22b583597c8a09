//! `bannin-agent pcap FILE... --rules FILE_OR_DIR`: inspect capture files with Suricata-language
//! rules and print EVE JSON alert lines on stdout, a summary on stderr.
//!
//! Accepts the Suricata options that conformance manifests pass (`-k`, `--set`, `--threshold-file`,
//! `--runmode`, `--simulate-ips`) so that their arguments can be handed over unchanged.

use anyhow::{bail, Context, Result};
use bannin_dpi::{
    parse_threshold_config, Action, Alert, Config, Engine, LoadOptions, RuleSet, RuleSource,
    Timestamp, Vars,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Capture files (pcap or pcapng), inspected in order as one continuous capture.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Rules file, or directory whose `*.rules` files are all loaded. Repeatable.
    #[arg(long = "rules", short = 'S', required = true)]
    pub rules: Vec<PathBuf>,
    /// Address/port variables, one `NAME value` per line (e.g. `HOME_NET [10.0.0.0/8]`).
    #[arg(long)]
    pub vars: Option<PathBuf>,
    /// classification.config; default: the one beside the rules, else Suricata's built-in classes.
    #[arg(long = "classification-file")]
    pub classification: Option<PathBuf>,
    /// A Suricata `suricata.yaml`: its variables (`vars.address-groups`, `vars.port-groups`),
    /// `action-order`, `packet-alert-max` and the stream/decoder/HTTP settings `--set` knows are
    /// applied (before `--set`); other keys are ignored.
    #[arg(short = 'c', long = "suricata-config")]
    pub suricata_config: Option<PathBuf>,
    /// Checksum validation: `none` (skip), `all` (drop packets with bad checksums), `auto`.
    #[arg(short = 'k', default_value = "auto")]
    pub checksum: String,
    /// Suricata-style `key=value` settings; unknown keys are reported and ignored.
    #[arg(long = "set")]
    pub set: Vec<String>,
    /// threshold.config with suppress / threshold / rate_filter lines.
    #[arg(long = "threshold-file")]
    pub threshold_file: Option<PathBuf>,
    /// Accepted for compatibility with Suricata command lines; has no effect.
    #[arg(long, hide = true)]
    pub runmode: Option<String>,
    /// Accepted for compatibility with Suricata command lines (IPS simulation); alerts are still printed.
    #[arg(long = "simulate-ips", hide = true)]
    pub simulate_ips: bool,
    #[arg(long = "simulate-applayer-error-at-offset-ts", hide = true)]
    pub simulate_applayer_error: Option<String>,
    /// Print every rule-load warning, not only the summary.
    #[arg(long)]
    pub verbose: bool,
}

/// Result of inspecting a set of capture files.
pub struct Report {
    pub alerts: Vec<Alert>,
    pub stats: bannin_dpi::Stats,
    pub load: bannin_dpi::LoadStats,
    pub load_secs: f64,
    pub notes: Vec<String>,
}

fn rule_files(p: &Path) -> Result<Vec<PathBuf>> {
    if p.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(p)
            .with_context(|| format!("cannot list rules directory {}", p.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "rules"))
            .collect();
        v.sort();
        Ok(v)
    } else {
        Ok(vec![p.to_path_buf()])
    }
}

fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim().to_ascii_lowercase();
    let (n, m) = if let Some(x) = v.strip_suffix("kb") {
        (x, 1024)
    } else if let Some(x) = v.strip_suffix("mb") {
        (x, 1024 * 1024)
    } else if let Some(x) = v.strip_suffix("gb") {
        (x, 1024 * 1024 * 1024)
    } else {
        (v.as_str(), 1)
    };
    n.trim().parse::<u64>().ok().map(|x| x * m)
}

/// Load rules, read the captures and run the engine; everything `run` prints comes from here.
pub fn inspect(args: &Args) -> Result<Report> {
    let mut notes = Vec::new();
    let mut cfg = Config::default();
    match args.checksum.as_str() {
        "none" | "auto" => cfg.checksum_validation = false,
        "all" => cfg.checksum_validation = true,
        k => bail!("-k {k}: expected none, all or auto"),
    }
    let mut threshold_file = args.threshold_file.clone();
    let mut midstream_policy: Option<String> = None;
    let mut exception_policy: Option<String> = None;
    let mut vars = Vars::default();
    let mut action_order: Vec<Action> = Vec::new();
    // (key, value, origin; None = from --set, where unknown keys are worth a warning)
    let mut settings: Vec<(String, String, Option<String>)> = Vec::new();
    if let Some(c) = &args.suricata_config {
        let text = std::fs::read_to_string(c)
            .with_context(|| format!("cannot read Suricata config {}", c.display()))?;
        let (flat, errs) = crate::net::suricata_yaml::flatten(&text);
        for e in errs {
            notes.push(format!("warning: {}: {e} (ignored)", c.display()));
        }
        for st in flat {
            settings.push((
                st.key,
                st.value,
                Some(format!("{}:{}", c.display(), st.line)),
            ));
        }
    }
    for s in &args.set {
        let Some((k, v)) = s.split_once('=') else {
            bail!("--set {s:?}: expected key=value")
        };
        settings.push((k.trim().to_string(), v.trim().to_string(), None));
    }
    for (k, v, origin) in &settings {
        let v = v.as_str();
        let at = origin.clone().unwrap_or_else(|| format!("--set {k}={v}"));
        let yes = matches!(v, "true" | "yes" | "on" | "1");
        if let Some(name) = k.strip_prefix("vars.address-groups.") {
            vars.addr.insert(name.to_string(), v.to_string());
            continue;
        }
        if let Some(name) = k.strip_prefix("vars.port-groups.") {
            vars.port.insert(name.to_string(), v.to_string());
            continue;
        }
        if k.strip_prefix("action-order.").is_some() || k == "action-order" {
            for a in v.split(',').map(str::trim).filter(|a| !a.is_empty()) {
                action_order.push(match a {
                    "pass" => Action::Pass,
                    "drop" => Action::Drop,
                    "reject" => Action::Reject,
                    "alert" => Action::Alert,
                    o => bail!("{at}: unknown action {o:?} in action-order (expected pass, drop, reject, alert)"),
                });
            }
            continue;
        }
        match k.as_str() {
            "stream.midstream" => cfg.midstream = yes,
            "threshold-file" => threshold_file = Some(PathBuf::from(v)),
            "stream.reassembly.depth" => cfg.stream_depth = parse_size(v).with_context(|| format!("{at}: bad size"))?,
            "packet-alert-max" => {
                // Suricata falls back to its default for 0 and for values above 256.
                let n: usize = v.parse().with_context(|| format!("{at}: bad number"))?;
                cfg.packet_alert_max = if n == 0 || n > 256 { Config::default().packet_alert_max } else { n };
            }
            "app-layer.protocols.http.libhtp.default-config.response-body-limit" | "app-layer.protocols.http.libhtp.default-config.request-body-limit" => {
                cfg.http_body_limit = parse_size(v).with_context(|| format!("{at}: bad size"))? as usize
            }
            "app-layer.protocols.http.libhtp.default-config.response-body-decompress-layer-limit" => {
                cfg.http_decompress_layers = v.parse().with_context(|| format!("{at}: bad number"))?
            }
            "stream.midstream-policy" => midstream_policy = Some(v.to_string()),
            "decoder.vxlan.enabled" => cfg.vxlan = yes,
            "app-layer.protocols.tls.encryption-handling" => {
                cfg.tls_inspect_encrypted = v == "full"
            }
            "exception-policy" => exception_policy = Some(v.to_string()),
            other if origin.is_none() => notes.push(format!("warning: --set {other} is not supported and was ignored")),
            _ => {}
        }
    }
    // Exception policy for midstream sessions: anything but `ignore` takes the flow out of
    // inspection; in IPS mode a disabled midstream pickup (or policy `auto`) does the same.
    cfg.ips = args.simulate_ips;
    let policy = midstream_policy.or(exception_policy);
    cfg.midstream_pass = match policy.as_deref() {
        Some("ignore") => args.simulate_ips && !cfg.midstream,
        Some("auto") => args.simulate_ips,
        Some(_) => true,
        None => args.simulate_ips && !cfg.midstream,
    };
    if args.runmode.is_some() || args.simulate_ips || args.simulate_applayer_error.is_some() {
        notes.push(
            "warning: --runmode/--simulate-* options are accepted for compatibility and ignored"
                .into(),
        );
    }

    if let Some(v) = &args.vars {
        let text = std::fs::read_to_string(v)
            .with_context(|| format!("cannot read vars file {}", v.display()))?;
        if let Some(e) = vars.load_text(&text).into_iter().next() {
            bail!("{}: {e}", v.display());
        }
    }
    let mut files = Vec::new();
    for r in &args.rules {
        files.extend(rule_files(r)?);
    }
    let mut texts = Vec::new();
    for f in &files {
        let t =
            std::fs::read(f).with_context(|| format!("cannot read rules file {}", f.display()))?;
        texts.push((
            f.display().to_string(),
            String::from_utf8_lossy(&t).into_owned(),
        ));
    }
    let class_path = args.classification.clone().or_else(|| {
        args.rules
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
    let class_text = match &class_path {
        Some(p) => Some(
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        ),
        None => None,
    };
    let t0 = std::time::Instant::now();
    let sources: Vec<RuleSource<'_>> = texts
        .iter()
        .map(|(n, t)| RuleSource { name: n, text: t })
        .collect();
    let rs = RuleSet::load(
        &sources,
        &LoadOptions {
            vars: &vars,
            classification: class_text.as_deref(),
            action_order: &action_order,
        },
    );
    let load_secs = t0.elapsed().as_secs_f64();
    let load = rs.stats.clone();
    let mut engine = Engine::new(Arc::new(rs), cfg);
    if let Some(tf) = &threshold_file {
        let text = std::fs::read_to_string(tf)
            .with_context(|| format!("cannot read threshold file {}", tf.display()))?;
        let (entries, errs) = parse_threshold_config(&text, &vars);
        for e in errs {
            notes.push(format!("warning: {}: {e}", tf.display()));
        }
        engine.set_threshold_config(entries);
    }
    let mut alerts = Vec::new();
    for f in &args.files {
        let r = crate::net::pcap_file::for_each_frame(f, |fr| {
            engine.process(
                Timestamp {
                    secs: fr.secs,
                    micros: fr.micros,
                },
                fr.linktype,
                fr.data,
                &mut alerts,
            );
        });
        if let Err(e) = r {
            notes.push(format!("warning: {e:#}"));
        }
    }
    engine.flush(&mut alerts);
    Ok(Report {
        alerts,
        stats: engine.stats(),
        load,
        load_secs,
        notes,
    })
}

fn civil(days: i64) -> (i64, u32, u32) {
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub fn eve_timestamp(ts: Timestamp) -> String {
    let secs = ts.secs as i64;
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:06}+0000",
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        ts.micros
    )
}

fn proto_name(p: u8) -> String {
    match p {
        6 => "TCP".into(),
        17 => "UDP".into(),
        1 => "ICMP".into(),
        58 => "IPv6-ICMP".into(),
        47 => "GRE".into(),
        4 => "IP-in-IP".into(),
        132 => "SCTP".into(),
        n => format!("{n:03}"),
    }
}

/// Addresses as EVE prints them: IPv6 in full (eight 4-digit groups), as Suricata does.
pub fn eve_ip(ip: &std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(a) => a.to_string(),
        std::net::IpAddr::V6(a) => a
            .segments()
            .iter()
            .map(|s| format!("{s:04x}"))
            .collect::<Vec<_>>()
            .join(":"),
    }
}

/// The EVE JSON record of an alert.
pub fn eve_json(a: &Alert) -> serde_json::Value {
    let mut v = serde_json::json!({
        "timestamp": eve_timestamp(a.ts),
        "flow_id": a.flow_id,
        "pcap_cnt": a.pcap_cnt,
        "event_type": "alert",
        "src_ip": eve_ip(&a.src_ip),
        "src_port": a.src_port,
        "dest_ip": eve_ip(&a.dest_ip),
        "dest_port": a.dest_port,
        "proto": proto_name(a.proto),
        "alert": {
            "action": a.action,
            "gid": a.gid,
            "signature_id": a.signature_id,
            "rev": a.rev,
            "signature": a.signature,
            "category": a.category,
            "severity": a.severity,
        },
    });
    if let Some(ap) = a.app_proto {
        v["app_proto"] = serde_json::Value::String(ap.to_string());
    }
    if !(a.proto == 6 || a.proto == 17 || a.proto == 132) {
        let o = v.as_object_mut().expect("object");
        o.remove("src_port");
        o.remove("dest_port");
    }
    v
}

pub fn run(args: Args) -> Result<ExitCode> {
    let rep = inspect(&args)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for a in &rep.alerts {
        writeln!(out, "{}", eve_json(a))?;
    }
    out.flush()?;
    let mut err = std::io::stderr().lock();
    for n in &rep.notes {
        writeln!(err, "{n}")?;
    }
    if args.verbose {
        for w in &rep.load.warnings {
            writeln!(err, "rule: {w}")?;
        }
    }
    let l = &rep.load;
    writeln!(
        err,
        "rules: {} loaded, {} skipped in {:.2}s",
        l.loaded, l.skipped, rep.load_secs
    )?;
    for (reason, n) in &l.by_reason {
        writeln!(err, "  skipped {n}: {reason}")?;
    }
    if !args.verbose && !l.warnings.is_empty() {
        for w in l.warnings.iter().take(5) {
            writeln!(err, "  e.g. {w}")?;
        }
        writeln!(err, "  (--verbose lists all {} warnings)", l.warnings.len())?;
    }
    let s = &rep.stats;
    writeln!(
        err,
        "packets: {}, bytes: {}, flows: {}, alerts: {}, decode errors: {}, checksum errors: {}, fragments reassembled: {}",
        s.packets,
        s.bytes,
        s.flows,
        rep.alerts.len(),
        s.decode_errors,
        s.checksum_errors,
        s.frag_reassembled
    )?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eve_prints_ipv6_addresses_in_full() {
        assert_eq!(
            eve_ip(&"2001:db8::1".parse().unwrap()),
            "2001:0db8:0000:0000:0000:0000:0000:0001"
        );
        assert_eq!(eve_ip(&"10.0.0.1".parse().unwrap()), "10.0.0.1");
    }

    #[test]
    fn eve_timestamp_is_utc_iso8601() {
        assert_eq!(
            eve_timestamp(Timestamp {
                secs: 1_453_289_301,
                micros: 42
            }),
            "2016-01-20T11:28:21.000042+0000"
        );
    }
}
