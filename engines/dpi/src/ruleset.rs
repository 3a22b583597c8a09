//! A loaded rule set: the rules in evaluation order and the multi-pattern prefilters over their
//! fast patterns, one automaton per inspection buffer.

use crate::addr::Vars;
use crate::rules::{
    default_classes, parse_classification, parse_rule, Action, AppProto, Buf, Class, FlowbitOp,
    Match, Names, ParseCtx, Rule, RuleError,
};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use std::collections::{BTreeMap, HashMap};

/// One rules file's text and its name (for messages).
pub struct RuleSource<'a> {
    pub name: &'a str,
    pub text: &'a str,
}

/// What loading a rule set did: counts, and a warning per skipped rule naming file, line and sid.
#[derive(Debug, Default, Clone)]
pub struct LoadStats {
    pub loaded: usize,
    pub skipped: usize,
    /// Skip reason (e.g. `unsupported keyword xbits`, `invalid rule`) -> count.
    pub by_reason: BTreeMap<String, usize>,
    pub warnings: Vec<String>,
}

pub(crate) struct Prefilter {
    pub ac: AhoCorasick,
    /// Pattern id -> rule indices having it as fast pattern.
    pub rules: Vec<Vec<u32>>,
}

impl Prefilter {
    fn build(pats: Vec<(Vec<u8>, u32)>) -> Option<Prefilter> {
        if pats.is_empty() {
            return None;
        }
        let mut idx: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut uniq: Vec<Vec<u8>> = Vec::new();
        let mut rules: Vec<Vec<u32>> = Vec::new();
        for (p, r) in pats {
            let lp = p.to_ascii_lowercase();
            let i = *idx.entry(lp.clone()).or_insert_with(|| {
                uniq.push(lp);
                rules.push(Vec::new());
                uniq.len() - 1
            });
            rules[i].push(r);
        }
        let ac = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&uniq)
            .ok()?;
        Some(Prefilter { ac, rules })
    }

    /// Mark the rules whose fast pattern occurs in `hay`.
    pub fn scan(&self, hay: &[u8], mut hit: impl FnMut(u32)) {
        for m in self.ac.find_overlapping_iter(hay) {
            for &r in &self.rules[m.pattern().as_usize()] {
                hit(r);
            }
        }
    }
}

pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub(crate) pkt_pf: Option<Prefilter>,
    /// Packet rules without a packet fast pattern (always candidates), ip-only rules excluded,
    /// split by IP protocol so a UDP packet never walks the TCP-only ones: [tcp, udp, other].
    pub(crate) pkt_always: [Vec<u32>; 3],
    /// Rules with no content at all and only header checks: inspected once per flow direction.
    pub(crate) ip_only: Vec<u32>,
    pub(crate) tx_pf: Vec<(Buf, Prefilter)>,
    pub(crate) tx_always: HashMap<AppProto, Vec<u32>>,
    pub nflowbits: usize,
    pub stats: LoadStats,
}

/// Options for loading rules.
pub struct LoadOptions<'a> {
    pub vars: &'a Vars,
    /// classification.config texts; built-in Suricata defaults are used when empty.
    pub classification: Option<&'a str>,
    /// Evaluation order of actions (Suricata's `action-order`); empty = pass, drop, reject, alert.
    pub action_order: &'a [Action],
}

fn fb_rank(r: &Rule) -> u8 {
    let sets = r.flowbits.iter().any(|f| {
        matches!(
            f,
            FlowbitOp::Set(_) | FlowbitOp::Unset(_) | FlowbitOp::Toggle(_)
        )
    });
    let checks = r
        .flowbits
        .iter()
        .any(|f| matches!(f, FlowbitOp::IsSet(..) | FlowbitOp::IsNotSet(..)));
    match (sets, checks) {
        (true, false) => 0,
        (true, true) => 1,
        (false, false) => 1,
        (false, true) => 2,
    }
}

fn action_rank(a: Action, order: &[Action]) -> u8 {
    if let Some(i) = order.iter().position(|&o| o == a) {
        return i as u8;
    }
    if !order.is_empty() {
        return order.len() as u8;
    }
    match a {
        Action::Pass => 0,
        Action::Drop => 1,
        Action::Reject => 2,
        Action::Alert => 3,
    }
}

impl RuleSet {
    /// Whether rule `ri` is IP-only (or like it: a header and nothing else to inspect).
    pub(crate) fn is_ip_only(&self, ri: u32) -> bool {
        self.ip_only.binary_search(&ri).is_ok()
    }

