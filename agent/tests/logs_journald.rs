//! journald through the collector: a real `journalctl --follow` on a journal directory written by
//! `systemd-journal-remote` (this container has no running journald). Unit/identifier filters and
//! the persisted cursor (a restart reads what was written while stopped, nothing twice).
//!
//! Needs `journalctl` and `/usr/lib/systemd/systemd-journal-remote` (Debian package
//! `systemd-journal-remote`); skipped with a message when either is missing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bannin_agent::config::AgentConfig;
use bannin_agent::logs::run_log_source;
use bannin_proto::Event;
use tokio::sync::{mpsc, oneshot};

const REMOTE: &str = "/usr/lib/systemd/systemd-journal-remote";

const DECODERS: &str = "<decoder name=\"any\"><prematch>seq=</prematch></decoder>\n";
const RULES: &str = r#"<group name="test,">
  <rule id="1" level="0" noalert="1"><category>syslog</category><description>base</description></rule>
  <rule id="100100" level="3"><if_sid>1</if_sid><match>seq=</match><description>sequenced line</description></rule>
</group>"#;

fn tools_present() -> bool {
    let journalctl = Command::new("journalctl")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    journalctl && Path::new(REMOTE).exists()
}

static MONO: AtomicU64 = AtomicU64::new(1000);

/// Appends one entry to the journal file in `dir`.
fn journal_append(dir: &Path, ident: &str, unit: Option<&str>, msg: &str) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros();
    let mut entry = format!(
        "__REALTIME_TIMESTAMP={now}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID=0123456789abcdef0123456789abcdef\n\
         _HOSTNAME=web1\nSYSLOG_IDENTIFIER={ident}\n_PID=42\nMESSAGE={msg}\n",
        MONO.fetch_add(1000, Ordering::Relaxed)
    );
    if let Some(u) = unit {
        entry.push_str(&format!("_SYSTEMD_UNIT={u}\n"));
    }
    entry.push('\n');
    let mut child = Command::new(REMOTE)
        .arg(format!("--output={}", dir.join("remote.journal").display()))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(entry.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

struct Running {
    rx: mpsc::Receiver<Event>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

fn start(ruleset: &Path, state: &Path, journal: &Path) -> Running {
    let text = format!(
        "[logs]\nruleset = [{:?}]\n[[logs.journald]]\ndirectory = {:?}\nunits = [\"ssh.service\"]\nidentifiers = [\"sudo\"]\n",
        ruleset.to_str().unwrap(),
        journal.to_str().unwrap()
    );
    let cfg = AgentConfig::parse(&text, Path::new("t.toml")).unwrap();
    let (tx, rx) = mpsc::channel(1000);
    let (stop, stopped) = oneshot::channel::<()>();
    let state = state.to_path_buf();
    let task = tokio::spawn(async move {
        run_log_source(
            cfg.logs,
            &state,
            tx,
            async move {
                let _ = stopped.await;
            },
            Default::default(),
        )
        .await
    });
    Running { rx, stop, task }
}

impl Running {
    async fn collect(&mut self, limit: Duration, want: usize) -> Vec<String> {
        let end = Instant::now() + limit;
        let mut seen = Vec::new();
        while seen.len() < want {
            let left = end.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.rx.recv()).await {
                Ok(Some(e)) => seen.push(e.body["full_log"].as_str().unwrap_or("").to_string()),
                _ => break,
            }
        }
        seen
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

fn seq_of(lines: &[String]) -> Vec<u32> {
    let mut v: Vec<u32> = lines
        .iter()
        .filter_map(|l| l.split("seq=").nth(1)?.split(' ').next()?.parse().ok())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn journald_filters_by_unit_and_identifier_and_resumes_at_its_cursor() {
    if !tools_present() {
        eprintln!("SKIP: journalctl or {REMOTE} missing (apt-get install systemd-journal-remote)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let ruleset: PathBuf = tmp.path().join("ruleset");
    std::fs::create_dir_all(&ruleset).unwrap();
    std::fs::write(ruleset.join("d.xml"), DECODERS).unwrap();
    std::fs::write(ruleset.join("r.xml"), RULES).unwrap();
    let journal = tmp.path().join("journal");
    std::fs::create_dir_all(&journal).unwrap();
    let state = tmp.path().join("state");
    // History from before the first start is not read.
    journal_append(
        &journal,
        "sshd",
        Some("ssh.service"),
        "old seq=1 before start",
    );

    let mut r = start(&ruleset, &state, &journal);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    journal_append(
        &journal,
        "sshd",
        Some("ssh.service"),
        "Failed password seq=2 x",
    );
    journal_append(
        &journal,
        "cron",
        Some("cron.service"),
        "filtered out seq=3 x",
    );
    journal_append(&journal, "sudo", None, "root : TTY=pts/0 seq=4 x");
    let got = r.collect(Duration::from_secs(10), 2).await;
    assert_eq!(seq_of(&got), vec![2, 4], "{got:?}");
    assert!(
        got.iter()
            .any(|l| l.contains("web1 sshd[42]: Failed password seq=2")),
        "{got:?}"
    );
    // Give the collector a flush (cursor saved every second), then stop.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    r.stop().await;

    journal_append(
        &journal,
        "sshd",
        Some("ssh.service"),
        "while stopped seq=5 x",
    );
    let mut r = start(&ruleset, &state, &journal);
    let got = r.collect(Duration::from_secs(10), 1).await;
    let more = r.collect(Duration::from_secs(2), 1).await;
    r.stop().await;
    assert_eq!(seq_of(&got), vec![5], "{got:?}");
    assert!(more.is_empty(), "read twice: {more:?}");
}
