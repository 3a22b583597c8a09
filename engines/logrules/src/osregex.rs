//! OSSEC's own pattern dialects: `OS_Match` (simple case-insensitive substring/anchor lists)
//! and `OS_Regex` (backslash classes with a bounded-backtracking matcher).
//!
//! The OS_Regex matcher reproduces upstream's observable behaviour, including its quirks
//! (lazy class repetition, at most four retry points, the one-level parenthesis rule), because
//! community rules were written and tested against that behaviour, not against a textbook regex.

/// Class codes that stand in the compiled pattern after a backslash.
const C_D: u8 = 1;
const C_W: u8 = 2;
const C_S: u8 = 3;
const C_P: u8 = 4;
const C_LPAREN: u8 = 5;
const C_RPAREN: u8 = 6;
const C_BSLASH: u8 = 7;
const C_ND: u8 = 8;
const C_NW: u8 = 9;
const C_NS: u8 = 10;
const C_ANY: u8 = 11;
const C_TAB: u8 = 12;
const C_DOLLAR: u8 = 13;
const C_PIPE: u8 = 14;
const C_LT: u8 = 15;

const BS: u8 = b'\\';

#[inline]
fn is_w(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'@' || c == b'_'
}

#[inline]
fn is_p(c: u8) -> bool {
    matches!(c, 33..=46 | 58..=63 | b'[' | b']' | b'{' | b'|' | b'}')
}

#[inline]
fn class_match(code: u8, c: u8) -> bool {
    if c == 0 {
        return false;
    }
    match code {
        C_D => c.is_ascii_digit(),
        C_W => is_w(c),
        C_S => c == b' ',
        C_P => is_p(c),
        C_LPAREN => c == b'(',
        C_RPAREN => c == b')',
        C_BSLASH => c == b'\\',
        C_ND => !c.is_ascii_digit(),
        C_NW => !is_w(c),
        C_NS => c != b' ',
        C_ANY => true,
        C_TAB => c == b'\t',
        C_DOLLAR => c == b'$',
        C_PIPE => c == b'|',
        C_LT => c == b'<',
        _ => false,
    }
}

#[inline]
fn is_plus(c: u8) -> bool {
    c == b'+' || c == b'*'
}

/// Error compiling an OSSEC pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(pub String);

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone)]
struct SubRegex {
    /// Pattern bytes, padded with zeros so look-ahead past the end reads a terminator.
    pat: Vec<u8>,
    begin: bool,
    end: bool,
    /// Positions of the parenthesis markers in `pat`.
    closures: Vec<usize>,
    /// A literal run (lower-case) every match of this alternative contains.
    required: Option<RareNeedle>,
    /// For `^`-anchored alternatives, the literal bytes the text must start with.
    prefix: Vec<u8>,
}

impl SubRegex {
    #[inline]
    fn may_match(&self, b: &[u8]) -> bool {
        if !self.prefix.is_empty() {
            return b.len() >= self.prefix.len()
                && b[..self.prefix.len()].eq_ignore_ascii_case(&self.prefix);
        }
        match &self.required {
            Some(r) => r.found_in(b),
            None => true,
        }
    }
}

