//! Scheduled and on-demand scans: a parallel directory walk that compares every entry with the baseline one
//! directory at a time, hashes only what may have changed, and streams results to a single writer.
//!
//! Memory stays bounded on huge trees: the work list holds directory paths only, each worker holds the
//! baseline of the one directory it is reading, and results go through a bounded channel.

use super::observe;
use super::store::{self, Store};
use bannin_fim::{compare, Attr, ChangeKind, FileKind, FileRecord, Policy, RootPolicy, Standing};
use serde::Serialize;
use std::collections::HashMap;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Live counters, for a progress bar.
#[derive(Debug, Default)]
pub struct Progress {
    pub entries: AtomicU64,
    pub bytes_hashed: AtomicU64,
}

#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// Write the observed state into the baseline (the agent does; `fim check` does not).
    pub update: bool,
    /// Hash every file even when size/mtime/ctime/inode are unchanged.
    pub full_rehash: bool,
    /// Worker threads (0 = from the config).
    pub threads: usize,
    pub progress: Option<Arc<Progress>>,
    /// Scan only these config roots (by index); `None` = all.
    pub only_roots: Option<Vec<usize>>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ScanStats {
    pub entries: u64,
    pub dirs: u64,
    pub files_hashed: u64,
    pub bytes_hashed: u64,
    pub rehash_skipped: u64,
    pub changes: u64,
    pub errors: u64,
    /// Roots that had no baseline and were recorded now without reporting every entry as added.
    pub roots_baselined: u64,
    pub seconds: f64,
}

/// Something a scan found.
#[derive(Debug, Clone)]
pub enum Finding {
    Change {
        path: PathBuf,
        kind: ChangeKind,
        changed: Vec<Attr>,
        before: Option<FileRecord>,
        after: Option<FileRecord>,
        renamed_from: Option<PathBuf>,
    },
    /// A path that could not be examined; the scan went on.
    Error {
        path: PathBuf,
        op: &'static str,
        err: String,
    },
}

impl Finding {
    pub fn change(
        path: PathBuf,
        kind: ChangeKind,
        changed: Vec<Attr>,
        before: Option<FileRecord>,
        after: Option<FileRecord>,
    ) -> Finding {
        Finding::Change {
            path,
            kind,
            changed,
            before,
            after,
            renamed_from: None,
        }
    }
}

