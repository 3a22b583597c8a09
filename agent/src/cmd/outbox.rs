//! `bannin-agent outbox`: inspect the durable outbox, and fill it with synthetic events for benchmarks.

use std::path::PathBuf;
use std::process::ExitCode;

use bannin_proto::{Event, EventKind};

use crate::identity::StateDir;
use crate::outbox::Outbox;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, global = true, default_value = crate::config::DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Number of events waiting for the manager's acknowledgement.
    Pending,
    /// Append N synthetic `agent` events (rule 999) to measure delivery throughput.
    Fill {
        #[arg(long)]
        count: u64,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let state = StateDir::new(&args.state_dir);
    let identity = state.load_identity()?;
    let mut outbox = Outbox::open(&state.outbox_file(), &identity.agent_id, u64::MAX / 2)?;
    match args.command {
        Command::Pending => println!("{}", outbox.pending()),
        Command::Fill { count } => {
            let mut left = count;
            while left > 0 {
                let n = left.min(10_000);
                let events = (0..n)
                    .map(|i| {
                        Event::new(EventKind::Agent, 999, 1, format!("synthetic benchmark event {i}"))
                            .with_groups(["bannin", "benchmark"])
                            .with_body(serde_json::json!({"path": format!("/srv/www/file-{i}.html"), "size": i * 17}))
                    })
                    .collect();
                outbox.append(events)?;
                left -= n;
            }
            println!("{}", outbox.pending());
        }
    }
    Ok(ExitCode::SUCCESS)
}
