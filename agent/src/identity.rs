//! The agent's enrollment identity in its state directory, and `bannin-agent enroll`, which creates it.
//! The private key is generated here and never leaves the host: only a CSR goes to the manager.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bannin_pki::{AgentKey, ClientIdentity};
use bannin_proto::{ApiError, EnrollRequest, EnrollResponse};
use serde::{Deserialize, Serialize};

/// What `enroll` records besides the key material.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityFile {
    pub agent_id: String,
    pub name: String,
    pub manager_url: String,
}

/// Everything the agent needs to talk to its manager.
pub struct Identity {
    pub agent_id: String,
    pub name: String,
    pub manager_url: String,
    pub ca_pem: String,
    pub client: ClientIdentity,
}

pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> StateDir {
        StateDir { root: root.into() }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    fn identity_file(&self) -> PathBuf {
        self.root.join("identity.toml")
    }
    fn key_file(&self) -> PathBuf {
        self.root.join("agent.key")
    }
    fn cert_file(&self) -> PathBuf {
        self.root.join("agent.pem")
    }
    fn ca_file(&self) -> PathBuf {
        self.root.join("ca.pem")
    }
    pub fn outbox_file(&self) -> PathBuf {
        self.root.join("outbox.db")
    }

    pub fn create(&self) -> Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .with_context(|| format!("creating state directory {}", self.root.display()))
    }

    pub fn is_enrolled(&self) -> bool {
        self.identity_file().exists()
    }

    pub fn load_identity(&self) -> Result<Identity> {
        if !self.is_enrolled() {
            bail!(
                "{} holds no enrollment; run `bannin-agent enroll --manager URL --token TOKEN --ca-fingerprint SHA256 --state-dir {}` first",
                self.root.display(),
                self.root.display()
            );
        }
        let read =
            |p: PathBuf| fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()));
        let file: IdentityFile = toml::from_str(&read(self.identity_file())?)
            .with_context(|| format!("{}", self.identity_file().display()))?;
        Ok(Identity {
            agent_id: file.agent_id,
            name: file.name,
            manager_url: file.manager_url,
            ca_pem: read(self.ca_file())?,
            client: ClientIdentity {
                cert_pem: read(self.cert_file())?,
                key_pem: read(self.key_file())?,
            },
        })
    }
}

fn write_new(path: &Path, contents: &str, mode: u32) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
        .with_context(|| format!("writing {}", path.display()))
}

pub struct EnrollOptions {
    pub manager_url: String,
    pub token: String,
    pub ca_fingerprint: String,
    pub name: String,
    pub instance_id: Option<String>,
    pub region: Option<String>,
}

pub fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown-host".into())
}

/// Generates the key pair, sends the CSR with the token over TLS pinned to the CA fingerprint, and
/// saves the issued certificate. Nothing is written unless the manager accepted the enrollment.
pub async fn enroll(state: &StateDir, opts: EnrollOptions) -> Result<IdentityFile> {
    if state.is_enrolled() {
        bail!(
            "{} is already enrolled (identity.toml exists); remove the state directory to enroll again",
            state.root().display()
        );
    }
    let url = crate::config::parse_https_url(&opts.manager_url)
        .map_err(|e| anyhow::anyhow!("--manager: {e}"))?;
    let tls =
        bannin_pki::client_config_pinned(&opts.ca_fingerprint, None).context("--ca-fingerprint")?;
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTPS client")?;
    let key = AgentKey::generate(&opts.name)?;
    let request = EnrollRequest {
        token: opts.token.trim().to_string(),
        csr_pem: key.csr_pem.clone(),
        name: opts.name.clone(),
        hostname: host_name(),
        os: std::env::consts::OS.to_string(),
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        instance_id: opts.instance_id,
        region: opts.region,
    };
    let endpoint = format!("{}/api/v1/enroll", url.0);
    let resp = client
        .post(&endpoint)
        .json(&request)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "contacting {endpoint}: {}",
                crate::uplink::describe_error(&e)
            )
        })?;
    let status = resp.status();
    if !status.is_success() {
        let text = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ApiError>(&text)
            .map(|e| e.error)
            .unwrap_or(text);
        bail!("the manager refused the enrollment ({status}): {message}");
    }
    let answer: EnrollResponse = resp
        .json()
        .await
        .context("reading the manager's enrollment answer")?;
    // The CA we will trust from now on must be the one we pinned.
    let ca_der = bannin_pki::certs_from_pem(&answer.ca_pem, "CA certificate from the manager")?;
    let pinned = bannin_pki::normalize_fingerprint(&opts.ca_fingerprint)?;
    if bannin_pki::fingerprint(&ca_der[0]) != pinned {
        bail!("the manager returned a CA certificate that does not match --ca-fingerprint; not saving it");
    }
    state.create()?;
    write_new(&state.key_file(), &key.key_pem, 0o600)?;
    write_new(&state.cert_file(), &answer.certificate_pem, 0o644)?;
    write_new(&state.ca_file(), &answer.ca_pem, 0o644)?;
    let file = IdentityFile {
        agent_id: answer.agent_id,
        name: opts.name,
        manager_url: url.0,
    };
    // Last: its presence means "enrolled".
    write_new(&state.identity_file(), &toml::to_string(&file)?, 0o644)?;
    Ok(file)
}
