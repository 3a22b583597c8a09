//! One followed file: an open descriptor, the framer, and the tests that tell rotation apart.
//!
//! The descriptor stays open across rotations on purpose: after a rename (logrotate's default) the
//! old inode is read to its end through it before the new file at the path is opened; after a
//! copytruncate the bytes written between our last read and the truncation are taken from the
//! copy, found by its fingerprint (the first bytes, which the copy shares with what we read).

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::framer::Framer;
use super::state::{FileRow, Fingerprint, FINGERPRINT_MAX};

/// What the collector says about a file in events.
#[derive(Debug)]
pub struct SourceTag {
    pub location: String,
    pub label: Option<String>,
    pub format: &'static str,
}

pub struct Tailed {
    pub path: PathBuf,
    pub input: usize,
    pub tag: Arc<SourceTag>,
    file: File,
    pub dev: u64,
    pub ino: u64,
    pub framer: Framer,
    pub fp: Fingerprint,
    /// Offset last written to the state store.
    saved: Option<u64>,
    /// Set once the path no longer names this file: read until then, then close.
    pub retire_at: Option<Instant>,
}

/// How the file at the path relates to the open descriptor.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    Same,
    /// Same inode, now shorter than what was read (copytruncate) or with other first bytes.
    Truncated,
    /// The path names another file, or nothing (renamed or deleted).
    Replaced,
}

pub fn fingerprint_file(file: &File, len: u64) -> std::io::Result<Fingerprint> {
    let mut buf = vec![0u8; len.min(FINGERPRINT_MAX) as usize];
    let mut got = 0;
    while got < buf.len() {
        let n = file.read_at(&mut buf[got..], got as u64)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(Fingerprint::of(&buf[..got]))
}

impl Tailed {
    /// Opens `path` to be read from `offset` (the framer's settings come from `framer`).
    pub fn open(
        path: &Path,
        input: usize,
        tag: Arc<SourceTag>,
        file: File,
        framer: Framer,
    ) -> std::io::Result<Tailed> {
        let m = file.metadata()?;
        let mut t = Tailed {
            path: path.to_path_buf(),
            input,
            tag,
            file,
            dev: m.dev(),
            ino: m.ino(),
            framer,
            fp: Fingerprint::default(),
            saved: None,
            retire_at: None,
        };
        t.update_fingerprint();
        Ok(t)
    }

    /// Reads what was appended, at most `budget` bytes; returns the bytes read.
    pub fn read(
        &mut self,
        buf: &mut [u8],
        budget: usize,
        now_ms: u64,
        sink: &mut impl FnMut(&SourceTag, &str, bool),
    ) -> std::io::Result<usize> {
        let mut total = 0;
        let tag = self.tag.clone();
        while total < budget {
            let n = self.file.read_at(buf, self.framer.consumed())?;
            if n == 0 {
                break;
            }
            self.framer
                .feed(&buf[..n], now_ms, &mut |t, tr| sink(&tag, t, tr));
            total += n;
        }
        if total > 0 {
            self.update_fingerprint();
        }
        Ok(total)
    }

    pub fn update_fingerprint(&mut self) {
        let have = self.framer.consumed().min(FINGERPRINT_MAX);
        if have > self.fp.len {
            if let Ok(fp) = fingerprint_file(&self.file, have) {
                self.fp = fp;
            }
        }
    }

    /// Compares the open file with what the path names now. `deep` also re-hashes the first bytes
    /// (a truncation followed by enough writes to pass our offset leaves the size looking fine).
    pub fn check(&self, deep: bool) -> Change {
        let size = match self.file.metadata() {
            Ok(m) => m.len(),
            Err(_) => return Change::Replaced,
        };
        if size < self.framer.consumed() {
            return Change::Truncated;
        }
        if deep && self.fp.len > 0 {
            match fingerprint_file(&self.file, self.fp.len) {
                Ok(fp) if fp != self.fp => return Change::Truncated,
                _ => {}
            }
        }
        match std::fs::metadata(&self.path) {
            Ok(m) if m.dev() == self.dev && m.ino() == self.ino => Change::Same,
            _ => Change::Replaced,
        }
    }

    /// After a truncation: reads the bytes written between our last read and the truncation from
    /// the rotated copy (if one can be found), hands out everything pending, and starts over at 0.
    pub fn restart_after_truncation(
        &mut self,
        buf: &mut [u8],
        now_ms: u64,
        sink: &mut impl FnMut(&SourceTag, &str, bool),
    ) -> Option<PathBuf> {
        let tag = self.tag.clone();
        let resume = self.framer.resume_offset();
        let copy = if self.fp.len > 0 {
            find_copy(&self.path, &self.fp, resume)
        } else {
            None
        };
        if let Some((copy_path, f)) = &copy {
            tracing::debug!(path = %self.path.display(), copy = %copy_path.display(), "copytruncate: reading the rest from the copy");
            self.framer.reset(resume);
            while let Ok(n) = f.read_at(buf, self.framer.consumed()) {
                if n == 0 {
                    break;
                }
                self.framer
                    .feed(&buf[..n], now_ms, &mut |t, tr| sink(&tag, t, tr));
            }
        }
        self.framer.finish(&mut |t, tr| sink(&tag, t, tr));
        self.framer.reset(0);
        self.fp = Fingerprint::default();
        copy.map(|c| c.0)
    }

    /// Hands out the last incomplete line or record (the file will not grow any more).
    pub fn finish(&mut self, sink: &mut impl FnMut(&SourceTag, &str, bool)) {
        let tag = self.tag.clone();
        self.framer.finish(&mut |t, tr| sink(&tag, t, tr));
    }

    pub fn poll(&mut self, now_ms: u64, sink: &mut impl FnMut(&SourceTag, &str, bool)) {
        if self.framer.has_pending_record() {
            let tag = self.tag.clone();
            self.framer.poll(now_ms, &mut |t, tr| sink(&tag, t, tr));
        }
    }

    /// The position to persist, if it changed since the last save.
    pub fn dirty_row(&mut self) -> Option<FileRow> {
        let off = self.framer.resume_offset();
        if self.saved == Some(off) {
            return None;
        }
        self.saved = Some(off);
        Some(FileRow {
            dev: self.dev,
            ino: self.ino,
            path: self.path.clone(),
            offset: off,
            fp: self.fp,
        })
    }
}

fn siblings(path: &Path) -> Vec<(PathBuf, std::fs::Metadata)> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let name = name.to_string_lossy();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with(&*name) && n != name
        })
        .filter_map(|e| {
            let p = e.path();
            let m = std::fs::metadata(&p).ok()?;
            m.is_file().then_some((p, m))
        })
        .collect()
}

