//! FIM by scan, through `bannin-agent fim baseline/check/restore` on real files in temp dirs.

use serde_json::Value;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_bannin-agent");

struct Fx {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    w: PathBuf,
    config: PathBuf,
}

fn fx(extra_path_lines: &str, extra_fim: &str) -> Fx {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let w = root.join("w");
    std::fs::create_dir_all(&w).unwrap();
    let config = root.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{}/state\"\n[manager]\nurl = \"https://manager.invalid:1515\"\n[fim]\n{extra_fim}\n[[fim.paths]]\npath = \"{}\"\n{extra_path_lines}\n",
            root.display(),
            w.display()
        ),
    )
    .unwrap();
    Fx {
        _tmp: tmp,
        root,
        w,
        config,
    }
}

fn run(args: &[&str], config: &Path) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("fim")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn baseline(f: &Fx) {
    let (code, _, err) = run(&["baseline"], &f.config);
    assert_eq!(code, 0, "{err}");
}

/// `fim check --json`: (exit code, change events).
fn check(f: &Fx) -> (i32, Vec<Value>, Vec<Value>) {
    let (code, out, err) = run(&["check", "--json"], &f.config);
    assert!(code == 0 || code == 1, "exit {code}: {err}");
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    (
        code,
        doc["changes"].as_array().unwrap().clone(),
        doc["errors"].as_array().unwrap().clone(),
    )
}

fn find<'a>(evs: &'a [Value], path: &Path) -> Vec<&'a Value> {
    let p = path.display().to_string();
    evs.iter()
        .filter(|e| e["body"]["path"] == p.as_str())
        .collect()
}

#[test]
fn unchanged_tree_checks_clean_and_exits_zero() {
    let f = fx("", "");
    std::fs::write(f.w.join("a"), "a").unwrap();
    baseline(&f);
    let (code, ch, _) = check(&f);
    assert_eq!((code, ch.len()), (0, 0), "{ch:?}");
}

