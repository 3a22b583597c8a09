//! FIM in real time: `run_fim_source` with inotify on temp dirs.

use bannin_agent::fim::run_fim_source;
use bannin_fim::{FimConfig, OnChange, WatchPath};
use bannin_proto::Event;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

struct Running {
    rx: mpsc::Receiver<Event>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

fn start(cfg: FimConfig, state: &Path) -> Running {
    let (tx, rx) = mpsc::channel(10_000);
    let (stop, stopped) = oneshot::channel::<()>();
    let state = state.to_path_buf();
    let task = tokio::spawn(async move {
        run_fim_source(cfg, &state, tx, async move {
            let _ = stopped.await;
        })
        .await
    });
    Running {
        rx,
        stop: Some(stop),
        task,
    }
}

impl Running {
    /// Events until `pred` has matched or `limit` passed; returns all seen.
    async fn until(&mut self, limit: Duration, pred: impl Fn(&[Event]) -> bool) -> Vec<Event> {
        let end = Instant::now() + limit;
        let mut seen = Vec::new();
        while !pred(&seen) {
            let left = end.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.rx.recv()).await {
                Ok(Some(e)) => seen.push(e),
                _ => break,
            }
        }
        seen
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
    }
}

fn cfg(w: &Path, tweak: impl FnOnce(&mut WatchPath)) -> FimConfig {
    let mut p = WatchPath::new(w);
    p.realtime = true;
    tweak(&mut p);
    FimConfig {
        paths: vec![p],
        package_awareness: false,
        ..FimConfig::default()
    }
}

fn at(evs: &[Event], p: &Path, rule: u64) -> usize {
    let s = p.display().to_string();
    evs.iter()
        .filter(|e| e.rule_id == rule && e.body["path"] == s.as_str())
        .count()
}

async fn ready(r: &mut Running) {
    // The first scan ends with a summary event; watches are in place before it starts.
    let evs = r
        .until(Duration::from_secs(20), |s| {
            s.iter().any(|e| e.rule_id == 563)
        })
        .await;
    assert!(
        evs.iter().any(|e| e.rule_id == 563),
        "no first-scan summary: {evs:?}"
    );
}

fn tmp() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let w = t.path().join("w");
    std::fs::create_dir(&w).unwrap();
    let st = t.path().join("state");
    (t, w, st)
}