    pub fn load(sources: &[RuleSource<'_>], opts: &LoadOptions<'_>) -> RuleSet {
        let mut classes: HashMap<String, Class> = default_classes();
        let mut stats = LoadStats::default();
        if let Some(c) = opts.classification {
            for e in parse_classification(c, &mut classes) {
                stats.warnings.push(format!("classification.config: {e}"));
            }
        }
        let mut names = Names::default();
        let mut rules = Vec::new();
        let mut seen: HashMap<(u32, u32), String> = HashMap::new();
        for src in sources {
            let mut ctx = ParseCtx {
                vars: opts.vars,
                classes: &classes,
                names: &mut names,
            };
            // Rules may continue over several lines with a trailing backslash.
            let mut pending = String::new();
            let mut start_line = 0;
            for (i, line) in src.text.lines().enumerate() {
                if pending.is_empty() {
                    start_line = i + 1;
                }
                if let Some(p) = line.strip_suffix('\\') {
                    pending.push_str(p);
                    continue;
                }
                pending.push_str(line);
                let text = std::mem::take(&mut pending);
                match parse_rule(&text, &mut ctx) {
                    Ok(None) => {}
                    Ok(Some(mut r)) => {
                        let where_ = format!("{}:{}", src.name, start_line);
                        if let Some(prev) = seen.get(&(r.gid, r.sid)) {
                            stats.skipped += 1;
                            *stats.by_reason.entry("duplicate sid".into()).or_default() += 1;
                            stats.warnings.push(format!(
                                "{where_}: sid {} duplicates the rule at {prev}; skipped",
                                r.sid
                            ));
                            continue;
                        }
                        seen.insert((r.gid, r.sid), where_);
                        r.text_line = start_line;
                        rules.push(r);
                    }
                    Err((sid, e)) => {
                        stats.skipped += 1;
                        let reason = match &e {
                            RuleError::Unsupported(k) => format!("unsupported keyword {k}"),
                            RuleError::Invalid(_) => "invalid rule".to_string(),
                        };
                        *stats.by_reason.entry(reason).or_default() += 1;
                        let sid_s = sid
                            .map(|s| format!("sid {s}"))
                            .unwrap_or_else(|| "rule without sid".into());
                        stats
                            .warnings
                            .push(format!("{}:{}: {sid_s} skipped: {e}", src.name, start_line));
                    }
                }
            }
        }
        rules.sort_by_key(|r| (action_rank(r.action, opts.action_order), fb_rank(r)));
        stats.loaded = rules.len();

        let mut pkt_pats = Vec::new();
        let mut pkt_always: [Vec<u32>; 3] = [Vec::new(), Vec::new(), Vec::new()];
        let mut ip_only = Vec::new();
        let mut tx_pats: BTreeMap<Buf, Vec<(Vec<u8>, u32)>> = BTreeMap::new();
        let mut tx_always: HashMap<AppProto, Vec<u32>> = HashMap::new();
        for (i, r) in rules.iter().enumerate() {
            let i = i as u32;
            let fast = r.fast.map(|(g, m)| {
                let grp = &r.groups[g];
                let mut pat = match &grp.matches[m] {
                    Match::Content(c) => c.pat.clone(),
                    _ => Vec::new(),
                };
                if grp.transforms.contains(&crate::rules::Transform::DotPrefix)
                    && pat.len() > 1
                    && pat[0] == b'.'
                {
                    // `.example.com` after dotprefix occurs in the raw name as `example.com`.
                    pat.remove(0);
                }
                (grp.buf, pat)
            });
            if r.is_app_tx {
                match fast {
                    Some((b, p)) if b != Buf::Pkt && b.side() != crate::rules::Side::Packet => {
                        tx_pats.entry(b).or_default().push((p, i))
                    }
                    _ => tx_always
                        .entry(r.app.unwrap_or(AppProto::Http))
                        .or_default()
                        .push(i),
                }
            } else {
                match fast {
                    Some((Buf::Pkt, p)) => pkt_pats.push((p, i)),
                    _ => {
                        // IP-only as Suricata has it: header, flow bits set/unset and
                        // thresholds only. Their header match is computed once per flow
                        // direction, which matters for the ~900 IP-reputation rules of ET Open.
                        if r.groups.is_empty()
                            && r.checks.is_empty()
                            && r.xbits.is_empty()
                            && r.flowint.is_empty()
                            && r.app.is_none()
                            && !r.flowbits.iter().any(|f| {
                                matches!(f, FlowbitOp::IsSet(..) | FlowbitOp::IsNotSet(..))
                            })
                        {
                            ip_only.push(i)
                        } else {
                            use crate::rules::Proto;
                            let (t, u, o) = match r.proto {
                                Proto::Tcp | Proto::TcpPkt | Proto::TcpStream => {
                                    (true, false, false)
                                }
                                Proto::Udp => (false, true, false),
                                Proto::Icmp => (false, false, true),
                                Proto::App(AppProto::Dns) => (true, true, false),
                                Proto::App(_) => (true, r.app == Some(AppProto::Dns), false),
                                Proto::Ip => (true, true, true),
                            };
                            for (k, on) in [t, u, o].into_iter().enumerate() {
                                if on {
                                    pkt_always[k].push(i);
                                }
                            }
                        }
                    }
                }
            }
        }
        let tx_pf = tx_pats
            .into_iter()
            .filter_map(|(b, p)| Prefilter::build(p).map(|pf| (b, pf)))
            .collect();
        RuleSet {
            rules,
            pkt_pf: Prefilter::build(pkt_pats),
            pkt_always,
            ip_only,
            tx_pf,
            tx_always,
            nflowbits: names.flowbits.len(),
            stats,
        }
    }
}
