//! What the engine knows about one file system entry, and how two observations differ.

use crate::config::Attr;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::Path;

/// The kind of a directory entry. Special files are recorded (mode, owner...) but never opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDev,
    BlockDev,
}

impl FileKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::File => "file",
            FileKind::Dir => "dir",
            FileKind::Symlink => "symlink",
            FileKind::Fifo => "fifo",
            FileKind::Socket => "socket",
            FileKind::CharDev => "chardev",
            FileKind::BlockDev => "blockdev",
        }
    }

    /// From the `S_IFMT` bits of `st_mode`.
    pub fn from_mode(st_mode: u32) -> FileKind {
        match st_mode & 0o170000 {
            0o040000 => FileKind::Dir,
            0o120000 => FileKind::Symlink,
            0o010000 => FileKind::Fifo,
            0o140000 => FileKind::Socket,
            0o020000 => FileKind::CharDev,
            0o060000 => FileKind::BlockDev,
            _ => FileKind::File,
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(c: u8) -> Option<FileKind> {
        use FileKind::*;
        [File, Dir, Symlink, Fifo, Socket, CharDev, BlockDev]
            .get(c as usize)
            .copied()
    }
}

/// A 32-byte blake3 digest.
pub type Hash32 = [u8; 32];

/// Baseline or current state of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    pub kind: FileKind,
    pub size: u64,
    /// Permission and set-id/sticky bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub inode: u64,
    pub dev: u64,
    /// Content hash of regular files; `None` when not hashed (not a file, or unreadable).
    pub hash: Option<Hash32>,
    /// Target of a symlink.
    pub target: Option<Vec<u8>>,
    /// blake3 over the sorted extended attributes (names and values, ACLs included); `None` = none or unsupported.
    pub xattrs: Option<Hash32>,
}

impl FileRecord {
    /// True when re-hashing can be skipped: the cheap identity of the content is the same.
    pub fn same_content_identity(&self, other: &FileRecord) -> bool {
        self.kind == other.kind
            && self.size == other.size
            && self.mtime_ns == other.mtime_ns
            && self.ctime_ns == other.ctime_ns
            && self.inode == other.inode
            && self.dev == other.dev
    }

    pub fn is_setid(&self) -> bool {
        self.kind == FileKind::File && self.mode & 0o6000 != 0
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "type": self.kind.as_str(),
            "size": self.size,
            "mode": format!("{:04o}", self.mode),
            "uid": self.uid,
            "gid": self.gid,
            "mtime": format_ns(self.mtime_ns),
            "inode": self.inode,
        });
        if let Some(h) = &self.hash {
            v["blake3"] = Value::String(hex::encode(h));
        }
        if let Some(t) = &self.target {
            v["target"] = Value::String(display_bytes(t));
        }
        if let Some(x) = &self.xattrs {
            v["xattrs_blake3"] = Value::String(hex::encode(x));
        }
        v
    }
}

fn format_ns(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => {
            let t = t.replace_nanosecond(nanos as u32).unwrap_or(t);
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| ns.to_string())
        }
        Err(_) => ns.to_string(),
    }
}

/// Which attributes differ between `old` and `new`, restricted to those the policy checks.
/// The entry type is always compared. An unknown hash (unreadable file) never counts as a change.
pub fn compare(old: &FileRecord, new: &FileRecord, checks: &[Attr]) -> Vec<Attr> {
    let mut out = Vec::new();
    if old.kind != new.kind {
        out.push(Attr::Type);
    }
    let on = |a: Attr| checks.contains(&a);
    if on(Attr::Hash) {
        let content = match (&old.hash, &new.hash) {
            (Some(a), Some(b)) => a != b,
            _ => false,
        } || old.target != new.target;
        if content {
            out.push(Attr::Hash);
        }
    }
    // Directory sizes are file system bookkeeping, not content.
    if on(Attr::Size)
        && old.size != new.size
        && !(old.kind == FileKind::Dir && new.kind == FileKind::Dir)
    {
        out.push(Attr::Size);
    }
    if on(Attr::Mode) && old.mode != new.mode {
        out.push(Attr::Mode);
    }
    if on(Attr::Owner) && old.uid != new.uid {
        out.push(Attr::Owner);
    }
    if on(Attr::Group) && old.gid != new.gid {
        out.push(Attr::Group);
    }
    // A directory's mtime moves whenever an entry is added or removed, which is reported on its own.
    if on(Attr::Mtime) && old.mtime_ns != new.mtime_ns && new.kind != FileKind::Dir {
        out.push(Attr::Mtime);
    }
    if on(Attr::Inode) && (old.inode != new.inode || old.dev != new.dev) {
        out.push(Attr::Inode);
    }
    if on(Attr::Xattrs) && old.xattrs != new.xattrs {
        out.push(Attr::Xattrs);
    }
    out
}

