use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// Highest alert level, as on the OSSEC/Wazuh scale (0 = ignore, 15 = most severe).
pub const MAX_LEVEL: u8 = 15;

/// Which part of the agent produced an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// File integrity monitoring.
    Fim,
    /// Log inspection.
    Log,
    /// Network capture and deep packet inspection.
    Net,
    /// The agent itself: lifecycle, enrollment, outbox pressure, connectivity.
    Agent,
}

impl EventKind {
    pub const ALL: [EventKind; 4] = [
        EventKind::Fim,
        EventKind::Log,
        EventKind::Net,
        EventKind::Agent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Fim => "fim",
            EventKind::Log => "log",
            EventKind::Net => "net",
            EventKind::Agent => "agent",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EventKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!("unknown event kind `{s}` (expected one of fim, log, net, agent)")
            })
    }
}

/// One security-relevant observation. Every source (FIM, logs, network, the agent itself) emits this
/// shape; what differs between kinds lives in `body`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Globally unique id (UUID v7, so ids sort by creation time).
    pub id: Uuid,
    /// The agent that observed it; empty for events the manager raises about an agent before it has one.
    pub agent_id: String,
    /// Per-agent, strictly increasing delivery sequence, assigned when the event enters the outbox.
    /// `None` for events the manager raises itself (for example "agent disconnected").
    pub seq: Option<u64>,
    /// When it happened (the log's own time where it has one), RFC 3339 UTC.
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    pub kind: EventKind,
    pub rule_id: u64,
    /// 0-15, the OSSEC scale.
    pub level: u8,
    pub title: String,
    #[serde(default)]
    pub groups: Vec<String>,
    /// Kind-specific details (paths and hashes, log fields, packet metadata...).
    #[serde(default)]
    pub body: serde_json::Value,
}

impl Event {
    /// A new event stamped now, not yet assigned to an agent or a sequence.
    pub fn new(kind: EventKind, rule_id: u64, level: u8, title: impl Into<String>) -> Event {
        Event {
            id: Uuid::now_v7(),
            agent_id: String::new(),
            seq: None,
            timestamp: now_utc_seconds_precision(),
            kind,
            rule_id,
            level: level.min(MAX_LEVEL),
            title: title.into(),
            groups: Vec::new(),
            body: serde_json::Value::Null,
        }
    }

    pub fn with_groups<I, S>(mut self, groups: I) -> Event
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    pub fn with_body(mut self, body: serde_json::Value) -> Event {
        self.body = body;
        self
    }

    pub fn with_timestamp(mut self, timestamp: OffsetDateTime) -> Event {
        self.timestamp = timestamp;
        self
    }

    /// Checks what serde cannot: the level range and that text fields are not absurdly large.
    pub fn validate(&self) -> Result<(), String> {
        if self.level > MAX_LEVEL {
            return Err(format!(
                "event {}: level {} is above {MAX_LEVEL}",
                self.id, self.level
            ));
        }
        if self.title.len() > 4096 {
            return Err(format!(
                "event {}: title is {} bytes, the limit is 4096",
                self.id,
                self.title.len()
            ));
        }
        if self.groups.len() > 64 {
            return Err(format!(
                "event {}: {} groups, the limit is 64",
                self.id,
                self.groups.len()
            ));
        }
        Ok(())
    }
}

/// RFC 3339 with microseconds is what we store; nanoseconds would not survive PostgreSQL later.
fn now_utc_seconds_precision() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1000 * 1000)
        .unwrap_or(now)
}

/// Rule ids of the events the agent and manager raise about themselves. They follow OSSEC's numbering
/// for the same situations (500-series), so operators' existing filters keep working.
pub mod rules {
    pub const AGENT_ENROLLED: u64 = 501;
    pub const AGENT_DISCONNECTED: u64 = 504;
    pub const AGENT_STARTED: u64 = 503;
    pub const AGENT_STOPPED: u64 = 506;
    pub const AGENT_RECONNECTED: u64 = 505;
    pub const OUTBOX_PRESSURE: u64 = 510;
    pub const OUTBOX_DROPPED: u64 = 511;
    pub const WATCHER_ERROR: u64 = 512;
    /// File integrity: content changed (OSSEC 550).
    pub const FIM_MODIFIED: u64 = 550;
    /// File integrity: file deleted (OSSEC 553).
    pub const FIM_DELETED: u64 = 553;
    /// File integrity: file added (OSSEC 554).
    pub const FIM_ADDED: u64 = 554;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_round_trips_through_json_with_rfc3339_utc_timestamp() {
        let e = Event::new(EventKind::Fim, rules::FIM_ADDED, 5, "File added")
            .with_groups(["syscheck"])
            .with_body(serde_json::json!({"path": "/srv/www/index.html"}));
        let text = serde_json::to_string(&e).unwrap();
        assert!(text.contains("\"kind\":\"fim\""), "{text}");
        let ts = serde_json::from_str::<serde_json::Value>(&text).unwrap()["timestamp"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(ts.ends_with('Z'), "timestamp must be UTC: {ts}");
        let back: Event = serde_json::from_str(&text).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn unknown_event_fields_are_refused() {
        let e = Event::new(EventKind::Agent, 1, 3, "x");
        let mut v = serde_json::to_value(&e).unwrap();
        v["surprise"] = serde_json::json!(1);
        let err = serde_json::from_value::<Event>(v).unwrap_err().to_string();
        assert!(err.contains("surprise"), "{err}");
    }

    #[test]
    fn level_is_capped_at_construction_and_checked_on_validation() {
        assert_eq!(Event::new(EventKind::Log, 1, 99, "x").level, MAX_LEVEL);
        let mut e = Event::new(EventKind::Log, 1, 3, "x");
        e.level = 16;
        assert!(e.validate().unwrap_err().contains("level 16"));
    }

    #[test]
    fn event_kind_parses_and_rejects_with_the_allowed_values() {
        assert_eq!("net".parse::<EventKind>().unwrap(), EventKind::Net);
        assert!("disk"
            .parse::<EventKind>()
            .unwrap_err()
            .contains("fim, log, net, agent"));
    }
}
