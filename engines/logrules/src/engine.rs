//! Evaluation: decoding a line and walking the rule tree, with per-session correlation state.

use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;

use crate::event::{Event, FieldKey, Std, STD_COUNT, STD_NAMES};
use crate::ruleset::{
    CompiledRule, CtxField, IpEntry, IpNet, Lookup, Offset, Relation, Rule, Ruleset, Target,
};
use crate::syslog;

/// Which clock correlation uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSource {
    /// The log's own timestamp when it has one (replayed files correlate as they did live).
    LogTime,
    /// The `now` passed to [`Engine::process`] (what `ossec-logtest` does).
    Receive,
}

/// The rule an event matched.
#[derive(Debug, Clone)]
pub struct RuleHit {
    pub id: u32,
    pub level: u8,
    pub groups: Vec<String>,
    pub description: String,
    pub mitre: Vec<String>,
    pub no_full_log: bool,
    pub alert_by_email: bool,
    /// The rule fired because of correlation (frequency / if_matched_*).
    pub correlated: bool,
    pub file: String,
}

/// What the engine made of one line.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    pub decoder: Option<String>,
    /// Decoded fields, static ones first, in a stable order.
    pub fields: Vec<(String, String)>,
    pub hostname: Option<String>,
    pub program_name: Option<String>,
    pub log: String,
    pub time: i64,
    pub rule: Option<RuleHit>,
    pub alert: bool,
}

struct Stored {
    time: i64,
    std: [Option<String>; STD_COUNT],
    dynamic: Vec<(String, String)>,
    location: String,
    hostname: Option<String>,
    matched: Cell<u8>,
}

impl Stored {
    fn ctx(&self, f: &CtxField) -> Option<&str> {
        match f {
            CtxField::Field(FieldKey::Std(s)) => self.std[*s as usize].as_deref(),
            CtxField::Field(FieldKey::Dyn(d)) => self
                .dynamic
                .iter()
                .find(|(k, _)| k == d)
                .map(|(_, v)| v.as_str()),
            CtxField::Location => Some(&self.location),
            CtxField::Hostname => self.hostname.as_deref().or(Some(&self.location)),
        }
    }
}

fn ev_ctx<'a>(ev: &'a Event, f: &CtxField) -> Option<&'a str> {
    match f {
        CtxField::Field(k) => ev.get(k),
        CtxField::Location => Some(&ev.location),
        CtxField::Hostname => ev.hostname.as_deref().or(Some(&ev.location)),
    }
}

/// How many earlier events the correlation lists keep.
///
/// Measured on OSSEC 4.x's own verdicts over long streams: an `if_matched_sid` rule sees the
/// last 128 events of the rule it follows (older ones drop out), while an `if_matched_group`
/// list takes 1034 events and then accepts no more, so such a rule never fires again in that
/// session. That last behaviour is an upstream defect; [`CorrelationLimits::OSSEC_4X`]
/// reproduces it for verdict parity, the default drops the oldest event instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorrelationLimits {
    pub sid_list: usize,
    pub group_list: usize,
    /// A full group list refuses new events (upstream) instead of dropping its oldest.
    pub group_list_stops_when_full: bool,
}

impl CorrelationLimits {
    pub const OSSEC_4X: CorrelationLimits = CorrelationLimits {
        sid_list: 128,
        group_list: 1034,
        group_list_stops_when_full: true,
    };
}

impl Default for CorrelationLimits {
    fn default() -> Self {
        CorrelationLimits {
            sid_list: 128,
            group_list: 1024,
            group_list_stops_when_full: false,
        }
    }
}

/// A ruleset plus one session's correlation state. Sans-IO: feed it lines and times.
pub struct Engine {
    rs: Arc<Ruleset>,
    corr: Vec<VecDeque<Rc<Stored>>>,
    time_ignored: Vec<i64>,
    fts_seen: std::cell::RefCell<std::collections::HashSet<String>>,
    pname_cache: std::cell::RefCell<std::collections::HashMap<String, Rc<[u32]>>>,
    literal_hits: std::cell::RefCell<Vec<u64>>,
    pub time_source: TimeSource,
    pub location: String,
    pub limits: CorrelationLimits,
}

