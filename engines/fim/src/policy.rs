//! The compiled policy: which root a path belongs to, whether it is ignored or too deep, whether its
//! content may appear in a diff.

use crate::config::{Attr, FimConfig, WatchPath};
use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// A policy error names the path entry and the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError(pub String);

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PolicyError {}

/// One `[[fim.paths]]` entry, compiled.
#[derive(Debug)]
pub struct RootPolicy {
    /// Position in `FimConfig::paths`.
    pub index: usize,
    pub spec: WatchPath,
    /// `spec.path` normalised (no `.`, no trailing `/`).
    pub root: PathBuf,
    ignore_full: GlobSet,
    ignore_name: GlobSet,
    ignore_re: Vec<regex::bytes::Regex>,
    nodiff: GlobSet,
}

impl PartialEq for RootPolicy {
    fn eq(&self, other: &Self) -> bool {
        self.index == other.index
    }
}
impl Eq for RootPolicy {}

/// Where a path stands under the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing<'a> {
    /// Under no configured root.
    Outside,
    /// Matched an ignore pattern of its root.
    Ignored,
    /// Below the root's `depth`.
    TooDeep,
    /// Tracked: the root whose rules apply, and the depth (0 = entries directly inside the root; the root itself
    /// has no depth and is tracked too).
    Tracked(&'a RootPolicy, Option<u32>),
}

#[derive(Debug)]
pub struct Policy {
    pub config: FimConfig,
    /// Most specific (longest) root first, so the first match is the one whose rules apply.
    roots: Vec<RootPolicy>,
    nodiff_global: GlobSet,
}

fn full_glob(pattern: &str, what: &str) -> Result<Glob, PolicyError> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| PolicyError(format!("{what}: bad glob `{pattern}`: {e}")))
}

/// Removes `.` components and trailing slashes without touching the file system (no symlink resolution:
/// the policy speaks about the names the operator wrote).
pub fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

impl Policy {
    pub fn compile(config: &FimConfig) -> Result<Policy, PolicyError> {
        let mut roots = Vec::new();
        for (index, spec) in config.paths.iter().enumerate() {
            let what = format!("fim.paths[{index}] (`{}`)", spec.path.display());
            if !spec.path.is_absolute() {
                return Err(PolicyError(format!("{what}: path must be absolute")));
            }
            if spec.check.is_empty() {
                return Err(PolicyError(format!(
                    "{what}: `check` is empty; list at least one attribute"
                )));
            }
            let (mut full, mut name) = (GlobSetBuilder::new(), GlobSetBuilder::new());
            for g in &spec.ignore {
                if g.contains('/') {
                    full.add(full_glob(g, &format!("{what} ignore"))?);
                } else {
                    name.add(full_glob(g, &format!("{what} ignore"))?);
                }
            }
            let mut ignore_re = Vec::new();
            for r in &spec.ignore_regex {
                ignore_re
                    .push(regex::bytes::Regex::new(r).map_err(|e| {
                        PolicyError(format!("{what}: bad ignore_regex `{r}`: {e}"))
                    })?);
            }
            let mut nodiff = GlobSetBuilder::new();
            for g in &spec.nodiff {
                // A relative pattern is relative to the root.
                let pat = if g.starts_with('/') || g.starts_with("**") {
                    g.clone()
                } else {
                    format!("{}/{}", spec.path.display(), g)
                };
                nodiff.add(full_glob(&pat, &format!("{what} nodiff"))?);
            }
            let build =
                |b: GlobSetBuilder| b.build().map_err(|e| PolicyError(format!("{what}: {e}")));
            roots.push(RootPolicy {
                index,
                root: normalise(&spec.path),
                spec: spec.clone(),
                ignore_full: build(full)?,
                ignore_name: build(name)?,
                ignore_re,
                nodiff: build(nodiff)?,
            });
        }
        roots.sort_by_key(|r| std::cmp::Reverse(r.root.as_os_str().len()));
        for w in roots.windows(2) {
            if w[0].root == w[1].root {
                return Err(PolicyError(format!(
                    "fim.paths[{}] and fim.paths[{}] both name `{}`; merge them",
                    w[1].index.min(w[0].index),
                    w[1].index.max(w[0].index),
                    w[0].root.display()
                )));
            }
        }
        let mut g = GlobSetBuilder::new();
        for p in &config.nodiff {
            g.add(full_glob(p, "fim.nodiff")?);
        }
        let nodiff_global = g
            .build()
            .map_err(|e| PolicyError(format!("fim.nodiff: {e}")))?;
        Ok(Policy {
            config: config.clone(),
            roots,
            nodiff_global,
        })
    }

