//! Log collection and inspection: the collector that follows files, CloudTrail directories and
//! journald (IO adapters, with sans-IO framing and parsing where it can be), and reading rulesets
//! from disk for the sans-IO `bannin-logrules` engine.

pub mod cloudtrail;
pub mod config;
pub mod framer;
pub mod journald;
pub mod paths;
pub mod ruleset_dir;
pub mod source;
pub mod state;
pub mod tail;

pub use source::{run_log_source, CollectorStats};