/// What looking at one path gave.
pub enum Look {
    /// It does not exist (any more).
    Gone,
    Present(FileRecord),
    /// It exists but could not be examined at all.
    Failed(&'static str, io::Error),
}

/// Looks at one entry, reusing the baseline hash when the cheap identity is unchanged. A content read
/// error is returned beside the record (whose hash is then unknown) so metadata changes still count.
pub fn look(
    path: &Path,
    root: &RootPolicy,
    old: Option<&FileRecord>,
    full_rehash: bool,
    stats: &mut ScanStats,
) -> (Look, Option<(&'static str, io::Error)>) {
    let checks = root.checks();
    let mut rec = match observe::stat(path, false) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return (Look::Gone, None),
        Err(e) => return (Look::Failed("stat", e), None),
    };
    if checks.contains(&Attr::Xattrs) {
        // Setting or removing an xattr (or ACL) updates ctime: with the same identity the old digest holds,
        // which saves one syscall per file on a re-scan.
        rec.xattrs = match old {
            Some(o) if !full_rehash && o.same_content_identity(&rec) => o.xattrs,
            _ => observe::xattr_digest(path),
        };
    }
    stats.entries += 1;
    let mut soft = None;
    if rec.kind == FileKind::File && checks.contains(&Attr::Hash) {
        match old {
            Some(o) if !full_rehash && o.hash.is_some() && o.same_content_identity(&rec) => {
                rec.hash = o.hash;
                stats.rehash_skipped += 1;
            }
            _ => match observe::hash_file(path, &rec) {
                Ok(h) => {
                    rec.hash = Some(h);
                    stats.files_hashed += 1;
                    stats.bytes_hashed += rec.size;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => return (Look::Gone, None),
                Err(e) => soft = Some(("read", e)),
            },
        }
    }
    (Look::Present(rec), soft)
}

/// The change kind between a baseline record and an observation (`None` = nothing the policy checks).
pub fn decide(
    old: Option<&FileRecord>,
    new: Option<&FileRecord>,
    checks: &[Attr],
) -> Option<(ChangeKind, Vec<Attr>)> {
    match (old, new) {
        (None, None) => None,
        (None, Some(_)) => Some((ChangeKind::Added, Vec::new())),
        (Some(_), None) => Some((ChangeKind::Deleted, Vec::new())),
        (Some(o), Some(n)) => {
            let changed = compare(o, n, checks);
            ChangeKind::of_attrs(&changed).map(|k| (k, changed))
        }
    }
}

enum Msg {
    Put(PathBuf, FileRecord),
    Del(PathBuf),
    /// Everything below this directory is gone (it was deleted or replaced by a non-directory).
    DelSubtree(PathBuf),
    /// Drop the records below this directory without reporting (it left the policy).
    Forget(PathBuf),
    Found(Finding),
    Stats(ScanStats),
}

struct Job {
    dir: PathBuf,
    root: usize,
    /// No baseline exists below here: record silently (first baseline of a root) ...
    initial: bool,
    /// ... or report every entry as added without querying (a new directory).
    fresh: bool,
}

struct Queue {
    state: Mutex<(Vec<Job>, usize)>,
    cv: Condvar,
}

impl Queue {
    fn push(&self, j: Job) {
        self.state.lock().unwrap().0.push(j);
        self.cv.notify_one();
    }

    fn pop(&self) -> Option<Job> {
        let mut g = self.state.lock().unwrap();
        loop {
            if let Some(j) = g.0.pop() {
                g.1 += 1;
                return Some(j);
            }
            if g.1 == 0 {
                self.cv.notify_all();
                return None;
            }
            g = self.cv.wait(g).unwrap();
        }
    }

    fn done(&self) {
        let mut g = self.state.lock().unwrap();
        g.1 -= 1;
        if g.1 == 0 && g.0.is_empty() {
            self.cv.notify_all();
        }
    }
}

fn worker(policy: &Policy, store_path: &Path, q: &Queue, tx: SyncSender<Msg>, opts: &ScanOptions) {
    let conn = rusqlite::Connection::open_with_flags(
        store_path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    );
    let conn = match conn {
        Ok(c) => {
            let _ = c.busy_timeout(Duration::from_secs(30));
            Some(c)
        }
        Err(e) => {
            let _ = tx.send(Msg::Found(Finding::Error {
                path: store_path.to_path_buf(),
                op: "open the baseline of",
                err: e.to_string(),
            }));
            None
        }
    };
    let mut stats = ScanStats::default();
    while let Some(job) = q.pop() {
        let _ = scan_dir(policy, conn.as_ref(), q, &tx, opts, &job, &mut stats);
        q.done();
    }
    let _ = tx.send(Msg::Stats(stats));
}

fn scan_dir(
    policy: &Policy,
    conn: Option<&rusqlite::Connection>,
    q: &Queue,
    tx: &SyncSender<Msg>,
    opts: &ScanOptions,
    job: &Job,
    stats: &mut ScanStats,
) -> Result<(), ()> {
    let send = |m: Msg| tx.send(m).map_err(|_| ());
    let Some(root) = policy.root(job.root) else {
        return Ok(());
    };
    stats.dirs += 1;
    let rd = match std::fs::read_dir(&job.dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            stats.errors += 1;
            return send(Msg::Found(Finding::Error {
                path: job.dir.clone(),
                op: "list",
                err: e.to_string(),
            }));
        }
    };
    let mut base: HashMap<Vec<u8>, FileRecord> = if job.initial || job.fresh {
        HashMap::new()
    } else {
        match conn.map(|c| store::children(c, &job.dir)) {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                stats.errors += 1;
                send(Msg::Found(Finding::Error {
                    path: job.dir.clone(),
                    op: "read the baseline of",
                    err: e.to_string(),
                }))?;
                // Without the baseline every entry would look new; skip this directory rather than mislead.
                return Ok(());
            }
            None => return Ok(()),
        }
    };
    let checks = root.checks();
    for entry in rd {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                stats.errors += 1;
                send(Msg::Found(Finding::Error {
                    path: job.dir.clone(),
                    op: "list",
                    err: e.to_string(),
                }))?;
                continue;
            }
        };
        let name = entry.file_name();
        let path = job.dir.join(&name);
        let old = base.remove(name.as_bytes());
        let depth = match root.standing(&path) {
            Standing::Tracked(_, d) if !policy.is_other_root(&path, root) => d,
            _ => {
                // Policy changed since the baseline: forget silently rather than report a deletion.
                if old.is_some() && opts.update {
                    send(Msg::Del(path.clone()))?;
                    if old.as_ref().is_some_and(|o| o.kind == FileKind::Dir) {
                        send(Msg::Forget(path))?;
                    }
                }
                continue;
            }
        };
        let (look, soft) = look(&path, root, old.as_ref(), opts.full_rehash, stats);
        if let Some(p) = &opts.progress {
            p.entries.fetch_add(1, Ordering::Relaxed);
        }
        if let Some((op, e)) = soft {
            stats.errors += 1;
            send(Msg::Found(Finding::Error {
                path: path.clone(),
                op,
                err: e.to_string(),
            }))?;
        }
        let new = match look {
            Look::Present(r) => Some(r),
            Look::Gone => None,
            Look::Failed(op, e) => {
                stats.errors += 1;
                send(Msg::Found(Finding::Error {
                    path: path.clone(),
                    op,
                    err: e.to_string(),
                }))?;
                continue;
            }
        };
        if let (Some(p), Some(r)) = (&opts.progress, &new) {
            if r.hash.is_some() {
                p.bytes_hashed.fetch_add(r.size, Ordering::Relaxed);
            }
        }
        if !job.initial {
            if let Some((kind, changed)) = decide(old.as_ref(), new.as_ref(), checks) {
                send(Msg::Found(Finding::change(
                    path.clone(),
                    kind,
                    changed,
                    old.clone(),
                    new.clone(),
                )))?;
            }
        }
        let was_dir = old.as_ref().is_some_and(|o| o.kind == FileKind::Dir);
        let is_dir = new.as_ref().is_some_and(|n| n.kind == FileKind::Dir);
        if was_dir && !is_dir {
            send(Msg::DelSubtree(path.clone()))?;
        }
        match &new {
            Some(n) if old.as_ref() != Some(n) => send(Msg::Put(path.clone(), n.clone()))?,
            None if old.is_some() => send(Msg::Del(path.clone()))?,
            _ => {}
        }
        if is_dir && root.descends_into(depth) {
            q.push(Job {
                dir: path,
                root: job.root,
                initial: job.initial,
                fresh: job.fresh || !was_dir,
            });
        }
    }
    for (name, o) in base {
        let path = store::join(job.dir.as_os_str().as_bytes(), &name);
        send(Msg::Found(Finding::change(
            path.clone(),
            ChangeKind::Deleted,
            Vec::new(),
            Some(o.clone()),
            None,
        )))?;
        send(Msg::Del(path.clone()))?;
        if o.kind == FileKind::Dir {
            send(Msg::DelSubtree(path))?;
        }
    }
    Ok(())
}

