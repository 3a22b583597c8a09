//! The baseline in SQLite: one row per entry keyed by (directory, name), so a scan fetches a whole
//! directory's baseline in one query, and protected known-good copies.

use bannin_fim::{events, FileKind, FileRecord};
use bannin_proto::Event;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};
use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub const DB_FILE: &str = "fim.db";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS files(
    dir BLOB NOT NULL, name BLOB NOT NULL,
    kind INTEGER NOT NULL, size INTEGER NOT NULL, mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL,
    mtime INTEGER NOT NULL, ctime INTEGER NOT NULL, ino INTEGER NOT NULL, dev INTEGER NOT NULL,
    hash BLOB, target BLOB, xattrs BLOB,
    PRIMARY KEY(dir, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS protected(
    path BLOB PRIMARY KEY NOT NULL, hash BLOB, mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL,
    kind INTEGER NOT NULL, target BLOB) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY NOT NULL, v TEXT NOT NULL);
";

/// Splits a path into the (dir, name) key. The root `/` is ("", "/").
pub fn split(path: &Path) -> (&[u8], &[u8]) {
    let b = path.as_os_str().as_bytes();
    match b.iter().rposition(|&c| c == b'/') {
        Some(0) if b.len() == 1 => (b"", b"/"),
        Some(0) => (b"/", &b[1..]),
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b"", b),
    }
}

pub fn join(dir: &[u8], name: &[u8]) -> PathBuf {
    let mut v = dir.to_vec();
    if !v.is_empty() && !v.ends_with(b"/") {
        v.push(b'/');
    }
    v.extend_from_slice(name);
    PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(v))
}

/// Upper bound of the key range of everything strictly below `dir` (`'/' + 1 == '0'`).
fn subtree_bounds(dir: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let base = if dir == b"/" {
        Vec::new()
    } else {
        dir.to_vec()
    };
    let mut lo = base.clone();
    lo.push(b'/');
    let mut hi = base;
    hi.push(b'0');
    (lo, hi)
}

fn hash_col(v: Option<Vec<u8>>) -> Option<[u8; 32]> {
    v.and_then(|b| b.try_into().ok())
}

fn row_record(r: &Row<'_>, o: usize) -> rusqlite::Result<FileRecord> {
    let kind: u8 = r.get(o)?;
    Ok(FileRecord {
        kind: FileKind::from_code(kind).unwrap_or(FileKind::File),
        size: r.get::<_, i64>(o + 1)? as u64,
        mode: r.get(o + 2)?,
        uid: r.get(o + 3)?,
        gid: r.get(o + 4)?,
        mtime_ns: r.get(o + 5)?,
        ctime_ns: r.get(o + 6)?,
        inode: r.get::<_, i64>(o + 7)? as u64,
        dev: r.get::<_, i64>(o + 8)? as u64,
        hash: hash_col(r.get(o + 9)?),
        target: r.get(o + 10)?,
        xattrs: hash_col(r.get(o + 11)?),
    })
}

const COLS: &str = "kind, size, mode, uid, gid, mtime, ctime, ino, dev, hash, target, xattrs";

/// A protected file's known-good state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protected {
    pub hash: Option<[u8; 32]>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub kind: FileKind,
    pub target: Option<Vec<u8>>,
}

pub struct Store {
    pub conn: Connection,
    pub path: PathBuf,
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

impl Store {
    /// Opens (creating) the baseline under `state_dir`. A database that cannot be used is moved aside and
    /// replaced; the returned event says so, and the caller takes a new baseline.
    pub fn open(state_dir: &Path) -> anyhow::Result<(Store, Option<Event>)> {
        std::fs::create_dir_all(state_dir)
            .map_err(|e| anyhow::anyhow!("cannot create state dir {}: {e}", state_dir.display()))?;
        let path = state_dir.join(DB_FILE);
        match Self::try_open(&path) {
            Ok(s) => Ok((s, None)),
            Err(e) => {
                let reason = e.to_string();
                let stamp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let aside = state_dir.join(format!("{DB_FILE}.corrupt-{stamp}"));
                std::fs::rename(&path, &aside).map_err(|e2| {
                    anyhow::anyhow!(
                        "baseline {} is unusable ({reason}) and cannot be moved aside: {e2}",
                        path.display()
                    )
                })?;
                for ext in ["-wal", "-shm"] {
                    let _ = std::fs::remove_file(state_dir.join(format!("{DB_FILE}{ext}")));
                }
                let s = Self::try_open(&path).map_err(|e| {
                    anyhow::anyhow!("cannot create a new baseline {}: {e}", path.display())
                })?;
                let ev = events::store_reset_event(&path, &reason, Some(&aside));
                Ok((s, Some(ev)))
            }
        }
    }

