//! Loading decoders, rules and CDB lists into an immutable, precompiled [`Ruleset`].

use std::collections::HashMap;
use std::fmt;

use crate::event::{FieldKey, Std};
use crate::pattern::{Dialect, Pattern};
use crate::xml::{self, Node};

pub const FTS_NAME: u16 = 1;
pub const FTS_ID: u16 = 2;
pub const FTS_DSTUSER: u16 = 4;
pub const FTS_SRCUSER: u16 = 8;
pub const FTS_SRCIP: u16 = 16;
pub const FTS_DSTIP: u16 = 32;
pub const FTS_DATA: u16 = 64;
pub const FTS_SYSTEMNAME: u16 = 128;
pub const FTS_LOCATION: u16 = 256;

/// Where a decoder's regex starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offset {
    Start,
    AfterParent,
    AfterPrematch,
    AfterRegex,
}

#[derive(Debug)]
pub struct Decoder {
    /// Name events get (the parent's unless `use_own_name`).
    pub name_id: u32,
    pub own_name: String,
    pub parent: Option<String>,
    pub program_name: Option<Pattern>,
    pub prematch: Option<Pattern>,
    pub prematch_offset: Offset,
    pub regex: Option<Pattern>,
    pub regex_offset: Offset,
    pub order: Vec<FieldKey>,
    pub category: String,
    /// `category` interned (see [`Ruleset::top_category`]).
    pub category_id: u32,
    /// The decoder set `<type>` itself (children without one take their parent's).
    pub explicit_type: bool,
    pub json: Option<Offset>,
    /// A built-in decoder other than JSON (`<plugin_decoder>`), run on the message.
    pub plugin: Option<crate::plugins::Plugin>,
    /// First-time-seen key fields (`<fts>`): bit i set = slot i of the key.
    pub fts: u16,
    pub get_next: bool,
    pub file: String,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct DecoderNode {
    pub dec: usize,
    pub children: Vec<usize>,
}

/// A value check of a rule: which event value and the pattern it must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The message after the syslog header (`<match>`, `<regex>`).
    Log,
    Field(FieldKey),
    User,
    Hostname,
    ProgramName,
    Location,
}

#[derive(Debug)]
pub struct IpEntry {
    pub neg: bool,
    pub net: IpNet,
}

#[derive(Debug, Clone)]
pub enum IpNet {
    V4(u32, u32),
    Text(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    MatchKey,
    NotMatchKey,
    MatchKeyValue,
    AddressMatchKey,
    NotAddressMatchKey,
    AddressMatchKeyValue,
}

#[derive(Debug)]
pub struct ListCheck {
    pub field: FieldKey,
    pub lookup: Lookup,
    pub list: usize,
    pub check_value: Option<Pattern>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    Same,
    Different,
}

#[derive(Debug, Clone)]
pub struct Context {
    pub target: CtxField,
    pub rel: Relation,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CtxField {
    Field(FieldKey),
    Location,
    Hostname,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct RuleOptions {
    pub no_log: bool,
    pub alert_by_email: bool,
    pub no_email_alert: bool,
    pub no_ar: bool,
    pub no_full_log: bool,
    pub no_counter: bool,
    pub log_alert: bool,
}

#[derive(Debug)]
pub struct Rule {
    pub id: u32,
    pub level: u8,
    /// Sort key among siblings: OSSEC puts level 0 first, then higher levels first.
    pub prio: u32,
    pub maxsize: usize,
    pub frequency: u32,
    pub timeframe: i64,
    pub ignore_time: i64,
    pub noalert: bool,
    pub overwrite: bool,
    pub groups: Vec<String>,
    pub group_str: String,
    pub description: String,
    pub mitre: Vec<String>,
    pub options: RuleOptions,
    pub category: String,
    pub decoded_as: Option<u32>,
    pub checks: Vec<(Target, Pattern)>,
    pub srcip: Vec<IpEntry>,
    pub dstip: Vec<IpEntry>,
    pub lists: Vec<ListCheck>,
    pub time: Option<(u32, u32, bool)>,
    pub weekdays: Option<u8>,
    pub if_sid: Vec<u32>,
    pub if_group: Vec<String>,
    pub if_level: Option<u8>,
    pub if_fts: bool,
    /// One of upstream's built-in C rule functions (`<compiled_rule>`).
    pub compiled_rule: Option<CompiledRule>,
    pub if_matched_sid: Option<u32>,
    pub if_matched_group: Option<Pattern>,
    pub context: Vec<Context>,
    /// OSSEC only checks port/user/location/url context when one of them is set.
    pub extra_context: bool,
    pub file: String,
    pub line: usize,
    /// Index of the correlation list this rule feeds (rules named by `if_matched_sid`).
    pub(crate) store_list: Option<usize>,
    /// Correlation lists of `if_matched_group` rules whose group this rule carries.
    pub(crate) group_lists: Vec<usize>,
    /// The list this rule searches.
    pub(crate) search_list: Option<usize>,
}

/// Upstream's built-in `<compiled_rule>` functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompiledRule {
    /// srcuser and dstuser equal, or either missing.
    CompSrcuserDstuser,
    /// The id field is at least 10 bytes long.
    CheckIdSize,
    /// Windows "Target Account Name" differs from "Caller User Name".
    CompMswinTargetuserCalleruserDiff,
    /// A GET of `/` or of a URL without a query string.
    IsSimpleHttpRequest,
    /// Source address in the published search-engine crawler ranges. Upstream also accepts
    /// addresses whose reverse and forward DNS agree on googlebot.com; a sans-IO engine does
    /// no DNS, so those are not recognised.
    IsValidCrawler,
}

impl CompiledRule {
    pub fn by_name(n: &str) -> Option<CompiledRule> {
        Some(match n.trim() {
            "comp_srcuser_dstuser" => CompiledRule::CompSrcuserDstuser,
            "check_id_size" => CompiledRule::CheckIdSize,
            "comp_mswin_targetuser_calleruser_diff" => {
                CompiledRule::CompMswinTargetuserCalleruserDiff
            }
            "is_simple_http_request" => CompiledRule::IsSimpleHttpRequest,
            "is_valid_crawler" => CompiledRule::IsValidCrawler,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct RuleNode {
    pub rule: usize,
    pub children: Vec<usize>,
    /// `decoded_as` of each child (u32::MAX = any), so non-matching children are skipped
    /// without touching their rule.
    pub child_decoded_as: Vec<u32>,
}

/// A construct that was not loaded, reported once.
#[derive(Debug, Clone)]
pub struct Skipped {
    pub file: String,
    pub line: usize,
    pub what: String,
    pub reason: String,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {} skipped: {}",
            self.file, self.line, self.what, self.reason
        )
    }
}

/// What a load did.
#[derive(Debug, Default, Clone)]
pub struct LoadSummary {
    pub files: usize,
    pub decoders: usize,
    pub rules: usize,
    pub lists: usize,
    pub skipped: Vec<Skipped>,
}

impl LoadSummary {
    /// Skips counted by reason (the text before any ':' detail).
    pub fn skipped_by_reason(&self) -> Vec<(String, usize)> {
        let mut m: HashMap<String, usize> = HashMap::new();
        for s in &self.skipped {
            let key = s.reason.split(':').next().unwrap_or("").trim().to_string();
            *m.entry(key).or_default() += 1;
        }
        let mut v: Vec<_> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }
}

impl fmt::Display for LoadSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} files, {} decoders, {} rules, {} lists loaded; {} skipped",
            self.files,
            self.decoders,
            self.rules,
            self.lists,
            self.skipped.len()
        )?;
        let by = self.skipped_by_reason();
        if !by.is_empty() {
            write!(f, " (")?;
            for (i, (r, n)) in by.iter().enumerate() {
                if i > 0 {
                    write!(f, ", ")?;
                }
                write!(f, "{n} {r}")?;
            }
            write!(f, ")")?;
        }
        Ok(())
    }
}