#[tokio::test]
async fn realtime_sees_add_modify_chmod_rename_and_delete() {
    let (_t, w, st) = tmp();
    std::fs::write(w.join("existing"), "1").unwrap();
    let mut r = start(cfg(&w, |_| {}), &st);
    ready(&mut r).await;

    std::fs::write(w.join("new"), "hello").unwrap();
    let evs = r
        .until(Duration::from_secs(5), |s| at(s, &w.join("new"), 554) == 1)
        .await;
    assert_eq!(at(&evs, &w.join("new"), 554), 1, "{evs:#?}");
    assert_eq!(
        evs.iter().find(|e| e.rule_id == 554).unwrap().body["source"],
        "realtime"
    );

    std::fs::write(w.join("existing"), "2").unwrap();
    let evs = r
        .until(Duration::from_secs(5), |s| {
            at(s, &w.join("existing"), 550) == 1
        })
        .await;
    assert_eq!(at(&evs, &w.join("existing"), 550), 1, "{evs:#?}");

    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(w.join("existing"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let evs = r
        .until(Duration::from_secs(5), |s| {
            at(s, &w.join("existing"), 556) == 1
        })
        .await;
    assert_eq!(at(&evs, &w.join("existing"), 556), 1, "{evs:#?}");

    std::fs::rename(w.join("new"), w.join("moved")).unwrap();
    let evs = r
        .until(Duration::from_secs(5), |s| {
            at(s, &w.join("moved"), 555) == 1
        })
        .await;
    assert_eq!(at(&evs, &w.join("moved"), 555), 1, "{evs:#?}");

    std::fs::remove_file(w.join("moved")).unwrap();
    let evs = r
        .until(Duration::from_secs(5), |s| {
            at(s, &w.join("moved"), 553) == 1
        })
        .await;
    assert_eq!(at(&evs, &w.join("moved"), 553), 1, "{evs:#?}");
    r.stop().await;
}

#[tokio::test]
async fn a_directory_created_after_start_is_watched() {
    let (_t, w, st) = tmp();
    let mut r = start(cfg(&w, |_| {}), &st);
    ready(&mut r).await;
    // Created together with a file: the file lands before any watch can exist on the new directory.
    std::fs::create_dir_all(w.join("d1/d2")).unwrap();
    std::fs::write(w.join("d1/d2/early"), "e").unwrap();
    let evs = r
        .until(Duration::from_secs(5), |s| {
            at(s, &w.join("d1/d2/early"), 554) == 1
        })
        .await;
    assert_eq!(at(&evs, &w.join("d1/d2/early"), 554), 1, "{evs:#?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    std::fs::write(w.join("d1/d2/late"), "l").unwrap();
    let evs = r
        .until(Duration::from_secs(5), |s| {
            at(s, &w.join("d1/d2/late"), 554) == 1
        })
        .await;
    assert_eq!(at(&evs, &w.join("d1/d2/late"), 554), 1, "{evs:#?}");
    r.stop().await;
}

#[tokio::test]
async fn a_burst_of_writes_is_coalesced() {
    let (_t, w, st) = tmp();
    std::fs::write(w.join("busy"), "0").unwrap();
    let mut r = start(cfg(&w, |_| {}), &st);
    ready(&mut r).await;
    for i in 0..200 {
        std::fs::write(w.join("busy"), format!("{i}")).unwrap();
    }
    let evs = r.until(Duration::from_secs(3), |_| false).await;
    let n = at(&evs, &w.join("busy"), 550);
    assert!((1..=5).contains(&n), "200 writes gave {n} events");
    r.stop().await;
}

#[tokio::test]
async fn protected_file_with_on_change_restore_is_put_back_at_once() {
    let (_t, w, st) = tmp();
    std::fs::write(w.join("index.html"), "good").unwrap();
    let mut r = start(
        cfg(&w, |p| {
            p.protect = true;
            p.on_change = OnChange::Restore;
        }),
        &st,
    );
    ready(&mut r).await;
    std::fs::write(w.join("index.html"), "defaced").unwrap();
    let evs = r
        .until(Duration::from_secs(5), |s| {
            at(s, &w.join("index.html"), 558) == 1
        })
        .await;
    assert_eq!(at(&evs, &w.join("index.html"), 550), 1, "{evs:#?}");
    assert_eq!(at(&evs, &w.join("index.html"), 558), 1, "{evs:#?}");
    assert_eq!(
        std::fs::read_to_string(w.join("index.html")).unwrap(),
        "good"
    );
    // The restore itself does not start a loop of events.
    let more = r.until(Duration::from_millis(800), |_| false).await;
    assert_eq!(at(&more, &w.join("index.html"), 550), 0, "{more:#?}");
    r.stop().await;
}

#[tokio::test]
async fn changes_while_the_agent_was_down_are_found_by_the_first_scan() {
    let (_t, w, st) = tmp();
    std::fs::write(w.join("f"), "1").unwrap();
    let mut r = start(cfg(&w, |_| {}), &st);
    ready(&mut r).await;
    r.stop().await;
    std::fs::write(w.join("f"), "2").unwrap();
    let mut r = start(cfg(&w, |_| {}), &st);
    let evs = r
        .until(Duration::from_secs(20), |s| {
            s.iter().any(|e| e.rule_id == 563)
        })
        .await;
    assert_eq!(at(&evs, &w.join("f"), 550), 1, "{evs:#?}");
    assert_eq!(
        evs.iter().find(|e| e.rule_id == 550).unwrap().body["source"],
        "scan"
    );
    r.stop().await;
}

#[tokio::test]
async fn the_writing_process_is_named_where_fanotify_allows() {
    // SAFETY: probing whether this kernel/container gives us fanotify.
    let fd = unsafe { libc::fanotify_init(0, libc::O_RDONLY as u32) };
    if fd < 0 {
        eprintln!("skipped: fanotify unavailable here (needs root with CAP_SYS_ADMIN); writers are reported as unknown");
        return;
    }
    // SAFETY: closing the probe descriptor.
    unsafe { libc::close(fd) };
    let (_t, w, st) = tmp();
    std::fs::write(w.join("f"), "1").unwrap();
    let mut config = cfg(&w, |_| {});
    config.writer_attribution = true;
    let mut r = start(config, &st);
    ready(&mut r).await;
    let child = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("echo 2 > '{}'; sleep 0.3", w.join("f").display()))
        .spawn()
        .unwrap();
    let pid = child.id();
    let evs = r
        .until(Duration::from_secs(5), |s| at(s, &w.join("f"), 550) == 1)
        .await;
    let e = evs
        .iter()
        .find(|e| e.rule_id == 550)
        .unwrap_or_else(|| panic!("{evs:#?}"));
    assert_eq!(e.body["writer"]["pid"], pid, "{:#}", e.body);
    assert!(
        e.body["writer"]["exe"].as_str().unwrap().contains("sh"),
        "{:#}",
        e.body
    );
    assert_eq!(e.body["writer"]["uid"], 0);
    r.stop().await;
}
