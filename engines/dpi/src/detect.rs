//! Evaluation of one rule's matches against one buffer, with Suricata's relative-match
//! semantics (distance/within after the previous match, backtracking over earlier occurrences).

use crate::rules::{ByteSpec, CmpOp, Content, Match, NumBase, Transform, Val};

/// Work limit per buffer evaluation: crafted payloads with many partial matches must not make
/// backtracking explode.
const BUDGET: u32 = 4096;

pub struct Ctx {
    pub vars: [i64; 16],
    pub b64: Vec<u8>,
    budget: u32,
}

impl Default for Ctx {
    fn default() -> Self {
        Ctx {
            vars: [0; 16],
            b64: Vec::new(),
            budget: BUDGET,
        }
    }
}

impl Ctx {
    fn val(&self, v: Val) -> i64 {
        match v {
            Val::N(n) => n,
            Val::Var(i) => self.vars.get(i as usize).copied().unwrap_or(0),
        }
    }
}

pub fn apply_transforms(ts: &[Transform], data: &[u8]) -> Vec<u8> {
    let mut d = data.to_vec();
    for t in ts {
        d = match t {
            Transform::DotPrefix => {
                let mut v = Vec::with_capacity(d.len() + 1);
                v.push(b'.');
                v.extend_from_slice(&d);
                v
            }
            Transform::ToLower => d.to_ascii_lowercase(),
            Transform::ToUpper => d.to_ascii_uppercase(),
            Transform::StripWhitespace => {
                d.into_iter().filter(|c| !c.is_ascii_whitespace()).collect()
            }
            Transform::CompressWhitespace => {
                let mut v = Vec::with_capacity(d.len());
                for c in d {
                    if c.is_ascii_whitespace() {
                        if v.last().map(|l: &u8| l.is_ascii_whitespace()) != Some(true) {
                            v.push(b' ');
                        }
                    } else {
                        v.push(c);
                    }
                }
                v
            }
            Transform::UrlDecode => crate::app::http::percent_decode(&d, true),
            Transform::Md5 => {
                use md5::Digest;
                md5::Md5::digest(&d).to_vec()
            }
            Transform::Sha256 => {
                use sha2::Digest;
                sha2::Sha256::digest(&d).to_vec()
            }
        };
    }
    d
}

/// Run all matches of a group on `buf`.
pub fn match_group(ms: &[Match], buf: &[u8], ctx: &mut Ctx) -> bool {
    ctx.budget = BUDGET;
    let lc = if ms
        .iter()
        .any(|m| matches!(m, Match::Content(c) if c.nocase))
    {
        Some(buf.to_ascii_lowercase())
    } else {
        None
    };
    eval(ms, 0, buf, lc.as_deref(), 0, ctx)
}

fn window(c: &Content, len: usize, prev_end: usize, ctx: &Ctx) -> Option<(usize, usize)> {
    let plen = c.pat.len() as i64;
    let len_i = len as i64;
    let (mut lo, mut hi) = (0i64, len_i);
    if c.startswith {
        hi = plen;
    }
    if c.is_relative() {
        let d = c.distance.map(|v| ctx.val(v)).unwrap_or(0);
        lo = prev_end as i64 + d;
        if let Some(w) = c.within {
            hi = prev_end as i64 + d + ctx.val(w);
        }
        if c.startswith {
            hi = lo + plen;
        }
    }
    if let Some(o) = c.offset {
        lo = lo.max(ctx.val(o));
        if let Some(dp) = c.depth {
            hi = hi.min(ctx.val(o) + ctx.val(dp));
        }
    } else if let Some(dp) = c.depth {
        if c.is_relative() {
            hi = hi.min(lo + ctx.val(dp));
        } else {
            hi = hi.min(ctx.val(dp));
        }
    }
    let lo = lo.max(0);
    let hi = hi.min(len_i);
    if hi - lo < plen {
        return None;
    }
    Some((lo as usize, hi as usize))
}

fn find_at(c: &Content, hay: &[u8], lc: Option<&[u8]>, from: usize, hi: usize) -> Option<usize> {
    if from >= hi || hi - from < c.pat.len() {
        return None;
    }
    if c.nocase {
        let h = &lc.unwrap_or(hay)[from..hi];
        let p = c.pat.to_ascii_lowercase();
        memchr::memmem::find(h, &p).map(|x| x + from)
    } else {
        memchr::memmem::find(&hay[from..hi], &c.pat).map(|x| x + from)
    }
}

