//! Log-rule engine (placeholder until built).
