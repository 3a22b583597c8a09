//! Turning a detected change into a `bannin_proto::Event`: rule id, level, groups, body.

use crate::config::Attr;
use crate::pkg::PackageVerdict;
use crate::policy::Policy;
use crate::record::{display_path, ChangeKind, FileRecord};
use crate::textdiff::DiffOutcome;
use bannin_proto::{Event, EventKind};
use serde_json::{json, Value};
use std::path::Path;

/// FIM rule ids. 550/553/554 are OSSEC's; the others continue the 55x/56x block in the same spirit.
pub mod rules {
    pub use bannin_proto::rules::{FIM_ADDED, FIM_DELETED, FIM_MODIFIED};
    /// Moved or renamed: same content and inode under a new name.
    pub const FIM_RENAMED: u64 = 555;
    /// Only metadata changed: mode, owner, group, mtime, inode, xattrs/ACL.
    pub const FIM_ATTRIBUTES: u64 = 556;
    /// Content changed to what the package manager installed (dpkg/rpm), or during a package transaction.
    pub const FIM_PACKAGE_UPDATE: u64 = 557;
    /// A protected file was put back.
    pub const FIM_RESTORED: u64 = 558;
    pub const FIM_RESTORE_FAILED: u64 = 559;
    /// A path could not be read or examined (permission, vanished, I/O error); the scan went on.
    pub const FIM_SCAN_ERROR: u64 = 560;
    /// Real-time watching is incomplete (inotify watch limit, watcher failure); scheduled scans cover the rest.
    pub const FIM_WATCH_DEGRADED: u64 = 561;
    /// The baseline database was unusable and was set aside; a new baseline was taken.
    pub const FIM_STORE_RESET: u64 = 562;
    /// A scan finished (summary, level 0 unless it found changes).
    pub const FIM_SCAN_SUMMARY: u64 = 563;
}

/// How much a path matters, which drives the level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PathClass {
    Log,
    Other,
    Config,
    Binary,
    Critical,
}

const CRITICAL_PREFIXES: &[&str] = &[
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/passwd",
    "/etc/shadow",
    "/etc/group",
    "/etc/gshadow",
    "/etc/ssh",
    "/etc/pam.d",
    "/etc/security",
    "/etc/ld.so.preload",
    "/etc/ld.so.conf",
    "/etc/crontab",
    "/etc/cron.d",
    "/etc/cron.hourly",
    "/etc/cron.daily",
    "/etc/cron.weekly",
    "/etc/cron.monthly",
    "/var/spool/cron",
    "/etc/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
    "/etc/init.d",
    "/etc/rc.local",
    "/boot",
    "/root/.ssh",
];

const BINARY_PREFIXES: &[&str] = &[
    "/bin",
    "/sbin",
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
    "/usr/libexec",
];

pub fn path_class(path: &Path) -> PathClass {
    let s = path.as_os_str().to_string_lossy();
    let under = |p: &&str| path.starts_with(p) || (p.ends_with("sudoers") && s.starts_with(*p));
    if CRITICAL_PREFIXES.iter().any(under) || s.contains("/.ssh/authorized_keys") {
        return PathClass::Critical;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let is_log = path.starts_with("/var/log")
        || name.ends_with(".log")
        || name.contains(".log.")
        || name.ends_with(".journal");
    if is_log {
        return PathClass::Log;
    }
    if BINARY_PREFIXES.iter().any(|p| path.starts_with(p)) {
        return PathClass::Binary;
    }
    if path.starts_with("/etc") {
        return PathClass::Config;
    }
    PathClass::Other
}

/// The level of a change: path class first, then set-id bits, then package updates.
pub fn level_for(
    path: &Path,
    kind: ChangeKind,
    before: Option<&FileRecord>,
    after: Option<&FileRecord>,
    package: &PackageVerdict,
) -> u8 {
    let class = path_class(path);
    let base: u8 = match (class, kind) {
        (PathClass::Critical, ChangeKind::Added | ChangeKind::Renamed | ChangeKind::Attributes) => {
            10
        }
        (PathClass::Critical, _) => 12,
        (PathClass::Binary, ChangeKind::Modified | ChangeKind::Deleted) => 10,
        (PathClass::Binary, _) => 8,
        (PathClass::Config | PathClass::Other, ChangeKind::Modified | ChangeKind::Deleted) => 7,
        (PathClass::Config | PathClass::Other, _) => 5,
        (PathClass::Log, ChangeKind::Deleted) => 3,
        (PathClass::Log, _) => 2,
    };
    let was_setid = before.is_some_and(|r| r.is_setid());
    let is_setid = after.is_some_and(|r| r.is_setid());
    let mut level = base;
    if is_setid && !was_setid {
        // A new set-id binary is how a foothold becomes root.
        level = level.max(13);
    } else if (is_setid || was_setid) && kind != ChangeKind::Attributes {
        level = level.max(12);
    }
    if package.is_package_update() && !(is_setid && !was_setid) {
        level = 3;
    }
    level
}

/// Who wrote the file, when the kernel told us.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Writer {
    #[default]
    Unknown,
    Process {
        pid: u32,
        exe: String,
        uid: u32,
    },
}

