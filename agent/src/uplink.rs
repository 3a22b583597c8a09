//! The agent's side of the wire: mutually authenticated HTTPS to the manager, batches of events
//! (zstd JSON) and heartbeats.

use std::time::Duration;

use anyhow::{Context, Result};
use bannin_proto::{
    encode_batch, ApiError, BatchAck, Event, EventBatch, Heartbeat, HeartbeatReply,
    BATCH_CONTENT_TYPE,
};

use crate::identity::Identity;

pub struct Uplink {
    client: reqwest::Client,
    base: String,
    agent_id: String,
}

/// A failed exchange, described for the log.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SendError(pub String);

/// reqwest hides the interesting part (a TLS alert, a refused connection) in its source chain.
pub fn describe_error(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

impl Uplink {
    pub fn new(identity: &Identity, manager_url: &str) -> Result<Uplink> {
        let tls = bannin_pki::client_config_trusting(&identity.ca_pem, Some(&identity.client))
            .context(
                "loading the agent's certificate and the manager's CA from the state directory",
            )?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .context("building the HTTPS client")?;
        Ok(Uplink {
            client,
            base: manager_url.trim_end_matches('/').to_string(),
            agent_id: identity.agent_id.clone(),
        })
    }

    async fn answer<T: serde::de::DeserializeOwned>(
        resp: reqwest::Response,
        what: &str,
    ) -> Result<T, SendError> {
        let status = resp.status();
        if status.is_success() {
            return resp.json().await.map_err(|e| {
                SendError(format!("{what}: unreadable answer: {}", describe_error(&e)))
            });
        }
        let text = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ApiError>(&text)
            .map(|e| e.error)
            .unwrap_or(text);
        Err(SendError(format!(
            "{what}: manager answered {status}: {message}"
        )))
    }

    pub async fn send_batch(&self, events: Vec<Event>) -> Result<BatchAck, SendError> {
        let batch = EventBatch {
            agent_id: self.agent_id.clone(),
            events,
        };
        let body = tokio::task::spawn_blocking(move || encode_batch(&batch))
            .await
            .map_err(|e| SendError(format!("compressing a batch: {e}")))?;
        let resp = self
            .client
            .post(format!("{}/api/v1/events", self.base))
            .header(reqwest::header::CONTENT_TYPE, BATCH_CONTENT_TYPE)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                SendError(format!(
                    "sending events to {}: {}",
                    self.base,
                    describe_error(&e)
                ))
            })?;
        Self::answer(resp, "sending events").await
    }

    pub async fn heartbeat(&self, hb: &Heartbeat) -> Result<HeartbeatReply, SendError> {
        let resp = self
            .client
            .post(format!("{}/api/v1/heartbeat", self.base))
            .json(hb)
            .send()
            .await
            .map_err(|e| {
                SendError(format!(
                    "heartbeat to {}: {}",
                    self.base,
                    describe_error(&e)
                ))
            })?;
        Self::answer(resp, "heartbeat").await
    }
}

/// Exponential backoff with jitter, so a fleet does not hammer a manager that just came back.
pub struct Backoff {
    current: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            current: min,
            min,
            max,
        }
    }

    pub fn reset(&mut self) {
        self.current = self.min;
    }

    /// The next wait: the current delay +-20%, then doubles it up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let jitter = (bannin_pki::random_bytes::<1>()[0] as f64 / 255.0 - 0.5) * 0.4;
        let delay = self.current.mul_f64(1.0 + jitter);
        self.current = (self.current * 2).min(self.max);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::Backoff;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let delays: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        assert!(delays[0] <= Duration::from_millis(120) && delays[0] >= Duration::from_millis(80));
        assert!(
            delays[7] <= Duration::from_millis(1200) && delays[7] >= Duration::from_millis(800)
        );
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(120));
    }
}
