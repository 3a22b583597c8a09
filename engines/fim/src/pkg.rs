//! Package awareness: is new content what the package manager itself installed?
//!
//! The agent hands in the bytes of dpkg's `*.md5sums` files or of `rpm --dump` output and the digests of the
//! new content; this module never reads the package database itself.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

/// A digest as the package manager records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkgDigest {
    Md5([u8; 16]),
    Sha256([u8; 32]),
}

/// Digests of new content the agent computed (only those the package record needs).
#[derive(Debug, Clone, Copy, Default)]
pub struct ContentDigests {
    pub md5: Option<[u8; 16]>,
    pub sha256: Option<[u8; 32]>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PackageVerdict {
    /// No package claims this path (or awareness is off).
    #[default]
    NotOwned,
    /// The new content is exactly what the package ships.
    Matches { package: String },
    /// A package owns the path but the content is not what it shipped: a real change.
    Differs { package: String },
    /// A package transaction (dpkg/apt/rpm/dnf) was running when the change happened.
    InTransaction { package: Option<String> },
}

impl PackageVerdict {
    pub fn is_package_update(&self) -> bool {
        matches!(
            self,
            PackageVerdict::Matches { .. } | PackageVerdict::InTransaction { .. }
        )
    }

    pub fn to_json(&self) -> Value {
        match self {
            PackageVerdict::NotOwned => Value::Null,
            PackageVerdict::Matches { package } => {
                json!({"name": package, "verdict": "matches_package"})
            }
            PackageVerdict::Differs { package } => {
                json!({"name": package, "verdict": "differs_from_package"})
            }
            PackageVerdict::InTransaction { package } => {
                json!({"name": package, "verdict": "during_package_transaction"})
            }
        }
    }
}

/// Paths are kept as 64-bit hashes so that the index of a whole distribution stays a few MB.
type PathKey = u64;

fn key(path: &[u8]) -> PathKey {
    BuildHasherDefault::<DefaultHasher>::default().hash_one(path)
}

/// Merged-/usr systems list a file under one of two names; both are the same file.
fn aliases(path: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![path.to_vec()];
    for top in [&b"/bin/"[..], b"/sbin/", b"/lib/", b"/lib64/", b"/lib32/"] {
        if path.starts_with(top) {
            let mut p = b"/usr".to_vec();
            p.extend_from_slice(path);
            out.push(p);
        } else if path.starts_with(b"/usr") && path[4..].starts_with(top) {
            out.push(path[4..].to_vec());
        }
    }
    out
}

/// A problem in a package record file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkgWarning {
    pub source: String,
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct PackageIndex {
    packages: Vec<String>,
    entries: HashMap<PathKey, (u32, PkgDigest)>,
}

fn parse_hex<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

impl PackageIndex {
    pub fn new() -> PackageIndex {
        PackageIndex::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn package_id(&mut self, name: &str) -> u32 {
        if let Some(i) = self.packages.iter().rposition(|p| p == name) {
            return i as u32;
        }
        self.packages.push(name.to_string());
        (self.packages.len() - 1) as u32
    }

    /// One dpkg `PACKAGE.md5sums` file: lines of `<32 hex>  <path relative to />`. Bad lines are skipped and
    /// returned as warnings naming the file and line.
    pub fn add_dpkg_md5sums(
        &mut self,
        package: &str,
        source: &str,
        bytes: &[u8],
    ) -> Vec<PkgWarning> {
        let pkg = self.package_id(package);
        let mut warnings = Vec::new();
        for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let parsed = (line.len() > 34 && &line[32..34] == b"  ")
                .then(|| parse_hex::<16>(&line[..32]))
                .flatten();
            let Some(md5) = parsed else {
                warnings.push(PkgWarning {
                    source: source.into(),
                    line: i + 1,
                    message: "expected `<32 hex digits>  <path>`".into(),
                });
                continue;
            };
            let rel = &line[34..];
            let mut path = Vec::with_capacity(rel.len() + 1);
            if !rel.starts_with(b"/") {
                path.push(b'/');
            }
            path.extend_from_slice(rel);
            self.entries.insert(key(&path), (pkg, PkgDigest::Md5(md5)));
        }
        warnings
    }

