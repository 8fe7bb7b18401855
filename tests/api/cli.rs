//! The binary itself: `serve` refuses bad secrets; `check` reads a data directory.

use std::process::Command;

use crate::support::spawn_app;

fn sysgp() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sysgp"));
    c.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("RUST_LOG", "off");
    c
}

#[test]
fn serve_refuses_a_missing_short_plain_or_placeholder_secret_key_with_a_clear_message() {
    let cases: [(Option<&str>, &str); 8] = [
        (None, "SECRET_KEY: is required"),
        (Some("short-key-0123456789"), "at least 32 are required"),
        (Some("aaaaaaaaaabbbbbbbbbbccccccccccdddddddd"), "distinct characters"),
        (Some("changeme"), "placeholder"),
        (Some("django-insecure-0123456789abcdefghijklmnopqrstuvwxyz"), "placeholder"),
        // Padding is trimmed as in an --env-file: a padded placeholder is still one.
        (Some(" django-insecure-0123456789abcdefghijklmnopqrstuvwxyz"), "placeholder"),
        (Some("your-secret-key        "), "placeholder"),
        (Some("      short-key-0123456789            "), "at least 32 are required"),
    ];
    for (key, needle) in cases {
        let mut cmd = sysgp();
        cmd.arg("serve")
            .env("MOJALOOP_SDK_URL", "http://127.0.0.1:9")
            .env("SYSGP_DATA_DIR", "/nonexistent/never-created");
        if let Some(k) = key {
            cmd.env("SECRET_KEY", k);
        }
        let out = cmd.output().expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{key:?} was accepted");
        assert!(stderr.contains("SECRET_KEY") && stderr.contains(needle), "{key:?}: {stderr}");
        assert!(key.is_none_or(|k| !stderr.contains(k)), "the key itself is never printed");
    }
}

#[test]
fn serve_names_the_variable_of_any_bad_value() {
    let out = sysgp()
        .args(["serve"])
        .env("SECRET_KEY", crate::support::SECRET)
        .env("MOJALOOP_SDK_URL", "http://127.0.0.1:9")
        .env("SYSGP_CACHE_MB", "lots")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SYSGP_CACHE_MB"));
}

/// Runs `cmd` to its end, killing it (and failing) if it is still running after 60 s:
/// a command that should refuse to start must not hang the suite when it starts.
fn bounded(mut cmd: Command) -> std::process::Output {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            child.kill().expect("kill");
            panic!("still running after 60 s: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn serve_refuses_a_bad_data_directory_or_log_filter_with_one_message_naming_the_variable() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let file = scratch.path().join("a-file");
    std::fs::write(&file, "not a directory").expect("write");
    let file = file.display().to_string();
    let under_file = format!("{file}/data");
    let cases: [(&str, &str, &str); 7] = [
        ("SYSGP_DATA_DIR", &file, "is a file"),
        ("SYSGP_DATA_DIR", &under_file, "which is a file"),
        ("SYSGP_DATA_DIR", "", "is empty"),
        ("RUST_LOG", "verbose", "target=level"),
        ("RUST_LOG", "debugg", "target=level"),
        ("RUST_LOG", "info,sysgp=loud", "target=level"),
        ("RUST_LOG", "", "target=level"),
    ];
    for (var, value, needle) in cases {
        let mut cmd = sysgp();
        cmd.arg("serve")
            .env("SECRET_KEY", crate::support::SECRET)
            .env("MOJALOOP_SDK_URL", "http://127.0.0.1:9")
            .env("SYSGP_BIND", "127.0.0.1:0")
            .env("SYSGP_DATA_DIR", scratch.path().join("data"))
            // Logging on, so that a warning logged before the refusal would show.
            .env("RUST_LOG", "info")
            .env(var, value);
        let out = bounded(cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{var}={value:?} was accepted: {stderr}");
        let ours: Vec<&str> = stderr.lines().filter(|l| l.starts_with("sysgp:")).collect();
        assert_eq!(ours.len(), 1, "{var}={value:?}: one message: {stderr}");
        assert!(
            ours[0].starts_with(&format!("sysgp: {var}: ")) && ours[0].contains(needle),
            "{var}={value:?}: {stderr}"
        );
        if var == "SYSGP_DATA_DIR" {
            assert_eq!(stderr.lines().count(), 1, "nothing logged before the refusal: {stderr}");
            assert!(value.is_empty() || ours[0].contains(&file), "the path is named: {stderr}");
        }
        assert!(!stderr.contains(" WARN ") && !stderr.contains(" INFO "), "{var}={value:?}: {stderr}");
    }
    assert!(std::fs::metadata(scratch.path().join("data")).is_err(), "no data directory was created");
}

#[test]
fn check_reports_a_healthy_data_directory_and_fails_when_it_cannot_verify_the_chain() {
    let mut app = spawn_app();
    app.funded("22507000001", "XOF", "1000");
    assert_eq!(app.send("22507000001", "22500000777", "100").body["status"], "COMPLETED");
    let dir = app.stop_server();
    let out = sysgp().args(["check", "--data-dir"]).arg(&dir).env("SECRET_KEY", crate::support::SECRET).output();
    let out = out.expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("every invariant holds") && stdout.contains("audit chain of"), "{stdout}");

    let out = sysgp().args(["check", "--data-dir"]).arg(&dir).output().expect("runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "no SECRET_KEY, so the chain was not verified: {stdout}");
    assert!(stdout.contains("every invariant holds"), "the invariants are still reported: {stdout}");
    assert_eq!(stderr.lines().count(), 1, "one message: {stderr}");
    assert!(stderr.contains("SECRET_KEY is needed to verify the audit chain"), "{stderr}");
}

/// Removes one audit entry with sled directly, as an intruder with file access would.
fn delete_audit_entry(dir: &str, seq: u64) {
    let db = sled::open(dir).expect("open store");
    db.open_tree("audit").expect("tree").remove(seq.to_be_bytes()).expect("delete").expect("the entry existed");
    db.flush().expect("flush");
}

/// Restarts the server, waiting while the store lock is still held: sled's IO threads
/// let go of a dropped handle's lock file shortly after the drop, not at it.
fn restart_when_unlocked(app: &mut crate::support::TestApp) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match app.restart_with(&[]) {
            Ok(()) => return,
            Err(e) if e.contains("in use") && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(e) => panic!("restart: {e}"),
        }
    }
}

