//! Log inspection end to end: a line appended to a file the agent follows becomes a `log` event in
//! the manager, with the rule, the decoded fields and the line itself.

use std::fs;
use std::io::Write;
use std::time::Duration;

use bannin_e2e::{wait_for, Agent, Manager};

/// A small sshd ruleset written here, so the test does not depend on the default rules' wording.
const DECODERS: &str = r#"
<decoder name="sshd"><program_name>^sshd</program_name></decoder>
<decoder name="sshd-fail"><parent>sshd</parent><prematch>^Failed \S+ </prematch>
  <regex offset="after_prematch">^for (\S+) from (\S+) port</regex><order>user, srcip</order></decoder>
"#;
const RULES: &str = r#"
<group name="syslog,sshd,">
  <rule id="5700" level="0" noalert="1"><decoded_as>sshd</decoded_as><description>sshd messages</description></rule>
  <rule id="5716" level="5"><if_sid>5700</if_sid><match>Failed password</match>
    <description>sshd: authentication failed.</description><group>authentication_failed,</group>
    <mitre><id>T1110.001</id></mitre></rule>
</group>
"#;

#[test]
fn sshd_failure_appended_to_a_followed_file_is_a_log_event_at_the_manager() {
    let tmp = tempfile::tempdir().unwrap();
    let mut manager = Manager::init(tmp.path());
    manager.start();
    let mut agent = Agent::enroll(tmp.path(), &manager, "logs-1");
    let rules = tmp.path().join("sshd-ruleset");
    fs::create_dir_all(&rules).unwrap();
    fs::write(rules.join("sshd_decoders.xml"), DECODERS).unwrap();
    fs::write(rules.join("sshd_rules.xml"), RULES).unwrap();
    let log = tmp.path().join("auth.log");
    fs::write(
        &log,
        "Mar  1 09:00:00 web1 sshd[10]: Failed password for old from 192.0.2.1 port 1 ssh2\n",
    )
    .unwrap();
    agent.write_config(&format!(
        "[logs]\nruleset = [{:?}]\n[[logs.files]]\npath = {:?}\nlabel = \"auth\"\n",
        rules.to_str().unwrap(),
        log.to_str().unwrap()
    ));
    agent.start();
    let p = agent.process.as_ref().unwrap();
    wait_for("the collector to start", Duration::from_secs(20), || {
        p.log_text().contains("logs: collecting").then_some(())
    });
    let mut f = fs::OpenOptions::new().append(true).open(&log).unwrap();
    writeln!(
        f,
        "Mar  1 10:00:05 web1 sshd[4242]: Failed password for root from 203.0.113.9 port 51000 ssh2"
    )
    .unwrap();
    drop(f);
    let e = wait_for(
        "the log event in the manager",
        Duration::from_secs(20),
        || manager.events(&["--kind", "log"]).into_iter().next(),
    );
    assert_eq!(e["agent_id"], agent.agent_id.as_str());
    assert_eq!(e["rule_id"], 5716);
    assert_eq!(e["level"], 5);
    assert_eq!(e["title"], "sshd: authentication failed.");
    assert!(e["groups"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g == "authentication_failed"));
    let b = &e["body"];
    // OSSEC's `user` in <order> is the destination user.
    assert_eq!(b["fields"]["dstuser"], "root");
    assert_eq!(b["fields"]["srcip"], "203.0.113.9");
    assert_eq!(b["location"], log.to_str().unwrap());
    assert_eq!(b["label"], "auth");
    assert_eq!(b["mitre"][0], "T1110.001");
    assert!(b["full_log"].as_str().unwrap().contains("203.0.113.9"));
    // The line present before the first start is history (only_future_events): no event for it.
    std::thread::sleep(Duration::from_secs(1));
    let all = manager.events(&["--kind", "log"]);
    assert_eq!(all.len(), 1, "{all:?}");
    agent.stop();
}
