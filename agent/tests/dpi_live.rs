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

/// Benchmark, not a check (run by `bench/dpi.sh live`): UDP traffic at increasing rates over a
/// veth pair between two network namespaces, captured with the ET Open rules; prints for each
/// offered rate what was captured and what the kernel dropped.
#[test]
#[ignore]
fn live_capture_drop_rate_on_veth() {
    use std::os::fd::AsRawFd;
    let et = std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/corpus/dpi/et-open"
    ));
    let rules = if et.is_dir() {
        et
    } else {
        println!("note: ../shared absent, measuring with the default Bannin rules");
        std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../signatures/dpi"))
    };
    let sh = |c: &str| {
        std::process::Command::new("sh")
            .args(["-c", c])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    sh("ip netns del bnb-a 2>/dev/null; ip netns del bnb-b 2>/dev/null");
    if !sh("ip netns add bnb-a && ip netns add bnb-b && ip link add bnb-va netns bnb-a type veth peer name bnb-vb netns bnb-b \
            && ip -n bnb-a addr add 10.99.0.1/24 dev bnb-va && ip -n bnb-b addr add 10.99.0.2/24 dev bnb-vb \
            && ip -n bnb-a link set bnb-va up && ip -n bnb-b link set bnb-vb up && ip -n bnb-a link set lo up && ip -n bnb-b link set lo up")
    {
        println!("SKIP: cannot create network namespaces and a veth pair (needs root and iproute2)");
        sh("ip netns del bnb-a 2>/dev/null; ip netns del bnb-b 2>/dev/null");
        return;
    }
    let enter = |ns: &str| {
        let f = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
        // SAFETY: setns on a namespace file descriptor for this thread only.
        assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let cap = std::thread::spawn(move || {
        enter("bnb-b");
        // Something listening, so the receiver does not answer with ICMP errors.
        let sink = std::net::UdpSocket::bind("10.99.0.2:9999").unwrap();
        sink.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let sink_stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s2 = sink_stop.clone();
        let drain = std::thread::spawn(move || {
            let mut b = [0u8; 2048];
            while !s2.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = sink.recv(&mut b);
            }
        });
        let cfg = NetConfig {
            interfaces: vec!["bnb-vb".into()],
            rules: vec![rules],
            stats_interval_secs: 1,
            ..NetConfig::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Event>(65536);
        rt.block_on(async move {
            let drain_events = tokio::spawn(async move { while rx.recv().await.is_some() {} });
            let src = tokio::spawn(run_net_source(
                cfg,
                std::path::Path::new("/tmp"),
                None,
                tx,
                async {
                    let _ = stop_rx.await;
                },
            ));
            tokio::time::sleep(Duration::from_secs(3)).await;
            ready_tx.send(()).unwrap();
            src.await.unwrap().unwrap();
            drain_events.await.unwrap();
        });
        sink_stop.store(true, std::sync::atomic::Ordering::Relaxed);
        drain.join().unwrap();
    });
    ready_rx.recv().unwrap();
    let results = std::thread::spawn(move || {
        enter("bnb-a");
        let s = std::net::UdpSocket::bind("10.99.0.1:0").unwrap();
        let mut payload = Vec::new();
        while payload.len() < 512 {
            payload.extend_from_slice(
                b"GET /index.html?user=alice&item=1234 HTTP/1.1 Host: shop.example ",
            );
        }
        payload.truncate(512);
        let mut rows = Vec::new();
        for rate in [
            10_000u64, 25_000, 50_000, 75_000, 100_000, 150_000, 200_000, 300_000,
        ] {
            let before = NET_STATS.snapshot();
            let t0 = std::time::Instant::now();
            let mut sent = 0u64;
            while t0.elapsed() < Duration::from_secs(2) {
                let due = (t0.elapsed().as_secs_f64() * rate as f64) as u64;
                while sent < due {
                    if s.send_to(&payload, "10.99.0.2:9999").is_ok() {
                        sent += 1;
                    }
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            let secs = t0.elapsed().as_secs_f64();
            std::thread::sleep(Duration::from_millis(2500));
            let after = NET_STATS.snapshot();
            rows.push((
                rate,
                sent as f64 / secs,
                after.packets - before.packets,
                after.kernel_drops - before.kernel_drops,
                sent,
            ));
        }
        rows
    })
    .join()
    .unwrap();
    let _ = stop_tx.send(());
    cap.join().unwrap();
    sh("ip netns del bnb-a; ip netns del bnb-b");
    println!("offered pkt/s | achieved pkt/s | sent | captured | kernel drops | drop %  (512-byte UDP payloads)");
    for (rate, got, cap, drops, sent) in results {
        println!(
            "{rate:>13} | {got:>14.0} | {sent:>7} | {cap:>8} | {drops:>12} | {:>5.1}",
            drops as f64 * 100.0 / sent.max(1) as f64
        );
    }
}
