//! Syslog header pre-decoding: timestamp, hostname, program name and pid, in the formats
//! OSSEC/Wazuh recognise. What is not a header stays part of the message.

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Header {
    pub log_start: usize,
    pub hostname: Option<(usize, usize)>,
    pub program: Option<(usize, usize)>,
    pub pid: Option<(usize, usize)>,
    /// (year if present, month 1-12, day, hour, minute, second)
    pub time: Option<(Option<i32>, u32, u32, u32, u32, u32)>,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn month(b: &[u8]) -> Option<u32> {
    if b.len() < 3 {
        return None;
    }
    MONTHS
        .iter()
        .position(|m| m.as_bytes().eq_ignore_ascii_case(&b[..3]))
        .map(|i| i as u32 + 1)
}

fn num(b: &[u8]) -> Option<u32> {
    let s = std::str::from_utf8(b).ok()?.trim_start();
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn hms(b: &[u8]) -> Option<(u32, u32, u32)> {
    if b.len() >= 8 && b[2] == b':' && b[5] == b':' {
        Some((num(&b[0..2])?, num(&b[3..5])?, num(&b[6..8])?))
    } else {
        None
    }
}

/// Parse the timestamp at the start of the line; returns the time and the offset after it
/// (pointing at the separating space).
fn timestamp(b: &[u8]) -> Option<((Option<i32>, u32, u32, u32, u32, u32), usize)> {
    // "Mmm dd hh:mm:ss" with optional ".fraction" and optional " yyyy"
    if b.len() >= 16 && b[3] == b' ' && b[6] == b' ' {
        if let (Some(mo), Some(d), Some((h, mi, s))) = (month(b), num(&b[4..6]), hms(&b[7..])) {
            let mut i = 15;
            if b.get(i) == Some(&b'.') {
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            let mut year = None;
            if b.len() >= i + 5
                && b[i] == b' '
                && b[i + 1..i + 5].iter().all(u8::is_ascii_digit)
                && b.get(i + 5) == Some(&b' ')
            {
                year = num(&b[i + 1..i + 5]).map(|y| y as i32);
                i += 5;
            }
            return Some(((year, mo, d, h, mi, s), i));
        }
    }
    // "yyyy Mmm dd hh:mm:ss"
    if b.len() >= 21 && b[4] == b' ' && b[..4].iter().all(u8::is_ascii_digit) && b[8] == b' ' {
        if let (Some(y), Some(mo), Some(d), Some((h, mi, s))) =
            (num(&b[..4]), month(&b[5..]), num(&b[9..11]), hms(&b[12..]))
        {
            return Some(((Some(y as i32), mo, d, h, mi, s), 20));
        }
    }
    // proftpd 1.3.5 "yyyy-mm-dd hh:mm:ss,mmm"
    if b.len() > 24 && b[4] == b'-' && b[7] == b'-' && b[10] == b' ' && b[19] == b',' {
        if let (Some(y), Some(mo), Some(d), Some((h, mi, s))) =
            (num(&b[..4]), num(&b[5..7]), num(&b[8..10]), hms(&b[11..]))
        {
            if b.get(23) == Some(&b' ') {
                return Some(((Some(y as i32), mo, d, h, mi, s), 23));
            }
        }
    }
    // "yyyy:mm:dd-hh:mm:ss" (no separator needed after it)
    if b.len() > 20 && b[4] == b':' && b[7] == b':' && b[10] == b'-' && b[13] == b':' {
        if let (Some(y), Some(mo), Some(d), Some((h, mi, s))) =
            (num(&b[..4]), num(&b[5..7]), num(&b[8..10]), hms(&b[11..]))
        {
            return Some(((Some(y as i32), mo, d, h, mi, s), 19));
        }
    }
    // ISO 8601 "yyyy-mm-ddThh:mm:ss[.frac]+hh:mm" (a bare 'Z' is not a header upstream), or
    // with a space instead of the 'T'
    // when a fraction and a zone follow (macOS unified log).
    if b.len() >= 20 && b[4] == b'-' && b[7] == b'-' && (b[10] == b'T' || b[10] == b' ') {
        if let (Some(y), Some(mo), Some(d), Some((h, mi, s))) =
            (num(&b[..4]), num(&b[5..7]), num(&b[8..10]), hms(&b[11..]))
        {
            let mut i = 19;
            let mut frac = false;
            if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
                i += 1;
                frac = true;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            let mut zone = false;
            if matches!(b.get(i), Some(b'+') | Some(b'-')) {
                if b.len() >= i + 6 && b[i + 3] == b':' {
                    i += 6;
                    zone = true;
                } else if b.len() >= i + 5 && b[i + 1..i + 5].iter().all(u8::is_ascii_digit) {
                    i += 5;
                    zone = true;
                }
            }
            if b.get(i) == Some(&b' ') && (b[10] == b'T' || (frac && zone)) {
                return Some(((Some(y as i32), mo, d, h, mi, s), i));
            }
        }
    }
    None
}

fn host_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'@' | b':' | b'/')
}

fn prog_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'/' | b'(' | b')' | b'@')
}