impl Writer {
    fn to_json(&self) -> Value {
        match self {
            Writer::Unknown => Value::String("unknown".into()),
            Writer::Process { pid, exe, uid } => json!({"pid": pid, "exe": exe, "uid": uid}),
        }
    }
}

/// How the change was noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Scan,
    Realtime,
}

/// Everything known about one change.
#[derive(Debug, Clone)]
pub struct ChangeReport<'a> {
    pub path: &'a Path,
    pub kind: ChangeKind,
    pub changed: Vec<Attr>,
    pub before: Option<&'a FileRecord>,
    pub after: Option<&'a FileRecord>,
    /// For renames: the old name.
    pub renamed_from: Option<&'a Path>,
    pub diff: DiffOutcome,
    pub package: PackageVerdict,
    pub writer: Writer,
    pub source: Source,
}

impl<'a> ChangeReport<'a> {
    pub fn new(
        path: &'a Path,
        kind: ChangeKind,
        before: Option<&'a FileRecord>,
        after: Option<&'a FileRecord>,
    ) -> Self {
        ChangeReport {
            path,
            kind,
            changed: Vec::new(),
            before,
            after,
            renamed_from: None,
            diff: DiffOutcome::NotRequested,
            package: PackageVerdict::NotOwned,
            writer: Writer::Unknown,
            source: Source::Scan,
        }
    }
}

fn path_body(path: &Path) -> Value {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    let mut v = json!({"path": display_path(path)});
    if std::str::from_utf8(bytes).is_err() {
        v["path_hex"] = Value::String(hex::encode(bytes));
    }
    v
}

impl Policy {
    /// The event for one change, with the rules of the root the path belongs to.
    pub fn change_event(&self, r: &ChangeReport<'_>) -> Event {
        let root = self.root_for(r.path);
        let mut level = level_for(r.path, r.kind, r.before, r.after, &r.package);
        if let Some(root) = root {
            level = (level as i16 + root.spec.level_adjust as i16).clamp(0, 15) as u8;
        }
        let package_update = r.package.is_package_update()
            && matches!(r.kind, ChangeKind::Modified | ChangeKind::Added);
        let (rule, verb) = match r.kind {
            _ if package_update => (rules::FIM_PACKAGE_UPDATE, "changed by a package update"),
            ChangeKind::Added => (rules::FIM_ADDED, "added"),
            ChangeKind::Deleted => (rules::FIM_DELETED, "deleted"),
            ChangeKind::Modified => (rules::FIM_MODIFIED, "modified"),
            ChangeKind::Attributes => (rules::FIM_ATTRIBUTES, "attributes changed"),
            ChangeKind::Renamed => (rules::FIM_RENAMED, "renamed"),
        };
        let shown = display_path(r.path);
        let title = match r.renamed_from {
            Some(from) => format!("File renamed: {} -> {shown}", display_path(from)),
            None => {
                let mut t = format!("File {verb}: {shown}");
                if r.kind == ChangeKind::Attributes {
                    let names: Vec<&str> = r.changed.iter().map(|a| a.as_str()).collect();
                    t.push_str(&format!(" ({})", names.join(", ")));
                }
                t
            }
        };
        let mut body = path_body(r.path);
        body["change"] = Value::String(r.kind.as_str().into());
        body["changed_attributes"] = Value::Array(
            r.changed
                .iter()
                .map(|a| Value::String(a.as_str().into()))
                .collect(),
        );
        body["before"] = r.before.map(FileRecord::to_json).unwrap_or(Value::Null);
        body["after"] = r.after.map(FileRecord::to_json).unwrap_or(Value::Null);
        if let Some(from) = r.renamed_from {
            body["renamed_from"] = path_body(from)["path"].clone();
        }
        if let Some(root) = root {
            body["policy_path"] = Value::String(display_path(&root.root));
        }
        body["source"] = Value::String(
            if r.source == Source::Scan {
                "scan"
            } else {
                "realtime"
            }
            .into(),
        );
        body["writer"] = r.writer.to_json();
        body["package"] = r.package.to_json();
        let (status, text) = r.diff.status_and_text();
        body["diff_status"] = Value::String(status.into());
        if let Some(t) = text {
            body["diff"] = Value::String(t.to_string());
        }
        let mut groups = vec![
            "syscheck".to_string(),
            "fim".to_string(),
            format!("fim_{}", r.kind.as_str()),
        ];
        if package_update {
            groups.push("package_update".into());
        }
        if r.after.is_some_and(|a| a.is_setid()) {
            groups.push("setid".into());
        }
        if let Some(root) = root {
            groups.extend(root.spec.groups.iter().cloned());
        }
        Event::new(EventKind::Fim, rule, level, title)
            .with_groups(groups)
            .with_body(body)
    }
}

