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
