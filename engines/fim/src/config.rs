//! The `[fim]` policy as written in the agent config and in `signatures/fim/*.toml`.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// The `[fim]` section of the agent config.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FimConfig {
    #[serde(default)]
    pub paths: Vec<WatchPath>,
    /// How often every path is re-scanned (real-time paths too: the scan catches what inotify missed).
    #[serde(default = "default_scan_interval")]
    pub scan_interval: Interval,
    /// How often a scan re-hashes every file even when size/mtime/ctime/inode look unchanged.
    #[serde(default = "default_full_rehash_interval")]
    pub full_rehash_interval: Interval,
    /// Hashing threads for scans.
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Text diffs are computed only for files up to this many bytes (both versions).
    #[serde(default = "default_diff_size_limit")]
    pub diff_size_limit: u64,
    /// Protected copies and diff baselines are kept only for files up to this many bytes.
    #[serde(default = "default_protect_size_limit")]
    pub protect_size_limit: u64,
    /// Files whose content never appears in an event, whatever `report_changes` says (glob patterns on the
    /// full path). These come on top of each path's own `nodiff`.
    #[serde(default = "default_nodiff")]
    pub nodiff: Vec<String>,
    /// Compare changed files against dpkg/rpm records and rank package updates low.
    #[serde(default = "yes")]
    pub package_awareness: bool,
    /// Where dpkg keeps its `*.md5sums` files.
    #[serde(default = "default_dpkg_info_dir")]
    pub dpkg_info_dir: PathBuf,
    /// Real-time events on one path within this window are merged into one check.
    #[serde(default = "default_coalesce_ms")]
    pub coalesce_ms: u64,
    /// Try fanotify (root only) to learn which process wrote a file. Off by default: the mount-wide
    /// mark hands the agent a descriptor for every file closed after writing, its own SQLite files
    /// included, and closing such a descriptor drops the process's POSIX locks on that file, which
    /// SQLite relies on (seen corrupting the outbox under load). It stays off until the mark excludes
    /// the state directory.
    #[serde(default)]
    pub writer_attribution: bool,
}

impl Default for FimConfig {
    fn default() -> Self {
        FimConfig {
            paths: Vec::new(),
            scan_interval: default_scan_interval(),
            full_rehash_interval: default_full_rehash_interval(),
            threads: default_threads(),
            diff_size_limit: default_diff_size_limit(),
            protect_size_limit: default_protect_size_limit(),
            nodiff: default_nodiff(),
            package_awareness: true,
            dpkg_info_dir: default_dpkg_info_dir(),
            coalesce_ms: default_coalesce_ms(),
            writer_attribution: false,
        }
    }
}

/// One `[[fim.paths]]` entry. Only `path` is required.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WatchPath {
    pub path: PathBuf,
    /// Watch with inotify as well as scanning on schedule.
    #[serde(default)]
    pub realtime: bool,
    /// How many directory levels below `path` are followed; absent = unlimited, 0 = only the entries of `path`.
    #[serde(default)]
    pub depth: Option<u32>,
    /// Per-path scan interval; absent = the `[fim]` one.
    #[serde(default)]
    pub scan_interval: Option<Interval>,
    /// Which attributes are compared.
    #[serde(default = "Attr::default_set")]
    pub check: Vec<Attr>,
    /// Glob patterns (on the full path, or on the file name when the pattern has no `/`) that are skipped.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Regular expressions on the full path that are skipped.
    #[serde(default)]
    pub ignore_regex: Vec<String>,
    /// Put a text diff of content changes in the event (subject to `nodiff` and the size limit).
    #[serde(default)]
    pub report_changes: bool,
    /// Glob patterns of files under this path whose content is never shown in an event.
    #[serde(default)]
    pub nodiff: Vec<String>,
    /// Keep a known-good copy of every file so `bannin-agent fim restore` can put it back.
    #[serde(default)]
    pub protect: bool,
    /// What to do when a protected file changes.
    #[serde(default)]
    pub on_change: OnChange,
    /// A checkout whose files are the source of truth for this path (instead of the copies taken at baseline).
    #[serde(default)]
    pub git_checkout: Option<PathBuf>,
    /// A path that may be absent on some hosts (a default policy for several distributions): no error when
    /// it does not exist; it is picked up when it appears.
    #[serde(default)]
    pub optional: bool,
    /// Extra groups put on every event of this path.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Add this to the level computed for the path (may be negative).
    #[serde(default)]
    pub level_adjust: i8,
}

