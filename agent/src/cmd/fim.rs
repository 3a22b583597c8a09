//! `bannin-agent fim`: file integrity without a manager, like AIDE: take a baseline, check against it,
//! restore a protected file.

use crate::fim::config::load_fim_config;
use crate::fim::objects::Objects;
use crate::fim::report::{keep_copies, Reporter};
use crate::fim::{restore, scan, Progress, ScanOptions, ScanStats, Store};
use anyhow::Context;
use bannin_fim::{events, Policy, Source};
use bannin_proto::Event;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: FimCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum FimCommand {
    /// Record the current state of every configured path as the new baseline (and keep protected copies).
    Baseline {
        /// Agent config file (TOML with `state_dir` and `[fim]`).
        #[arg(long)]
        config: PathBuf,
        /// Hashing threads (default: `fim.threads`).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Compare the file system with the baseline; exit 1 when anything changed.
    Check {
        #[arg(long)]
        config: PathBuf,
        /// Print one JSON document (events, errors, statistics) instead of text.
        #[arg(long)]
        json: bool,
        /// Re-hash every file even when size, mtime, ctime and inode are unchanged.
        #[arg(long)]
        full_rehash: bool,
        /// Accept what was found as the new baseline (protected copies are kept as they are).
        #[arg(long)]
        update: bool,
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Run the FIM source in the foreground (first scan, real-time watching, scheduled scans) and print
    /// every event as one JSON line, until interrupted.
    Watch {
        #[arg(long)]
        config: PathBuf,
    },
    /// Put back the known-good content, mode and owner of a file under a `protect` path.
    Restore {
        path: PathBuf,
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        FimCommand::Baseline { config, threads } => baseline(&config, threads),
        FimCommand::Check {
            config,
            json,
            full_rehash,
            update,
            threads,
        } => check(&config, json, full_rehash, update, threads),
        FimCommand::Restore { path, config, json } => restore_cmd(&config, &path, json),
        FimCommand::Watch { config } => watch(&config),
    }
}

fn open(config: &Path) -> anyhow::Result<(PathBuf, Policy, Store, Option<Event>)> {
    let (state_dir, fim) = load_fim_config(config)?;
    let policy =
        Policy::compile(&fim).map_err(|e| anyhow::anyhow!("config {}: {e}", config.display()))?;
    if fim.paths.is_empty() {
        anyhow::bail!("config {}: [fim] lists no paths", config.display());
    }
    let (store, reset) = Store::open(&state_dir)?;
    Ok((state_dir, policy, store, reset))
}

/// Runs a scan with a progress spinner on stderr when it is a terminal.
fn scan_with_progress(
    policy: &Policy,
    store: &Store,
    mut opts: ScanOptions,
    on: &mut dyn FnMut(&Store, crate::fim::Finding),
) -> anyhow::Result<ScanStats> {
    if !std::io::stderr().is_terminal() {
        return scan(policy, store, &opts, on);
    }
    let progress = Arc::new(Progress::default());
    opts.progress = Some(progress.clone());
    let pb = indicatif::ProgressBar::new_spinner();
    pb.enable_steady_tick(Duration::from_millis(120));
    let done = std::sync::atomic::AtomicBool::new(false);
    let res = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                let n = progress.entries.load(Ordering::Relaxed);
                let b = progress.bytes_hashed.load(Ordering::Relaxed);
                pb.set_message(format!("{n} entries, {} hashed", indicatif::HumanBytes(b)));
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let r = scan(policy, store, &opts, on);
        done.store(true, Ordering::Relaxed);
        r
    });
    pb.finish_and_clear();
    res
}

fn print_stats(what: &str, st: &ScanStats) {
    eprintln!(
        "{what}: {} entries in {} directories, {} files hashed ({:.1} MB), {} unchanged files not re-hashed, {} changes, {} errors, {:.2} s",
        st.entries,
        st.dirs,
        st.files_hashed,
        st.bytes_hashed as f64 / 1e6,
        st.rehash_skipped,
        st.changes,
        st.errors,
        st.seconds
    );
}

