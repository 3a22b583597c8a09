//! bannin-logrules: an OSSEC/Wazuh-compatible log-rule engine.
//!
//! It loads the community decoder and rule XML files unchanged (both the OSSEC `*_pcre2` tag
//! dialect and Wazuh's `type="pcre2"` attributes), OSSEC's own `OS_Match`/`OS_Regex` pattern
//! languages with upstream's exact behaviour, PCRE2, CDB-style text lists, and evaluates log
//! lines through the same decoder and rule trees upstream builds, with per-session correlation
//! (`if_matched_*`, `frequency`, `timeframe`, `same_*`/`different_*`).
//!
//! Upstream's built-in C parts that rulesets name are rewritten here: the JSON, SonicWall, PF
//! and SymantecWS plugin decoders and the `<compiled_rule>` functions; OSSECAlert_Decoder and
//! upstream's internal decoders (rootcheck, syscheck, hostinfo, windows_eventchannel) are not,
//! and rules needing them are reported at load. Correlation follows OSSEC 4.x's observable
//! behaviour, with list limits chosen by [`CorrelationLimits`].
//!
//! Speed comes from doing per message only what a message can need: one Aho-Corasick pass over
//! the lower-cased message tells which literals occur, and rules or decoder prematches whose
//! required literals are all absent are skipped without running their patterns.
//!
//! What it must never do: open files or sockets (it is sans-IO: callers hand it file contents,
//! lines and times), panic on hostile input, or silently misread a rule: any construct it does not
//! support is reported once at load with file, line and rule id, and that rule is skipped.
//!
//! ```
//! use bannin_logrules::{RulesetBuilder, Engine};
//! use std::sync::Arc;
//! let mut b = RulesetBuilder::new();
//! b.add_xml("d.xml", br#"<decoder name="sshd"><program_name>^sshd</program_name></decoder>
//! <decoder name="sshd-fail"><parent>sshd</parent><prematch>^Failed \S+ </prematch>
//! <regex offset="after_prematch">^for (\S+) from (\S+) port</regex><order>user, srcip</order></decoder>"#);
//! b.add_xml("r.xml", br#"<group name="syslog,"><rule id="1" level="0" noalert="1"><category>syslog</category></rule>
//! <rule id="100" level="5"><decoded_as>sshd</decoded_as><match>Failed</match><description>ssh failure</description></rule></group>"#);
//! let (rs, summary) = b.build();
//! assert!(summary.skipped.is_empty());
//! let mut eng = Engine::new(Arc::new(rs));
//! let v = eng.process("Jan  1 00:00:00 h sshd[1]: Failed password for root from 10.0.0.1 port 22 ssh2", 0);
//! assert_eq!(v.rule.unwrap().id, 100);
//! assert_eq!(v.decoder.as_deref(), Some("sshd"));
//! assert!(v.fields.contains(&("srcip".to_string(), "10.0.0.1".to_string())));
//! ```

pub mod engine;
pub mod event;
pub mod osregex;
pub mod pattern;
pub mod plugins;
pub mod ruleset;
pub mod syslog;
pub mod xml;

pub use engine::{CorrelationLimits, Engine, RuleHit, TimeSource, Verdict};
pub use ruleset::{FileKind, LoadSummary, Ruleset, RulesetBuilder, Skipped};
