//! Per-line verdicts (decoder, rule id, level) on the three 100k-line synthetic syslog corpora,
//! compared with what OSSEC 4.x itself decided for each line.

mod common;

use std::process::Command;

use bannin_logrules::{CorrelationLimits, Engine, TimeSource};

/// A Wednesday noon: upstream's oracle run happened in business hours, which matters for the
/// policy rules that use <time>/<weekday>.
const NOW: i64 = 1_700_049_600;

/// `floor` is the pass rate reached so far, rounded down a little: a regression fails the test.
fn run_kind(kind: &str, floor: f64) {
    let Some(shared) = common::shared() else {
        return;
    };
    let (rs, summary) = common::load_ossec(&shared);
    println!("OSSEC ruleset: {summary}");
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join(format!("{kind}.log"));
    let out = Command::new("python3")
        .arg(shared.join("tools/gen_syslog_corpus.py"))
        .args([kind, "100000", "42"])
        .output()
        .expect("python3 is needed to regenerate the corpus");
    assert!(out.status.success(), "corpus generator failed");
    std::fs::write(&corpus, &out.stdout).unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let expected = std::fs::read_to_string(
        shared.join(format!("corpus/logs/oracle/ossec-expected-{kind}-100k.tsv")),
    )
    .unwrap();
    let mut eng = Engine::new(rs);
    // ossec-logtest stamps each event with the time it read it (the corpora's own timestamps are
    // random days of the year), and read the whole corpus within a few seconds, well inside
    // every rule's timeframe: one constant receive time reproduces that.
    eng.time_source = if std::env::var("LOGRULES_LOG_TIME").is_ok() {
        TimeSource::LogTime
    } else {
        TimeSource::Receive
    };
    // Upstream's correlation list limits, including its full-group-list defect.
    eng.limits = CorrelationLimits::OSSEC_4X;
    let now: i64 = std::env::var("LOGRULES_NOW")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(NOW);
    let mut t = common::Tally::default();
    for (line, exp) in text.lines().zip(expected.lines().skip(1)) {
        let cols: Vec<&str> = exp.split('\t').collect();
        let v = eng.process(line, now);
        let got_dec = v.decoder.clone().unwrap_or_default();
        let (got_rule, got_level) = match &v.rule {
            Some(r) => (r.id.to_string(), r.level.to_string()),
            None => (String::new(), String::new()),
        };
        if cols[1] == got_dec && cols[2] == got_rule && cols[3] == got_level {
            t.ok();
        } else {
            t.bad(
                format!(
                    "want {}|{}|{} got {}|{}|{}",
                    cols[1], cols[2], cols[3], got_dec, got_rule, got_level
                ),
                line.to_string(),
            );
        }
    }
    t.report(&format!("OSSEC 100k corpus '{kind}'"));
    assert!(
        t.rate() >= floor,
        "pass rate {:.2}% fell below the floor {floor}%",
        t.rate()
    );
}

#[test]
fn sshd_corpus_matches_ossec_verdicts() {
    run_kind("sshd", 99.9);
}

#[test]
fn mixed_corpus_matches_ossec_verdicts() {
    run_kind("mixed", 99.5);
}

#[test]
fn nomatch_corpus_matches_ossec_verdicts() {
    run_kind("nomatch", 99.9);
}