/// Leading literal bytes of an anchored alternative (up to the first class or group; a byte
/// followed by nothing special is literal in OS_Regex, '+'/'*' only follow a class).
fn anchored_prefix(sub: &SubRegex) -> Vec<u8> {
    if !sub.begin {
        return Vec::new();
    }
    sub.pat
        .iter()
        .take_while(|&&c| c != 0 && c != BS && c != b'(')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// How common a byte is in log text (higher = rarer), to pick the byte a substring search
/// scans for: scanning for a rare byte skips most of the line in one SIMD pass.
fn rarity(c: u8) -> u8 {
    const COMMON: &[u8] = b" etaoinsrhldcumfpgwybvkxjqz";
    let l = c.to_ascii_lowercase();
    if let Some(i) = COMMON.iter().position(|&x| x == l) {
        return i as u8 * 8;
    }
    match c {
        b'0'..=b'9' => 20,
        b':' | b'.' | b'-' | b'/' | b'=' | b',' | b'_' => 24,
        _ => 250,
    }
}

/// A case-insensitive needle searched by its rarest byte.
#[derive(Debug, Clone)]
pub struct RareNeedle {
    lit: Vec<u8>,
    at: usize,
}

impl RareNeedle {
    /// `lit` must already be lower-case.
    pub fn new(lit: Vec<u8>) -> RareNeedle {
        let at = (0..lit.len()).max_by_key(|&i| rarity(lit[i])).unwrap_or(0);
        RareNeedle { lit, at }
    }

    pub fn found_in(&self, hay: &[u8]) -> bool {
        let n = &self.lit;
        if n.is_empty() {
            return true;
        }
        if hay.len() < n.len() {
            return false;
        }
        let c = n[self.at];
        let (a, b) = (c, c.to_ascii_uppercase());
        // Candidate positions of the rare byte, such that the whole needle fits around it.
        let lo = self.at;
        let hi = hay.len() - (n.len() - self.at);
        let mut i = lo;
        while i <= hi {
            match memchr::memchr2(a, b, &hay[i..=hi]) {
                None => return false,
                Some(off) => {
                    let p = i + off;
                    let start = p - self.at;
                    if hay[start..start + n.len()].eq_ignore_ascii_case(n) {
                        return true;
                    }
                    i = p + 1;
                }
            }
        }
        false
    }
}

/// A compiled `OS_Regex` pattern (`|`-separated alternatives).
#[derive(Debug, Clone)]
pub struct OsRegex {
    subs: Vec<SubRegex>,
    max_groups: usize,
}

/// How selective a required literal is: longer is better, and bytes found in almost every
/// log line (separators) count for little.
fn score(lit: &[u8]) -> usize {
    lit.iter()
        .map(|c| {
            if matches!(
                c,
                b' ' | b':' | b'.' | b'-' | b'/' | b'=' | b',' | b'_' | b'[' | b']'
            ) {
                1
            } else {
                4
            }
        })
        .sum()
}

/// The most selective run of plain literal bytes in one alternative of a compiled pattern.
fn longest_literal(sub: &SubRegex) -> Option<Vec<u8>> {
    let p = &sub.pat;
    let mut best: &[u8] = &[];
    let mut start = 0;
    let mut i = 0;
    let end = p.iter().position(|&c| c == 0).unwrap_or(p.len());
    while i <= end {
        let lit = i < end && p[i] != BS && p[i] != b'(';
        if !lit {
            let cand = &p[start..i];
            if score(cand) > score(best) {
                best = cand;
            }
            if i < end && p[i] == BS {
                // skip the class code and any quantifier
                i += 2;
                if i < end && is_plus(p[i]) {
                    i += 1;
                }
                start = i;
                continue;
            }
            start = i + 1;
        }
        i += 1;
    }
    (!best.is_empty()).then(|| best.to_vec())
}

/// Result of an OS_Regex match: byte offset just after the match (as upstream uses for
/// `after_regex`/`after_prematch` offsets) and the capture groups.
#[derive(Debug, Default, Clone)]
pub struct RegexMatch {
    pub end: usize,
    pub groups: Vec<(usize, usize)>,
}

impl OsRegex {
    pub fn new(pattern: &str) -> Result<Self, PatternError> {
        Self::with_case(pattern, false)
    }

    pub fn with_case(pattern: &str, case_sensitive: bool) -> Result<Self, PatternError> {
        let src = pattern.as_bytes();
        if src.len() > 2048 {
            return Err(PatternError("pattern longer than 2048 bytes".into()));
        }
        // First pass: translate escapes to class codes and fold case, as upstream does in place.
        let mut work: Vec<u8> = Vec::with_capacity(src.len());
        let mut i = 0;
        let mut depth = 0i32;
        while i < src.len() {
            let c = src[i];
            if c == BS {
                let code = match src.get(i + 1) {
                    Some(b'd') => C_D,
                    Some(b'w') => C_W,
                    Some(b's') => C_S,
                    Some(b'p') => C_P,
                    Some(b'(') => C_LPAREN,
                    Some(b')') => C_RPAREN,
                    Some(b'\\') => C_BSLASH,
                    Some(b'D') => C_ND,
                    Some(b'W') => C_NW,
                    Some(b'S') => C_NS,
                    Some(b'.') => C_ANY,
                    Some(b't') => C_TAB,
                    Some(b'$') => C_DOLLAR,
                    Some(b'|') => C_PIPE,
                    Some(b'<') => C_LT,
                    Some(o) => {
                        return Err(PatternError(format!(
                            "invalid escape '\\{}' at byte {}",
                            *o as char, i
                        )))
                    }
                    None => return Err(PatternError("pattern ends with a backslash".into())),
                };
                work.push(BS);
                work.push(code);
                i += 2;
                continue;
            }
            let mut c2 = c;
            if c == b'(' {
                depth += 1;
            } else if c == b')' {
                c2 = b'(';
                depth -= 1;
            }
            if depth != 0 && depth != 1 {
                return Err(PatternError(
                    "only one level of parentheses is allowed".into(),
                ));
            }
            if !case_sensitive {
                c2 = c2.to_ascii_lowercase();
            }
            if c2 == b'|' && depth != 0 {
                return Err(PatternError("'|' inside parentheses".into()));
            }
            work.push(c2);
            i += 1;
        }
        if depth != 0 {
            return Err(PatternError("unbalanced parentheses".into()));
        }
        // Second pass: split alternatives on unescaped '|'.
        let mut subs = Vec::new();
        let mut start = 0;
        let mut j = 0;
        let mut max_groups = 0;
        loop {
            let at_end = j >= work.len();
            if at_end || work[j] == b'|' {
                let mut piece = &work[start..j.min(work.len())];
                let mut begin = false;
                let mut end = false;
                if piece.first() == Some(&b'^') {
                    piece = &piece[1..];
                    begin = true;
                }
                // A trailing '$' is the end anchor unless it is an escaped class code position.
                if piece.last() == Some(&b'$') {
                    let escaped = piece.len() >= 2 && piece[piece.len() - 2] == BS && {
                        // count the backslash run to see whether '$' is itself escaped
                        let mut n = 0;
                        let mut k = piece.len() - 1;
                        while k > 0 && piece[k - 1] == BS {
                            n += 1;
                            k -= 1;
                        }
                        n % 2 == 1
                    };
                    if !escaped {
                        piece = &piece[..piece.len() - 1];
                        end = true;
                    }
                }
                let mut pat = piece.to_vec();
                let mut closures = Vec::new();
                let mut k = 0;
                while k < pat.len() {
                    if pat[k] == BS {
                        k += 2;
                        continue;
                    }
                    if pat[k] == b'(' {
                        closures.push(k);
                    }
                    k += 1;
                }
                max_groups = max_groups.max(closures.len() / 2);
                pat.extend_from_slice(&[0, 0, 0, 0]);
                let mut sub = SubRegex {
                    pat,
                    begin,
                    end,
                    closures,
                    required: None,
                    prefix: Vec::new(),
                };
                sub.required = longest_literal(&sub).map(RareNeedle::new);
                sub.prefix = anchored_prefix(&sub);
                subs.push(sub);
                if at_end {
                    break;
                }
                start = j + 1;
            }
            j += 1;
        }
        Ok(OsRegex { subs, max_groups })
    }

    /// Lower-case literals of which at least one occurs in any text this pattern matches.
    pub fn required_any(&self) -> Option<Vec<Vec<u8>>> {
        self.subs
            .iter()
            .map(|s| s.required.as_ref().map(|r| r.lit.to_ascii_lowercase()))
            .collect()
    }

    pub fn group_count(&self) -> usize {
        self.max_groups
    }

    pub fn is_match(&self, s: &str) -> bool {
        let b = s.as_bytes();
        self.subs
            .iter()
            .any(|sub| sub.may_match(b) && run(sub, b, None).is_some())
    }

    /// Match returning the end offset and capture groups.
    pub fn captures(&self, s: &str) -> Option<RegexMatch> {
        let b = s.as_bytes();
        let mut marks: Vec<Option<isize>> = Vec::new();
        for sub in &self.subs {
            if !sub.may_match(b) {
                continue;
            }
            marks.clear();
            marks.resize(sub.closures.len(), None);
            if let Some(last) = run(sub, b, Some(&mut marks)) {
                let mut groups = Vec::new();
                let mut k = 0;
                while k + 1 < marks.len() {
                    match (marks[k], marks[k + 1]) {
                        (Some(a), Some(z)) => {
                            let a = a.clamp(0, b.len() as isize) as usize;
                            let z = z.clamp(0, b.len() as isize) as usize;
                            groups.push((a, z.max(a)));
                        }
                        _ => break,
                    }
                    k += 2;
                }
                return Some(RegexMatch {
                    end: end_after(b, last),
                    groups,
                });
            }
        }
        None
    }

    /// Match returning only the end offset (one past the last matched byte).
    pub fn find_end(&self, s: &str) -> Option<usize> {
        let b = s.as_bytes();
        for sub in &self.subs {
            if !sub.may_match(b) {
                continue;
            }
            if let Some(last) = run(sub, b, None) {
                return Some(end_after(b, last));
            }
        }
        None
    }
}

fn end_after(b: &[u8], last: isize) -> usize {
    // Upstream returns a pointer to the last matched byte and callers step one past it
    // unless it already points at the terminator.
    let last = last.max(0) as usize;
    if last < b.len() {
        last + 1
    } else {
        b.len()
    }
}

/// The matcher proper. Returns the index of the last matched byte on success.
fn run(sub: &SubRegex, s: &[u8], mut marks: Option<&mut Vec<Option<isize>>>) -> Option<isize> {
    let pat = &sub.pat;
    let at = |i: isize| -> u8 {
        if i < 0 {
            0
        } else {
            *s.get(i as usize).unwrap_or(&0)
        }
    };
    let p = |i: usize| -> u8 { *pat.get(i).unwrap_or(&0) };
    let fold = |c: u8| c.to_ascii_lowercase();
    let set_mark = |marks: &mut Option<&mut Vec<Option<isize>>>, pos: usize, val: isize| {
        if let Some(m) = marks.as_mut() {
            if let Some(idx) = sub.closures.iter().position(|&c| c == pos) {
                m[idx] = Some(val);
            }
        }
    };
    let has_marks = marks.is_some();

    let mut r_code: Option<isize> = None;
    let mut regex_matched = false;
    let mut st: isize = 0;
    let mut st_error: Option<isize> = None;
    let mut pt: usize = 0;
    let mut pt_error: [Option<(usize, isize)>; 4] = [None; 4];

    loop {
        'body: {
            match p(pt) {
                0 => {
                    if !sub.end || at(st) == 0 {
                        return r_code;
                    }
                }
                b'(' => {
                    set_mark(&mut marks, pt, st);
                    pt += 1;
                    if p(pt) == 0 && (!sub.end || at(st) == 0) {
                        return r_code;
                    }
                }
                _ => {}
            }

            if p(pt) == BS {
                if class_match(p(pt + 1), at(st)) {
                    let mut next_pt = pt + 2;
                    if !is_plus(p(next_pt)) {
                        pt = next_pt;
                        if st_error.is_none() {
                            st_error = Some(st);
                        }
                        r_code = Some(st);
                        break 'body;
                    }
                    if p(next_pt) == b'*' {
                        regex_matched = true;
                    }
                    if regex_matched {
                        next_pt += 1;
                        let mut ok_here: i32 = -1;
                        if p(next_pt) == b'(' {
                            next_pt += 1;
                        }
                        if p(next_pt) == 0 {
                            ok_here = 1;
                        } else if p(next_pt) == BS {
                            if class_match(p(next_pt + 1), at(st)) {
                                ok_here = if !is_plus(p(next_pt + 2)) { 2 } else { 0 };
                            }
                        } else if p(next_pt) == fold(at(st)) {
                            regex_matched = false;
                            ok_here = 1;
                        }
                        if ok_here >= 0 {
                            if has_marks && p(next_pt - 1) == b'(' {
                                let v = if at(st + 1) == 0 { st + 1 } else { st };
                                set_mark(&mut marks, next_pt - 1, v);
                            }
                            if p(next_pt) == 0 {
                                r_code = Some(st);
                                break 'body;
                            }
                            if ok_here > 0 {
                                next_pt += ok_here as usize;
                            }
                            if let Some(slot) = pt_error.iter_mut().find(|e| e.is_none()) {
                                *slot = Some((pt, st));
                            }
                            pt = next_pt;
                        }
                    } else {
                        next_pt += 1;
                        if has_marks && p(next_pt) == b'(' {
                            let v = if at(st + 1) == 0 { st + 1 } else { st };
                            set_mark(&mut marks, next_pt, v);
                        }
                        regex_matched = true;
                    }
                    r_code = Some(st);
                    break 'body;
                } else if p(pt + 3) == 0 && regex_matched && r_code.is_some() {
                    r_code = Some(st);
                    if !sub.end || at(st) == 0 {
                        return r_code;
                    }
                } else if p(pt + 2) == b'+' && regex_matched {
                    pt += 3;
                    st -= 1;
                    regex_matched = false;
                    break 'body;
                } else if p(pt + 2) == b'*' {
                    pt += 3;
                    st -= 1;
                    r_code = Some(st);
                    regex_matched = false;
                    break 'body;
                }
                regex_matched = false;
            } else if p(pt) != 0 && p(pt) == fold(at(st)) {
                pt += 1;
                if st_error.is_none() {
                    st_error = Some(st);
                }
                r_code = Some(st);
                break 'body;
            }

            // Mismatch: resume from the most recent retry point, else restart the pattern.
            if let Some(i) = (0..4).rev().find(|&i| pt_error[i].is_some()) {
                let (ppt, pst) = pt_error[i].take().unwrap();
                pt = ppt;
                st = pst;
                break 'body;
            } else if sub.begin {
                return None;
            } else if let Some(e) = st_error.take() {
                st = e;
            }
            pt = 0;
            r_code = None;
        }
        st += 1;
        if at(st) == 0 {
            break;
        }
    }

    if has_marks {
        while p(pt) != b'(' && p(pt) != 0 {
            if p(pt) == BS && p(pt + 2) == b'*' {
                pt += 3;
            } else {
                break;
            }
        }
        if p(pt) == b'(' {
            set_mark(&mut marks, pt, st);
        }
    }

    // Whatever is left of the pattern must be able to match the empty rest of the input.
    let end_of_pat = |pt: &mut usize| -> bool {
        if p(*pt) == b'(' {
            *pt += 1;
        }
        p(*pt) == 0
    };
    let mut q = pt;
    let ok = end_of_pat(&mut q)
        || (p(q) == BS
            && regex_matched
            && {
                q += 2;
                is_plus(p(q))
            }
            && {
                q += 1;
                end_of_pat(&mut q)
                    || (p(q) == BS
                        && {
                            q += 2;
                            p(q) == b'*'
                        }
                        && {
                            q += 1;
                            end_of_pat(&mut q)
                        })
            })
        || (p(q) == BS
            && {
                q += 2;
                p(q) == b'*'
            }
            && {
                q += 1;
                end_of_pat(&mut q)
            });
    if ok {
        return r_code;
    }
    None
}

