//! The operator flows of the issue, in a real browser: a maker's wallets, deposit and
//! P2P (and the API's message when funds are short), a 200-line bulk file approved by
//! a checker and followed to 100 %, and a viewer who sees no money controls.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{self, BrowserApp};

#[test]
fn a_maker_creates_wallets_deposits_and_sends_a_p2p_that_completes() {
    if let Some(mut app) = support::start(&[]) {
        app.runtime().block_on(maker_flow(&mut app));
    }
}

async fn maker_flow(app: &mut BrowserApp) {
    app.open("/").await;
    app.sign_in("maker").await;
    app.text_until("main h1", "the dashboard", |t| t == "Dashboard").await;

    app.click("a[href='#/accounts']").await;
    for (msisdn, name) in [("22507000001", "Awa Koné"), ("22507000002", "Kouassi Yao")] {
        app.fill("#account-create input[name=msisdn]", msisdn).await;
        app.fill("#account-create input[name=currency]", "XOF").await;
        app.fill("#account-create input[name=display_name]", name).await;
        app.click("#account-create button[type=submit]").await;
        app.text_until("#account-create p.ok", "the new wallet", |t| t.contains(msisdn)).await;
    }
    app.click("#account-create p.ok a").await;
    app.text_until("main h1", "the wallet page", |t| t == "Wallet 22507000002").await;
    app.open("/#/accounts/22507000001").await;
    app.text_until("main h1", "the wallet page", |t| t == "Wallet 22507000001").await;
    app.fill("#deposit-form input[name=amount]", "100000").await;
    app.click("#deposit-form button[type=submit]").await;
    app.text_until("#deposit-form p.ok", "the deposit", |t| t.contains("COMPLETED")).await;
    app.text_until("#wallet-summary", "the new balance", |t| t.contains("100\u{202f}000 XOF")).await;

    app.click("a[href='#/transfers']").await;
    app.fill("#p2p-form input[name=sender_msisdn]", "22507000001").await;
    app.fill("#p2p-form input[name=receiver_msisdn]", "22507000002").await;
    app.fill("#p2p-form input[name=amount]", "2500").await;
    // Submitted from the keyboard: Enter in the last field.
    app.fill("#p2p-form input[name=note]", "rent\u{e007}").await;
    let done = app.text_until("#p2p-result", "the transfer's outcome", |t| !t.is_empty()).await;
    assert!(done.contains("COMPLETED"), "{done}");

    app.fill("#p2p-form input[name=sender_msisdn]", "22507000001").await;
    app.fill("#p2p-form input[name=receiver_msisdn]", "22507000002").await;
    app.fill("#p2p-form input[name=amount]", "1000000").await;
    app.click("#p2p-form button[type=submit]").await;
    let error = app.text_until("#p2p-form .error", "the API's message", |t| !t.is_empty()).await;
    assert_eq!(error, "wallet 22507000001 lacks 902500 XOF (INSUFFICIENT_FUNDS)");

    let statement = app.server.api_get("admin", "/api/v1/accounts/22507000001/transfers/");
    let statuses: Vec<_> = statement["items"].as_array().expect("items").iter().map(|t| t["status"].clone()).collect();
    assert_eq!(statuses, vec![json!("COMPLETED"), json!("COMPLETED")], "deposit and P2P, nothing else");

    let stored = app.client.execute("return sessionStorage.getItem('sysgp.session')", vec![]).await.expect("js");
    let session: serde_json::Value = serde_json::from_str(stored.as_str().expect("a session")).expect("json");
    let token = session["token"].as_str().expect("token");
    assert!(!app.client.current_url().await.expect("url").as_str().contains(token), "no token in the URL");

    app.click("a[href='#/dashboard']").await;
    app.text_until("main", "recent transfers", |t| t.contains("Recent transfers") && t.contains("2\u{202f}500 XOF"))
        .await;
    // The server runs without SYSGP_CASH_APPROVAL_ABOVE: the dashboard says so.
    app.text_until("main", "the configuration warning", |t| {
        t.contains("Configuration: SYSGP_CASH_APPROVAL_ABOVE is unset")
    })
    .await;
    app.screenshot("dashboard", 360).await;
    app.screenshot("dashboard", 1280).await;
    app.assert_clean_console(&[422]).await;
}

