//! Operations: online backup under load and restore, one instance per data directory,
//! the configuration warnings the dashboard shows.

use std::collections::HashSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::support::{spawn_app, spawn_app_with, Options, SECRET};

fn sysgp() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sysgp"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "off")
        .env("SECRET_KEY", SECRET);
    c
}

#[test]
fn a_backup_taken_under_write_load_restores_every_acknowledged_transfer() {
    let app = spawn_app();
    app.funded("22507000001", "XOF", "1000000");
    app.wallet("22507000002", "XOF");
    let dir = app.vars["SYSGP_DATA_DIR"].clone();
    let acked = Mutex::new(Vec::<String>::new());
    let stop = AtomicBool::new(false);
    let scratch = tempfile::tempdir().expect("dir");
    let backup = scratch.path().join("backup.sysgp");
    let before: HashSet<String> = std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let r = app.send("22507000001", "22507000002", "1");
                    assert_eq!(r.status, 201, "{}", r.text);
                    acked.lock().expect("lock").push(r.body["transfer_id"].as_str().expect("id").to_owned());
                }
            });
        }
        app.eventually(std::time::Duration::from_secs(30), "some load", || {
            (acked.lock().expect("lock").len() > 50).then_some(())
        });
        let before: HashSet<String> = acked.lock().expect("lock").iter().cloned().collect();
        let out = sysgp().arg("backup").arg(&backup).env("SYSGP_DATA_DIR", &dir).output().expect("backup runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("online; writes paused"), "{stdout}");
        println!("{}", stdout.trim());
        app.eventually(std::time::Duration::from_secs(30), "load after the backup", || {
            (acked.lock().expect("lock").len() > before.len() + 20).then_some(())
        });
        stop.store(true, Ordering::Relaxed);
        before
    });
    let target = tempfile::tempdir().expect("dir");
    let restored = target.path().join("data");
    let out = sysgp().arg("restore").arg(&backup).arg("--data-dir").arg(&restored).output().expect("restore runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("every invariant holds") && stdout.contains("audit chain"), "{stdout}");
    let store = sysgp::store::Store::open(&restored, 16).expect("restored store opens");
    for id in &before {
        let id = uuid::Uuid::parse_str(id).expect("uuid");
        assert!(store.transfer(id).expect("read").is_some(), "transfer {id} acknowledged before the backup is missing");
    }
    let again = sysgp().arg("restore").arg(&backup).arg("--data-dir").arg(&restored).output().expect("runs");
    assert!(!again.status.success(), "restore refuses a directory that is not empty");
}

