//! Helpers shared by the conformance tests: locating `../shared`, loading the upstream
//! rulesets from disk into the sans-IO builder, and tallying failures by cause.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bannin_logrules::{LoadSummary, Ruleset, RulesetBuilder};

pub fn shared() -> Option<PathBuf> {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared"));
    if p.join("corpus/logs").is_dir() {
        Some(p)
    } else {
        println!(
            "SKIP: {} is absent; conformance data not available",
            p.display()
        );
        None
    }
}

fn sorted_files(dir: &Path, ext: Option<&str>) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| {
        p.is_file()
            && ext
                .map(|e| p.extension().and_then(|x| x.to_str()) == Some(e))
                .unwrap_or(true)
    });
    v.sort();
    v
}

fn add_lists(b: &mut RulesetBuilder, root: &Path, dir: &Path) {
    for p in sorted_files(dir, None) {
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().to_string();
        b.add_list(&rel, &std::fs::read(&p).unwrap());
    }
    let mut subs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    subs.sort();
    for s in subs {
        add_lists(b, root, &s);
    }
}

/// OSSEC's default server ruleset: decoder.xml and the rule files of RULES-INCLUDED.txt, in order.
pub fn load_ossec(shared: &Path) -> (Arc<Ruleset>, LoadSummary) {
    let base = shared.join("corpus/logs/ossec");
    let mut b = RulesetBuilder::new();
    if let Some(o) = std::env::var("LOGRULES_FREQ_OFFSET")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        b.dialects.frequency_offset = o;
    }
    for p in sorted_files(&base.join("decoders"), Some("xml")) {
        b.add_decoders(
            &p.file_name().unwrap().to_string_lossy(),
            &std::fs::read(&p).unwrap(),
        );
    }
    let list = std::fs::read_to_string(base.join("RULES-INCLUDED.txt")).unwrap();
    for name in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let p = base.join("rules").join(name);
        if let Ok(bytes) = std::fs::read(&p) {
            b.add_rules(name, &bytes);
        }
    }
    let (rs, s) = b.build();
    (Arc::new(rs), s)
}

/// Wazuh 4.14.7: decoders, lists, rules, plus the synthetic test_* ruleset of its test suite.
/// `patch` may rewrite a rule file's text (used for upstream's rule 60000 runner patch).
pub fn load_wazuh(
    shared: &Path,
    patch: impl Fn(&str, String) -> String,
) -> (Arc<Ruleset>, LoadSummary) {
    let base = shared.join("corpus/logs/wazuh-4.14.7");
    let mut b = RulesetBuilder::new();
    add_lists(&mut b, &base.join("lists"), &base.join("lists"));
    let mut files = sorted_files(&base.join("decoders"), Some("xml"));
    files.extend(sorted_files(&base.join("rules"), Some("xml")));
    files.extend(sorted_files(&base.join("testing/ruleset"), Some("xml")));
    for p in files {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let text = patch(&name, std::fs::read_to_string(&p).unwrap());
        b.add_xml(&name, text.as_bytes());
    }
    let (rs, s) = b.build();
    (Arc::new(rs), s)
}

/// Failures grouped by cause, printed as a table.
#[derive(Default)]
pub struct Tally {
    pub pass: usize,
    pub fail: usize,
    pub causes: BTreeMap<String, Vec<String>>,
}

impl Tally {
    pub fn ok(&mut self) {
        self.pass += 1;
    }
    pub fn bad(&mut self, cause: String, example: String) {
        self.fail += 1;
        self.causes.entry(cause).or_default().push(example);
    }
    pub fn rate(&self) -> f64 {
        if self.pass + self.fail == 0 {
            return 0.0;
        }
        self.pass as f64 * 100.0 / (self.pass + self.fail) as f64
    }
    pub fn report(&self, title: &str) {
        println!(
            "{title}: {} passed, {} failed ({:.2}% pass)",
            self.pass,
            self.fail,
            self.rate()
        );
        let mut v: Vec<_> = self.causes.iter().collect();
        v.sort_by(|a, b| b.1.len().cmp(&a.1.len()));
        for (cause, ex) in v.iter().take(40) {
            println!("  {:5}  {}", ex.len(), cause);
            for e in ex.iter().take(2) {
                println!("         e.g. {}", e.chars().take(220).collect::<String>());
            }
        }
    }
}