/// 200 lines to other providers' customers (SDK route), avoiding every simulator trigger.
fn payouts_csv() -> String {
    let mut csv = String::from("msisdn,amount,reference\n");
    for i in 1..=200 {
        csv.push_str(&format!("22508{i:06},{},ref-{i}\n", 100 + i));
    }
    csv
}

/// Drops `csv` as `name` on the upload form's drop zone and uploads it from 22507000001.
async fn drop_file(app: &BrowserApp, name: &str, csv: &str) {
    app.fill("#upload-form input[name=source_msisdn]", "22507000001").await;
    let drop = "const dt = new DataTransfer();
        dt.items.add(new File([arguments[1]], arguments[0], {type: 'text/csv'}));
        const zone = document.getElementById('dropzone');
        for (const type of ['dragenter', 'dragover', 'drop']) {
          zone.dispatchEvent(new DragEvent(type, {dataTransfer: dt, bubbles: true, cancelable: true}));
        }";
    app.client.execute(drop, vec![json!(name), json!(csv)]).await.expect("drop the file");
    app.text_until("#chosen-file", "the dropped file", |t| t.starts_with(name)).await;
    app.click("#upload-form button[type=submit]").await;
}

#[test]
fn a_checker_approves_a_200_line_file_and_watches_it_reach_100_percent() {
    // 25 items/s: the job runs for about 8 s, long enough to see it running.
    if let Some(mut app) = support::start(&[("SYSGP_BULK_RATE_PER_SEC", "25")]) {
        app.runtime().block_on(bulk_flow(&mut app));
    }
}

