//! Bulk downloads over real HTTP (SPEC §5 "Reading"): `errors.csv` is in upload format
//! and uploads again once its rows are fixed (`+` numbers, neutralised cells, control
//! and comment lines); `results.csv` and `errors.csv` keep the file's columns when
//! validation stopped; INVALID items keep the amount they had, outside every total.

use serde_json::Value;

use crate::bulk_flows::{no_500, st, validated_job};
use crate::support::{spawn_app, spawn_app_with, Options, TestApp};

const OUTCOME_HEADER: &str = "status,error_code,error_message,transfer_id,sdk_transfer_id,completed_at";

/// Uploads `csv` as the maker for `source` and waits for the end of its validation.
fn uploaded(app: &TestApp, source: &str, csv: &str, skip_invalid: bool) -> (String, Value) {
    let skip = if skip_invalid { "true" } else { "false" };
    let fields = [("source_msisdn", source), ("skip_invalid", skip)];
    let id = app.upload_job("maker", "payees.csv", csv.as_bytes(), &fields);
    let job = app.job_validated(&id);
    (id, job)
}

/// A download, asserted 200.
fn download(app: &TestApp, id: &str, name: &str) -> String {
    let r = no_500(app.get(&format!("/api/v1/bulk/jobs/{id}/{name}")));
    assert_eq!(r.status, 200, "{name}: {}", r.text);
    r.text
}

/// (line, code) of a job's validation report.
fn report_codes(app: &TestApp, id: &str) -> Vec<(u64, String)> {
    let report = app.job_report(id);
    report.iter().map(|e| (e["line"].as_u64().unwrap_or(0), e["code"].as_str().unwrap_or("").to_owned())).collect()
}

#[test]
fn errors_csv_with_plus_numbers_and_neutralised_cells_uploads_again_once_fixed() {
    let app = spawn_app();
    let source = "22507040001";
    app.funded(source, "XOF", "100000");
    let csv =
        "msisdn,amount,name\n+22507200006,12.5,Awa\n22507200007,abc,=SUM(A1)\n+225abc,40,Yao\n22507200008,100,Ok\n";
    for skip_invalid in [false, true] {
        let (id, job) = uploaded(&app, source, csv, skip_invalid);
        assert_eq!(st(&job), if skip_invalid { "AWAITING_APPROVAL" } else { "FAILED" }, "{job}");
        let errors = download(&app, &id, "errors.csv");
        // A number that parsed is written normalised (it needs no neutralising); other
        // cells starting with a formula character are still neutralised.
        assert_eq!(
            errors, "msisdn,amount,name\n22507200006,12.5,Awa\n22507200007,abc,'=SUM(A1)\n'+225abc,40,Yao\n",
            "skip_invalid={skip_invalid}"
        );
        if skip_invalid {
            assert_eq!(no_500(app.job_action("maker", &id, "cancel")).status, 200);
        }
    }
    // Fixed in place, the apostrophes our output added left as they are.
    let errors = "msisdn,amount,name\n22507200006,12.5,Awa\n22507200007,abc,'=SUM(A1)\n'+225abc,40,Yao\n";
    let fixed = errors.replace("'+225abc", "'+22507200009").replace("12.5", "12").replace(",abc,", ",30,");
    let id = validated_job(&app, source, &fixed);
    assert_eq!(report_codes(&app, &id), Vec::<(u64, String)>::new(), "{fixed}");
    let items = app.job_items(&id, None);
    let seen: Vec<(&str, &str, &str)> = items
        .iter()
        .map(|i| {
            (i["msisdn"].as_str().unwrap_or(""), i["amount"].as_str().unwrap_or(""), i["name"].as_str().unwrap_or(""))
        })
        .collect();
    assert_eq!(seen, [("22507200006", "12", "Awa"), ("22507200007", "30", "=SUM(A1)"), ("22507200009", "40", "Yao")]);
    let results = download(&app, &id, "results.csv");
    assert!(results.contains(",'=SUM(A1),"), "results.csv neutralises the name again: {results}");
    app.assert_invariants();
}

