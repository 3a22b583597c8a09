//! Real-time watching with inotify (through `notify`), one non-recursive watch per tracked directory so the
//! policy's depth and ignores decide what is watched, and so running out of watches is noticed per directory.

use bannin_fim::{events, Policy, RootPolicy, Standing};
use bannin_proto::Event;
use notify::{RecursiveMode, Watcher as _};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

pub type RawEvent = notify::Result<notify::Event>;

pub struct Watcher {
    inner: notify::INotifyWatcher,
    watched: HashSet<PathBuf>,
    /// Set once the kernel refused a watch; later refusals are only counted.
    limit_hit: bool,
    pub unwatched: u64,
}

fn is_limit(e: &notify::Error) -> bool {
    match &e.kind {
        notify::ErrorKind::MaxFilesWatch => true,
        notify::ErrorKind::Io(io) => io.raw_os_error() == Some(libc::ENOSPC),
        _ => false,
    }
}

impl Watcher {
    pub fn new(tx: std::sync::mpsc::Sender<RawEvent>) -> notify::Result<Watcher> {
        let inner = notify::INotifyWatcher::new(tx, notify::Config::default())?;
        Ok(Watcher {
            inner,
            watched: HashSet::new(),
            limit_hit: false,
            unwatched: 0,
        })
    }

    pub fn is_watched(&self, dir: &Path) -> bool {
        self.watched.contains(dir)
    }

    /// Watches one directory. Returns an event the first time the watch limit is reached, or when a watch
    /// fails for another reason.
    pub fn watch_dir(&mut self, dir: &Path) -> Option<Event> {
        if self.watched.contains(dir) {
            return None;
        }
        if self.limit_hit {
            self.unwatched += 1;
            return None;
        }
        match self.inner.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => {
                self.watched.insert(dir.to_path_buf());
                None
            }
            Err(e) if is_limit(&e) => {
                self.limit_hit = true;
                self.unwatched += 1;
                Some(events::watch_degraded_event(
                    "inotify watch limit reached (fs.inotify.max_user_watches)",
                    self.unwatched,
                    Some(dir),
                ))
            }
            Err(e) => {
                // The directory may have vanished already; anything else is worth saying.
                if dir.exists() {
                    self.unwatched += 1;
                    Some(events::watch_degraded_event(
                        &format!("cannot watch: {e}"),
                        1,
                        Some(dir),
                    ))
                } else {
                    None
                }
            }
        }
    }

    pub fn unwatch_tree(&mut self, dir: &Path) {
        let gone: Vec<PathBuf> = self
            .watched
            .iter()
            .filter(|p| p.starts_with(dir))
            .cloned()
            .collect();
        for p in gone {
            let _ = self.inner.unwatch(&p);
            self.watched.remove(&p);
        }
    }

    /// Watches `dir` and every directory below it that the root's policy tracks (depth, ignores, nested roots).
    pub fn watch_tree(&mut self, policy: &Policy, root: &RootPolicy, dir: &Path) -> Vec<Event> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            if let Some(e) = self.watch_dir(&d) {
                out.push(e);
            }
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
                let p = e.path();
                if !is_dir || policy.is_other_root(&p, root) {
                    continue;
                }
                if let Standing::Tracked(_, d) = root.standing(&p) {
                    // A directory whose entries are below the depth limit needs no watch: its own changes
                    // show on its parent's watch.
                    if root.descends_into(d) {
                        stack.push(p);
                    }
                }
            }
        }
        out
    }
}
