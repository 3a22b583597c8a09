//! The HTTP API under `/api/v1` (described in `manager/openapi.yaml`). Agent routes authenticate by the
//! client certificate of the TLS connection, admin routes by a bearer token, enrollment by an
//! enrollment token; only `/healthz` is open.

mod auth;
mod errors;
mod routes;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use bannin_pki::CertificateAuthority;

use crate::store::Store;
pub use auth::PeerCertificate;
pub use errors::ApiFailure;
pub use routes::{validate_token_request, EventQueryParams};

/// Largest request body, compressed. Batches are split by the agent well below this.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

pub struct AppState {
    pub store: Arc<Store>,
    pub ca: CertificateAuthority,
    pub disconnect_after: Duration,
    /// Validity of agent certificates issued at enrollment.
    pub agent_cert_days: i64,
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/api/v1/enroll", post(routes::enroll))
        .route(
            "/api/v1/events",
            post(routes::post_events).get(routes::get_events),
        )
        .route("/api/v1/heartbeat", post(routes::heartbeat))
        .route("/api/v1/agents", get(routes::list_agents))
        .route("/api/v1/agents/{id}", get(routes::get_agent))
        .route("/api/v1/tokens", post(routes::create_token))
        .fallback(|| async {
            ApiFailure::not_found("no such route; the API lives under /api/v1 (see openapi.yaml)")
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
