//! File integrity engine (being built): policy model, baseline records and the differ.
//! Sans-IO: it never opens files itself; the agent's FIM adapters feed it observations.

use serde::Deserialize;
use std::path::PathBuf;

/// The `[fim]` section of the agent config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FimConfig {
    #[serde(default)]
    pub paths: Vec<WatchPath>,
}

/// One `[[fim.paths]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchPath {
    pub path: PathBuf,
    #[serde(default)]
    pub realtime: bool,
}
