//! File integrity engine: the policy model, baseline records, the differ, text diffs with `nodiff`
//! redaction, rule ids and levels, and package awareness.
//!
//! Sans-IO: it never opens files, walks directories or reads package databases. The agent's FIM adapters
//! (`bannin-agent`'s `fim` module) observe the file system and feed records, bytes and digests in; this crate
//! returns decisions and `bannin_proto::Event`s.

pub mod config;
pub mod events;
pub mod pkg;
pub mod policy;
pub mod record;
pub mod textdiff;

pub use config::{Attr, FimConfig, Interval, OnChange, WatchPath};
pub use events::{rules, ChangeReport, PathClass, Source, Writer};
pub use pkg::{ContentDigests, PackageIndex, PackageVerdict};
pub use policy::{Policy, PolicyError, RootPolicy, Standing};
pub use record::{compare, display_bytes, display_path, ChangeKind, FileKind, FileRecord, Hash32};
pub use textdiff::{text_diff, DiffOutcome};