/// A path that could not be examined. The scan goes on; the event says what and why.
pub fn scan_error_event(path: &Path, what: &str, err: &str) -> Event {
    let mut body = path_body(path);
    body["operation"] = Value::String(what.into());
    body["error"] = Value::String(err.into());
    Event::new(
        EventKind::Fim,
        rules::FIM_SCAN_ERROR,
        4,
        format!("FIM could not {what} {}: {err}", display_path(path)),
    )
    .with_groups(["syscheck", "fim", "fim_error"])
    .with_body(body)
}

/// Real-time coverage is incomplete; scheduled scans cover the rest.
pub fn watch_degraded_event(reason: &str, unwatched_dirs: u64, example: Option<&Path>) -> Event {
    let mut body =
        json!({"reason": reason, "unwatched_dirs": unwatched_dirs, "fallback": "scheduled scans"});
    if let Some(p) = example {
        body["first_unwatched"] = Value::String(display_path(p));
    }
    Event::new(
        EventKind::Fim,
        rules::FIM_WATCH_DEGRADED,
        7,
        format!("FIM real-time watching incomplete ({reason}): {unwatched_dirs} directories left to scheduled scans"),
    )
    .with_groups(["syscheck", "fim", "fim_error"])
    .with_body(body)
}

pub fn store_reset_event(db: &Path, reason: &str, moved_to: Option<&Path>) -> Event {
    let mut body = json!({"database": display_path(db), "reason": reason});
    if let Some(m) = moved_to {
        body["moved_to"] = Value::String(display_path(m));
    }
    Event::new(
        EventKind::Fim,
        rules::FIM_STORE_RESET,
        9,
        format!(
            "FIM baseline database {} was unusable ({reason}); a new baseline is taken",
            display_path(db)
        ),
    )
    .with_groups(["syscheck", "fim", "fim_error"])
    .with_body(body)
}

/// A restore of a protected file, successful or not. Every restore is an event.
pub fn restore_event(
    path: &Path,
    source: &str,
    result: Result<&FileRecord, &str>,
    trigger: &str,
) -> Event {
    let mut body = path_body(path);
    body["restore_source"] = Value::String(source.into());
    body["trigger"] = Value::String(trigger.into());
    match result {
        Ok(rec) => {
            body["after"] = rec.to_json();
            Event::new(
                EventKind::Fim,
                rules::FIM_RESTORED,
                8,
                format!("Protected file restored: {}", display_path(path)),
            )
            .with_groups(["syscheck", "fim", "fim_restore"])
            .with_body(body)
        }
        Err(e) => {
            body["error"] = Value::String(e.into());
            Event::new(
                EventKind::Fim,
                rules::FIM_RESTORE_FAILED,
                11,
                format!(
                    "Restore of protected file {} failed: {e}",
                    display_path(path)
                ),
            )
            .with_groups(["syscheck", "fim", "fim_restore", "fim_error"])
            .with_body(body)
        }
    }
}