/// How `frequency` counts: a rule fires when more than `frequency - frequency_offset` earlier
/// matching events are in the timeframe. Negative (the default) = choose per ruleset: 2 for
/// Wazuh rulesets, 0 for OSSEC's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialects {
    pub frequency_offset: i64,
}

impl Default for Dialects {
    fn default() -> Self {
        Dialects {
            frequency_offset: -1,
        }
    }
}

/// The compiled ruleset (immutable, shareable).
#[derive(Debug, Default)]
pub struct Ruleset {
    pub decoders: Vec<Decoder>,
    pub dec_roots_pname: Vec<DecoderNode>,
    pub dec_roots_nopname: Vec<DecoderNode>,
    pub dec_children: Vec<DecoderNode>,
    pub names: Vec<String>,
    pub rules: Vec<Rule>,
    pub nodes: Vec<RuleNode>,
    pub top: Vec<usize>,
    pub lists: Vec<HashMap<String, String>>,
    pub list_names: Vec<String>,
    pub n_corr_lists: usize,
    pub max_timeframe: i64,
    /// OSSEC 4.x correlation semantics (an earlier event already counted toward an alert of
    /// this level stops the search before any context check), rather than Wazuh's.
    pub ossec_dialect: bool,
    /// Interned category of each `top` node's rule, and of events no decoder named.
    pub top_category: Vec<u32>,
    pub syslog_category: u32,
    /// Literal prefilter: one Aho-Corasick pass over the lower-cased message finds which of
    /// the rules' required literals occur; a rule whose literals are all absent is skipped
    /// without evaluating it.
    pub(crate) literals: Option<aho_corasick::AhoCorasick>,
    pub(crate) n_literals: usize,
    /// Per rule: literal ids of which one must occur for the rule to match.
    pub(crate) rule_literals: Vec<Option<Box<[u32]>>>,
    /// Per decoder: literal ids of which one must occur for its prematch to match.
    pub(crate) prematch_literals: Vec<Option<Box<[u32]>>>,
}

/// Builds a [`Ruleset`] from in-memory files. Sans-IO: the caller reads the files.
#[derive(Default)]
pub struct RulesetBuilder {
    decoder_files: Vec<(String, String)>,
    rule_files: Vec<(String, String)>,
    list_files: Vec<(String, String)>,
    summary: LoadSummary,
    pub dialects: Dialects,
}

/// What a file holds, read from its elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Decoders,
    Rules,
    Unknown,
}

/// Tell decoder files from rule files by their top-level elements.
pub fn sniff_kind(text: &str) -> FileKind {
    let t = text;
    let dec = t.find("<decoder");
    let grp = t.find("<group");
    let rule = t.find("<rule ");
    match (dec, grp.or(rule)) {
        (Some(_), None) => FileKind::Decoders,
        (None, Some(_)) => FileKind::Rules,
        (Some(d), Some(g)) => {
            if d < g {
                FileKind::Decoders
            } else {
                FileKind::Rules
            }
        }
        (None, None) => FileKind::Unknown,
    }
}