impl WatchPath {
    /// A plain entry with the defaults, as `path = "..."` alone would give.
    pub fn new(path: impl Into<PathBuf>) -> WatchPath {
        WatchPath {
            path: path.into(),
            realtime: false,
            depth: None,
            scan_interval: None,
            check: Attr::default_set(),
            ignore: Vec::new(),
            ignore_regex: Vec::new(),
            report_changes: false,
            nodiff: Vec::new(),
            protect: false,
            on_change: OnChange::Alert,
            git_checkout: None,
            optional: false,
            groups: Vec::new(),
            level_adjust: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnChange {
    /// Report only.
    #[default]
    Alert,
    /// Report, then put back the known-good content, mode and owner.
    Restore,
}

/// An attribute that can be compared between baseline and observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Attr {
    /// Content (blake3) and, for symlinks, the target.
    Hash,
    Size,
    Mode,
    Owner,
    Group,
    Mtime,
    Inode,
    /// Extended attributes, which include POSIX ACLs and SELinux labels.
    Xattrs,
    /// The kind of entry (file, directory, symlink...). Always compared.
    Type,
}

impl Attr {
    pub fn default_set() -> Vec<Attr> {
        vec![
            Attr::Hash,
            Attr::Size,
            Attr::Mode,
            Attr::Owner,
            Attr::Group,
            Attr::Mtime,
            Attr::Inode,
            Attr::Xattrs,
        ]
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Attr::Hash => "hash",
            Attr::Size => "size",
            Attr::Mode => "mode",
            Attr::Owner => "owner",
            Attr::Group => "group",
            Attr::Mtime => "mtime",
            Attr::Inode => "inode",
            Attr::Xattrs => "xattrs",
            Attr::Type => "type",
        }
    }
}

/// A duration written as seconds (`3600`) or with a unit (`"90s"`, `"15m"`, `"12h"`, `"7d"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(into = "u64")]
pub struct Interval(pub Duration);

impl From<Interval> for u64 {
    fn from(i: Interval) -> u64 {
        i.0.as_secs()
    }
}

impl Interval {
    pub fn parse(s: &str) -> Result<Interval, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num.parse().map_err(|_| {
            format!("`{s}` is not a duration (examples: 300, \"90s\", \"15m\", \"12h\", \"7d\")")
        })?;
        let mult = match unit.trim() {
            "" | "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86400,
            other => return Err(format!("`{s}`: unknown unit `{other}` (use s, m, h or d)")),
        };
        n.checked_mul(mult)
            .map(|secs| Interval(Duration::from_secs(secs)))
            .ok_or_else(|| format!("`{s}` is too long"))
    }
}

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Interval(Duration::from_secs(n))),
            Raw::S(s) => Interval::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_scan_interval() -> Interval {
    Interval(Duration::from_secs(12 * 3600))
}
fn default_full_rehash_interval() -> Interval {
    Interval(Duration::from_secs(7 * 86400))
}
fn default_threads() -> usize {
    2
}
fn default_diff_size_limit() -> u64 {
    1024 * 1024
}
fn default_protect_size_limit() -> u64 {
    16 * 1024 * 1024
}
fn default_coalesce_ms() -> u64 {
    30
}
fn default_dpkg_info_dir() -> PathBuf {
    PathBuf::from("/var/lib/dpkg/info")
}
/// Secrets whose content must never leave the host in a diff, even when a path asks for `report_changes`.
pub fn default_nodiff() -> Vec<String> {
    [
        "/etc/shadow*",
        "/etc/gshadow*",
        "/etc/ssh/ssh_host_*_key",
        "/etc/ssl/private/**",
        "/etc/pki/tls/private/**",
        "**/*.key",
        "**/*.pem",
        "/etc/sudoers.d/**/*.secret",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_entry_of_path_and_realtime_stays_valid_with_defaults() {
        let c: FimConfig = toml_like(r#"{"paths":[{"path":"/srv/www","realtime":true}]}"#);
        assert_eq!(c.paths[0].path, PathBuf::from("/srv/www"));
        assert!(c.paths[0].realtime);
        assert_eq!(c.paths[0].check, Attr::default_set());
        assert_eq!(c.scan_interval.0, Duration::from_secs(43200));
        assert!(c.nodiff.iter().any(|p| p.starts_with("/etc/shadow")));
    }

    #[test]
    fn unknown_fields_are_refused_with_their_name() {
        let e = serde_json::from_str::<FimConfig>(r#"{"paths":[{"path":"/x","recursive":3}]}"#)
            .unwrap_err();
        assert!(e.to_string().contains("recursive"), "{e}");
    }

    #[test]
    fn intervals_accept_seconds_and_units_and_reject_garbage() {
        assert_eq!(Interval::parse("15m").unwrap().0.as_secs(), 900);
        assert_eq!(Interval::parse("2d").unwrap().0.as_secs(), 172800);
        assert_eq!(Interval::parse("45").unwrap().0.as_secs(), 45);
        assert!(Interval::parse("5w").unwrap_err().contains("unknown unit"));
        assert!(Interval::parse("soon").is_err());
        let c: FimConfig =
            toml_like(r#"{"scan_interval":"1h","paths":[{"path":"/x","scan_interval":60}]}"#);
        assert_eq!(c.scan_interval.0.as_secs(), 3600);
        assert_eq!(c.paths[0].scan_interval.unwrap().0.as_secs(), 60);
    }

    fn toml_like(json: &str) -> FimConfig {
        serde_json::from_str(json).unwrap()
    }
}

#[cfg(test)]
mod signature_tests {
    use super::*;

    /// The shipped default policies must parse and compile, or agents using them would not start.
    #[test]
    fn shipped_default_policies_parse_and_compile() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../signatures/fim");
        let mut n = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                let text = std::fs::read_to_string(&p).unwrap();
                let cfg: FimConfig =
                    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                crate::Policy::compile(&cfg).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                assert!(cfg
                    .paths
                    .iter()
                    .any(|w| w.path == std::path::Path::new("/etc")));
                n += 1;
            }
        }
        assert!(n >= 1, "no policy in {dir}");
    }
}
