//! `bannin-agent enroll`: obtain a certificate from the manager with an enrollment token.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::identity::{enroll, host_name, EnrollOptions, StateDir};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Manager URL, e.g. https://manager.example:8443.
    #[arg(long)]
    manager: String,
    /// Enrollment token from `bannin-manager token create`.
    #[arg(long, env = "BANNIN_ENROLL_TOKEN", hide_env_values = true)]
    token: String,
    /// SHA-256 fingerprint of the manager's CA, printed by `bannin-manager init`.
    #[arg(long)]
    ca_fingerprint: String,
    /// Where the identity is stored.
    #[arg(long, default_value = crate::config::DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    /// Name shown in the console (default: the host name).
    #[arg(long)]
    name: Option<String>,
    /// EC2 instance id, for AWS response actions (default: none).
    #[arg(long)]
    instance_id: Option<String>,
    /// AWS region of the instance.
    #[arg(long)]
    region: Option<String>,
    /// Print one JSON object (agent_id, name, manager_url).
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let state = StateDir::new(&args.state_dir);
    let opts = EnrollOptions {
        manager_url: args.manager,
        token: args.token,
        ca_fingerprint: args.ca_fingerprint,
        name: args.name.unwrap_or_else(host_name),
        instance_id: args.instance_id,
        region: args.region,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let identity = runtime.block_on(enroll(&state, opts))?;
    if args.json {
        println!("{}", serde_json::to_string(&identity)?);
    } else {
        println!(
            "Enrolled as {} (agent id {}) with {}",
            identity.name, identity.agent_id, identity.manager_url
        );
        println!("Identity stored in {}", state.root().display());
    }
    Ok(ExitCode::SUCCESS)
}