#[test]
fn every_change_type_is_found_by_scan_with_before_and_after() {
    let f = fx("", "");
    let w = &f.w;
    for n in ["mod", "del", "perm", "own", "touch", "link_src"] {
        std::fs::write(w.join(n), n).unwrap();
    }
    std::os::unix::fs::symlink("mod", w.join("ln")).unwrap();
    std::fs::create_dir_all(w.join("gone/deep")).unwrap();
    std::fs::write(w.join("gone/deep/x"), "x").unwrap();
    std::fs::write(w.join("type"), "file").unwrap();
    baseline(&f);

    std::fs::write(w.join("mod"), "changed").unwrap();
    std::fs::remove_file(w.join("del")).unwrap();
    std::fs::set_permissions(w.join("perm"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    std::os::unix::fs::lchown(w.join("own"), Some(4321), Some(4321)).unwrap();
    let t = std::fs::File::options()
        .write(true)
        .open(w.join("touch"))
        .unwrap();
    t.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000))
        .unwrap();
    std::fs::remove_file(w.join("ln")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", w.join("ln")).unwrap();
    std::fs::remove_dir_all(w.join("gone")).unwrap();
    std::fs::remove_file(w.join("type")).unwrap();
    std::fs::create_dir(w.join("type")).unwrap();
    std::fs::write(w.join("added"), "new").unwrap();

    let (code, ch, errs) = check(&f);
    assert_eq!(code, 1);
    assert!(errs.is_empty(), "{errs:?}");
    let one = |name: &str| {
        let v = find(&ch, &w.join(name));
        assert_eq!(v.len(), 1, "{name}: {ch:#?}");
        v[0].clone()
    };
    let m = one("mod");
    assert_eq!(
        (m["rule_id"].as_u64(), m["body"]["change"].as_str()),
        (Some(550), Some("modified"))
    );
    assert_ne!(m["body"]["before"]["blake3"], m["body"]["after"]["blake3"]);
    assert_eq!(one("del")["rule_id"], 553);
    assert_eq!(one("added")["rule_id"], 554);
    let p = one("perm");
    assert_eq!(p["rule_id"], 556);
    assert_eq!(p["body"]["after"]["mode"], "4755");
    assert!(
        p["level"].as_u64().unwrap() >= 12,
        "new setuid bit must rank high: {p}"
    );
    let o = one("own");
    assert_eq!(
        o["body"]["changed_attributes"],
        serde_json::json!(["owner", "group"])
    );
    assert_eq!(
        one("touch")["body"]["changed_attributes"],
        serde_json::json!(["mtime"])
    );
    let l = one("ln");
    assert_eq!(l["body"]["after"]["target"], "/etc/passwd");
    assert_eq!(one("type")["body"]["changed_attributes"][0], "type");
    // A deleted directory reports every entry it held.
    for p in ["gone", "gone/deep", "gone/deep/x"] {
        assert_eq!(one(p)["rule_id"], 553, "{p}");
    }
    // Levels are in range and every event validates.
    for e in &ch {
        let ev: bannin_proto::Event = serde_json::from_value(e.clone()).unwrap();
        assert!(ev.validate().is_ok());
    }
}

#[test]
fn a_move_is_reported_once_as_a_rename_pair() {
    let f = fx("", "");
    std::fs::create_dir(f.w.join("d")).unwrap();
    std::fs::write(f.w.join("d/old"), "content").unwrap();
    baseline(&f);
    std::fs::rename(f.w.join("d/old"), f.w.join("new")).unwrap();
    let (_, ch, _) = check(&f);
    let r: Vec<&Value> = ch.iter().filter(|e| e["rule_id"] == 555).collect();
    assert_eq!(r.len(), 1, "{ch:#?}");
    assert_eq!(
        r[0]["body"]["renamed_from"],
        f.w.join("d/old").display().to_string()
    );
    assert_eq!(r[0]["body"]["path"], f.w.join("new").display().to_string());
    assert!(
        find(&ch, &f.w.join("d/old")).is_empty(),
        "no separate deletion: {ch:#?}"
    );
}

#[test]
fn special_files_symlink_loops_and_non_utf8_names_are_recorded_without_hanging() {
    let f = fx("", "");
    let w = &f.w;
    assert!(Command::new("mkfifo")
        .arg(w.join("fifo"))
        .status()
        .unwrap()
        .success());
    let _sock = std::os::unix::net::UnixListener::bind(w.join("sock")).unwrap();
    std::os::unix::fs::symlink("loop2", w.join("loop1")).unwrap();
    std::os::unix::fs::symlink("loop1", w.join("loop2")).unwrap();
    let odd = w.join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt"));
    std::fs::write(&odd, "latin-1 name").unwrap();
    baseline(&f);
    let (code, ch, errs) = check(&f);
    assert_eq!((code, ch.len(), errs.len()), (0, 0, 0), "{ch:?} {errs:?}");
    std::fs::write(&odd, "changed").unwrap();
    std::fs::remove_file(w.join("fifo")).unwrap();
    let (_, ch, _) = check(&f);
    let e = ch
        .iter()
        .find(|e| e["rule_id"] == 550)
        .expect("modified event for the non-UTF-8 name");
    assert!(
        e["body"]["path"]
            .as_str()
            .unwrap()
            .ends_with("caf\\xe9.txt"),
        "{e}"
    );
    assert_eq!(
        e["body"]["path_hex"],
        hex::encode(odd.as_os_str().as_bytes())
    );
    assert!(
        ch.iter()
            .any(|e| e["rule_id"] == 553 && e["body"]["before"]["type"] == "fifo"),
        "{ch:#?}"
    );
}

#[test]
fn unreadable_files_give_an_error_event_and_the_scan_goes_on() {
    if Command::new("setpriv").arg("--version").output().is_err() || unsafe { libc::geteuid() } != 0
    {
        eprintln!("skipped: needs root and setpriv to run the scan as an unprivileged user");
        return;
    }
    let f = fx("", "");
    std::fs::write(f.w.join("secret"), "s").unwrap();
    std::fs::set_permissions(f.w.join("secret"), std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::write(f.w.join("open"), "o").unwrap();
    for p in [&f.root, &f.w, &f.w.join("open")] {
        std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();
    }
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            BIN,
            "fim",
            "baseline",
            "--config",
        ])
        .arg(&f.config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("cannot read") && err.contains("secret") && err.contains("ermission denied"),
        "{err}"
    );
    std::fs::write(f.w.join("open"), "changed").unwrap();
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            BIN,
            "fim",
            "check",
            "--json",
            "--config",
        ])
        .arg(&f.config)
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["errors"][0]["rule_id"], 560, "{doc:#}");
    assert!(
        doc["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["rule_id"] == 550),
        "{doc:#}"
    );
}

