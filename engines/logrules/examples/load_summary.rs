//! Prints what a load skipped, for a decoder/rule file list given on the command line.
use bannin_logrules::RulesetBuilder;
fn main() {
    let mut b = RulesetBuilder::new();
    for p in std::env::args().skip(1) {
        let bytes = std::fs::read(&p).expect("readable file");
        b.add_xml(&p, &bytes);
    }
    let (_rs, s) = b.build();
    println!("{s}");
    for k in &s.skipped {
        println!("{k}");
    }
}
