//! Versioned schema. Each entry runs once, in order, inside a transaction; `PRAGMA user_version` records
//! how many have run. Never edit an entry that has shipped: append a new one.

pub const MIGRATIONS: &[&str] = &[
    // 1: tokens, agents, events.
    r#"
    CREATE TABLE admin_tokens (
        id          INTEGER PRIMARY KEY,
        token_hash  TEXT NOT NULL UNIQUE,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE enroll_tokens (
        id          INTEGER PRIMARY KEY,
        token_hash  TEXT NOT NULL UNIQUE,
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL,
        uses_total  INTEGER NOT NULL,
        uses_left   INTEGER NOT NULL
    );
    CREATE TABLE agents (
        id               TEXT PRIMARY KEY,
        name             TEXT NOT NULL,
        hostname         TEXT NOT NULL,
        os               TEXT NOT NULL,
        agent_version    TEXT NOT NULL,
        cert_fingerprint TEXT NOT NULL UNIQUE,
        enrolled_at      INTEGER NOT NULL,
        last_seen        INTEGER,
        status           TEXT NOT NULL,
        acked_seq        INTEGER NOT NULL DEFAULT 0,
        instance_id      TEXT,
        region           TEXT
    );
    CREATE TABLE events (
        rowid        INTEGER PRIMARY KEY,
        id           TEXT NOT NULL,
        agent_id     TEXT NOT NULL,
        seq          INTEGER,
        ts           INTEGER NOT NULL,
        kind         TEXT NOT NULL,
        rule_id      INTEGER NOT NULL,
        level        INTEGER NOT NULL,
        title        TEXT NOT NULL,
        groups       TEXT NOT NULL,
        body         TEXT NOT NULL,
        received_at  INTEGER NOT NULL
    );
    -- Deduplication of resent batches: NULL seq (manager-raised events) never collides.
    CREATE UNIQUE INDEX events_agent_seq ON events(agent_id, seq);
    CREATE INDEX events_ts ON events(ts);
    "#,
];
