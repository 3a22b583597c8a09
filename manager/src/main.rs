use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = bannin_manager::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BANNIN_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bannin-manager: error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(bannin_manager::cli::run(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("bannin-manager: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
