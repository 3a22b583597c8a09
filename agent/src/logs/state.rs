//! The collector's durable positions, in SQLite under the state dir (`logs.db`): per file
//! (device, inode) the offset to resume at and a fingerprint of its first bytes; which inputs the
//! agent has already seen (so a later first sight of a file means "new file", read from its start);
//! CloudTrail files already processed; journald cursors.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension};

/// How many leading bytes identify a file's content.
pub const FINGERPRINT_MAX: u64 = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fingerprint {
    /// Bytes hashed (less than [`FINGERPRINT_MAX`] while the file is small).
    pub len: u64,
    pub hash: [u8; 32],
}

impl Fingerprint {
    pub fn of(bytes: &[u8]) -> Fingerprint {
        let len = (bytes.len() as u64).min(FINGERPRINT_MAX);
        Fingerprint {
            len,
            hash: *blake3::hash(&bytes[..len as usize]).as_bytes(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    pub dev: u64,
    pub ino: u64,
    pub path: PathBuf,
    pub offset: u64,
    pub fp: Fingerprint,
}

pub struct StateStore {
    db: Connection,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl StateStore {
    pub fn open(path: &Path) -> Result<StateStore> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating state dir {}", dir.display()))?;
        }
        let db = Connection::open(path)
            .with_context(|| format!("opening log collector state {}", path.display()))?;
        db.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=NORMAL;
             CREATE TABLE IF NOT EXISTS files (
                dev INTEGER NOT NULL, ino INTEGER NOT NULL, path TEXT NOT NULL,
                offset INTEGER NOT NULL, fp_len INTEGER NOT NULL, fp BLOB NOT NULL,
                seen INTEGER NOT NULL, PRIMARY KEY (dev, ino));
             CREATE INDEX IF NOT EXISTS files_path ON files(path);
             CREATE TABLE IF NOT EXISTS inputs (pattern TEXT PRIMARY KEY, first_seen INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS done (path TEXT PRIMARY KEY, size INTEGER NOT NULL, at INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, cursor TEXT NOT NULL);",
        )
        .with_context(|| format!("initialising {}", path.display()))?;
        Ok(StateStore { db })
    }

    pub fn file(&self, dev: u64, ino: u64) -> Result<Option<FileRow>> {
        self.db
            .query_row(
                "SELECT path, offset, fp_len, fp FROM files WHERE dev = ?1 AND ino = ?2",
                params![dev as i64, ino as i64],
                |r| {
                    let path: String = r.get(0)?;
                    let fp: Vec<u8> = r.get(3)?;
                    let mut hash = [0u8; 32];
                    if fp.len() == 32 {
                        hash.copy_from_slice(&fp);
                    }
                    Ok(FileRow {
                        dev,
                        ino,
                        path: PathBuf::from(path),
                        offset: r.get::<_, i64>(1)? as u64,
                        fp: Fingerprint {
                            len: r.get::<_, i64>(2)? as u64,
                            hash,
                        },
                    })
                },
            )
            .optional()
            .context("reading log file position")
    }

    /// Rows last recorded under `path` (the file now there and those rotated away from it).
    pub fn files_at(&self, path: &Path) -> Result<Vec<FileRow>> {
        let mut st = self
            .db
            .prepare_cached("SELECT dev, ino FROM files WHERE path = ?1")?;
        let keys: Vec<(i64, i64)> = st
            .query_map(params![path.to_string_lossy()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        for (d, i) in keys {
            if let Some(row) = self.file(d as u64, i as u64)? {
                out.push(row);
            }
        }
        Ok(out)
    }

    /// Every path a position was recorded under.
    pub fn all_paths(&self) -> Result<Vec<PathBuf>> {
        let mut st = self.db.prepare("SELECT DISTINCT path FROM files")?;
        let v = st
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(v.into_iter().map(PathBuf::from).collect())
    }

    /// Writes positions in one transaction.
    pub fn save_files(&mut self, rows: &[FileRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let t = now();
        let tx = self.db.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO files (dev, ino, path, offset, fp_len, fp, seen) VALUES (?1,?2,?3,?4,?5,?6,?7)
                 ON CONFLICT(dev, ino) DO UPDATE SET path=excluded.path, offset=excluded.offset,
                 fp_len=excluded.fp_len, fp=excluded.fp, seen=excluded.seen",
            )?;
            for r in rows {
                st.execute(params![
                    r.dev as i64,
                    r.ino as i64,
                    r.path.to_string_lossy(),
                    r.offset as i64,
                    r.fp.len as i64,
                    &r.fp.hash[..],
                    t
                ])?;
            }
        }
        tx.commit().context("saving log file positions")
    }

    /// Forgets positions of files not seen for `days` (rotated away and deleted long ago).
    pub fn forget_older_than(&self, days: i64) -> Result<usize> {
        Ok(self.db.execute(
            "DELETE FROM files WHERE seen < ?1",
            params![now() - days * 86400],
        )?)
    }

    /// True if the agent ran with this input before (so files appearing now are new ones).
    pub fn input_known(&self, pattern: &str) -> Result<bool> {
        Ok(self
            .db
            .query_row(
                "SELECT 1 FROM inputs WHERE pattern = ?1",
                params![pattern],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    pub fn remember_input(&self, pattern: &str) -> Result<()> {
        self.db.execute(
            "INSERT OR IGNORE INTO inputs (pattern, first_seen) VALUES (?1, ?2)",
            params![pattern, now()],
        )?;
        Ok(())
    }

    pub fn done_paths(&self) -> Result<Vec<PathBuf>> {
        let mut st = self.db.prepare("SELECT path FROM done")?;
        let v = st
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(v.into_iter().map(PathBuf::from).collect())
    }

    pub fn mark_done(&self, path: &Path, size: u64) -> Result<()> {
        self.db.execute(
            "INSERT OR REPLACE INTO done (path, size, at) VALUES (?1, ?2, ?3)",
            params![path.to_string_lossy(), size as i64, now()],
        )?;
        Ok(())
    }

    pub fn cursor(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .db
            .query_row(
                "SELECT cursor FROM cursors WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn save_cursor(&self, name: &str, cursor: &str) -> Result<()> {
        self.db.execute(
            "INSERT OR REPLACE INTO cursors (name, cursor) VALUES (?1, ?2)",
            params![name, cursor],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_cursors_and_done_files_survive_reopening() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("logs.db");
        {
            let mut s = StateStore::open(&p).unwrap();
            s.save_files(&[FileRow {
                dev: 1,
                ino: 2,
                path: "/var/log/a".into(),
                offset: 42,
                fp: Fingerprint::of(b"hello"),
            }])
            .unwrap();
            s.save_cursor("j0", "s=abc").unwrap();
            s.mark_done(Path::new("/ct/x.json.gz"), 10).unwrap();
            s.remember_input("/var/log/*.log").unwrap();
        }
        let s = StateStore::open(&p).unwrap();
        let row = s.file(1, 2).unwrap().unwrap();
        assert_eq!(row.offset, 42);
        assert_eq!(row.fp, Fingerprint::of(b"hello"));
        assert_eq!(s.files_at(Path::new("/var/log/a")).unwrap(), vec![row]);
        assert_eq!(s.cursor("j0").unwrap().as_deref(), Some("s=abc"));
        assert_eq!(
            s.done_paths().unwrap(),
            vec![PathBuf::from("/ct/x.json.gz")]
        );
        assert!(s.input_known("/var/log/*.log").unwrap());
        assert!(!s.input_known("/other").unwrap());
    }
}