#[test]
fn check_live_and_offline_verify_the_audit_chain_and_name_the_first_bad_entry() {
    let mut app = spawn_app();
    app.funded("22507000001", "XOF", "1000");
    app.wallet("22507000002", "XOF");
    for _ in 0..3 {
        assert_eq!(app.send("22507000001", "22507000002", "1").status, 201);
    }
    let dir = app.vars["SYSGP_DATA_DIR"].clone();
    let live = || sysgp().args(["check", "--live"]).env("SYSGP_DATA_DIR", &dir).output().expect("runs");
    let out = live();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("audit chain of") && stdout.contains("every invariant holds"), "{stdout}");

    app.stop_server();
    delete_audit_entry(&dir, 4);
    restart_when_unlocked(&mut app);
    let out = live();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "a broken chain passed the live check: {stdout}");
    assert!(stdout.contains("every invariant holds"), "the ledger itself is intact: {stdout}");
    assert!(stderr.contains("audit chain is broken at seq 5"), "the first bad entry is named: {stderr}");

    app.stop_server();
    let out = sysgp()
        .args(["check", "--data-dir"])
        .arg(&dir)
        .env("SECRET_KEY", crate::support::SECRET)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a broken chain passed the offline check");
    assert!(stderr.contains("audit chain is broken at seq 5"), "{stderr}");
}

fn with_stdin(mut cmd: Command, input: &str) -> std::process::Output {
    use std::io::Write;
    cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    child.wait_with_output().expect("wait")
}

#[test]
fn user_commands_go_through_the_admin_socket_while_serving_and_to_the_store_otherwise() {
    let mut app = spawn_app();
    let dir = app.vars["SYSGP_DATA_DIR"].clone();
    let user_cmd = |args: &[&str]| {
        let mut c = sysgp();
        c.arg("user").args(args).env("SYSGP_DATA_DIR", &dir).env("SECRET_KEY", crate::support::SECRET);
        c
    };
    let out =
        with_stdin(user_cmd(&["add", "olga", "--role", "checker"]), "a very long password\na very long password\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let login = app.post_token(
        "",
        "/api/v1/auth/login/",
        serde_json::json!({"username": "olga", "password": "a very long password"}),
    );
    assert_eq!((login.status, login.body["user"]["role"].as_str()), (200, Some("checker")));
    let audit = app.get("/api/v1/audit/?action=USER_CREATED");
    assert!(audit.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .any(|e| e["actor"].as_str().is_some_and(|a| a.starts_with("cli:"))));
    let out = with_stdin(user_cmd(&["add", "mismatch", "--role", "maker"]), "a very long password\nanother password\n");
    assert!(!out.status.success(), "a differing confirmation line is refused");
    let out = with_stdin(user_cmd(&["add", "short", "--role", "maker"]), "short\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("PASSWORD_POLICY"));
    let live = sysgp().args(["check", "--live"]).env("SYSGP_DATA_DIR", &dir).output().expect("runs");
    assert!(live.status.success(), "{}", String::from_utf8_lossy(&live.stderr));
    app.stop_server();
    let out = with_stdin(user_cmd(&["disable", "olga"]), "");
    assert!(out.status.success(), "direct mode: {}", String::from_utf8_lossy(&out.stderr));
    let list = user_cmd(&["list"]).output().expect("runs");
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.lines().any(|l| l.starts_with("olga") && l.ends_with("disabled")), "{text}");
    let verify = sysgp()
        .args(["audit", "verify"])
        .env("SYSGP_DATA_DIR", &dir)
        .env("SECRET_KEY", crate::support::SECRET)
        .output()
        .expect("runs");
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}
