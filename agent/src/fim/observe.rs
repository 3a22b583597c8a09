//! Looking at one path: `lstat`, extended attributes, content hash. Never follows symlinks and never opens
//! anything but regular files (opening a FIFO would block the scan, a device could have side effects).

use bannin_fim::{FileKind, FileRecord};
use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Read buffer per hashing thread: big enough for few syscalls, small enough to keep RSS low.
const BUF: usize = 256 * 1024;

thread_local! {
    static BUFFER: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; BUF]);
}

pub fn record_from_metadata(md: &std::fs::Metadata) -> FileRecord {
    FileRecord {
        kind: FileKind::from_mode(md.mode()),
        size: md.size(),
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        mtime_ns: md
            .mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(md.mtime_nsec()),
        ctime_ns: md
            .ctime()
            .saturating_mul(1_000_000_000)
            .saturating_add(md.ctime_nsec()),
        inode: md.ino(),
        dev: md.dev(),
        hash: None,
        target: None,
        xattrs: None,
    }
}

/// `lstat` plus symlink target and (if asked) xattrs; no content hash yet.
pub fn stat(path: &Path, want_xattrs: bool) -> io::Result<FileRecord> {
    let md = std::fs::symlink_metadata(path)?;
    let mut rec = record_from_metadata(&md);
    if rec.kind == FileKind::Symlink {
        rec.target = Some(std::fs::read_link(path)?.as_os_str().as_bytes().to_vec());
    }
    if want_xattrs {
        rec.xattrs = xattr_digest(path);
    }
    Ok(rec)
}

fn open_regular(path: &Path) -> io::Result<File> {
    // O_NOFOLLOW: a file swapped for a symlink between lstat and open is not followed; O_NONBLOCK: a file
    // swapped for a FIFO does not hang the scan.
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

/// blake3 of the content. Fails if the entry changed identity (inode) since `rec` was taken.
pub fn hash_file(path: &Path, rec: &FileRecord) -> io::Result<[u8; 32]> {
    let mut f = open_regular(path)?;
    let md = f.metadata()?;
    if md.ino() != rec.inode || !md.file_type().is_file() {
        return Err(io::Error::other("replaced while being examined"));
    }
    let mut h = blake3::Hasher::new();
    BUFFER.with(|b| -> io::Result<()> {
        let mut buf = b.borrow_mut();
        loop {
            match f.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    h.update(&buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    })?;
    Ok(*h.finalize().as_bytes())
}

/// md5 and sha256 of the content, for comparing with package records (only done for changed files).
pub fn package_digests(path: &Path) -> io::Result<bannin_fim::ContentDigests> {
    use md5::Digest as _;
    let mut f = open_regular(path)?;
    let mut m = md5::Md5::new();
    let mut s = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        m.update(&buf[..n]);
        s.update(&buf[..n]);
    }
    Ok(bannin_fim::ContentDigests {
        md5: Some(m.finalize().into()),
        sha256: Some(s.finalize().into()),
    })
}

/// Reads a whole file up to `limit` bytes; `None` if larger.
pub fn read_capped(path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let f = open_regular(path)?;
    let mut out = Vec::new();
    f.take(limit + 1).read_to_end(&mut out)?;
    Ok((out.len() as u64 <= limit).then_some(out))
}

/// blake3 over the sorted (name, value) pairs of all extended attributes, ACLs and security labels included.
/// `None` when there are none or the file system does not support them.
pub fn xattr_digest(path: &Path) -> Option<[u8; 32]> {
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: a NULL buffer with size 0 asks for the needed size.
    let n = unsafe { libc::llistxattr(c.as_ptr(), std::ptr::null_mut(), 0) };
    if n <= 0 {
        return None;
    }
    let mut names = vec![0u8; n as usize + 256];
    // SAFETY: names is writable for names.len() bytes.
    let n = unsafe {
        libc::llistxattr(
            c.as_ptr(),
            names.as_mut_ptr() as *mut libc::c_char,
            names.len(),
        )
    };
    if n <= 0 {
        return None;
    }
    names.truncate(n as usize);
    let mut list: Vec<&[u8]> = names.split(|&b| b == 0).filter(|s| !s.is_empty()).collect();
    list.sort();
    let mut h = blake3::Hasher::new();
    for name in list {
        let cname = CString::new(name).ok()?;
        let mut val = vec![0u8; 4096];
        // SAFETY: val is writable for val.len() bytes; both strings are NUL-terminated.
        let len = unsafe {
            libc::lgetxattr(
                c.as_ptr(),
                cname.as_ptr(),
                val.as_mut_ptr() as *mut libc::c_void,
                val.len(),
            )
        };
        h.update(&(name.len() as u64).to_le_bytes());
        h.update(name);
        if len >= 0 {
            h.update(&(len as u64).to_le_bytes());
            h.update(&val[..len as usize]);
        }
    }
    Some(*h.finalize().as_bytes())
}

/// A full observation: stat, and content hash for regular files.
pub fn observe(path: &Path, want_xattrs: bool) -> io::Result<FileRecord> {
    let mut rec = stat(path, want_xattrs)?;
    if rec.kind == FileKind::File {
        rec.hash = Some(hash_file(path, &rec)?);
    }
    Ok(rec)
}
