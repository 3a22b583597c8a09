//! Throughput driver for bench/logrules.sh: loads a ruleset (same layout rules as
//! `bannin-agent logtest --ruleset`, simplified: a directory with decoders/ rules/ lists/ and an
//! optional RULES-INCLUDED.txt), then evaluates every line of a file and prints counts.
//! Usage: logrules_bench RULESET_DIR LOGFILE [--patch-wazuh-60000]
use bannin_logrules::{Engine, RulesetBuilder, TimeSource};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|r| r.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn add_lists(b: &mut RulesetBuilder, root: &Path, dir: &Path) {
    for p in files(dir) {
        if p.is_dir() {
            add_lists(b, root, &p);
        } else {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().to_string();
            b.add_list(&rel, &std::fs::read(&p).unwrap());
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let root = Path::new(&args[1]);
    let log = std::fs::read_to_string(&args[2]).expect("readable log file");
    let t0 = Instant::now();
    let mut b = RulesetBuilder::new();
    if root.join("lists").is_dir() {
        add_lists(&mut b, &root.join("lists"), &root.join("lists"));
    }
    for p in files(&root.join("decoders")) {
        b.add_decoders(&p.to_string_lossy(), &std::fs::read(&p).unwrap());
    }
    let inc = root.join("RULES-INCLUDED.txt");
    if inc.is_file() {
        for n in std::fs::read_to_string(&inc)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            let p = root.join("rules").join(n.trim());
            if let Ok(bytes) = std::fs::read(&p) {
                b.add_rules(n, &bytes);
            }
        }
    } else {
        for p in files(&root.join("rules")) {
            b.add_rules(&p.to_string_lossy(), &std::fs::read(&p).unwrap());
        }
    }
    let (rs, summary) = b.build();
    let load = t0.elapsed();
    let mut eng = Engine::new(Arc::new(rs));
    eng.time_source = TimeSource::LogTime;
    let t1 = Instant::now();
    let (mut n, mut alerts, mut decoded) = (0u64, 0u64, 0u64);
    for line in log.lines() {
        let v = eng.process(line, 1_700_049_600);
        n += 1;
        alerts += v.alert as u64;
        decoded += v.decoder.is_some() as u64;
    }
    let el = t1.elapsed().as_secs_f64();
    println!(
        "load_ms={:.1} lines={n} decoded={decoded} alerts={alerts} eval_s={el:.3} lines_per_s={:.0} ({summary})",
        load.as_secs_f64() * 1000.0,
        n as f64 / el
    );
}