struct DecodeOut {
    decoder: Option<usize>,
    sets: Vec<(FieldKey, String)>,
}

fn from(log: &str, mut i: usize) -> &str {
    if i >= log.len() {
        return "";
    }
    while !log.is_char_boundary(i) {
        i += 1;
    }
    &log[i..]
}

fn slice_lossy(s: &str, a: usize, b: usize) -> String {
    let bs = s.as_bytes();
    let b = b.min(bs.len());
    let a = a.min(b);
    // Capture offsets are byte offsets; only a cut inside a multi-byte character needs the
    // lossy conversion.
    match s.get(a..b) {
        Some(x) => x.to_string(),
        None => String::from_utf8_lossy(&bs[a..b]).into_owned(),
    }
}

impl Engine {
    pub fn new(rs: Arc<Ruleset>) -> Engine {
        let n = rs.n_corr_lists;
        let nr = rs.rules.len();
        Engine {
            rs,
            corr: (0..n).map(|_| VecDeque::new()).collect(),
            time_ignored: vec![i64::MIN; nr],
            fts_seen: Default::default(),
            pname_cache: Default::default(),
            literal_hits: Default::default(),
            time_source: TimeSource::LogTime,
            location: "stdin".to_string(),
            limits: CorrelationLimits::default(),
        }
    }

    pub fn ruleset(&self) -> &Ruleset {
        &self.rs
    }

    /// Forget all correlation state (a new session).
    pub fn reset(&mut self) {
        for l in self.corr.iter_mut() {
            l.clear();
        }
        for t in self.time_ignored.iter_mut() {
            *t = i64::MIN;
        }
        self.fts_seen.borrow_mut().clear();
    }

    /// Evaluate one log line received at `now` (unix seconds).
    pub fn process(&mut self, line: &str, now: i64) -> Verdict {
        let rs = self.rs.clone();
        let line = line.trim_end_matches(['\n', '\r']);
        let h = syslog::predecode(line);
        let mut ev = Event {
            full_log: line.to_string(),
            log_start: h.log_start,
            hostname: h.hostname.map(|(a, b)| line[a..b].to_string()),
            program_name: h.program.map(|(a, b)| line[a..b].to_string()),
            location: self.location.clone(),
            time: now,
            ..Default::default()
        };
        if self.time_source == TimeSource::LogTime {
            if let Some(t) = h.time {
                ev.time = syslog::to_unix(t, now);
            }
        }
        let pname_roots = ev.program_name.as_deref().map(|p| {
            let mut cache = self.pname_cache.borrow_mut();
            if let Some(r) = cache.get(p) {
                return r.clone();
            }
            // Program names repeat; bound the cache so hostile input cannot grow it forever.
            if cache.len() >= 4096 {
                cache.clear();
            }
            let r = roots_for_program(&rs, p);
            cache.insert(p.to_string(), r.clone());
            r
        });
        let lower = ev.log().as_bytes().to_ascii_lowercase();
        let mut hits = std::mem::take(&mut *self.literal_hits.borrow_mut());
        hits.clear();
        if let Some(ac) = &rs.literals {
            hits.resize(rs.n_literals.div_ceil(64), 0);
            for m in ac.find_overlapping_iter(&lower[..]) {
                let i = m.pattern().as_usize();
                hits[i / 64] |= 1 << (i % 64);
            }
        }
        let out = decode(&rs, ev.log(), pname_roots.as_deref(), &hits);
        ev.decoder = out.decoder;
        ev.decoder_name = out.decoder.map(|d| rs.decoders[d].name_id);
        for (k, v) in out.sets {
            ev.set(&k, v);
        }

        let category = ev
            .decoder
            .map(|d| rs.decoders[d].category_id)
            .unwrap_or(rs.syslog_category);
        let cur_matched = Cell::new(0u8);
        let mut hit: Option<(usize, bool)> = None;
        for (&n, &cat) in rs.top.iter().zip(&rs.top_category) {
            if cat != category {
                continue;
            }
            if let Some(x) = self.check_node(&rs, n, &ev, &cur_matched, &lower, &hits, now) {
                hit = Some(x);
                break;
            }
        }
        *self.literal_hits.borrow_mut() = hits;

        let decoder = ev
            .decoder
            .map(|d| rs.names[rs.decoders[d].name_id as usize].clone());
        let mut rule = None;
        let mut alert = false;
        if let Some((ri, correlated)) = hit {
            let r = &rs.rules[ri];
            rule = Some(RuleHit {
                id: r.id,
                level: r.level,
                groups: r.groups.clone(),
                description: r.description.clone(),
                mitre: r.mitre.clone(),
                no_full_log: r.options.no_full_log,
                alert_by_email: r.options.alert_by_email,
                correlated,
                file: r.file.clone(),
            });
            if r.level > 0 && !self.ignored(ri, r.ignore_time, ev.time) {
                alert = !r.options.no_log;
                self.store(r, &ev, cur_matched.get());
            }
        }
        // The event is done with: move its strings into the verdict.
        let Event {
            full_log,
            log_start,
            hostname,
            program_name,
            std,
            dynamic,
            time,
            ..
        } = ev;
        let mut fields = Vec::with_capacity(dynamic.len() + 4);
        for (i, val) in std.into_iter().enumerate() {
            if let Some(val) = val {
                fields.push((STD_NAMES[i].to_string(), val));
            }
        }
        fields.extend(dynamic);
        let log = if log_start == 0 {
            full_log
        } else {
            full_log[log_start..].to_string()
        };
        let mut v = Verdict {
            decoder,
            fields,
            hostname,
            program_name,
            log,
            time,
            rule,
            alert,
        };
        if let Some(r) = &v.rule {
            if r.description.contains("$(") {
                let d = expand_fields(&r.description, &v);
                if let Some(r) = v.rule.as_mut() {
                    r.description = d;
                }
            }
        }
        v
    }