/// Pairs deletions and additions of the same inode with the same content into renames.
fn pair_renames(found: &mut Vec<Finding>) {
    let mut deleted: HashMap<(u64, u64), usize> = HashMap::new();
    for (i, f) in found.iter().enumerate() {
        if let Finding::Change {
            kind: ChangeKind::Deleted,
            before: Some(b),
            ..
        } = f
        {
            if b.kind != FileKind::Dir {
                deleted.insert((b.dev, b.inode), i);
            }
        }
    }
    if deleted.is_empty() {
        return;
    }
    let mut drop = vec![false; found.len()];
    for i in 0..found.len() {
        let Finding::Change {
            kind: ChangeKind::Added,
            after: Some(a),
            ..
        } = &found[i]
        else {
            continue;
        };
        let Some(&j) = deleted.get(&(a.dev, a.inode)) else {
            continue;
        };
        let Finding::Change {
            path: from,
            before: Some(b),
            ..
        } = &found[j]
        else {
            continue;
        };
        if b.hash != a.hash || b.target != a.target || drop[j] {
            continue;
        }
        let (from, b) = (from.clone(), b.clone());
        if let Finding::Change {
            kind,
            renamed_from,
            before,
            changed,
            after,
            ..
        } = &mut found[i]
        {
            *changed = compare(&b, after.as_ref().unwrap(), &Attr::default_set())
                .into_iter()
                .filter(|a| *a != Attr::Inode)
                .collect();
            *kind = ChangeKind::Renamed;
            *renamed_from = Some(from);
            *before = Some(b);
        }
        drop[j] = true;
    }
    let mut k = 0;
    found.retain(|_| {
        k += 1;
        !drop[k - 1]
    });
}