/// Prints a line; a closed pipe (`| head`) is not an error worth a panic.
fn out(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn baseline(config: &Path, threads: Option<usize>) -> anyhow::Result<ExitCode> {
    let (state_dir, policy, store, reset) = open(config)?;
    if let Some(e) = reset {
        eprintln!("warning: {}", e.title);
    }
    for root in policy.roots() {
        store
            .clear_root(&root.root)
            .context("clearing the old baseline")?;
    }
    let opts = ScanOptions {
        update: true,
        full_rehash: true,
        threads: threads.unwrap_or(0),
        ..Default::default()
    };
    let mut errors = 0u64;
    let st = scan_with_progress(&policy, &store, opts, &mut |_, f| {
        if let crate::fim::Finding::Error { path, op, err } = f {
            errors += 1;
            eprintln!(
                "warning: cannot {op} {}: {err}",
                bannin_fim::display_path(&path)
            );
        }
    })?;
    let missed = keep_copies(&policy, &store, &Objects::new(&state_dir), true)?;
    for (p, why) in &missed {
        eprintln!(
            "warning: no known-good copy of {}: {why}",
            bannin_fim::display_path(p)
        );
    }
    store.set_meta("last_full_rehash", &now_secs().to_string())?;
    print_stats("baseline", &st);
    eprintln!("baseline stored in {}", store.path.display());
    Ok(ExitCode::SUCCESS)
}

fn check(
    config: &Path,
    json: bool,
    full_rehash: bool,
    update: bool,
    threads: Option<usize>,
) -> anyhow::Result<ExitCode> {
    let (state_dir, policy, store, reset) = open(config)?;
    if let Some(e) = reset {
        anyhow::bail!(
            "{}; run `bannin-agent fim baseline --config {}`",
            e.title,
            config.display()
        );
    }
    let mut missing = Vec::new();
    for root in policy.roots() {
        if store.get(&root.root)?.is_none() {
            missing.push(root.root.display().to_string());
        }
    }
    if !missing.is_empty() {
        anyhow::bail!(
            "no baseline for {} in {}; run `bannin-agent fim baseline --config {}` first",
            missing.join(", "),
            store.path.display(),
            config.display()
        );
    }
    let mut reporter = Reporter::new(&policy, &state_dir, Source::Scan, false);
    let mut changes = Vec::new();
    let mut errors = Vec::new();
    let opts = ScanOptions {
        update,
        full_rehash,
        threads: threads.unwrap_or(0),
        ..Default::default()
    };
    let st = scan_with_progress(&policy, &store, opts, &mut |s, f| {
        for e in reporter.events_for(s, f) {
            if e.rule_id == bannin_fim::rules::FIM_SCAN_ERROR {
                errors.push(e);
            } else {
                changes.push(e);
            }
        }
    })?;
    if json {
        let doc = serde_json::json!({"changes": changes, "errors": errors, "stats": st});
        out(&serde_json::to_string_pretty(&doc)?);
    } else {
        for e in &errors {
            eprintln!("warning: {}", e.title);
        }
        for e in &changes {
            out(&format!(
                "[level {:>2}] rule {} {}",
                e.level, e.rule_id, e.title
            ));
            if let Some(d) = e.body.get("diff").and_then(|d| d.as_str()) {
                for line in d.lines() {
                    out(&format!("    {line}"));
                }
            } else if e.body.get("diff_status").and_then(|d| d.as_str()) == Some("redacted") {
                out("    (content not shown: nodiff)");
            }
        }
        print_stats("check", &st);
    }
    let _ = events::rules::FIM_SCAN_SUMMARY;
    Ok(if changes.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn watch(config: &Path) -> anyhow::Result<ExitCode> {
    let (state_dir, fim) = load_fim_config(config)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Event>(1024);
        let printer = tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                match serde_json::to_string(&e) {
                    Ok(line) => out(&line),
                    Err(err) => eprintln!("warning: event {} not printable: {err}", e.id),
                }
            }
        });
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        let r = crate::fim::run_fim_source(fim, &state_dir, tx, stop).await;
        let _ = printer.await;
        r
    })?;
    Ok(ExitCode::SUCCESS)
}

fn restore_cmd(config: &Path, path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let (state_dir, policy, store, reset) = open(config)?;
    if let Some(e) = reset {
        anyhow::bail!("{}; nothing to restore from", e.title);
    }
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    let path = bannin_fim::policy::normalise(&path);
    let res = restore::restore(&policy, &store, &Objects::new(&state_dir), &path);
    let ev = events::restore_event(
        &path,
        &restore::source_name(&policy, &path),
        res.as_ref().map_err(|e| e.as_str()),
        "command",
    );
    if json {
        out(&serde_json::to_string_pretty(&ev)?);
    } else {
        out(&ev.title);
    }
    Ok(if res.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
