//! Sans-IO record framing: bytes read from a log file become records (lines, or multi-line records
//! joined by a start-of-record regex), with a length cap and lossy UTF-8.
//!
//! The framer tracks the file offset where the next record not yet handed out begins
//! ([`Framer::resume_offset`]): that is the offset to persist, so a restart re-reads an incomplete
//! last line or an unfinished multi-line record instead of losing or splitting it.

/// Appended to a record cut at the length cap, so nobody mistakes it for the whole line.
pub fn truncation_marker(kept: usize, total: usize) -> String {
    format!(" [bannin: truncated, {kept} of {total} bytes kept]")
}

pub struct Framer {
    cap: usize,
    multiline: Option<regex::Regex>,
    timeout_ms: u64,
    /// Bytes of the line being read (no newline yet), at most `cap` of them.
    partial: Vec<u8>,
    /// Length of that line so far, including what went past the cap.
    partial_total: usize,
    /// File offset just after the last byte fed.
    consumed: u64,
    record: Option<Pending>,
}

struct Pending {
    text: String,
    /// Bytes of the record in the file (all its lines, newlines included).
    total: usize,
    start: u64,
    last_ms: u64,
    truncated: bool,
}

impl Framer {
    /// A framer whose first byte fed is at file offset `offset`.
    pub fn new(
        cap: usize,
        multiline: Option<regex::Regex>,
        timeout_ms: u64,
        offset: u64,
    ) -> Framer {
        Framer {
            cap: cap.max(1),
            multiline,
            timeout_ms,
            partial: Vec::new(),
            partial_total: 0,
            consumed: offset,
            record: None,
        }
    }

    /// Where reading must restart so that no record is lost or split: the start of the first
    /// record not yet handed out.
    pub fn resume_offset(&self) -> u64 {
        match &self.record {
            Some(r) => r.start,
            None => self.consumed - self.partial_total as u64,
        }
    }

    /// File offset just after the last byte fed.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Forget everything pending and continue at `offset` (a truncated or replaced file).
    pub fn reset(&mut self, offset: u64) {
        self.partial.clear();
        self.partial_total = 0;
        self.record = None;
        self.consumed = offset;
    }

    /// Feed bytes read at [`Framer::consumed`]; every complete record goes to `sink` as
    /// `(text, truncated)`.
    pub fn feed(&mut self, mut bytes: &[u8], now_ms: u64, sink: &mut impl FnMut(&str, bool)) {
        while let Some(i) = memchr::memchr(b'\n', bytes) {
            let chunk = &bytes[..i];
            let total = self.partial_total + i;
            let start = self.consumed - self.partial_total as u64;
            self.consumed += i as u64 + 1;
            if self.partial_total == 0 {
                self.line(chunk, total, start, now_ms, sink);
            } else {
                let room = self.cap.saturating_sub(self.partial.len());
                self.partial
                    .extend_from_slice(&chunk[..chunk.len().min(room)]);
                let line = std::mem::take(&mut self.partial);
                self.partial_total = 0;
                self.line(&line, total, start, now_ms, sink);
                self.partial = line;
                self.partial.clear();
            }
            bytes = &bytes[i + 1..];
        }
        if !bytes.is_empty() {
            let room = self.cap.saturating_sub(self.partial.len());
            self.partial
                .extend_from_slice(&bytes[..bytes.len().min(room)]);
            self.partial_total += bytes.len();
            self.consumed += bytes.len() as u64;
        }
    }

    /// Hands out a multi-line record nobody continued within the timeout.
    pub fn poll(&mut self, now_ms: u64, sink: &mut impl FnMut(&str, bool)) {
        if let Some(r) = &self.record {
            if now_ms.saturating_sub(r.last_ms) >= self.timeout_ms {
                self.flush_record(sink);
            }
        }
    }

    /// The file will not grow any more (rotated away, truncated): hand out everything pending,
    /// including a last line without its newline.
    pub fn finish(&mut self, sink: &mut impl FnMut(&str, bool)) {
        if self.partial_total > 0 {
            let line = std::mem::take(&mut self.partial);
            let (total, start) = (
                self.partial_total,
                self.consumed - self.partial_total as u64,
            );
            self.partial_total = 0;
            self.line(&line, total, start, u64::MAX, sink);
        }
        self.flush_record(sink);
    }

    /// True when a multi-line record waits for its continuation or timeout.
    pub fn has_pending_record(&self) -> bool {
        self.record.is_some()
    }

    fn line(
        &mut self,
        bytes: &[u8],
        total: usize,
        start: u64,
        now_ms: u64,
        sink: &mut impl FnMut(&str, bool),
    ) {
        let kept = bytes.len().min(self.cap);
        let mut bytes = &bytes[..kept];
        let mut shown_total = total;
        if kept == total && bytes.last() == Some(&b'\r') {
            bytes = &bytes[..bytes.len() - 1];
            shown_total -= 1;
        }
        let text = String::from_utf8_lossy(bytes);
        let truncated = kept < total;
        let Some(re) = &self.multiline else {
            if text.is_empty() {
                return;
            }
            if truncated {
                let mut t = text.into_owned();
                t.push_str(&truncation_marker(kept, shown_total));
                sink(&t, true);
            } else {
                sink(&text, false);
            }
            return;
        };
        let starts = re.is_match(&text);
        if starts || self.record.is_none() {
            self.flush_record(sink);
            if text.is_empty() {
                return;
            }
            self.record = Some(Pending {
                text: text.into_owned(),
                total: total + 1,
                start,
                last_ms: now_ms,
                truncated,
            });
            return;
        }
        let cap = self.cap;
        let r = self.record.as_mut().expect("checked above");
        r.total += total + 1;
        r.last_ms = now_ms;
        if r.text.len() >= cap {
            r.truncated = true;
            return;
        }
        r.text.push('\n');
        let room = cap.saturating_sub(r.text.len());
        if text.len() > room {
            let mut cut = room;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            r.text.push_str(&text[..cut]);
            r.truncated = true;
        } else {
            r.text.push_str(&text);
            r.truncated |= truncated;
        }
    }

