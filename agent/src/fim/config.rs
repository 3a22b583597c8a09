//! Reading what the FIM needs from the agent config file: `state_dir` and `[fim]`. Other sections are
//! accepted as they are; the agent's config module replaces this when it parses the whole file.

use anyhow::Context;
use bannin_fim::FimConfig;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
struct Lenient {
    state_dir: PathBuf,
    #[serde(default)]
    fim: FimConfig,
    #[serde(flatten)]
    _other: BTreeMap<String, toml::Value>,
}

/// `(state_dir, fim)` from an agent config file. Errors name the file and, from the TOML parser, the line
/// and field.
pub fn load_fim_config(path: &Path) -> anyhow::Result<(PathBuf, FimConfig)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    let c: Lenient =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))?;
    bannin_fim::Policy::compile(&c.fim)
        .map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))?;
    Ok((c.state_dir, c.fim))
}
