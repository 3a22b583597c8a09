//! From findings to events: adds the text diff, the package verdict and the writer, and carries out
//! `on_change = "restore"`. Also keeps the copies that diffs and restores need.

use super::objects::Objects;
use super::observe;
use super::packages::PackageCache;
use super::restore;
use super::scan::Finding;
use super::store::{self, Protected, Store};
use bannin_fim::{
    display_path, events, text_diff, ChangeKind, ChangeReport, DiffOutcome, FileKind, FileRecord,
    OnChange, PackageVerdict, Policy, Source,
};
use bannin_proto::Event;
use std::path::{Path, PathBuf};

pub struct Reporter<'a> {
    pub policy: &'a Policy,
    pub objects: Objects,
    pub packages: PackageCache,
    pub source: Source,
    /// Carry out `on_change = "restore"` (the agent does; `fim check` only reports).
    pub act: bool,
    /// Who wrote recently changed files, when fanotify told us.
    pub writers: Option<std::sync::Arc<super::attribution::Attribution>>,
}

impl<'a> Reporter<'a> {
    pub fn new(policy: &'a Policy, state_dir: &Path, source: Source, act: bool) -> Reporter<'a> {
        Reporter {
            policy,
            objects: Objects::new(state_dir),
            packages: PackageCache::new(
                policy.config.package_awareness,
                policy.config.dpkg_info_dir.clone(),
            ),
            source,
            act,
            writers: None,
        }
    }

    /// The events for one finding: the change (or error), then a restore event when the policy restores.
    pub fn events_for(&mut self, store: &Store, f: Finding) -> Vec<Event> {
        let (path, kind, changed, before, after, renamed_from) = match f {
            Finding::Error { path, op, err } => {
                return vec![events::scan_error_event(&path, op, &err)]
            }
            Finding::Change {
                path,
                kind,
                changed,
                before,
                after,
                renamed_from,
            } => (path, kind, changed, before, after, renamed_from),
        };
        let mut r = ChangeReport::new(&path, kind, before.as_ref(), after.as_ref());
        r.changed = changed;
        r.renamed_from = renamed_from.as_deref();
        r.source = self.source;
        let root = self.policy.root_for(&path);
        let content_changed = matches!(kind, ChangeKind::Added | ChangeKind::Modified)
            && after.as_ref().is_some_and(|a| a.kind == FileKind::File)
            && before.as_ref().map(|b| b.hash) != after.as_ref().map(|a| a.hash);
        if content_changed {
            r.package = self.packages.verdict(&path);
        }
        if let Some(w) = self.writers.as_ref().and_then(|a| a.writer_of(&path)) {
            r.writer = w;
        }
        if let Some(root) = root.filter(|r| r.spec.report_changes) {
            let _ = root;
            r.diff = self.diff(store, &path, before.as_ref(), after.as_ref(), kind);
        }
        let mut out = vec![self.policy.change_event(&r)];
        let restore_wanted = self.act
            && root.is_some_and(|r| r.spec.protect && r.spec.on_change == OnChange::Restore)
            && matches!(
                kind,
                ChangeKind::Modified | ChangeKind::Attributes | ChangeKind::Deleted
            )
            && !matches!(r.package, PackageVerdict::Matches { .. });
        if restore_wanted {
            let res = restore::restore(self.policy, store, &self.objects, &path);
            let src = restore::source_name(self.policy, &path);
            out.push(events::restore_event(
                &path,
                &src,
                res.as_ref().map_err(|e| e.as_str()),
                "on_change",
            ));
        }
        out
    }

    fn diff(
        &self,
        store: &Store,
        path: &Path,
        before: Option<&FileRecord>,
        after: Option<&FileRecord>,
        kind: ChangeKind,
    ) -> DiffOutcome {
        if self.policy.is_nodiff(path) {
            return DiffOutcome::Redacted;
        }
        if !self.policy.diff_allowed(path) || kind == ChangeKind::Deleted {
            return DiffOutcome::NotRequested;
        }
        let limit = self.policy.config.diff_size_limit;
        let Some(after) = after.filter(|a| a.kind == FileKind::File) else {
            return DiffOutcome::NotRequested;
        };
        let new = match observe::read_capped(path, limit) {
            Ok(Some(b)) => b,
            Ok(None) => return DiffOutcome::TooLarge,
            Err(_) => return DiffOutcome::Unavailable,
        };
        let old_hash = before.and_then(|b| b.hash);
        let old = match old_hash {
            None if kind == ChangeKind::Added => Vec::new(),
            None => return DiffOutcome::Unavailable,
            Some(h) if before.is_some_and(|b| b.size > limit) => {
                let _ = h;
                return DiffOutcome::TooLarge;
            }
            Some(h) => match self.objects.get(&h) {
                Ok(b) => b,
                Err(_) => return DiffOutcome::Unavailable,
            },
        };
        let shown = display_path(path);
        let out = text_diff(
            &old,
            &new,
            limit,
            &format!("a{shown}"),
            &format!("b{shown}"),
        );
        // Keep the new version as the base of the next diff; drop the old one unless a restore needs it.
        if after.hash.is_some() {
            let _ = self.objects.put_bytes(&new);
        }
        if let Some(h) = old_hash {
            if after.hash != Some(h) && !store.hash_is_protected(&h).unwrap_or(true) {
                self.objects.remove(&h);
            }
        }
        out
    }
}

/// After a baseline: keep known-good copies of `protect` paths and diff bases of `report_changes` paths, and
/// record what a restore must put back. `reset` replaces existing protected entries (a new baseline).
/// Returns the paths whose copy could not be kept (too large or unreadable).
pub fn keep_copies(
    policy: &Policy,
    store: &Store,
    objects: &Objects,
    reset: bool,
) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let mut missed = Vec::new();
    for root in policy.roots() {
        if !(root.spec.protect || root.spec.report_changes) {
            continue;
        }
        let mut entries = store::subtree(&store.conn, &root.root)?;
        if let Some(r) = store.get(&root.root)? {
            entries.push((root.root.clone(), r));
        }
        for (path, rec) in entries {
            if policy.root_for(&path).map(|r| r.index) != Some(root.index) {
                continue;
            }
            let limit = if root.spec.protect {
                policy.config.protect_size_limit
            } else {
                policy.config.diff_size_limit
            };
            let nodiff_only = !root.spec.protect && policy.is_nodiff(&path);
            if rec.kind == FileKind::File && !nodiff_only {
                if let Some(h) = rec.hash {
                    match objects.put_file(&path, &h, limit) {
                        Ok(true) => {}
                        Ok(false) => missed.push((
                            path.clone(),
                            format!("larger than {limit} bytes or changed while copied"),
                        )),
                        Err(e) => missed.push((path.clone(), e.to_string())),
                    }
                }
            }
            if root.spec.protect && (reset || store.protected(&path)?.is_none()) {
                store.set_protected(
                    &path,
                    &Protected {
                        hash: rec.hash,
                        mode: rec.mode,
                        uid: rec.uid,
                        gid: rec.gid,
                        kind: rec.kind,
                        target: rec.target.clone(),
                    },
                )?;
            }
        }
    }
    Ok(missed)
}