    /// Upstream's `ignore`: the first alert starts the quiet period; once it has passed, one
    /// more alert goes out and the period starts again at the next one.
    fn ignored(&mut self, ri: usize, ignore_time: i64, time: i64) -> bool {
        if ignore_time <= 0 {
            return false;
        }
        let t = &mut self.time_ignored[ri];
        if *t == i64::MIN {
            *t = time;
            false
        } else if time - *t < ignore_time {
            true
        } else {
            *t = i64::MIN;
            false
        }
    }

    /// Remember an alerted event in the correlation lists its rule feeds.
    fn store(&mut self, r: &Rule, ev: &Event, matched: u8) {
        if r.store_list.is_none() && r.group_lists.is_empty() {
            return;
        }
        let st = Rc::new(Stored {
            time: ev.time,
            std: ev.std.clone(),
            dynamic: ev.dynamic.clone(),
            location: ev.location.clone(),
            hostname: ev.hostname.clone(),
            matched: Cell::new(matched),
        });
        // Like upstream, an event feeds its rule's if_matched_sid list, or else the
        // if_matched_group lists of its groups, not both.
        let lim = self.limits;
        let (lists, cap, refuse): (&[usize], usize, bool) = match &r.store_list {
            Some(l) => (std::slice::from_ref(l), lim.sid_list, false),
            None => (
                &r.group_lists,
                lim.group_list,
                lim.group_list_stops_when_full,
            ),
        };
        for li in lists {
            let l = &mut self.corr[*li];
            if l.len() >= cap.max(1) {
                if refuse {
                    continue;
                }
                l.pop_front();
            }
            l.push_back(st.clone());
        }
    }

