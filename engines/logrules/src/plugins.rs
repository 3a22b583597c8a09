//! Upstream's built-in (C) decoders that rulesets name with `<plugin_decoder>`, rewritten from
//! their documented behaviour. JSON_Decoder lives in the engine; the others are here.

use crate::event::{FieldKey, Std};
use crate::osregex::OsRegex;

/// A supported non-JSON plugin decoder.
#[derive(Debug)]
pub enum Plugin {
    SonicWall(SonicWall),
    /// OpenBSD pf log lines.
    Pf,
    /// Symantec Web Security CSV-like records.
    SymantecWs,
}

impl Plugin {
    /// The plugin for a `<plugin_decoder>` name, if supported.
    pub fn by_name(name: &str) -> Option<Plugin> {
        match name {
            "SonicWall_Decoder" => Some(Plugin::SonicWall(SonicWall::new())),
            "PF_Decoder" => Some(Plugin::Pf),
            "SymantecWS_Decoder" => Some(Plugin::SymantecWs),
            _ => None,
        }
    }

    /// Decode `log`, appending fields.
    pub fn decode(&self, log: &str, sets: &mut Vec<(FieldKey, String)>) {
        match self {
            Plugin::SonicWall(s) => s.decode(log, sets),
            Plugin::Pf => pf_decode(log, sets),
            Plugin::SymantecWs => symantec_ws_decode(log, sets),
        }
    }
}

/// OpenBSD pf (`... rule 3/(match) pass out on xl0: 192.168.2.10.1514 > 192.168.2.190.1030:
/// udp 73`): action (pass/block), addresses with the port split off the fifth dotted part,
/// and the protocol (UDP, ICMP, else TCP). Fields are set as far as the line parses, like
/// upstream's decoder.
fn pf_decode(log: &str, sets: &mut Vec<(FieldKey, String)>) {
    let split_port = |hostport: &str| -> (String, Option<String>) {
        // "a.b.c.d.port": the fourth dot separates the port.
        match hostport.match_indices('.').nth(3) {
            Some((i, _)) => (
                hostport[..i].to_string(),
                Some(hostport[i + 1..].to_string()),
            ),
            None => (hostport.to_string(), None),
        }
    };
    let Some(p) = log.find(')') else { return };
    let Some(rest) = log[p + 1..].strip_prefix(' ') else {
        return;
    };
    let action = match rest.as_bytes().first() {
        Some(b'p') => "pass",
        Some(b'b') => "block",
        _ => return,
    };
    sets.push((FieldKey::Std(Std::Action), action.to_string()));
    let Some(c) = rest.find(':') else { return };
    let Some(rest) = rest[c + 1..].strip_prefix(' ') else {
        return;
    };
    let Some(sp) = rest.find(' ') else { return };
    let (src, sport) = split_port(&rest[..sp]);
    sets.push((FieldKey::Std(Std::SrcIp), src));
    if let Some(pt) = sport {
        sets.push((FieldKey::Std(Std::SrcPort), pt));
    }
    let Some(rest) = rest[sp + 1..].strip_prefix("> ") else {
        return;
    };
    let Some(c) = rest.find(':') else { return };
    let (dst, dport) = split_port(&rest[..c]);
    sets.push((FieldKey::Std(Std::DstIp), dst));
    if let Some(pt) = dport {
        sets.push((FieldKey::Std(Std::DstPort), pt));
    }
    let proto = match rest[c + 1..].trim_start().as_bytes().first() {
        None => return,
        Some(b'u') => "UDP",
        Some(b'i') => "ICMP",
        Some(_) => "TCP",
    };
    sets.push((FieldKey::Std(Std::Protocol), proto.to_string()));
}