#[test]
fn a_backup_file_is_readable_by_its_owner_only_and_never_overwrites_a_file() {
    use std::os::unix::fs::PermissionsExt;
    let mut app = spawn_app();
    app.funded("22507000001", "XOF", "1000");
    let dir = app.vars["SYSGP_DATA_DIR"].clone();
    let scratch = tempfile::tempdir().expect("dir");
    let backup = |file: &std::path::Path| {
        let mut cmd = sysgp();
        cmd.arg("backup").arg(file).env("SYSGP_DATA_DIR", &dir);
        let out = cmd.output().expect("backup runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let mode = |file: &std::path::Path| std::fs::metadata(file).expect("backup file").permissions().mode() & 0o777;
    let online = scratch.path().join("online.sysgp");
    let (ok, stdout, stderr) = backup(&online);
    assert!(ok && stdout.contains("online"), "{stdout} {stderr}");
    assert_eq!(mode(&online), 0o600, "password hashes and session MACs are for the owner's eyes only");

    let taken = std::fs::read(&online).expect("read backup");
    let (ok, stdout, stderr) = backup(&online);
    assert!(!ok, "an earlier backup was overwritten: {stdout}");
    assert!(stderr.contains("already exists") && stderr.contains(&online.display().to_string()), "{stderr}");
    assert_eq!(std::fs::read(&online).expect("read backup"), taken, "the earlier backup is untouched");
    let precious = scratch.path().join("precious.txt");
    std::fs::write(&precious, "not a backup").expect("write");
    let (ok, _, stderr) = backup(&precious);
    assert!(!ok && stderr.contains("already exists"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&precious).expect("read"),
        "not a backup",
        "a refused backup removed or changed it"
    );

    app.stop_server();
    let offline = scratch.path().join("offline.sysgp");
    let (ok, stdout, stderr) = backup(&offline);
    assert!(ok && stdout.contains("offline"), "{stdout} {stderr}");
    assert_eq!(mode(&offline), 0o600);

    let missing = scratch.path().join("no-such-data-dir");
    let nothing = scratch.path().join("nothing.sysgp");
    let out = sysgp().arg("backup").arg(&nothing).arg("--data-dir").arg(&missing).output().expect("backup runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("is not a sysgp data directory"), "{stderr}");
    assert!(!missing.exists() && !nothing.exists(), "no empty store was created and no backup file left behind");
}

#[test]
fn a_second_server_on_the_same_data_directory_is_refused_clearly() {
    let app = spawn_app();
    let out = sysgp()
        .arg("serve")
        .env("SYSGP_DATA_DIR", &app.vars["SYSGP_DATA_DIR"])
        .env("MOJALOOP_SDK_URL", app.sim.url())
        .env("SYSGP_BIND", "127.0.0.1:0")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("in use by another sysgp process"), "{stderr}");
}

/// Another owner for the data directory than the user running the test.
const OTHER_UID: u32 = 4242;

#[test]
fn direct_store_commands_refuse_a_data_directory_owned_by_another_user_and_change_nothing() {
    use std::os::unix::fs::MetadataExt;
    let mut app = spawn_app();
    app.funded("22507000001", "XOF", "1000");
    let dir = app.stop_server();
    let me = std::fs::metadata(&dir).expect("data directory").uid();
    let user_cmd = |args: &[&str]| {
        let mut c = sysgp();
        c.arg("user").args(args).env("SYSGP_DATA_DIR", &dir);
        c
    };
    let scratch = tempfile::tempdir().expect("temp dir");
    let backup = scratch.path().join("backup.sysgp");
    let taken = sysgp().arg("backup").arg(&backup).arg("--data-dir").arg(&dir).output().expect("backup runs");
    assert!(taken.status.success(), "the owner may back up: {}", String::from_utf8_lossy(&taken.stderr));
    if me == 0 {
        // An empty directory prepared for the service user: restoring into it as root
        // would leave files the service cannot open.
        let target = scratch.path().join("restore-here");
        std::fs::create_dir(&target).expect("restore target");
        std::os::unix::fs::chown(&target, Some(OTHER_UID), None).expect("chown the restore target");
        let restore = sysgp().arg("restore").arg(&backup).arg("--data-dir").arg(&target).output().expect("runs");
        let stderr = String::from_utf8_lossy(&restore.stderr);
        assert!(!restore.status.success(), "restore ran as root into a directory of uid {OTHER_UID}");
        assert!(stderr.contains(&format!("uid {OTHER_UID}")), "the refusal names the owner: {stderr}");
        assert_eq!(std::fs::read_dir(&target).expect("read target").count(), 0, "a refused restore wrote files");
        std::os::unix::fs::chown(&dir, Some(OTHER_UID), None).expect("chown the data directory");
        let before = snapshot(&dir);
        let check = sysgp().args(["check", "--data-dir"]).arg(&dir).output().expect("check runs");
        let list = user_cmd(&["list"]).output().expect("user list runs");
        let add = with_password(user_cmd(&["add", "owen", "--role", "maker"]), "a very long password\n");
        for (what, out) in [("check", check), ("user list", list), ("user add", add)] {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{what} ran as root on a directory of uid {OTHER_UID}");
            let names = stderr.contains(&dir.display().to_string()) && stderr.contains(&format!("uid {OTHER_UID}"));
            assert!(names, "{what}: the refusal names the directory and its owner: {stderr}");
        }
        assert_eq!(snapshot(&dir), before, "a refused command changed the data directory");
        std::os::unix::fs::chown(&dir, Some(me), None).expect("give the data directory back");
    } else {
        println!("not root: cannot chown the data directory to uid {OTHER_UID}; only the owner's own run is checked");
    }
    let check = sysgp().args(["check", "--data-dir"]).arg(&dir).output().expect("check runs");
    assert!(check.status.success(), "the owner may check: {}", String::from_utf8_lossy(&check.stderr));
    let list = user_cmd(&["list"]).output().expect("user list runs");
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(list.status.success(), "the owner may list users: {}", String::from_utf8_lossy(&list.stderr));
    assert!(text.lines().any(|l| l.starts_with("admin")), "{text}");
}

/// Runs `cmd` with `input` on its standard input.
fn with_password(mut cmd: Command, input: &str) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    child.wait_with_output().expect("wait")
}

/// Every entry under `dir`: path, size, modification time, mode and owner.
fn snapshot(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u64, i64, i64, u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let mut entries = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(path) = todo.pop() {
        let meta = std::fs::symlink_metadata(&path).expect("metadata");
        if meta.is_dir() {
            todo.extend(std::fs::read_dir(&path).expect("read dir").map(|e| e.expect("entry").path()));
        }
        entries.push((path, meta.size(), meta.mtime(), meta.mtime_nsec(), meta.mode(), meta.uid()));
    }
    entries.sort();
    entries
}

#[test]
fn the_dashboard_learns_that_approval_is_turned_off_but_never_about_the_secret_key() {
    let weak_key = "short-debug-key".to_owned();
    let app = spawn_app_with(Options {
        extra: vec![
            ("SYSGP_BULK_APPROVAL", "false".to_owned()),
            ("SYSGP_NO_SUCH_SETTING", "1".to_owned()),
            ("DEBUG", "true".to_owned()),
            ("SECRET_KEY", weak_key),
        ],
        ..Options::default()
    });
    let r = app.get_as("viewer", "/api/v1/config-warnings/");
    assert_eq!(r.status, 200, "{}", r.text);
    let warnings: Vec<&str> =
        r.body["warnings"].as_array().expect("warnings").iter().map(|w| w.as_str().expect("text")).collect();
    assert!(warnings.iter().any(|w| w.contains("SYSGP_BULK_APPROVAL=false")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("SYSGP_NO_SUCH_SETTING")), "{warnings:?}");
    assert!(!warnings.iter().any(|w| w.contains("SECRET_KEY")), "a key weakness is for the log only: {warnings:?}");
    assert_eq!(app.get_token("", "/api/v1/config-warnings/").status, 401, "signed-in users only");

    let app =
        spawn_app_with(Options { extra: vec![("SYSGP_CASH_APPROVAL_ABOVE", "1000".to_owned())], ..Options::default() });
    let r = app.get_as("viewer", "/api/v1/config-warnings/");
    assert_eq!(r.body["warnings"], serde_json::json!([]), "{}", r.text);
}