    fn try_open(path: &Path) -> rusqlite::Result<Store> {
        let conn = Connection::open(path)?;
        configure(&conn)?;
        conn.execute_batch(SCHEMA)?;
        // Creating the schema fails on a file that is not a database. A full `quick_check` would read every
        // page at each start (a third of an unchanged re-scan); damage deeper in the file surfaces as an error
        // on the directory it affects, and the scan goes on.
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// A second connection for a scan worker (reads only).
    pub fn reader(&self) -> rusqlite::Result<Connection> {
        let c = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        c.busy_timeout(std::time::Duration::from_secs(30))?;
        Ok(c)
    }

    pub fn get(&self, path: &Path) -> rusqlite::Result<Option<FileRecord>> {
        get_with(&self.conn, path)
    }

    pub fn put(&self, path: &Path, r: &FileRecord) -> rusqlite::Result<()> {
        let (d, n) = split(path);
        put_key(&self.conn, d, n, r)
    }

    pub fn delete(&self, path: &Path) -> rusqlite::Result<()> {
        let (d, n) = split(path);
        self.conn
            .prepare_cached("DELETE FROM files WHERE dir = ?1 AND name = ?2")?
            .execute(params![d, n])?;
        Ok(())
    }

    /// Every record strictly below `dir`, then removes them.
    pub fn take_subtree(&self, dir: &Path) -> rusqlite::Result<Vec<(PathBuf, FileRecord)>> {
        let out = subtree(&self.conn, dir)?;
        let d = dir.as_os_str().as_bytes();
        let (lo, hi) = subtree_bounds(d);
        self.conn.execute(
            "DELETE FROM files WHERE dir = ?1 OR (dir >= ?2 AND dir < ?3)",
            params![d, lo, hi],
        )?;
        Ok(out)
    }

    pub fn meta(&self, k: &str) -> rusqlite::Result<Option<String>> {
        self.conn
            .query_row("SELECT v FROM meta WHERE k = ?1", [k], |r| r.get(0))
            .optional()
    }

    pub fn set_meta(&self, k: &str, v: &str) -> rusqlite::Result<()> {
        self.conn
            .execute("INSERT OR REPLACE INTO meta(k, v) VALUES (?1, ?2)", [k, v])?;
        Ok(())
    }

    pub fn protected(&self, path: &Path) -> rusqlite::Result<Option<Protected>> {
        self.conn
            .query_row(
                "SELECT hash, mode, uid, gid, kind, target FROM protected WHERE path = ?1",
                [path.as_os_str().as_bytes()],
                |r| {
                    Ok(Protected {
                        hash: hash_col(r.get(0)?),
                        mode: r.get(1)?,
                        uid: r.get(2)?,
                        gid: r.get(3)?,
                        kind: FileKind::from_code(r.get(4)?).unwrap_or(FileKind::File),
                        target: r.get(5)?,
                    })
                },
            )
            .optional()
    }

    pub fn set_protected(&self, path: &Path, p: &Protected) -> rusqlite::Result<()> {
        self.conn.prepare_cached("INSERT OR REPLACE INTO protected(path, hash, mode, uid, gid, kind, target) VALUES (?1,?2,?3,?4,?5,?6,?7)")?.execute(params![
            path.as_os_str().as_bytes(),
            p.hash.as_ref().map(|h| &h[..]),
            p.mode,
            p.uid,
            p.gid,
            p.kind.code(),
            p.target
        ])?;
        Ok(())
    }

    /// Whether any hash is still referenced by a protected entry (objects that are must not be deleted).
    pub fn hash_is_protected(&self, h: &[u8; 32]) -> rusqlite::Result<bool> {
        self.conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM protected WHERE hash = ?1)",
            [&h[..]],
            |r| r.get(0),
        )
    }

