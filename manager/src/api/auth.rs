//! Who is calling: an enrolled agent (client certificate) or an administrator (bearer token).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::{ApiFailure, AppState};
use crate::secrets;

/// The SHA-256 fingerprint of the client certificate presented on this TLS connection, if any. The TLS
/// acceptor attaches it to every request; rustls has already checked that it chains to our CA.
#[derive(Debug, Clone)]
pub struct PeerCertificate(pub Option<String>);

/// An enrolled agent, identified by the certificate it was issued.
pub struct AgentIdentity(pub String);

impl FromRequestParts<Arc<AppState>> for AgentIdentity {
    type Rejection = ApiFailure;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let fingerprint = parts
            .extensions
            .get::<PeerCertificate>()
            .and_then(|p| p.0.clone())
            .ok_or_else(|| {
                ApiFailure::unauthorized(
                    "this route is for agents and needs the agent's client certificate (mutual TLS); enroll with `bannin-agent enroll`",
                )
            })?;
        let store = state.store.clone();
        let fp = fingerprint.clone();
        let agent =
            tokio::task::spawn_blocking(move || store.agent_id_by_fingerprint(&fp)).await??;
        agent.map(AgentIdentity).ok_or_else(|| {
            ApiFailure::forbidden(format!(
                "client certificate {fingerprint} belongs to no enrolled agent"
            ))
        })
    }
}

/// An administrator, authenticated by `Authorization: Bearer <admin token>`.
pub struct Admin;

impl FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = ApiFailure;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            ApiFailure::unauthorized("admin route: send `Authorization: Bearer <admin token>` (printed by `bannin-manager init`)")
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiFailure::unauthorized(
                    "admin route: the Authorization header must be `Bearer <admin token>`",
                )
            })?;
        let hash = secrets::hash(token);
        let store = state.store.clone();
        if tokio::task::spawn_blocking(move || store.admin_token_valid(&hash)).await?? {
            Ok(Admin)
        } else {
            Err(ApiFailure::unauthorized(
                "admin token not recognised by this manager",
            ))
        }
    }
}
