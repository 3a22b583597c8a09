//! Content-addressed copies (by blake3) under `STATE/fim-objects/`: known-good copies of protected files and
//! the previous version of `report_changes` files, from which diffs are made.

use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub struct Objects {
    dir: PathBuf,
}

impl Objects {
    pub fn new(state_dir: &Path) -> Objects {
        Objects {
            dir: state_dir.join("fim-objects"),
        }
    }

    pub fn path_of(&self, h: &[u8; 32]) -> PathBuf {
        let hx = hex::encode(h);
        self.dir.join(&hx[..2]).join(&hx[2..])
    }

    pub fn has(&self, h: &[u8; 32]) -> bool {
        self.path_of(h).exists()
    }

    /// Copies `src` in if its content hashes to `expected` and is at most `limit` bytes. Returns whether the
    /// object is now present. A file that changed while being copied is not kept under a wrong name.
    pub fn put_file(&self, src: &Path, expected: &[u8; 32], limit: u64) -> io::Result<bool> {
        let dst = self.path_of(expected);
        if dst.exists() {
            return Ok(true);
        }
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(src)?;
        let mut data = Vec::new();
        f.take(limit + 1).read_to_end(&mut data)?;
        if data.len() as u64 > limit {
            return Ok(false);
        }
        if blake3::hash(&data).as_bytes() != expected {
            return Ok(false);
        }
        self.write_bytes(&data, expected)?;
        Ok(true)
    }

    pub fn put_bytes(&self, data: &[u8]) -> io::Result<[u8; 32]> {
        let h = *blake3::hash(data).as_bytes();
        if !self.path_of(&h).exists() {
            self.write_bytes(data, &h)?;
        }
        Ok(h)
    }

    fn write_bytes(&self, data: &[u8], h: &[u8; 32]) -> io::Result<()> {
        let dst = self.path_of(h);
        let parent = dst.parent().expect("object path has a parent");
        std::fs::create_dir_all(parent)?;
        let tmp = parent.join(format!(
            ".tmp-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &dst)
    }

    /// The object's bytes, verified against its name (a tampered or damaged copy is refused).
    pub fn get(&self, h: &[u8; 32]) -> io::Result<Vec<u8>> {
        let p = self.path_of(h);
        let data = std::fs::read(&p)?;
        if blake3::hash(&data).as_bytes() != h {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("stored copy {} is damaged (hash mismatch)", p.display()),
            ));
        }
        Ok(data)
    }

    pub fn remove(&self, h: &[u8; 32]) {
        let _ = std::fs::remove_file(self.path_of(h));
    }
}