impl RulesetBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add an XML file; whether it holds decoders or rules is read from its elements.
    pub fn add_xml(&mut self, name: &str, bytes: &[u8]) -> FileKind {
        let text = String::from_utf8_lossy(bytes).into_owned();
        let k = sniff_kind(&text);
        match k {
            FileKind::Decoders => self.decoder_files.push((name.to_string(), text)),
            FileKind::Rules => self.rule_files.push((name.to_string(), text)),
            FileKind::Unknown => self.summary.skipped.push(Skipped {
                file: name.to_string(),
                line: 1,
                what: "file".into(),
                reason: "neither decoders nor rules: no <decoder> or <group> element".into(),
            }),
        }
        k
    }

    pub fn add_decoders(&mut self, name: &str, bytes: &[u8]) {
        self.decoder_files.push((
            name.to_string(),
            String::from_utf8_lossy(bytes).into_owned(),
        ));
    }

    pub fn add_rules(&mut self, name: &str, bytes: &[u8]) {
        self.rule_files.push((
            name.to_string(),
            String::from_utf8_lossy(bytes).into_owned(),
        ));
    }

    /// Add a CDB-style text list (`key:value` lines). `name` is its path relative to the
    /// lists directory (e.g. `amazon/aws-sources`); rules may refer to it as
    /// `etc/lists/NAME`.
    pub fn add_list(&mut self, name: &str, bytes: &[u8]) {
        self.list_files.push((
            name.to_string(),
            String::from_utf8_lossy(bytes).into_owned(),
        ));
    }

    pub fn build(mut self) -> (Ruleset, LoadSummary) {
        let mut rs = Ruleset::default();
        self.summary.files =
            self.decoder_files.len() + self.rule_files.len() + self.list_files.len();
        // Lists first: rules refer to them.
        for (name, text) in std::mem::take(&mut self.list_files) {
            let mut m = HashMap::new();
            for line in text.lines() {
                let line = line.trim_end_matches('\r');
                if line.is_empty() {
                    continue;
                }
                let (k, v) = split_list_line(line);
                m.insert(k, v);
            }
            let name = name.trim_start_matches("./").to_string();
            if let Some(i) = rs.list_names.iter().position(|n| *n == name) {
                rs.lists[i] = m;
            } else {
                rs.list_names.push(name);
                rs.lists.push(m);
            }
            self.summary.lists += 1;
        }
        let mut names: HashMap<String, u32> = HashMap::new();
        let dec_files = std::mem::take(&mut self.decoder_files);
        for (file, text) in &dec_files {
            self.load_decoder_file(&mut rs, &mut names, file, text);
        }
        self.link_decoders(&mut rs);
        let rule_files = std::mem::take(&mut self.rule_files);
        if self.dialects.frequency_offset < 0 {
            // Auto: Wazuh stores frequency minus two (fires on the N-th event), OSSEC 4.x
            // compares the attribute as written (fires on the N+2-th). Wazuh rulesets carry
            // MITRE ids; OSSEC's never do.
            let wazuh = rule_files.iter().any(|(_, t)| t.contains("<mitre>"));
            self.dialects.frequency_offset = if wazuh { 2 } else { 0 };
        }
        rs.ossec_dialect = self.dialects.frequency_offset == 0;
        let mut defs: Vec<Rule> = Vec::new();
        for (file, text) in &rule_files {
            self.load_rule_file(&rs, &names, &mut defs, file, text);
        }
        self.build_tree(&mut rs, defs);
        build_literal_prefilter(&mut rs);
        {
            let mut cats: HashMap<String, u32> = HashMap::new();
            rs.syslog_category = intern(&mut cats, "syslog");
            for d in rs.decoders.iter_mut() {
                d.category_id = intern(&mut cats, &d.category);
            }
            rs.top_category = rs
                .top
                .iter()
                .map(|&n| intern(&mut cats, &rs.rules[rs.nodes[n].rule].category))
                .collect();
        }
        rs.names = {
            let mut v = vec![String::new(); names.len()];
            for (n, i) in names {
                v[i as usize] = n;
            }
            v
        };
        self.summary.decoders = rs.decoders.len();
        self.summary.rules = rs.rules.len();
        (rs, self.summary)
    }

    fn skip(&mut self, file: &str, line: usize, what: String, reason: String) {
        self.summary.skipped.push(Skipped {
            file: file.to_string(),
            line,
            what,
            reason,
        });
    }

    fn parse_file(&mut self, file: &str, text: &str) -> Option<Vec<Node>> {
        match xml::parse(text) {
            Ok(mut nodes) => {
                xml::apply_vars(&mut nodes);
                Some(nodes)
            }
            Err(e) => {
                self.skip(
                    file,
                    e.line,
                    "file".into(),
                    format!("XML error: {}", e.message),
                );
                None
            }
        }
    }

    fn load_decoder_file(
        &mut self,
        rs: &mut Ruleset,
        names: &mut HashMap<String, u32>,
        file: &str,
        text: &str,
    ) {
        let Some(nodes) = self.parse_file(file, text) else {
            return;
        };
        for n in &nodes {
            match n.name.as_str() {
                "decoder" => match parse_decoder(n, file, names) {
                    Ok(d) => rs.decoders.push(d),
                    Err(reason) => self.skip(
                        file,
                        n.line,
                        format!("decoder '{}'", n.attr("name").unwrap_or("?")),
                        reason,
                    ),
                },
                "var" => {}
                other => self.skip(
                    file,
                    n.line,
                    format!("element <{other}>"),
                    "unsupported construct: not a decoder".into(),
                ),
            }
        }
    }

    fn link_decoders(&mut self, rs: &mut Ruleset) {
        // Roots in load order; children attach to every root of their parent's name.
        let mut roots: Vec<(bool, usize)> = Vec::new(); // (has program name, decoder)
        for (i, d) in rs.decoders.iter().enumerate() {
            if d.parent.is_none() {
                roots.push((d.program_name.is_some(), i));
            }
        }
        let mut root_nodes: Vec<DecoderNode> = roots
            .iter()
            .map(|&(_, d)| DecoderNode {
                dec: d,
                children: Vec::new(),
            })
            .collect();
        let mut children: Vec<DecoderNode> = Vec::new();
        let mut bad: Vec<usize> = Vec::new();
        for i in 0..rs.decoders.len() {
            let Some(parent) = rs.decoders[i].parent.clone() else {
                continue;
            };
            let mut found = false;
            for rn in root_nodes.iter_mut() {
                if rs.decoders[rn.dec].own_name == parent {
                    // Same-named siblings chain their regexes (Wazuh/OSSEC "get_next").
                    if let Some(&last) = rn.children.last() {
                        let prev = children[last].dec;
                        if rs.decoders[prev].own_name == rs.decoders[i].own_name {
                            rs.decoders[prev].get_next = true;
                        }
                    }
                    children.push(DecoderNode {
                        dec: i,
                        children: Vec::new(),
                    });
                    rn.children.push(children.len() - 1);
                    found = true;
                }
            }
            if !found {
                bad.push(i);
            }
        }
        for i in bad {
            let d = &rs.decoders[i];
            let (f, l, n, p) = (
                d.file.clone(),
                d.line,
                d.own_name.clone(),
                d.parent.clone().unwrap_or_default(),
            );
            self.skip(
                &f,
                l,
                format!("decoder '{n}'"),
                format!("parent not found: '{p}'"),
            );
        }
        // Children take their parent's name unless use_own_name, and its type unless they
        // declare one.
        for rn in &root_nodes {
            let pid = rs.decoders[rn.dec].name_id;
            let pcat = rs.decoders[rn.dec].category.clone();
            for &c in &rn.children {
                let d = children[c].dec;
                if rs.decoders[d].name_id == u32::MAX {
                    rs.decoders[d].name_id = pid;
                }
                if !rs.decoders[d].explicit_type {
                    rs.decoders[d].category = pcat.clone();
                }
            }
        }
        for (hp, rn) in roots.iter().map(|r| r.0).zip(root_nodes) {
            if hp {
                rs.dec_roots_pname.push(rn);
            } else {
                rs.dec_roots_nopname.push(rn);
            }
        }
        rs.dec_children = children;
    }

    fn load_rule_file(
        &mut self,
        rs: &Ruleset,
        names: &HashMap<String, u32>,
        defs: &mut Vec<Rule>,
        file: &str,
        text: &str,
    ) {
        let Some(nodes) = self.parse_file(file, text) else {
            return;
        };
        for g in &nodes {
            match g.name.as_str() {
                "group" => {
                    let gname = g.attr("name").unwrap_or("").to_string();
                    for r in &g.children {
                        if r.name != "rule" {
                            self.skip(
                                file,
                                r.line,
                                format!("element <{}>", r.name),
                                "unsupported construct: not a rule".into(),
                            );
                            continue;
                        }
                        match parse_rule(r, &gname, file, names, rs, self.dialects) {
                            Ok(rule) => defs.push(rule),
                            Err(reason) => self.skip(
                                file,
                                r.line,
                                format!("rule {}", r.attr("id").unwrap_or("?")),
                                reason,
                            ),
                        }
                    }
                }
                "var" => {}
                other => self.skip(
                    file,
                    g.line,
                    format!("element <{other}>"),
                    "unsupported construct: top-level element is not a group".into(),
                ),
            }
        }
    }

    fn build_tree(&mut self, rs: &mut Ruleset, defs: Vec<Rule>) {
        // Overwrites replace the earlier definition in place (keeping its load position).
        let mut rules: Vec<Rule> = Vec::new();
        let mut by_id: HashMap<u32, usize> = HashMap::new();
        for r in defs {
            match by_id.get(&r.id) {
                Some(&i) if r.overwrite => {
                    // Like upstream, an overwrite replaces the rule's options but keeps its
                    // place in the tree and its correlation source.
                    let mut r = r;
                    let old = &mut rules[i];
                    r.if_sid = std::mem::take(&mut old.if_sid);
                    r.if_group = std::mem::take(&mut old.if_group);
                    r.if_level = old.if_level;
                    r.if_matched_sid = old.if_matched_sid;
                    r.if_matched_group = old.if_matched_group.take();
                    rules[i] = r;
                }
                Some(_) => {
                    let (f, l, id) = (r.file.clone(), r.line, r.id);
                    self.skip(
                        &f,
                        l,
                        format!("rule {id}"),
                        "duplicate rule id without overwrite=\"yes\"".into(),
                    );
                }
                None => {
                    by_id.insert(r.id, rules.len());
                    rules.push(r);
                }
            }
        }
        let mut nodes: Vec<RuleNode> = Vec::new();
        let mut top: Vec<usize> = Vec::new();
        let mut placed = vec![false; rules.len()];

        fn insert_sorted(list: &mut Vec<usize>, nodes: &[RuleNode], rules: &[Rule], new: usize) {
            let p = rules[nodes[new].rule].prio;
            let pos = list
                .iter()
                .position(|&n| p > rules[nodes[n].rule].prio)
                .unwrap_or(list.len());
            list.insert(pos, new);
        }

        // Nodes of each rule id, so if_sid parents are found without walking the tree.
        let mut nodes_of: HashMap<u32, Vec<usize>> = HashMap::new();
        for ri in 0..rules.len() {
            let r = &rules[ri];
            let mut parents: Vec<Option<usize>> = Vec::new(); // None = top
            if r.id < 10 {
                parents.push(None);
            } else if !r.if_sid.is_empty() {
                for sid in &r.if_sid {
                    if let Some(ns) = nodes_of.get(sid) {
                        parents.extend(ns.iter().map(|&n| Some(n)));
                    }
                }
                if parents.is_empty() {
                    let (f, l, id, s) = (r.file.clone(), r.line, r.id, r.if_sid.clone());
                    self.skip(
                        &f,
                        l,
                        format!("rule {id}"),
                        format!("if_sid not found: {s:?}"),
                    );
                    continue;
                }
            } else if !r.if_group.is_empty() {
                // Every node is reachable from the top, so a scan of all nodes finds the same
                // parents as a tree walk, without re-walking the tree for every rule.
                for n in 0..nodes.len() {
                    let pr = &rules[nodes[n].rule];
                    if pr.id != r.id
                        && r.if_group
                            .iter()
                            .any(|g| pr.groups.iter().any(|pg| pg == g))
                    {
                        parents.push(Some(n));
                    }
                }
                if parents.is_empty() {
                    let (f, l, id, s) = (r.file.clone(), r.line, r.id, r.if_group.clone());
                    self.skip(
                        &f,
                        l,
                        format!("rule {id}"),
                        format!("if_group matches no loaded rule: {s:?}"),
                    );
                    continue;
                }
            } else if let Some(lv) = r.if_level {
                for n in 0..nodes.len() {
                    let pr = &rules[nodes[n].rule];
                    if pr.id != r.id && pr.level >= lv {
                        parents.push(Some(n));
                    }
                }
                if parents.is_empty() {
                    continue;
                }
            } else {
                let cat = top
                    .iter()
                    .copied()
                    .find(|&n| rules[nodes[n].rule].category == r.category);
                match cat {
                    Some(n) => parents.push(Some(n)),
                    None => {
                        // No template rule for this category: make it a root of its own.
                        parents.push(None);
                    }
                }
            }
            placed[ri] = true;
            for p in parents {
                nodes.push(RuleNode {
                    rule: ri,
                    children: Vec::new(),
                    child_decoded_as: Vec::new(),
                });
                let new = nodes.len() - 1;
                nodes_of.entry(rules[ri].id).or_default().push(new);
                match p {
                    None => insert_sorted(&mut top, &nodes, &rules, new),
                    Some(pn) => {
                        let mut ch = std::mem::take(&mut nodes[pn].children);
                        insert_sorted(&mut ch, &nodes, &rules, new);
                        nodes[pn].children = ch;
                    }
                }
            }
        }

        // Correlation lists.
        let mut n_lists = 0;
        let id_index: HashMap<u32, usize> = rules
            .iter()
            .enumerate()
            .filter(|(i, _)| placed[*i])
            .map(|(i, r)| (r.id, i))
            .collect();
        for ri in 0..rules.len() {
            if !placed[ri] {
                continue;
            }
            if let Some(sid) = rules[ri].if_matched_sid {
                if let Some(&t) = id_index.get(&sid) {
                    let li = match rules[t].store_list {
                        Some(l) => l,
                        None => {
                            rules[t].store_list = Some(n_lists);
                            n_lists += 1;
                            n_lists - 1
                        }
                    };
                    rules[ri].search_list = Some(li);
                } else {
                    let (f, l, id) = (rules[ri].file.clone(), rules[ri].line, rules[ri].id);
                    self.skip(
                        &f,
                        l,
                        format!("rule {id}"),
                        format!("if_matched_sid not found: {sid}"),
                    );
                }
            } else if rules[ri].if_matched_group.is_some() {
                let li = n_lists;
                n_lists += 1;
                rules[ri].search_list = Some(li);
                // Upstream marks the rule tree as it stands when this rule is read: only
                // rules loaded up to here feed the list.
                for t in 0..=ri {
                    let hit = rules[ri]
                        .if_matched_group
                        .as_ref()
                        .map(|p| p.is_match(&rules[t].group_str))
                        .unwrap_or(false);
                    if hit && placed[t] {
                        rules[t].group_lists.push(li);
                    }
                }
            }
        }
        for i in 0..nodes.len() {
            let cda = nodes[i]
                .children
                .iter()
                .map(|&c| rules[nodes[c].rule].decoded_as.unwrap_or(u32::MAX))
                .collect();
            nodes[i].child_decoded_as = cda;
        }
        rs.max_timeframe = rules.iter().map(|r| r.timeframe).max().unwrap_or(0);
        rs.n_corr_lists = n_lists;
        rs.rules = rules;
        rs.nodes = nodes;
        rs.top = top;
    }
}

