//! The durable outbox: every event is committed to SQLite (in the state dir) before it is sent, and
//! removed only once the manager acknowledged it. Sequence numbers are assigned here, strictly
//! increasing for the life of the agent, including across restarts and after the table empties.

use std::path::Path;

use anyhow::{Context, Result};
use bannin_proto::{rules, Event, EventKind};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

/// Fraction of the cap at which a pressure warning is raised, and below which it re-arms.
const PRESSURE_HIGH: f64 = 0.8;
const PRESSURE_LOW: f64 = 0.5;

pub struct Outbox {
    conn: Connection,
    agent_id: String,
    max_events: u64,
    pending: u64,
    next_seq: u64,
    dropped_total: u64,
    pressure_raised: bool,
}

/// What happened to the events given to [`Outbox::append`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    pub accepted: u64,
    /// Refused because the outbox is full (an event reporting them was stored instead).
    pub dropped: u64,
}

impl Outbox {
    pub fn open(path: &Path, agent_id: &str, max_events: u64) -> Result<Outbox> {
        let conn =
            Connection::open(path).with_context(|| format!("opening outbox {}", path.display()))?;
        // WAL + NORMAL: a committed append survives the agent being killed; the manager dedupes resends.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; PRAGMA cache_size = -512;
             CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, event TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);",
        )
        .with_context(|| format!("outbox {} is not a usable SQLite database", path.display()))?;
        let last_seq: i64 = conn
            .query_row("SELECT value FROM meta WHERE key = 'last_seq'", [], |r| {
                r.get(0)
            })
            .optional()?
            .unwrap_or(0);
        let max_row: i64 =
            conn.query_row("SELECT coalesce(max(seq), 0) FROM outbox", [], |r| r.get(0))?;
        let pending: i64 = conn.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?;
        Ok(Outbox {
            conn,
            agent_id: agent_id.to_string(),
            max_events,
            pending: pending as u64,
            next_seq: last_seq.max(max_row) as u64 + 1,
            dropped_total: 0,
            pressure_raised: false,
        })
    }

    pub fn pending(&self) -> u64 {
        self.pending
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped_total
    }

    /// Stores events in one transaction, assigning agent id and sequence. When the outbox is full the
    /// excess is refused, counted, and reported by an event stored beyond the cap (so the report itself
    /// is never lost).
    pub fn append(&mut self, events: Vec<Event>) -> Result<AppendOutcome> {
        let room = self.max_events.saturating_sub(self.pending);
        let total = events.len() as u64;
        let accepted = total.min(room);
        let dropped = total - accepted;
        let mut to_store: Vec<Event> = events.into_iter().take(accepted as usize).collect();
        if dropped > 0 {
            self.dropped_total += dropped;
            to_store.push(
                Event::new(
                    EventKind::Agent,
                    rules::OUTBOX_DROPPED,
                    12,
                    format!("Outbox full: {dropped} events dropped (cap {} events)", self.max_events),
                )
                .with_groups(["bannin", "agent", "outbox"])
                .with_body(serde_json::json!({"dropped": dropped, "dropped_total": self.dropped_total, "cap": self.max_events})),
            );
        }
        let fill = (self.pending + to_store.len() as u64) as f64 / self.max_events as f64;
        if fill >= PRESSURE_HIGH && !self.pressure_raised {
            self.pressure_raised = true;
            to_store.push(
                Event::new(
                    EventKind::Agent,
                    rules::OUTBOX_PRESSURE,
                    10,
                    format!(
                        "Outbox {:.0}% full: the manager is not keeping up or unreachable",
                        fill * 100.0
                    ),
                )
                .with_groups(["bannin", "agent", "outbox"])
                .with_body(serde_json::json!({"pending": self.pending, "cap": self.max_events})),
            );
        }
        self.store(to_store)?;
        Ok(AppendOutcome { accepted, dropped })
    }

    fn store(&mut self, mut events: Vec<Event>) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut seq = self.next_seq;
        {
            let mut stmt = tx.prepare_cached("INSERT INTO outbox(seq, event) VALUES (?1, ?2)")?;
            for event in &mut events {
                event.agent_id = self.agent_id.clone();
                event.seq = Some(seq);
                if let Err(problem) = event.validate() {
                    // Our own sources made it; clamp rather than poison the queue, and say so.
                    tracing::warn!("event {}: {problem}; clamped", event.id);
                    event.level = event.level.min(bannin_proto::MAX_LEVEL);
                    event.title.truncate(4096);
                    event.groups.truncate(64);
                }
                stmt.execute(params![seq as i64, serde_json::to_string(event)?])?;
                seq += 1;
            }
        }
        tx.execute(
            "INSERT INTO meta(key, value) VALUES ('last_seq', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [(seq - 1) as i64],
        )?;
        tx.commit().context("committing events to the outbox")?;
        self.next_seq = seq;
        self.pending += events.len() as u64;
        Ok(())
    }

    /// The oldest unacknowledged events, in sequence order.
    pub fn peek(&self, max_events: usize) -> Result<Vec<Event>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT event FROM outbox ORDER BY seq LIMIT ?1")?;
        let rows = stmt.query_map([max_events as i64], |r| r.get::<_, String>(0))?;
        let mut events = Vec::new();
        for row in rows {
            let text = row?;
            match serde_json::from_str(&text) {
                Ok(e) => events.push(e),
                // Only our own code writes here; a row that no longer parses (disk corruption, a
                // downgrade) is reported rather than blocking delivery forever.
                Err(e) => tracing::error!("outbox row is unreadable and will be skipped: {e}"),
            }
        }
        Ok(events)
    }

    /// Forgets everything up to and including `seq`, which the manager has stored.
    pub fn ack(&mut self, seq: u64) -> Result<u64> {
        let removed =
            self.conn
                .execute("DELETE FROM outbox WHERE seq <= ?1", [seq as i64])? as u64;
        self.pending = self.pending.saturating_sub(removed);
        if self.pressure_raised && (self.pending as f64) < self.max_events as f64 * PRESSURE_LOW {
            self.pressure_raised = false;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(i: usize) -> Event {
        Event::new(EventKind::Fim, rules::FIM_ADDED, 5, format!("e{i}"))
    }

    #[test]
    fn sequence_keeps_increasing_across_reopen_after_everything_was_acked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.db");
        let mut o = Outbox::open(&path, "a", 1000).unwrap();
        o.append((0..3).map(ev).collect()).unwrap();
        o.ack(3).unwrap();
        assert_eq!(o.pending(), 0);
        drop(o);
        let mut o = Outbox::open(&path, "a", 1000).unwrap();
        o.append(vec![ev(9)]).unwrap();
        let got = o.peek(10).unwrap();
        assert_eq!(got[0].seq, Some(4));
        assert_eq!(got[0].agent_id, "a");
    }

    #[test]
    fn unacked_events_survive_reopen_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.db");
        let mut o = Outbox::open(&path, "a", 1000).unwrap();
        o.append((0..10).map(ev).collect()).unwrap();
        o.ack(4).unwrap();
        drop(o);
        let o = Outbox::open(&path, "a", 1000).unwrap();
        assert_eq!(o.pending(), 6);
        let seqs: Vec<u64> = o
            .peek(100)
            .unwrap()
            .iter()
            .map(|e| e.seq.unwrap())
            .collect();
        assert_eq!(seqs, vec![5, 6, 7, 8, 9, 10]);
    }

    #[test]
    fn full_outbox_refuses_the_excess_and_stores_an_event_counting_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(&dir.path().join("o.db"), "a", 1000).unwrap();
        let out = o.append((0..1200).map(ev).collect()).unwrap();
        assert_eq!(
            out,
            AppendOutcome {
                accepted: 1000,
                dropped: 200
            }
        );
        let all = o.peek(5000).unwrap();
        let dropped: Vec<&Event> = all
            .iter()
            .filter(|e| e.rule_id == rules::OUTBOX_DROPPED)
            .collect();
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].body["dropped"], 200);
        assert!(
            all.iter().any(|e| e.rule_id == rules::OUTBOX_PRESSURE),
            "pressure warning expected"
        );
    }

    #[test]
    fn pressure_warning_is_raised_once_until_the_outbox_drains() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(&dir.path().join("o.db"), "a", 1000).unwrap();
        o.append((0..850).map(ev).collect()).unwrap();
        o.append((0..10).map(ev).collect()).unwrap();
        let count = |o: &Outbox| {
            o.peek(5000)
                .unwrap()
                .iter()
                .filter(|e| e.rule_id == rules::OUTBOX_PRESSURE)
                .count()
        };
        assert_eq!(count(&o), 1);
        o.ack(900).unwrap();
        o.append((0..850).map(ev).collect()).unwrap();
        assert_eq!(count(&o), 1, "re-armed after draining, raised again");
    }

    #[test]
    fn corrupt_outbox_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.db");
        std::fs::write(
            &path,
            b"this is not sqlite at all, just text that is long enough to be a header....",
        )
        .unwrap();
        let err = Outbox::open(&path, "a", 1000).err().unwrap();
        assert!(format!("{err:#}").contains("outbox"), "{err:#}");
    }
}
