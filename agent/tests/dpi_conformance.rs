//! DPI conformance against the suricata-verify signature tests and the ET Open rule set in
//! `../shared/corpus/dpi` (never copied into the repository). Prints both rates and the failures,
//! grouped by the rule keywords they involve, and fails when a rate drops below its floor.

use bannin_agent::cmd::pcap::{eve_json, inspect, Args};
use clap::Parser;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Floors: the rates reached when this test was last tuned, rounded down a little.
const VERIFY_PASS_FLOOR: f64 = 0.90;
const ET_LOAD_FLOOR: f64 = 0.998;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

fn shared() -> Option<PathBuf> {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/corpus/dpi"
    ));
    if p.is_dir() {
        Some(p)
    } else {
        println!("SKIP: {} is absent; DPI conformance not run", p.display());
        None
    }
}

const JUDGED: &[&str] = &[
    "alert.signature_id",
    "pcap_cnt",
    "src_ip",
    "dest_ip",
    "src_port",
    "dest_port",
    "proto",
    "app_proto",
];

fn field<'a>(v: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    let mut cur = v;
    for p in path.split('.') {
        cur = cur.get(p)?;
    }
    Some(cur)
}

fn rule_keywords(dir: &Path, rules: &[String]) -> Vec<String> {
    let mut kws = BTreeMap::new();
    for r in rules {
        let Ok(t) = std::fs::read_to_string(dir.join(r)) else {
            continue;
        };
        for line in t.lines().filter(|l| !l.trim_start().starts_with('#')) {
            if let Some(o) = line.find('(') {
                for opt in line[o + 1..].split(';') {
                    let k = opt.split(':').next().unwrap_or("").trim();
                    if !k.is_empty()
                        && !matches!(
                            k,
                            "msg" | "sid" | "rev" | ")" | "classtype" | "content" | "flow"
                        )
                    {
                        kws.insert(k.to_string(), ());
                    }
                }
            }
        }
    }
    kws.into_keys().collect()
}

/// Run one manifest test; Err carries a one-line reason.
fn run_test(base: &Path, t: &serde_json::Value) -> Result<(), String> {
    let dirname = t["dir"].as_str().unwrap_or_default();
    let dir = base.join("suricata-verify").join(dirname);
    let mut argv: Vec<String> = vec![
        "pcap".into(),
        dir.join(t["pcap"].as_str().unwrap_or("input.pcap"))
            .display()
            .to_string(),
    ];
    for r in t["rules"].as_array().into_iter().flatten() {
        argv.push("--rules".into());
        argv.push(
            dir.join(r.as_str().unwrap_or_default())
                .display()
                .to_string(),
        );
    }
    // Suricata-verify runs each test with its own suricata.yaml where it has one.
    if dir.join("suricata.yaml").is_file() {
        argv.push("-c".into());
        argv.push(dir.join("suricata.yaml").display().to_string());
    }
    if let Some(tf) = t["threshold_file"].as_str() {
        argv.push("--threshold-file".into());
        argv.push(dir.join(tf).display().to_string());
    }
    for a in t["args"].as_array().into_iter().flatten() {
        let a = a
            .as_str()
            .unwrap_or_default()
            .replace("${TEST_DIR}", &dir.display().to_string());
        argv.extend(a.split_whitespace().map(String::from));
    }
    let cli = Cli::try_parse_from(&argv).map_err(|e| format!("arguments {argv:?}: {e}"))?;
    let rep = inspect(&cli.args).map_err(|e| format!("{e:#}"))?;
    let eve: Vec<serde_json::Value> = rep.alerts.iter().map(eve_json).collect();
    for f in t["expected_alert_filters"].as_array().into_iter().flatten() {
        let want = f["count"].as_u64().unwrap_or(0);
        let m = f["match"].as_object().cloned().unwrap_or_default();
        let got = eve
            .iter()
            .filter(|e| {
                m.iter()
                    .filter(|(k, _)| JUDGED.contains(&k.as_str()))
                    .all(|(k, v)| field(e, k) == Some(v))
            })
            .count() as u64;
        if got != want {
            let judged: serde_json::Map<_, _> = m
                .into_iter()
                .filter(|(k, _)| JUDGED.contains(&k.as_str()))
                .collect();
            return Err(format!(
                "expected {want} alerts matching {}, got {got} (skipped rules: {})",
                serde_json::Value::Object(judged),
                rep.load.skipped
            ));
        }
    }
    Ok(())
}

