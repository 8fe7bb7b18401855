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
    let cases: [(Option<&str>, &str); 5] = [
        (None, "SECRET_KEY: is required"),
        (Some("short-key-0123456789"), "at least 32 are required"),
        (Some("aaaaaaaaaabbbbbbbbbbccccccccccdddddddd"), "distinct characters"),
        (Some("changeme"), "placeholder"),
        (Some("django-insecure-0123456789abcdefghijklmnopqrstuvwxyz"), "placeholder"),
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

#[test]
fn check_reports_a_healthy_data_directory() {
    let mut app = spawn_app();
    app.funded("22507000001", "XOF", "1000");
    assert_eq!(app.send("22507000001", "22500000777", "100").body["status"], "COMPLETED");
    let dir = app.stop_server();
    let out = sysgp().args(["check", "--data-dir"]).arg(&dir).output().expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("every invariant holds"), "{stdout}");
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