    fn check_node(
        &self,
        rs: &Ruleset,
        n: usize,
        ev: &Event,
        cur_matched: &Cell<u8>,
        lower: &[u8],
        hits: &[u64],
        now: i64,
    ) -> Option<(usize, bool)> {
        let node = &rs.nodes[n];
        if let Some(Some(ids)) = rs.rule_literals.get(node.rule) {
            if !ids
                .iter()
                .any(|&i| hits[i as usize / 64] & (1 << (i % 64)) != 0)
            {
                return None;
            }
        }
        let r = &rs.rules[node.rule];
        if !rule_matches(rs, r, ev, lower, now) {
            return None;
        }
        if r.if_fts && !self.first_time_seen(rs, ev) {
            return None;
        }
        let mut correlated = false;
        if let Some(li) = r.search_list {
            if !self.search(rs, r, li, ev, cur_matched) {
                return None;
            }
            correlated = true;
        }
        let dn = ev.decoder_name.unwrap_or(u32::MAX - 1);
        for (&c, &da) in node.children.iter().zip(&node.child_decoded_as) {
            if da != u32::MAX && da != dn {
                continue;
            }
            if let Some(x) = self.check_node(rs, c, ev, cur_matched, lower, hits, now) {
                return Some(x);
            }
        }
        if r.noalert {
            return None;
        }
        Some((node.rule, correlated))
    }

    /// OSSEC's "first time seen": true (and remembered) when the decoder's `<fts>` key is new.
    fn first_time_seen(&self, rs: &Ruleset, ev: &Event) -> bool {
        use crate::ruleset::*;
        let Some(di) = ev.decoder else { return false };
        let d = &rs.decoders[di];
        if d.fts == 0 {
            return false;
        }
        let pick = |bit: u16, v: Option<&str>| -> String {
            if d.fts & bit != 0 {
                v.unwrap_or("").to_string()
            } else {
                String::new()
            }
        };
        let key = format!(
            "{} {} {} {} {} {} {} {} {}",
            rs.names[d.name_id as usize],
            pick(FTS_ID, ev.get_std(Std::Id)),
            pick(FTS_DSTUSER, ev.get_std(Std::DstUser)),
            pick(FTS_SRCUSER, ev.get_std(Std::SrcUser)),
            pick(FTS_SRCIP, ev.get_std(Std::SrcIp)),
            pick(FTS_DSTIP, ev.get_std(Std::DstIp)),
            pick(FTS_DATA, ev.get_std(Std::Data)),
            pick(FTS_SYSTEMNAME, ev.get_std(Std::SystemName)),
            pick(FTS_LOCATION, Some(&ev.location)),
        );
        // Upstream ignores keys shorter than its minimum size (14 bytes).
        if key.len() < 14 {
            return false;
        }
        self.fts_seen.borrow_mut().insert(key)
    }

    fn search(
        &self,
        rs: &Ruleset,
        r: &Rule,
        li: usize,
        ev: &Event,
        cur_matched: &Cell<u8>,
    ) -> bool {
        let list = &self.corr[li];
        let Some(first) = list.back() else {
            return false;
        };
        let mut count = 0u32;
        'events: for e in list.iter().rev() {
            if ev.time - e.time > r.timeframe {
                return false;
            }
            // OSSEC stops at an event already counted toward an alert of this level (or
            // higher) before looking at the context; Wazuh looks at it only for events that
            // pass the context, and not at all when port/user/location/url context is set.
            if rs.ossec_dialect && e.matched.get() >= r.level {
                return false;
            }
            for cx in &r.context {
                let (a, b) = (e.ctx(&cx.target), ev_ctx(ev, &cx.target));
                let (Some(a), Some(b)) = (a, b) else {
                    continue 'events;
                };
                match cx.rel {
                    Relation::Same if a != b => continue 'events,
                    Relation::Different if a == b => continue 'events,
                    _ => {}
                }
            }
            if !rs.ossec_dialect && !r.extra_context && e.matched.get() >= r.level {
                return false;
            }
            if count < r.frequency {
                count += 1;
                continue;
            }
            cur_matched.set(r.level);
            e.matched.set(r.level);
            first.matched.set(r.level);
            return true;
        }
        false
    }
}

/// The root decoders (indices into `dec_roots_pname`) whose program_name matches `program`,
/// in load order.
fn roots_for_program(rs: &Ruleset, program: &str) -> Rc<[u32]> {
    rs.dec_roots_pname
        .iter()
        .enumerate()
        .filter(|(_, n)| {
            rs.decoders[n.dec]
                .program_name
                .as_ref()
                .map(|pn| pn.is_match(program))
                .unwrap_or(false)
        })
        .map(|(i, _)| i as u32)
        .collect()
}

