//! Debug aid: time each root decoder's prematch over a log file (lines with a matching
//! program name), to find the expensive ones. Usage: prematch_cost LOG DECODER.xml...
use bannin_logrules::{syslog, RulesetBuilder};
use std::time::Instant;
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let log = std::fs::read_to_string(&args[0]).unwrap();
    let mut b = RulesetBuilder::new();
    for p in &args[1..] {
        b.add_xml(p, &std::fs::read(p).unwrap());
    }
    let (rs, _) = b.build();
    let mut cost = vec![0f64; rs.decoders.len()];
    for line in log.lines() {
        let h = syslog::predecode(line);
        let msg = &line[h.log_start..];
        let roots = match h.program {
            Some((a, b)) => rs
                .dec_roots_pname
                .iter()
                .filter(|n| {
                    rs.decoders[n.dec]
                        .program_name
                        .as_ref()
                        .map(|p| p.is_match(&line[a..b]))
                        .unwrap_or(false)
                })
                .collect::<Vec<_>>(),
            None => rs.dec_roots_nopname.iter().collect(),
        };
        for n in roots {
            if let Some(pm) = &rs.decoders[n.dec].prematch {
                let t = Instant::now();
                let _ = pm.find_end(msg);
                cost[n.dec] += t.elapsed().as_secs_f64();
            }
        }
    }
    let mut v: Vec<(f64, usize)> = cost
        .iter()
        .cloned()
        .zip(0..)
        .filter(|x| x.0 > 0.0)
        .collect();
    v.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap());
    for (c, i) in v.iter().take(12) {
        println!(
            "{:8.1} ms  {} {}:{}",
            c * 1000.0,
            rs.decoders[*i].own_name,
            rs.decoders[*i].file,
            rs.decoders[*i].line
        );
    }
}
