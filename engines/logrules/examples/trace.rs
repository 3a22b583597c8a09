//! Debug aid: load XML files given as arguments, then print the verdict for each stdin line.
use bannin_logrules::{Engine, RulesetBuilder};
use std::io::BufRead;
use std::sync::Arc;
fn main() {
    let mut b = RulesetBuilder::new();
    for p in std::env::args().skip(1) {
        b.add_xml(&p, &std::fs::read(&p).expect("readable file"));
    }
    let (rs, s) = b.build();
    eprintln!("{s}");
    let mut e = Engine::new(Arc::new(rs));
    for l in std::io::stdin().lock().lines() {
        let v = e.process(&l.unwrap(), 1_700_049_600);
        println!("{v:?}");
    }
}
