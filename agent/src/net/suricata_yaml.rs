//! Reading the few settings we honour from a Suricata `suricata.yaml` (`bannin-agent pcap -c`),
//! so that configurations written for Suricata (variables, action order, alert caps, stream
//! options) carry over. Suricata's YAML is block style: nested mappings, and sequences of scalars
//! or of mappings. This reader flattens that subset into dotted keys (`vars.address-groups.HOME_NET`,
//! `action-order.0`); flow-style collections are kept as their text (`[a, b]`), which is what our
//! address and port syntax expects anyway. A full YAML crate would cost more build time than the
//! handful of keys we read is worth.

/// One flattened setting with the line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub value: String,
    pub line: usize,
}

fn strip_comment(l: &str) -> &str {
    let mut q: Option<char> = None;
    for (i, c) in l.char_indices() {
        match (q, c) {
            (None, '"' | '\'') => q = Some(c),
            (Some(o), c) if c == o => q = None,
            (None, '#') if i == 0 || l[..i].ends_with(char::is_whitespace) => return &l[..i],
            _ => {}
        }
    }
    l
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    if v.len() >= 2
        && (v.starts_with('"') && v.ends_with('"') || v.starts_with('\'') && v.ends_with('\''))
    {
        v[1..v.len() - 1].to_string()
    } else {
        v.to_string()
    }
}

/// Split `key: value` (the colon must be followed by a space or end the line).
fn split_kv(s: &str) -> Option<(&str, &str)> {
    let mut q: Option<char> = None;
    for (i, c) in s.char_indices() {
        match (q, c) {
            (None, '"' | '\'') if i == 0 => q = Some(c),
            (Some(o), c) if c == o => q = None,
            (None, ':') if s[i + 1..].is_empty() || s[i + 1..].starts_with(' ') => {
                return Some((s[..i].trim(), s[i + 1..].trim()))
            }
            _ => {}
        }
    }
    None
}

/// Flatten a Suricata YAML document into dotted keys. Lines that are not part of the subset are
/// returned as errors naming their line number; the rest is still read.
pub fn flatten(text: &str) -> (Vec<Setting>, Vec<String>) {
    let mut out = Vec::new();
    let mut errs = Vec::new();
    // Stack of (indent, path component, next sequence index) for open containers.
    let mut stack: Vec<(usize, String, usize)> = Vec::new();
    for (ln, raw) in text.lines().enumerate() {
        let ln = ln + 1;
        let line = strip_comment(raw).trim_end();
        let body = line.trim_start();
        if body.is_empty() || body.starts_with('%') || body == "---" || body == "..." {
            continue;
        }
        let mut indent = line.len() - body.len();
        while stack.last().is_some_and(|(i, _, _)| *i >= indent) {
            stack.pop();
        }
        let mut body = body;
        let mut prefix: Vec<String> = stack.iter().map(|(_, k, _)| k.clone()).collect();
        if let Some(item) = body
            .strip_prefix('-')
            .filter(|r| r.is_empty() || r.starts_with(' '))
        {
            // A sequence item: numbered under its parent container.
            let n = match stack.last_mut() {
                Some(top) => {
                    top.2 += 1;
                    top.2 - 1
                }
                None => {
                    errs.push(format!("line {ln}: sequence item at top level"));
                    continue;
                }
            };
            let item_text = item.trim_start();
            let inner = indent + 1 + (item.len() - item_text.len());
            stack.push((indent, n.to_string(), 0));
            prefix.push(n.to_string());
            if item_text.is_empty() {
                continue;
            }
            match split_kv(item_text) {
                Some(_) => {
                    // `- key: value`: the item is a mapping whose keys sit at `inner`.
                    stack.last_mut().expect("pushed").0 = indent;
                    indent = inner;
                    body = item_text;
                }
                None => {
                    out.push(Setting {
                        key: prefix.join("."),
                        value: unquote(item_text),
                        line: ln,
                    });
                    continue;
                }
            }
        }
        match split_kv(body) {
            Some((k, v)) => {
                let k = unquote(k);
                if v.is_empty() {
                    stack.push((indent, k, 0));
                } else {
                    prefix.push(k);
                    out.push(Setting {
                        key: prefix.join("."),
                        value: unquote(v),
                        line: ln,
                    });
                }
            }
            None => errs.push(format!("line {ln}: expected `key: value`, got {:?}", body)),
        }
    }
    (out, errs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(s: &'a [Setting], k: &str) -> Option<&'a str> {
        s.iter().find(|x| x.key == k).map(|x| x.value.as_str())
    }

    #[test]
    fn nested_mappings_sequences_and_comments_flatten_to_dotted_keys() {
        let y = "%YAML 1.1\n---\n\nvars:\n  # the nets\n  address-groups:\n    HOME_NET: \"[10.0.0.0/8]\"  # ours\n    EXTERNAL_NET: \"!$HOME_NET\"\n  port-groups:\n    HTTP_PORTS: 80\naction-order:\n  - reject\n  - pass\noutputs:\n  - eve-log:\n      enabled: yes\n      types:\n        - alert\n        - drop:\n            flows: all\npacket-alert-max: 2\nurl: 'http://x/#frag'\n";
        let (s, errs) = flatten(y);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(
            get(&s, "vars.address-groups.HOME_NET"),
            Some("[10.0.0.0/8]")
        );
        assert_eq!(
            get(&s, "vars.address-groups.EXTERNAL_NET"),
            Some("!$HOME_NET")
        );
        assert_eq!(get(&s, "vars.port-groups.HTTP_PORTS"), Some("80"));
        assert_eq!(get(&s, "action-order.0"), Some("reject"));
        assert_eq!(get(&s, "action-order.1"), Some("pass"));
        assert_eq!(get(&s, "outputs.0.eve-log.enabled"), Some("yes"));
        assert_eq!(get(&s, "outputs.0.eve-log.types.0"), Some("alert"));
        assert_eq!(get(&s, "outputs.0.eve-log.types.1.drop.flows"), Some("all"));
        assert_eq!(get(&s, "packet-alert-max"), Some("2"));
        assert_eq!(get(&s, "url"), Some("http://x/#frag"));
    }

    #[test]
    fn lines_outside_the_subset_are_reported_with_their_number() {
        let (s, errs) = flatten("a:\n  b: 1\n  just text\nc: 2\n- stray\n");
        assert_eq!(get(&s, "a.b"), Some("1"));
        assert_eq!(get(&s, "c"), Some("2"));
        assert!(errs.iter().any(|e| e.starts_with("line 3:")), "{errs:?}");
        assert!(errs.iter().any(|e| e.starts_with("line 5:")), "{errs:?}");
    }

    #[test]
    fn arbitrary_text_never_panics() {
        // A cheap deterministic generator over the characters that matter to the reader.
        let alphabet = b" a:#'\"-\n\t";
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            let mut t = String::new();
            for _ in 0..(x % 120) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                t.push(alphabet[(x % alphabet.len() as u64) as usize] as char);
            }
            let _ = flatten(&t);
            x = x.wrapping_add(1);
        }
    }
}