#[test]
fn corrupt_state_database_is_reported_and_a_new_baseline_goes_on() {
    let f = fx("", "");
    std::fs::write(f.w.join("a"), "a").unwrap();
    baseline(&f);
    let db = f.root.join("state/fim.db");
    let _ = std::fs::remove_file(f.root.join("state/fim.db-wal"));
    std::fs::write(
        &db,
        b"this is not a database at all, just junk bytes".repeat(100),
    )
    .unwrap();
    let (code, _, err) = run(&["check"], &f.config);
    assert_eq!(code, 2);
    assert!(
        err.contains("fim.db") && err.contains("unusable") && err.contains("fim baseline"),
        "{err}"
    );
    // The damaged file is kept aside for inspection, never silently overwritten.
    let aside = std::fs::read_dir(f.root.join("state"))
        .unwrap()
        .flatten()
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("fim.db.corrupt-")
        });
    assert!(aside);
    let (code, _, err) = run(&["baseline"], &f.config);
    assert_eq!(code, 0, "{err}");
    let (code, ch, _) = check(&f);
    assert_eq!((code, ch.len()), (0, 0));
}

#[test]
fn check_without_baseline_says_what_to_run() {
    let f = fx("", "");
    let (code, _, err) = run(&["check"], &f.config);
    assert_eq!(code, 2);
    assert!(
        err.contains("no baseline") && err.contains("fim baseline"),
        "{err}"
    );
}

#[test]
fn bad_policy_names_the_entry_and_field() {
    let f = fx("ignore_regex = [\"(\"]", "");
    let (code, _, err) = run(&["baseline"], &f.config);
    assert_eq!(code, 2);
    assert!(
        err.contains("fim.paths[0]") && err.contains("ignore_regex"),
        "{err}"
    );
    let f = fx("recurse = 3", "");
    let (_, _, err) = run(&["baseline"], &f.config);
    assert!(
        err.contains("recurse") && err.contains("agent.toml"),
        "{err}"
    );
}

#[test]
fn ignore_patterns_and_depth_limit_what_is_tracked() {
    let f = fx(
        "depth = 1\nignore = [\"*.swp\"]\nignore_regex = [\"/cache/\"]",
        "",
    );
    std::fs::create_dir_all(f.w.join("a/b/c")).unwrap();
    std::fs::create_dir_all(f.w.join("cache")).unwrap();
    baseline(&f);
    std::fs::write(f.w.join("x.swp"), "").unwrap();
    std::fs::write(f.w.join("cache/y"), "").unwrap();
    std::fs::write(f.w.join("a/b/c/too-deep"), "").unwrap();
    std::fs::write(f.w.join("a/seen"), "").unwrap();
    let (_, ch, _) = check(&f);
    let paths: Vec<&str> = ch
        .iter()
        .map(|e| e["body"]["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths.len(), 1, "{paths:?}");
    assert!(paths[0].ends_with("a/seen"));
}

#[test]
fn report_changes_gives_a_diff_and_nodiff_redacts_it() {
    let f = fx("report_changes = true\nnodiff = [\"secret*\"]", "");
    std::fs::write(f.w.join("hosts"), "127.0.0.1 localhost\n").unwrap();
    std::fs::write(f.w.join("secret.env"), "PASSWORD=hunter2\n").unwrap();
    std::fs::write(f.w.join("server.key"), "KEY1\n").unwrap();
    baseline(&f);
    std::fs::write(f.w.join("hosts"), "127.0.0.1 localhost\n10.0.0.1 evil\n").unwrap();
    std::fs::write(f.w.join("secret.env"), "PASSWORD=swordfish\n").unwrap();
    std::fs::write(f.w.join("server.key"), "KEY2\n").unwrap();
    let (_, out, _) = run(&["check", "--json"], &f.config);
    for secret in ["hunter2", "swordfish", "KEY1", "KEY2"] {
        assert!(
            !out.contains(secret),
            "secret `{secret}` leaked into the report"
        );
    }
    let doc: Value = serde_json::from_str(&out).unwrap();
    let ch = doc["changes"].as_array().unwrap();
    let hosts = find(ch, &f.w.join("hosts"))[0];
    assert_eq!(hosts["body"]["diff_status"], "included");
    assert!(hosts["body"]["diff"]
        .as_str()
        .unwrap()
        .contains("+10.0.0.1 evil"));
    assert_eq!(
        find(ch, &f.w.join("secret.env"))[0]["body"]["diff_status"],
        "redacted"
    );
    // `*.key` is in the default global nodiff list.
    assert_eq!(
        find(ch, &f.w.join("server.key"))[0]["body"]["diff_status"],
        "redacted"
    );
}

#[test]
fn restore_puts_back_content_mode_and_owner_and_is_an_event() {
    let f = fx("protect = true", "");
    let file = f.w.join("index.html");
    std::fs::write(&file, "<h1>good</h1>").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::chown(&file, Some(33), Some(33)).unwrap();
    baseline(&f);
    std::fs::write(&file, "<h1>defaced</h1>").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::os::unix::fs::chown(&file, Some(0), Some(0)).unwrap();
    let (code, out, err) = run(&["restore", file.to_str().unwrap(), "--json"], &f.config);
    assert_eq!(code, 0, "{out}{err}");
    let ev: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(ev["rule_id"], 558);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "<h1>good</h1>");
    let md = std::fs::metadata(&file).unwrap();
    assert_eq!((md.mode() & 0o7777, md.uid(), md.gid()), (0o640, 33, 33));
    // Deleted files come back too; a path never protected is refused with a reason.
    std::fs::remove_file(&file).unwrap();
    assert_eq!(run(&["restore", file.to_str().unwrap()], &f.config).0, 0);
    assert!(file.exists());
    let (code, out, _) = run(&["restore", "/etc/hostname"], &f.config);
    assert_eq!(code, 1);
    assert!(out.contains("not under any configured FIM path"), "{out}");
}

fn md5_hex(b: &[u8]) -> String {
    let out = Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b)?;
            c.wait_with_output()
        });
    String::from_utf8(out.unwrap().stdout).unwrap()[..32].to_string()
}