/// Symantec Web Security (`20070717,73614,1=5,11=1.2.3.4,60=http://x/,10=userX,2=27`): the
/// first `10=` is dstuser, `11=` srcip, `60=` url; an entry starting `2=` or `3=` gives id as
/// upstream takes it (up to 9 bytes from the entry start, commas included).
fn symantec_ws_decode(log: &str, sets: &mut Vec<(FieldKey, String)>) {
    let b = log.as_bytes();
    let Some(first) = log.find(',') else { return };
    let mut i = first + 1;
    let (mut user, mut ip, mut url, mut id) = (false, false, false, false);
    let value = |from: usize, max: usize| -> (String, usize) {
        let mut j = from;
        while j < b.len() && j - from < max && b[j] != b',' {
            j += 1;
        }
        (String::from_utf8_lossy(&b[from..j]).into_owned(), j)
    };
    loop {
        let rest = &b[i..];
        let mut end = i;
        if rest.starts_with(b"10=") {
            let (v, e) = value(i + 3, 128);
            end = e;
            if !user {
                sets.push((FieldKey::Std(Std::DstUser), v));
                user = true;
            }
        } else if rest.starts_with(b"11=") {
            let (v, e) = value(i + 3, 128);
            end = e;
            if !ip {
                sets.push((FieldKey::Std(Std::SrcIp), v));
                ip = true;
            }
        } else if rest.starts_with(b"60=") {
            let (v, e) = value(i + 3, 1024);
            end = e;
            if !url {
                sets.push((FieldKey::Std(Std::Url), v));
                url = true;
            }
        } else if rest.starts_with(b"3=") || rest.starts_with(b"2=") {
            end = (i + 9).min(b.len());
            if !id {
                let v = String::from_utf8_lossy(&b[i..end]).into_owned();
                sets.push((FieldKey::Std(Std::Id), v));
                id = true;
            }
        }
        match b[end..].iter().position(|&c| c == b',') {
            Some(p) => i = end + p + 1,
            None => return,
        }
    }
}

/// SonicWall firewall syslog (`pri=N c=N m=N ... src=IP:PORT:IF dst=IP:PORT:IF proto=P/..`):
/// priority as `status`, message id as `id`, addresses and ports, protocol, and for the message
/// ids upstream knows, the firewall `action` (pass/drop/close) or, for web proxy messages
/// (m=97), the HTTP result as `id` and `dstname`+`arg` as `url`.
#[derive(Debug)]
pub struct SonicWall {
    prid: OsRegex,
    sdip: OsRegex,
    proxy: OsRegex,
}

impl SonicWall {
    fn new() -> SonicWall {
        // These literal patterns always compile.
        SonicWall {
            prid: OsRegex::new(r"pri=(\d) c=(\d+) m=(\d+) ").expect("valid pattern"),
            sdip: OsRegex::new(r"src=(\d+.\d+.\d+.\d+):(\d+):\S+ dst=(\d+.\d+.\d+.\d+):(\d+):")
                .expect("valid pattern"),
            proxy: OsRegex::new(r"result=(\d+) dstname=(\S+) arg=(\S+)$").expect("valid pattern"),
        }
    }