    /// Forgets everything recorded at or below `root` (files and protected entries), for a new baseline.
    pub fn clear_root(&self, root: &Path) -> rusqlite::Result<()> {
        let b = root.as_os_str().as_bytes();
        let (lo, hi) = subtree_bounds(b);
        let (d, n) = split(root);
        self.conn.execute("DELETE FROM files WHERE (dir = ?1 AND name = ?2) OR dir = ?3 OR (dir >= ?4 AND dir < ?5)", params![d, n, b, lo, hi])?;
        self.conn.execute(
            "DELETE FROM protected WHERE path = ?1 OR (path >= ?2 AND path < ?3)",
            params![b, lo, hi],
        )?;
        Ok(())
    }

    pub fn count(&self) -> rusqlite::Result<u64> {
        self.conn
            .query_row("SELECT COUNT(*) FROM files", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
    }
}

pub fn get_with(conn: &Connection, path: &Path) -> rusqlite::Result<Option<FileRecord>> {
    let (d, n) = split(path);
    conn.prepare_cached(&format!(
        "SELECT {COLS} FROM files WHERE dir = ?1 AND name = ?2"
    ))?
    .query_row(params![d, n], |r| row_record(r, 0))
    .optional()
}

pub fn put_key(conn: &Connection, d: &[u8], n: &[u8], r: &FileRecord) -> rusqlite::Result<()> {
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO files(dir, name, {COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)"
    ))?
    .execute(params![
        d,
        n,
        r.kind.code(),
        r.size as i64,
        r.mode,
        r.uid,
        r.gid,
        r.mtime_ns,
        r.ctime_ns,
        r.inode as i64,
        r.dev as i64,
        r.hash.as_ref().map(|h| &h[..]),
        r.target,
        r.xattrs.as_ref().map(|h| &h[..]),
    ])?;
    Ok(())
}

pub fn delete_key(conn: &Connection, d: &[u8], n: &[u8]) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM files WHERE dir = ?1 AND name = ?2")?
        .execute(params![d, n])?;
    Ok(())
}

/// The baseline entries of one directory, by name.
pub fn children(conn: &Connection, dir: &Path) -> rusqlite::Result<HashMap<Vec<u8>, FileRecord>> {
    let mut st = conn.prepare_cached(&format!("SELECT name, {COLS} FROM files WHERE dir = ?1"))?;
    let rows = st.query_map([dir.as_os_str().as_bytes()], |r| {
        Ok((r.get::<_, Vec<u8>>(0)?, row_record(r, 1)?))
    })?;
    rows.collect()
}

/// Every record strictly below `dir`.
pub fn subtree(conn: &Connection, dir: &Path) -> rusqlite::Result<Vec<(PathBuf, FileRecord)>> {
    let d = dir.as_os_str().as_bytes();
    let (lo, hi) = subtree_bounds(d);
    let mut st = conn.prepare_cached(&format!(
        "SELECT dir, name, {COLS} FROM files WHERE dir = ?1 OR (dir >= ?2 AND dir < ?3) ORDER BY dir, name"
    ))?;
    let rows = st.query_map(params![d, lo, hi], |r| {
        let dd: Vec<u8> = r.get(0)?;
        let nn: Vec<u8> = r.get(1)?;
        Ok((join(&dd, &nn), row_record(r, 2)?))
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_and_join_back() {
        for p in ["/", "/etc", "/etc/passwd", "/a/b/c"] {
            let (d, n) = split(Path::new(p));
            assert_eq!(join(d, n), PathBuf::from(p), "{p}");
        }
    }

    #[test]
    fn garbage_database_is_moved_aside_with_an_event() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DB_FILE), vec![0x5a; 8192]).unwrap();
        let (s, ev) = Store::open(dir.path()).unwrap();
        let ev = ev.expect("reset event");
        assert_eq!(ev.rule_id, bannin_fim::rules::FIM_STORE_RESET);
        assert_eq!(s.count().unwrap(), 0);
        let moved = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().contains("corrupt"));
        assert!(moved);
    }

    #[test]
    fn subtree_takes_descendants_only() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(dir.path()).unwrap();
        let r = crate::fim::observe::stat(dir.path(), false).unwrap();
        for p in ["/a", "/a/x", "/a/b/y", "/ab", "/a0/z"] {
            s.put(Path::new(p), &r).unwrap();
        }
        let got: Vec<PathBuf> = s
            .take_subtree(Path::new("/a"))
            .unwrap()
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(got, vec![PathBuf::from("/a/x"), PathBuf::from("/a/b/y")]);
        assert!(s.get(Path::new("/ab")).unwrap().is_some());
        assert!(s.get(Path::new("/a")).unwrap().is_some());
    }
}
