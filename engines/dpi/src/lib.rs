//! bannin-dpi: deep packet inspection with the Suricata rule language (as Emerging Threats Open
//! uses it).
//!
//! Sans-IO: the caller hands in captured frames with their timestamps and link type and gets
//! [`Alert`]s back; this crate never opens files, sockets or capture devices, and never reads the
//! clock. Hostile input (malformed headers, overlapping fragments, floods of half-open flows) must
//! never make it panic or grow memory without bound: every table and buffer has a cap.
//!
//! Typical use:
//! ```no_run
//! use bannin_dpi::{Config, Engine, LoadOptions, RuleSet, RuleSource, Timestamp, Vars};
//! use std::sync::Arc;
//! let vars = Vars::default();
//! let rules = RuleSet::load(&[RuleSource { name: "local.rules", text: "alert tcp any any -> any any (msg:\"x\"; content:\"evil\"; sid:1;)" }],
//!     &LoadOptions { vars: &vars, classification: None, action_order: &[] });
//! let mut engine = Engine::new(Arc::new(rules), Config::default());
//! let mut alerts = Vec::new();
//! engine.process(Timestamp { secs: 0, micros: 0 }, 1, &[/* an Ethernet frame */], &mut alerts);
//! engine.flush(&mut alerts);
//! ```

pub mod addr;
pub mod app;
pub mod decode;
pub mod detect;
pub mod engine;
pub mod rules;
pub mod ruleset;

pub use addr::Vars;
pub use engine::{parse_threshold_config, Alert, Config, Engine, Stats, ThresholdEntry, Timestamp};
pub use rules::Action;
pub use ruleset::{LoadOptions, LoadStats, RuleSet, RuleSource};
