//! The `bannin-manager` command line: argument definitions and their dispatch.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use bannin_proto::{EventKind, EventQuery};
use clap::{Parser, Subcommand};

use crate::admin::{parse_duration, TargetArgs};
use crate::datadir::{self, DataDir};
use crate::serve::{serve, ServeOptions};
use crate::store::rfc3339;

/// Bannin manager: enrolls agents, stores their events and serves the API.
#[derive(Debug, Parser)]
#[command(name = "bannin-manager", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a data directory: internal CA, server certificate, database, first admin token.
    Init {
        #[arg(long, env = "BANNIN_DATA_DIR", default_value = datadir::DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// DNS name or IP address agents use to reach the manager (repeatable); the first is used in the URL.
        #[arg(long = "san", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()])]
        sans: Vec<String>,
        /// Port written into the URL printed for agents.
        #[arg(long, default_value_t = 8443)]
        port: u16,
        /// Print one JSON object (ca_fingerprint, admin_token, url) for provisioning scripts.
        #[arg(long)]
        json: bool,
    },
    /// Serve the HTTPS API for agents and administrators.
    Serve {
        #[arg(long, env = "BANNIN_DATA_DIR", default_value = datadir::DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// Address to listen on; port 0 picks a free port (written to <data-dir>/manager.addr).
        #[arg(long, default_value = "0.0.0.0:8443")]
        listen: SocketAddr,
        /// Mark an agent disconnected after this long without a heartbeat (e.g. 90s, 5m).
        #[arg(long, default_value = "90s", value_parser = parse_duration)]
        disconnect_after: Duration,
    },
    /// Enrollment tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// List enrolled agents.
    Agents {
        #[command(flatten)]
        target: TargetArgs,
        #[arg(long)]
        json: bool,
    },
    /// Show stored events, oldest first.
    Events {
        #[command(flatten)]
        target: TargetArgs,
        /// Only this agent (id).
        #[arg(long)]
        agent: Option<String>,
        /// Only this kind: fim, log, net or agent.
        #[arg(long)]
        kind: Option<EventKind>,
        /// Only events of at least this level (0-15).
        #[arg(long, value_parser = clap::value_parser!(u8).range(0..=15))]
        min_level: Option<u8>,
        /// Only events at or after this time (RFC 3339, e.g. 2026-01-31T12:00:00Z).
        #[arg(long, value_parser = parse_rfc3339)]
        since: Option<time::OffsetDateTime>,
        /// At most this many events (default 100; the latest ones unless --since is given).
        #[arg(long)]
        limit: Option<u32>,
        /// JSON lines, one event per line.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create an expiring, limited-use enrollment token.
    Create {
        #[command(flatten)]
        target: TargetArgs,
        /// Lifetime (e.g. 30m, 24h, 7d).
        #[arg(long, default_value = "24h", value_parser = parse_duration)]
        ttl: Duration,
        /// How many agents may enroll with it.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        #[arg(long)]
        json: bool,
    },
}

fn parse_rfc3339(s: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("`{s}` is not an RFC 3339 time ({e}); example: 2026-01-31T12:00:00Z"))
}

pub async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Init {
            data_dir,
            sans,
            port,
            json,
        } => {
            let dir = DataDir::new(&data_dir);
            let out = datadir::init(&dir, &sans, port)?;
            if json {
                println!("{}", serde_json::to_string(&out)?);
            } else {
                println!("Initialised a Bannin manager in {}", dir.root().display());
                println!("CA fingerprint (SHA-256): {}", out.ca_fingerprint);
                println!(
                    "Admin token (shown only now, stored hashed): {}",
                    out.admin_token
                );
                println!("Agents reach it at: {}", out.url);
                println!(
                    "Next: bannin-manager serve --data-dir {} --listen 0.0.0.0:{port}",
                    dir.root().display()
                );
            }
        }
        Command::Serve {
            data_dir,
            listen,
            disconnect_after,
        } => {
            let opts = ServeOptions {
                listen,
                disconnect_after,
                shutdown_grace: Duration::from_secs(10),
            };
            serve(&DataDir::new(data_dir), opts).await?;
        }
        Command::Token {
            command:
                TokenCommand::Create {
                    target,
                    ttl,
                    uses,
                    json,
                },
        } => {
            let created = target.open()?.create_token(ttl, uses).await?;
            if json {
                println!("{}", serde_json::to_string(&created)?);
            } else {
                println!("{}", created.token);
                eprintln!(
                    "valid until {} for {} enrollment(s)",
                    rfc3339(created.expires_at),
                    created.uses
                );
            }
        }
        Command::Agents { target, json } => {
            let agents = target.open()?.agents().await?;
            if json {
                for a in &agents {
                    println!("{}", serde_json::to_string(a)?);
                }
            } else {
                println!(
                    "{:<36}  {:<20}  {:<12}  {:<20}  VERSION",
                    "ID", "NAME", "STATUS", "LAST SEEN"
                );
                for a in &agents {
                    let seen = a.last_seen.map(rfc3339).unwrap_or_else(|| "-".into());
                    println!(
                        "{:<36}  {:<20}  {:<12}  {:<20}  {}",
                        a.id,
                        a.name,
                        a.status.as_str(),
                        seen,
                        a.agent_version
                    );
                }
            }
        }
        Command::Events {
            target,
            agent,
            kind,
            min_level,
            since,
            limit,
            json,
        } => {
            let target = target.open()?;
            let events = target
                .events(&EventQuery {
                    agent,
                    kind,
                    min_level,
                    since,
                    limit,
                })
                .await?;
            if json {
                for e in &events {
                    println!("{}", serde_json::to_string(e)?);
                }
            } else {
                let names: HashMap<String, String> = target
                    .agents()
                    .await?
                    .into_iter()
                    .map(|a| (a.id, a.name))
                    .collect();
                for e in &events {
                    let e = &e.event;
                    let agent = names
                        .get(&e.agent_id)
                        .map(String::as_str)
                        .unwrap_or(&e.agent_id);
                    println!(
                        "{}  {:<16}  {:<5}  rule {:<6} level {:<2}  {}",
                        rfc3339(e.timestamp),
                        agent,
                        e.kind.as_str(),
                        e.rule_id,
                        e.level,
                        e.title
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