/// What kind of change a set of differing attributes amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Deleted,
    /// Content (or entry type) changed.
    Modified,
    /// Only metadata (mode, owner, mtime, inode, xattrs) changed.
    Attributes,
    /// Moved: same content and inode under a new name.
    Renamed,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Deleted => "deleted",
            ChangeKind::Modified => "modified",
            ChangeKind::Attributes => "attributes",
            ChangeKind::Renamed => "renamed",
        }
    }

    /// `None` when nothing the policy checks changed.
    pub fn of_attrs(changed: &[Attr]) -> Option<ChangeKind> {
        if changed.is_empty() {
            None
        } else if changed
            .iter()
            .any(|a| matches!(a, Attr::Hash | Attr::Type | Attr::Size))
        {
            Some(ChangeKind::Modified)
        } else {
            Some(ChangeKind::Attributes)
        }
    }
}

/// Bytes as text for humans and JSON: valid UTF-8 as is, other bytes as `\xNN`, so two different names never
/// print the same and nothing is silently replaced.
pub fn display_bytes(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                s.push_str("\\\\");
            } else {
                s.push(c);
            }
        }
        for byte in chunk.invalid() {
            s.push_str(&format!("\\x{byte:02x}"));
        }
    }
    s
}

pub fn display_path(p: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    display_bytes(p.as_os_str().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn rec() -> FileRecord {
        FileRecord {
            kind: FileKind::File,
            size: 10,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime_ns: 1_700_000_000_000_000_000,
            ctime_ns: 1_700_000_000_000_000_000,
            inode: 42,
            dev: 1,
            hash: Some([1; 32]),
            target: None,
            xattrs: None,
        }
    }

    #[test]
    fn content_change_is_modified_and_mode_only_is_attributes() {
        let a = rec();
        let mut b = rec();
        b.hash = Some([2; 32]);
        let ch = compare(&a, &b, &Attr::default_set());
        assert_eq!(ch, vec![Attr::Hash]);
        assert_eq!(ChangeKind::of_attrs(&ch), Some(ChangeKind::Modified));
        let mut c = rec();
        c.mode = 0o4755;
        let ch = compare(&a, &c, &Attr::default_set());
        assert_eq!(ChangeKind::of_attrs(&ch), Some(ChangeKind::Attributes));
        assert!(c.is_setid());
    }

    #[test]
    fn unchecked_attributes_and_unknown_hashes_are_not_changes() {
        let a = rec();
        let mut b = rec();
        b.uid = 1000;
        b.hash = None;
        assert!(compare(&a, &b, &[Attr::Hash, Attr::Mode]).is_empty());
    }

    #[test]
    fn type_change_is_always_reported() {
        let a = rec();
        let mut b = rec();
        b.kind = FileKind::Symlink;
        b.hash = None;
        b.target = Some(b"/etc/passwd".to_vec());
        let ch = compare(&a, &b, &[]);
        assert_eq!(ch, vec![Attr::Type]);
    }

    #[test]
    fn directory_size_and_mtime_churn_is_ignored() {
        let mut a = rec();
        a.kind = FileKind::Dir;
        a.hash = None;
        let mut b = a.clone();
        b.size = 8192;
        b.mtime_ns += 5;
        assert!(compare(&a, &b, &Attr::default_set()).is_empty());
    }

    #[test]
    fn non_utf8_bytes_are_escaped_not_replaced() {
        assert_eq!(display_bytes(b"a\xffb"), "a\\xffb");
        assert_eq!(display_bytes(b"a\\xffb"), "a\\\\xffb");
        assert_eq!(display_bytes("é".as_bytes()), "é");
    }

    proptest! {
        #[test]
        fn display_bytes_is_injective_on_arbitrary_names(a in proptest::collection::vec(any::<u8>(), 0..24),
                                                          b in proptest::collection::vec(any::<u8>(), 0..24)) {
            if a != b {
                prop_assert_ne!(display_bytes(&a), display_bytes(&b));
            }
        }

        #[test]
        fn kind_codes_round_trip(m in any::<u32>()) {
            let k = FileKind::from_mode(m);
            prop_assert_eq!(FileKind::from_code(k.code()), Some(k));
        }
    }
}
