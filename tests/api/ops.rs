//! Operations: online backup under load and restore, one instance per data directory.

use std::collections::HashSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::support::{spawn_app, SECRET};

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
    let backup = tempfile::NamedTempFile::new().expect("file");
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
        let out = sysgp().arg("backup").arg(backup.path()).env("SYSGP_DATA_DIR", &dir).output().expect("backup runs");
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
    let out =
        sysgp().arg("restore").arg(backup.path()).arg("--data-dir").arg(&restored).output().expect("restore runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("every invariant holds") && stdout.contains("audit chain"), "{stdout}");
    let store = sysgp::store::Store::open(&restored, 16).expect("restored store opens");
    for id in &before {
        let id = uuid::Uuid::parse_str(id).expect("uuid");
        assert!(store.transfer(id).expect("read").is_some(), "transfer {id} acknowledged before the backup is missing");
    }
    let again = sysgp().arg("restore").arg(backup.path()).arg("--data-dir").arg(&restored).output().expect("runs");
    assert!(!again.status.success(), "restore refuses a directory that is not empty");
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
