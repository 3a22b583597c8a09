//! Rule state beyond flowbits: `xbits` (bits per host or host pair across flows, with expiry)
//! and `flowint` (integers per flow).

use bannin_dpi::{Alert, Config, Engine, LoadOptions, RuleSet, RuleSource, Timestamp, Vars};
use std::sync::Arc;

const RULES: &str = r#"alert udp any any -> any 9999 (msg:"mark"; content:"MARK"; xbits:set,seen,track ip_src,expire 10; xbits:noalert; sid:1;)
alert udp any any -> any 9999 (msg:"after mark"; content:"DATA"; xbits:isset,seen,track ip_src; sid:2;)
alert udp any any -> any 9999 (msg:"pair"; content:"PAIR"; xbits:isset,seen,track ip_pair; sid:3;)
alert udp any any -> any 9999 (msg:"count"; content:"CNT"; flowint:n,+,1; noalert; sid:10;)
alert udp any any -> any 9999 (msg:"third"; content:"CNT"; flowint:n,>=,3; sid:11;)
"#;

fn udp(src: [u8; 4], dst: [u8; 4], sport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&[0x08, 0x00]);
    let total = 20 + 8 + payload.len();
    f.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0x40,
        0,
        64,
        17,
        0,
        0,
    ]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&9999u16.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

fn run(frames: &[(u64, Vec<u8>)]) -> Vec<Alert> {
    let vars = Vars::default();
    let rs = RuleSet::load(
        &[RuleSource {
            name: "x.rules",
            text: RULES,
        }],
        &LoadOptions {
            vars: &vars,
            classification: None,
            action_order: &[],
        },
    );
    assert_eq!(rs.stats.loaded, 5, "{:?}", rs.stats.warnings);
    let mut e = Engine::new(Arc::new(rs), Config::default());
    let mut out = Vec::new();
    for (t, f) in frames {
        e.process(
            Timestamp {
                secs: *t,
                micros: 0,
            },
            1,
            f,
            &mut out,
        );
    }
    e.flush(&mut out);
    out
}

const A: [u8; 4] = [10, 0, 0, 1];
const B: [u8; 4] = [10, 0, 0, 2];
const C: [u8; 4] = [10, 0, 0, 3];

#[test]
fn a_host_bit_set_in_one_flow_is_seen_in_another_until_it_expires() {
    let out = run(&[
        (100, udp(A, B, 1000, b"DATA")), // before the mark: no alert
        (101, udp(A, B, 1001, b"MARK")), // sets `seen` for A (noalert)
        (102, udp(A, C, 1002, b"DATA")), // another flow from A: alert
        (103, udp(C, B, 1003, b"DATA")), // another host: no alert
        (120, udp(A, B, 1004, b"DATA")), // expired after 10 s: no alert
    ]);
    let sids: Vec<(u32, u64)> = out.iter().map(|a| (a.signature_id, a.pcap_cnt)).collect();
    assert_eq!(sids, vec![(2, 3)]);
}

#[test]
fn pair_tracking_is_not_satisfied_by_a_source_bit() {
    let out = run(&[(1, udp(A, B, 1000, b"MARK")), (2, udp(A, B, 1001, b"PAIR"))]);
    assert!(out.iter().all(|a| a.signature_id != 3));
}

#[test]
fn flowint_counts_per_flow_and_tests_the_count() {
    let out = run(&[
        (1, udp(A, B, 1000, b"CNT")),
        (1, udp(A, B, 1000, b"CNT")),
        (1, udp(A, C, 1000, b"CNT")), // another flow: its own counter
        (1, udp(A, B, 1000, b"CNT")),
        (1, udp(A, B, 1000, b"CNT")),
    ]);
    let at: Vec<u64> = out
        .iter()
        .filter(|a| a.signature_id == 11)
        .map(|a| a.pcap_cnt)
        .collect();
    assert_eq!(at, vec![4, 5]);
}
