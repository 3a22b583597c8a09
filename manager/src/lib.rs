//! The Bannin manager: enrolls agents under an internal CA, stores their events (SQLite by default)
//! and serves the HTTPS API that agents and administrators use.
//!
//! It must never trust what an agent says about itself beyond its certificate: agent identity comes
//! from the mTLS client certificate, and secrets (tokens, keys) are never logged or stored in clear.

pub mod admin;
pub mod api;
pub mod cli;
pub mod datadir;
pub mod secrets;
pub mod serve;
pub mod store;
pub mod tokens;
