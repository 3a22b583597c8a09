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
    /// Test log lines from stdin against decoders and rules, like ossec-logtest/wazuh-logtest.
    Logtest(cmd::logtest::Args),
    /// Inspect pcap/pcapng files with Suricata-language rules and print EVE JSON alerts.
    Pcap(cmd::pcap::Args),
    /// File integrity without a manager: baseline, check, restore.
    Fim(cmd::fim::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
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
