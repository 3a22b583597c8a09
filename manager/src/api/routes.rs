use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use bannin_proto::{
    decode_batch, AgentInfo, BatchAck, EnrollRequest, EnrollResponse, EventBatch, EventKind,
    EventQuery, Heartbeat, HeartbeatReply, StoredEvent, TokenCreateRequest, TokenCreated,
    MAX_BATCH_DECOMPRESSED,
};
use serde::Deserialize;
use time::OffsetDateTime;

use super::auth::{Admin, AgentIdentity};
use super::{ApiFailure, AppState};
use crate::secrets;
use crate::store::{EnrollRefusal, NewAgent};

type ApiResult<T> = Result<Json<T>, ApiFailure>;

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Result<T, ApiFailure> {
    Ok(tokio::task::spawn_blocking(f).await??)
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), ApiFailure> {
    if value.len() > max {
        return Err(ApiFailure::bad_request(format!(
            "{field} is {} bytes; the limit is {max}",
            value.len()
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiFailure::bad_request(format!(
            "{field} contains control characters"
        )));
    }
    Ok(())
}

pub async fn enroll(
    State(state): State<Arc<AppState>>,
    body: Result<Json<EnrollRequest>, JsonRejection>,
) -> ApiResult<EnrollResponse> {
    let Json(req) = body?;
    if req.name.trim().is_empty() {
        return Err(ApiFailure::bad_request("name must not be empty"));
    }
    check_text("name", &req.name, 253)?;
    check_text("hostname", &req.hostname, 253)?;
    check_text("os", &req.os, 253)?;
    check_text("agent_version", &req.agent_version, 64)?;
    let agent_id = uuid::Uuid::new_v4().to_string();
    let certificate_pem = state
        .ca
        .sign_agent_csr(&req.csr_pem, &agent_id, state.agent_cert_days)
        .map_err(|e| ApiFailure::bad_request(format!("csr_pem: {e}")))?;
    let der = bannin_pki::certs_from_pem(&certificate_pem, "issued certificate")
        .map_err(ApiFailure::internal)?;
    let agent = NewAgent {
        id: agent_id.clone(),
        name: req.name.trim().to_string(),
        hostname: req.hostname,
        os: req.os,
        agent_version: req.agent_version,
        cert_fingerprint: bannin_pki::fingerprint(&der[0]),
        instance_id: req.instance_id,
        region: req.region,
    };
    let token_hash = secrets::hash(&req.token);
    let store = state.store.clone();
    let name = agent.name.clone();
    match blocking(move || store.enroll(&token_hash, OffsetDateTime::now_utc(), &agent)).await? {
        Ok(()) => {
            tracing::info!(agent_id = %agent_id, name = %name, "agent enrolled");
            Ok(Json(EnrollResponse {
                agent_id,
                certificate_pem,
                ca_pem: state.ca.cert_pem().to_string(),
            }))
        }
        Err(refusal) => {
            tracing::warn!(name = %name, "enrollment refused: {refusal}");
            let status = match refusal {
                EnrollRefusal::UnknownToken => StatusCode::UNAUTHORIZED,
                EnrollRefusal::Expired(_) | EnrollRefusal::UsedUp(_) => StatusCode::FORBIDDEN,
            };
            Err(ApiFailure::new(status, refusal.to_string()))
        }
    }
}

pub async fn post_events(
    State(state): State<Arc<AppState>>,
    AgentIdentity(agent_id): AgentIdentity,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<BatchAck> {
    let body = body?;
    let batch: EventBatch =
        tokio::task::spawn_blocking(move || decode_batch(&body, MAX_BATCH_DECOMPRESSED))
            .await?
            .map_err(|e| ApiFailure::bad_request(e.to_string()))?;
    if batch.agent_id != agent_id {
        return Err(ApiFailure::forbidden(format!(
            "batch claims agent {} but the client certificate is agent {agent_id}",
            batch.agent_id
        )));
    }
    let mut previous = 0u64;
    for (i, event) in batch.events.iter().enumerate() {
        event.validate().map_err(|e| {
            ApiFailure::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("events[{i}]: {e}"),
            )
        })?;
        let seq = event.seq.ok_or_else(|| {
            ApiFailure::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("events[{i}]: seq is required for agent events"),
            )
        })?;
        if seq <= previous {
            return Err(ApiFailure::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("events[{i}]: seq {seq} does not increase (previous {previous})"),
            ));
        }
        previous = seq;
        if !event.agent_id.is_empty() && event.agent_id != agent_id {
            return Err(ApiFailure::forbidden(format!(
                "events[{i}]: agent_id {} is not this agent",
                event.agent_id
            )));
        }
    }
    let store = state.store.clone();
    let ack =
        blocking(move || store.store_batch(&agent_id, &batch.events, OffsetDateTime::now_utc()))
            .await?;
    Ok(Json(ack))
}