fn eval(
    ms: &[Match],
    i: usize,
    buf: &[u8],
    lc: Option<&[u8]>,
    prev_end: usize,
    ctx: &mut Ctx,
) -> bool {
    if i == ms.len() {
        return true;
    }
    if ctx.budget == 0 {
        return false;
    }
    ctx.budget -= 1;
    let more_relative = ms[i + 1..].iter().any(|m| m.is_relative());
    match &ms[i] {
        Match::Content(c) => {
            let win = window(c, buf.len(), prev_end, ctx);
            if c.negated {
                let found = match win {
                    None => false,
                    Some((lo, hi)) => {
                        let mut from = lo;
                        let mut hit = false;
                        while let Some(p) = find_at(c, buf, lc, from, hi) {
                            if !c.endswith || p + c.pat.len() == buf.len() {
                                hit = true;
                                break;
                            }
                            from = p + 1;
                        }
                        hit
                    }
                };
                if found {
                    return false;
                }
                return eval(ms, i + 1, buf, lc, prev_end, ctx);
            }
            let Some((lo, hi)) = win else { return false };
            let mut from = lo;
            loop {
                let Some(p) = find_at(c, buf, lc, from, hi) else {
                    return false;
                };
                let end = p + c.pat.len();
                if c.endswith && end != buf.len() {
                    from = p + 1;
                    continue;
                }
                if eval(ms, i + 1, buf, lc, end, ctx) {
                    return true;
                }
                if !more_relative || ctx.budget == 0 {
                    return false;
                }
                from = p + 1;
            }
        }
        Match::Pcre {
            re,
            relative,
            negated,
            ..
        } => {
            let start = if *relative { prev_end } else { 0 };
            if start > buf.len() {
                return *negated && eval(ms, i + 1, buf, lc, prev_end, ctx);
            }
            // Suricata hands a relative pcre the rest of the buffer as its subject, so `^`
            // anchors at the previous match's end.
            let m = re
                .find(&buf[start..])
                .ok()
                .flatten()
                .map(|m| (m.start() + start, m.end() + start));
            match (m, negated) {
                (Some(_), true) => false,
                (None, true) => eval(ms, i + 1, buf, lc, prev_end, ctx),
                (None, false) => false,
                (Some((ms_start, ms_end)), false) => {
                    if eval(ms, i + 1, buf, lc, ms_end, ctx) {
                        return true;
                    }
                    if !more_relative {
                        return false;
                    }
                    // Try later matches of the regex, as Suricata does for relative chains.
                    let mut from = ms_start + 1;
                    while from <= buf.len() && ctx.budget > 0 {
                        ctx.budget -= 1;
                        match re.find_at(&buf[start..], from - start).ok().flatten() {
                            Some(m2) => {
                                if eval(ms, i + 1, buf, lc, m2.end() + start, ctx) {
                                    return true;
                                }
                                from = m2.start() + start + 1;
                            }
                            None => return false,
                        }
                    }
                    false
                }
            }
        }
        Match::IsDataAt {
            n,
            relative,
            negated,
        } => {
            let base = if *relative { prev_end as i64 } else { 0 };
            let ok = base + ctx.val(*n) < buf.len() as i64;
            if ok == *negated {
                return false;
            }
            eval(ms, i + 1, buf, lc, prev_end, ctx)
        }
        Match::Bsize(cmp) => cmp.test(buf.len() as i64) && eval(ms, i + 1, buf, lc, prev_end, ctx),
        Match::ByteTest {
            spec,
            op,
            negated,
            value,
        } => {
            let Some((v, _)) = read_value(spec, buf, prev_end, ctx) else {
                return false;
            };
            let rv = ctx.val(*value);
            let ok = match op {
                CmpOp::Eq => v == rv,
                CmpOp::Lt => v < rv,
                CmpOp::Gt => v > rv,
                CmpOp::Le => v <= rv,
                CmpOp::Ge => v >= rv,
                CmpOp::And => v & rv != 0,
                CmpOp::Or => v ^ rv != 0,
                _ => false,
            };
            if ok == *negated {
                return false;
            }
            eval(ms, i + 1, buf, lc, prev_end, ctx)
        }
        Match::ByteJump {
            spec,
            multiplier,
            align,
            from_beginning,
            from_end,
            post_offset,
        } => {
            let Some((v, after)) = read_value(spec, buf, prev_end, ctx) else {
                return false;
            };
            let mut j = v.saturating_mul(*multiplier);
            if *align && j % 4 != 0 {
                j += 4 - j % 4;
            }
            let base = if *from_beginning {
                0
            } else if *from_end {
                buf.len() as i64
            } else {
                after as i64
            };
            let np = base + j + post_offset;
            if np < 0 || np > buf.len() as i64 {
                return false;
            }
            eval(ms, i + 1, buf, lc, np as usize, ctx)
        }
        Match::ByteExtract {
            spec,
            multiplier,
            align,
            var,
        } => {
            let Some((v, after)) = read_value(spec, buf, prev_end, ctx) else {
                return false;
            };
            let mut x = v.saturating_mul(*multiplier);
            if *align > 1 {
                let a = *align as i64;
                if x % a != 0 {
                    x += a - x % a;
                }
            }
            if let Some(slot) = ctx.vars.get_mut(*var as usize) {
                *slot = x;
            }
            eval(ms, i + 1, buf, lc, after, ctx)
        }
        Match::ByteMath {
            spec,
            oper,
            rvalue,
            var,
        } => {
            let Some((v, _after)) = read_value(spec, buf, prev_end, ctx) else {
                return false;
            };
            let r = ctx.val(*rvalue);
            let x = match oper {
                b'+' => v.wrapping_add(r),
                b'-' => v.wrapping_sub(r),
                b'*' => v.wrapping_mul(r),
                b'/' => {
                    if r == 0 {
                        return false;
                    }
                    v / r
                }
                b'<' => v.wrapping_shl(r as u32),
                _ => v.wrapping_shr(r as u32),
            };
            if let Some(slot) = ctx.vars.get_mut(*var as usize) {
                *slot = x;
            }
            eval(ms, i + 1, buf, lc, prev_end, ctx)
        }
        Match::Base64Decode {
            bytes,
            offset,
            relative,
        } => {
            let start = (if *relative { prev_end as i64 } else { 0 }) + offset;
            if start < 0 || start as usize > buf.len() {
                return false;
            }
            let s = start as usize;
            let e = match bytes {
                Some(n) => (s + (*n).max(0) as usize).min(buf.len()),
                None => buf.len(),
            };
            ctx.b64 = base64_decode_lenient(&buf[s..e]);
            eval(ms, i + 1, buf, lc, prev_end, ctx)
        }
    }
}