#[inline]
fn any_hit(ids: &[u32], hits: &[u64]) -> bool {
    ids.iter().any(|&i| {
        hits.get(i as usize / 64)
            .map(|w| w & (1 << (i % 64)) != 0)
            .unwrap_or(false)
    })
}

/// Whether decoder `d`'s prematch may match, by the literal prefilter.
#[inline]
fn prematch_possible(rs: &Ruleset, d: usize, hits: &[u64]) -> bool {
    match rs.prematch_literals.get(d) {
        Some(Some(ids)) => any_hit(ids, hits),
        _ => true,
    }
}

fn decode(rs: &Ruleset, log: &str, pname_roots: Option<&[u32]>, hits: &[u64]) -> DecodeOut {
    let mut out = DecodeOut {
        decoder: None,
        sets: Vec::new(),
    };
    let by_program;
    let roots: &mut dyn Iterator<Item = &crate::ruleset::DecoderNode> = match pname_roots {
        Some(ix) => {
            by_program = ix.iter().map(|&i| &rs.dec_roots_pname[i as usize]);
            &mut { by_program }
        }
        None => &mut rs.dec_roots_nopname.iter(),
    };
    for node in roots {
        let d = &rs.decoders[node.dec];
        let mut pmatch = 0usize;
        if let Some(pm) = &d.prematch {
            if !prematch_possible(rs, node.dec, hits) {
                continue;
            }
            match pm.find_end(log) {
                Some(e) => pmatch = e,
                None => continue,
            }
        }
        out.decoder = Some(node.dec);
        let mut cmatch = pmatch;
        // Pick the child: first whose prematch matches, or the first without one.
        let chain: Vec<usize>;
        let mut k;
        if node.children.is_empty() {
            chain = vec![node.dec];
            k = 0;
        } else {
            chain = node
                .children
                .iter()
                .map(|&c| rs.dec_children[c].dec)
                .collect();
            k = 0;
            let mut found = false;
            while k < chain.len() {
                let cd = &rs.decoders[chain[k]];
                if let Some(pm) = &cd.prematch {
                    let base = if cd.prematch_offset == Offset::AfterParent {
                        pmatch
                    } else {
                        0
                    };
                    let found_end = if prematch_possible(rs, chain[k], hits) {
                        pm.find_end(from(log, base))
                    } else {
                        None
                    };
                    if let Some(e) = found_end {
                        cmatch = base + e;
                        out.decoder = Some(chain[k]);
                        found = true;
                        break;
                    }
                } else {
                    out.decoder = Some(chain[k]);
                    found = true;
                    break;
                }
                if cd.get_next {
                    while k < chain.len() && rs.decoders[chain[k]].get_next {
                        k += 1;
                    }
                }
                k += 1;
            }
            if !found {
                return out;
            }
        }
        let cur = &rs.decoders[chain[k]];
        // Upstream runs a root's plugin decoder first; child regexes then add to its fields.
        if let Some(p) = &d.plugin {
            p.decode(log, &mut out.sets);
        }
        if let Some(off) = cur.json {
            let base = match off {
                Offset::AfterParent => pmatch,
                Offset::AfterPrematch => cmatch,
                _ => 0,
            };
            json_decode(from(log, base), &mut out.sets);
            return out;
        }
        let mut regex_prev: Option<usize> = None;
        loop {
            let d = &rs.decoders[chain[k]];
            if let Some(rx) = &d.regex {
                let base = match d.regex_offset {
                    Offset::Start => 0,
                    Offset::AfterParent => pmatch,
                    Offset::AfterPrematch => cmatch,
                    Offset::AfterRegex => regex_prev.unwrap_or(cmatch),
                };
                let hay = from(log, base);
                let base = log.len() - hay.len();
                match rx.captures(hay) {
                    None => {
                        if d.get_next && k + 1 < chain.len() {
                            k += 1;
                            continue;
                        }
                        return out;
                    }
                    Some(c) => {
                        regex_prev = Some(base + c.end);
                        // Groups that did not take part in the match (the other side of an
                        // alternation) are skipped, so `order` names the groups that did.
                        for (key, (a, b)) in d.order.iter().zip(c.groups.iter().flatten()) {
                            out.sets.push((key.clone(), slice_lossy(hay, *a, *b)));
                        }
                    }
                }
            }
            if d.get_next && k + 1 < chain.len() {
                k += 1;
                continue;
            }
            break;
        }
        return out;
    }
    out
}

