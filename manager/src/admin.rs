//! Admin commands work on a local data directory or on a remote manager through the API; this module
//! hides which, so every command has exactly one implementation per target.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bannin_proto::{
    AgentInfo, ApiError, EventQuery, StoredEvent, TokenCreateRequest, TokenCreated,
};

use crate::datadir::DataDir;

/// Where an admin command acts.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// Manager data directory (local administration).
    #[arg(long, env = "BANNIN_DATA_DIR", default_value = crate::datadir::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Administer a remote manager through its API instead, e.g. https://manager.example:8443.
    #[arg(long, env = "BANNIN_URL", requires = "token")]
    pub url: Option<String>,
    /// Admin token for --url.
    #[arg(long, env = "BANNIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// CA certificate of the remote manager (ca.pem from its data directory).
    #[arg(long, env = "BANNIN_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// SHA-256 fingerprint of the remote manager's CA, as printed by `init` (instead of --ca-file).
    #[arg(long, env = "BANNIN_CA_FINGERPRINT")]
    pub ca_fingerprint: Option<String>,
}

pub enum Target {
    Local(DataDir),
    Remote(Remote),
}

pub struct Remote {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl TargetArgs {
    pub fn open(&self) -> Result<Target> {
        let Some(url) = &self.url else {
            let dir = DataDir::new(&self.data_dir);
            dir.require_initialized()?;
            return Ok(Target::Local(dir));
        };
        let tls = match (&self.ca_file, &self.ca_fingerprint) {
            (Some(file), _) => {
                let pem = std::fs::read_to_string(file)
                    .with_context(|| format!("reading --ca-file {}", file.display()))?;
                bannin_pki::client_config_trusting(&pem, None)
                    .with_context(|| format!("--ca-file {}", file.display()))?
            }
            (None, Some(fp)) => {
                bannin_pki::client_config_pinned(fp, None).context("--ca-fingerprint")?
            }
            (None, None) => {
                bail!("--url needs --ca-file or --ca-fingerprint to authenticate the manager")
            }
        };
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(Duration::from_secs(60))
            .build()
            .context("building the HTTPS client")?;
        Ok(Target::Remote(Remote {
            base: url.trim_end_matches('/').to_string(),
            token: self.token.clone().unwrap_or_default(),
            client,
        }))
    }
}

impl Remote {
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<T> {
        let resp = req
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("{what}: contacting {}", self.base))?;
        let status = resp.status();
        if status.is_success() {
            return resp
                .json()
                .await
                .with_context(|| format!("{what}: reading the manager's answer"));
        }
        let text = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ApiError>(&text)
            .map(|e| e.error)
            .unwrap_or(text);
        bail!("{what}: the manager answered {status}: {message}")
    }
}

fn query_pairs(q: &EventQuery) -> Vec<(&'static str, String)> {
    let mut pairs = Vec::new();
    if let Some(a) = &q.agent {
        pairs.push(("agent", a.clone()));
    }
    if let Some(k) = q.kind {
        pairs.push(("kind", k.to_string()));
    }
    if let Some(l) = q.min_level {
        pairs.push(("min_level", l.to_string()));
    }
    if let Some(s) = q.since {
        pairs.push(("since", crate::store::rfc3339(s)));
    }
    if let Some(l) = q.limit {
        pairs.push(("limit", l.to_string()));
    }
    pairs
}

impl Target {
    pub async fn agents(&self) -> Result<Vec<AgentInfo>> {
        match self {
            Target::Local(dir) => dir.open_store()?.agents(),
            Target::Remote(r) => {
                r.call(
                    r.client.get(format!("{}/api/v1/agents", r.base)),
                    "listing agents",
                )
                .await
            }
        }
    }

    pub async fn events(&self, q: &EventQuery) -> Result<Vec<StoredEvent>> {
        match self {
            Target::Local(dir) => dir.open_store()?.query_events(q),
            Target::Remote(r) => {
                let url = format!("{}/api/v1/events", r.base);
                let pairs = query_pairs(q);
                let url = reqwest::Url::parse_with_params(&url, &pairs)
                    .with_context(|| format!("--url {}", r.base))?;
                r.call(r.client.get(url), "querying events").await
            }
        }
    }

    pub async fn create_token(&self, ttl: Duration, uses: u32) -> Result<TokenCreated> {
        match self {
            Target::Local(dir) => crate::tokens::create(&dir.open_store()?, ttl.as_secs(), uses)
                .map_err(anyhow::Error::msg),
            Target::Remote(r) => {
                let body = TokenCreateRequest {
                    ttl_secs: ttl.as_secs(),
                    uses,
                };
                r.call(
                    r.client
                        .post(format!("{}/api/v1/tokens", r.base))
                        .json(&body),
                    "creating a token",
                )
                .await
            }
        }
    }
}

/// Parses `90s`, `15m`, `24h`, `7d` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (examples: 90s, 15m, 24h, 7d)"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}` (use s, m, h or d)"
            ))
        }
    };
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_parse_with_units_and_reject_unknown_ones() {
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172800));
        assert!(parse_duration("3w").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("h").unwrap_err().contains("not a duration"));
    }
}