    fn decode(&self, log: &str, sets: &mut Vec<(FieldKey, String)>) {
        let g = |s: &str, m: &crate::osregex::RegexMatch, i: usize| -> Option<String> {
            m.groups.get(i).map(|&(a, b)| s[a..b].to_string())
        };
        let Some(m) = self.prid.captures(log) else {
            return;
        };
        let (Some(status), Some(_cat), Some(id)) = (g(log, &m, 0), g(log, &m, 1), g(log, &m, 2))
        else {
            return;
        };
        sets.push((FieldKey::Std(Std::Status), status));
        sets.push((FieldKey::Std(Std::Id), id.clone()));
        let rest = &log[m.end.min(log.len())..];
        let Some(m2) = self.sdip.captures(rest) else {
            return;
        };
        let vals: Vec<Option<String>> = (0..4).map(|i| g(rest, &m2, i)).collect();
        if vals.iter().any(|v| v.is_none()) {
            return;
        }
        for (k, v) in [Std::SrcIp, Std::SrcPort, Std::DstIp, Std::DstPort]
            .into_iter()
            .zip(vals)
        {
            sets.push((FieldKey::Std(k), v.unwrap_or_default()));
        }
        let after = &rest[m2.end.min(rest.len())..];
        let tail = after.find(' ').map(|i| &after[i + 1..]);
        if let Some(p) = tail.and_then(|t| t.strip_prefix("proto=")) {
            let proto: String = p
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() && *c != '/')
                .take(6)
                .collect();
            sets.push((FieldKey::Std(Std::Protocol), proto));
        }
        let action = match id.as_str() {
            "98" | "597" | "598" => Some("pass"),
            "38" | "36" | "173" | "174" | "37" => Some("drop"),
            "537" => Some("close"),
            _ => None,
        };
        if let Some(a) = action {
            sets.push((FieldKey::Std(Std::Action), a.to_string()));
        }
        if id == "97" {
            if let Some(m3) = tail.and_then(|t| self.proxy.captures(t).map(|m| (t, m))) {
                let (t, m3) = m3;
                if let Some(code) = g(t, &m3, 0) {
                    sets.push((FieldKey::Std(Std::Id), code));
                }
                if let (Some(host), Some(arg)) = (g(t, &m3, 1), g(t, &m3, 2)) {
                    sets.push((FieldKey::Std(Std::Url), format!("{host}{arg}")));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(p: &Plugin, log: &str) -> Vec<(String, String)> {
        let mut sets = Vec::new();
        p.decode(log, &mut sets);
        sets.into_iter()
            .map(|(k, v)| (k.name().to_string(), v))
            .collect()
    }

    #[test]
    fn pf_fields() {
        let p = Plugin::by_name("PF_Decoder").unwrap();
        let f = fields(&p, "Mar 30 15:54:22.171929 rule 3/(match) pass out on xl0: 192.168.2.10.1514 > 192.168.2.190.1030:  udp 73");
        let want: Vec<(String, String)> = [
            ("action", "pass"),
            ("srcip", "192.168.2.10"),
            ("srcport", "1514"),
            ("dstip", "192.168.2.190"),
            ("dstport", "1030"),
            ("protocol", "UDP"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(f, want);
        let f = fields(&p, "Mar 30 17:47:40.390143 rule 2/(match) block in on lo0: 127.0.0.1 > 127.0.0.1: icmp: echo reply");
        assert!(f.contains(&("action".into(), "block".into())));
        assert!(f.contains(&("protocol".into(), "ICMP".into())));
        assert!(!f.iter().any(|(k, _)| k == "srcport"));
        assert!(fields(&p, "no parenthesis here").is_empty());
    }

    #[test]
    fn symantec_ws_fields() {
        let p = Plugin::by_name("SymantecWS_Decoder").unwrap();
        let f = fields(&p, "20070717,73614,1=5,11=1.2.3.4,1106=News,60=http://news.bbc.co.uk/,10=userX,1000=212.58.240.42,2=27");
        let want: Vec<(String, String)> = [
            ("srcip", "1.2.3.4"),
            ("url", "http://news.bbc.co.uk/"),
            ("dstuser", "userX"),
            ("id", "2=27"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(f, want);
        let f = fields(&p, "20070717,73613,1=5,11=10.1.1.3,10=userc,3=1,2=1");
        assert!(f.contains(&("id".into(), "3=1,2=1".into())));
    }

    proptest::proptest! {
        #[test]
        fn plugins_never_panic(s in "[ -~]{0,80}") {
            for n in ["PF_Decoder", "SonicWall_Decoder", "SymantecWS_Decoder"] {
                let _ = fields(&Plugin::by_name(n).unwrap(), &s);
            }
        }
    }

    #[test]
    fn sonicwall_fields() {
        let p = Plugin::by_name("SonicWall_Decoder").unwrap();
        let mut sets = Vec::new();
        p.decode(
            r#"id=firewall sn=000SERIAL time="2007-01-03 14:48:06" fw=1.1.1.1 pri=6 c=262144 m=98 msg="Connection Opened" n=23419 src=2.2.2.2:36701:WAN dst=1.1.1.1:50000:WAN proto=tcp/50000"#,
            &mut sets,
        );
        let get = |s: Std| {
            sets.iter()
                .rev()
                .find(|(k, _)| *k == FieldKey::Std(s))
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get(Std::Status), Some("6"));
        assert_eq!(get(Std::Id), Some("98"));
        assert_eq!(get(Std::SrcIp), Some("2.2.2.2"));
        assert_eq!(get(Std::DstPort), Some("50000"));
        assert_eq!(get(Std::Protocol), Some("tcp"));
        assert_eq!(get(Std::Action), Some("pass"));
        let mut none = Vec::new();
        p.decode("garbage pri=x", &mut none);
        assert!(none.is_empty());
    }
}
