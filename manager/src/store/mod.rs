//! The manager's embedded store: SQLite in WAL mode, one writer connection and one reader connection.
//! Every method is blocking; async callers go through `tokio::task::spawn_blocking`.

mod migrations;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use bannin_proto::{
    rules, AgentInfo, AgentStatus, BatchAck, Event, EventKind, EventQuery, StoredEvent,
};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use time::OffsetDateTime;

/// Most events one query may return.
pub const MAX_QUERY_LIMIT: u32 = 100_000;
pub const DEFAULT_QUERY_LIMIT: u32 = 100;

pub struct Store {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

/// Why an enrollment was refused. The messages go back to the agent, so they say what to do.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnrollRefusal {
    #[error("enrollment token is not known to this manager (create one with `bannin-manager token create`)")]
    UnknownToken,
    #[error(
        "enrollment token expired at {0}; create a new one with `bannin-manager token create`"
    )]
    Expired(String),
    #[error("enrollment token has no uses left (it allowed {0}); create a new one with `bannin-manager token create`")]
    UsedUp(i64),
}

/// What enrollment records about a new agent.
pub struct NewAgent {
    pub id: String,
    pub name: String,
    pub hostname: String,
    pub os: String,
    pub agent_version: String,
    pub cert_fingerprint: String,
    pub instance_id: Option<String>,
    pub region: Option<String>,
}

pub fn micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1000) as i64
}