fn json_decode(text: &str, sets: &mut Vec<(FieldKey, String)>) {
    let mut it = serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>();
    let Some(Ok(v)) = it.next() else {
        return;
    };
    fn flat(prefix: &str, v: &serde_json::Value, sets: &mut Vec<(FieldKey, String)>) {
        use serde_json::Value;
        let key = || FieldKey::from_name(prefix);
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    flat(&p, v, sets);
                }
            }
            Value::Null => {}
            Value::String(s) => sets.push((key(), s.clone())),
            Value::Bool(b) => sets.push((key(), b.to_string())),
            Value::Number(n) => sets.push((key(), n.to_string())),
            Value::Array(a) => {
                if a.iter().all(|x| !x.is_object() && !x.is_array()) {
                    let parts: Vec<String> = a
                        .iter()
                        .map(|x| match x {
                            Value::String(s) => s.clone(),
                            o => o.to_string(),
                        })
                        .collect();
                    sets.push((key(), parts.join(",")));
                } else {
                    let mut out = String::new();
                    cjson_print(v, 0, &mut out);
                    sets.push((key(), out));
                }
            }
        }
    }
    if v.is_object() {
        flat("", &v, sets);
    }
}

/// Render like cJSON's formatted printer (what Wazuh stores for arrays of objects), so rule
/// patterns written against it (`"granted":\strue`) match.
fn cjson_print(v: &serde_json::Value, depth: usize, out: &mut String) {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            if m.is_empty() {
                out.push_str("{\n");
                out.extend(std::iter::repeat_n('\t', depth));
                out.push('}');
                return;
            }
            out.push_str("{\n");
            let n = m.len();
            for (i, (k, val)) in m.iter().enumerate() {
                out.extend(std::iter::repeat_n('\t', depth + 1));
                out.push_str(&serde_json::Value::String(k.clone()).to_string());
                out.push_str(":\t");
                cjson_print(val, depth + 1, out);
                if i + 1 < n {
                    out.push(',');
                }
                out.push('\n');
            }
            out.extend(std::iter::repeat_n('\t', depth));
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                cjson_print(x, depth, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn ip_found(list: &[IpEntry], value: &str) -> bool {
    let ip: Option<u32> = value
        .trim()
        .parse::<std::net::Ipv4Addr>()
        .ok()
        .map(u32::from);
    let mut all_neg = true;
    for e in list {
        if !e.neg {
            all_neg = false;
        }
        let hit = match (&e.net, ip) {
            (IpNet::V4(net, mask), Some(ip)) => ip & mask == *net,
            (IpNet::Text(t), _) => value.trim().eq_ignore_ascii_case(t),
            _ => false,
        };
        if hit {
            return !e.neg;
        }
    }
    all_neg
}

/// `now` is the receive time: like upstream, `<time>`/`<weekday>` policies look at the clock
/// when the event is analysed, not at the log's own timestamp.
fn rule_matches(rs: &Ruleset, r: &Rule, ev: &Event, lower: &[u8], now: i64) -> bool {
    if let Some(d) = r.decoded_as {
        if ev.decoder_name != Some(d) {
            return false;
        }
    }
    let log = ev.log();
    if r.maxsize > 0 && log.len() < r.maxsize {
        return false;
    }
    for (t, p) in &r.checks {
        let val = match t {
            Target::Log => {
                if p.is_match_with_lower(log, lower) {
                    continue;
                }
                return false;
            }
            Target::Field(k) => ev.get(k),
            Target::User => ev
                .get_std(Std::DstUser)
                .or_else(|| ev.get_std(Std::SrcUser)),
            Target::Hostname => ev.hostname.as_deref(),
            Target::ProgramName => ev.program_name.as_deref(),
            Target::Location => Some(ev.location.as_str()),
        };
        match val {
            Some(v) if p.is_match(v) => {}
            _ => return false,
        }
    }
    if !r.srcip.is_empty() {
        match ev.get_std(Std::SrcIp) {
            Some(v) if ip_found(&r.srcip, v) => {}
            _ => return false,
        }
    }
    if !r.dstip.is_empty() {
        match ev.get_std(Std::DstIp) {
            Some(v) if ip_found(&r.dstip, v) => {}
            _ => return false,
        }
    }
    for lc in &r.lists {
        let list = &rs.lists[lc.list];
        let val = ev.get(&lc.field);
        let ok = match lc.lookup {
            Lookup::MatchKey => val.map(|v| list.contains_key(v)).unwrap_or(false),
            Lookup::NotMatchKey => val.map(|v| !list.contains_key(v)).unwrap_or(false),
            Lookup::MatchKeyValue => val
                .and_then(|v| list.get(v))
                .map(|lv| {
                    lc.check_value
                        .as_ref()
                        .map(|p| p.is_match(lv))
                        .unwrap_or(true)
                })
                .unwrap_or(false),
            Lookup::AddressMatchKey | Lookup::NotAddressMatchKey | Lookup::AddressMatchKeyValue => {
                let found = val.and_then(|v| address_lookup(list, v));
                match lc.lookup {
                    Lookup::AddressMatchKey => found.is_some(),
                    Lookup::NotAddressMatchKey => val.is_some() && found.is_none(),
                    _ => found
                        .map(|lv| {
                            lc.check_value
                                .as_ref()
                                .map(|p| p.is_match(lv))
                                .unwrap_or(true)
                        })
                        .unwrap_or(false),
                }
            }
        };
        if !ok {
            return false;
        }
    }
    if let Some(c) = r.compiled_rule {
        if !compiled_rule(c, ev) {
            return false;
        }
    }
    if r.time.is_some() || r.weekdays.is_some() {
        let secs = now.rem_euclid(86400);
        let minute = (secs / 60) as u32;
        if let Some((a, b, neg)) = r.time {
            let inside = if a <= b {
                minute >= a && minute < b
            } else {
                minute >= a || minute < b
            };
            if inside == neg {
                return false;
            }
        }
        if let Some(mask) = r.weekdays {
            // 1970-01-01 was a Thursday (day 4, Sunday = 0).
            let wd = ((now.div_euclid(86400) + 4).rem_euclid(7)) as u8;
            if mask & (1 << wd) == 0 {
                return false;
            }
        }
    }
    true
}

/// Wazuh's `$(field)` placeholders in descriptions, replaced by the decoded values (empty when
/// the event lacks the field).
fn expand_fields(desc: &str, v: &Verdict) -> String {
    let mut out = String::with_capacity(desc.len() + 16);
    let mut rest = desc;
    while let Some(i) = rest.find("$(") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(j) = after.find(')') else {
            out.push_str(&rest[i..]);
            return out;
        };
        let name = &after[..j];
        let val = match name {
            "hostname" => v.hostname.as_deref(),
            "program_name" => v.program_name.as_deref(),
            _ => {
                let want = match name {
                    "user" => "dstuser",
                    "data" => "extra_data",
                    n => n,
                };
                v.fields
                    .iter()
                    .find(|(k, _)| k == want)
                    .or_else(|| v.fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(want)))
                    .map(|(_, x)| x.as_str())
            }
        };
        out.push_str(val.unwrap_or(""));
        rest = &after[j + 1..];
    }
    out.push_str(rest);
    out
}

