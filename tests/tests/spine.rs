//! The foundation end to end: a real manager over real mTLS with a real SQLite file, real agents
//! watching real directories.

use std::fs;
use std::process::Command;
use std::time::Duration;

use bannin_e2e::{assert_contiguous_seqs, bin, run, run_ok, wait_for, Agent, Manager};

fn fim_paths(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| e["body"]["path"].as_str().map(String::from))
        .collect()
}

#[test]
fn enrolled_agent_file_change_is_visible_through_api_and_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let mut manager = Manager::init(tmp.path());
    manager.start();
    let mut agent = Agent::enroll(tmp.path(), &manager, "web-1");
    agent.start();
    let file = agent.watched.join("index.html");
    fs::write(&file, "<h1>hello</h1>").unwrap();
    let file = file.to_str().unwrap().to_string();

    let stored = wait_for("the fim event in the CLI", Duration::from_secs(20), || {
        let events = manager.events(&["--kind", "fim"]);
        events
            .into_iter()
            .find(|e| e["body"]["path"] == file.as_str())
    });
    assert_eq!(stored["agent_id"], agent.agent_id.as_str());
    assert_eq!(stored["rule_id"], 554);
    assert!(stored["title"].as_str().unwrap().contains("File added"));

    // The same through the HTTP API, authenticated as admin.
    let api: Vec<serde_json::Value> = manager
        .http()
        .get(format!(
            "{}/api/v1/events?kind=fim&agent={}",
            manager.url(),
            agent.agent_id
        ))
        .bearer_auth(&manager.admin_token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(fim_paths(&api).contains(&file), "API events: {api:?}");

    // The agent shows as connected once its first heartbeat is in, and its lifecycle is recorded.
    let agents = manager.agents();
    assert_eq!(agents.len(), 1);
    assert_eq!(agents[0]["name"], "web-1");
    let lifecycle = manager.events(&["--kind", "agent"]);
    let rules: Vec<u64> = lifecycle
        .iter()
        .filter_map(|e| e["rule_id"].as_u64())
        .collect();
    assert!(
        rules.contains(&501) && rules.contains(&503),
        "enrolled and started events: {rules:?}"
    );

    // Table output names the agent.
    let table = run_ok(manager.cli().args(["events", "--kind", "fim"]));
    assert!(
        table.contains("web-1") && table.contains("index.html"),
        "{table}"
    );

    agent.stop();
    let stopped = wait_for("stopped event", Duration::from_secs(10), || {
        manager
            .events(&["--kind", "agent"])
            .into_iter()
            .find(|e| e["rule_id"] == 506)
    });
    assert_eq!(stored["agent_id"], stopped["agent_id"]);
    manager.stop();
}

#[test]
fn remote_admin_commands_work_over_the_api_with_the_admin_token() {
    let tmp = tempfile::tempdir().unwrap();
    let mut manager = Manager::init(tmp.path());
    manager.start();
    let remote_as = |token: &str, args: &[&str]| {
        let mut cmd = Command::new(bin("bannin-manager"));
        cmd.args(args)
            .args(["--url", &manager.url(), "--token", token])
            .args(["--ca-fingerprint", &manager.ca_fingerprint])
            .env_remove("BANNIN_DATA_DIR");
        cmd
    };
    let remote = |args: &[&str]| remote_as(&manager.admin_token, args);
    let out = run_ok(&mut remote(&[
        "token", "create", "--json", "--uses", "3", "--ttl", "2h",
    ]));
    let token: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(token["uses"], 3);
    assert!(token["token"].as_str().unwrap().starts_with("bne_"));
    let _agent = Agent::enroll(tmp.path(), &manager, "db-1");
    let out = run_ok(&mut remote(&["agents", "--json"]));
    assert!(out.contains("db-1"), "{out}");
    let out = run_ok(&mut remote(&["events", "--json", "--kind", "agent"]));
    assert!(out.contains("\"rule_id\":501"), "{out}");

    let out = run(&mut remote_as("bna_wrong", &["agents"]));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("401") && err.contains("admin token not recognised"),
        "{err}"
    );
}

