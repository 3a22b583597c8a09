//! Bannin's own default rules (`signatures/logs/`) against their `.ini` tests, in the format
//! upstream's ruleset tests use: in each `[section]`, every `log N pass|fail = LINE` key is one
//! logtest session (a key repeated on several lines = a session of several lines, the last one
//! is checked), and `rule`/`alert`/`decoder` is what that last line must (pass) or must not
//! (fail) give.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bannin_logrules::{Engine, LoadSummary, Ruleset, RulesetBuilder, TimeSource};

fn signatures() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../signatures/logs"
    ))
}

fn sorted(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.is_file());
    v.sort();
    v
}

/// Add signatures/logs (lists, decoders, rules) to a builder; `list_override` replaces a list.
fn add_signatures(b: &mut RulesetBuilder, list_override: Option<(&str, &str)>) {
    let root = signatures();
    for p in sorted(&root.join("lists")) {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        match list_override {
            Some((n, text)) if n == name => b.add_list(&name, text.as_bytes()),
            _ => b.add_list(&name, &std::fs::read(&p).unwrap()),
        }
    }
    for p in sorted(&root.join("decoders")) {
        b.add_decoders(&p.to_string_lossy(), &std::fs::read(&p).unwrap());
    }
    for p in sorted(&root.join("rules")) {
        b.add_rules(&p.to_string_lossy(), &std::fs::read(&p).unwrap());
    }
}

fn load(list_override: Option<(&str, &str)>) -> (Arc<Ruleset>, LoadSummary) {
    let mut b = RulesetBuilder::new();
    add_signatures(&mut b, list_override);
    let (rs, s) = b.build();
    (Arc::new(rs), s)
}

struct Case {
    file: String,
    section: String,
    pass: bool,
    rule: String,
    level: String,
    decoder: String,
    lines: Vec<String>,
}

/// Parse an upstream-style rule test file.
fn parse_ini(file: &str, text: &str) -> Vec<Case> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut runs: Vec<(String, Vec<String>)> = Vec::new();
    let mut expect: [String; 3] = Default::default();
    let mut flush = |section: &str, runs: &mut Vec<(String, Vec<String>)>, e: &[String; 3]| {
        for (key, lines) in runs.drain(..) {
            out.push(Case {
                file: file.to_string(),
                section: section.to_string(),
                pass: key.ends_with("pass"),
                rule: e[0].clone(),
                level: e[1].clone(),
                decoder: e[2].clone(),
                lines,
            });
        }
    };
    for raw in text.lines() {
        let l = raw.trim_end();
        if l.trim().is_empty() || l.starts_with(';') || l.starts_with('#') {
            continue;
        }
        if l.starts_with('[') && l.ends_with(']') {
            flush(&section, &mut runs, &expect);
            section = l[1..l.len() - 1].to_string();
            expect = Default::default();
            continue;
        }
        let (k, v) = l
            .split_once('=')
            .unwrap_or_else(|| panic!("{file}: line without '=': {l}"));
        let (k, v) = (k.trim(), v.trim_start());
        match k {
            "rule" => expect[0] = v.trim().to_string(),
            "alert" => expect[1] = v.trim().to_string(),
            "decoder" => expect[2] = v.trim().to_string(),
            _ if k.starts_with("log ") => match runs.iter_mut().find(|(rk, _)| rk == k) {
                Some((_, lines)) => lines.push(v.to_string()),
                None => runs.push((k.to_string(), vec![v.to_string()])),
            },
            _ => panic!("{file}: unknown key '{k}' in [{section}]"),
        }
    }
    flush(&section, &mut runs, &expect);
    out
}

fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    for p in sorted(&signatures().join("tests")) {
        if p.extension().and_then(|e| e.to_str()) != Some("ini") {
            continue;
        }
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        v.extend(parse_ini(&name, &std::fs::read_to_string(&p).unwrap()));
    }
    v
}

fn run_case(rs: &Arc<Ruleset>, c: &Case) -> (bool, String) {
    let mut eng = Engine::new(rs.clone());
    // The test lines carry their own times, seconds apart, as a live stream would.
    eng.time_source = TimeSource::LogTime;
    let mut last = None;
    for l in &c.lines {
        last = Some(eng.process(l, 1_715_000_000));
    }
    let v = last.unwrap_or_default();
    let (rule, level) = v
        .rule
        .as_ref()
        .map(|r| (r.id.to_string(), r.level.to_string()))
        .unwrap_or_default();
    let dec = v.decoder.clone().unwrap_or_default();
    let hit = v.rule.is_some()
        && v.decoder.is_some()
        && rule == c.rule
        && level == c.level
        && dec == c.decoder;
    (
        hit == c.pass,
        format!("got {rule}:{level}:{dec}, fields {:?}", v.fields),
    )
}

#[test]
fn default_rules_load_without_skips() {
    let (rs, summary) = load(None);
    for s in &summary.skipped {
        println!("{s}");
    }
    assert!(summary.skipped.is_empty(), "{summary}");
    assert!(rs.rules.len() >= 60, "{summary}");
    assert!(rs.rules.iter().all(|r| (190000..200000).contains(&r.id)));
}