#[test]
fn changes_matching_the_dpkg_record_are_tagged_as_package_updates() {
    let tmp = tempfile::tempdir().unwrap();
    let info = tmp.path().join("dpkg-info");
    std::fs::create_dir(&info).unwrap();
    let f = fx("", &format!("dpkg_info_dir = \"{}\"", info.display()));
    std::fs::write(f.w.join("tool"), "v1").unwrap();
    std::fs::write(f.w.join("other"), "v1").unwrap();
    baseline(&f);
    let rel = |p: &str| {
        f.w.join(p)
            .display()
            .to_string()
            .trim_start_matches('/')
            .to_string()
    };
    std::fs::write(
        info.join("tool:amd64.md5sums"),
        format!(
            "{}  {}\n{}  {}\nnot a valid line\n",
            md5_hex(b"v2"),
            rel("tool"),
            md5_hex(b"v2"),
            rel("other")
        ),
    )
    .unwrap();
    std::fs::write(f.w.join("tool"), "v2").unwrap();
    std::fs::write(f.w.join("other"), "trojan").unwrap();
    let (_, ch, _) = check(&f);
    let tool = find(&ch, &f.w.join("tool"))[0];
    assert_eq!(
        (tool["rule_id"].as_u64(), tool["level"].as_u64()),
        (Some(557), Some(3)),
        "{tool:#}"
    );
    assert_eq!(tool["body"]["package"]["name"], "tool:amd64");
    let other = find(&ch, &f.w.join("other"))[0];
    assert_eq!(other["rule_id"], 550);
    assert_eq!(other["body"]["package"]["verdict"], "differs_from_package");
}

#[test]
fn text_report_is_readable_and_exit_code_follows_changes() {
    let f = fx("", "");
    std::fs::write(f.w.join("a"), "a").unwrap();
    baseline(&f);
    std::fs::write(f.w.join("a"), "b").unwrap();
    let (code, out, _) = run(&["check"], &f.config);
    assert_eq!(code, 1);
    assert!(out.contains("rule 550 File modified:"), "{out}");
    // `--update` accepts the change; the next check is clean.
    assert_eq!(run(&["check", "--update"], &f.config).0, 1);
    assert_eq!(run(&["check"], &f.config).0, 0);
}
