//! The log collector on real files in temp dirs: glob pickup, rotation (rename and copytruncate) under
//! load, restart resume, replaced files, multi-line records, truncation, invalid UTF-8, CloudTrail.
//!
//! A tiny ruleset written here alerts on every line holding `seq=`, so each line read becomes one
//! event and loss or duplication is counted by the sequence numbers in the lines.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bannin_agent::config::AgentConfig;
use bannin_agent::logs::{run_log_source, CollectorStats};
use bannin_proto::Event;
use tokio::sync::{mpsc, oneshot};

const DECODERS: &str = r#"
<decoder name="json"><prematch>^{\s*"</prematch><plugin_decoder>JSON_Decoder</plugin_decoder></decoder>
"#;
const RULES: &str = r#"
<group name="test,">
  <rule id="1" level="0" noalert="1"><category>syslog</category><description>base</description></rule>
  <rule id="100100" level="3"><if_sid>1</if_sid><match>seq=</match><description>sequenced line</description></rule>
  <rule id="100200" level="5"><if_sid>1</if_sid><decoded_as>json</decoded_as><field name="aws.eventName">\.+</field>
    <description>CloudTrail record</description></rule>
</group>
"#;

struct Running {
    rx: mpsc::Receiver<Event>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

struct Setup {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    state: PathBuf,
    ruleset: PathBuf,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("logs");
    std::fs::create_dir_all(&root).unwrap();
    let ruleset = tmp.path().join("ruleset");
    std::fs::create_dir_all(&ruleset).unwrap();
    std::fs::write(ruleset.join("decoders.xml"), DECODERS).unwrap();
    std::fs::write(ruleset.join("rules.xml"), RULES).unwrap();
    Setup {
        state: tmp.path().join("state"),
        root,
        ruleset,
        _tmp: tmp,
    }
}

impl Setup {
    /// Starts the collector with `[logs]` extra lines (after the ruleset) and `[[logs.files]]`.
    fn start(&self, files: &str) -> Running {
        self.start_with("only_future_events = false\n", files)
    }

    fn start_with(&self, logs: &str, files: &str) -> Running {
        let text = format!(
            "[logs]\nruleset = [{:?}]\n{logs}\n{files}",
            self.ruleset.to_str().unwrap()
        );
        let cfg = AgentConfig::parse(&text, Path::new("test.toml")).unwrap();
        let (tx, rx) = mpsc::channel(100_000);
        let (stop, stopped) = oneshot::channel::<()>();
        let state = self.state.clone();
        let task = tokio::spawn(async move {
            run_log_source(
                cfg.logs,
                &state,
                tx,
                async move {
                    let _ = stopped.await;
                },
                std::sync::Arc::new(CollectorStats::default()),
            )
            .await
        });
        Running {
            rx,
            stop: Some(stop),
            task,
        }
    }
}

impl Running {
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

    /// Stops the collector and returns the events it sent on the way out.
    async fn stop(mut self) -> Vec<Event> {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
        let mut rest = Vec::new();
        while let Ok(e) = self.rx.try_recv() {
            rest.push(e);
        }
        rest
    }
}

fn full_log(e: &Event) -> String {
    e.body["full_log"].as_str().unwrap_or_default().to_string()
}

/// Sequence numbers found in the events' lines, with how often each was seen.
fn seqs(events: &[Event]) -> BTreeMap<u64, usize> {
    let mut m = BTreeMap::new();
    for e in events {
        let l = full_log(e);
        if let Some(i) = l.find("seq=") {
            let n: u64 = l[i + 4..]
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse()
                .unwrap();
            *m.entry(n).or_default() += 1;
        }
    }
    m
}

fn count_seq(events: &[Event]) -> usize {
    seqs(events).len()
}

/// Every number in `range` exactly once, listing what is missing or doubled.
fn assert_exactly(events: &[Event], range: std::ops::Range<u64>) {
    let m = seqs(events);
    let missing: Vec<u64> = range.clone().filter(|n| !m.contains_key(n)).collect();
    let doubled: Vec<(&u64, &usize)> = m.iter().filter(|(_, c)| **c > 1).collect();
    let extra: Vec<&u64> = m.keys().filter(|n| !range.contains(n)).collect();
    assert!(
        missing.is_empty() && doubled.is_empty() && extra.is_empty(),
        "{} missing (first {:?}), {} doubled (first {:?}), {} unexpected (first {:?})",
        missing.len(),
        &missing[..missing.len().min(10)],
        doubled.len(),
        &doubled[..doubled.len().min(10)],
        extra.len(),
        &extra[..extra.len().min(10)]
    );
}

fn append(path: &Path, lines: std::ops::Range<u64>) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for n in lines {
        writeln!(f, "Jan  1 00:00:00 host app[1]: event seq={n} payload").unwrap();
    }
}

fn files_entry(path: &Path) -> String {
    format!("[[logs.files]]\npath = {:?}\n", path.to_str().unwrap())
}

#[tokio::test]
async fn file_created_later_matching_a_glob_is_read_within_one_second() {
    let s = setup();
    let mut r = s.start(&files_entry(&s.root.join("*.log")));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t0 = Instant::now();
    append(&s.root.join("new.log"), 0..3);
    let ev = r.until(Duration::from_secs(5), |e| count_seq(e) == 3).await;
    let took = t0.elapsed();
    assert_exactly(&ev, 0..3);
    assert!(took < Duration::from_secs(1), "took {took:?}");
    // A file that does not match the glob is not read.
    append(&s.root.join("other.txt"), 100..101);
    let ev = r
        .until(Duration::from_millis(1500), |e| !e.is_empty())
        .await;
    assert!(ev.is_empty(), "{ev:?}");
    r.stop().await;
}

/// The writer runs on its own thread at 100 lines/s and `rotate` is called every 5 s between two
/// writes; returns the number of lines written.
fn write_with_rotations(
    path: PathBuf,
    secs: u64,
    rotate: impl Fn(&Path, &mut std::fs::File, &mut u64) + Send + 'static,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        let start = Instant::now();
        let mut n = 0u64;
        let mut next_rotation = Duration::from_secs(5);
        while start.elapsed() < Duration::from_secs(secs) {
            writeln!(f, "Jan  1 00:00:00 host app[1]: event seq={n} payload").unwrap();
            n += 1;
            if start.elapsed() >= next_rotation {
                rotate(&path, &mut f, &mut n);
                next_rotation += Duration::from_secs(5);
            }
            let due = start + Duration::from_millis(10 * n);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        n
    })
}