#[test]
fn errors_csv_never_holds_a_control_or_comment_line_and_quotes_a_first_cell_starting_with_a_hash() {
    let app = spawn_app();
    let source = "22507050001";
    app.funded(source, "XOF", "100000");
    let csv = "#total,2,999\nmsisdn,amount\n22507000001,100\nabc,5\n";
    let (id, job) = uploaded(&app, source, csv, false);
    assert!(job["reason"].as_str().unwrap_or("").starts_with("CONTROL_MISMATCH:"), "{job}");
    let errors = download(&app, &id, "errors.csv");
    assert_eq!(errors, "msisdn,amount\nabc,5\n");
    let id = validated_job(&app, source, &errors.replace("abc", "22507000002"));
    assert_eq!(app.get(&format!("/api/v1/bulk/jobs/{id}/")).body["total_amount"], "5");

    // With skip_invalid a comment line is an INVALID item, but not a row of errors.csv;
    // a quoted cell starting with '#' stays a data row when uploaded again.
    let csv = "msisdn,amount\n22507000003,100\n# paid last week\n\"#7\",20\n";
    let (id, job) = uploaded(&app, source, csv, true);
    assert_eq!((st(&job), job["counts"]["INVALID"].as_u64()), ("AWAITING_APPROVAL", Some(2)), "{job}");
    let errors = download(&app, &id, "errors.csv");
    assert_eq!(errors, "msisdn,amount\n\"#7\",\"20\"\n");
    let (again, job) = uploaded(&app, source, &errors, false);
    assert_eq!(st(&job), "FAILED", "{job}");
    assert_eq!(report_codes(&app, &again), [(2, "MSISDN_FORMAT".to_owned())]);
    app.assert_invariants();
}

#[test]
fn downloads_of_a_file_refused_as_a_whole_keep_its_columns_or_the_upload_header() {
    let app = spawn_app_with(Options { extra: vec![("SYSGP_BULK_ROWS_MAX", "3".into())], ..Options::default() });
    let source = "22507060001";
    app.wallet(source, "XOF");
    // (file, reason, errors.csv, results.csv columns)
    let cases: [(&[u8], &str, &str, &str); 4] = [
        (b"msisdn,amount,colour\n22507000001,100,red\n", "UNKNOWN_COLUMN", "msisdn,amount\n", "msisdn,amount"),
        (
            b"msisdn,amount,reference\nabc,1,r0\n22507000001,2,r1\n22507000002,3,r2\n22507000003,4,r3\n",
            "ROWS_LIMIT",
            "msisdn,amount,reference\nabc,1,r0\n",
            "msisdn,amount,reference",
        ),
        (b"amount;msisdn\n100;22507000001\n1\xff;22507000002\n", "NOT_UTF8", "amount,msisdn\n", "amount,msisdn"),
        (
            b"msisdn,amount,note\n22507000001,0,x\n",
            "INVALID_ROWS",
            "msisdn,amount,note\n22507000001,0,x\n",
            "msisdn,amount,note",
        ),
    ];
    for (file, reason, errors, columns) in cases {
        let id = app.upload_job("maker", "refused.csv", file, &[("source_msisdn", source)]);
        let job = app.job_validated(&id);
        assert!(job["reason"].as_str().unwrap_or("").starts_with(reason), "{reason}: {job}");
        assert_eq!(download(&app, &id, "errors.csv"), errors, "{reason}");
        assert_eq!(download(&app, &id, "results.csv"), format!("{columns},{OUTCOME_HEADER}\n"), "{reason}");
    }
}

#[test]
fn invalid_items_keep_the_amount_they_had_outside_the_total_and_the_reservation() {
    let app = spawn_app();
    let source = "22507070001";
    app.funded(source, "XOF", "10000");
    let csv = "msisdn,amount\n22507000011,10\nabc,10\n22507000012,xyz\n22507000013,25\n+225,99999999\n";
    let (id, job) = uploaded(&app, source, csv, true);
    assert_eq!(st(&job), "AWAITING_APPROVAL", "{job}");
    assert_eq!((job["counts"]["INVALID"].as_u64(), job["amounts"]["INVALID"].as_str()), (Some(3), Some("100000009")));
    assert_eq!((job["total_count"].as_u64(), job["total_amount"].as_str()), (Some(2), Some("35")), "{job}");
    let invalid = app.job_items(&id, Some("INVALID"));
    let seen: Vec<(Option<&str>, &str)> =
        invalid.iter().map(|i| (i["msisdn"].as_str(), i["amount"].as_str().unwrap_or(""))).collect();
    assert_eq!(seen, [(None, "10"), (Some("22507000012"), "0"), (None, "99999999")], "{invalid:?}");

    let r = no_500(app.job_action("checker", &id, "approve"));
    assert_eq!((r.status, r.body["reserved_remaining"].as_str()), (200, Some("35")), "{}", r.text);
    assert_eq!(app.account(source)["reserved"], "35");
    let job = app.job_until(&id, "completion", |j| st(j) == "COMPLETED");
    assert_eq!(
        (job["amounts"]["COMPLETED"].as_str(), job["amounts"]["INVALID"].as_str()),
        (Some("35"), Some("100000009"))
    );
    let payer = app.account(source);
    assert_eq!((payer["available"].as_str(), payer["reserved"].as_str()), (Some("9965"), Some("0")), "{payer}");
    assert_eq!(app.sim_paid().len(), 2, "only the valid lines were paid");
    app.assert_invariants();
}
