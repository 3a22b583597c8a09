//! A minimal real-time file watcher: inotify (through `notify`) on the configured real-time paths,
//! coalesced per path, compared against a size/mtime snapshot to tell added, modified and deleted.
//! It proves the pipeline end to end; the full FIM (hashes, baselines, policies) supersedes it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use bannin_proto::{rules, Event, EventKind};
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Changes to one path within this window become one event.
const COALESCE: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Snapshot {
    size: u64,
    mtime: Option<SystemTime>,
}

fn snapshot(path: &Path) -> Option<Snapshot> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if meta.is_dir() {
        return None;
    }
    Some(Snapshot { size: meta.len(), mtime: meta.modified().ok() })
}

fn scan(root: &Path, known: &mut HashMap<PathBuf, Snapshot>) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => scan(&path, known),
            Ok(_) => {
                if let Some(s) = snapshot(&path) {
                    known.insert(path, s);
                }
            }
            Err(_) => {}
        }
    }
}

/// Watches `roots` until `events` closes; every change becomes a `fim` event.
pub async fn run(roots: Vec<PathBuf>, events: mpsc::Sender<Event>) -> Result<()> {
    let (raw_tx, mut raw_rx) = mpsc::unbounded_channel::<notify::Result<notify::Event>>();
    let mut watcher = notify::recommended_watcher(move |res| {
        let _ = raw_tx.send(res);
    })
    .context("starting the inotify watcher")?;
    let mut known = HashMap::new();
    for root in &roots {
        watcher
            .watch(root, RecursiveMode::Recursive)
            .with_context(|| format!("watching {}", root.display()))?;
        scan(root, &mut known);
    }
    tracing::info!("watching {} path(s) in real time, {} files known", roots.len(), known.len());

    let mut dirty: HashSet<PathBuf> = HashSet::new();
    loop {
        let first = tokio::select! {
            raw = raw_rx.recv() => raw,
            _ = events.closed() => return Ok(()),
        };
        let Some(first) = first else { return Ok(()) };
        collect(first, &mut dirty, &events).await;
        let deadline = tokio::time::Instant::now() + COALESCE;
        while let Ok(Some(raw)) = tokio::time::timeout_at(deadline, raw_rx.recv()).await {
            collect(raw, &mut dirty, &events).await;
        }
        let mut paths: Vec<PathBuf> = dirty.drain().collect();
        paths.sort();
        for path in paths {
            if let Some(event) = classify(&path, &mut known) {
                if events.send(event).await.is_err() {
                    return Ok(());
                }
            }
        }
    }
}

async fn collect(raw: notify::Result<notify::Event>, dirty: &mut HashSet<PathBuf>, events: &mpsc::Sender<Event>) {
    match raw {
        Ok(e) => dirty.extend(e.paths),
        Err(e) => {
            let event = Event::new(EventKind::Agent, rules::WATCHER_ERROR, 7, format!("File watcher error: {e}"))
                .with_groups(["bannin", "agent", "fim"]);
            let _ = events.send(event).await;
        }
    }
}

fn classify(path: &Path, known: &mut HashMap<PathBuf, Snapshot>) -> Option<Event> {
    let now = snapshot(path);
    let before = known.get(path).copied();
    let (rule, level, change) = match (before, now) {
        (None, Some(_)) => (rules::FIM_ADDED, 5, "added"),
        (Some(b), Some(n)) if b != n => (rules::FIM_MODIFIED, 7, "modified"),
        (Some(_), None) if !path.exists() => (rules::FIM_DELETED, 7, "deleted"),
        _ => return None,
    };
    match now {
        Some(n) => known.insert(path.to_path_buf(), n),
        None => known.remove(path),
    };
    let title = format!("File {change}: {}", path.display());
    Some(
        Event::new(EventKind::Fim, rule, level, title)
            .with_groups(["syscheck", "fim"])
            .with_body(serde_json::json!({
                "path": path.to_string_lossy(),
                "change": change,
                "size_before": before.map(|b| b.size),
                "size_after": now.map(|n| n.size),
            })),
    )
}