#[derive(Debug, Clone)]
enum MatchPiece {
    Always,
    Contains(Vec<u8>, memchr::memmem::Finder<'static>),
    Prefix(Vec<u8>),
    Suffix(Vec<u8>),
    Exact(Vec<u8>),
}

/// A compiled `OS_Match` pattern: `|`-separated literals, each optionally anchored with `^`
/// and/or `$`, compared case-insensitively. A leading `!` negates the whole pattern.
#[derive(Debug, Clone)]
pub struct OsMatch {
    pieces: Vec<MatchPiece>,
    negate: bool,
}

impl OsMatch {
    /// Lower-case literals of which at least one occurs in any text this pattern matches
    /// (None when the pattern can match without any: negated, or an empty piece).
    pub fn required_any(&self) -> Option<Vec<Vec<u8>>> {
        if self.negate {
            return None;
        }
        let mut v = Vec::new();
        for p in &self.pieces {
            let l = match p {
                MatchPiece::Always => return None,
                MatchPiece::Contains(n, _)
                | MatchPiece::Prefix(n)
                | MatchPiece::Suffix(n)
                | MatchPiece::Exact(n) => n,
            };
            if l.is_empty() {
                return None;
            }
            v.push(l.clone());
        }
        Some(v)
    }

    pub fn new(pattern: &str) -> Result<Self, PatternError> {
        let mut pattern = pattern;
        let mut negate = false;
        if let Some(rest) = pattern.strip_prefix('!') {
            negate = true;
            pattern = rest;
        }
        if pattern.len() > 2048 {
            return Err(PatternError("pattern longer than 2048 bytes".into()));
        }
        let mut pieces = Vec::new();
        for part in pattern.split('|') {
            let lower = part.to_ascii_lowercase();
            let mut b = lower.as_bytes();
            let begin = b.first() == Some(&b'^');
            if begin {
                b = &b[1..];
            }
            let end = b.last() == Some(&b'$');
            if end {
                b = &b[..b.len() - 1];
            }
            pieces.push(match (begin, end) {
                _ if b.is_empty() && !begin && !end => MatchPiece::Always,
                (true, true) => MatchPiece::Exact(b.to_vec()),
                (true, false) => MatchPiece::Prefix(b.to_vec()),
                (false, true) => MatchPiece::Suffix(b.to_vec()),
                (false, false) => {
                    MatchPiece::Contains(b.to_vec(), memchr::memmem::Finder::new(b).into_owned())
                }
            });
        }
        Ok(OsMatch { pieces, negate })
    }

