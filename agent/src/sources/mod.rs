//! Event sources: each watches one kind of thing on the host and emits `bannin_proto::Event`s.

pub mod watcher;