    fn flush_record(&mut self, sink: &mut impl FnMut(&str, bool)) {
        if let Some(mut r) = self.record.take() {
            if r.truncated {
                let kept = r.text.len();
                r.text
                    .push_str(&truncation_marker(kept, r.total.saturating_sub(1)));
            }
            sink(&r.text, r.truncated);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame(f: &mut Framer, chunks: &[&[u8]]) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        for c in chunks {
            f.feed(c, 0, &mut |t, tr| out.push((t.to_string(), tr)));
        }
        out
    }

    #[test]
    fn lines_split_across_reads_are_joined_and_resume_offset_stays_at_the_incomplete_line() {
        let mut f = Framer::new(1024, None, 1000, 100);
        let out = frame(&mut f, &[b"one\ntw", b"o\r\nthr"]);
        assert_eq!(out, vec![("one".into(), false), ("two".into(), false)]);
        assert_eq!(f.consumed(), 100 + 12);
        assert_eq!(f.resume_offset(), 100 + 9);
        let mut rest = Vec::new();
        f.finish(&mut |t, _| rest.push(t.to_string()));
        assert_eq!(rest, vec!["thr".to_string()]);
        assert_eq!(f.resume_offset(), 112);
    }

    #[test]
    fn long_line_is_cut_at_the_cap_with_a_marker_naming_both_lengths() {
        let mut f = Framer::new(300, None, 1000, 0);
        let long = vec![b'a'; 1000];
        let out = frame(&mut f, &[&long[..400], &long[400..], b"\nnext\n"]);
        assert_eq!(out.len(), 2);
        assert!(out[0].1);
        assert!(out[0].0.starts_with(&"a".repeat(300)));
        assert!(
            out[0]
                .0
                .ends_with("[bannin: truncated, 300 of 1000 bytes kept]"),
            "{}",
            out[0].0
        );
        assert_eq!(out[1], ("next".into(), false));
    }

    #[test]
    fn invalid_utf8_is_kept_as_replacement_characters() {
        let mut f = Framer::new(1024, None, 1000, 0);
        let out = frame(&mut f, &[b"user \xff\xfe root\n"]);
        assert_eq!(out, vec![("user \u{fffd}\u{fffd} root".into(), false)]);
    }

    #[test]
    fn multiline_records_start_at_the_regex_and_end_at_the_next_start_or_timeout() {
        let re = regex::Regex::new(r"^\d{4}-").unwrap();
        let mut f = Framer::new(1024, Some(re), 500, 0);
        let mut out = Vec::new();
        let text = b"2024-01-01 error\n  at a()\n  at b()\n2024-01-02 ok\n";
        f.feed(text, 0, &mut |t, _| out.push(t.to_string()));
        assert_eq!(
            out,
            vec!["2024-01-01 error\n  at a()\n  at b()".to_string()]
        );
        // The second record waits for a continuation: its start is where a restart resumes.
        assert_eq!(
            f.resume_offset(),
            (text.len() - "2024-01-02 ok\n".len()) as u64
        );
        f.poll(499, &mut |t, _| out.push(t.to_string()));
        assert_eq!(out.len(), 1);
        f.poll(500, &mut |t, _| out.push(t.to_string()));
        assert_eq!(out[1], "2024-01-02 ok");
        assert_eq!(f.resume_offset(), text.len() as u64);
    }

    #[test]
    fn multiline_record_longer_than_the_cap_is_marked_truncated() {
        let re = regex::Regex::new(r"^START").unwrap();
        let mut f = Framer::new(256, Some(re), 500, 0);
        let mut input = b"START\n".to_vec();
        for _ in 0..50 {
            input.extend_from_slice(b"continuation line\n");
        }
        input.extend_from_slice(b"START\n");
        let mut out = Vec::new();
        f.feed(&input, 0, &mut |t, tr| out.push((t.to_string(), tr)));
        assert_eq!(out.len(), 1);
        assert!(out[0].1);
        assert!(
            out[0].0.contains("[bannin: truncated, 256 of"),
            "{}",
            out[0].0
        );
    }

    proptest! {
        /// However the bytes are split into reads, the records are the same, and the resume offset
        /// never passes a byte that was not handed out.
        #[test]
        fn chunking_does_not_change_records(
            data in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'x'), Just(0xffu8), Just(b'\r'), any::<u8>()], 0..600),
            cuts in proptest::collection::vec(0usize..600, 0..8),
        ) {
            let mut whole = Framer::new(64, None, 1000, 0);
            let mut a = Vec::new();
            whole.feed(&data, 0, &mut |t, tr| a.push((t.to_string(), tr)));
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort();
            let mut parts = Framer::new(64, None, 1000, 0);
            let mut b = Vec::new();
            let mut prev = 0;
            for c in cuts.into_iter().chain([data.len()]) {
                parts.feed(&data[prev..c], 0, &mut |t, tr| b.push((t.to_string(), tr)));
                prev = c;
            }
            prop_assert_eq!(&a, &b);
            let last_nl = data.iter().rposition(|&c| c == b'\n').map(|i| i + 1).unwrap_or(0);
            prop_assert_eq!(parts.resume_offset(), last_nl as u64);
        }
    }
}
