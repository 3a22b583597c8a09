//! Live capture end to end: in a private network namespace (so no other traffic of the machine is
//! seen), `run_net_source` captures on loopback, the DPI engine alerts on an HTTP request, and the
//! kernel filter hides the manager connection. Needs root (unshare, AF_PACKET); skips otherwise.

use bannin_agent::net::live::{run_net_source, NetConfig, NET_STATS};
use bannin_proto::{Event, EventKind};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

fn enter_private_netns() -> Result<(), String> {
    // SAFETY: plain system calls; unshare affects only this thread (and what it spawns).
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root".into());
    }
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(format!(
            "unshare(CLONE_NEWNET): {}",
            std::io::Error::last_os_error()
        ));
    }
    let st = std::process::Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .map_err(|e| format!("ip: {e}"))?;
    if !st.success() {
        return Err("ip link set lo up failed".into());
    }
    Ok(())
}

fn exchange(port: u16, request: &[u8]) {
    let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let srv = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut b = [0u8; 4096];
        let _ = s.read(&mut b);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    });
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.write_all(request).unwrap();
    let mut b = Vec::new();
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut chunk = [0u8; 1024];
    if let Ok(n) = c.read(&mut chunk) {
        b.extend_from_slice(&chunk[..n]);
    }
    drop(c);
    srv.join().unwrap();
}

#[test]
fn live_capture_alerts_on_loopback_http_and_hides_the_manager_connection() {
    // The whole test runs on a thread of its own, which alone enters the new namespace.
    let h = std::thread::spawn(|| {
        if let Err(why) = enter_private_netns() {
            println!("SKIP: live capture test needs a private network namespace: {why}");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("t.rules");
        std::fs::write(
            &rules,
            "alert http any any -> any any (msg:\"test sqli\"; flow:to_server,established; http.uri; content:\"UNION SELECT\"; nocase; sid:9999001; rev:1;)\n\
             alert tcp any any -> any any (msg:\"manager traffic seen\"; content:\"enrolment-secret\"; sid:9999002; rev:1;)\n",
        )
        .unwrap();
        let cfg = NetConfig {
            interfaces: vec!["lo".into()],
            rules: vec![rules],
            stats_interval_secs: 1,
            ..NetConfig::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Event>(1024);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let before = NET_STATS.snapshot();
        let events = rt.block_on(async move {
            let src = tokio::spawn(async move {
                run_net_source(
                    cfg,
                    std::path::Path::new("/tmp"),
                    Some("127.0.0.1:7777".parse().unwrap()),
                    tx,
                    async {
                        let _ = stop_rx.await;
                    },
                )
                .await
            });
            tokio::time::sleep(Duration::from_millis(300)).await;
            tokio::task::spawn_blocking(|| {
                exchange(
                    8080,
                    b"GET /items?id=1%20UNION%20SELECT%20password%20FROM%20users HTTP/1.1\r\nHost: shop\r\n\r\n",
                );
                exchange(7777, b"POST /enroll HTTP/1.1\r\nContent-Length: 16\r\n\r\nenrolment-secret");
            })
            .await
            .unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
            let _ = stop_tx.send(());
            src.await.unwrap().unwrap();
            let mut v = Vec::new();
            while let Ok(e) = rx.try_recv() {
                v.push(e);
            }
            v
        });
        Some((events, before))
    });
    let Some((events, before)) = h.join().unwrap() else {
        return;
    };
    let net: Vec<&Event> = events.iter().filter(|e| e.kind == EventKind::Net).collect();
    assert!(
        net.iter().any(|e| e.rule_id == 9_999_001
            && e.title == "test sqli"
            && e.body["dest_port"] == 8080
            && e.body["in_iface"] == "lo"),
        "no alert for the HTTP request: {events:#?}"
    );
    assert!(
        !net.iter().any(|e| e.rule_id == 9_999_002),
        "the manager connection should be filtered in the kernel: {events:#?}"
    );
    let after = NET_STATS.snapshot();
    assert!(after.packets > before.packets);
}
