//! The FIM source the agent runs (being built).
pub async fn run_fim_source() {}