    pub fn roots(&self) -> impl Iterator<Item = &RootPolicy> {
        self.roots.iter()
    }

    /// The root entry with this index in the config.
    pub fn root(&self, index: usize) -> Option<&RootPolicy> {
        self.roots.iter().find(|r| r.index == index)
    }

    /// The most specific root containing `path` (or equal to it).
    pub fn root_for(&self, path: &Path) -> Option<&RootPolicy> {
        self.roots.iter().find(|r| path.starts_with(&r.root))
    }

    /// Whether `dir` is itself a configured root other than `current` (a scan of `current` leaves it to its own rules).
    pub fn is_other_root(&self, dir: &Path, current: &RootPolicy) -> bool {
        self.roots
            .iter()
            .any(|r| r.index != current.index && r.root == dir)
    }

    pub fn standing(&self, path: &Path) -> Standing<'_> {
        let Some(root) = self.root_for(path) else {
            return Standing::Outside;
        };
        root.standing(path)
    }

    /// Whether a text diff of this file may be put in an event.
    pub fn diff_allowed(&self, path: &Path) -> bool {
        match self.root_for(path) {
            Some(r) => {
                r.spec.report_changes
                    && !r.nodiff.is_match(path)
                    && !self.nodiff_global.is_match(path)
            }
            None => false,
        }
    }

    /// Whether the content is secret (never put in a diff), whatever `report_changes` says.
    pub fn is_nodiff(&self, path: &Path) -> bool {
        self.nodiff_global.is_match(path)
            || self.root_for(path).is_some_and(|r| r.nodiff.is_match(path))
    }
}

impl RootPolicy {
    /// `None` for the root itself, else the number of directories between the root and `path`.
    pub fn depth_of(&self, path: &Path) -> Option<u32> {
        let rest = path.strip_prefix(&self.root).ok()?;
        let n = rest.components().count() as u32;
        n.checked_sub(1)
    }

    pub fn is_ignored(&self, path: &Path) -> bool {
        if path == self.root {
            return false;
        }
        if self.ignore_full.is_match(path) {
            return true;
        }
        if let Some(name) = path.file_name() {
            if self.ignore_name.is_match(Path::new(name)) {
                return true;
            }
        }
        let bytes = path.as_os_str().as_bytes();
        self.ignore_re.iter().any(|r| r.is_match(bytes))
    }

