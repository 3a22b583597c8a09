//! The FIM source of `bannin-agent run`: a first scan (or baseline), real-time watching of `realtime` paths,
//! scheduled scans of every path, all emitted as events into the agent's pipeline.
//!
//! One blocking thread owns the baseline database, so real-time checks and scans never race on it; a scan in
//! progress delays real-time checks until it ends.

use super::report::{keep_copies, Reporter};
use super::scan::{decide, look, scan, Finding, Look, ScanOptions, ScanStats};
use super::store::Store;
use super::watch::{RawEvent, Watcher};
use bannin_fim::{events, ChangeKind, FileKind, FimConfig, Policy, Source, Standing};
use bannin_proto::Event;
use notify::event::{EventKind as NK, ModifyKind, RenameMode};
use std::collections::BTreeSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::Sender;

/// Runs the FIM until `shutdown` completes (or the receiver of `tx` is dropped). Returns an error only for
/// what makes FIM impossible (bad policy, state dir unusable); everything else becomes an event.
pub async fn run_fim_source(
    cfg: FimConfig,
    state_dir: &Path,
    tx: Sender<Event>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let policy = Policy::compile(&cfg).map_err(|e| anyhow::anyhow!("fim policy: {e}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let state_dir = state_dir.to_path_buf();
    let mut handle =
        tokio::task::spawn_blocking(move || engine_loop(&policy, &state_dir, &tx, &stop2));
    tokio::select! {
        _ = shutdown => {
            stop.store(true, Ordering::Relaxed);
            handle.await?
        }
        r = &mut handle => r?,
    }
}

struct Ctx<'a> {
    policy: &'a Policy,
    store: Store,
    state_dir: PathBuf,
    tx: &'a Sender<Event>,
    watcher: Option<Watcher>,
    writers: Option<Arc<super::attribution::Attribution>>,
    closed: bool,
}

impl Ctx<'_> {
    fn emit(&mut self, e: Event) {
        if !self.closed && self.tx.blocking_send(e).is_err() {
            self.closed = true;
        }
    }

    fn run_scan(&mut self, only: Option<Vec<usize>>, first: bool) -> anyhow::Result<ScanStats> {
        let full_every = self.policy.config.full_rehash_interval.0.as_secs();
        let last: u64 = self
            .store
            .meta("last_full_rehash")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let now = now_secs();
        let full = now.saturating_sub(last) >= full_every;
        let opts = ScanOptions {
            update: true,
            full_rehash: full,
            only_roots: only,
            ..Default::default()
        };
        let mut out = Vec::new();
        let mut reporter = Reporter::new(self.policy, &self.state_dir, Source::Scan, true);
        let st = scan(self.policy, &self.store, &opts, &mut |s, f| {
            out.extend(reporter.events_for(s, f))
        })?;
        for e in out {
            self.emit(e);
        }
        if full {
            self.store.set_meta("last_full_rehash", &now.to_string())?;
        }
        let objects = super::objects::Objects::new(&self.state_dir);
        keep_copies(self.policy, &self.store, &objects, false)?;
        if first {
            // Operators (and the end-to-end tests) read this line as "FIM is live".
            tracing::info!(
                changes = st.changes,
                errors = st.errors,
                "fim: first scan finished, watching for changes"
            );
        }
        if first || st.changes > 0 || st.errors > 0 {
            let v = serde_json::to_value(&st).unwrap_or_default();
            self.emit(events::scan_summary_event(&v, st.changes));
        }
        Ok(st)
    }

    /// Checks one path after a real-time notification; walks new directories; forgets deleted subtrees.
    fn check_path(&mut self, path: &Path, reporter: &mut Reporter<'_>) -> anyhow::Result<()> {
        let policy = self.policy;
        let Standing::Tracked(root, depth) = policy.standing(path) else {
            return Ok(());
        };
        let old = self.store.get(path)?;
        let mut stats = ScanStats::default();
        let (lk, soft) = look(path, root, old.as_ref(), true, &mut stats);
        let mut found = Vec::new();
        if let Some((op, e)) = soft {
            found.push(Finding::Error {
                path: path.to_path_buf(),
                op,
                err: e.to_string(),
            });
        }
        let new = match lk {
            Look::Present(r) => Some(r),
            Look::Gone => None,
            Look::Failed(op, e) => {
                found.push(Finding::Error {
                    path: path.to_path_buf(),
                    op,
                    err: e.to_string(),
                });
                for f in found {
                    for e in reporter.events_for(&self.store, f) {
                        self.emit(e);
                    }
                }
                return Ok(());
            }
        };
        if let Some((kind, changed)) = decide(old.as_ref(), new.as_ref(), root.checks()) {
            found.push(Finding::change(
                path.to_path_buf(),
                kind,
                changed,
                old.clone(),
                new.clone(),
            ));
        }
        match &new {
            Some(n) if old.as_ref() != Some(n) => self.store.put(path, n)?,
            None if old.is_some() => self.store.delete(path)?,
            _ => {}
        }
        let was_dir = old.as_ref().is_some_and(|o| o.kind == FileKind::Dir);
        let is_dir = new.as_ref().is_some_and(|n| n.kind == FileKind::Dir);
        if was_dir && !is_dir {
            for (p, r) in self.store.take_subtree(path)? {
                found.push(Finding::change(
                    p,
                    ChangeKind::Deleted,
                    Vec::new(),
                    Some(r),
                    None,
                ));
            }
            if let Some(w) = self.watcher.as_mut() {
                w.unwatch_tree(path);
            }
        }
        for f in found {
            for e in reporter.events_for(&self.store, f) {
                self.emit(e);
            }
        }
        if is_dir
            && root.descends_into(depth)
            && policy.root_for(path).is_some_and(|r| r.index == root.index)
        {
            let newly = self.watcher.as_ref().is_some_and(|w| !w.is_watched(path));
            if let Some(w) = self.watcher.as_mut() {
                for e in w.watch_tree(policy, root, path) {
                    self.emit(e);
                }
            }
            if newly || !was_dir {
                // Entries created before the watch was in place would otherwise be missed.
                if let Ok(rd) = std::fs::read_dir(path) {
                    let children: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
                    for c in children {
                        self.check_path(&c, reporter)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A rename inside watched trees: the records move with it, one `renamed` event for the moved entry.
    fn check_rename(
        &mut self,
        from: &Path,
        to: &Path,
        reporter: &mut Reporter<'_>,
    ) -> anyhow::Result<bool> {
        let Some(old) = self.store.get(from)? else {
            return Ok(false);
        };
        let Standing::Tracked(root, _) = self.policy.standing(to) else {
            return Ok(false);
        };
        let mut st = ScanStats::default();
        let Look::Present(new) = look(to, root, Some(&old), false, &mut st).0 else {
            return Ok(false);
        };
        if new.inode != old.inode || new.dev != old.dev {
            return Ok(false);
        }
        self.store.delete(from)?;
        self.store.put(to, &new)?;
        if old.kind == FileKind::Dir {
            for (p, r) in self.store.take_subtree(from)? {
                if let Ok(rest) = p.strip_prefix(from) {
                    self.store.put(&to.join(rest), &r)?;
                }
            }
            if let Some(w) = self.watcher.as_mut() {
                w.unwatch_tree(from);
                for e in w.watch_tree(self.policy, root, to) {
                    self.emit(e);
                }
            }
        }
        let changed = bannin_fim::compare(&old, &new, root.checks())
            .into_iter()
            .filter(|a| *a != bannin_fim::Attr::Inode)
            .collect();
        let f = Finding::Change {
            path: to.to_path_buf(),
            kind: ChangeKind::Renamed,
            changed,
            before: Some(old),
            after: Some(new),
            renamed_from: Some(from.to_path_buf()),
        };
        for e in reporter.events_for(&self.store, f) {
            self.emit(e);
        }
        Ok(true)
    }

    fn handle_batch(&mut self, batch: Vec<RawEvent>) -> anyhow::Result<bool> {
        let mut paths = BTreeSet::new();
        let mut renames = Vec::new();
        let mut rescan = false;
        for ev in batch {
            match ev {
                Ok(ev) => {
                    if ev.need_rescan() {
                        rescan = true;
                    }
                    if let NK::Modify(ModifyKind::Name(RenameMode::Both)) = ev.kind {
                        if ev.paths.len() == 2 {
                            renames.push((ev.paths[0].clone(), ev.paths[1].clone()));
                            continue;
                        }
                    }
                    if matches!(ev.kind, NK::Access(_)) {
                        continue;
                    }
                    paths.extend(ev.paths);
                }
                Err(e) => {
                    self.emit(events::watch_degraded_event(
                        &format!("watcher error: {e}"),
                        0,
                        None,
                    ));
                    rescan = true;
                }
            }
        }
        let mut reporter = Reporter::new(self.policy, &self.state_dir, Source::Realtime, true);
        reporter.writers = self.writers.clone();
        for (from, to) in renames {
            if !self.check_rename(&from, &to, &mut reporter)? {
                paths.insert(from);
                paths.insert(to);
            }
        }
        for p in paths {
            self.check_path(&p, &mut reporter)?;
        }
        Ok(rescan)
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Gathers a burst: everything that arrives until the stream is quiet for `quiet`, at most `max` in total.
fn coalesce(
    first: RawEvent,
    rx: &Receiver<RawEvent>,
    quiet: Duration,
    max: Duration,
) -> Vec<RawEvent> {
    let start = Instant::now();
    let mut batch = vec![first];
    loop {
        let left = max.saturating_sub(start.elapsed());
        if left.is_zero() {
            break;
        }
        match rx.recv_timeout(quiet.min(left)) {
            Ok(e) => batch.push(e),
            Err(_) => break,
        }
    }
    batch
}

fn engine_loop(
    policy: &Policy,
    state_dir: &Path,
    tx: &Sender<Event>,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let (store, reset) = Store::open(state_dir)?;
    let mut cx = Ctx {
        policy,
        store,
        state_dir: state_dir.to_path_buf(),
        tx,
        watcher: None,
        writers: None,
        closed: false,
    };
    if let Some(e) = reset {
        cx.emit(e);
    }
    let (ntx, nrx) = std::sync::mpsc::channel::<RawEvent>();
    if policy.roots().any(|r| r.spec.realtime) {
        match Watcher::new(ntx) {
            Ok(w) => cx.watcher = Some(w),
            Err(e) => cx.emit(events::watch_degraded_event(
                &format!("cannot start inotify: {e}"),
                0,
                None,
            )),
        }
    }
    // Watches first, so nothing written during the first scan is missed.
    let realtime: Vec<_> = policy.roots().filter(|r| r.spec.realtime).collect();
    if policy.config.writer_attribution && !realtime.is_empty() {
        let paths: Vec<PathBuf> = realtime
            .iter()
            .map(|r| r.root.clone())
            .filter(|p| p.exists())
            .collect();
        cx.writers = super::attribution::Attribution::start(&paths);
    }
    for root in &realtime {
        if root.root.is_dir() {
            if let Some(w) = cx.watcher.as_mut() {
                for e in w.watch_tree(policy, root, &root.root) {
                    cx.emit(e);
                }
            }
        }
    }
    if let Err(e) = cx.run_scan(None, true) {
        cx.emit(events::scan_error_event(
            &cx.store.path.clone(),
            "scan with the baseline",
            &e.to_string(),
        ));
    }
    let interval = |r: &bannin_fim::RootPolicy| {
        r.spec
            .scan_interval
            .unwrap_or(policy.config.scan_interval)
            .0
            .max(Duration::from_secs(1))
    };
    let mut due: Vec<(usize, Instant)> = policy
        .roots()
        .map(|r| (r.index, Instant::now() + interval(r)))
        .collect();
    let quiet = Duration::from_millis(policy.config.coalesce_ms.max(1));
    while !stop.load(Ordering::Relaxed) && !cx.closed {
        let next = due
            .iter()
            .map(|d| d.1)
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        let wait = next
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(200));
        match nrx.recv_timeout(wait) {
            Ok(first) => {
                let batch = coalesce(first, &nrx, quiet, Duration::from_millis(500));
                match cx.handle_batch(batch) {
                    Ok(true) => {
                        let rt: Vec<usize> = realtime.iter().map(|r| r.index).collect();
                        if let Err(e) = cx.run_scan(Some(rt), false) {
                            cx.emit(events::scan_error_event(
                                &cx.store.path.clone(),
                                "scan after a watcher overflow",
                                &e.to_string(),
                            ));
                        }
                    }
                    Ok(false) => {}
                    Err(e) => cx.emit(events::scan_error_event(
                        &cx.store.path.clone(),
                        "update the baseline",
                        &e.to_string(),
                    )),
                }
            }
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {}
        }
        let now = Instant::now();
        let ready: Vec<usize> = due.iter().filter(|d| d.1 <= now).map(|d| d.0).collect();
        if !ready.is_empty() {
            if let Err(e) = cx.run_scan(Some(ready.clone()), false) {
                cx.emit(events::scan_error_event(
                    &cx.store.path.clone(),
                    "run a scheduled scan",
                    &e.to_string(),
                ));
            }
            for d in due.iter_mut().filter(|d| ready.contains(&d.0)) {
                d.1 = Instant::now() + interval(policy.root(d.0).expect("root exists"));
            }
        }
    }
    if let Some(a) = &cx.writers {
        a.stop();
    }
    Ok(())
}
