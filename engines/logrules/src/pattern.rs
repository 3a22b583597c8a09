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
        Ok(Pattern { compiled, negate })
    }

    pub fn is_match(&self, s: &str) -> bool {
        let m = match &self.compiled {
            Compiled::OsMatch(m) => m.is_match(s),
            Compiled::OsRegex(r) => r.is_match(s),
            Compiled::Pcre2(r) => r.is_match(s.as_bytes()).unwrap_or(false),
        };
        m != self.negate
    }

    /// Capturing match (negation is ignored: used by decoders only).
    pub fn captures(&self, s: &str) -> Option<Caps> {
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
        match &self.compiled {
            Compiled::OsMatch(m) => m.is_match(s).then_some(0),
            Compiled::OsRegex(r) => r.find_end(s),
            Compiled::Pcre2(r) => r.find(s.as_bytes()).ok()?.map(|m| m.end()),
        }
    }
}