fn compiled_rule(c: CompiledRule, ev: &Event) -> bool {
    match c {
        CompiledRule::CompSrcuserDstuser => {
            match (ev.get_std(Std::SrcUser), ev.get_std(Std::DstUser)) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
        }
        CompiledRule::CheckIdSize => ev.get_std(Std::Id).map(|i| i.len() >= 10).unwrap_or(false),
        CompiledRule::CompMswinTargetuserCalleruserDiff => {
            let log = ev.log();
            let value = |label: &str| -> Option<&str> {
                let at = log.find(label)?;
                let rest = &log[at..];
                let c = rest.find(':')?;
                Some(&rest[c + 1..])
            };
            let (Some(t), Some(c)) = (value("Target Account Name"), value("Caller User Name"))
            else {
                return false;
            };
            let (t, c) = (t.as_bytes(), c.as_bytes());
            for (i, &tb) in t.iter().enumerate() {
                if c.get(i) != Some(&tb) {
                    return true;
                }
                if tb == b'\t' || (tb == b' ' && t.get(i + 1) == Some(&b' ')) {
                    break;
                }
            }
            false
        }
        CompiledRule::IsSimpleHttpRequest => {
            let Some(url) = ev.get_std(Std::Url) else {
                return false;
            };
            if let Some(a) = ev.get_std(Std::Action) {
                if !a.eq_ignore_ascii_case("GET") {
                    return false;
                }
            }
            url == "/" || !url.contains('?')
        }
        CompiledRule::IsValidCrawler => {
            const NETS: [&str; 7] = [
                "72.14.", "209.85.", "65.55.", "207.46.", "74.6.", "72.30.", "67.195.",
            ];
            NETS.iter().any(|n| ev.log().starts_with(n))
        }
    }
}

