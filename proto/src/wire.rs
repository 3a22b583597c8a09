//! Bodies of the `/api/v1` routes. All of them refuse unknown fields so that a typo in a client is an
//! error, not a silently ignored setting.

use std::io::Read;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::Event;

/// API prefix shared by every route except `/healthz`.
pub const API_PREFIX: &str = "/api/v1";
/// Content type of an event batch: JSON compressed with zstd.
pub const BATCH_CONTENT_TYPE: &str = "application/vnd.bannin.batch+zstd";
/// Largest decompressed batch the manager accepts; an agent splits anything larger.
pub const MAX_BATCH_DECOMPRESSED: usize = 64 * 1024 * 1024;

/// `POST /api/v1/enroll`: an enrollment token and a certificate signing request made on the host.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    pub token: String,
    /// PEM CSR; the private key behind it never leaves the agent's host.
    pub csr_pem: String,
    pub name: String,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub agent_version: String,
    #[serde(default)]
    pub instance_id: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollResponse {
    pub agent_id: String,
    pub certificate_pem: String,
    pub ca_pem: String,
}

/// `POST /api/v1/events` (zstd-compressed JSON): events in strictly increasing `seq` order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventBatch {
    pub agent_id: String,
    pub events: Vec<Event>,
}

/// The manager's answer to a batch: everything up to `acked_seq` is stored and may be dropped from the
/// agent's outbox.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BatchAck {
    pub acked_seq: u64,
    /// Events newly stored by this batch.
    pub stored: u64,
    /// Events of this batch the manager already had (a resend after a lost ack).
    pub duplicates: u64,
}

/// `POST /api/v1/heartbeat`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    pub agent_version: String,
    pub uptime_secs: u64,
    /// Events waiting in the outbox.
    pub outbox_pending: u64,
    /// Events refused because the outbox was full, since the agent started.
    pub outbox_dropped: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatReply {
    #[serde(with = "time::serde::rfc3339")]
    pub server_time: OffsetDateTime,
    /// Seconds after which the manager marks a silent agent disconnected.
    pub disconnect_after_secs: u64,
}

/// `POST /api/v1/tokens` (admin).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenCreateRequest {
    pub ttl_secs: u64,
    pub uses: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenCreated {
    pub token: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub uses: u32,
}

/// Connection state the manager derives from heartbeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentStatus {
    /// Enrolled, no heartbeat yet.
    Never,
    Connected,
    Disconnected,
}

impl AgentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Never => "never",
            AgentStatus::Connected => "connected",
            AgentStatus::Disconnected => "disconnected",
        }
    }

    pub fn parse(s: &str) -> Option<AgentStatus> {
        [
            AgentStatus::Never,
            AgentStatus::Connected,
            AgentStatus::Disconnected,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// `GET /api/v1/agents` and `/api/v1/agents/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgentInfo {
    pub id: String,
    pub name: String,
    pub hostname: String,
    pub os: String,
    pub agent_version: String,
    pub status: AgentStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub enrolled_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_seen: Option<OffsetDateTime>,
    pub acked_seq: u64,
    pub instance_id: Option<String>,
    pub region: Option<String>,
}

/// Filters of `GET /api/v1/events` and `bannin-manager events`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    pub agent: Option<String>,
    pub kind: Option<crate::EventKind>,
    pub min_level: Option<u8>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub since: Option<OffsetDateTime>,
    pub limit: Option<u32>,
}

/// An event as the manager stores and serves it. (No `deny_unknown_fields`: serde cannot combine it
/// with `flatten`, and this type is only read by our own CLI.)
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredEvent {
    #[serde(flatten)]
    pub event: Event,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
}

/// Body of every 4xx/5xx answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiError {
    pub error: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BatchDecodeError {
    #[error("batch is not valid zstd: {0}")]
    Compression(std::io::Error),
    #[error("batch decompresses to more than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("batch is not valid JSON for an event batch: {0}")]
    Json(#[from] serde_json::Error),
}

/// Encodes a batch as zstd-compressed JSON.
pub fn encode_batch(batch: &EventBatch) -> Vec<u8> {
    let json = serde_json::to_vec(batch).expect("event batches always serialize");
    zstd::bulk::compress(&json, 3).expect("in-memory zstd compression cannot fail")
}

/// Decodes a batch, refusing to inflate more than `limit` bytes (a zstd bomb must not exhaust memory).
pub fn decode_batch(compressed: &[u8], limit: usize) -> Result<EventBatch, BatchDecodeError> {
    let mut decoder =
        zstd::stream::read::Decoder::new(compressed).map_err(BatchDecodeError::Compression)?;
    let mut json = Vec::new();
    (&mut decoder)
        .take(limit as u64 + 1)
        .read_to_end(&mut json)
        .map_err(BatchDecodeError::Compression)?;
    if json.len() > limit {
        return Err(BatchDecodeError::TooLarge { limit });
    }
    Ok(serde_json::from_slice(&json)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{rules, EventKind};

    fn sample_batch(n: u64) -> EventBatch {
        let events = (1..=n)
            .map(|seq| {
                let mut e = Event::new(EventKind::Agent, rules::AGENT_STARTED, 3, "started");
                e.agent_id = "a1".into();
                e.seq = Some(seq);
                e
            })
            .collect();
        EventBatch {
            agent_id: "a1".into(),
            events,
        }
    }

    #[test]
    fn batch_survives_encode_and_decode() {
        let batch = sample_batch(100);
        let bytes = encode_batch(&batch);
        let back = decode_batch(&bytes, MAX_BATCH_DECOMPRESSED).unwrap();
        assert_eq!(back.events, batch.events);
    }

    #[test]
    fn decompression_bomb_is_refused_with_the_limit_named() {
        let bomb = zstd::bulk::compress(&vec![b' '; 10_000_000], 19).unwrap();
        assert!(bomb.len() < 10_000);
        let err = decode_batch(&bomb, 1_000_000).unwrap_err().to_string();
        assert!(err.contains("more than 1000000 bytes"), "{err}");
    }

    #[test]
    fn garbage_is_a_compression_error_not_a_panic() {
        let err = decode_batch(b"definitely not zstd", 1000)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not valid zstd"), "{err}");
    }

    #[test]
    fn valid_zstd_with_wrong_json_names_the_problem() {
        let bytes = zstd::bulk::compress(br#"{"agent_id":"a","events":[],"extra":1}"#, 3).unwrap();
        let err = decode_batch(&bytes, 1000).unwrap_err().to_string();
        assert!(err.contains("extra"), "{err}");
    }
}
