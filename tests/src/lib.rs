//! End-to-end test harness: starts real `bannin-manager` and `bannin-agent` processes on loopback, in
//! temporary directories, with ports chosen by the OS.
//!
//! It never fakes a component: the binaries must have been built (`cargo build --bins`) by the test
//! command before these tests run.

use std::fs;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Path of a workspace binary next to the test executable (target/<profile>/).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --bins` before the end-to-end tests",
        path.display()
    );
    path
}

/// Runs a command to completion, returning its output; panics with both streams if it fails to start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"))
}

/// Runs a command that must succeed and returns its stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Polls `probe` until it returns Some or the timeout passes.
pub fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process that is killed when dropped, with its stderr captured to a file for diagnostics.
pub struct Process {
    pub child: Option<Child>,
    pub log: PathBuf,
}

impl Process {
    pub fn spawn(cmd: &mut Command, log: PathBuf) -> Process {
        let file = fs::File::create(&log).expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
        Process {
            child: Some(child),
            log,
        }
    }

    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.as_ref().expect("running").id() as i32)
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    assert!(
                        status.success(),
                        "process exited with {status} after SIGTERM; log:\n{}",
                        self.log_text()
                    );
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "process ignored SIGTERM for 20s; log:\n{}",
                    self.log_text()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log_text(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A manager data directory and, while started, its `serve` process.
pub struct Manager {
    pub dir: PathBuf,
    pub ca_fingerprint: String,
    pub admin_token: String,
    pub process: Option<Process>,
    pub addr: Option<SocketAddr>,
    disconnect_after: String,
}

impl Manager {
    /// `bannin-manager init` in `root/manager`.
    pub fn init(root: &Path) -> Manager {
        let dir = root.join("manager");
        let out = run_ok(
            Command::new(bin("bannin-manager"))
                .args(["init", "--json", "--data-dir"])
                .arg(&dir),
        );
        let v: Value =
            serde_json::from_str(out.trim()).expect("init --json prints one JSON object");
        Manager {
            dir,
            ca_fingerprint: v["ca_fingerprint"].as_str().unwrap().to_string(),
            admin_token: v["admin_token"].as_str().unwrap().to_string(),
            process: None,
            addr: None,
            disconnect_after: "90s".into(),
        }
    }

    pub fn disconnect_after(mut self, d: &str) -> Manager {
        self.disconnect_after = d.into();
        self
    }

    /// Starts `serve`, on the port it had before if it ran already (agents know that URL).
    pub fn start(&mut self) {
        let listen = self
            .addr
            .map(|a| a.to_string())
            .unwrap_or_else(|| "127.0.0.1:0".into());
        let addr_file = self.dir.join("manager.addr");
        let _ = fs::remove_file(&addr_file);
        let log = self.dir.join(format!(
            "serve-{}.log",
            Instant::now().elapsed().as_nanos() ^ rand_suffix()
        ));
        let process = Process::spawn(
            Command::new(bin("bannin-manager"))
                .args([
                    "serve",
                    "--listen",
                    &listen,
                    "--disconnect-after",
                    &self.disconnect_after,
                    "--data-dir",
                ])
                .arg(&self.dir),
            log,
        );
        self.process = Some(process);
        let addr: SocketAddr = wait_for("manager.addr", Duration::from_secs(20), || {
            fs::read_to_string(&addr_file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
        });
        self.addr = Some(addr);
        wait_for("/healthz", Duration::from_secs(20), || {
            let ok = self
                .http()
                .get(format!("{}/healthz", self.url()))
                .send()
                .ok()?
                .status()
                .is_success();
            ok.then_some(())
        });
    }

    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop();
        }
    }

    pub fn url(&self) -> String {
        format!(
            "https://localhost:{}",
            self.addr.expect("manager started").port()
        )
    }

    pub fn ca_pem(&self) -> String {
        fs::read_to_string(self.dir.join("ca.pem")).unwrap()
    }

    /// An HTTPS client that trusts this manager's CA and presents no client certificate.
    pub fn http(&self) -> reqwest::blocking::Client {
        self.http_with(None)
    }

    pub fn http_with(
        &self,
        identity: Option<&bannin_pki::ClientIdentity>,
    ) -> reqwest::blocking::Client {
        let tls = bannin_pki::client_config_trusting(&self.ca_pem(), identity).unwrap();
        reqwest::blocking::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    pub fn cli(&self) -> Command {
        let mut cmd = Command::new(bin("bannin-manager"));
        cmd.env("BANNIN_DATA_DIR", &self.dir);
        cmd
    }

    pub fn create_token(&self, ttl: &str, uses: u32) -> String {
        let out = run_ok(self.cli().args([
            "token",
            "create",
            "--json",
            "--ttl",
            ttl,
            "--uses",
            &uses.to_string(),
        ]));
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        v["token"].as_str().unwrap().to_string()
    }

    /// `bannin-manager events --json` with extra filters, parsed.
    pub fn events(&self, args: &[&str]) -> Vec<Value> {
        let out = run_ok(
            self.cli()
                .args(["events", "--json", "--limit", "100000"])
                .args(args),
        );
        out.lines()
            .map(|l| serde_json::from_str(l).expect("events --json prints JSON lines"))
            .collect()
    }

    pub fn agents(&self) -> Vec<Value> {
        let out = run_ok(self.cli().args(["agents", "--json"]));
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub fn log_text(&self) -> String {
        self.process
            .as_ref()
            .map(Process::log_text)
            .unwrap_or_default()
    }
}

fn rand_suffix() -> u128 {
    u128::from_le_bytes(bannin_pki::random_bytes::<16>())
}

/// An agent's state directory and config, and while started its `run` process.
pub struct Agent {
    pub state_dir: PathBuf,
    pub config: PathBuf,
    pub watched: PathBuf,
    pub process: Option<Process>,
    pub agent_id: String,
}

impl Agent {
    /// Enrolls with `manager` using a fresh token and writes a config watching `root/watched`.
    pub fn enroll(root: &Path, manager: &Manager, name: &str) -> Agent {
        let token = manager.create_token("1h", 1);
        let state_dir = root.join(format!("agent-{name}"));
        let out = run_ok(
            Command::new(bin("bannin-agent"))
                .args([
                    "enroll",
                    "--json",
                    "--manager",
                    &manager.url(),
                    "--token",
                    &token,
                ])
                .args([
                    "--ca-fingerprint",
                    &manager.ca_fingerprint,
                    "--name",
                    name,
                    "--state-dir",
                ])
                .arg(&state_dir),
        );
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        let watched = root.join(format!("watched-{name}"));
        fs::create_dir_all(&watched).unwrap();
        let config = root.join(format!("agent-{name}.toml"));
        let agent = Agent {
            state_dir,
            config,
            watched,
            process: None,
            agent_id: v["agent_id"].as_str().unwrap().into(),
        };
        agent.write_config("");
        agent
    }

    /// Rewrites the config; `extra` is appended (e.g. `[manager]\nheartbeat_secs = 1`).
    pub fn write_config(&self, extra: &str) {
        fs::write(
            &self.config,
            format!(
                "state_dir = {:?}\n{extra}\n[[fim.paths]]\npath = {:?}\nrealtime = true\n",
                self.state_dir.to_str().unwrap(),
                self.watched.to_str().unwrap()
            ),
        )
        .unwrap();
    }

    pub fn start(&mut self) {
        let log = self.state_dir.join(format!("run-{}.log", rand_suffix()));
        self.process = Some(Process::spawn(
            Command::new(bin("bannin-agent"))
                .arg("run")
                .arg("--config")
                .arg(&self.config),
            log,
        ));
        // The started event marks a running pipeline.
        let p = self.process.as_mut().unwrap();
        wait_for("agent to start", Duration::from_secs(20), || {
            assert!(p.is_running(), "agent exited early; log:\n{}", p.log_text());
            p.log_text().contains("first scan finished").then_some(())
        });
    }

    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop();
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }

    pub fn outbox_pending(&self) -> u64 {
        let out = run_ok(
            Command::new(bin("bannin-agent"))
                .args(["outbox", "--state-dir"])
                .arg(&self.state_dir)
                .arg("pending"),
        );
        out.trim().parse().unwrap()
    }

    pub fn log_text(&self) -> String {
        self.process
            .as_ref()
            .map(Process::log_text)
            .unwrap_or_default()
    }

    /// The client identity from the state dir, to speak to the manager as this agent.
    pub fn identity(&self) -> bannin_pki::ClientIdentity {
        bannin_pki::ClientIdentity {
            cert_pem: fs::read_to_string(self.state_dir.join("agent.pem")).unwrap(),
            key_pem: fs::read_to_string(self.state_dir.join("agent.key")).unwrap(),
        }
    }
}

/// Sequence numbers of an agent's stored events must be exactly 1..=n: nothing lost, nothing doubled.
pub fn assert_contiguous_seqs(events: &[Value], agent_id: &str) -> u64 {
    let mut seqs: Vec<u64> = events
        .iter()
        .filter(|e| e["agent_id"] == agent_id)
        .filter_map(|e| e["seq"].as_u64())
        .collect();
    seqs.sort_unstable();
    let n = seqs.len() as u64;
    for (i, s) in seqs.iter().enumerate() {
        assert_eq!(
            *s,
            i as u64 + 1,
            "sequence gap or duplicate at position {i} (of {n})"
        );
    }
    n
}
