//! The log source of `bannin-agent run`: follows files (paths and globs), CloudTrail directories and
//! journald, hands every record to the rule engine, and sends each alert as a `log` event.
//!
//! One thread owns the engine (correlation spans all sources, as in OSSEC's analysisd), the
//! followed files and the position store. It wakes on inotify events (through `notify`) and at
//! least every 250 ms; globs are re-expanded every second (the fallback when inotify misses a
//! directory). Positions are saved every second and at shutdown; a position is saved only after
//! the events of the records before it were handed to the pipeline, so a restart neither skips
//! nor repeats a record (a SIGKILL can repeat at most the last second).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use bannin_logrules::{Engine, LoadSummary, Ruleset, Verdict};
use bannin_proto::{rules, Event, EventKind};
use notify::Watcher as _;
use tokio::sync::mpsc::Sender;

use super::cloudtrail::{self, CloudTrailError};
use super::config::{FileInput, Format, LogsConfig};
use super::framer::Framer;
use super::journald::{self, JournalLine};
use super::paths::PathPattern;
use super::ruleset_dir::RulesetFiles;
use super::state::StateStore;
use super::tail::{find_copy, find_renamed, fingerprint_file, Change, SourceTag, Tailed};

/// Longest wait between two looks at the files.
const POLL: Duration = Duration::from_millis(250);
/// Globs are re-expanded (and fingerprints re-checked) this often even without inotify events.
const RESCAN: Duration = Duration::from_secs(1);
/// Positions are saved this often.
const FLUSH: Duration = Duration::from_secs(1);
/// A file rotated away is still read this long after its last growth (writers reopen late).
const RETIRE_AFTER: Duration = Duration::from_secs(5);
/// Bytes read from one file before the others get their turn.
const READ_BUDGET: usize = 4 << 20;
/// A CloudTrail file that does not parse yet is retried while it is younger than this.
const CLOUDTRAIL_SETTLE: Duration = Duration::from_secs(30);

/// Counters for the heartbeat and the logs.
#[derive(Debug, Default)]
pub struct CollectorStats {
    /// Records given to the engine.
    pub lines: AtomicU64,
    /// Records that raised an alert event.
    pub alerts: AtomicU64,
    /// Records cut at `max_line_bytes`.
    pub truncated: AtomicU64,
    /// Files followed right now.
    pub files: AtomicU64,
    /// CloudTrail files processed.
    pub cloudtrail_files: AtomicU64,
    /// Rotations noticed (rename or truncation).
    pub rotations: AtomicU64,
}

