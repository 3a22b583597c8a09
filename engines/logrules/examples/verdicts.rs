//! Debug aid: load the OSSEC ruleset layout (decoders/, RULES-INCLUDED.txt, rules/) and print
//! `idx decoder rule level` for each line of a log file, with receive time (like ossec-logtest).
use bannin_logrules::{Engine, RulesetBuilder, TimeSource};
use std::path::Path;
use std::sync::Arc;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let root = Path::new(&a[1]);
    let mut b = RulesetBuilder::new();
    for e in std::fs::read_dir(root.join("decoders")).unwrap() {
        let p = e.unwrap().path();
        b.add_decoders(&p.to_string_lossy(), &std::fs::read(&p).unwrap());
    }
    for n in std::fs::read_to_string(root.join("RULES-INCLUDED.txt"))
        .unwrap()
        .lines()
    {
        if let Ok(x) = std::fs::read(root.join("rules").join(n.trim())) {
            b.add_rules(n, &x);
        }
    }
    let (rs, _) = b.build();
    let mut e = Engine::new(Arc::new(rs));
    e.time_source = TimeSource::Receive;
    e.limits = bannin_logrules::CorrelationLimits::OSSEC_4X;
    for (i, l) in std::fs::read_to_string(&a[2]).unwrap().lines().enumerate() {
        let v = e.process(l, 1_700_049_600);
        let (r, lv) = v
            .rule
            .map(|r| (r.id.to_string(), r.level.to_string()))
            .unwrap_or_default();
        println!(
            "{}\t{}\t{}\t{}",
            i + 1,
            v.decoder.unwrap_or_default(),
            r,
            lv
        );
    }
}