#[test]
fn default_rules_pass_their_ini_tests() {
    let (rs, _) = load(None);
    let cases = cases();
    assert!(cases.len() >= 60, "only {} test runs found", cases.len());
    let mut failed = Vec::new();
    for c in &cases {
        let (ok, got) = run_case(&rs, c);
        if !ok {
            failed.push(format!(
                "{} [{}] want {}{}:{}:{}, {got}\n    {}",
                c.file,
                c.section,
                if c.pass { "" } else { "NOT " },
                c.rule,
                c.level,
                c.decoder,
                c.lines
                    .last()
                    .map(|l| l.chars().take(160).collect::<String>())
                    .unwrap_or_default()
            ));
        }
    }
    println!(
        "{} of {} runs passed",
        cases.len() - failed.len(),
        cases.len()
    );
    assert!(failed.is_empty(), "failed runs:\n{}", failed.join("\n"));
}

#[test]
fn every_default_rule_is_exercised_by_a_passing_test() {
    let (rs, _) = load(None);
    let tested: std::collections::HashSet<String> = cases()
        .into_iter()
        .filter(|c| c.pass)
        .map(|c| c.rule)
        .collect();
    let untested: Vec<u32> = rs
        .rules
        .iter()
        .filter(|r| r.level > 0 && !tested.contains(&r.id.to_string()))
        .map(|r| r.id)
        .collect();
    assert!(
        untested.is_empty(),
        "alerting rules without a pass test: {untested:?}"
    );
}

#[test]
fn listed_principal_silences_its_cloudtrail_changes() {
    let line = r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/terraform"},"eventSource":"ec2.amazonaws.com","eventName":"CreateRoute","sourceIPAddress":"198.51.100.7","eventType":"AwsApiCall"}"#;
    let (rs, _) = load(None);
    let v = Engine::new(rs).process(line, 0);
    assert_eq!(v.rule.as_ref().map(|r| r.id), Some(190320));
    assert!(v.alert);
    let (rs, _) = load(Some((
        "bannin-aws-expected-principals",
        // Keys holding ':' are quoted, as in upstream's CDB list sources.
        "\"arn:aws:iam::111122223333:user/terraform\":\n",
    )));
    let v = Engine::new(rs).process(line, 0);
    assert_eq!(v.rule.as_ref().map(|r| (r.id, r.level)), Some((190390, 0)));
    assert!(!v.alert);
}

/// The local-rule examples of signatures/README.md work as documented.
#[test]
fn documented_local_filters_silence_what_they_say() {
    let readme =
        std::fs::read_to_string(signatures().join("../README.md")).expect("signatures/README.md");
    let start = readme
        .find("<group name=\"local,\">")
        .expect("local rule example");
    let end = readme[start..].find("</group>").unwrap() + start + "</group>".len();
    let mut b = RulesetBuilder::new();
    add_signatures(&mut b, None);
    b.add_rules("local.xml", readme[start..end].as_bytes());
    let (rs, summary) = b.build();
    assert!(summary.skipped.is_empty(), "{summary}");
    let rs = Arc::new(rs);
    let sudo = |user: &str| {
        format!("Mar 24 15:28:16 bastion sudo:   {user} : TTY=pts/3 ; PWD=/ ; USER=root ; COMMAND=/usr/bin/rsync -a / /mnt")
    };
    let id = |line: &str, now: i64| {
        Engine::new(rs.clone())
            .process(line, now)
            .rule
            .map(|r| r.id)
    };
    assert_eq!(id(&sudo("backup"), 0), Some(199001));
    assert_eq!(id(&sudo("alice"), 0), Some(190121));
    let sg = r#"{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::1:role/ci-deployer"},"eventSource":"ec2.amazonaws.com","eventName":"CreateSecurityGroup","eventType":"AwsApiCall"}"#;
    // Wednesday 2023-11-15 12:00 UTC, then 23:00 the same day.
    assert_eq!(id(sg, 1_700_049_600), Some(199002));
    assert_eq!(id(sg, 1_700_089_200), Some(190316));
}

#[test]
fn default_rules_load_on_top_of_the_wazuh_ruleset() {
    let Some(shared) = common::shared() else {
        return;
    };
    let base = shared.join("corpus/logs/wazuh-4.14.7");
    let mut b = RulesetBuilder::new();
    for p in sorted(&base.join("decoders")) {
        b.add_decoders(&p.to_string_lossy(), &std::fs::read(&p).unwrap());
    }
    for p in sorted(&base.join("rules")) {
        b.add_rules(&p.to_string_lossy(), &std::fs::read(&p).unwrap());
    }
    add_signatures(&mut b, None);
    let (rs, summary) = b.build();
    let ours: Vec<_> = summary
        .skipped
        .iter()
        .filter(|s| s.file.contains("bannin"))
        .collect();
    assert!(ours.is_empty(), "our files had skips: {ours:?}");
    let (alone, _) = load(None);
    for r in &alone.rules {
        assert!(
            rs.rules.iter().any(|x| x.id == r.id),
            "rule {} missing",
            r.id
        );
    }
    // Records no upstream rule claims still reach ours: a CloudTrail change.
    let v = Engine::new(Arc::new(rs)).process(
        r#"{"eventVersion":"1.08","userIdentity":{"type":"Root","arn":"arn:aws:iam::111122223333:root"},"eventSource":"cloudtrail.amazonaws.com","eventName":"StopLogging","sourceIPAddress":"198.51.100.7","eventType":"AwsApiCall"}"#,
        0,
    );
    assert_eq!(v.rule.map(|r| r.id), Some(190312));
}
