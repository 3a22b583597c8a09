//! A lenient XML tree for OSSEC/Wazuh rule and decoder files.
//!
//! Those files are not well-formed documents: they have several top-level elements, top-level
//! `<var>` definitions and bare `&` in patterns. Like upstream's own reader we accept all of that:
//! tokens come from quick-xml, dangling `&` is kept literally, and `$VAR` references are expanded
//! per file afterwards.

use quick_xml::events::Event;
use quick_xml::Reader;

#[derive(Debug, Clone, Default)]
pub struct Node {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Node>,
    pub line: usize,
}

impl Node {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct XmlError {
    pub line: usize,
    pub message: String,
}

fn lossy<B: AsRef<[u8]> + ?Sized>(b: &B) -> String {
    String::from_utf8_lossy(b.as_ref()).into_owned()
}

#[derive(Default)]
struct LineCounter {
    pos: usize,
    line: usize,
}

impl LineCounter {
    fn line(&mut self, src: &[u8], pos: usize) -> usize {
        let pos = pos.min(src.len());
        if pos < self.pos {
            self.pos = 0;
            self.line = 0;
        }
        self.line += memchr::memchr_iter(b'\n', &src[self.pos..pos]).count();
        self.pos = pos;
        1 + self.line
    }
}

fn lenient_unescape(raw: &str) -> String {
    if !raw.contains('&') {
        return raw.to_string();
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 1..];
        let ent_end = tail.find(';').filter(|&e| e <= 10);
        match ent_end.and_then(|e| resolve_entity(&tail[..e]).map(|c| (e, c))) {
            Some((e, c)) => {
                out.push_str(&c);
                rest = &tail[e + 1..];
            }
            None => {
                out.push('&');
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

fn resolve_entity(name: &str) -> Option<String> {
    Some(match name {
        "amp" => "&".into(),
        "lt" => "<".into(),
        "gt" => ">".into(),
        "quot" => "\"".into(),
        "apos" => "'".into(),
        _ => {
            let n = name.strip_prefix('#')?;
            let code = if let Some(h) = n.strip_prefix('x') {
                u32::from_str_radix(h, 16).ok()?
            } else {
                n.parse().ok()?
            };
            char::from_u32(code)?.to_string()
        }
    })
}

/// Parse all top-level elements of a file.
pub fn parse(src: &str) -> Result<Vec<Node>, XmlError> {
    let fixed = escape_stray_lt(src);
    let src: &str = &fixed;
    let bytes = src.as_bytes();
    let mut reader = Reader::from_str(src);
    {
        let c = reader.config_mut();
        c.allow_dangling_amp = true;
        c.check_end_names = true;
        c.trim_text_start = false;
        c.trim_text_end = false;
    }
    let mut stack: Vec<Node> = Vec::new();
    let mut top: Vec<Node> = Vec::new();
    // Line numbers are counted incrementally (positions only grow), keeping the parse linear.
    let mut lines = LineCounter::default();
    let mut line_of = |bytes: &[u8], pos: usize| lines.line(bytes, pos);
    loop {
        let before = reader.buffer_position() as usize;
        let ev = reader.read_event().map_err(|e| XmlError {
            line: line_of(bytes, reader.error_position() as usize),
            message: e.to_string(),
        })?;
        match ev {
            Event::Start(e) => {
                let node = open_node(&e, line_of(bytes, before))?;
                stack.push(node);
            }
            Event::Empty(e) => {
                let node = open_node(&e, line_of(bytes, before))?;
                match stack.last_mut() {
                    Some(p) => p.children.push(node),
                    None => top.push(node),
                }
            }
            Event::End(_) => {
                let node = stack.pop().ok_or_else(|| XmlError {
                    line: line_of(bytes, before),
                    message: "closing tag without an opening tag".into(),
                })?;
                match stack.last_mut() {
                    Some(p) => p.children.push(node),
                    None => top.push(node),
                }
            }
            Event::Text(t) => {
                if let Some(p) = stack.last_mut() {
                    let raw = lossy(&*t);
                    p.text.push_str(&lenient_unescape(&raw));
                }
            }
            Event::CData(t) => {
                if let Some(p) = stack.last_mut() {
                    p.text.push_str(&lossy(&*t));
                }
            }
            Event::GeneralRef(r) => {
                if let Some(p) = stack.last_mut() {
                    let name = lossy(&*r).to_string();
                    match resolve_entity(&name) {
                        Some(s) => p.text.push_str(&s),
                        None => {
                            p.text.push('&');
                            p.text.push_str(&name);
                            p.text.push(';');
                        }
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if let Some(open) = stack.last() {
        return Err(XmlError {
            line: open.line,
            message: format!("element <{}> is never closed", open.name),
        });
    }
    Ok(top)
}

/// Upstream's reader takes a `<` that cannot start a tag (`<=`, `<\\d`, `< `) or that follows a
/// backslash (OS_Regex's `\\<` escape, as in `\\<log>`) as text, and
/// rule files rely on it; escape those so the XML tokenizer sees text too. Newlines are kept,
/// so line numbers stay right.
fn escape_stray_lt(src: &str) -> std::borrow::Cow<'_, str> {
    let b = src.as_bytes();
    let stray = |i: usize| {
        b[i] == b'<'
            && (i > 0 && b[i - 1] == b'\\'
                || !matches!(b.get(i + 1), Some(c) if c.is_ascii_alphabetic() || matches!(c, b'_' | b'/' | b'!' | b'?')))
    };
    if !(0..b.len()).any(stray) {
        return std::borrow::Cow::Borrowed(src);
    }
    let mut out = String::with_capacity(src.len() + 16);
    let mut last = 0;
    for i in 0..b.len() {
        if stray(i) {
            out.push_str(&src[last..i]);
            out.push_str("&lt;");
            last = i + 1;
        }
    }
    out.push_str(&src[last..]);
    std::borrow::Cow::Owned(out)
}

fn open_node(e: &quick_xml::events::BytesStart<'_>, line: usize) -> Result<Node, XmlError> {
    let name = lossy(e.name().0).to_string();
    let mut attrs = Vec::new();
    for a in e.attributes().with_checks(false) {
        let a = a.map_err(|err| XmlError {
            line,
            message: format!("bad attribute in <{name}>: {err}"),
        })?;
        let k = lossy(a.key.0).to_string();
        let v = lenient_unescape(&lossy(&*a.value));
        attrs.push((k, v));
    }
    Ok(Node {
        name,
        attrs,
        text: String::new(),
        children: Vec::new(),
        line,
    })
}

/// Expand `$NAME` references using the file's top-level `<var name="NAME">` definitions.
pub fn apply_vars(nodes: &mut [Node]) {
    let mut vars: Vec<(String, String)> = Vec::new();
    for n in nodes.iter() {
        if n.name == "var" {
            if let Some(name) = n.attr("name") {
                vars.push((name.to_string(), n.text.clone()));
            }
        }
    }
    if vars.is_empty() {
        return;
    }
    // Longest names first so $FOO_BAR is not cut at $FOO.
    vars.sort_by(|a, b| b.0.len().cmp(&a.0.len()));
    fn walk(n: &mut Node, vars: &[(String, String)]) {
        if n.text.contains('$') {
            n.text = subst(&n.text, vars);
        }
        for (_, v) in n.attrs.iter_mut() {
            if v.contains('$') {
                *v = subst(v, vars);
            }
        }
        for c in n.children.iter_mut() {
            walk(c, vars);
        }
    }
    for n in nodes.iter_mut() {
        if n.name != "var" {
            walk(n, &vars);
        }
    }
}

fn subst(s: &str, vars: &[(String, String)]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    'outer: while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        for (k, v) in vars {
            if after.starts_with(k.as_str()) {
                out.push_str(v);
                rest = &after[k.len()..];
                continue 'outer;
            }
        }
        out.push('$');
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_several_roots_vars_and_bare_ampersands() {
        let src = "<var name=\"BAD\">core|fail</var>\n<group name=\"a\">\n<rule id=\"1\" level=\"2\">\n<match>$BAD & x &lt;y</match>\n</rule>\n</group>\n<group name=\"b\"/>";
        let mut nodes = parse(src).unwrap();
        apply_vars(&mut nodes);
        assert_eq!(nodes.len(), 3);
        let rule = &nodes[1].children[0];
        assert_eq!(rule.line, 3);
        assert_eq!(rule.children[0].text, "core|fail & x <y");
    }

    #[test]
    fn stray_less_than_in_patterns_is_text() {
        let nodes = parse("<decoder name=\"a\">\n<regex>^(\\S+)[<=>](\\d+)< x</regex>\n</decoder>")
            .unwrap();
        assert_eq!(nodes[0].children[0].text, "^(\\S+)[<=>](\\d+)< x");
    }

    #[test]
    fn unclosed_element_is_an_error_with_line() {
        let e = parse("<group>\n<rule id=\"1\">").unwrap_err();
        assert!(e.line >= 1);
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(s in "[<>/a-z =\"&;!\\-\n]{0,80}") {
            let _ = parse(&s);
        }
    }
}
