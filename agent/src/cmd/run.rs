//! `bannin-agent run`: the long-running agent.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::AgentConfig;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Configuration file.
    #[arg(long, default_value = crate::config::DEFAULT_CONFIG)]
    config: PathBuf,
    /// Overrides `state_dir` of the configuration file.
    #[arg(long)]
    state_dir: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut config = AgentConfig::load(&args.config)?;
    if let Some(dir) = args.state_dir {
        config.state_dir = dir;
    }
    // One thread: the agent must stay small on every host; blocking work (SQLite, hashing) goes to
    // tokio's blocking pool.
    crate::pipeline::limit_malloc_arenas();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(crate::pipeline::run(config))?;
    Ok(ExitCode::SUCCESS)
}
