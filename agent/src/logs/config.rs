//! The `[logs]` section of the agent configuration: which files, journald streams and CloudTrail
//! directories the collector reads, and which ruleset judges them.
//!
//! Names follow what an OSSEC/Wazuh user would guess (`localfile`'s `location` and `log_format`
//! are accepted as aliases of `path` and `format`). Values that cannot work (an empty path, a
//! regex that does not compile, a cap too small to hold a syslog header) are refused at load with
//! the key named, never discovered later as silently missing logs.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

/// Where packages install our default log rules.
pub const DEFAULT_RULESET: &str = "/usr/share/bannin/signatures/logs";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsConfig {
    /// Ruleset paths (Wazuh/OSSEC layout, flat directory or one XML file), loaded in order; later
    /// paths add to and may overwrite earlier ones.
    #[serde(default = "default_ruleset")]
    pub ruleset: Vec<PathBuf>,
    /// On the very first start (no saved position), begin existing files at their end, as Wazuh's
    /// `only-future-events` does, so a fresh install does not alert on months of old history.
    /// Files that appear later are always read from their start.
    #[serde(default = "yes")]
    pub only_future_events: bool,
    #[serde(default, alias = "localfile")]
    pub files: Vec<FileInput>,
    #[serde(default)]
    pub journald: Vec<JournaldInput>,
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            ruleset: default_ruleset(),
            only_future_events: true,
            files: Vec::new(),
            journald: Vec::new(),
        }
    }
}

impl LogsConfig {
    /// True when the collector has something to read.
    pub fn has_inputs(&self) -> bool {
        !self.files.is_empty() || !self.journald.is_empty()
    }

    /// True when `ruleset` was left at the packaged default.
    pub fn ruleset_is_default(&self) -> bool {
        self.ruleset == default_ruleset()
    }
}

fn default_ruleset() -> Vec<PathBuf> {
    vec![PathBuf::from(DEFAULT_RULESET)]
}

fn yes() -> bool {
    true
}

/// How the bytes of a file become engine input lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One log line per line (syslog headers are decoded by the engine when present).
    Syslog,
    /// One JSON object per line, for the engine's JSON decoder.
    Json,
    /// AWS CloudTrail files (`{"Records":[...]}`, plain or gzip), each read once as a whole; every
    /// record becomes one line.
    Cloudtrail,
    /// Lines as they are, no header expected.
    Raw,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileInput {
    /// A path or a glob (`*`, `?`, `[..]`, `**`). For `format = "cloudtrail"` a directory means every
    /// `*.json` and `*.json.gz` below it.
    #[serde(alias = "location")]
    pub path: NonEmptyPath,
    #[serde(default = "syslog", alias = "log_format")]
    pub format: Format,
    /// A line matching this regex starts a new record; other lines continue the current one.
    #[serde(default)]
    pub multiline_start: Option<Regex>,
    /// A record with no continuation for this long is complete.
    #[serde(default = "default_multiline_timeout")]
    pub multiline_timeout_ms: u64,
    /// Longer lines are cut here and marked as truncated.
    #[serde(default = "default_max_line")]
    pub max_line_bytes: LineCap,
    /// Shown in events as the source's label (e.g. "nginx-access").
    #[serde(default)]
    pub label: Option<String>,
}

fn syslog() -> Format {
    Format::Syslog
}

fn default_multiline_timeout() -> u64 {
    1000
}

fn default_max_line() -> LineCap {
    LineCap(65536)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournaldInput {
    /// systemd units to follow (`_SYSTEMD_UNIT`); empty means all.
    #[serde(default)]
    pub units: Vec<String>,
    /// Syslog identifiers to follow (`SYSLOG_IDENTIFIER`); empty means all.
    #[serde(default)]
    pub identifiers: Vec<String>,
    /// Read this journal directory instead of the system journal (e.g. a container's).
    #[serde(default)]
    pub directory: Option<PathBuf>,
    #[serde(default)]
    pub label: Option<String>,
}

/// A path that is not empty (an empty one would silently match nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonEmptyPath(pub PathBuf);

impl<'de> Deserialize<'de> for NonEmptyPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim().is_empty() {
            return Err(serde::de::Error::custom("the path is empty"));
        }
        if !s.starts_with('/') {
            return Err(serde::de::Error::custom(format!(
                "`{s}` is relative: use an absolute path (the agent's working directory is not \
                 where you think it is)"
            )));
        }
        Ok(NonEmptyPath(PathBuf::from(s)))
    }
}

/// A compiled regex, checked at load.
#[derive(Debug, Clone)]
pub struct Regex(pub regex::Regex);

impl<'de> Deserialize<'de> for Regex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        regex::Regex::new(&s)
            .map(Regex)
            .map_err(|e| serde::de::Error::custom(format!("`{s}` is not a valid regex: {e}")))
    }
}

/// A line length cap between 256 bytes and 16 MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineCap(pub usize);

impl<'de> Deserialize<'de> for LineCap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u64::deserialize(d)?;
        if (256..=16 << 20).contains(&n) {
            Ok(LineCap(n as usize))
        } else {
            Err(serde::de::Error::custom(format!(
                "{n} is out of range: use 256 to 16777216 bytes"
            )))
        }
    }
}