/// Try "prog[pid]: " or "prog: " at `i`; returns (program span, pid span, message start).
fn program_at(b: &[u8], i: usize) -> Option<((usize, usize), Option<(usize, usize)>, usize)> {
    let mut j = i;
    while j < b.len() && prog_char(b[j]) {
        j += 1;
    }
    if j == i {
        return None;
    }
    let prog = (i, j);
    let mut pid = None;
    if b.get(j) == Some(&b'[') {
        let k0 = j + 1;
        let mut k = k0;
        while k < b.len() && b[k] != b']' && b[k] != b' ' {
            k += 1;
        }
        if b.get(k) != Some(&b']') {
            return None;
        }
        pid = Some((k0, k));
        j = k + 1;
        // "prog[pid] msg" (no colon) is a program too.
        if b.get(j) == Some(&b' ') {
            return Some((prog, pid, j + 1));
        }
    }
    if b.get(j) != Some(&b':') {
        return None;
    }
    j += 1;
    // "prog[pid]:msg" without the space is accepted too.
    if b.get(j) == Some(&b' ') {
        j += 1;
    }
    Some((prog, pid, j))
}

/// Solaris adds "[ID 123456 facility.level] " after the program name.
fn skip_solaris_id(b: &[u8], i: usize) -> usize {
    if b[i.min(b.len())..].starts_with(b"[ID ") {
        if let Some(e) = b[i..].iter().position(|&c| c == b']') {
            let j = i + e + 1;
            if b.get(j) == Some(&b' ') {
                return j + 1;
            }
        }
    }
    i
}

/// Timestamps some daemons write at the start of the message, which upstream strips:
/// Apache 2.2 "[Wed Dec 13 06:59:54 2013] " and snort fast "10/20-20:43:32.334621  ".
fn message_stamp(b: &[u8]) -> Option<usize> {
    let digits = |r: std::ops::Range<usize>| b.get(r).map(|x| x.iter().all(u8::is_ascii_digit));
    // squid "1140804070.368  11623 ..." (epoch seconds): the message starts at the duration.
    if b.len() > 32
        && b[0] == b'1'
        && digits(1..4) == Some(true)
        && b[10] == b'.'
        && b[13].is_ascii_digit()
        && b[14] == b' '
        && (b[21] == b' ' || b[22] == b' ')
    {
        let mut i = 14;
        while b.get(i) == Some(&b' ') {
            i += 1;
        }
        return Some(i);
    }
    // xferlog "Mon Apr 17 18:27:14 2006 1 64.160.42.130"
    if b.len() > 28
        && b[3] == b' '
        && b[7] == b' '
        && b[10] == b' '
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b' '
        && b[24] == b' '
        && b[26] == b' '
    {
        return Some(24);
    }
    // suricata fast.log "01/28/1979-09:13:16.240702  [**]"
    if b.len() > 28
        && b[2] == b'/'
        && b[5] == b'/'
        && b[10] == b'-'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[26] == b' '
    {
        return Some(28);
    }
    if b.len() > 27
        && b[0] == b'['
        && b[4] == b' '
        && b[8] == b' '
        && b[25] == b']'
        && b[26] == b' '
    {
        if month(&b[5..]).is_some() && hms(&b[12..]).is_some() {
            return Some(27);
        }
    }
    if b.len() > 16
        && b[2] == b'/'
        && b[5] == b'-'
        && b[8] == b':'
        && b[11] == b':'
        && b[14] == b'.'
    {
        let mut i = 15;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if b.get(i) == Some(&b' ') {
            while b.get(i) == Some(&b' ') {
                i += 1;
            }
            return Some(i);
        }
    }
    None
}