pub fn scan_summary_event(stats: &Value, changes: u64) -> Event {
    let level = if changes > 0 { 3 } else { 0 };
    Event::new(
        EventKind::Fim,
        rules::FIM_SCAN_SUMMARY,
        level,
        format!("FIM scan finished: {changes} changes"),
    )
    .with_groups(["syscheck", "fim", "fim_scan"])
    .with_body(stats.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FimConfig, WatchPath};
    use crate::record::FileKind;

    fn rec(mode: u32) -> FileRecord {
        FileRecord {
            kind: FileKind::File,
            size: 1,
            mode,
            uid: 0,
            gid: 0,
            mtime_ns: 0,
            ctime_ns: 0,
            inode: 1,
            dev: 1,
            hash: Some([0; 32]),
            target: None,
            xattrs: None,
        }
    }

    #[test]
    fn sudoers_and_setuid_rank_above_config_above_logs() {
        let none = PackageVerdict::NotOwned;
        let r = rec(0o644);
        let sudo = level_for(
            Path::new("/etc/sudoers.d/90-x"),
            ChangeKind::Modified,
            Some(&r),
            Some(&r),
            &none,
        );
        let conf = level_for(
            Path::new("/etc/hosts"),
            ChangeKind::Modified,
            Some(&r),
            Some(&r),
            &none,
        );
        let log = level_for(
            Path::new("/var/log/syslog"),
            ChangeKind::Modified,
            Some(&r),
            Some(&r),
            &none,
        );
        assert!(sudo > conf && conf > log, "{sudo} {conf} {log}");
        let suid = rec(0o4755);
        let newsuid = level_for(
            Path::new("/home/u/tool"),
            ChangeKind::Attributes,
            Some(&r),
            Some(&suid),
            &none,
        );
        assert!(newsuid >= 13);
        assert!(
            level_for(
                Path::new("/etc/sudoersX"),
                ChangeKind::Modified,
                None,
                Some(&r),
                &none
            ) >= 12
        );
    }

    #[test]
    fn package_updates_rank_low_with_their_own_rule() {
        let p = Policy::compile(&FimConfig {
            paths: vec![WatchPath::new("/usr/bin")],
            ..FimConfig::default()
        })
        .unwrap();
        let (a, b) = (rec(0o755), rec(0o755));
        let mut rep = ChangeReport::new(
            Path::new("/usr/bin/ls"),
            ChangeKind::Modified,
            Some(&a),
            Some(&b),
        );
        rep.changed = vec![Attr::Hash];
        let plain = p.change_event(&rep);
        assert_eq!(plain.rule_id, rules::FIM_MODIFIED);
        assert_eq!(plain.level, 10);
        rep.package = PackageVerdict::Matches {
            package: "coreutils".into(),
        };
        let e = p.change_event(&rep);
        assert_eq!(e.rule_id, rules::FIM_PACKAGE_UPDATE);
        assert_eq!(e.level, 3);
        assert!(e.groups.contains(&"package_update".to_string()));
        assert_eq!(e.body["package"]["name"], "coreutils");
    }

    #[test]
    fn event_body_carries_before_after_and_escaped_non_utf8_path() {
        use std::os::unix::ffi::OsStrExt;
        let p = Policy::compile(&FimConfig {
            paths: vec![WatchPath::new("/srv")],
            ..FimConfig::default()
        })
        .unwrap();
        let path = Path::new(std::ffi::OsStr::from_bytes(b"/srv/\xff.txt"));
        let a = rec(0o644);
        let e = p.change_event(&ChangeReport::new(path, ChangeKind::Added, None, Some(&a)));
        assert_eq!(e.rule_id, rules::FIM_ADDED);
        assert_eq!(e.body["path"], "/srv/\\xff.txt");
        assert_eq!(e.body["path_hex"], hex::encode(b"/srv/\xff.txt"));
        assert!(e.body["before"].is_null());
        assert_eq!(e.body["after"]["mode"], "0644");
        assert_eq!(e.body["writer"], "unknown");
        assert!(e.validate().is_ok());
    }
}
