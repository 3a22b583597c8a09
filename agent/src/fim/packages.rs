//! Reading the package manager's own records for package awareness: dpkg `*.md5sums` files (loaded once
//! and reloaded when the info directory changes) and, on RPM systems, `rpm -qf --dump` for a changed file.

use bannin_fim::pkg::dpkg_package_of;
use bannin_fim::{ContentDigests, PackageIndex, PackageVerdict};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub struct PackageCache {
    enabled: bool,
    dpkg_dir: PathBuf,
    index: Option<PackageIndex>,
    loaded_mtime: Option<SystemTime>,
    pub warnings: Vec<String>,
}

/// Loads every `*.md5sums` of a dpkg info directory. Unreadable files and bad lines are returned as warnings.
pub fn load_dpkg(dir: &Path) -> (PackageIndex, Vec<String>) {
    let mut idx = PackageIndex::new();
    let mut warnings = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return (idx, warnings);
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(pkg) = name.to_str().and_then(dpkg_package_of) else {
            continue;
        };
        match std::fs::read(e.path()) {
            Ok(bytes) => {
                for w in idx.add_dpkg_md5sums(pkg, &e.path().display().to_string(), &bytes) {
                    warnings.push(format!("{}:{}: {}", w.source, w.line, w.message));
                }
            }
            Err(err) => warnings.push(format!("{}: {err}", e.path().display())),
        }
    }
    (idx, warnings)
}

/// Whether a package manager is running now (dpkg, apt, rpm, dnf, yum, zypper).
pub fn package_transaction_running() -> bool {
    const NAMES: &[&str] = &[
        "dpkg",
        "apt",
        "apt-get",
        "aptitude",
        "unattended-upgr",
        "rpm",
        "dnf",
        "yum",
        "zypper",
    ];
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return false;
    };
    rd.flatten()
        .filter(|e| e.file_name().as_bytes().iter().all(u8::is_ascii_digit))
        .any(|e| {
            std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| NAMES.contains(&c.trim()))
        })
}

impl PackageCache {
    pub fn new(enabled: bool, dpkg_dir: PathBuf) -> PackageCache {
        PackageCache {
            enabled,
            dpkg_dir,
            index: None,
            loaded_mtime: None,
            warnings: Vec::new(),
        }
    }

    fn refresh(&mut self) {
        let m = std::fs::metadata(&self.dpkg_dir)
            .and_then(|m| m.modified())
            .ok();
        if self.index.is_none() || m != self.loaded_mtime {
            let (idx, w) = load_dpkg(&self.dpkg_dir);
            self.index = Some(idx);
            self.warnings = w;
            self.loaded_mtime = m;
        }
    }

    /// The verdict on a changed regular file at `path` (reads it for md5/sha256).
    pub fn verdict(&mut self, path: &Path) -> PackageVerdict {
        if !self.enabled {
            return PackageVerdict::NotOwned;
        }
        self.refresh();
        let in_tx = package_transaction_running();
        let digests = observe_digests(path);
        let bytes = path.as_os_str().as_bytes();
        let idx = self.index.get_or_insert_with(PackageIndex::new);
        if idx.lookup(bytes).is_none() && Path::new("/var/lib/rpm").is_dir() {
            if let Ok(out) = std::process::Command::new("rpm")
                .arg("-qf")
                .arg("--dump")
                .arg(path)
                .output()
            {
                if out.status.success() {
                    idx.add_rpm_dump("rpm", "rpm -qf --dump", &out.stdout);
                }
            }
        }
        idx.verdict(bytes, digests, in_tx)
    }
}

fn observe_digests(path: &Path) -> ContentDigests {
    super::observe::package_digests(path).unwrap_or_default()
}
