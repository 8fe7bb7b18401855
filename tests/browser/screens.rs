//! Every screen, opened by an admin at 360 px and 1280 px wide, renders its content
//! without a console error (screenshots `screen-*.png` in `target/screenshots/`).

use serde_json::json;

use crate::support::{self, BrowserApp};

#[test]
fn every_screen_renders_for_an_admin_at_both_widths_without_console_errors() {
    if let Some(mut app) = support::start(&[]) {
        app.runtime().block_on(every_screen(&mut app));
    }
}

async fn every_screen(app: &mut BrowserApp) {
    app.server.funded_wallet("22507000001", "XOF", "100000");
    // A payee the simulator does not know (…404): a FAILED SDK transfer with its error.
    let p2p = json!({"sender_msisdn": "22507000001", "receiver_msisdn": "22500000404", "amount": "10"});
    let failed = app.server.api_post("maker", "/api/v1/transfers/", p2p);
    assert_eq!(failed["status"], "FAILED", "{failed}");
    let adjustment =
        json!({"msisdn": "22507000001", "counter": "CASH", "direction": "DEBIT", "amount": "5", "reason": "typo"});
    app.server.api_post("maker", "/api/v1/adjustments/", adjustment);
    app.open("/").await;
    app.sign_in("admin").await;
    let screens = [
        ("accounts", "#account-create", "22507000001"),
        ("accounts/22507000001", "#statement table", "Freeze"),
        ("transfers", "#p2p-form", "FAILED"),
        ("adjustments", "#adjustment-form", "AWAITING_APPROVAL"),
        ("bulk", "#upload-form", "No jobs."),
        ("users", "#user-create", "viewer"),
        ("audit", "#audit-filters", "ADJUSTMENT_REQUESTED"),
    ];
    for (route, control, text) in screens {
        app.open(&format!("/#/{route}")).await;
        app.find(control).await;
        app.text_until("main", route, |t| t.contains(text)).await;
        let name = format!("screen-{}", route.replace('/', "-"));
        app.screenshot(&name, 360).await;
        app.screenshot(&name, 1280).await;
    }
    let id = failed["transfer_id"].as_str().expect("id");
    app.open(&format!("/#/transfers/{id}")).await;
    app.text_until("#transfer-facts", "the SDK's error", |t| t.contains("3204")).await;
    app.screenshot("screen-transfer", 1280).await;
    app.open("/#/audit").await;
    app.click("#audit-verify").await;
    app.text_until("#audit-verdict", "the verdict", |t| t.starts_with("The chain is intact")).await;
    app.assert_clean_console(&[]).await;
}
