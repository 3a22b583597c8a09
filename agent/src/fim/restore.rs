//! Putting a protected file back: content from the known-good copy (or the git checkout), then mode and
//! owner. The file is written next to the target and renamed over it, so readers never see half a file.

use super::objects::Objects;
use super::observe;
use super::store::{Protected, Store};
use bannin_fim::{display_path, FileKind, FileRecord, Policy};
use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Where the known-good content comes from, for the event.
pub fn source_name(policy: &Policy, path: &Path) -> String {
    match policy
        .root_for(path)
        .and_then(|r| r.spec.git_checkout.clone())
    {
        Some(g) => format!("git checkout {}", g.display()),
        None => "protected copy".into(),
    }
}

fn lchown(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: c is a valid NUL-terminated path.
    if unsafe { libc::lchown(c.as_ptr(), uid, gid) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Restores `path` and records the restored state in the baseline. Errors say what is wrong in words.
pub fn restore(
    policy: &Policy,
    store: &Store,
    objects: &Objects,
    path: &Path,
) -> Result<FileRecord, String> {
    let shown = display_path(path);
    let root = policy
        .root_for(path)
        .ok_or_else(|| format!("{shown} is not under any configured FIM path"))?;
    if !root.spec.protect {
        return Err(format!(
            "{shown} is under {} which is not marked `protect = true`",
            root.root.display()
        ));
    }
    let known = store
        .protected(path)
        .map_err(|e| format!("baseline database: {e}"))?;
    let (content, want): (Option<Vec<u8>>, Protected) = if let Some(git) = &root.spec.git_checkout {
        let rel = path
            .strip_prefix(&root.root)
            .map_err(|_| format!("{shown} is outside {}", root.root.display()))?;
        let src = git.join(rel);
        let md = std::fs::symlink_metadata(&src)
            .map_err(|e| format!("source of truth {}: {e}", src.display()))?;
        let rec = observe::record_from_metadata(&md);
        let mut want = known.clone().unwrap_or(Protected {
            hash: None,
            mode: rec.mode,
            uid: rec.uid,
            gid: rec.gid,
            kind: rec.kind,
            target: None,
        });
        want.kind = rec.kind;
        if known.is_none() {
            want.mode = rec.mode;
        }
        match rec.kind {
            FileKind::File => (
                Some(
                    std::fs::read(&src)
                        .map_err(|e| format!("source of truth {}: {e}", src.display()))?,
                ),
                want,
            ),
            FileKind::Symlink => {
                want.target = Some(
                    std::fs::read_link(&src)
                        .map_err(|e| e.to_string())?
                        .as_os_str()
                        .as_bytes()
                        .to_vec(),
                );
                (None, want)
            }
            _ => (None, want),
        }
    } else {
        let k = known.ok_or_else(|| format!("no known-good copy of {shown}: it was not present under a protected path at the last baseline"))?;
        let content = match (k.kind, &k.hash) {
            (FileKind::File, Some(h)) => Some(objects.get(h).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    format!("the known-good copy of {shown} was not kept (larger than protect_size_limit?)")
                } else {
                    format!("known-good copy of {shown}: {e}")
                }
            })?),
            (FileKind::File, None) => return Err(format!("{shown} was unreadable at baseline; no copy exists")),
            _ => None,
        };
        (content, k)
    };
    let current = std::fs::symlink_metadata(path).ok();
    match want.kind {
        FileKind::File => {
            let data = content.unwrap_or_default();
            if current.as_ref().is_some_and(|m| m.is_dir()) {
                return Err(format!(
                    "{shown} is now a directory; remove it by hand first"
                ));
            }
            let dir = path
                .parent()
                .ok_or_else(|| format!("{shown} has no parent directory"))?;
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let tmp = dir.join(format!(".bannin-restore-{}", std::process::id()));
            let write = || -> std::io::Result<()> {
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&tmp)?;
                f.write_all(&data)?;
                lchown(&tmp, want.uid, want.gid)?;
                // chmod after chown: chown clears set-id bits.
                f.set_permissions(std::fs::Permissions::from_mode(want.mode))?;
                f.sync_all()?;
                std::fs::rename(&tmp, path)
            };
            if let Err(e) = write() {
                let _ = std::fs::remove_file(&tmp);
                return Err(format!("cannot write {shown}: {e}"));
            }
        }
        FileKind::Dir => {
            if current.is_none() {
                std::fs::create_dir_all(path).map_err(|e| format!("cannot create {shown}: {e}"))?;
            }
            lchown(path, want.uid, want.gid).map_err(|e| format!("chown {shown}: {e}"))?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(want.mode))
                .map_err(|e| format!("chmod {shown}: {e}"))?;
        }
        FileKind::Symlink => {
            let target = want
                .target
                .clone()
                .ok_or_else(|| format!("no recorded target for symlink {shown}"))?;
            if current.as_ref().is_some_and(|m| m.is_dir()) {
                return Err(format!(
                    "{shown} is now a directory; remove it by hand first"
                ));
            }
            let _ = std::fs::remove_file(path);
            std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&target), path)
                .map_err(|e| format!("symlink {shown}: {e}"))?;
            lchown(path, want.uid, want.gid).map_err(|e| format!("chown {shown}: {e}"))?;
        }
        other => {
            return Err(format!(
                "{shown} was a {} at baseline; special files are not restored",
                other.as_str()
            ))
        }
    }
    let rec = observe::observe(path, root.checks().contains(&bannin_fim::Attr::Xattrs))
        .map_err(|e| format!("after restore, {shown}: {e}"))?;
    store
        .put(path, &rec)
        .map_err(|e| format!("baseline database: {e}"))?;
    Ok(rec)
}