/// Loads the configured ruleset. A missing path is an error naming it (and saying when it is the
/// packaged default), so log inspection never runs silently without rules.
pub fn load_ruleset(cfg: &LogsConfig) -> Result<(Ruleset, LoadSummary)> {
    let mut files = RulesetFiles::default();
    for p in &cfg.ruleset {
        if !p.exists() {
            if cfg.ruleset_is_default() {
                anyhow::bail!(
                    "the default log ruleset {} is missing (install the signatures, or set \
                     `ruleset = [...]` in [logs])",
                    p.display()
                );
            }
            anyhow::bail!("[logs] ruleset path {} does not exist", p.display());
        }
        files
            .add_path(p)
            .with_context(|| format!("loading log ruleset {}", p.display()))?;
    }
    let (rs, summary) = files.into_builder().build();
    if rs.rules.is_empty() {
        anyhow::bail!(
            "the log ruleset ({}) holds no rules: {summary}",
            cfg.ruleset
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok((rs, summary))
}

/// Runs the collector until `shutdown` completes (or the pipeline is gone). Errors only for what
/// makes log inspection impossible (no ruleset, state store unusable).
pub async fn run_log_source(
    cfg: LogsConfig,
    state_dir: &Path,
    tx: Sender<Event>,
    shutdown: impl Future<Output = ()> + Send,
    stats: Arc<CollectorStats>,
) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let db = state_dir.join("logs.db");
    let mut handle = tokio::task::spawn_blocking(move || -> Result<()> {
        let t0 = Instant::now();
        let (rs, summary) = load_ruleset(&cfg)?;
        tracing::info!(
            "logs: ruleset loaded in {:.0} ms: {summary}",
            t0.elapsed().as_secs_f64() * 1000.0
        );
        if !summary.skipped.is_empty() {
            let first: Vec<String> = summary
                .skipped
                .iter()
                .take(20)
                .map(|s| s.to_string())
                .collect();
            let e = Event::new(
                EventKind::Agent,
                rules::WATCHER_ERROR,
                3,
                format!(
                    "Log ruleset: {} construct(s) not supported, their rules were skipped",
                    summary.skipped.len()
                ),
            )
            .with_groups(["bannin", "agent", "logs"])
            .with_body(serde_json::json!({ "summary": summary.to_string(), "skipped": first }));
            let _ = tx.blocking_send(e);
        }
        let store = StateStore::open(&db)?;
        // Positions of files gone for a month (rotated away and deleted long ago).
        store.forget_older_than(30)?;
        let mut c = Collector::new(cfg, store, Arc::new(rs), tx, stats)?;
        c.run(&stop2)
    });
    // Dropping this future (a runtime shutting down) must stop the thread too.
    let _guard = StopOnDrop(stop.clone());
    tokio::select! {
        _ = shutdown => {
            stop.store(true, Ordering::Relaxed);
            handle.await?
        }
        r = &mut handle => r?,
    }
}

struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

enum Msg {
    /// Something changed in a watched directory; `created` when files may have appeared.
    Fs {
        created: bool,
    },
    Journal(usize, JournalLine),
}

/// Turns records into engine verdicts and alert events.
struct Judge {
    engine: Engine,
    tx: Sender<Event>,
    stats: Arc<CollectorStats>,
    closed: bool,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Judge {
    fn record(&mut self, tag: &SourceTag, text: &str, truncated: bool, time: Option<i64>) {
        if self.engine.location != tag.location {
            self.engine.location.clone_from(&tag.location);
        }
        self.stats.lines.fetch_add(1, Ordering::Relaxed);
        if truncated {
            self.stats.truncated.fetch_add(1, Ordering::Relaxed);
        }
        let v = self.engine.process(text, time.unwrap_or_else(unix_now));
        if v.alert {
            self.stats.alerts.fetch_add(1, Ordering::Relaxed);
            let e = alert_event(tag, text, truncated, &v);
            if !self.closed && self.tx.blocking_send(e).is_err() {
                self.closed = true;
            }
        }
    }
}

/// The `log` event for an alerting verdict.
pub fn alert_event(tag: &SourceTag, text: &str, truncated: bool, v: &Verdict) -> Event {
    let Some(r) = &v.rule else {
        return Event::new(EventKind::Log, 0, 0, "log record");
    };
    let mut fields = serde_json::Map::new();
    for (k, val) in &v.fields {
        fields
            .entry(k.clone())
            .or_insert_with(|| serde_json::Value::String(val.clone()));
    }
    let mut body = serde_json::json!({
        "location": tag.location,
        "format": tag.format,
        "decoder": v.decoder,
        "hostname": v.hostname,
        "program_name": v.program_name,
        "fields": fields,
        "mitre": r.mitre,
        "rule": { "id": r.id, "level": r.level, "file": r.file, "correlated": r.correlated },
    });
    if let Some(l) = &tag.label {
        body["label"] = serde_json::Value::String(l.clone());
    }
    if !r.no_full_log {
        body["full_log"] = serde_json::Value::String(text.to_string());
    }
    if truncated {
        body["truncated"] = serde_json::Value::Bool(true);
    }
    let mut title = if r.description.is_empty() {
        format!("Log rule {} matched", r.id)
    } else {
        r.description.clone()
    };
    if title.len() > 4000 {
        let mut cut = 4000;
        while !title.is_char_boundary(cut) {
            cut -= 1;
        }
        title.truncate(cut);
    }
    let mut e = Event::new(EventKind::Log, r.id as u64, r.level, title)
        .with_groups(r.groups.iter().take(64).cloned())
        .with_body(body);
    if let Ok(t) = time::OffsetDateTime::from_unix_timestamp(v.time) {
        e = e.with_timestamp(t);
    }
    e
}

struct Input {
    cfg: FileInput,
    pattern: PathPattern,
    /// The agent ran with this input before: a file seen for the first time is new.
    known: bool,
}

struct Collector {
    inputs: Vec<Input>,
    only_future: bool,
    journald: Vec<super::config::JournaldInput>,
    active: HashMap<PathBuf, Tailed>,
    draining: Vec<Tailed>,
    ct_done: HashSet<PathBuf>,
    ct_failed: HashSet<PathBuf>,
    unreadable: HashSet<PathBuf>,
    store: StateStore,
    judge: Judge,
    stats: Arc<CollectorStats>,
    wake_tx: SyncSender<Msg>,
    wake_rx: Receiver<Msg>,
    watcher: Option<notify::RecommendedWatcher>,
    watched: HashSet<PathBuf>,
    journal_children: Vec<std::process::Child>,
    journal_cursors: Vec<Option<String>>,
    journal_dirty: Vec<bool>,
    buf: Vec<u8>,
    started: Instant,
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::Syslog => "syslog",
        Format::Json => "json",
        Format::Cloudtrail => "cloudtrail",
        Format::Raw => "raw",
    }
}

fn journal_key(i: usize, j: &super::config::JournaldInput) -> String {
    format!(
        "journald:{i}:{}:{}:{}",
        j.units.join(","),
        j.identifiers.join(","),
        j.directory
            .as_ref()
            .map(|d| d.display().to_string())
            .unwrap_or_default()
    )
}

impl Collector {
    fn new(
        cfg: LogsConfig,
        store: StateStore,
        rs: Arc<Ruleset>,
        tx: Sender<Event>,
        stats: Arc<CollectorStats>,
    ) -> Result<Collector> {
        let mut inputs = Vec::new();
        for f in &cfg.files {
            let pattern = if f.format == Format::Cloudtrail && f.path.0.is_dir() {
                PathPattern::cloudtrail_dir(&f.path.0)?
            } else {
                PathPattern::new(&f.path.0.to_string_lossy())?
            };
            inputs.push(Input {
                known: store.input_known(&pattern.text)?,
                cfg: f.clone(),
                pattern,
            });
        }
        let (wake_tx, wake_rx) = std::sync::mpsc::sync_channel(4096);
        let w = wake_tx.clone();
        let watcher = notify::recommended_watcher(move |r: notify::Result<notify::Event>| {
            if let Ok(ev) = r {
                use notify::EventKind as K;
                let created = matches!(
                    ev.kind,
                    K::Create(_) | K::Modify(notify::event::ModifyKind::Name(_)) | K::Remove(_)
                );
                // A full channel already holds a wake-up; the poll covers the rest.
                match w.try_send(Msg::Fs { created }) {
                    Ok(()) | Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {}
                }
            }
        })
        .map_err(|e| tracing::warn!("logs: inotify unavailable, polling every {POLL:?}: {e}"))
        .ok();
        let ct_done = store.done_paths()?.into_iter().collect();
        let journal_cursors = cfg
            .journald
            .iter()
            .enumerate()
            .map(|(i, j)| store.cursor(&journal_key(i, j)))
            .collect::<Result<Vec<_>>>()?;
        let mut engine = Engine::new(rs);
        engine.time_source = bannin_logrules::TimeSource::LogTime;
        Ok(Collector {
            inputs,
            only_future: cfg.only_future_events,
            journal_dirty: vec![false; cfg.journald.len()],
            journald: cfg.journald,
            active: HashMap::new(),
            draining: Vec::new(),
            ct_done,
            ct_failed: HashSet::new(),
            unreadable: HashSet::new(),
            store,
            judge: Judge {
                engine,
                tx,
                stats: stats.clone(),
                closed: false,
            },
            stats,
            wake_tx,
            wake_rx,
            watcher,
            watched: HashSet::new(),
            journal_children: Vec::new(),
            journal_cursors,
            buf: vec![0u8; 256 << 10],
            started: Instant::now(),
        })
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn run(&mut self, stop: &AtomicBool) -> Result<()> {
        self.start_journald();
        self.discover(true)?;
        tracing::info!(
            files = self.active.len(),
            journald = self.journald.len(),
            "logs: collecting"
        );
        let mut last_scan = Instant::now();
        let mut last_flush = Instant::now();
        let mut busy = false;
        loop {
            let stopping =
                stop.load(Ordering::Relaxed) || self.judge.closed || self.judge.tx.is_closed();
            let mut rescan = false;
            let wait = if busy || stopping {
                Duration::ZERO
            } else {
                POLL
            };
            let mut next = match self.wake_rx.recv_timeout(wait) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => None,
            };
            let mut journal_lines = 0;
            while let Some(m) = next.take() {
                match m {
                    Msg::Fs { created } => rescan |= created,
                    Msg::Journal(i, l) => {
                        self.journal_line(i, l);
                        journal_lines += 1;
                    }
                }
                if journal_lines > 10_000 {
                    break;
                }
                next = self.wake_rx.try_recv().ok();
            }
            let deep = last_scan.elapsed() >= RESCAN;
            if deep || rescan {
                self.discover(false)?;
                last_scan = Instant::now();
            }
            busy = self.service_files(deep) || journal_lines > 10_000;
            if last_flush.elapsed() >= FLUSH || stopping {
                self.flush()?;
                last_flush = Instant::now();
            }
            if stopping {
                if busy && !self.judge.closed {
                    // Catch up with what was written before the stop, then save.
                    continue;
                }
                self.flush()?;
                break;
            }
        }
        for c in &mut self.journal_children {
            let _ = c.kill();
            let _ = c.wait();
        }
        tracing::info!(
            lines = self.stats.lines.load(Ordering::Relaxed),
            alerts = self.stats.alerts.load(Ordering::Relaxed),
            "logs: stopped, positions saved"
        );
        Ok(())
    }

    fn start_journald(&mut self) {
        for (i, j) in self.journald.iter().enumerate() {
            if self.journal_cursors[i].is_none() {
                let since = journald::since_marker(SystemTime::now());
                if let Err(e) = self.store.save_cursor(&journal_key(i, j), &since) {
                    tracing::warn!("logs: saving the journald start time: {e:#}");
                }
                self.journal_cursors[i] = Some(since);
            }
            let w = self.wake_tx.clone();
            match journald::spawn(j, self.journal_cursors[i].as_deref(), move |l| {
                w.send(Msg::Journal(i, l)).is_ok()
            }) {
                Ok(child) => self.journal_children.push(child),
                Err(e) => {
                    let e = Event::new(
                        EventKind::Agent,
                        rules::WATCHER_ERROR,
                        7,
                        format!("journald input {} cannot start journalctl: {e}", i + 1),
                    )
                    .with_groups(["bannin", "agent", "logs"]);
                    let _ = self.judge.tx.blocking_send(e);
                }
            }
        }
    }

    fn journal_line(&mut self, i: usize, l: JournalLine) {
        let tag = SourceTag {
            location: "journald".into(),
            label: self.journald[i].label.clone(),
            format: "journald",
        };
        self.judge.record(&tag, &l.line, false, l.time);
        if let Some(c) = l.cursor {
            self.journal_cursors[i] = Some(c);
            self.journal_dirty[i] = true;
        }
    }

    fn watch(&mut self, dir: &Path) {
        if self.watched.contains(dir) || !dir.is_dir() {
            return;
        }
        if let Some(w) = &mut self.watcher {
            match w.watch(dir, notify::RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.watched.insert(dir.to_path_buf());
                }
                Err(e) => tracing::debug!("logs: cannot watch {}: {e}", dir.display()),
            }
        }
    }

    /// Expands every input and starts following what is new. `first` is the pass at startup.
    fn discover(&mut self, first: bool) -> Result<()> {
        let tracked: HashSet<(u64, u64)> = self
            .active
            .values()
            .chain(self.draining.iter())
            .map(|t| (t.dev, t.ino))
            .collect();
        let mut tracked = tracked;
        for idx in 0..self.inputs.len() {
            let dir = self.inputs[idx].pattern.watch_dir().to_path_buf();
            self.watch(&dir);
            let paths = self.inputs[idx].pattern.expand();
            if first && paths.is_empty() {
                tracing::warn!(
                    "logs: nothing matches {} yet; it is picked up when it appears",
                    self.inputs[idx].pattern.text
                );
            }
            if self.inputs[idx].cfg.format == Format::Cloudtrail {
                for p in paths {
                    if !self.ct_done.contains(&p) && !self.ct_failed.contains(&p) {
                        self.cloudtrail_file(idx, &p)?;
                    }
                }
                continue;
            }
            if first {
                // A followed path that is gone now (rotated while the agent was stopped and not
                // recreated yet): its old file may still have unread lines.
                for old in self.store.all_paths()? {
                    if self.inputs[idx].pattern.matches(&old) && !paths.contains(&old) {
                        self.finish_rotated_while_down(idx, &old, &mut tracked)?;
                    }
                }
            }
            for p in paths {
                if self.active.contains_key(&p) {
                    continue;
                }
                if let Some(parent) = p.parent() {
                    let parent = parent.to_path_buf();
                    self.watch(&parent);
                }
                match self.follow(idx, &p, first, &mut tracked) {
                    Ok(()) => {
                        self.unreadable.remove(&p);
                    }
                    // Reported once per path, not at every rescan.
                    Err(e) if self.unreadable.insert(p.clone()) => {
                        tracing::warn!("logs: cannot follow {}: {e:#}", p.display());
                        let ev = Event::new(
                            EventKind::Agent,
                            rules::WATCHER_ERROR,
                            5,
                            format!("Log file {} cannot be followed: {e:#}", p.display()),
                        )
                        .with_groups(["bannin", "agent", "logs"])
                        .with_body(serde_json::json!({ "path": p, "error": format!("{e:#}") }));
                        if self.judge.tx.blocking_send(ev).is_err() {
                            self.judge.closed = true;
                        }
                    }
                    Err(_) => {}
                }
            }
            if !self.inputs[idx].known {
                self.store.remember_input(&self.inputs[idx].pattern.text)?;
                self.inputs[idx].known = true;
            }
        }
        self.stats.files.store(
            (self.active.len() + self.draining.len()) as u64,
            Ordering::Relaxed,
        );
        Ok(())
    }

    fn tag(&self, idx: usize, p: &Path) -> Arc<SourceTag> {
        let cfg = &self.inputs[idx].cfg;
        Arc::new(SourceTag {
            location: p.display().to_string(),
            label: cfg.label.clone(),
            format: format_name(cfg.format),
        })
    }

    fn framer(&self, idx: usize, offset: u64) -> Framer {
        let cfg = &self.inputs[idx].cfg;
        Framer::new(
            cfg.max_line_bytes.0,
            cfg.multiline_start.as_ref().map(|r| r.0.clone()),
            cfg.multiline_timeout_ms,
            offset,
        )
    }

    /// Starts following `p`: at its saved position when it is the same file (device, inode and
    /// first bytes), else from its start (a new or replaced file), or from its end on the very
    /// first run with `only_future_events`.
    fn follow(
        &mut self,
        idx: usize,
        p: &Path,
        first: bool,
        tracked: &mut HashSet<(u64, u64)>,
    ) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        let file = std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
        let m = file.metadata()?;
        if tracked.contains(&(m.dev(), m.ino())) {
            // The same file under another name (a rotated copy matching the glob): already read.
            return Ok(());
        }
        if first {
            // Files rotated away from this path while the agent was stopped: finish them first.
            self.finish_rotated_while_down(idx, p, tracked)?;
        }
        let row = self.store.file(m.dev(), m.ino())?;
        let offset = match &row {
            Some(r) if fingerprint_file(&file, r.fp.len)? == r.fp && r.offset <= m.len() => {
                r.offset
            }
            Some(r) => {
                // Truncated or rewritten while the agent was stopped (copytruncate): the lines
                // after the saved offset are in the rotated copy, if it is still there.
                if let Some((copy, f)) = find_copy(p, &r.fp, r.offset + 1) {
                    tracing::info!(
                        path = %p.display(),
                        copy = %copy.display(),
                        "logs: reading the end of a file truncated while the agent was stopped"
                    );
                    let cm = f.metadata()?;
                    if !tracked.contains(&(cm.dev(), cm.ino())) {
                        let mut t =
                            Tailed::open(p, idx, self.tag(idx, p), f, self.framer(idx, r.offset))?;
                        // Positions are kept under the copy's own inode.
                        t.path = copy;
                        t.retire_at = Some(Instant::now() + RETIRE_AFTER);
                        tracked.insert((t.dev, t.ino));
                        self.draining.push(t);
                    }
                }
                0
            }
            None => {
                let seen_here = !self.store.files_at(p)?.is_empty();
                if first && !self.inputs[idx].known && !seen_here && self.only_future {
                    m.len()
                } else {
                    0
                }
            }
        };
        let t = Tailed::open(p, idx, self.tag(idx, p), file, self.framer(idx, offset))?;
        tracked.insert((t.dev, t.ino));
        tracing::debug!(path = %p.display(), offset, "logs: following");
        self.active.insert(p.to_path_buf(), t);
        Ok(())
    }

    /// Files that were at `p` when the agent stopped and were renamed next to it since: read from
    /// the saved position to their end.
    fn finish_rotated_while_down(
        &mut self,
        idx: usize,
        p: &Path,
        tracked: &mut HashSet<(u64, u64)>,
    ) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        let current = std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
        for row in self.store.files_at(p)? {
            if Some((row.dev, row.ino)) == current || tracked.contains(&(row.dev, row.ino)) {
                continue;
            }
            let Some(moved) = find_renamed(p, row.dev, row.ino) else {
                continue;
            };
            let Ok(f) = std::fs::File::open(&moved) else {
                continue;
            };
            let m = f.metadata()?;
            if m.len() <= row.offset || fingerprint_file(&f, row.fp.len)? != row.fp {
                continue;
            }
            tracing::info!(
                from = %p.display(),
                to = %moved.display(),
                "logs: reading the end of a file rotated while the agent was stopped"
            );
            let mut t = Tailed::open(p, idx, self.tag(idx, p), f, self.framer(idx, row.offset))?;
            t.retire_at = Some(Instant::now() + RETIRE_AFTER);
            tracked.insert((row.dev, row.ino));
            self.draining.push(t);
        }
        Ok(())
    }

    /// Reads every followed file; returns true if some file had more than its budget to read.
    fn service_files(&mut self, deep: bool) -> bool {
        let now_ms = self.now_ms();
        let mut busy = false;
        let judge = &mut self.judge;
        let buf = &mut self.buf;
        let mut sink = |tag: &SourceTag, text: &str, tr: bool| judge.record(tag, text, tr, None);
        // Rotated-away files first: their lines are older than the new file's.
        let mut i = 0;
        while i < self.draining.len() {
            let t = &mut self.draining[i];
            match t.read(buf, READ_BUDGET, now_ms, &mut sink) {
                Ok(n) if n > 0 => {
                    busy |= n >= READ_BUDGET;
                    t.retire_at = Some(Instant::now() + RETIRE_AFTER);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("logs: reading {}: {e}", t.path.display()),
            }
            t.poll(now_ms, &mut sink);
            if t.retire_at.map(|r| Instant::now() >= r).unwrap_or(true) && !busy {
                t.finish(&mut sink);
                let mut t = self.draining.swap_remove(i);
                if let Some(row) = t.dirty_row() {
                    if let Err(e) = self.store.save_files(&[row]) {
                        tracing::warn!("logs: saving position: {e:#}");
                    }
                }
                continue;
            }
            i += 1;
        }
        let mut gone = Vec::new();
        for (p, t) in self.active.iter_mut() {
            match t.read(buf, READ_BUDGET, now_ms, &mut sink) {
                Ok(n) => busy |= n >= READ_BUDGET,
                Err(e) => tracing::warn!("logs: reading {}: {e}", p.display()),
            }
            match t.check(deep) {
                Change::Same => {}
                Change::Truncated => {
                    self.stats.rotations.fetch_add(1, Ordering::Relaxed);
                    let copy = t.restart_after_truncation(buf, now_ms, &mut sink);
                    tracing::info!(
                        path = %p.display(),
                        copy = ?copy,
                        "logs: file truncated (copytruncate); reading it again from its start"
                    );
                    let _ = t.read(buf, READ_BUDGET, now_ms, &mut sink);
                }
                Change::Replaced => {
                    self.stats.rotations.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(path = %p.display(), "logs: file renamed or deleted; finishing the old one");
                    gone.push(p.clone());
                }
            }
            t.poll(now_ms, &mut sink);
        }
        let replaced = !gone.is_empty();
        for p in gone {
            if let Some(mut t) = self.active.remove(&p) {
                t.retire_at = Some(Instant::now() + RETIRE_AFTER);
                self.draining.push(t);
            }
        }
        if replaced {
            // The new file at the path is picked up now, not at the next rescan.
            if let Err(e) = self.discover(false) {
                tracing::warn!("logs: {e:#}");
            }
            let judge = &mut self.judge;
            let mut sink =
                |tag: &SourceTag, text: &str, tr: bool| judge.record(tag, text, tr, None);
            for t in self.active.values_mut() {
                let _ = t.read(&mut self.buf, READ_BUDGET, now_ms, &mut sink);
            }
        }
        busy
    }

    fn cloudtrail_file(&mut self, idx: usize, p: &Path) -> Result<()> {
        let bytes = match std::fs::read(p) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("logs: reading {}: {e}", p.display());
                return Ok(());
            }
        };
        let shown = p.display().to_string();
        match cloudtrail::records(&bytes, &shown) {
            Ok(recs) => {
                let tag = self.tag(idx, p);
                for r in recs {
                    self.judge.record(&tag, &r.line, false, r.time);
                }
                self.stats.cloudtrail_files.fetch_add(1, Ordering::Relaxed);
            }
            Err(CloudTrailError::Incomplete(_))
                if std::fs::metadata(p)
                    .and_then(|m| m.modified())
                    .map(|t| t.elapsed().unwrap_or_default() < CLOUDTRAIL_SETTLE)
                    .unwrap_or(false) =>
            {
                // Still being written: try again at the next rescan.
                return Ok(());
            }
            Err(e) => {
                self.ct_failed.insert(p.to_path_buf());
                let ev = Event::new(
                    EventKind::Agent,
                    rules::WATCHER_ERROR,
                    5,
                    format!("CloudTrail file {shown} skipped: {e}"),
                )
                .with_groups(["bannin", "agent", "logs"])
                .with_body(serde_json::json!({ "path": shown, "error": e.to_string() }));
                let _ = self.judge.tx.blocking_send(ev);
            }
        }
        self.store.mark_done(p, bytes.len() as u64)?;
        self.ct_done.insert(p.to_path_buf());
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let rows: Vec<_> = self
            .active
            .values_mut()
            .chain(self.draining.iter_mut())
            .filter_map(|t| t.dirty_row())
            .collect();
        self.store.save_files(&rows)?;
        for (i, j) in self.journald.iter().enumerate() {
            if self.journal_dirty[i] {
                if let Some(c) = &self.journal_cursors[i] {
                    self.store.save_cursor(&journal_key(i, j), c)?;
                }
                self.journal_dirty[i] = false;
            }
        }
        Ok(())
    }
}