fn address_lookup<'a>(
    list: &'a std::collections::HashMap<String, String>,
    ip: &str,
) -> Option<&'a String> {
    let mut key = ip.trim();
    loop {
        if let Some(v) = list.get(key) {
            return Some(v);
        }
        // Lists hold networks as address prefixes ("10.1." or "10.1"); try shorter ones.
        match key.rfind('.') {
            Some(i) => {
                if let Some(v) = list.get(&key[..=i]) {
                    return Some(v);
                }
                key = &key[..i];
            }
            None => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RulesetBuilder;

    fn ruleset() -> Arc<Ruleset> {
        let mut b = RulesetBuilder::new();
        b.add_rules(
            "r.xml",
            br#"<group name="syslog,"><rule id="1" level="0" noalert="1"><category>syslog</category></rule>
<rule id="100" level="5"><match>fail</match><group>auth_fail,</group></rule>
<rule id="101" level="10" frequency="3" timeframe="60"><if_matched_sid>100</if_matched_sid></rule>
</group>"#,
        );
        Arc::new(b.build().0)
    }

    fn ids(eng: &mut Engine, n: usize) -> Vec<u32> {
        (0..n)
            .map(|_| eng.process("fail", 1000).rule.map(|r| r.id).unwrap_or(0))
            .collect()
    }

    #[test]
    fn frequency_rule_fires_once_enough_events_are_remembered() {
        let mut eng = Engine::new(ruleset());
        eng.time_source = TimeSource::Receive;
        // OSSEC counts `frequency` earlier events beyond the first: the 5th event fires, and
        // the events used for that alert do not count again.
        assert_eq!(
            ids(&mut eng, 10),
            vec![100, 100, 100, 100, 101, 100, 100, 100, 100, 101]
        );
    }

    #[test]
    fn correlation_list_cap_drops_the_oldest_events() {
        let mut eng = Engine::new(ruleset());
        eng.time_source = TimeSource::Receive;
        eng.limits.sid_list = 2;
        assert!(ids(&mut eng, 10).iter().all(|&i| i == 100));
    }
}

#[cfg(test)]
mod expand_tests {
    use super::*;

    #[test]
    fn description_placeholders_take_field_values() {
        let v = Verdict {
            fields: vec![
                ("srcip".into(), "10.0.0.1".into()),
                ("aws.eventName".into(), "StopLogging".into()),
            ],
            hostname: Some("h1".into()),
            ..Default::default()
        };
        assert_eq!(
            expand_fields(
                "$(aws.eventName) from $(srcip) on $(hostname), $(nope)! $(",
                &v
            ),
            "StopLogging from 10.0.0.1 on h1, ! $("
        );
    }
}
