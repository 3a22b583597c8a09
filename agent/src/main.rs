use std::process::ExitCode;

use bannin_agent::cmd;
use clap::{Parser, Subcommand};

/// Bannin host agent: file integrity, log inspection and network inspection for one server.
#[derive(Debug, Parser)]
#[command(name = "bannin-agent", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Enroll this host with a manager (generates the key pair here; only a CSR leaves the host).
    Enroll(cmd::enroll::Args),
    /// Run the agent: watch, inspect, and deliver events to the manager.
    Run(cmd::run::Args),
    /// Inspect the durable outbox (and fill it for benchmarks).
    #[command(hide = true)]
    Outbox(cmd::outbox::Args),
    /// Test log lines from stdin against decoders and rules, like ossec-logtest/wazuh-logtest.
    Logtest(cmd::logtest::Args),
    /// Inspect pcap/pcapng files with Suricata-language rules and print EVE JSON alerts.
    Pcap(cmd::pcap::Args),
    /// File integrity without a manager: baseline, check, restore.
    Fim(cmd::fim::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BANNIN_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.command {
        Command::Enroll(args) => cmd::enroll::run(args),
        Command::Run(args) => cmd::run::run(args),
        Command::Outbox(args) => cmd::outbox::run(args),
        Command::Logtest(args) => cmd::logtest::run(args),
        Command::Pcap(args) => cmd::pcap::run(args),
        Command::Fim(args) => cmd::fim::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("bannin-agent: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
