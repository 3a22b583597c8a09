//! One pattern of any supported dialect (OS_Match, OS_Regex, PCRE2), with negation.

use crate::osregex::{OsMatch, OsRegex, PatternError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    OsMatch,
    OsRegex,
    Pcre2,
    /// OSSEC's `*_pcre2` tags compile case-insensitively, like the OS_* patterns they replace.
    Pcre2Caseless,
}

impl Dialect {
    pub fn from_type_attr(v: &str) -> Option<Dialect> {
        match v.trim().to_ascii_lowercase().as_str() {
            "osmatch" | "sregex" => Some(Dialect::OsMatch),
            "osregex" => Some(Dialect::OsRegex),
            "pcre2" => Some(Dialect::Pcre2),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub enum Compiled {
    OsMatch(OsMatch),
    OsRegex(OsRegex),
    Pcre2(pcre2::bytes::Regex),
}

/// A compiled pattern plus its `negate="yes"` flag.
#[derive(Debug)]
pub struct Pattern {
    pub compiled: Compiled,
    pub negate: bool,
    /// Equivalent literal form used for plain yes/no matching when the pattern has no
    /// regex syntax at all (most rule patterns): a substring scan beats a regex call.
    fast: Option<LiteralSet>,
    /// A literal every match must start with, checked before calling the regex engine.
    prefix: Option<(Vec<u8>, bool)>,
}

#[derive(Debug)]
struct LiteralSet {
    pieces: Vec<(Vec<u8>, bool, bool)>, // (literal, anchored at start, anchored at end)
    caseless: bool,
    /// SIMD substring finders for the unanchored pieces (literal already case-folded).
    finders: Vec<memchr::memmem::Finder<'static>>,
}

impl LiteralSet {
    /// Match against a haystack that is already lower-cased (caseless sets only).
    fn is_match_lower(&self, lower: &[u8]) -> bool {
        let mut fi = 0;
        for (lit, begin, end) in &self.pieces {
            let hit = match (begin, end) {
                (true, true) => lower == &lit[..],
                (true, false) => lower.starts_with(lit),
                (false, true) => lower.ends_with(lit),
                (false, false) => {
                    let f = &self.finders[fi];
                    fi += 1;
                    f.find(lower).is_some()
                }
            };
            if hit {
                return true;
            }
        }
        false
    }

    fn is_match(&self, hay: &[u8]) -> bool {
        let eq = |a: &[u8], b: &[u8]| {
            if self.caseless {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        self.pieces
            .iter()
            .any(|(lit, begin, end)| match (begin, end) {
                (true, true) => hay.len() == lit.len() && eq(hay, lit),
                (true, false) => hay.len() >= lit.len() && eq(&hay[..lit.len()], lit),
                (false, true) => hay.len() >= lit.len() && eq(&hay[hay.len() - lit.len()..], lit),
                (false, false) => {
                    if self.caseless {
                        crate::osregex::contains_ci(hay, lit)
                    } else {
                        lit.is_empty() || hay.windows(lit.len()).any(|w| w == &lit[..])
                    }
                }
            })
    }
}

/// Characters that are plain literals in both PCRE2 and OS_Regex.
fn plain(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b' ' | b'_'
                | b'-'
                | b'/'
                | b':'
                | b'='
                | b','
                | b'@'
                | b'<'
                | b'>'
                | b'"'
                | b'\''
                | b'%'
                | b'#'
                | b'!'
                | b'&'
                | b'~'
                | b';'
                | b'`'
        )
}

/// If `src` is only literals, `|`, and `^`/`$` anchors, return it as a literal set.
fn literal_form(src: &str, dialect: Dialect) -> Option<LiteralSet> {
    let caseless = !matches!(dialect, Dialect::Pcre2);
    let mut pieces = Vec::new();
    for alt in src.split('|') {
        let mut b = alt.as_bytes();
        let begin = b.first() == Some(&b'^');
        if begin {
            b = &b[1..];
        }
        let end = b.last() == Some(&b'$');
        if end {
            b = &b[..b.len() - 1];
        }
        // OS_Regex takes '.' literally; PCRE2 does not.
        let ok = b
            .iter()
            .all(|&c| plain(c) || (c == b'.' && dialect == Dialect::OsRegex));
        if !ok || b.is_empty() {
            return None;
        }
        let lit = if caseless {
            b.to_ascii_lowercase()
        } else {
            b.to_vec()
        };
        pieces.push((lit, begin, end));
    }
    let finders = pieces
        .iter()
        .filter(|(_, b, e)| !b && !e)
        .map(|(l, _, _)| memchr::memmem::Finder::new(l).into_owned())
        .collect();
    Some(LiteralSet {
        pieces,
        caseless,
        finders,
    })
}

/// A literal prefix required by an anchored, alternation-free pattern.
fn required_prefix(src: &str, dialect: Dialect) -> Option<(Vec<u8>, bool)> {
    if dialect == Dialect::OsMatch || src.contains('|') {
        return None;
    }
    let b = src.as_bytes().strip_prefix(b"^")?;
    let mut n = 0;
    while n < b.len()
        && (plain(b[n]) && b[n] != b'\\' || (b[n] == b'.' && dialect == Dialect::OsRegex))
    {
        n += 1;
    }
    // A following quantifier makes the last literal optional (PCRE2).
    if n < b.len() && matches!(b[n], b'?' | b'*' | b'+' | b'{') && dialect != Dialect::OsRegex {
        n = n.saturating_sub(1);
    }
    if n == 0 {
        return None;
    }
    let caseless = dialect != Dialect::Pcre2;
    let p = if caseless {
        b[..n].to_ascii_lowercase()
    } else {
        b[..n].to_vec()
    };
    Some((p, caseless))
}

/// Result of a capturing match: end offset (one past the match) and the groups.
pub struct Caps {
    pub end: usize,
    pub groups: Vec<Option<(usize, usize)>>,
}

impl Pattern {
    pub fn new(src: &str, dialect: Dialect, negate: bool) -> Result<Pattern, PatternError> {
        let compiled = match dialect {
            Dialect::OsMatch => Compiled::OsMatch(OsMatch::new(src)?),
            Dialect::OsRegex => Compiled::OsRegex(OsRegex::new(src)?),
            Dialect::Pcre2 | Dialect::Pcre2Caseless => {
                let mut b = pcre2::bytes::RegexBuilder::new();
                b.jit_if_available(true)
                    .utf(false)
                    .caseless(dialect == Dialect::Pcre2Caseless);
                Compiled::Pcre2(
                    b.build(src)
                        .map_err(|e| PatternError(format!("PCRE2: {e}")))?,
                )
            }
        };
        let fast = if dialect == Dialect::OsMatch {
            None
        } else {
            literal_form(src, dialect)
        };
        let prefix = required_prefix(src, dialect);
        Ok(Pattern {
            compiled,
            negate,
            fast,
            prefix,
        })
    }

    /// Lower-case literals of which at least one occurs in any text this pattern matches
    /// (ASCII case aside), for the per-event literal prefilter; None when there is no such set.
    pub fn required_any(&self) -> Option<Vec<Vec<u8>>> {
        if self.negate {
            return None;
        }
        if let Some(f) = &self.fast {
            if f.pieces.iter().any(|(l, _, _)| l.is_empty()) {
                return None;
            }
            return Some(
                f.pieces
                    .iter()
                    .map(|(l, _, _)| l.to_ascii_lowercase())
                    .collect(),
            );
        }
        match &self.compiled {
            Compiled::OsMatch(m) => m.required_any(),
            Compiled::OsRegex(r) => r.required_any(),
            Compiled::Pcre2(_) => None,
        }
    }

    fn prefix_ok(&self, s: &str) -> bool {
        match &self.prefix {
            None => true,
            Some((p, ci)) => {
                let b = s.as_bytes();
                b.len() >= p.len()
                    && if *ci {
                        b[..p.len()].eq_ignore_ascii_case(p)
                    } else {
                        &b[..p.len()] == &p[..]
                    }
            }
        }
    }

    /// Like [`Pattern::is_match`], given also the ASCII-lower-cased haystack (computed once
    /// per event for the message, which most rules test).
    pub fn is_match_with_lower(&self, s: &str, lower: &[u8]) -> bool {
        match (&self.fast, &self.compiled) {
            (Some(f), _) if f.caseless => f.is_match_lower(lower) != self.negate,
            (None, Compiled::OsMatch(m)) => m.is_match_lower(lower) != self.negate,
            _ => self.is_match(s),
        }
    }

    pub fn is_match(&self, s: &str) -> bool {
        if let Some(f) = &self.fast {
            return f.is_match(s.as_bytes()) != self.negate;
        }
        if !self.prefix_ok(s) {
            return self.negate;
        }
        let m = match &self.compiled {
            Compiled::OsMatch(m) => m.is_match(s),
            Compiled::OsRegex(r) => r.is_match(s),
            Compiled::Pcre2(r) => r.is_match(s.as_bytes()).unwrap_or(false),
        };
        m != self.negate
    }

    /// Capturing match (negation is ignored: used by decoders only).
    pub fn captures(&self, s: &str) -> Option<Caps> {
        if !self.prefix_ok(s) {
            return None;
        }
        match &self.compiled {
            Compiled::OsMatch(m) => {
                if m.is_match(s) {
                    Some(Caps {
                        end: 0,
                        groups: Vec::new(),
                    })
                } else {
                    None
                }
            }
            Compiled::OsRegex(r) => r.captures(s).map(|m| Caps {
                end: m.end,
                groups: m.groups.into_iter().map(Some).collect(),
            }),
            Compiled::Pcre2(r) => {
                let c = r.captures(s.as_bytes()).ok()??;
                let whole = c.get(0)?;
                let groups = (1..c.len())
                    .map(|i| c.get(i).map(|m| (m.start(), m.end())))
                    .collect();
                Some(Caps {
                    end: whole.end(),
                    groups,
                })
            }
        }
    }

    /// End offset of the first match (for prematch offsets).
    pub fn find_end(&self, s: &str) -> Option<usize> {
        if !self.prefix_ok(s) {
            return None;
        }
        match &self.compiled {
            Compiled::OsMatch(m) => m.is_match(s).then_some(0),
            Compiled::OsRegex(r) => r.find_end(s),
            Compiled::Pcre2(r) => r.find(s.as_bytes()).ok()?.map(|m| m.end()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(src: &str, d: Dialect, hay: &str) {
        let p = Pattern::new(src, d, false).unwrap();
        let slow = match &p.compiled {
            Compiled::OsMatch(m) => m.is_match(hay),
            Compiled::OsRegex(r) => r.is_match(hay),
            Compiled::Pcre2(r) => r.is_match(hay.as_bytes()).unwrap(),
        };
        assert_eq!(p.is_match(hay), slow, "{src:?} on {hay:?}");
    }

    #[test]
    fn literal_shortcuts_agree_with_the_regex_engines() {
        for (src, d) in [
            ("Relay access denied", Dialect::Pcre2Caseless),
            ("^Accepted|session opened$", Dialect::Pcre2Caseless),
            ("^sshd", Dialect::Pcre2),
            ("FAILED SU", Dialect::OsRegex),
            ("^a.b", Dialect::OsRegex),
            ("^ab?c", Dialect::Pcre2),
        ] {
            for hay in [
                "relay ACCESS denied x",
                "Accepted pw",
                "sshd",
                "x sshd",
                "failed su",
                "a.bc",
                "axbc",
                "ac",
                "abc",
            ] {
                both(src, d, hay);
            }
        }
    }
}
