//! Unified text diffs of changed files, for paths with `report_changes`.

/// What became of the diff of one change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffOutcome {
    /// The path does not ask for diffs.
    NotRequested,
    /// The content is secret (`nodiff`): never shown.
    Redacted,
    /// Not text (NUL bytes or invalid UTF-8).
    Binary,
    /// One of the versions is above `diff_size_limit`.
    TooLarge,
    /// The previous content was not kept (first change after baseline without a copy, or copy missing).
    Unavailable,
    Text(String),
}

impl DiffOutcome {
    pub fn status_and_text(&self) -> (&'static str, Option<&str>) {
        match self {
            DiffOutcome::NotRequested => ("not_requested", None),
            DiffOutcome::Redacted => ("redacted", None),
            DiffOutcome::Binary => ("binary", None),
            DiffOutcome::TooLarge => ("too_large", None),
            DiffOutcome::Unavailable => ("unavailable", None),
            DiffOutcome::Text(t) => ("included", Some(t)),
        }
    }
}

/// The diff text itself is capped too, so one rewritten file cannot make a huge event.
pub const MAX_DIFF_TEXT: usize = 16 * 1024;

fn as_text(b: &[u8]) -> Option<&str> {
    if b.contains(&0) {
        return None;
    }
    std::str::from_utf8(b).ok()
}

/// A unified diff (3 lines of context) of `old` -> `new`, or why there is none. The caller has already
/// decided that the path may be diffed at all (see `Policy::diff_allowed`).
pub fn text_diff(
    old: &[u8],
    new: &[u8],
    limit: u64,
    old_name: &str,
    new_name: &str,
) -> DiffOutcome {
    if old.len() as u64 > limit || new.len() as u64 > limit {
        return DiffOutcome::TooLarge;
    }
    let (Some(a), Some(b)) = (as_text(old), as_text(new)) else {
        return DiffOutcome::Binary;
    };
    let diff = similar::TextDiff::from_lines(a, b);
    let mut out = diff
        .unified_diff()
        .context_radius(3)
        .header(old_name, new_name)
        .to_string();
    if out.len() > MAX_DIFF_TEXT {
        let mut cut = MAX_DIFF_TEXT;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("\n... (diff truncated)\n");
    }
    DiffOutcome::Text(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn changed_line_shows_as_minus_plus() {
        let DiffOutcome::Text(t) = text_diff(b"a\nb\nc\n", b"a\nB\nc\n", 1000, "old", "new") else {
            panic!()
        };
        assert!(t.contains("-b\n") && t.contains("+B\n"), "{t}");
        assert!(t.starts_with("--- old\n+++ new\n"), "{t}");
    }

    #[test]
    fn binary_and_oversized_content_gets_no_diff() {
        assert_eq!(text_diff(b"a\0", b"b", 1000, "o", "n"), DiffOutcome::Binary);
        assert_eq!(
            text_diff(b"\xff", b"b", 1000, "o", "n"),
            DiffOutcome::Binary
        );
        assert_eq!(
            text_diff(&[b'a'; 11], b"b", 10, "o", "n"),
            DiffOutcome::TooLarge
        );
    }

    proptest! {
        #[test]
        fn diff_never_panics_and_stays_capped(a in proptest::collection::vec(any::<u8>(), 0..3000),
                                              b in proptest::collection::vec(any::<u8>(), 0..3000)) {
            if let DiffOutcome::Text(t) = text_diff(&a, &b, 1 << 20, "o", "n") {
                prop_assert!(t.len() <= MAX_DIFF_TEXT + 64);
            }
        }
    }
}