pub fn from_micros(us: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(us as i128 * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn open_connection(path: &Path) -> Result<Connection> {
    let conn =
        Connection::open(path).with_context(|| format!("opening database {}", path.display()))?;
    // WAL: readers never block the writer. NORMAL: a committed batch survives a process crash; only an
    // OS crash may lose the last transactions, which agents then resend (they were not acked on disk).
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
    )
    .with_context(|| format!("configuring database {}", path.display()))?;
    Ok(conn)
}

impl Store {
    /// Opens (creating if needed) the database and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store> {
        let mut writer = open_connection(path)?;
        migrate(&mut writer).with_context(|| format!("migrating database {}", path.display()))?;
        let reader = open_connection(path)?;
        Ok(Store {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn)
    }

    pub fn add_admin_token(&self, token_hash: &str) -> Result<()> {
        self.write(|c| {
            c.execute(
                "INSERT INTO admin_tokens(token_hash, created_at) VALUES (?1, ?2)",
                params![token_hash, micros(OffsetDateTime::now_utc())],
            )?;
            Ok(())
        })
    }

    pub fn admin_token_valid(&self, token_hash: &str) -> Result<bool> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT 1 FROM admin_tokens WHERE token_hash = ?1",
                [token_hash],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
        })
    }

    pub fn create_enroll_token(
        &self,
        token_hash: &str,
        expires_at: OffsetDateTime,
        uses: u32,
    ) -> Result<()> {
        self.write(|c| {
            c.execute(
                "INSERT INTO enroll_tokens(token_hash, created_at, expires_at, uses_total, uses_left) VALUES (?1, ?2, ?3, ?4, ?4)",
                params![token_hash, micros(OffsetDateTime::now_utc()), micros(expires_at), uses],
            )?;
            Ok(())
        })
    }

    /// Consumes one use of the token and records the agent, atomically: a refused or failed enrollment
    /// leaves the token as it was.
    pub fn enroll(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
        agent: &NewAgent,
    ) -> Result<std::result::Result<(), EnrollRefusal>> {
        self.write(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let token: Option<(i64, i64, i64)> = tx
                .query_row(
                    "SELECT expires_at, uses_total, uses_left FROM enroll_tokens WHERE token_hash = ?1",
                    [token_hash],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let refusal = match token {
                None => Some(EnrollRefusal::UnknownToken),
                Some((expires, _, _)) if expires <= micros(now) => Some(EnrollRefusal::Expired(rfc3339(from_micros(expires)))),
                Some((_, total, left)) if left <= 0 => Some(EnrollRefusal::UsedUp(total)),
                Some(_) => None,
            };
            if let Some(refusal) = refusal {
                return Ok(Err(refusal));
            }
            tx.execute("UPDATE enroll_tokens SET uses_left = uses_left - 1 WHERE token_hash = ?1", [token_hash])?;
            tx.execute(
                "INSERT INTO agents(id, name, hostname, os, agent_version, cert_fingerprint, enrolled_at, status, instance_id, region)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'never', ?8, ?9)",
                params![
                    agent.id,
                    agent.name,
                    agent.hostname,
                    agent.os,
                    agent.agent_version,
                    agent.cert_fingerprint,
                    micros(now),
                    agent.instance_id,
                    agent.region
                ],
            )?;
            let mut event = Event::new(EventKind::Agent, rules::AGENT_ENROLLED, 3, format!("Agent {} enrolled", agent.name))
                .with_groups(["bannin", "agent", "enrollment"])
                .with_body(serde_json::json!({"name": agent.name, "hostname": agent.hostname, "os": agent.os}));
            event.agent_id = agent.id.clone();
            insert_event(&tx, &event, now)?;
            tx.commit()?;
            Ok(Ok(()))
        })
    }

    pub fn agent_id_by_fingerprint(&self, fingerprint: &str) -> Result<Option<String>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT id FROM agents WHERE cert_fingerprint = ?1",
                [fingerprint],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    pub fn agent(&self, id: &str) -> Result<Option<AgentInfo>> {
        self.read(|c| {
            Ok(c.query_row(
                &format!("{AGENT_SELECT} WHERE id = ?1"),
                [id],
                agent_from_row,
            )
            .optional()?)
        })
    }

    pub fn agents(&self) -> Result<Vec<AgentInfo>> {
        self.read(|c| {
            let mut stmt = c.prepare(&format!("{AGENT_SELECT} ORDER BY enrolled_at"))?;
            let rows = stmt
                .query_map([], agent_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// Stores a batch in one transaction. Events already stored (same agent and seq) are skipped, so a
    /// batch resent after a lost ack is harmless. Returns the ack for the agent.
    pub fn store_batch(
        &self,
        agent_id: &str,
        events: &[Event],
        now: OffsetDateTime,
    ) -> Result<BatchAck> {
        self.write(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut stored = 0u64;
            let mut max_seq = 0u64;
            {
                let mut stmt = tx.prepare_cached(INSERT_EVENT)?;
                for event in events {
                    let seq = event.seq.unwrap_or(0);
                    max_seq = max_seq.max(seq);
                    stored += stmt.execute(rusqlite::params_from_iter(event_params(
                        event,
                        agent_id,
                        micros(now),
                    )?))? as u64;
                }
            }
            tx.execute(
                "UPDATE agents SET acked_seq = max(acked_seq, ?2) WHERE id = ?1",
                params![agent_id, max_seq as i64],
            )?;
            let acked: i64 = tx.query_row(
                "SELECT acked_seq FROM agents WHERE id = ?1",
                [agent_id],
                |r| r.get(0),
            )?;
            tx.commit()?;
            Ok(BatchAck {
                acked_seq: acked as u64,
                stored,
                duplicates: events.len() as u64 - stored,
            })
        })
    }

    /// Records a heartbeat. Returns the event raised when an agent that was disconnected comes back.
    pub fn heartbeat(
        &self,
        agent_id: &str,
        agent_version: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Event>> {
        self.write(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let (status, name): (String, String) =
                tx.query_row("SELECT status, name FROM agents WHERE id = ?1", [agent_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            tx.execute(
                "UPDATE agents SET last_seen = ?2, status = 'connected', agent_version = ?3 WHERE id = ?1",
                params![agent_id, micros(now), agent_version],
            )?;
            let event = (status == AgentStatus::Disconnected.as_str()).then(|| {
                let mut e = Event::new(EventKind::Agent, rules::AGENT_RECONNECTED, 3, format!("Agent {name} reconnected"))
                    .with_groups(["bannin", "agent", "connectivity"]);
                e.agent_id = agent_id.to_string();
                e
            });
            if let Some(e) = &event {
                insert_event(&tx, e, now)?;
            }
            tx.commit()?;
            Ok(event)
        })
    }

    /// Marks agents whose last heartbeat is older than `silent_since` as disconnected, raising one event
    /// for each.
    pub fn mark_silent_agents_disconnected(
        &self,
        silent_since: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Vec<Event>> {
        self.write(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let silent: Vec<(String, String, i64)> = {
                let mut stmt = tx.prepare(
                    "SELECT id, name, last_seen FROM agents WHERE status = 'connected' AND last_seen < ?1",
                )?;
                let rows = stmt.query_map([micros(silent_since)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let mut events = Vec::new();
            for (id, name, last_seen) in silent {
                tx.execute("UPDATE agents SET status = 'disconnected' WHERE id = ?1", [&id])?;
                let mut e = Event::new(EventKind::Agent, rules::AGENT_DISCONNECTED, 7, format!("Agent {name} disconnected"))
                    .with_groups(["bannin", "agent", "connectivity"])
                    .with_body(serde_json::json!({"last_seen": rfc3339(from_micros(last_seen))}));
                e.agent_id = id;
                insert_event(&tx, &e, now)?;
                events.push(e);
            }
            tx.commit()?;
            Ok(events)
        })
    }

    pub fn query_events(&self, q: &EventQuery) -> Result<Vec<StoredEvent>> {
        let limit = q.limit.unwrap_or(DEFAULT_QUERY_LIMIT).min(MAX_QUERY_LIMIT);
        let mut sql = String::from(
            "SELECT id, agent_id, seq, ts, kind, rule_id, level, title, groups, body, received_at FROM events WHERE 1=1",
        );
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(agent) = &q.agent {
            args.push(agent.clone().into());
            sql += &format!(" AND agent_id = ?{}", args.len());
        }
        if let Some(kind) = q.kind {
            args.push(kind.as_str().to_string().into());
            sql += &format!(" AND kind = ?{}", args.len());
        }
        if let Some(level) = q.min_level {
            args.push((level as i64).into());
            sql += &format!(" AND level >= ?{}", args.len());
        }
        // With `since` the caller pages forward in time; without it they want the latest events. Both
        // come back oldest first, as a log reads.
        let newest_first = q.since.is_none();
        if let Some(since) = q.since {
            args.push(micros(since).into());
            sql += &format!(" AND ts >= ?{}", args.len());
        }
        sql += if newest_first {
            " ORDER BY ts DESC, rowid DESC"
        } else {
            " ORDER BY ts ASC, rowid ASC"
        };
        sql += &format!(" LIMIT {limit}");
        self.read(|c| {
            let mut stmt = c.prepare(&sql)?;
            let mut rows = stmt
                .query_map(rusqlite::params_from_iter(args.iter()), event_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            if newest_first {
                rows.reverse();
            }
            Ok(rows)
        })
    }

    /// Number of events stored for an agent (benchmarks and tests poll this).
    pub fn count_events(&self, agent_id: Option<&str>) -> Result<u64> {
        self.read(|c| {
            let n: i64 = match agent_id {
                Some(a) => c.query_row(
                    "SELECT count(*) FROM events WHERE agent_id = ?1",
                    [a],
                    |r| r.get(0),
                )?,
                None => c.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?,
            };
            Ok(n as u64)
        })
    }
}

const AGENT_SELECT: &str = "SELECT id, name, hostname, os, agent_version, status, enrolled_at, last_seen, acked_seq, instance_id, region FROM agents";

fn agent_from_row(r: &Row<'_>) -> rusqlite::Result<AgentInfo> {
    let status: String = r.get(5)?;
    Ok(AgentInfo {
        id: r.get(0)?,
        name: r.get(1)?,
        hostname: r.get(2)?,
        os: r.get(3)?,
        agent_version: r.get(4)?,
        status: AgentStatus::parse(&status).unwrap_or(AgentStatus::Never),
        enrolled_at: from_micros(r.get(6)?),
        last_seen: r.get::<_, Option<i64>>(7)?.map(from_micros),
        acked_seq: r.get::<_, i64>(8)? as u64,
        instance_id: r.get(9)?,
        region: r.get(10)?,
    })
}

fn event_from_row(r: &Row<'_>) -> rusqlite::Result<StoredEvent> {
    let id: String = r.get(0)?;
    let kind: String = r.get(4)?;
    let groups: String = r.get(8)?;
    let body: String = r.get(9)?;
    let bad = |col: usize, e: String| {
        rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, e.into())
    };
    Ok(StoredEvent {
        event: Event {
            id: id.parse().map_err(|e: uuid::Error| bad(0, e.to_string()))?,
            agent_id: r.get(1)?,
            seq: r.get::<_, Option<i64>>(2)?.map(|s| s as u64),
            timestamp: from_micros(r.get(3)?),
            kind: kind.parse().map_err(|e| bad(4, e))?,
            rule_id: r.get::<_, i64>(5)? as u64,
            level: r.get::<_, i64>(6)? as u8,
            title: r.get(7)?,
            groups: serde_json::from_str(&groups).map_err(|e| bad(8, e.to_string()))?,
            body: serde_json::from_str(&body).map_err(|e| bad(9, e.to_string()))?,
        },
        received_at: from_micros(r.get(10)?),
    })
}

const INSERT_EVENT: &str = "INSERT INTO events(id, agent_id, seq, ts, kind, rule_id, level, title, groups, body, received_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT(agent_id, seq) DO NOTHING";

fn event_params(e: &Event, agent_id: &str, received: i64) -> Result<Vec<rusqlite::types::Value>> {
    use rusqlite::types::Value;
    Ok(vec![
        Value::Text(e.id.to_string()),
        Value::Text(agent_id.to_string()),
        e.seq
            .map(|s| Value::Integer(s as i64))
            .unwrap_or(Value::Null),
        Value::Integer(micros(e.timestamp)),
        Value::Text(e.kind.as_str().to_string()),
        Value::Integer(e.rule_id as i64),
        Value::Integer(e.level as i64),
        Value::Text(e.title.clone()),
        Value::Text(serde_json::to_string(&e.groups)?),
        Value::Text(serde_json::to_string(&e.body)?),
        Value::Integer(received),
    ])
}

fn insert_event(c: &Connection, e: &Event, now: OffsetDateTime) -> Result<()> {
    let mut stmt = c.prepare_cached(INSERT_EVENT)?;
    stmt.execute(rusqlite::params_from_iter(event_params(
        e,
        &e.agent_id,
        micros(now),
    )?))?;
    Ok(())
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let current: usize =
        conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    if current > migrations::MIGRATIONS.len() {
        anyhow::bail!(
            "database schema version {current} is newer than this manager knows ({}); upgrade bannin-manager",
            migrations::MIGRATIONS.len()
        );
    }
    for (i, sql) in migrations::MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)
            .with_context(|| format!("schema migration {}", i + 1))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        (dir, store)
    }

    fn new_agent(id: &str) -> NewAgent {
        NewAgent {
            id: id.into(),
            name: format!("host-{id}"),
            hostname: "h".into(),
            os: "linux".into(),
            agent_version: "0".into(),
            cert_fingerprint: format!("fp-{id}"),
            instance_id: None,
            region: None,
        }
    }

    fn events(agent: &str, seqs: std::ops::RangeInclusive<u64>) -> Vec<Event> {
        seqs.map(|s| {
            let mut e = Event::new(EventKind::Fim, rules::FIM_ADDED, 5, format!("e{s}"));
            e.agent_id = agent.into();
            e.seq = Some(s);
            e
        })
        .collect()
    }

    #[test]
    fn reopening_runs_no_migration_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        Store::open(&path).unwrap();
        Store::open(&path).unwrap();
    }

    #[test]
    fn enrollment_token_is_consumed_per_use_and_then_refused() {
        let (_d, s) = temp_store();
        let now = OffsetDateTime::now_utc();
        s.create_enroll_token("h", now + Duration::hours(1), 2)
            .unwrap();
        assert_eq!(s.enroll("h", now, &new_agent("a")).unwrap(), Ok(()));
        assert_eq!(s.enroll("h", now, &new_agent("b")).unwrap(), Ok(()));
        assert_eq!(
            s.enroll("h", now, &new_agent("c")).unwrap(),
            Err(EnrollRefusal::UsedUp(2))
        );
        assert_eq!(
            s.enroll("nope", now, &new_agent("d")).unwrap(),
            Err(EnrollRefusal::UnknownToken)
        );
    }

    #[test]
    fn expired_token_is_refused_and_names_the_expiry() {
        let (_d, s) = temp_store();
        let now = OffsetDateTime::now_utc();
        s.create_enroll_token("h", now - Duration::seconds(1), 5)
            .unwrap();
        let refusal = s.enroll("h", now, &new_agent("a")).unwrap().unwrap_err();
        assert!(matches!(refusal, EnrollRefusal::Expired(_)));
        assert!(
            s.agents().unwrap().is_empty(),
            "a refused enrollment must not create an agent"
        );
    }

    #[test]
    fn resent_batch_is_stored_once_and_acked_again() {
        let (_d, s) = temp_store();
        let now = OffsetDateTime::now_utc();
        s.create_enroll_token("h", now + Duration::hours(1), 1)
            .unwrap();
        s.enroll("h", now, &new_agent("a")).unwrap().unwrap();
        let batch = events("a", 1..=50);
        let first = s.store_batch("a", &batch, now).unwrap();
        assert_eq!(
            first,
            BatchAck {
                acked_seq: 50,
                stored: 50,
                duplicates: 0
            }
        );
        let again = s.store_batch("a", &batch[10..], now).unwrap();
        assert_eq!(
            again,
            BatchAck {
                acked_seq: 50,
                stored: 0,
                duplicates: 40
            }
        );
        assert_eq!(
            s.count_events(Some("a")).unwrap(),
            51,
            "50 events + the enrollment event"
        );
    }

    #[test]
    fn query_filters_by_kind_level_and_since_and_returns_oldest_first() {
        let (_d, s) = temp_store();
        let now = OffsetDateTime::now_utc();
        s.create_enroll_token("h", now + Duration::hours(1), 1)
            .unwrap();
        s.enroll("h", now, &new_agent("a")).unwrap().unwrap();
        let mut batch = events("a", 1..=10);
        for (i, e) in batch.iter_mut().enumerate() {
            e.timestamp = now + Duration::seconds(i as i64);
            e.level = i as u8;
        }
        s.store_batch("a", &batch, now).unwrap();
        let q = EventQuery {
            kind: Some(EventKind::Fim),
            min_level: Some(7),
            ..Default::default()
        };
        let got: Vec<u8> = s
            .query_events(&q)
            .unwrap()
            .iter()
            .map(|e| e.event.level)
            .collect();
        assert_eq!(got, vec![7, 8, 9]);
        let q = EventQuery {
            since: Some(now + Duration::seconds(8)),
            kind: Some(EventKind::Fim),
            ..Default::default()
        };
        assert_eq!(s.query_events(&q).unwrap().len(), 2);
        let q = EventQuery {
            limit: Some(2),
            kind: Some(EventKind::Fim),
            ..Default::default()
        };
        let titles: Vec<String> = s
            .query_events(&q)
            .unwrap()
            .into_iter()
            .map(|e| e.event.title)
            .collect();
        assert_eq!(
            titles,
            vec!["e9", "e10"],
            "without since: the latest, oldest first"
        );
    }

    #[test]
    fn silent_agent_is_marked_disconnected_once_and_reconnects() {
        let (_d, s) = temp_store();
        let now = OffsetDateTime::now_utc();
        s.create_enroll_token("h", now + Duration::hours(1), 1)
            .unwrap();
        s.enroll("h", now, &new_agent("a")).unwrap().unwrap();
        s.heartbeat("a", "1", now - Duration::minutes(5)).unwrap();
        let raised = s
            .mark_silent_agents_disconnected(now - Duration::minutes(1), now)
            .unwrap();
        assert_eq!(raised.len(), 1);
        assert_eq!(raised[0].rule_id, rules::AGENT_DISCONNECTED);
        assert!(s
            .mark_silent_agents_disconnected(now - Duration::minutes(1), now)
            .unwrap()
            .is_empty());
        assert_eq!(
            s.agent("a").unwrap().unwrap().status,
            AgentStatus::Disconnected
        );
        let back = s
            .heartbeat("a", "1", now)
            .unwrap()
            .expect("reconnect event");
        assert_eq!(back.rule_id, rules::AGENT_RECONNECTED);
    }
}
