//! journald: follows `journalctl -o json --follow` as a child process, from the persisted cursor.
//!
//! A child process rather than libsystemd bindings: nothing to link, nothing to build, and
//! journalctl already handles journal rotation, vacuuming and file formats across systemd versions.
//! Each entry becomes a classic syslog line (`Mon dd HH:MM:SS host ident[pid]: message`, UTC), the
//! form the decoders expect from syslog.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use super::config::JournaldInput;

#[derive(Debug, PartialEq, Eq)]
pub struct JournalLine {
    pub line: String,
    pub time: Option<i64>,
    pub cursor: Option<String>,
    pub unit: Option<String>,
}

/// A journal field as text: journalctl prints non-UTF-8 values as arrays of bytes.
fn field(v: &Value, k: &str) -> Option<String> {
    match v.get(k)? {
        Value::String(s) => Some(s.clone()),
        Value::Array(a) => {
            let bytes: Vec<u8> = a
                .iter()
                .filter_map(|b| b.as_u64().map(|b| b as u8))
                .collect();
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// One `journalctl -o json` line into the engine's syslog form; `None` for lines that are not an
/// entry object.
pub fn entry_to_line(json: &str) -> Option<JournalLine> {
    let v: Value = serde_json::from_str(json).ok()?;
    if !v.is_object() {
        return None;
    }
    let msg = field(&v, "MESSAGE").unwrap_or_default();
    let usec: Option<i64> = field(&v, "__REALTIME_TIMESTAMP").and_then(|s| s.parse().ok());
    let time = usec.map(|u| u / 1_000_000);
    let ts = time
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .unwrap_or_else(time::OffsetDateTime::now_utc);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let host = field(&v, "_HOSTNAME").unwrap_or_else(|| "localhost".into());
    let ident = field(&v, "SYSLOG_IDENTIFIER")
        .or_else(|| field(&v, "_COMM"))
        .unwrap_or_else(|| "journal".into());
    let pid = field(&v, "SYSLOG_PID").or_else(|| field(&v, "_PID"));
    let mut line = format!(
        "{} {:>2} {:02}:{:02}:{:02} {} {}",
        MONTHS[ts.month() as usize - 1],
        ts.day(),
        ts.hour(),
        ts.minute(),
        ts.second(),
        host,
        ident
    );
    if let Some(p) = pid {
        line.push('[');
        line.push_str(&p);
        line.push(']');
    }
    line.push_str(": ");
    // Multi-line messages stay one event, like a multi-line record of a file.
    line.push_str(msg.trim_end_matches('\n'));
    Some(JournalLine {
        line,
        time,
        cursor: field(&v, "__CURSOR"),
        unit: field(&v, "_SYSTEMD_UNIT"),
    })
}

/// What to save as the position of a journal nobody read an entry from yet: the start time, so
/// that entries written while the agent was stopped are still read after a restart.
pub fn since_marker(now: std::time::SystemTime) -> String {
    let d = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    // Microseconds, as the journal stamps entries: whole seconds would re-read what came earlier
    // in the same second.
    format!("@{}.{:06}", d.as_secs(), d.subsec_micros())
}

/// The journalctl command for `input`, after `cursor` (or from now when there is none).
pub fn command(input: &JournaldInput, cursor: Option<&str>) -> Command {
    let mut c = Command::new("journalctl");
    c.args(["-o", "json", "--follow", "--no-pager", "--quiet"]);
    if let Some(d) = &input.directory {
        c.arg("--directory").arg(d);
    }
    match cursor {
        // A start time saved before any entry was read (see `since_marker`).
        Some(cur) if cur.starts_with('@') => {
            c.args(["--since", cur]);
        }
        Some(cur) => {
            c.arg(format!("--after-cursor={cur}"));
        }
        None => {
            c.args(["--since", "now"]);
        }
    }
    // Matches on one field are ORed by journalctl; `+` ORs the unit and identifier groups, so
    // `units = [a], identifiers = [b]` follows both rather than only entries that are both.
    let mut first = true;
    for u in &input.units {
        c.arg(format!("_SYSTEMD_UNIT={u}"));
        first = false;
    }
    if !input.identifiers.is_empty() {
        if !first {
            c.arg("+");
        }
        for i in &input.identifiers {
            c.arg(format!("SYSLOG_IDENTIFIER={i}"));
        }
    }
    c
}

/// Starts journalctl; every entry goes to `send` until it returns false or journalctl ends.
pub fn spawn(
    input: &JournaldInput,
    cursor: Option<&str>,
    mut send: impl FnMut(JournalLine) -> bool + Send + 'static,
) -> std::io::Result<Child> {
    let mut child = command(input, cursor)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let out = child.stdout.take().expect("piped");
    let err = child.stderr.take().expect("piped");
    std::thread::Builder::new()
        .name("journalctl-err".into())
        .spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                tracing::warn!("journalctl: {l}");
            }
        })?;
    std::thread::Builder::new()
        .name("journalctl".into())
        .spawn(move || {
            let mut r = BufReader::new(out);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                if let Some(l) = entry_to_line(&String::from_utf8_lossy(&buf)) {
                    if !send(l) {
                        break;
                    }
                }
            }
        })?;
    Ok(child)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_entry_becomes_a_syslog_line_with_its_cursor_and_time() {
        let j = r#"{"__CURSOR":"s=1;i=2","__REALTIME_TIMESTAMP":"1709287205000000","_HOSTNAME":"web1","SYSLOG_IDENTIFIER":"sshd","_PID":"77","MESSAGE":"Failed password for root from 10.0.0.1 port 22 ssh2","_SYSTEMD_UNIT":"ssh.service"}"#;
        let l = entry_to_line(j).unwrap();
        assert_eq!(
            l.line,
            "Mar  1 10:00:05 web1 sshd[77]: Failed password for root from 10.0.0.1 port 22 ssh2"
        );
        assert_eq!(l.time, Some(1709287205));
        assert_eq!(l.cursor.as_deref(), Some("s=1;i=2"));
        assert_eq!(l.unit.as_deref(), Some("ssh.service"));
    }

    #[test]
    fn binary_message_is_kept_as_lossy_text() {
        let j = r#"{"MESSAGE":[104,105,255],"SYSLOG_IDENTIFIER":"x"}"#;
        assert!(entry_to_line(j).unwrap().line.ends_with("x: hi\u{fffd}"));
        assert_eq!(entry_to_line("not json"), None);
    }

    #[test]
    fn unit_and_identifier_filters_are_ored_groups() {
        let input = JournaldInput {
            units: vec!["ssh.service".into()],
            identifiers: vec!["sudo".into(), "su".into()],
            directory: None,
            label: None,
        };
        let c = command(&input, Some("s=1"));
        let args: Vec<String> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(args.contains(&"--after-cursor=s=1".to_string()));
        let tail = &args[args.len() - 4..];
        assert_eq!(
            tail,
            [
                "_SYSTEMD_UNIT=ssh.service",
                "+",
                "SYSLOG_IDENTIFIER=sudo",
                "SYSLOG_IDENTIFIER=su"
            ]
        );
    }
}