fn build_literal_prefilter(rs: &mut Ruleset) {
    let mut ids: HashMap<Vec<u8>, u32> = HashMap::new();
    let mut needles: Vec<Vec<u8>> = Vec::new();
    let mut per_rule = Vec::with_capacity(rs.rules.len());
    for r in &rs.rules {
        // Any one Log check will do (all must match); take the one with fewest literals.
        let best = r
            .checks
            .iter()
            .filter(|(t, _)| *t == Target::Log)
            .filter_map(|(_, p)| p.required_any())
            .min_by_key(|v| v.len());
        per_rule.push(best.map(|lits| {
            lits.into_iter()
                .map(|l| {
                    *ids.entry(l.clone()).or_insert_with(|| {
                        needles.push(l);
                        (needles.len() - 1) as u32
                    })
                })
                .collect::<Vec<u32>>()
                .into_boxed_slice()
        }));
    }
    // Decoder prematches: a prematch whose literals are all absent cannot match (a suffix of
    // the message holds no literal the message lacks).
    let mut per_decoder = Vec::with_capacity(rs.decoders.len());
    for d in &rs.decoders {
        let lits = d.prematch.as_ref().and_then(|p| p.required_any());
        per_decoder.push(lits.map(|lits| {
            lits.into_iter()
                .map(|l| {
                    *ids.entry(l.clone()).or_insert_with(|| {
                        needles.push(l);
                        (needles.len() - 1) as u32
                    })
                })
                .collect::<Vec<u32>>()
                .into_boxed_slice()
        }));
    }
    if needles.is_empty() {
        return;
    }
    match aho_corasick::AhoCorasick::builder()
        .match_kind(aho_corasick::MatchKind::Standard)
        .kind(Some(aho_corasick::AhoCorasickKind::DFA))
        .build(&needles)
    {
        Ok(ac) => {
            rs.literals = Some(ac);
            rs.n_literals = needles.len();
            rs.rule_literals = per_rule;
            rs.prematch_literals = per_decoder;
        }
        // Too large to build: run without the prefilter (same verdicts, slower).
        Err(_) => {}
    }
}