fn rotation_secs() -> u64 {
    std::env::var("BANNIN_ROTATION_TEST_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
}

#[tokio::test]
async fn rename_rotation_at_100_lines_per_second_loses_nothing() {
    let s = setup();
    let path = s.root.join("app.log");
    append(&path, 0..0);
    let mut r = s.start(&files_entry(&path));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // logrotate's default: rename, the application keeps writing a few lines to the old file
    // until it reopens (after its HUP), then writes to a new file at the path.
    let writer = write_with_rotations(path.clone(), rotation_secs(), |p, f, n| {
        let rotated = p.with_extension("log.1");
        let _ = std::fs::remove_file(&rotated);
        std::fs::rename(p, &rotated).unwrap();
        for _ in 0..2 {
            writeln!(
                f,
                "Jan  1 00:00:00 host app[1]: late write seq={n} to the old file"
            )
            .unwrap();
            *n += 1;
        }
        *f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap();
    });
    let written = tokio::task::spawn_blocking(move || writer.join().unwrap())
        .await
        .unwrap();
    let mut ev = r
        .until(Duration::from_secs(10), |e| count_seq(e) as u64 >= written)
        .await;
    ev.extend(r.stop().await);
    assert!(written > 50, "{written}");
    assert_exactly(&ev, 0..written);
}

#[tokio::test]
async fn copytruncate_rotation_at_100_lines_per_second_loses_nothing() {
    let s = setup();
    let path = s.root.join("app.log");
    append(&path, 0..0);
    let mut r = s.start(&files_entry(&path));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // logrotate's copytruncate: copy to app.log.1, then truncate in place; the application keeps
    // its descriptor (O_APPEND, so it writes at the new end).
    let writer = write_with_rotations(path.clone(), rotation_secs(), |p, _, _| {
        std::fs::copy(p, p.with_extension("log.1")).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(p)
            .unwrap()
            .set_len(0)
            .unwrap();
    });
    let written = tokio::task::spawn_blocking(move || writer.join().unwrap())
        .await
        .unwrap();
    let mut ev = r
        .until(Duration::from_secs(10), |e| count_seq(e) as u64 >= written)
        .await;
    ev.extend(r.stop().await);
    assert_exactly(&ev, 0..written);
}

#[tokio::test]
async fn restart_resumes_at_the_saved_offset_and_reads_lines_written_while_stopped() {
    let s = setup();
    let path = s.root.join("app.log");
    append(&path, 0..100);
    let mut r = s.start(&files_entry(&path));
    let mut ev = r
        .until(Duration::from_secs(5), |e| count_seq(e) == 100)
        .await;
    ev.extend(r.stop().await);
    assert_exactly(&ev, 0..100);
    append(&path, 100..150);
    let mut r = s.start(&files_entry(&path));
    let mut ev = r
        .until(Duration::from_secs(5), |e| count_seq(e) == 50)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    ev.extend(r.stop().await);
    assert_exactly(&ev, 100..150);
}

#[tokio::test]
async fn file_rotated_while_stopped_is_finished_then_the_new_file_read() {
    let s = setup();
    let path = s.root.join("app.log");
    append(&path, 0..10);
    let mut r = s.start(&files_entry(&path));
    let mut ev = r
        .until(Duration::from_secs(5), |e| count_seq(e) == 10)
        .await;
    ev.extend(r.stop().await);
    assert_exactly(&ev, 0..10);
    append(&path, 10..20);
    std::fs::rename(&path, s.root.join("app.log.1")).unwrap();
    append(&path, 20..30);
    let mut r = s.start(&files_entry(&path));
    let mut ev = r
        .until(Duration::from_secs(5), |e| count_seq(e) == 20)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    ev.extend(r.stop().await);
    assert_exactly(&ev, 10..30);
}

#[tokio::test]
async fn replaced_file_is_read_from_its_start() {
    let s = setup();
    let path = s.root.join("app.log");
    append(&path, 0..50);
    let mut r = s.start(&files_entry(&path));
    let mut ev = r
        .until(Duration::from_secs(5), |e| count_seq(e) == 50)
        .await;
    ev.extend(r.stop().await);
    assert_exactly(&ev, 0..50);
    // Rewritten in place with other content, longer than before: same inode, other first bytes.
    let mut text = String::from("Feb  2 00:00:00 other app[2]: a new file\n");
    for n in 1000..1060 {
        text.push_str(&format!("Feb  2 00:00:00 other app[2]: event seq={n}\n"));
    }
    std::fs::write(&path, text).unwrap();
    let mut r = s.start(&files_entry(&path));
    let mut ev = r
        .until(Duration::from_secs(5), |e| count_seq(e) == 60)
        .await;
    ev.extend(r.stop().await);
    assert_exactly(&ev, 1000..1060);
}

#[tokio::test]
async fn first_start_with_only_future_events_skips_existing_history() {
    let s = setup();
    let path = s.root.join("app.log");
    append(&path, 0..20);
    let mut r = s.start_with("", &files_entry(&path));
    tokio::time::sleep(Duration::from_millis(700)).await;
    append(&path, 20..25);
    let mut ev = r.until(Duration::from_secs(5), |e| count_seq(e) == 5).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    ev.extend(r.stop().await);
    assert_exactly(&ev, 20..25);
}

#[tokio::test]
async fn multiline_records_truncation_and_invalid_utf8_reach_the_engine_intact() {
    let s = setup();
    let ml = s.root.join("java.log");
    let long = s.root.join("long.log");
    let mut f = std::fs::File::create(&ml).unwrap();
    f.write_all(b"2024-01-01 ERROR seq=1 boom\n  at a()\n  at b()\n2024-01-01 INFO seq=2 fine\n")
        .unwrap();
    drop(f);
    let mut bytes = b"host app: seq=3 ".to_vec();
    bytes.extend(std::iter::repeat_n(b'x', 5000));
    bytes.extend_from_slice(b"\nhost app: seq=4 user \xff\xfe\n");
    std::fs::write(&long, bytes).unwrap();
    let files = format!(
        "{}multiline_start = '^\\d{{4}}-'\nmultiline_timeout_ms = 200\n{}max_line_bytes = 1024\n",
        files_entry(&ml),
        files_entry(&long)
    );
    let mut r = s.start(&files);
    let ev = r.until(Duration::from_secs(5), |e| count_seq(e) == 4).await;
    r.stop().await;
    let by: BTreeMap<u64, String> = ev
        .iter()
        .map(|e| {
            (
                seqs(std::slice::from_ref(e)).into_keys().next().unwrap(),
                full_log(e),
            )
        })
        .collect();
    assert_eq!(by[&1], "2024-01-01 ERROR seq=1 boom\n  at a()\n  at b()");
    assert_eq!(by[&2], "2024-01-01 INFO seq=2 fine");
    assert!(by[&3].len() < 1200, "{}", by[&3].len());
    assert!(
        by[&3].ends_with("[bannin: truncated, 1024 of 5016 bytes kept]"),
        "{}",
        &by[&3][1000..]
    );
    assert_eq!(by[&4], "host app: seq=4 user \u{fffd}\u{fffd}");
    let e3 = ev.iter().find(|e| full_log(e).contains("seq=3")).unwrap();
    assert_eq!(e3.body["truncated"], true);
    assert_eq!(e3.body["location"], long.to_str().unwrap());
    assert_eq!(e3.rule_id, 100100);
    assert_eq!(e3.kind, bannin_proto::EventKind::Log);
}

#[tokio::test]
async fn cloudtrail_files_plain_and_gzip_are_each_processed_once() {
    let s = setup();
    let dir = s.root.join("AWSLogs/123/CloudTrail/eu-west-1/2024/03/01");
    std::fs::create_dir_all(&dir).unwrap();
    let doc = |names: &[&str]| {
        let recs: Vec<String> = names
            .iter()
            .map(|n| format!(r#"{{"eventTime":"2024-03-01T10:00:00Z","eventName":"{n}","eventSource":"iam.amazonaws.com"}}"#))
            .collect();
        format!(r#"{{"Records":[{}]}}"#, recs.join(","))
    };
    std::fs::write(dir.join("a.json"), doc(&["CreateUser", "DeleteTrail"])).unwrap();
    let files = format!(
        "[[logs.files]]\npath = {:?}\nformat = \"cloudtrail\"\n",
        s.root.to_str().unwrap()
    );
    let mut r = s.start(&files);
    let ev = r.until(Duration::from_secs(5), |e| e.len() == 2).await;
    let names: Vec<String> = ev
        .iter()
        .map(|e| {
            e.body["fields"]["aws.eventName"]
                .as_str()
                .unwrap_or("?")
                .to_string()
        })
        .collect();
    assert_eq!(names, ["CreateUser", "DeleteTrail"], "{ev:?}");
    assert_eq!(ev[0].rule_id, 100200);
    assert_eq!(ev[0].timestamp.unix_timestamp(), 1709287200);
    // Dropped later, as `aws s3 sync` lands it (written under a temporary name, then renamed).
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(doc(&["StopLogging"]).as_bytes()).unwrap();
    std::fs::write(dir.join("b.json.gz.5d3F"), gz.finish().unwrap()).unwrap();
    std::fs::rename(dir.join("b.json.gz.5d3F"), dir.join("b.json.gz")).unwrap();
    let ev = r.until(Duration::from_secs(5), |e| !e.is_empty()).await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].body["fields"]["aws.eventName"], "StopLogging");
    let rest = r.stop().await;
    assert!(rest.is_empty(), "{rest:?}");
    // After a restart nothing is processed again.
    let mut r = s.start(&files);
    let ev = r.until(Duration::from_secs(2), |e| !e.is_empty()).await;
    assert!(ev.is_empty(), "{ev:?}");
    r.stop().await;
}

#[tokio::test]
async fn missing_ruleset_is_an_error_naming_it() {
    let s = setup();
    let text = format!(
        "[logs]\nruleset = [\"/nonexistent/rules\"]\n{}",
        files_entry(&s.root.join("x.log"))
    );
    let cfg = AgentConfig::parse(&text, Path::new("t.toml")).unwrap();
    let (tx, _rx) = mpsc::channel(10);
    let err = run_log_source(
        cfg.logs,
        &s.state,
        tx,
        std::future::pending(),
        Default::default(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("/nonexistent/rules"), "{err}");
    let cfg = AgentConfig::parse(
        &files_entry(&s.root.join("x.log")).replace("[[logs.files]]", "[[logs.files]]"),
        Path::new("t.toml"),
    )
    .unwrap();
    let (tx, _rx) = mpsc::channel(10);
    if !Path::new(bannin_agent::logs::config::DEFAULT_RULESET).exists() {
        let err = run_log_source(
            cfg.logs,
            &s.state,
            tx,
            std::future::pending(),
            Default::default(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("default log ruleset"), "{err}");
    }
}

#[tokio::test]
async fn copytruncate_while_stopped_reads_the_rest_from_the_copy_then_the_new_content() {
    let s = setup();
    let path = s.root.join("app.log");
    append(&path, 0..10);
    let mut r = s.start(&files_entry(&path));
    let mut ev = r
        .until(Duration::from_secs(5), |e| count_seq(e) == 10)
        .await;
    ev.extend(r.stop().await);
    assert_exactly(&ev, 0..10);
    append(&path, 10..20);
    std::fs::copy(&path, s.root.join("app.log.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&path, 20..25);
    let mut r = s.start(&files_entry(&path));
    let mut ev = r
        .until(Duration::from_secs(5), |e| count_seq(e) == 15)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    ev.extend(r.stop().await);
    assert_exactly(&ev, 10..25);
}