    /// Match against an already lower-cased haystack.
    pub fn is_match_lower(&self, hay: &[u8]) -> bool {
        let m = self.pieces.iter().any(|p| match p {
            MatchPiece::Always => true,
            MatchPiece::Exact(n) => hay == &n[..],
            MatchPiece::Prefix(n) => hay.starts_with(n),
            MatchPiece::Suffix(n) => hay.ends_with(n),
            MatchPiece::Contains(_, f) => f.find(hay).is_some(),
        });
        m != self.negate
    }

    pub fn is_match(&self, s: &str) -> bool {
        let hay = s.as_bytes();
        let m = self.pieces.iter().any(|p| match p {
            MatchPiece::Always => true,
            MatchPiece::Exact(n) => hay.len() == n.len() && hay.eq_ignore_ascii_case(n),
            MatchPiece::Prefix(n) => hay.len() >= n.len() && hay[..n.len()].eq_ignore_ascii_case(n),
            MatchPiece::Suffix(n) => {
                hay.len() >= n.len() && hay[hay.len() - n.len()..].eq_ignore_ascii_case(n)
            }
            MatchPiece::Contains(n, _) => contains_ci(hay, n),
        });
        m != self.negate
    }
}

/// Case-insensitive substring search; `needle` is already lower-case.
pub fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() {
        return true;
    }
    if hay.len() < needle.len() {
        return false;
    }
    let first = needle[0];
    let up = first.to_ascii_uppercase();
    let last_start = hay.len() - needle.len();
    let mut i = 0;
    while i <= last_start {
        // memchr2 keeps the scan fast on long lines
        match memchr2(first, up, &hay[i..=last_start]) {
            None => return false,
            Some(off) => {
                let s = i + off;
                if hay[s + 1..s + needle.len()].eq_ignore_ascii_case(&needle[1..]) {
                    return true;
                }
                i = s + 1;
            }
        }
    }
    false
}