fn split_list_line(line: &str) -> (String, String) {
    if let Some(rest) = line.strip_prefix('"') {
        if let Some(e) = rest.find('"') {
            let key = rest[..e].to_string();
            let after = &rest[e + 1..];
            let v = after.strip_prefix(':').unwrap_or(after);
            return (key, v.trim_matches('"').to_string());
        }
    }
    match line.find(':') {
        Some(i) => (line[..i].to_string(), line[i + 1..].to_string()),
        None => (line.to_string(), String::new()),
    }
}

fn dialect_of(n: &Node, default: Dialect) -> Result<Dialect, String> {
    match n.attr("type") {
        None => Ok(default),
        Some(t) => Dialect::from_type_attr(t)
            .ok_or_else(|| format!("unsupported construct: <{} type=\"{t}\">", n.name)),
    }
}

fn negate_of(n: &Node) -> bool {
    n.attr("negate")
        .map(|v| v.trim().eq_ignore_ascii_case("yes"))
        .unwrap_or(false)
}

fn offset_of(n: &Node) -> Result<Offset, String> {
    match n.attr("offset").map(str::trim) {
        None => Ok(Offset::Start),
        Some("after_parent") => Ok(Offset::AfterParent),
        Some("after_prematch") => Ok(Offset::AfterPrematch),
        Some("after_regex") => Ok(Offset::AfterRegex),
        Some(o) => Err(format!("invalid offset \"{o}\"")),
    }
}

fn compile(src: &str, d: Dialect, neg: bool, what: &str) -> Result<Pattern, String> {
    Pattern::new(src, d, neg).map_err(|e| format!("bad {what} pattern '{src}': {e}"))
}

fn intern(names: &mut HashMap<String, u32>, n: &str) -> u32 {
    let l = names.len() as u32;
    *names.entry(n.to_string()).or_insert(l)
}

fn parse_decoder(
    n: &Node,
    file: &str,
    names: &mut HashMap<String, u32>,
) -> Result<Decoder, String> {
    let name = n
        .attr("name")
        .ok_or("decoder without a name attribute")?
        .trim()
        .to_string();
    let mut parent = None;
    let mut pname: Option<(String, Dialect)> = None;
    let mut prematch: Option<(String, Dialect, Offset)> = None;
    let mut regex: Option<(String, Dialect, Offset)> = None;
    let mut order = Vec::new();
    let mut category = "syslog".to_string();
    let mut explicit_type = false;
    let mut json = None;
    let mut plugin = None;
    let mut use_own_name = false;
    let mut fts = 0u16;
    for c in &n.children {
        let t = c.text.as_str();
        match c.name.as_str() {
            "parent" => parent = Some(t.trim().to_string()),
            "program_name" | "program_name_pcre2" => {
                let d = if c.name.ends_with("pcre2") {
                    Dialect::Pcre2Caseless
                } else {
                    dialect_of(c, Dialect::OsMatch)?
                };
                match &mut pname {
                    Some((s, dd)) => {
                        // Upstream concatenates repeated elements; the last type wins.
                        s.push_str(t);
                        *dd = d;
                    }
                    None => pname = Some((t.to_string(), d)),
                }
            }
            "prematch" | "prematch_pcre2" => {
                let d = if c.name.ends_with("pcre2") {
                    Dialect::Pcre2Caseless
                } else {
                    dialect_of(c, Dialect::OsRegex)?
                };
                let o = offset_of(c)?;
                match &mut prematch {
                    Some((s, dd, _)) => {
                        s.push_str(t);
                        *dd = d;
                    }
                    None => prematch = Some((t.to_string(), d, o)),
                }
            }
            "regex" | "pcre2" => {
                let d = if c.name == "pcre2" {
                    Dialect::Pcre2Caseless
                } else {
                    dialect_of(c, Dialect::OsRegex)?
                };
                let o = offset_of(c)?;
                match &mut regex {
                    Some((s, dd, _)) => {
                        s.push_str(t);
                        *dd = d;
                    }
                    None => regex = Some((t.to_string(), d, o)),
                }
            }
            "order" => {
                for f in t.split(',') {
                    let f = f.trim();
                    if !f.is_empty() {
                        order.push(FieldKey::from_name(f));
                    }
                }
            }
            "type" => {
                category = t.trim().to_string();
                explicit_type = true;
            }
            "use_own_name" => use_own_name = t.trim() == "true" || t.trim() == "yes",
            "plugin_decoder" => {
                if t.trim() == "JSON_Decoder" {
                    json = Some(offset_of(c)?);
                } else if let Some(p) = crate::plugins::Plugin::by_name(t.trim()) {
                    plugin = Some(p);
                } else {
                    return Err(format!(
                        "unsupported construct: plugin_decoder {}",
                        t.trim()
                    ));
                }
            }
            "fts" => {
                for f in t.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                    fts |= match f {
                        "name" => FTS_NAME,
                        "id" => FTS_ID,
                        "user" | "dstuser" => FTS_DSTUSER,
                        "srcuser" => FTS_SRCUSER,
                        "srcip" => FTS_SRCIP,
                        "dstip" => FTS_DSTIP,
                        "data" | "extra_data" => FTS_DATA,
                        "system_name" => FTS_SYSTEMNAME,
                        "location" => FTS_LOCATION,
                        o => return Err(format!("unsupported construct: fts field '{o}'")),
                    };
                }
            }
            "ftscomment" | "accumulate" | "json_null_field" | "json_array_structure" => {}
            other => return Err(format!("unsupported construct: <{other}>")),
        }
    }
    let program_name = match pname {
        Some((s, d)) => Some(compile(&s, d, false, "program_name")?),
        None => None,
    };
    let (prematch, prematch_offset) = match prematch {
        Some((s, d, o)) => (Some(compile(&s, d, false, "prematch")?), o),
        None => (None, Offset::Start),
    };
    let (regex, regex_offset) = match regex {
        Some((s, d, o)) => (Some(compile(&s, d, false, "regex")?), o),
        None => (None, Offset::Start),
    };
    let own_id = intern(names, &name);
    Ok(Decoder {
        name_id: if parent.is_none() || use_own_name {
            own_id
        } else {
            u32::MAX
        },
        own_name: name,
        parent,
        program_name,
        prematch,
        prematch_offset,
        regex,
        regex_offset,
        order,
        category,
        category_id: 0,
        explicit_type,
        json,
        plugin,
        fts,
        get_next: false,
        file: file.to_string(),
        line: n.line,
    })
}

