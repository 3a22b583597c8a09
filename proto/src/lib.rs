//! Wire types shared by `bannin-agent` and `bannin-manager`: the event schema every source emits, the
//! JSON bodies of the HTTP API, and the compressed batch encoding.
//!
//! This crate is the contract between agent and manager. It must never do I/O, hold state or depend on
//! either binary; a change here is a protocol change, so unknown fields are refused rather than ignored.

mod event;
mod wire;

pub use event::{rules, Event, EventKind, MAX_LEVEL};
pub use wire::*;
