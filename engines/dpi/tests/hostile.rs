//! Hostile traffic through the whole engine: arbitrary frames never panic, and floods of
//! half-open flows or fragments stay within the configured caps.

use bannin_dpi::{Config, Engine, LoadOptions, RuleSet, RuleSource, Timestamp, Vars};
use proptest::prelude::*;
use std::sync::Arc;

const RULES: &str = r#"alert tcp any any -> any any (msg:"t"; flow:established,to_server; content:"evil"; sid:1;)
alert http any any -> any any (msg:"h"; http.uri; content:"/x"; pcre:"/x.*y/R"; sid:2;)
alert dns any any -> any any (msg:"d"; dns.query; dotprefix; content:".bad.example"; endswith; sid:3;)
alert tls any any -> any any (msg:"s"; tls.sni; content:"bad"; sid:4;)
alert ip any any -> any any (msg:"i"; byte_test:1,>,200,0; sid:5;)
"#;

fn engine(cfg: Config) -> Engine {
    let vars = Vars::default();
    let rs = RuleSet::load(
        &[RuleSource {
            name: "t.rules",
            text: RULES,
        }],
        &LoadOptions {
            vars: &vars,
            classification: None,
            action_order: &[],
        },
    );
    assert_eq!(rs.stats.loaded, 5, "{:?}", rs.stats.warnings);
    Engine::new(Arc::new(rs), cfg)
}

fn tcp_frame(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&[0x08, 0x00]);
    let total = 20 + 20 + payload.len();
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
        6,
        0,
        0,
    ]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&0u32.to_be_bytes());
    f.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

#[test]
fn syn_flood_is_capped_by_max_flows() {
    let mut e = engine(Config {
        max_flows: 1000,
        ..Config::default()
    });
    let mut out = Vec::new();
    for i in 0..20_000u32 {
        let f = tcp_frame(
            [10, 0, (i >> 8) as u8, i as u8],
            [10, 1, 0, 1],
            1024 + (i % 50000) as u16,
            80,
            i,
            0x02,
            b"",
        );
        e.process(Timestamp { secs: 1, micros: i }, 1, &f, &mut out);
        assert!(
            e.active_flows() <= 1000,
            "flow table grew to {}",
            e.active_flows()
        );
    }
    assert!(e.stats().flows_evicted > 0);
}

#[test]
fn established_session_content_alerts_once() {
    let mut e = engine(Config::default());
    let mut out = Vec::new();
    let (c, s) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    let ts = Timestamp { secs: 1, micros: 0 };
    e.process(
        ts,
        1,
        &tcp_frame(c, s, 4000, 9000, 100, 0x02, b""),
        &mut out,
    );
    e.process(
        ts,
        1,
        &tcp_frame(s, c, 9000, 4000, 500, 0x12, b""),
        &mut out,
    );
    e.process(
        ts,
        1,
        &tcp_frame(c, s, 4000, 9000, 101, 0x10, b""),
        &mut out,
    );
    e.process(
        ts,
        1,
        &tcp_frame(c, s, 4000, 9000, 101, 0x18, b"an evil payload"),
        &mut out,
    );
    // A retransmission of the same bytes must not alert again.
    e.process(
        ts,
        1,
        &tcp_frame(c, s, 4000, 9000, 101, 0x18, b"an evil payload"),
        &mut out,
    );
    e.flush(&mut out);
    assert_eq!(out.iter().filter(|a| a.signature_id == 1).count(), 1);
    assert_eq!(out[0].pcap_cnt, 4);
}

proptest! {
    #[test]
    fn arbitrary_frames_never_panic(frames in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..200), any::<u8>(), any::<u32>()), 1..40)) {
        let mut e = engine(Config { max_flows: 64, ..Config::default() });
        let mut out = Vec::new();
        for (i, (payload, flags, seq)) in frames.iter().enumerate() {
            // Half the frames are well-formed TCP around random payloads, half raw garbage.
            let f = if i % 2 == 0 { tcp_frame([10, 0, 0, 1], [10, 0, 0, 2], 80 + (i % 3) as u16, 80, *seq, *flags, payload) } else { payload.clone() };
            e.process(Timestamp { secs: i as u64, micros: 0 }, if i % 3 == 0 { 1 } else { 101 }, &f, &mut out);
        }
        e.flush(&mut out);
    }
}
