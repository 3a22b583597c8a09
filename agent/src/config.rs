//! The agent's configuration file (TOML, default `/etc/bannin/agent.toml`). Unknown keys and bad values
//! are errors that name the key, the file and the line: a typo must never silently disable detection.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Deserializer};

pub const DEFAULT_CONFIG: &str = "/etc/bannin/agent.toml";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/bannin";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Enrollment identity, outbox, baselines.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    #[serde(default)]
    pub manager: ManagerConfig,
    #[serde(default)]
    pub outbox: OutboxConfig,
    #[serde(default)]
    pub fim: bannin_fim::FimConfig,
    /// Log collection and inspection (`[logs]`, `[[logs.files]]`, `[[logs.journald]]`).
    #[serde(default)]
    pub logs: crate::logs::config::LogsConfig,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from(DEFAULT_STATE_DIR)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagerConfig {
    /// Overrides the URL recorded at enrollment (for example after the manager moved).
    #[serde(default)]
    pub url: Option<HttpsUrl>,
    /// Seconds between heartbeats.
    #[serde(default = "default_heartbeat")]
    pub heartbeat_secs: Seconds,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            url: None,
            heartbeat_secs: default_heartbeat(),
        }
    }
}

fn default_heartbeat() -> Seconds {
    Seconds(30)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    /// Events kept while the manager is unreachable; beyond this new events are refused and counted,
    /// and an event says how many.
    #[serde(default = "default_max_events")]
    pub max_events: u64,
    /// Events per batch sent to the manager.
    #[serde(default = "default_batch_events")]
    pub batch_events: usize,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            max_events: default_max_events(),
            batch_events: default_batch_events(),
        }
    }
}

fn default_max_events() -> u64 {
    1_000_000
}

fn default_batch_events() -> usize {
    5_000
}

/// An `https://` URL; plain HTTP would send events and identity unencrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsUrl(pub String);

impl<'de> Deserialize<'de> for HttpsUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_https_url(&s).map_err(serde::de::Error::custom)
    }
}

pub fn parse_https_url(s: &str) -> Result<HttpsUrl, String> {
    let url = reqwest::Url::parse(s).map_err(|e| format!("`{s}` is not a URL: {e}"))?;
    if url.scheme() != "https" {
        return Err(format!(
            "`{s}` must be an https:// URL (agent traffic is always TLS)"
        ));
    }
    if url.host().is_none() {
        return Err(format!("`{s}` has no host"));
    }
    Ok(HttpsUrl(s.trim_end_matches('/').to_string()))
}

/// A whole number of seconds between 1 and one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub u64);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u64::deserialize(d)?;
        if (1..=86_400).contains(&n) {
            Ok(Seconds(n))
        } else {
            Err(serde::de::Error::custom(format!(
                "{n} is out of range: use 1 to 86400 seconds"
            )))
        }
    }
}

impl AgentConfig {
    pub fn parse(text: &str, origin: &Path) -> Result<AgentConfig> {
        let cfg: AgentConfig =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("{}: {e}", origin.display()))?;
        if cfg.outbox.max_events < 1000 {
            anyhow::bail!(
                "{}: [outbox] max_events = {} is too small (at least 1000)",
                origin.display(),
                cfg.outbox.max_events
            );
        }
        if !(1..=50_000).contains(&cfg.outbox.batch_events) {
            anyhow::bail!(
                "{}: [outbox] batch_events = {} must be 1 to 50000",
                origin.display(),
                cfg.outbox.batch_events
            );
        }
        for (i, f) in cfg.logs.files.iter().enumerate() {
            if !(10..=600_000).contains(&f.multiline_timeout_ms) {
                anyhow::bail!(
                    "{}: [[logs.files]] entry {} ({}): multiline_timeout_ms = {} must be 10 to 600000",
                    origin.display(),
                    i + 1,
                    f.path.0.display(),
                    f.multiline_timeout_ms
                );
            }
        }
        Ok(cfg)
    }

    pub fn load(path: &Path) -> Result<AgentConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        AgentConfig::parse(&text, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AgentConfig> {
        AgentConfig::parse(text, Path::new("/etc/bannin/agent.toml"))
    }

    #[test]
    fn issue_example_config_parses() {
        let cfg = parse(
            r#"
state_dir = "/var/lib/bannin"
[manager]
url = "https://manager.example:8443"
[[fim.paths]]
path = "/srv/www"
realtime = true
"#,
        )
        .unwrap();
        assert_eq!(
            cfg.manager.url,
            Some(HttpsUrl("https://manager.example:8443".into()))
        );
        assert_eq!(cfg.fim.paths.len(), 1);
        assert!(cfg.fim.paths[0].realtime);
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = parse("state_dir = \"/tmp/x\"\n[manager]\nurll = \"https://m\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("agent.toml"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("urll"), "{err}");
    }

    #[test]
    fn plain_http_manager_url_is_refused_with_its_line() {
        let err = parse("\n\n[manager]\nurl = \"http://m:8443\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 4") && err.contains("https://"), "{err}");
    }

    #[test]
    fn out_of_range_heartbeat_is_refused() {
        let err = parse("[manager]\nheartbeat_secs = 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("out of range") && err.contains("line 2"),
            "{err}"
        );
    }

    #[test]
    fn logs_section_parses_with_wazuh_style_aliases() {
        let cfg = parse(
            r#"
[logs]
ruleset = ["/opt/rules"]
[[logs.files]]
location = "/var/log/auth.log"
[[logs.files]]
path = "/var/log/app/*.json"
log_format = "json"
multiline_start = '^\d{4}-'
max_line_bytes = 4096
label = "app"
[[logs.journald]]
units = ["ssh.service"]
identifiers = ["sudo"]
"#,
        )
        .unwrap();
        let l = &cfg.logs;
        assert_eq!(l.ruleset, vec![PathBuf::from("/opt/rules")]);
        assert_eq!(l.files.len(), 2);
        assert_eq!(l.files[0].format, crate::logs::config::Format::Syslog);
        assert_eq!(l.files[1].format, crate::logs::config::Format::Json);
        assert!(l.files[1]
            .multiline_start
            .as_ref()
            .unwrap()
            .0
            .is_match("2024-01"));
        assert_eq!(l.files[1].max_line_bytes.0, 4096);
        assert_eq!(l.journald[0].units, vec!["ssh.service".to_string()]);
        assert!(l.only_future_events);
    }

    #[test]
    fn bad_logs_values_name_key_and_line() {
        let err = parse("[[logs.files]]\npath = \"/x\"\nformat = \"xml\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3") && err.contains("xml"), "{err}");
        let err = parse("[[logs.files]]\npath = \"/x\"\nmultiline_start = \"(\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3") && err.contains("regex"), "{err}");
        let err = parse("[[logs.files]]\npath = \"var/log/x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("relative"), "{err}");
        let err = parse("[[logs.files]]\npath = \"/x\"\nmax_line_bytes = 10\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 3") && err.contains("out of range"),
            "{err}"
        );
        let err = parse("[[logs.files]]\npath = \"/x\"\nmultiline_timeout_ms = 1\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("multiline_timeout_ms") && err.contains("/x"),
            "{err}"
        );
        let err = parse("[logs]\nfilez = []\n").unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("filez"), "{err}");
    }

    #[test]
    fn empty_file_means_all_defaults() {
        let cfg = parse("").unwrap();
        assert_eq!(cfg.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
        assert_eq!(cfg.manager.heartbeat_secs, Seconds(30));
    }
}
