//! The Bannin agent: a pipeline of sources (fim, logs, net) -> detection -> outbox -> uplink.
//!
//! Detection itself lives in the sans-IO engine crates; this crate holds the adapters that feed them
//! real files, logs and packets, and the durable path to the manager. It must never drop an event
//! silently: every loss is counted and reported as an event of its own.

pub mod cmd;
pub mod config;
pub mod fim;
pub mod identity;
pub mod logs;
pub mod net;
pub mod outbox;
pub mod pipeline;
pub mod uplink;