fn parse_ip(s: &str) -> IpEntry {
    let s = s.trim();
    let (neg, s) = match s.strip_prefix('!') {
        Some(r) => (true, r.trim()),
        None => (false, s),
    };
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => (a, b.trim().parse::<u32>().ok()),
        None => (s, None),
    };
    let v4: Option<std::net::Ipv4Addr> = addr.trim().parse().ok();
    let net = match v4 {
        Some(ip) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            IpNet::V4(u32::from(ip) & mask, mask)
        }
        None => IpNet::Text(s.to_ascii_lowercase()),
    };
    IpEntry { neg, net }
}

fn parse_clock(s: &str) -> Option<u32> {
    let s = s.trim().to_ascii_lowercase();
    let (body, add) = if let Some(b) = s.strip_suffix("pm") {
        (b.trim().to_string(), 12)
    } else if let Some(b) = s.strip_suffix("am") {
        (b.trim().to_string(), 0)
    } else {
        (s.clone(), 0)
    };
    let (h, m) = match body.split_once(':') {
        Some((h, m)) => (h.trim().parse::<u32>().ok()?, m.trim().parse::<u32>().ok()?),
        None => (body.trim().parse::<u32>().ok()?, 0),
    };
    let h = if add == 12 && h < 12 {
        h + 12
    } else if add == 0 && s.ends_with("am") && h == 12 {
        0
    } else {
        h
    };
    if h > 24 || m > 59 {
        return None;
    }
    Some(h * 60 + m)
}

fn parse_time(s: &str) -> Option<(u32, u32, bool)> {
    let s = s.trim();
    let (neg, s) = match s.strip_prefix('!') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (a, b) = s.split_once('-')?;
    Some((parse_clock(a)?, parse_clock(b)?, neg))
}

fn parse_weekdays(s: &str) -> Option<u8> {
    let days = [
        "sunday",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
    ];
    let day = |w: &str| -> Option<usize> {
        let w = w.trim().to_ascii_lowercase();
        days.iter().position(|d| d.starts_with(&w) && w.len() >= 3)
    };
    let mut mask = 0u8;
    let s = s.trim().to_ascii_lowercase();
    let (neg, s) = match s.strip_prefix('!') {
        Some(r) => (true, r.to_string()),
        None => (false, s),
    };
    for part in s.split(',') {
        let p = part.trim();
        if p.is_empty() {
            continue;
        }
        if p == "weekdays" {
            mask |= 0b0111110;
        } else if p == "weekends" {
            mask |= 0b1000001;
        } else if let Some((a, b)) = p.split_once('-') {
            let (a, b) = (day(a)?, day(b)?);
            let mut i = a;
            loop {
                mask |= 1 << i;
                if i == b {
                    break;
                }
                i = (i + 1) % 7;
            }
        } else {
            mask |= 1 << day(p)?;
        }
    }
    Some(if neg { !mask & 0x7f } else { mask })
}

fn target_of(name: &str) -> Option<(Target, Dialect)> {
    let base = name.strip_suffix("_pcre2").unwrap_or(name);
    let t = match base {
        "srcport" => Target::Field(FieldKey::Std(Std::SrcPort)),
        "dstport" => Target::Field(FieldKey::Std(Std::DstPort)),
        "user" => Target::User,
        "srcuser" => Target::Field(FieldKey::Std(Std::SrcUser)),
        "dstuser" => Target::Field(FieldKey::Std(Std::DstUser)),
        "url" => Target::Field(FieldKey::Std(Std::Url)),
        "id" => Target::Field(FieldKey::Std(Std::Id)),
        "status" => Target::Field(FieldKey::Std(Std::Status)),
        "extra_data" | "data" => Target::Field(FieldKey::Std(Std::Data)),
        "action" => Target::Field(FieldKey::Std(Std::Action)),
        "protocol" => Target::Field(FieldKey::Std(Std::Protocol)),
        "system_name" => Target::Field(FieldKey::Std(Std::SystemName)),
        "hostname" => Target::Hostname,
        "program_name" => Target::ProgramName,
        "location" => Target::Location,
        _ => return None,
    };
    let d = if name.ends_with("_pcre2") {
        Dialect::Pcre2
    } else {
        Dialect::OsMatch
    };
    Some((t, d))
}

