//! Command-line front ends of the agent. Each file is one subcommand; they parse flags and call the
//! library, nothing more.

pub mod enroll;
pub mod fim;
pub mod logtest;
pub mod outbox;
pub mod pcap;
pub mod run;
