//! Hostile and malformed requests get a 4xx with a message, never a crash; the manager keeps serving.

use std::time::Duration;

use bannin_e2e::{Agent, Manager};
use reqwest::blocking::Client;
use serde_json::Value;

fn error_of(resp: reqwest::blocking::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().expect("errors are JSON");
    (
        status,
        body["error"].as_str().expect("error field").to_string(),
    )
}

#[test]
fn malformed_oversized_unknown_and_unauthenticated_requests_get_4xx_with_a_message() {
    let tmp = tempfile::tempdir().unwrap();
    let mut manager = Manager::init(tmp.path());
    manager.start();
    let agent = Agent::enroll(tmp.path(), &manager, "target");
    let url = manager.url();
    let anon: Client = manager.http();
    let as_agent: Client = manager.http_with(Some(&agent.identity()));

    // Malformed JSON.
    let (status, msg) = error_of(
        anon.post(format!("{url}/api/v1/enroll"))
            .header("content-type", "application/json")
            .body("{\"token\": ")
            .send()
            .unwrap(),
    );
    assert_eq!(status, 400, "{msg}");
    assert!(msg.contains("request body"), "{msg}");

    // Unknown field.
    let (status, msg) = error_of(
        anon.post(format!("{url}/api/v1/enroll"))
            .json(&serde_json::json!({"token": "x", "csr_pem": "y", "name": "n", "admin": true}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 422, "{msg}");
    assert!(msg.contains("admin"), "{msg}");

    // Garbage CSR with a valid shape: refused before any token is consumed.
    let (status, msg) = error_of(
        anon.post(format!("{url}/api/v1/enroll"))
            .json(&serde_json::json!({"token": "x", "csr_pem": "not a csr", "name": "n"}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 400);
    assert!(msg.contains("csr_pem"), "{msg}");

    // Oversized body.
    // The manager may answer 413 and close before the client has finished sending; either way the
    // body is refused, and any answer that does arrive must be the 413.
    let big = vec![b'a'; 17 * 1024 * 1024];
    if let Ok(resp) = as_agent
        .post(format!("{url}/api/v1/events"))
        .body(big)
        .send()
    {
        let (status, msg) = error_of(resp);
        assert_eq!(status, 413, "{msg}");
        assert!(msg.contains("larger than"), "{msg}");
    }
    // That connection was closed mid-upload; continue on a fresh one.
    let as_agent: Client = manager.http_with(Some(&agent.identity()));

    // Not zstd, and a zstd bomb.
    let (status, msg) = error_of(
        as_agent
            .post(format!("{url}/api/v1/events"))
            .body("plain text")
            .send()
            .unwrap(),
    );
    assert_eq!(status, 400);
    assert!(msg.contains("zstd"), "{msg}");
    let bomb = zstd::bulk::compress(&vec![b' '; 100 * 1024 * 1024], 19).unwrap();
    let (status, msg) = error_of(
        as_agent
            .post(format!("{url}/api/v1/events"))
            .body(bomb)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 400);
    assert!(msg.contains("decompresses to more than"), "{msg}");

    // A batch impersonating another agent.
    let batch = bannin_proto::EventBatch {
        agent_id: "someone-else".into(),
        events: vec![],
    };
    let (status, msg) = error_of(
        as_agent
            .post(format!("{url}/api/v1/events"))
            .body(bannin_proto::encode_batch(&batch))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 403);
    assert!(msg.contains("someone-else"), "{msg}");

    // Unauthenticated and wrongly authenticated admin calls.
    for path in ["/api/v1/agents", "/api/v1/events", "/api/v1/agents/x"] {
        let (status, msg) = error_of(anon.get(format!("{url}{path}")).send().unwrap());
        assert_eq!(status, 401, "{path}: {msg}");
        let (status, _) = error_of(
            anon.get(format!("{url}{path}"))
                .bearer_auth("bna_nope")
                .send()
                .unwrap(),
        );
        assert_eq!(status, 401, "{path}");
    }
    let (status, _) = error_of(
        anon.post(format!("{url}/api/v1/tokens"))
            .json(&serde_json::json!({"ttl_secs": 60, "uses": 1}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 401);

    // Bad query values and unknown query keys.
    let admin = |path: &str| {
        anon.get(format!("{url}{path}"))
            .bearer_auth(&manager.admin_token)
            .send()
            .unwrap()
    };
    let (status, msg) = error_of(admin("/api/v1/events?kind=disk"));
    assert_eq!(status, 400);
    assert!(msg.contains("kind"), "{msg}");
    let (status, msg) = error_of(admin("/api/v1/events?since=yesterday"));
    assert_eq!(status, 400);
    assert!(msg.contains("RFC 3339"), "{msg}");
    let (status, msg) = error_of(admin("/api/v1/events?drop_table=1"));
    assert_eq!(status, 400, "{msg}");
    let (status, msg) = error_of(admin("/api/v1/agents/does-not-exist"));
    assert_eq!(status, 404);
    assert!(msg.contains("does-not-exist"));
    let (status, _) = error_of(admin("/nowhere"));
    assert_eq!(status, 404);

    // Token requests out of range.
    let (status, msg) = error_of(
        anon.post(format!("{url}/api/v1/tokens"))
            .bearer_auth(&manager.admin_token)
            .json(&serde_json::json!({"ttl_secs": 0, "uses": 1}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 400, "{msg}");

    // Still serving, and nothing accepted before was lost.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        anon.get(format!("{url}/healthz")).send().unwrap().status(),
        200
    );
    let agents: Vec<Value> = admin("/api/v1/agents").json().unwrap();
    assert_eq!(agents.len(), 1);
    assert!(
        manager.process.as_mut().unwrap().is_running(),
        "{}",
        manager.log_text()
    );
    assert!(
        !manager.log_text().contains("panicked"),
        "{}",
        manager.log_text()
    );
}