fn deliver(
    on_finding: &mut dyn FnMut(&Store, Finding),
    store: &Store,
    f: Finding,
    total: &mut ScanStats,
) {
    match &f {
        Finding::Change { .. } => total.changes += 1,
        Finding::Error { .. } => total.errors += 1,
    }
    on_finding(store, f);
}

/// Upper bound on changes held back for rename pairing; past it they are reported as they come.
const PAIRING_CAP: usize = 20_000;

/// Scans the configured roots against the baseline in `store`. Findings go to `on_finding` (on this thread,
/// with the store, so the caller can look up protected copies); the baseline is updated when `opts.update`.
pub fn scan(
    policy: &Policy,
    store: &Store,
    opts: &ScanOptions,
    on_finding: &mut dyn FnMut(&Store, Finding),
) -> anyhow::Result<ScanStats> {
    let started = Instant::now();
    let threads = if opts.threads > 0 {
        opts.threads
    } else {
        policy.config.threads.max(1)
    };
    let q = Queue {
        state: Mutex::new((Vec::new(), 0)),
        cv: Condvar::new(),
    };
    let mut total = ScanStats::default();
    let mut held: Vec<Finding> = Vec::new();
    let mut emit = |store: &Store, f: Finding, held: &mut Vec<Finding>, total: &mut ScanStats| {
        let pairable = matches!(
            &f,
            Finding::Change {
                kind: ChangeKind::Added | ChangeKind::Deleted,
                ..
            }
        );
        if pairable && held.len() < PAIRING_CAP {
            held.push(f);
        } else {
            deliver(&mut *on_finding, store, f, total);
        }
    };
    if opts.update {
        store.conn.execute_batch("BEGIN")?;
    }
    // The roots themselves, on this thread.
    for root in policy.roots() {
        if opts
            .only_roots
            .as_ref()
            .is_some_and(|o| !o.contains(&root.index))
        {
            continue;
        }
        let old = store.get(&root.root)?;
        let initial = old.is_none();
        if initial {
            total.roots_baselined += 1;
        }
        let (look, soft) = look(&root.root, root, old.as_ref(), opts.full_rehash, &mut total);
        if let Some((op, e)) = soft {
            emit(
                store,
                Finding::Error {
                    path: root.root.clone(),
                    op,
                    err: e.to_string(),
                },
                &mut held,
                &mut total,
            );
        }
        let new = match look {
            Look::Present(r) => Some(r),
            Look::Gone => None,
            Look::Failed(op, e) => {
                emit(
                    store,
                    Finding::Error {
                        path: root.root.clone(),
                        op,
                        err: e.to_string(),
                    },
                    &mut held,
                    &mut total,
                );
                continue;
            }
        };
        if new.is_none() && initial {
            if root.spec.optional {
                continue;
            }
            emit(
                store,
                Finding::Error {
                    path: root.root.clone(),
                    op: "find",
                    err: "configured path does not exist".into(),
                },
                &mut held,
                &mut total,
            );
            continue;
        }
        if let Some((kind, changed)) = decide(old.as_ref(), new.as_ref(), root.checks()) {
            if !initial {
                emit(
                    store,
                    Finding::change(root.root.clone(), kind, changed, old.clone(), new.clone()),
                    &mut held,
                    &mut total,
                );
            }
        }
        if opts.update {
            match &new {
                Some(n) => store.put(&root.root, n)?,
                None => store.delete(&root.root)?,
            }
        }
        let was_dir = old.as_ref().is_some_and(|o| o.kind == FileKind::Dir);
        let is_dir = new.as_ref().is_some_and(|n| n.kind == FileKind::Dir);
        if was_dir && !is_dir {
            let gone = if opts.update {
                store.take_subtree(&root.root)?
            } else {
                store::subtree(&store.conn, &root.root)?
            };
            for (p, r) in gone {
                emit(
                    store,
                    Finding::change(p, ChangeKind::Deleted, Vec::new(), Some(r), None),
                    &mut held,
                    &mut total,
                );
            }
        }
        if is_dir {
            q.push(Job {
                dir: root.root.clone(),
                root: root.index,
                initial,
                fresh: !initial && !was_dir,
            });
        }
    }
    if opts.update {
        // Workers read the baseline through their own connections; they must see the roots' state.
        store.conn.execute_batch("COMMIT; BEGIN")?;
    }
    let (tx, rx) = sync_channel::<Msg>(4096);
    std::thread::scope(|s| -> anyhow::Result<()> {
        for _ in 0..threads {
            let tx = tx.clone();
            let q = &q;
            let db = &store.path;
            s.spawn(move || worker(policy, db, q, tx, opts));
        }
        drop(tx);
        let mut writes = 0usize;
        let mut last_commit = Instant::now();
        for m in rx {
            match m {
                Msg::Put(p, r) if opts.update => {
                    store.put(&p, &r)?;
                    writes += 1;
                }
                Msg::Del(p) if opts.update => {
                    store.delete(&p)?;
                    writes += 1;
                }
                Msg::DelSubtree(p) => {
                    let gone = if opts.update {
                        store.take_subtree(&p)?
                    } else {
                        store::subtree(&store.conn, &p)?
                    };
                    for (p, r) in gone {
                        emit(
                            store,
                            Finding::change(p, ChangeKind::Deleted, Vec::new(), Some(r), None),
                            &mut held,
                            &mut total,
                        );
                    }
                }
                Msg::Forget(p) if opts.update => {
                    store.take_subtree(&p)?;
                }
                Msg::Found(f) => emit(store, f, &mut held, &mut total),
                Msg::Stats(st) => {
                    total.entries += st.entries;
                    total.dirs += st.dirs;
                    total.files_hashed += st.files_hashed;
                    total.bytes_hashed += st.bytes_hashed;
                    total.rehash_skipped += st.rehash_skipped;
                }
                _ => {}
            }
            if opts.update
                && writes > 0
                && (writes >= 20_000 || last_commit.elapsed() > Duration::from_millis(500))
            {
                // Short write transactions let the real-time path and readers in.
                store.conn.execute_batch("COMMIT; BEGIN")?;
                writes = 0;
                last_commit = Instant::now();
            }
        }
        Ok(())
    })?;
    if opts.update {
        store.conn.execute_batch("COMMIT")?;
    }
    pair_renames(&mut held);
    for f in held {
        deliver(on_finding, store, f, &mut total);
    }
    total.seconds = started.elapsed().as_secs_f64();
    Ok(total)
}