fn ctx_of(name: &str, ossec: bool) -> Option<Context> {
    let (rel, base) = if let Some(b) = name.strip_prefix("same_") {
        (Relation::Same, b)
    } else if let Some(b) = name.strip_prefix("different_") {
        (Relation::Different, b)
    } else if let Some(b) = name.strip_prefix("not_same_") {
        (Relation::Different, b)
    } else {
        return None;
    };
    let target = match base {
        "source_ip" | "srcip" => CtxField::Field(FieldKey::Std(Std::SrcIp)),
        "dstip" => CtxField::Field(FieldKey::Std(Std::DstIp)),
        "src_port" | "srcport" => CtxField::Field(FieldKey::Std(Std::SrcPort)),
        "dst_port" | "dstport" => CtxField::Field(FieldKey::Std(Std::DstPort)),
        "user" | "dstuser" => CtxField::Field(FieldKey::Std(Std::DstUser)),
        "srcuser" => CtxField::Field(FieldKey::Std(Std::SrcUser)),
        "id" => CtxField::Field(FieldKey::Std(Std::Id)),
        "url" => CtxField::Field(FieldKey::Std(Std::Url)),
        "protocol" => CtxField::Field(FieldKey::Std(Std::Protocol)),
        "action" => CtxField::Field(FieldKey::Std(Std::Action)),
        "status" => CtxField::Field(FieldKey::Std(Std::Status)),
        "data" | "extra_data" => CtxField::Field(FieldKey::Std(Std::Data)),
        "system_name" => CtxField::Field(FieldKey::Std(Std::SystemName)),
        // OSSEC 4.x compares the hostname for same_location (Wazuh: the location).
        "location" if ossec => CtxField::Hostname,
        "location" => CtxField::Location,
        "agent" => CtxField::Hostname,
        _ => return None,
    };
    Some(Context { target, rel })
}

