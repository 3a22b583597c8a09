//! Log inspection adapters: reading rulesets from disk for the sans-IO `bannin-logrules` engine.

pub mod ruleset_dir;