#[inline]
fn memchr2(a: u8, b: u8, hay: &[u8]) -> Option<usize> {
    memchr::memchr2(a, b, hay)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rx(p: &str, s: &str) -> bool {
        OsRegex::new(p).unwrap().is_match(s)
    }

    #[test]
    fn classes_and_anchors() {
        assert!(rx("^Failed \\S+ for", "Failed password for root"));
        assert!(!rx("^password", "Failed password"));
        assert!(rx("from \\d+.\\d+.\\d+.\\d+ port", "from 1.2.3.4 port 22"));
        assert!(rx("FAILED", "failed login"));
        assert!(rx("end$", "the end"));
        assert!(!rx("end$", "the end."));
        assert!(rx("\\w+@\\w+", "mail to bob@example"));
        assert!(rx("a|b", "xxbxx"));
        assert!(rx("\\(x\\)", "call (x)"));
    }

    #[test]
    fn captures_follow_upstream() {
        let r = OsRegex::new("^User (\\S+) from (\\S+)$").unwrap();
        let s = "User bob from 1.2.3.4";
        let m = r.captures(s).unwrap();
        assert_eq!(&s[m.groups[0].0..m.groups[0].1], "bob");
        assert_eq!(&s[m.groups[1].0..m.groups[1].1], "1.2.3.4");
        // Upstream's matcher restarts after a failed literal instead of backtracking fully.
        let r = OsRegex::new("user (\\S+) from (\\S+) port (\\d+)").unwrap();
        let s = "Failed password for invalid user x from 10.0.0.1 port 22 ssh2";
        let m = r.captures(s).unwrap();
        let g: Vec<&str> = m.groups.iter().map(|&(a, b)| &s[a..b]).collect();
        assert_eq!(g, vec!["x", "10.0.0.1", "22"]);
        assert_eq!(&s[m.end..], " ssh2");
    }

    #[test]
    fn trailing_capture_runs_to_end() {
        let r = OsRegex::new("^(\\S+) says (\\.+)").unwrap();
        let s = "bob says hello world";
        let m = r.captures(s).unwrap();
        assert_eq!(&s[m.groups[1].0..m.groups[1].1], "hello world");
    }

    #[test]
    fn bad_patterns_are_errors() {
        assert!(OsRegex::new("\\q").is_err());
        assert!(OsRegex::new("((a))").is_err());
        assert!(OsRegex::new("(a").is_err());
    }

    #[test]
    fn osmatch_semantics() {
        let m = OsMatch::new("^Accepted|session opened|closed$").unwrap();
        assert!(m.is_match("accepted password"));
        assert!(m.is_match("pam: SESSION OPENED for"));
        assert!(m.is_match("connection closed"));
        assert!(!m.is_match("closed connection"));
        let n = OsMatch::new("!root").unwrap();
        assert!(!n.is_match("user root"));
        assert!(n.is_match("user bob"));
    }

    proptest::proptest! {
        #[test]
        fn osregex_never_panics(p in "[a-z\\\\dws.+*()^$| ]{0,12}", s in "[ -~]{0,40}") {
            if let Ok(r) = OsRegex::new(&p) { let _ = r.captures(&s); let _ = r.is_match(&s); }
        }
        #[test]
        fn osmatch_never_panics(p in "[ -~]{0,12}", s in "[ -~]{0,40}") {
            if let Ok(m) = OsMatch::new(&p) { let _ = m.is_match(&s); }
        }
    }
}

#[cfg(test)]
mod rare_tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn rare_needle_agrees_with_contains_ci(n in "[a-z%:. ]{1,5}", h in "[a-zA-Z%:. ]{0,40}") {
            let r = RareNeedle::new(n.as_bytes().to_vec());
            assert_eq!(r.found_in(h.as_bytes()), contains_ci(h.as_bytes(), n.as_bytes()));
        }
    }
}