    /// `rpm -q --dump PACKAGE` output: `path size mtime digest mode owner group isconfig isdoc rdev symlink`.
    /// The digest is sha256 (64 hex) on current RPM, md5 (32 hex) on old ones; directories and symlinks have
    /// zeros or nothing and are skipped.
    pub fn add_rpm_dump(&mut self, package: &str, source: &str, bytes: &[u8]) -> Vec<PkgWarning> {
        let pkg = self.package_id(package);
        let mut warnings = Vec::new();
        for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            // Paths may contain spaces, so count fields from the end: 10 fields follow the path.
            let fields: Vec<&[u8]> = line.rsplitn(11, |&b| b == b' ').collect();
            if fields.len() != 11 {
                warnings.push(PkgWarning {
                    source: source.into(),
                    line: i + 1,
                    message: "expected 11 fields".into(),
                });
                continue;
            }
            let (path, digest) = (fields[10], fields[7]);
            let d = match digest.len() {
                64 => parse_hex::<32>(digest).map(PkgDigest::Sha256),
                32 => parse_hex::<16>(digest).map(PkgDigest::Md5),
                _ => None,
            };
            match d {
                Some(d) if digest.iter().any(|&b| b != b'0') => {
                    self.entries.insert(key(path), (pkg, d));
                }
                Some(_) => {}
                None if digest.iter().all(|&b| b == b'0') || digest == b"X" => {}
                None => warnings.push(PkgWarning {
                    source: source.into(),
                    line: i + 1,
                    message: format!(
                        "digest `{}` is not md5 or sha256 hex",
                        String::from_utf8_lossy(digest)
                    ),
                }),
            }
        }
        warnings
    }

    /// Which package owns `path` and what digest it recorded.
    pub fn lookup(&self, path: &[u8]) -> Option<(&str, PkgDigest)> {
        aliases(path)
            .iter()
            .find_map(|p| self.entries.get(&key(p)))
            .map(|(pkg, d)| (self.packages[*pkg as usize].as_str(), *d))
    }

    /// The verdict on a change of `path` whose new content has `digests`. `in_transaction` says whether a
    /// package manager was running when it happened.
    pub fn verdict(
        &self,
        path: &[u8],
        digests: ContentDigests,
        in_transaction: bool,
    ) -> PackageVerdict {
        let owner = self.lookup(path);
        let matches = owner.and_then(|(_, d)| match d {
            PkgDigest::Md5(m) => digests.md5.map(|x| x == m),
            PkgDigest::Sha256(s) => digests.sha256.map(|x| x == s),
        });
        match (owner, matches) {
            (Some((p, _)), Some(true)) => PackageVerdict::Matches { package: p.into() },
            _ if in_transaction => PackageVerdict::InTransaction {
                package: owner.map(|(p, _)| p.into()),
            },
            (Some((p, _)), _) => PackageVerdict::Differs { package: p.into() },
            (None, _) => PackageVerdict::NotOwned,
        }
    }
}

/// The package name of a dpkg info file name: `coreutils.md5sums` or `libc6:amd64.md5sums`.
pub fn dpkg_package_of(file_name: &str) -> Option<&str> {
    file_name.strip_suffix(".md5sums")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LS_MD5: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn dpkg_md5sums_match_gives_package_update_and_mismatch_gives_differs() {
        let mut idx = PackageIndex::new();
        let text = format!("{LS_MD5}  usr/bin/ls\nzz  broken\n");
        let w = idx.add_dpkg_md5sums("coreutils", "coreutils.md5sums", text.as_bytes());
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].line, 2);
        let good = ContentDigests {
            md5: parse_hex::<16>(LS_MD5.as_bytes()),
            sha256: None,
        };
        assert_eq!(
            idx.verdict(b"/usr/bin/ls", good, false),
            PackageVerdict::Matches {
                package: "coreutils".into()
            }
        );
        // Merged /usr: /bin/ls is the same file.
        assert!(idx.verdict(b"/bin/ls", good, false).is_package_update());
        let bad = ContentDigests {
            md5: Some([9; 16]),
            sha256: None,
        };
        assert_eq!(
            idx.verdict(b"/usr/bin/ls", bad, false),
            PackageVerdict::Differs {
                package: "coreutils".into()
            }
        );
        assert!(idx.verdict(b"/usr/bin/ls", bad, true).is_package_update());
        assert_eq!(
            idx.verdict(b"/etc/motd", bad, false),
            PackageVerdict::NotOwned
        );
    }

    #[test]
    fn rpm_dump_lines_with_spaces_in_paths_are_read_from_the_end() {
        let sha = "ab".repeat(32);
        let text = format!(
            "/usr/bin/my tool 10 1700000000 {sha} 0100755 root root 0 0 0 X\n/usr/share/d 4096 1 {} 040755 root root 0 0 0 X\n",
            "0".repeat(64)
        );
        let mut idx = PackageIndex::new();
        assert!(idx.add_rpm_dump("tool", "rpm", text.as_bytes()).is_empty());
        assert_eq!(idx.len(), 1);
        let d = ContentDigests {
            md5: None,
            sha256: parse_hex::<32>(sha.as_bytes()),
        };
        assert!(matches!(
            idx.verdict(b"/usr/bin/my tool", d, false),
            PackageVerdict::Matches { .. }
        ));
    }

    #[test]
    fn package_names_come_from_info_file_names() {
        assert_eq!(dpkg_package_of("libc6:amd64.md5sums"), Some("libc6:amd64"));
        assert_eq!(dpkg_package_of("libc6.list"), None);
    }

    proptest! {
        #[test]
        fn record_parsers_never_panic(b in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut idx = PackageIndex::new();
            idx.add_dpkg_md5sums("p", "s", &b);
            idx.add_rpm_dump("p", "s", &b);
        }
    }
}