pub async fn heartbeat(
    State(state): State<Arc<AppState>>,
    AgentIdentity(agent_id): AgentIdentity,
    body: Result<Json<Heartbeat>, JsonRejection>,
) -> ApiResult<HeartbeatReply> {
    let Json(hb) = body?;
    check_text("agent_version", &hb.agent_version, 64)?;
    let store = state.store.clone();
    let id = agent_id.clone();
    if let Some(event) =
        blocking(move || store.heartbeat(&id, &hb.agent_version, OffsetDateTime::now_utc())).await?
    {
        tracing::info!(agent_id = %agent_id, "{}", event.title);
    }
    Ok(Json(HeartbeatReply {
        server_time: OffsetDateTime::now_utc(),
        disconnect_after_secs: state.disconnect_after.as_secs(),
    }))
}

pub async fn list_agents(
    State(state): State<Arc<AppState>>,
    _: Admin,
) -> ApiResult<Vec<AgentInfo>> {
    let store = state.store.clone();
    Ok(Json(blocking(move || store.agents()).await?))
}

pub async fn get_agent(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
) -> ApiResult<AgentInfo> {
    let store = state.store.clone();
    let lookup = id.clone();
    blocking(move || store.agent(&lookup))
        .await?
        .map(Json)
        .ok_or_else(|| ApiFailure::not_found(format!("no agent with id {id}")))
}

/// Query string of `GET /api/v1/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventQueryParams {
    agent: Option<String>,
    kind: Option<String>,
    min_level: Option<u8>,
    since: Option<String>,
    limit: Option<u32>,
}

impl EventQueryParams {
    pub fn into_query(self) -> Result<EventQuery, String> {
        let kind = self
            .kind
            .map(|k| k.parse::<EventKind>())
            .transpose()
            .map_err(|e| format!("kind: {e}"))?;
        let since = self
            .since
            .map(|s| OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339))
            .transpose()
            .map_err(|e| {
                format!("since: not an RFC 3339 time ({e}); example: 2026-01-31T12:00:00Z")
            })?;
        if let Some(level) = self.min_level {
            if level > bannin_proto::MAX_LEVEL {
                return Err(format!(
                    "min_level: {level} is above {}",
                    bannin_proto::MAX_LEVEL
                ));
            }
        }
        Ok(EventQuery {
            agent: self.agent,
            kind,
            min_level: self.min_level,
            since,
            limit: self.limit,
        })
    }
}

pub async fn get_events(
    State(state): State<Arc<AppState>>,
    _: Admin,
    params: Result<Query<EventQueryParams>, QueryRejection>,
) -> ApiResult<Vec<StoredEvent>> {
    let Query(params) = params?;
    let query = params.into_query().map_err(ApiFailure::bad_request)?;
    let store = state.store.clone();
    Ok(Json(blocking(move || store.query_events(&query)).await?))
}

/// Longest enrollment token lifetime: a year. Longer-lived tokens are a standing invitation.
const MAX_TOKEN_TTL_SECS: u64 = 366 * 24 * 3600;

pub async fn create_token(
    State(state): State<Arc<AppState>>,
    _: Admin,
    body: Result<Json<TokenCreateRequest>, JsonRejection>,
) -> ApiResult<TokenCreated> {
    let Json(req) = body?;
    let store = state.store.clone();
    let created =
        blocking(move || Ok(crate::tokens::create(&store, req.ttl_secs, req.uses))).await?;
    Ok(Json(created.map_err(ApiFailure::bad_request)?))
}

pub fn validate_token_request(ttl_secs: u64, uses: u32) -> Result<(), String> {
    if ttl_secs == 0 || ttl_secs > MAX_TOKEN_TTL_SECS {
        return Err(format!(
            "ttl must be between 1 second and {} days",
            MAX_TOKEN_TTL_SECS / 86400
        ));
    }
    if uses == 0 {
        return Err("uses must be at least 1".into());
    }
    Ok(())
}