async fn bulk_flow(app: &mut BrowserApp) {
    app.server.funded_wallet("22507000001", "XOF", "100000");
    app.open("/").await;
    app.sign_in("maker").await;
    app.click("a[href='#/bulk']").await;
    // A file with a bad line: the job fails and the report names the line and field.
    drop_file(app, "broken.csv", "msisdn,amount\n22508000001,100\n22508000002,\"12,5\"\n").await;
    app.text_until("#job-summary", "validation", |t| t.contains("FAILED")).await;
    let report = app.text_until("#job-report", "the validation report", |t| t.contains("line")).await;
    assert!(report.contains("3 amount DECIMAL_COMMA"), "line 3, field amount: {report}");

    app.click("a[href='#/bulk']").await;
    drop_file(app, "payouts.csv", &payouts_csv()).await;
    app.text_until("#job-summary", "validation", |t| t.contains("AWAITING_APPROVAL")).await;
    app.text_until("#job-report", "the validation report", |t| t.contains("No problems")).await;
    assert!(!app.exists("#job-approve").await, "the uploader cannot approve");
    let job_id = app.client.current_url().await.expect("url").fragment().expect("route").replace("/bulk/", "");

    app.sign_out().await;
    app.sign_in("checker").await;
    app.text_until("main", "the waiting job", |t| t.contains("1 bulk job(s) wait for a checker's approval")).await;
    app.click(&format!("a[href='#/bulk/{job_id}']")).await;
    app.click("#job-approve").await;
    let running = |t: &str| {
        let p: f64 = t.split(" %").next().and_then(|p| p.parse().ok()).unwrap_or(0.0);
        (10.0..90.0).contains(&p) && t.contains("items/s · ETA ") && !t.contains("ETA unknown")
    };
    app.text_until("#job-progress-text", "the job to run", running).await;
    app.screenshot("job-running", 360).await;
    app.screenshot("job-running", 1280).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let done = loop {
        let text = app.find("#job-progress-text").await.text().await.expect("text");
        if text.starts_with("100 %") {
            break text;
        }
        assert!(Instant::now() < deadline, "the progress bar did not reach 100 %: {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(done.contains("200 of 200 items final"), "{done}");
    let bar = app.client.execute("return document.getElementById('job-progress').value", vec![]).await;
    assert_eq!(bar.expect("progress value"), json!(100), "the progress bar is full");
    app.text_until("#job-summary", "the job to complete", |t| t.contains("COMPLETED")).await;

    app.click("#download-results").await;
    let path = app.downloads.join("results.csv");
    let deadline = Instant::now() + support::UI_TIMEOUT;
    while !path.is_file() {
        assert!(Instant::now() < deadline, "results.csv was not downloaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let csv = std::fs::read_to_string(&path).expect("results.csv");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("msisdn,amount,reference,status,error_code,error_message,transfer_id,sdk_transfer_id,completed_at")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 200);
    for (i, row) in rows.iter().enumerate() {
        let n = i + 1;
        assert_eq!(
            &row[..4],
            &[format!("22508{n:06}").as_str(), &(100 + n).to_string(), &format!("ref-{n}"), "COMPLETED"]
        );
        assert!(!row[6].is_empty() && !row[7].is_empty() && !row[8].is_empty(), "{row:?}");
    }
    app.assert_clean_console(&[]).await;
}

#[test]
fn a_viewer_sees_no_money_controls_and_is_told_what_it_may_not_do() {
    if let Some(mut app) = support::start(&[]) {
        app.runtime().block_on(viewer_flow(&mut app));
    }
}

async fn viewer_flow(app: &mut BrowserApp) {
    app.server.funded_wallet("22507000001", "XOF", "5000");
    app.open("/").await;
    app.sign_in("viewer").await;
    app.text_until("main h1", "the dashboard", |t| t == "Dashboard").await;
    assert!(!app.exists("a[href='#/users']").await && !app.exists("a[href='#/audit']").await);

    app.click("a[href='#/accounts']").await;
    app.text_until("main", "the wallet list", |t| t.contains("22507000001")).await;
    assert!(!app.exists("#account-create").await, "no wallet creation");
    app.click("a[href='#/accounts/22507000001']").await;
    app.text_until("#wallet-summary", "the wallet", |t| t.contains("5\u{202f}000 XOF")).await;
    app.text_until("#statement", "the statement", |t| t.contains("CASH")).await;
    for form in ["#deposit-form", "#withdraw-form", "#freeze-form"] {
        assert!(!app.exists(form).await, "{form} is hidden from a viewer");
    }
    let screens = [
        ("transfers", "#transfer-filters", "#p2p-form"),
        ("bulk", "#job-filters", "#upload-form"),
        ("adjustments", "#adjustment-filters", "#adjustment-form"),
    ];
    for (route, shown, hidden) in screens {
        app.click(&format!("a[href='#/{route}']")).await;
        app.find(shown).await;
        assert!(!app.exists(hidden).await, "{hidden} is hidden from a viewer");
    }

    // Opened by its address, the users screen shows the API's 403 in words.
    app.open("/#/users").await;
    let refusal = app.text_until("main .error", "the refusal", |t| !t.is_empty()).await;
    assert_eq!(refusal, "Not allowed: the viewer role may not do this (FORBIDDEN).");
    app.assert_clean_console(&[403]).await;

    // The check above would see a policy violation: an injected inline script is
    // refused and reported.
    let inject = "const s = document.createElement('script'); s.textContent = 'window.injected = 1'; document.body.append(s); return window.injected === undefined;";
    let refused = app.client.execute(inject, vec![]).await.expect("inject");
    assert_eq!(refused, json!(true), "the inline script did not run");
    let reports = app.csp_reports().await;
    assert!(reports.iter().any(|r| r.contains("script-src 'self'")), "{reports:?}");
}