fn parse_rule(
    n: &Node,
    group: &str,
    file: &str,
    names: &HashMap<String, u32>,
    rs: &Ruleset,
    dialects: Dialects,
) -> Result<Rule, String> {
    let mut id = None;
    let mut level = None;
    let mut frequency = 0i64;
    let mut timeframe = 360i64;
    let mut ignore_time = 0;
    let mut maxsize = 0;
    let mut noalert = false;
    let mut overwrite = false;
    for (k, v) in &n.attrs {
        let v = v.trim();
        let num = || {
            v.parse::<i64>()
                .map_err(|_| format!("attribute {k}=\"{v}\" is not a number"))
        };
        match k.to_ascii_lowercase().as_str() {
            "id" => id = Some(num()? as u32),
            "level" => level = Some(num()?.clamp(0, 16) as u8),
            "frequency" => frequency = num()?,
            "timeframe" => timeframe = num()?,
            "ignore" => ignore_time = num()?,
            "maxsize" => maxsize = num()? as usize,
            "noalert" => noalert = true,
            "overwrite" => overwrite = v == "yes",
            "accuracy" => {}
            other => return Err(format!("unsupported construct: rule attribute '{other}'")),
        }
    }
    let id = id.ok_or("rule without id")?;
    let level = level.ok_or("rule without level")?;
    let mut r = Rule {
        id,
        level,
        prio: if level == 0 { 9900 } else { level as u32 * 100 },
        maxsize,
        frequency: (frequency - dialects.frequency_offset).max(0) as u32,
        timeframe,
        ignore_time,
        noalert,
        overwrite,
        groups: Vec::new(),
        group_str: group.to_string(),
        description: String::new(),
        mitre: Vec::new(),
        options: RuleOptions::default(),
        category: "syslog".into(),
        decoded_as: None,
        checks: Vec::new(),
        srcip: Vec::new(),
        dstip: Vec::new(),
        lists: Vec::new(),
        time: None,
        weekdays: None,
        if_sid: Vec::new(),
        if_group: Vec::new(),
        if_level: None,
        if_fts: false,
        compiled_rule: None,
        if_matched_sid: None,
        if_matched_group: None,
        context: Vec::new(),
        extra_context: false,
        file: file.to_string(),
        line: n.line,
        store_list: None,
        group_lists: Vec::new(),
        search_list: None,
    };
    let mut matchp: Option<(String, Dialect, bool)> = None;
    let mut regexp: Option<(String, Dialect, bool)> = None;
    let mut has_context = false;
    let mut if_matched_group: Option<String> = None;
    let mut field_pats: Vec<(String, Target, String, Dialect, bool)> = Vec::new();
    for c in &n.children {
        let t = c.text.as_str();
        let name = c.name.as_str();
        match name {
            "match" | "match_pcre2" => {
                let d = if name.ends_with("pcre2") {
                    Dialect::Pcre2Caseless
                } else {
                    dialect_of(c, Dialect::OsMatch)?
                };
                match &mut matchp {
                    Some((s, dd, _)) => {
                        s.push_str(t);
                        *dd = d;
                    }
                    None => matchp = Some((t.to_string(), d, negate_of(c))),
                }
            }
            "regex" | "pcre2" | "regex_pcre2" => {
                let d = if name != "regex" {
                    Dialect::Pcre2Caseless
                } else {
                    dialect_of(c, Dialect::OsRegex)?
                };
                match &mut regexp {
                    Some((s, dd, _)) => {
                        s.push_str(t);
                        *dd = d;
                    }
                    None => regexp = Some((t.to_string(), d, negate_of(c))),
                }
            }
            "decoded_as" => {
                let nm = t.trim();
                r.decoded_as = Some(
                    *names
                        .get(nm)
                        .ok_or_else(|| format!("decoded_as names an unknown decoder: '{nm}'"))?,
                );
            }
            "category" => r.category = t.trim().to_string(),
            "srcip" | "dstip" => {
                let mut e = parse_ip(t);
                e.neg ^= negate_of(c);
                if name == "srcip" {
                    r.srcip.push(e)
                } else {
                    r.dstip.push(e)
                }
            }
            "field" => {
                let fname = c.attr("name").ok_or("<field> without name")?;
                let d = dialect_of(c, Dialect::OsRegex)?;
                r.checks.push((
                    Target::Field(FieldKey::from_name(fname)),
                    compile(t, d, negate_of(c), "field")?,
                ));
            }
            "list" => {
                let field = FieldKey::from_name(c.attr("field").ok_or("<list> without field")?);
                let lookup = match c.attr("lookup").map(str::trim).unwrap_or("match_key") {
                    "match_key" => Lookup::MatchKey,
                    "not_match_key" => Lookup::NotMatchKey,
                    "match_key_value" => Lookup::MatchKeyValue,
                    "address_match_key" => Lookup::AddressMatchKey,
                    "not_address_match_key" => Lookup::NotAddressMatchKey,
                    "address_match_key_value" => Lookup::AddressMatchKeyValue,
                    o => return Err(format!("unsupported construct: list lookup '{o}'")),
                };
                let path = t.trim();
                let rel = path.strip_prefix("etc/lists/").unwrap_or(path);
                let li = rs
                    .list_names
                    .iter()
                    .position(|n| n == rel)
                    .or_else(|| {
                        let base = rel.rsplit('/').next().unwrap_or(rel);
                        rs.list_names
                            .iter()
                            .position(|n| n.rsplit('/').next() == Some(base))
                    })
                    .ok_or_else(|| format!("list not loaded: '{path}'"))?;
                let check_value = match c.attr("check_value") {
                    Some(v) => Some(compile(v, Dialect::OsRegex, false, "check_value")?),
                    None => None,
                };
                r.lists.push(ListCheck {
                    field,
                    lookup,
                    list: li,
                    check_value,
                });
            }
            "if_sid" => {
                for s in t.split([',', ' ']).filter(|s| !s.trim().is_empty()) {
                    r.if_sid.push(
                        s.trim()
                            .parse()
                            .map_err(|_| format!("if_sid '{s}' is not a number"))?,
                    );
                }
            }
            "if_group" => {
                for g in t.split([',', '|']).map(str::trim).filter(|g| !g.is_empty()) {
                    r.if_group.push(g.to_string());
                }
            }
            "if_level" => {
                r.if_level = Some(t.trim().parse().map_err(|_| "if_level is not a number")?)
            }
            "if_matched_sid" => {
                r.if_matched_sid = Some(
                    t.trim()
                        .parse()
                        .map_err(|_| "if_matched_sid is not a number")?,
                );
                has_context = true;
            }
            "if_matched_group" => {
                if_matched_group = Some(t.trim().to_string());
                has_context = true;
            }
            "same_field" | "different_field" | "not_same_field" => {
                r.context.push(Context {
                    target: CtxField::Field(FieldKey::from_name(t)),
                    rel: if name == "same_field" {
                        Relation::Same
                    } else {
                        Relation::Different
                    },
                });
            }
            "description" => {
                if !r.description.is_empty() {
                    r.description.push(' ');
                }
                r.description.push_str(t.trim());
            }
            "group" => r.group_str.push_str(t.trim()),
            "mitre" => {
                for m in &c.children {
                    if m.name == "id" || m.name == "technique" || m.name == "technique_id" {
                        r.mitre.push(m.text.trim().to_string());
                    }
                }
            }
            "options" => {
                for o in t.split(',').map(str::trim) {
                    match o {
                        "no_log" => r.options.no_log = true,
                        "alert_by_email" => r.options.alert_by_email = true,
                        "no_email_alert" => r.options.no_email_alert = true,
                        "log_alert" => r.options.log_alert = true,
                        "no_ar" => r.options.no_ar = true,
                        "no_full_log" => r.options.no_full_log = true,
                        "no_counter" => r.options.no_counter = true,
                        "" => {}
                        other => return Err(format!("unsupported construct: option '{other}'")),
                    }
                }
            }
            "time" => r.time = Some(parse_time(t).ok_or_else(|| format!("bad <time> '{t}'"))?),
            "weekday" => {
                r.weekdays = Some(parse_weekdays(t).ok_or_else(|| format!("bad <weekday> '{t}'"))?)
            }
            "if_fts" => r.if_fts = true,
            "compiled_rule" => {
                r.compiled_rule = Some(CompiledRule::by_name(t).ok_or_else(|| {
                    format!("unsupported construct: compiled_rule '{}'", t.trim())
                })?)
            }
            "info" | "cve" | "ignore" | "check_if_ignored" => {}
            _ => {
                if let Some((tg, default)) = target_of(name) {
                    let d = if name.ends_with("_pcre2") {
                        Dialect::Pcre2Caseless
                    } else {
                        dialect_of(c, default)?
                    };
                    // Repeated elements of one kind concatenate into one pattern, as
                    // upstream reads them (long alternations split over several lines).
                    match field_pats.iter_mut().find(|(n, ..)| n == name) {
                        Some((_, _, src, dd, _)) => {
                            src.push_str(t);
                            *dd = d;
                        }
                        None => {
                            field_pats.push((name.to_string(), tg, t.to_string(), d, negate_of(c)))
                        }
                    }
                } else if let Some(cx) = ctx_of(name, dialects.frequency_offset == 0) {
                    if matches!(
                        (&cx.target, name),
                        (
                            _,
                            "same_src_port"
                                | "same_dst_port"
                                | "same_user"
                                | "same_location"
                                | "different_url"
                        )
                    ) {
                        r.extra_context = true;
                    }
                    r.context.push(cx);
                } else {
                    return Err(format!("unsupported construct: <{name}>"));
                }
            }
        }
    }
    for (name, tg, src, d, neg) in field_pats {
        r.checks.push((tg, compile(&src, d, neg, &name)?));
    }
    if let Some((s, d, neg)) = matchp {
        r.checks
            .insert(0, (Target::Log, compile(&s, d, neg, "match")?));
    }
    if let Some((s, d, neg)) = regexp {
        let pos = r
            .checks
            .iter()
            .position(|(t, _)| *t != Target::Log)
            .unwrap_or(r.checks.len());
        r.checks
            .insert(pos, (Target::Log, compile(&s, d, neg, "regex")?));
    }
    if let Some(g) = if_matched_group {
        if r.if_sid.is_empty() && r.if_group.is_empty() {
            r.if_group = g
                .split(['|', ','])
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
        }
        r.if_matched_group = Some(compile(&g, Dialect::OsMatch, false, "if_matched_group")?);
    }
    if let Some(s) = r.if_matched_sid {
        if r.if_sid.is_empty() && r.if_group.is_empty() {
            r.if_sid.push(s);
        }
    }
    if !has_context && (frequency > 0 || !r.context.is_empty()) {
        return Err("frequency/context options without if_matched_sid or if_matched_group".into());
    }
    r.groups = r
        .group_str
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_string)
        .collect();
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_file_kinds() {
        assert_eq!(
            sniff_kind("<decoder name=\"a\"></decoder>"),
            FileKind::Decoders
        );
        assert_eq!(
            sniff_kind(
                "<var name=\"x\">y</var><group name=\"g\"><rule id=\"1\" level=\"0\"/></group>"
            ),
            FileKind::Rules
        );
        assert_eq!(sniff_kind("hello"), FileKind::Unknown);
    }

    #[test]
    fn weekdays_and_time() {
        assert_eq!(parse_weekdays("weekends"), Some(0b1000001));
        assert_eq!(parse_weekdays("monday - friday"), Some(0b0111110));
        assert_eq!(
            parse_time("6 pm - 8:30 am"),
            Some((18 * 60, 8 * 60 + 30, false))
        );
    }

    #[test]
    fn unsupported_construct_is_reported_with_rule_id() {
        let mut b = RulesetBuilder::new();
        b.add_rules(
            "r.xml",
            b"<group name=\"g\">\n<rule id=\"100\" level=\"3\">\n<check_diff />\n</rule>\n<rule id=\"101\" level=\"3\"><match>x</match></rule></group>",
        );
        let (rs, sum) = b.build();
        assert_eq!(sum.rules, 1);
        assert_eq!(rs.rules[0].id, 101);
        assert_eq!(sum.skipped.len(), 1);
        assert_eq!(sum.skipped[0].line, 2);
        assert!(sum.skipped[0].what.contains("100"));
        assert!(sum.skipped[0].reason.contains("check_diff"));
    }
}