#[test]
fn suricata_verify_signature_tests_pass_rate() {
    let Some(base) = shared() else { return };
    let manifest: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(base.join("suricata-verify/MANIFEST.json"))
            .expect("read MANIFEST.json"),
    )
    .expect("parse MANIFEST.json");
    let only = std::env::var("DPI_VERIFY_ONLY").ok();
    let mut pass = 0usize;
    let mut total = 0usize;
    let mut by_kw: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in &manifest {
        let name = t["dir"].as_str().unwrap_or_default().to_string();
        if let Some(o) = &only {
            if !name.contains(o.as_str()) {
                continue;
            }
        }
        total += 1;
        match run_test(&base, t) {
            Ok(()) => pass += 1,
            Err(e) => {
                println!("FAIL {name}: {e}");
                let rules: Vec<String> = t["rules"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r.as_str().map(String::from))
                    .collect();
                for k in rule_keywords(&base.join("suricata-verify").join(&name), &rules) {
                    by_kw.entry(k).or_default().push(name.clone());
                }
            }
        }
    }
    println!("failures by rule keyword:");
    let mut v: Vec<_> = by_kw.into_iter().collect();
    v.sort_by_key(|(_, n)| std::cmp::Reverse(n.len()));
    for (k, names) in v.iter().take(40) {
        println!("  {k}: {}", names.len());
    }
    let rate = pass as f64 / total.max(1) as f64;
    println!(
        "suricata-verify: {pass}/{total} passed ({:.1}%)",
        rate * 100.0
    );
    if only.is_none() {
        assert!(
            rate >= VERIFY_PASS_FLOOR,
            "suricata-verify pass rate {:.3} fell below the floor {VERIFY_PASS_FLOOR}",
            rate
        );
    }
}

#[test]
fn et_open_rules_load_rate() {
    let Some(base) = shared() else { return };
    let dir = base.join("et-open");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("list et-open")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "rules"))
        .collect();
    files.sort();
    let texts: Vec<(String, String)> = files
        .iter()
        .map(|f| {
            (
                f.display().to_string(),
                std::fs::read_to_string(f).expect("read rules"),
            )
        })
        .collect();
    let class = std::fs::read_to_string(dir.join("classification.config")).ok();
    let vars = bannin_dpi::Vars::default();
    let sources: Vec<bannin_dpi::RuleSource<'_>> = texts
        .iter()
        .map(|(n, t)| bannin_dpi::RuleSource { name: n, text: t })
        .collect();
    let t0 = std::time::Instant::now();
    let rs = bannin_dpi::RuleSet::load(
        &sources,
        &bannin_dpi::LoadOptions {
            vars: &vars,
            classification: class.as_deref(),
            action_order: &[],
        },
    );
    let secs = t0.elapsed().as_secs_f64();
    let s = &rs.stats;
    let total = s.loaded + s.skipped;
    let rate = s.loaded as f64 / total.max(1) as f64;
    println!(
        "ET Open: {} of {} rules loaded ({:.2}%) in {:.2}s",
        s.loaded,
        total,
        rate * 100.0,
        secs
    );
    for (reason, n) in &s.by_reason {
        println!("  skipped {n}: {reason}");
    }
    for w in s
        .warnings
        .iter()
        .filter(|w| w.contains("invalid") || !w.contains("unsupported"))
        .take(30)
    {
        println!("  {w}");
    }
    assert_eq!(
        total, 14_949,
        "the ET Open snapshot should hold 14,949 enabled rules"
    );
    assert!(
        rate >= ET_LOAD_FLOOR,
        "ET Open load rate {rate:.4} fell below the floor {ET_LOAD_FLOOR}"
    );
}