/// Pre-decode one line.
pub fn predecode(line: &str) -> Header {
    let b = line.as_bytes();
    let mut h = Header::default();
    let Some((t, mut i)) = timestamp(b) else {
        if let Some(n) = message_stamp(b) {
            h.log_start = n;
        }
        return h;
    };
    h.time = Some(t);
    // single separating space, plus the extra one some daemons emit
    i += 1;
    if b.get(i) == Some(&b' ') {
        i += 1;
    }
    h.log_start = i.min(b.len());
    let mut j = i;
    while j < b.len() && host_char(b[j]) {
        j += 1;
    }
    // Without a valid hostname the message starts right after the timestamp.
    if j == i || b.get(j) != Some(&b' ') {
        return h;
    }
    let host = (i, j);
    // "host:" is a program name without hostname only when followed by a space.
    if b[j - 1] == b':' {
        h.program = Some((i, j - 1));
        h.log_start = skip_solaris_id(b, j + 1);
        return h;
    }
    h.hostname = Some(host);
    h.log_start = j + 1;
    if let Some((prog, pid, start)) = program_at(b, j + 1) {
        h.program = Some(prog);
        h.pid = pid;
        h.log_start = skip_solaris_id(b, start);
    }
    h
}

/// Days since the Unix epoch for a civil date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

pub fn year_of(unix: i64) -> i64 {
    let days = unix.div_euclid(86400);
    // inverse of days_from_civil, year only
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    yoe + era * 400 + if m <= 2 { 1 } else { 0 }
}

/// Unix time of a header timestamp; a year-less syslog time is placed in the year of `now`,
/// as upstream does (no guessing across New Year, so a replay orders events as upstream did).
pub fn to_unix(t: (Option<i32>, u32, u32, u32, u32, u32), now: i64) -> i64 {
    let (y, mo, d, h, mi, s) = t;
    let y = y.map(|y| y as i64).unwrap_or_else(|| year_of(now));
    days_from_civil(y, mo, d) * 86400 + (h * 3600 + mi * 60 + s) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(line: &str) -> (Option<&str>, Option<&str>, &str) {
        let h = predecode(line);
        (
            h.hostname.map(|(a, b)| &line[a..b]),
            h.program.map(|(a, b)| &line[a..b]),
            &line[h.log_start..],
        )
    }

    #[test]
    fn classic_header() {
        assert_eq!(
            parts("Feb 22 13:22:27 db01 sshd[32112]: Invalid user git from 1.2.3.4"),
            (Some("db01"), Some("sshd"), "Invalid user git from 1.2.3.4")
        );
        assert_eq!(
            parts("Aug  3 01:55:07 fw1 postfix/smtpd[35305]: NOQUEUE"),
            (Some("fw1"), Some("postfix/smtpd"), "NOQUEUE")
        );
        assert_eq!(
            parts("Mar 24 15:28:16 bastion sudo:     bob : TTY=pts/3"),
            (Some("bastion"), Some("sudo"), "    bob : TTY=pts/3")
        );
    }

    #[test]
    fn iso_and_no_header() {
        assert_eq!(
            parts("2024-01-02T03:04:05.123+00:00 host prog: msg"),
            (Some("host"), Some("prog"), "msg")
        );
        assert_eq!(parts("plain text line"), (None, None, "plain text line"));
    }

    #[test]
    fn header_without_program_keeps_message() {
        assert_eq!(
            parts("Feb 22 13:22:27 db01 some free text"),
            (Some("db01"), None, "some free text")
        );
    }

    #[test]
    fn civil_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(year_of(1_700_000_000), 2023);
        let t = to_unix((None, 11, 14, 22, 13, 20), 1_700_000_000);
        assert_eq!(t, 1_700_000_000);
    }

    proptest::proptest! {
        #[test]
        fn predecode_never_panics(s in "[ -~]{0,60}") {
            let h = predecode(&s);
            assert!(h.log_start <= s.len());
        }
    }
}
