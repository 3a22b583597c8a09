//! Debug aid: for each program name given after `--`, list the root decoders whose
//! program_name matches (and whether they have a prematch).
use bannin_logrules::RulesetBuilder;
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sep = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let mut b = RulesetBuilder::new();
    for p in &args[..sep] {
        b.add_xml(p, &std::fs::read(p).unwrap());
    }
    let (rs, _) = b.build();
    println!(
        "pname roots {} nopname roots {}",
        rs.dec_roots_pname.len(),
        rs.dec_roots_nopname.len()
    );
    for prog in &args[(sep + 1).min(args.len())..] {
        let hits: Vec<String> = rs
            .dec_roots_pname
            .iter()
            .filter(|n| {
                rs.decoders[n.dec]
                    .program_name
                    .as_ref()
                    .map(|p| p.is_match(prog))
                    .unwrap_or(false)
            })
            .map(|n| {
                format!(
                    "{}{}",
                    rs.decoders[n.dec].own_name,
                    if rs.decoders[n.dec].prematch.is_some() {
                        "(pm)"
                    } else {
                        ""
                    }
                )
            })
            .collect();
        println!("{prog}: {} {:?}", hits.len(), hits);
    }
}
