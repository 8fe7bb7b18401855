//! Bulk disbursements over real HTTP with the real simulator (SPEC §5).

use serde_json::{json, Value};

use crate::support::{spawn_app, spawn_app_with, Options};

fn status(j: &Value) -> &str {
    j["status"].as_str().unwrap_or("")
}

#[test]
fn a_small_job_is_validated_approved_by_a_checker_and_paid_once() {
    let app = spawn_app();
    app.funded("22507000001", "XOF", "100000");
    app.wallet("22507000099", "XOF");
    let csv = "msisdn,amount,reference,name\n22500000701,100,r1,Awa\n+225 00 00 07 02,200,r2,Yao\n22507000099,300,r3,Local\n22500000404,50,r4,Nobody\n";
    let r = app.upload("maker", "payroll.csv", csv.as_bytes(), &[("source_msisdn", "22507000001")]);
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["job_id"].as_str().expect("job id").to_owned();
    let job = app.job_until(&id, "validation", |j| status(j) != "PENDING");
    assert_eq!(status(&job), "AWAITING_APPROVAL", "{job}");
    assert_eq!((job["total_count"].as_u64(), job["total_amount"].as_str()), (Some(4), Some("650")));
    assert_eq!(app.post_as("maker", &format!("/api/v1/bulk/jobs/{id}/approve/"), json!({})).status, 403);
    let r = app.post_as("checker", &format!("/api/v1/bulk/jobs/{id}/approve/"), json!({}));
    assert_eq!((r.status, status(&r.body)), (200, "PROCESSING"), "{}", r.text);
    let job = app.job_until(&id, "completion", |j| status(j) == "COMPLETED");
    assert_eq!(job["counts"]["COMPLETED"], 3, "{job}");
    assert_eq!(job["counts"]["FAILED"], 1);
    assert_eq!(job["amounts"]["COMPLETED"], "600");
    assert_eq!(job["reserved_remaining"], "0");
    assert_eq!(app.account("22507000099")["balance"], "300", "the local payee is paid on-us");
    let source = app.account("22507000001");
    assert_eq!((source["available"].as_str(), source["reserved"].as_str()), (Some("99400"), Some("0")));
    assert_eq!(app.system_account("SYS:SETTLEMENT:XOF")["balance"], "300");
    assert_eq!(app.sim_paid().len(), 2);
    let items = app.get(&format!("/api/v1/bulk/jobs/{id}/items/?status=FAILED"));
    assert_eq!(items.body["items"][0]["error_code"], "3204", "{}", items.text);
    let results = app.get(&format!("/api/v1/bulk/jobs/{id}/results.csv"));
    assert_eq!(results.status, 200);
    assert_eq!(results.text.lines().count(), 5, "{}", results.text);
    assert!(results.text.starts_with("msisdn,amount,reference,name,status"), "{}", results.text);
    let errors = app.get(&format!("/api/v1/bulk/jobs/{id}/errors.csv"));
    assert_eq!(errors.text.lines().count(), 2, "{}", errors.text);
    app.assert_invariants();
}

/// The audit entries of `action` about job `id`.
fn audited(app: &crate::support::TestApp, action: &str, id: &str) -> Vec<Value> {
    let r = app.get(&format!("/api/v1/audit/?action={action}&limit=500"));
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["items"].as_array().expect("entries").iter().filter(|e| e["target"] == id).cloned().collect()
}

#[test]
fn without_approval_a_job_that_cannot_be_funded_fails_its_items_cancelled_and_is_audited_as_failed() {
    let options = Options { extra: vec![("SYSGP_BULK_APPROVAL", "false".into())], ..Options::default() };
    let app = spawn_app_with(options);
    app.funded("22507020001", "XOF", "250");
    let csv = "msisdn,amount\n22500000701,100\n22500000702,200\n";
    let id = app.upload_job("maker", "payroll.csv", csv.as_bytes(), &[("source_msisdn", "22507020001")]);
    let job = app.job_until(&id, "the job to fail", |j| status(j) == "FAILED");
    assert!(job["reason"].as_str().unwrap_or("").starts_with("INSUFFICIENT_FUNDS:"), "{job}");
    let (counts, amounts) = (&job["counts"], &job["amounts"]);
    assert_eq!((counts["PENDING"].as_u64(), counts["CANCELLED"].as_u64()), (Some(0), Some(2)), "never sent: {job}");
    assert_eq!((amounts["CANCELLED"].as_str(), job["reserved_remaining"].as_str()), (Some("300"), Some("0")));
    assert!(app.job_items(&id, None).iter().all(|i| status(i) == "CANCELLED"));
    let failed = audited(&app, "JOB_FAILED", &id);
    assert_eq!((failed.len(), failed[0]["actor"].as_str()), (1, Some("system")), "{failed:?}");
    assert!(failed[0]["details"]["reason"].as_str().unwrap_or("").starts_with("INSUFFICIENT_FUNDS"), "{failed:?}");
    assert_eq!(audited(&app, "JOB_AUTO_APPROVED", &id), Vec::<Value>::new(), "it was not started");
    let wallet = app.account("22507020001");
    assert_eq!((wallet["available"].as_str(), wallet["reserved"].as_str()), (Some("250"), Some("0")));

    // A job the wallet can fund starts at once, audited as such.
    let id =
        app.upload_job("maker", "small.csv", b"msisdn,amount\n22500000703,250\n", &[("source_msisdn", "22507020001")]);
    let job = app.job_until(&id, "completion", |j| status(j) == "COMPLETED");
    assert_eq!((job["approved_by"].as_str(), job["counts"]["COMPLETED"].as_u64()), (None, Some(1)), "{job}");
    let started = audited(&app, "JOB_AUTO_APPROVED", &id);
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(started[0]["details"]["reserved"], "250", "{started:?}");
    app.assert_invariants();
}