#[test]
fn enrollment_is_refused_for_expired_used_up_or_unknown_tokens_and_wrong_ca_fingerprint() {
    let tmp = tempfile::tempdir().unwrap();
    let mut manager = Manager::init(tmp.path());
    manager.start();
    let enroll = |token: &str, fingerprint: &str, dir: &str| {
        run(Command::new(bin("bannin-agent"))
            .args([
                "enroll",
                "--manager",
                &manager.url(),
                "--token",
                token,
                "--ca-fingerprint",
                fingerprint,
            ])
            .arg("--state-dir")
            .arg(tmp.path().join(dir)))
    };
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).to_string();

    let once = manager.create_token("1h", 1);
    assert!(enroll(&once, &manager.ca_fingerprint, "a1")
        .status
        .success());
    let again = enroll(&once, &manager.ca_fingerprint, "a2");
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("no uses left"),
        "{}",
        stderr(&again)
    );

    let short = manager.create_token("1s", 5);
    std::thread::sleep(Duration::from_millis(2100));
    let late = enroll(&short, &manager.ca_fingerprint, "a3");
    assert!(!late.status.success());
    assert!(stderr(&late).contains("expired"), "{}", stderr(&late));

    let unknown = enroll("bne_0000", &manager.ca_fingerprint, "a4");
    assert!(
        stderr(&unknown).contains("not known"),
        "{}",
        stderr(&unknown)
    );

    let good = manager.create_token("1h", 1);
    let other_ca = bannin_pki::fingerprint(b"some other CA");
    let pinned = enroll(&good, &other_ca, "a5");
    assert!(!pinned.status.success());
    assert!(
        stderr(&pinned).contains("fingerprint does not match"),
        "{}",
        stderr(&pinned)
    );
    assert!(
        !tmp.path().join("a5").join("identity.toml").exists(),
        "nothing saved on a refused enrollment"
    );
    // The token was not consumed by the refused attempt.
    assert!(enroll(&good, &manager.ca_fingerprint, "a6")
        .status
        .success());
    assert_eq!(manager.agents().len(), 2);
}

#[test]
fn agent_routes_refuse_missing_or_foreign_client_certificates() {
    let tmp = tempfile::tempdir().unwrap();
    let mut manager = Manager::init(tmp.path());
    manager.start();
    let agent = Agent::enroll(tmp.path(), &manager, "web-2");
    let hb = serde_json::json!({"agent_version": "t", "uptime_secs": 1, "outbox_pending": 0, "outbox_dropped": 0});

    // No client certificate: a 401 that says what is needed.
    let resp = manager
        .http()
        .post(format!("{}/api/v1/heartbeat", manager.url()))
        .json(&hb)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.text().unwrap().contains("client certificate"));

    // A certificate from another CA: the TLS handshake itself is refused.
    let (foreign_ca, _) = bannin_pki::CertificateAuthority::generate("evil").unwrap();
    let key = bannin_pki::AgentKey::generate("intruder").unwrap();
    let cert = foreign_ca
        .sign_agent_csr(&key.csr_pem, &agent.agent_id, 30)
        .unwrap();
    let foreign = bannin_pki::ClientIdentity {
        cert_pem: cert,
        key_pem: key.key_pem,
    };
    let result = manager
        .http_with(Some(&foreign))
        .post(format!("{}/api/v1/heartbeat", manager.url()))
        .json(&hb)
        .send();
    match result {
        Err(_) => {}
        Ok(resp) => panic!("a foreign certificate was answered with {}", resp.status()),
    }

    // The real agent certificate works, and the server kept serving through all of it.
    let resp = manager
        .http_with(Some(&agent.identity()))
        .post(format!("{}/api/v1/heartbeat", manager.url()))
        .json(&hb)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().unwrap_or_default());
}