/// Read the integer a byte_* keyword points at; returns it and the position after it.
fn read_value(spec: &ByteSpec, buf: &[u8], prev_end: usize, ctx: &Ctx) -> Option<(i64, usize)> {
    let base = if spec.relative { prev_end as i64 } else { 0 };
    let pos = base + ctx.val(spec.offset);
    if pos < 0 {
        return None;
    }
    let pos = pos as usize;
    if spec.nbytes == 0 {
        return (pos <= buf.len()).then_some((0, pos));
    }
    let end = pos.checked_add(spec.nbytes as usize)?;
    if end > buf.len() {
        return None;
    }
    let b = &buf[pos..end];
    let mut v: u64 = match spec.string {
        Some(base) => {
            let s = std::str::from_utf8(b).ok()?;
            let radix = match base {
                NumBase::Dec => 10,
                NumBase::Hex => 16,
                NumBase::Oct => 8,
            };
            // Like strtoul: leading digits only, at least one.
            let t = s.trim_start();
            let digits: String = t.chars().take_while(|c| c.is_digit(radix)).collect();
            if digits.is_empty() {
                return None;
            }
            u64::from_str_radix(&digits, radix).ok()?
        }
        None => {
            let mut x: u64 = 0;
            if spec.big_endian {
                for &c in b {
                    x = x << 8 | c as u64;
                }
            } else {
                for &c in b.iter().rev() {
                    x = x << 8 | c as u64;
                }
            }
            x
        }
    };
    if let Some(m) = spec.bitmask {
        v &= m;
        if m != 0 {
            v >>= m.trailing_zeros();
        }
    }
    Some((v as i64, end))
}

pub fn base64_decode_lenient(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut n = 0;
    for &c in s {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            b' ' | b'\r' | b'\n' | b'\t' => continue,
            _ => break,
        } as u32;
        acc = acc << 6 | v;
        n += 1;
        if n == 4 {
            out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
            acc = 0;
            n = 0;
        }
    }
    match n {
        2 => out.push((acc >> 4) as u8),
        3 => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::Vars;
    use crate::rules::{default_classes, parse_rule, Names, ParseCtx};

    fn m(rule_opts: &str, data: &[u8]) -> bool {
        let vars = Vars::default();
        let classes = default_classes();
        let mut names = Names::default();
        let mut ctx = ParseCtx {
            vars: &vars,
            classes: &classes,
            names: &mut names,
        };
        let r = parse_rule(
            &format!("alert tcp any any -> any any ({rule_opts} sid:1;)"),
            &mut ctx,
        )
        .unwrap()
        .unwrap();
        let mut c = Ctx::default();
        match_group(&r.groups[0].matches, data, &mut c)
    }

    #[test]
    fn distance_within_backtracks_to_a_later_first_match() {
        assert!(m(
            r#"content:"ab"; content:"cd"; distance:0; within:3;"#,
            b"ab----abXcd"
        ));
        assert!(!m(
            r#"content:"ab"; content:"cd"; distance:0; within:3;"#,
            b"ab----ab-----cd"
        ));
    }

    #[test]
    fn offset_depth_and_nocase() {
        assert!(m(r#"content:"GET"; nocase; depth:3;"#, b"get /"));
        assert!(!m(r#"content:"GET"; offset:1; depth:3;"#, b"GET /"));
    }

    #[test]
    fn negated_relative_content_and_endswith() {
        assert!(m(
            r#"content:"a"; content:!"b"; distance:0; within:1;"#,
            b"ac"
        ));
        assert!(!m(
            r#"content:"a"; content:!"b"; distance:0; within:1;"#,
            b"ab"
        ));
        assert!(m(r#"content:"xyz"; endswith;"#, b"xyz xyz"));
    }

    #[test]
    fn byte_test_and_byte_jump() {
        assert!(m(r#"byte_test:2,>,255,0;"#, &[1, 0]));
        assert!(m(
            r#"byte_jump:1,0; content:"Z"; within:1;"#,
            &[2, b'a', b'b', b'Z']
        ));
        assert!(m(
            r#"byte_extract:1,0,len; content:"A"; distance:len; within:1;"#,
            &[1, b'x', b'A']
        ));
    }
}
