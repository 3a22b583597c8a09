//! Upstream's built-in (C) decoders that rulesets name with `<plugin_decoder>`, rewritten from
//! their documented behaviour. JSON_Decoder lives in the engine; the others are here.

use crate::event::{FieldKey, Std};
use crate::osregex::OsRegex;

/// A supported non-JSON plugin decoder.
#[derive(Debug)]
pub enum Plugin {
    SonicWall(SonicWall),
}

impl Plugin {
    /// The plugin for a `<plugin_decoder>` name, if supported.
    pub fn by_name(name: &str) -> Option<Plugin> {
        match name {
            "SonicWall_Decoder" => Some(Plugin::SonicWall(SonicWall::new())),
            _ => None,
        }
    }

    /// Decode `log`, appending fields.
    pub fn decode(&self, log: &str, sets: &mut Vec<(FieldKey, String)>) {
        match self {
            Plugin::SonicWall(s) => s.decode(log, sets),
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