#[test]
fn events_produced_while_the_manager_is_down_are_all_stored_exactly_once_after_restart() {
    const FILES: usize = 10_000;
    let tmp = tempfile::tempdir().unwrap();
    let mut manager = Manager::init(tmp.path());
    manager.start();
    let mut agent = Agent::enroll(tmp.path(), &manager, "busy");
    agent.start();
    manager.stop();

    for chunk in 0..(FILES / 500) {
        for i in 0..500 {
            let n = chunk * 500 + i;
            fs::write(
                agent.watched.join(format!("f{n:05}.txt")),
                format!("file {n}\n"),
            )
            .unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_for(
        "10,000 events queued in the outbox",
        Duration::from_secs(120),
        || (agent.outbox_pending() >= FILES as u64).then_some(()),
    );

    manager.start();
    let events = wait_for("all file events stored", Duration::from_secs(180), || {
        let events = manager.events(&["--agent", &agent.agent_id]);
        let added = events.iter().filter(|e| e["rule_id"] == 554).count();
        (added >= FILES).then_some(events)
    });
    let mut paths: Vec<String> = events
        .iter()
        .filter(|e| e["rule_id"] == 554)
        .flat_map(|e| fim_paths(&[e.clone()]))
        .collect();
    let total = paths.len();
    paths.sort();
    paths.dedup();
    assert_eq!(total, FILES, "every file reported exactly once as added");
    assert_eq!(paths.len(), FILES);
    assert_contiguous_seqs(&events, &agent.agent_id);
    agent.stop();
    manager.stop();
}

#[test]
fn agent_killed_mid_delivery_resends_without_loss_or_duplicates() {
    const QUEUED: u64 = 60_000;
    let tmp = tempfile::tempdir().unwrap();
    let mut manager = Manager::init(tmp.path());
    manager.start();
    let mut agent = Agent::enroll(tmp.path(), &manager, "victim");
    agent.write_config("[outbox]\nbatch_events = 500\n");
    // Queue a stream of events, then let the agent deliver part of it before SIGKILL.
    run_ok(
        Command::new(bin("bannin-agent"))
            .args([
                "outbox",
                "fill",
                "--count",
                &QUEUED.to_string(),
                "--state-dir",
            ])
            .arg(&agent.state_dir),
    );
    agent.start();
    wait_for("delivery under way", Duration::from_secs(60), || {
        let stored = manager
            .events(&["--agent", &agent.agent_id, "--kind", "agent"])
            .len();
        (stored > 1000).then_some(())
    });
    agent.kill();
    let partial = manager.events(&["--agent", &agent.agent_id]).len();
    assert!(
        (partial as u64) < QUEUED,
        "kill should land mid-delivery (stored {partial})"
    );

    agent.start();
    let events = wait_for(
        "everything delivered after restart",
        Duration::from_secs(180),
        || {
            let events = manager.events(&["--agent", &agent.agent_id]);
            let synthetic = events.iter().filter(|e| e["rule_id"] == 999).count() as u64;
            (synthetic >= QUEUED).then_some(events)
        },
    );
    let synthetic = events.iter().filter(|e| e["rule_id"] == 999).count() as u64;
    assert_eq!(synthetic, QUEUED);
    assert_contiguous_seqs(&events, &agent.agent_id);
    agent.stop();
    manager.stop();
}

#[test]
fn silent_agent_is_reported_disconnected() {
    let tmp = tempfile::tempdir().unwrap();
    let mut manager = Manager::init(tmp.path()).disconnect_after("2s");
    manager.start();
    let mut agent = Agent::enroll(tmp.path(), &manager, "flaky");
    agent.write_config("[manager]\nheartbeat_secs = 1\n");
    agent.start();
    wait_for("connected", Duration::from_secs(20), || {
        (manager.agents()[0]["status"] == "connected").then_some(())
    });
    agent.kill();
    let event = wait_for("disconnected event", Duration::from_secs(20), || {
        manager
            .events(&["--kind", "agent"])
            .into_iter()
            .find(|e| e["rule_id"] == 504)
    });
    assert_eq!(event["agent_id"], agent.agent_id.as_str());
    assert_eq!(manager.agents()[0]["status"], "disconnected");
    manager.stop();
}

#[test]
fn bad_agent_config_names_the_key_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("agent.toml");
    fs::write(
        &config,
        "state_dir = \"/tmp/x\"\n[manager]\nheartbeat = 5\n",
    )
    .unwrap();
    let out = run(Command::new(bin("bannin-agent"))
        .arg("run")
        .arg("--config")
        .arg(&config));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("agent.toml") && err.contains("line 3") && err.contains("heartbeat"),
        "{err}"
    );
}
