//! Who wrote a file: fanotify mount marks (root with CAP_SYS_ADMIN) report the pid of every process that
//! closes a file it wrote; its executable and uid are read from /proc right away. Without fanotify, or when
//! the writer has already exited, the writer is "unknown" (or only its pid is known).

use bannin_fim::Writer;
use std::collections::{HashMap, VecDeque};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Recent writers by path, bounded (oldest forgotten first).
#[derive(Default)]
struct Recent {
    map: HashMap<PathBuf, Writer>,
    order: VecDeque<PathBuf>,
}

const KEEP: usize = 8192;

pub struct Attribution {
    recent: Mutex<Recent>,
    stop: AtomicBool,
}

#[repr(C)]
struct Meta {
    event_len: u32,
    vers: u8,
    reserved: u8,
    metadata_len: u16,
    mask: u64,
    fd: i32,
    pid: i32,
}

const FAN_CLOSE_WRITE: u64 = 0x0000_0008;
const FAN_CLASS_NOTIF: u32 = 0x0000_0000;
const FAN_CLOEXEC: u32 = 0x0000_0001;
const FAN_NONBLOCK: u32 = 0x0000_0002;
const FAN_MARK_ADD: u32 = 0x0000_0001;
const FAN_MARK_MOUNT: u32 = 0x0000_0010;

fn proc_uid(pid: i32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|u| u.parse().ok())
}

impl Attribution {
    /// Starts watching the mounts holding `paths`. `None` when fanotify is unavailable (not root, old
    /// kernel, container without CAP_SYS_ADMIN): writers are then reported as unknown.
    pub fn start(paths: &[PathBuf]) -> Option<Arc<Attribution>> {
        // SAFETY: plain syscall with constant flags.
        let fd = unsafe {
            libc::fanotify_init(
                FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK,
                (libc::O_RDONLY | libc::O_LARGEFILE | libc::O_CLOEXEC) as u32,
            )
        };
        if fd < 0 {
            return None;
        }
        let mut marked = 0;
        for p in paths {
            let Ok(c) = CString::new(p.as_os_str().as_bytes()) else {
                continue;
            };
            // SAFETY: fd is a fanotify descriptor, c a valid path.
            if unsafe {
                libc::fanotify_mark(
                    fd,
                    FAN_MARK_ADD | FAN_MARK_MOUNT,
                    FAN_CLOSE_WRITE,
                    libc::AT_FDCWD,
                    c.as_ptr(),
                )
            } == 0
            {
                marked += 1;
            }
        }
        if marked == 0 {
            // SAFETY: fd is ours.
            unsafe { libc::close(fd) };
            return None;
        }
        let a = Arc::new(Attribution {
            recent: Mutex::new(Recent::default()),
            stop: AtomicBool::new(false),
        });
        let a2 = a.clone();
        std::thread::Builder::new()
            .name("fim-fanotify".into())
            .spawn(move || a2.read_loop(fd))
            .ok()?;
        Some(a)
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    fn read_loop(&self, fd: i32) {
        let me = std::process::id() as i32;
        let mut buf = vec![0u8; 64 * 1024];
        while !self.stop.load(Ordering::Relaxed) {
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&mut pfd, 1, 200) } <= 0 {
                continue;
            }
            // SAFETY: buf is writable for its length.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
            if n <= 0 {
                continue;
            }
            let mut off = 0usize;
            let size = std::mem::size_of::<Meta>();
            while off + size <= n as usize {
                // SAFETY: the kernel wrote whole metadata records; read_unaligned copes with any offset.
                let m: Meta =
                    unsafe { std::ptr::read_unaligned(buf.as_ptr().add(off) as *const Meta) };
                if m.event_len < size as u32 {
                    break;
                }
                if m.fd >= 0 {
                    let path = std::fs::read_link(format!("/proc/self/fd/{}", m.fd)).ok();
                    // SAFETY: the event's fd is ours to close.
                    unsafe { libc::close(m.fd) };
                    if let Some(path) = path.filter(|_| m.pid != me) {
                        let exe = std::fs::read_link(format!("/proc/{}/exe", m.pid))
                            .map(|p| bannin_fim::display_path(&p))
                            .unwrap_or_else(|_| "unknown (exited)".into());
                        let uid = proc_uid(m.pid).unwrap_or(u32::MAX);
                        self.record(
                            path,
                            Writer::Process {
                                pid: m.pid as u32,
                                exe,
                                uid,
                            },
                        );
                    }
                }
                off += m.event_len as usize;
            }
        }
        // SAFETY: fd is ours.
        unsafe { libc::close(fd) };
    }

    fn record(&self, path: PathBuf, w: Writer) {
        let mut r = self.recent.lock().unwrap();
        if r.map.insert(path.clone(), w).is_none() {
            r.order.push_back(path);
            if r.order.len() > KEEP {
                if let Some(old) = r.order.pop_front() {
                    r.map.remove(&old);
                }
            }
        }
    }

    /// The last known writer of `path`.
    pub fn writer_of(&self, path: &Path) -> Option<Writer> {
        self.recent.lock().unwrap().map.get(path).cloned()
    }
}