    pub fn standing(&self, path: &Path) -> Standing<'_> {
        if self.is_ignored(path) {
            return Standing::Ignored;
        }
        let d = self.depth_of(path);
        match (d, self.spec.depth) {
            (Some(d), Some(max)) if d > max => Standing::TooDeep,
            _ => Standing::Tracked(self, d),
        }
    }

    /// Whether the walk goes into a directory found at depth `d` (`None` = the root itself).
    pub fn descends_into(&self, d: Option<u32>) -> bool {
        match (d, self.spec.depth) {
            (None, _) | (_, None) => true,
            (Some(d), Some(max)) => d < max,
        }
    }

    pub fn checks(&self) -> &[Attr] {
        &self.spec.check
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: Vec<WatchPath>) -> Policy {
        Policy::compile(&FimConfig {
            paths: entries,
            ..FimConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn most_specific_root_wins_and_nested_roots_are_left_to_their_own_rules() {
        let mut www = WatchPath::new("/srv/www");
        www.realtime = true;
        let p = policy(vec![WatchPath::new("/srv"), www]);
        let r = p.root_for(Path::new("/srv/www/index.html")).unwrap();
        assert_eq!(r.root, Path::new("/srv/www"));
        let srv = p.root_for(Path::new("/srv/x")).unwrap();
        assert!(p.is_other_root(Path::new("/srv/www"), srv));
        assert_eq!(p.standing(Path::new("/var/x")), Standing::Outside);
        // `/srvx` is not under `/srv`: component-wise prefix, not string prefix.
        assert!(p.root_for(Path::new("/srvx/a")).is_none());
    }

    #[test]
    fn depth_limits_tracking_and_descent() {
        let mut w = WatchPath::new("/etc");
        w.depth = Some(1);
        let p = policy(vec![w]);
        let r = p.root_for(Path::new("/etc")).unwrap();
        assert!(matches!(
            p.standing(Path::new("/etc/a")),
            Standing::Tracked(_, Some(0))
        ));
        assert!(matches!(
            p.standing(Path::new("/etc/a/b")),
            Standing::Tracked(_, Some(1))
        ));
        assert_eq!(p.standing(Path::new("/etc/a/b/c")), Standing::TooDeep);
        assert!(r.descends_into(Some(0)));
        assert!(!r.descends_into(Some(1)));
    }

    #[test]
    fn ignore_globs_match_names_or_full_paths_and_regexes_match_bytes() {
        let mut w = WatchPath::new("/srv");
        w.ignore = vec!["*.swp".into(), "/srv/cache/**".into()];
        w.ignore_regex = vec![r"\.tmp\d+$".into()];
        let p = policy(vec![w]);
        assert_eq!(p.standing(Path::new("/srv/a/.x.swp")), Standing::Ignored);
        assert_eq!(
            p.standing(Path::new("/srv/cache/deep/f")),
            Standing::Ignored
        );
        assert_eq!(p.standing(Path::new("/srv/f.tmp123")), Standing::Ignored);
        assert!(matches!(
            p.standing(Path::new("/srv/cachex")),
            Standing::Tracked(..)
        ));
    }

    #[test]
    fn nodiff_beats_report_changes_globally_and_per_path() {
        let mut etc = WatchPath::new("/etc");
        etc.report_changes = true;
        etc.nodiff = vec!["secret/*".into()];
        let p = policy(vec![etc]);
        assert!(p.diff_allowed(Path::new("/etc/hosts")));
        assert!(!p.diff_allowed(Path::new("/etc/shadow")));
        assert!(!p.diff_allowed(Path::new("/etc/shadow-")));
        assert!(!p.diff_allowed(Path::new("/etc/secret/db")));
        assert!(!p.diff_allowed(Path::new("/etc/ssl/private/site.key")));
    }

    #[test]
    fn bad_patterns_and_relative_paths_are_reported_with_the_entry() {
        let mut w = WatchPath::new("/srv");
        w.ignore_regex = vec!["(".into()];
        let e = Policy::compile(&FimConfig {
            paths: vec![w],
            ..FimConfig::default()
        })
        .unwrap_err();
        assert!(
            e.0.contains("fim.paths[0]") && e.0.contains("ignore_regex"),
            "{e}"
        );
        let e = Policy::compile(&FimConfig {
            paths: vec![WatchPath::new("srv")],
            ..FimConfig::default()
        })
        .unwrap_err();
        assert!(e.0.contains("absolute"), "{e}");
        let e = Policy::compile(&FimConfig {
            paths: vec![WatchPath::new("/a"), WatchPath::new("/a/")],
            ..FimConfig::default()
        })
        .unwrap_err();
        assert!(e.0.contains("both name"), "{e}");
    }
}