/// The rotated copy of `path` (`path.1`, `path-20240101`...) that starts with the bytes `fp` was
/// made of and holds at least `min_size` bytes; the newest if several.
pub fn find_copy(path: &Path, fp: &Fingerprint, min_size: u64) -> Option<(PathBuf, File)> {
    let mut best: Option<(std::time::SystemTime, PathBuf, File)> = None;
    for (p, m) in siblings(path) {
        let n = p.to_string_lossy();
        if [".gz", ".bz2", ".xz", ".zst", ".zip", ".lz4"]
            .iter()
            .any(|s| n.ends_with(s))
            || m.len() < min_size
            || m.len() < fp.len
        {
            continue;
        }
        let Ok(f) = File::open(&p) else { continue };
        if fingerprint_file(&f, fp.len).ok().as_ref() != Some(fp) {
            continue;
        }
        let mtime = m.modified().unwrap_or(std::time::UNIX_EPOCH);
        if best.as_ref().map(|b| mtime > b.0).unwrap_or(true) {
            best = Some((mtime, p, f));
        }
    }
    best.map(|(_, p, f)| (p, f))
}

/// Where the file `dev`/`ino` that used to be at `path` went (renamed next to it by a rotation).
pub fn find_renamed(path: &Path, dev: u64, ino: u64) -> Option<PathBuf> {
    siblings(path)
        .into_iter()
        .find(|(_, m)| m.dev() == dev && m.ino() == ino)
        .map(|(p, _)| p)
}
