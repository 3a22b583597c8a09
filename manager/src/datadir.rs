//! Where the manager keeps its state, and `bannin-manager init`, which creates it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use bannin_pki::CertificateAuthority;
use serde::{Deserialize, Serialize};

use crate::secrets;
use crate::store::Store;

/// Default data directory of an installed manager.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/bannin-manager";

/// The layout of a manager data directory. Keys are mode 0600 and the directory 0700: the manager
/// service runs as its own user and nobody else needs to read them.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

/// Settings `init` records for later commands (`serve`, the URL printed for agents).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagerSettings {
    /// The URL agents use to reach this manager.
    pub url: String,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.root.join("ca.pem")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.root.join("ca.key")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.root.join("server.pem")
    }
    pub fn server_key(&self) -> PathBuf {
        self.root.join("server.key")
    }
    pub fn database(&self) -> PathBuf {
        self.root.join("bannin.db")
    }
    pub fn settings_file(&self) -> PathBuf {
        self.root.join("manager.toml")
    }
    /// Written by `serve` once it listens, so scripts and tests can find a port chosen by the OS.
    pub fn listen_addr_file(&self) -> PathBuf {
        self.root.join("manager.addr")
    }

    /// Fails with a hint when the directory was never initialised.
    pub fn require_initialized(&self) -> Result<()> {
        if !self.ca_cert().exists() || !self.database().exists() {
            bail!(
                "{} is not an initialised manager data directory (no ca.pem or bannin.db); run `bannin-manager init --data-dir {}` first",
                self.root.display(),
                self.root.display()
            );
        }
        Ok(())
    }

    pub fn open_store(&self) -> Result<Store> {
        self.require_initialized()?;
        Store::open(&self.database())
    }

    pub fn read(&self, path: &Path) -> Result<String> {
        fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    }

    pub fn load_ca(&self) -> Result<CertificateAuthority> {
        let cert = self.read(&self.ca_cert())?;
        let key = self.read(&self.ca_key())?;
        CertificateAuthority::load(&cert, &key)
            .with_context(|| format!("loading the CA from {}", self.root.display()))
    }

    pub fn settings(&self) -> Result<ManagerSettings> {
        let path = self.settings_file();
        let text = self.read(&path)?;
        toml::from_str(&text).with_context(|| format!("{}", path.display()))
    }
}

/// What `init` produced, for printing (the admin token exists nowhere else in clear).
#[derive(Debug, Serialize)]
pub struct InitOutcome {
    pub ca_fingerprint: String,
    pub admin_token: String,
    pub url: String,
}

fn write_file(path: &Path, contents: &str, mode: u32) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(contents.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    f.sync_all()
        .with_context(|| format!("syncing {}", path.display()))
}

/// Creates the CA, the server certificate for `names`, the database and the first admin token.
pub fn init(dir: &DataDir, names: &[String], port: u16) -> Result<InitOutcome> {
    if dir.ca_cert().exists() {
        bail!(
            "{} already holds a manager (ca.pem exists); refusing to overwrite its CA, which every agent pins",
            dir.root().display()
        );
    }
    if names.is_empty() {
        bail!("--san needs at least one DNS name or IP address");
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir.root())
        .with_context(|| format!("creating data directory {}", dir.root().display()))?;
    let (ca, ca_key) = CertificateAuthority::generate("Bannin manager CA")?;
    let server = ca.issue_server(names, 825).context("--san")?;
    let store = Store::open(&dir.database())?;
    let admin_token = secrets::new_token(secrets::ADMIN_PREFIX);
    store.add_admin_token(&secrets::hash(&admin_token))?;
    let host = &names[0];
    let url = if host.contains(':') {
        format!("https://[{host}]:{port}")
    } else {
        format!("https://{host}:{port}")
    };
    write_file(&dir.ca_key(), &ca_key, 0o600)?;
    write_file(&dir.server_key(), &server.key_pem, 0o600)?;
    write_file(&dir.server_cert(), &server.cert_pem, 0o644)?;
    write_file(
        &dir.settings_file(),
        &toml::to_string(&ManagerSettings { url: url.clone() })?,
        0o644,
    )?;
    // Last: its presence marks the directory as initialised.
    write_file(&dir.ca_cert(), ca.cert_pem(), 0o644)?;
    Ok(InitOutcome {
        ca_fingerprint: ca.fingerprint(),
        admin_token,
        url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_creates_private_keys_readable_only_by_the_owner() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path().join("m"));
        let out = init(&dir, &["localhost".into(), "127.0.0.1".into()], 8443).unwrap();
        assert_eq!(out.url, "https://localhost:8443");
        use std::os::unix::fs::PermissionsExt;
        for key in [dir.ca_key(), dir.server_key()] {
            assert_eq!(
                fs::metadata(&key).unwrap().permissions().mode() & 0o777,
                0o600,
                "{}",
                key.display()
            );
        }
        assert_eq!(dir.load_ca().unwrap().fingerprint(), out.ca_fingerprint);
        let store = dir.open_store().unwrap();
        assert!(store
            .admin_token_valid(&secrets::hash(&out.admin_token))
            .unwrap());
    }

    #[test]
    fn second_init_refuses_to_replace_the_ca() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path());
        init(&dir, &["localhost".into()], 8443).unwrap();
        let err = init(&dir, &["localhost".into()], 8443)
            .unwrap_err()
            .to_string();
        assert!(err.contains("refusing to overwrite"), "{err}");
    }

    #[test]
    fn uninitialised_directory_gets_a_hint_to_run_init() {
        let tmp = tempfile::tempdir().unwrap();
        let err = DataDir::new(tmp.path())
            .open_store()
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("bannin-manager init"), "{err}");
    }
}
