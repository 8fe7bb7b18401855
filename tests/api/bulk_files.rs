//! Bulk files over real HTTP (SPEC §5 "File", "Validation", "Limits"): every file of
//! the corpus in `tests/fixtures/bulk/` is uploaded and gets the job status, reason and
//! validation report its README describes, and its `errors.csv` uploads again; valid
//! oddities are accepted; upload form mistakes are 4xx; nothing is ever a 500.

use std::path::PathBuf;

use serde_json::{json, Value};

use crate::support::{spawn_app_with, Options, Reply, TestApp};

mod cases;

use cases::{Case, Entry, Outcome, CASES, LIMIT_CASES};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bulk")
}

fn read_fixture(file: &str) -> Vec<u8> {
    std::fs::read(corpus_dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn st(j: &Value) -> &str {
    j["status"].as_str().unwrap_or("")
}

/// Fails on any 5xx: bad input is never a server error.
fn no_500(what: &str, r: &Reply) -> Result<(), String> {
    match r.status < 500 {
        true => Ok(()),
        false => Err(format!("{what} answered {}: {}", r.status, r.text)),
    }
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

/// (line, field, code) of every report entry, in order.
fn entries(report: &[Value]) -> Vec<(u64, Option<String>, String)> {
    report
        .iter()
        .map(|e| {
            let line = e["line"].as_u64().unwrap_or(0);
            let field = e["field"].as_str().map(str::to_owned);
            let code = e["code"].as_str().unwrap_or("").to_owned();
            (line, field, code)
        })
        .collect()
}

fn want_entries(expected: &[Entry]) -> Vec<(u64, Option<String>, String)> {
    expected.iter().map(|(l, f, c)| (u64::from(*l), f.map(str::to_owned), (*c).to_owned())).collect()
}

/// Uploads one corpus file for `wallet` and checks everything its case says.
fn run_case(app: &TestApp, case: &Case, wallet: &str) -> Result<(), String> {
    let bytes = read_fixture(case.file);
    let name = case.file.rsplit('/').next().unwrap_or(case.file);
    let r = app.upload("maker", name, &bytes, &[("source_msisdn", wallet)]);
    no_500("upload", &r)?;
    if let Outcome::Refused { status, code } = case.outcome {
        return check((r.status, r.code()) == (status, code), || {
            format!("upload: want {status} {code}, got {}", r.text)
        });
    }
    check(r.status == 202, || format!("upload: {} {}", r.status, r.text))?;
    let id = r.body["job_id"].as_str().unwrap_or("").to_owned();
    let job = app.job_validated(&id);
    let report = entries(&app.job_report(&id));
    match &case.outcome {
        Outcome::Accepted { count, total, report: want } => {
            check(job["status"] == "AWAITING_APPROVAL", || format!("want AWAITING_APPROVAL: {job}"))?;
            check(job["total_count"] == *count && job["total_amount"] == *total, || {
                format!("want {count} items totalling {total}: {job}")
            })?;
            check(job["counts"]["PENDING"] == *count && job["counts"]["INVALID"] == 0, || format!("counts: {job}"))?;
            check(job["reason"].is_null(), || format!("no reason expected: {job}"))?;
            check(report == want_entries(want), || format!("report {report:?}, want {want:?}"))?;
            check(job["warnings"].as_array().map_or(0, Vec::len) == want.len(), || format!("warnings: {job}"))?;
        }
        Outcome::Failed { code, report: want } => {
            check(job["status"] == "FAILED", || format!("want FAILED: {job}"))?;
            let reason = job["reason"].as_str().unwrap_or("");
            check(reason.starts_with(&format!("{code}:")), || format!("reason should name {code}: {reason:?}"))?;
            check(job["total_count"] == 0 && job["reserved_remaining"] == "0", || format!("nothing to pay: {job}"))?;
            check(report == want_entries(want), || format!("report {report:?}, want {want:?}"))?;
        }
        Outcome::Refused { .. } => unreachable!("handled above"),
    }
    check_downloads(app, &id, case)?;
    check_errors_upload_again(app, &id, wallet)
}

/// Problems of `#` lines (comments, the control line): such lines are not in `errors.csv`.
const HASH_LINE_CODES: [&str; 3] = ["COMMENT_NOT_ALLOWED", "CONTROL_FORMAT", "CONTROL_MISMATCH"];
/// Problems that an `errors.csv` uploaded again must never have: it is a readable table
/// in upload format, whatever its rows still need fixing.
const UNREADABLE_CODES: [&str; 9] = [
    "COMMENT_NOT_ALLOWED",
    "CONTROL_FORMAT",
    "CONTROL_MISMATCH",
    "MISSING_HEADER",
    "UNKNOWN_COLUMN",
    "MISSING_COLUMN",
    "DUPLICATE_COLUMN",
    "NOT_UTF8",
    "LINE_ENDINGS",
];
/// The columns results.csv adds after the upload's.
const OUTCOME_COLUMNS: [&str; 6] =
    ["status", "error_code", "error_message", "transfer_id", "sdk_transfer_id", "completed_at"];

/// The records of a CSV download (header included), multi-line cells allowed.
fn csv_rows(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for record in reader.records() {
        rows.push(record.map_err(|e| format!("not CSV ({e}): {text}"))?.iter().map(str::to_owned).collect());
    }
    Ok(rows)
}

/// `errors.csv` has a header of upload columns, `results.csv` the same columns and then
/// the outcome columns, and uploading `errors.csv` again gives a job whose report may
/// list its rows' problems but never a problem of the file itself or of a `#` line.
fn check_errors_upload_again(app: &TestApp, id: &str, wallet: &str) -> Result<(), String> {
    let errors = app.get(&format!("/api/v1/bulk/jobs/{id}/errors.csv")).text;
    let results = app.get(&format!("/api/v1/bulk/jobs/{id}/results.csv")).text;
    let header = csv_rows(&errors)?.into_iter().next().unwrap_or_default();
    let known = ["msisdn", "amount", "currency", "reference", "name", "note"];
    check(header.iter().all(|c| known.contains(&c.as_str())) && header.len() >= 2, || {
        format!("errors.csv needs a header of upload columns: {errors:?}")
    })?;
    let mut want: Vec<String> = header.clone();
    want.extend(OUTCOME_COLUMNS.map(String::from));
    let got = csv_rows(&results)?.into_iter().next().unwrap_or_default();
    check(got == want, || format!("results.csv header {got:?}, want {want:?}"))?;
    check(!errors.lines().any(|l| l.starts_with('#')), || format!("a # line in errors.csv: {errors:?}"))?;
    let again = app.upload("maker", "errors.csv", errors.as_bytes(), &[("source_msisdn", wallet)]);
    no_500("upload of errors.csv", &again)?;
    check(again.status == 202, || format!("errors.csv upload: {}", again.text))?;
    let again_id = again.body["job_id"].as_str().unwrap_or("").to_owned();
    app.job_validated(&again_id);
    let report = entries(&app.job_report(&again_id));
    check(!report.iter().any(|(_, _, code)| UNREADABLE_CODES.contains(&code.as_str())), || {
        format!("errors.csv does not upload again: {report:?} for {errors:?}")
    })
}

/// Every read of a validated job answers without a 5xx; `errors.csv` lists the invalid lines.
fn check_downloads(app: &TestApp, id: &str, case: &Case) -> Result<(), String> {
    for path in ["/", "/items/", "/report/", "/results.csv", "/events"] {
        let r = app.get(&format!("/api/v1/bulk/jobs/{id}{path}"));
        no_500(path, &r)?;
        check(r.status == 200, || format!("{path}: {} {}", r.status, r.text))?;
    }
    let errors = app.get(&format!("/api/v1/bulk/jobs/{id}/errors.csv"));
    no_500("errors.csv", &errors)?;
    check(errors.status == 200, || format!("errors.csv: {} {}", errors.status, errors.text))?;
    match &case.outcome {
        Outcome::Failed { code: "INVALID_ROWS" | "CONTROL_MISMATCH" | "CONTROL_FORMAT", report } => {
            // `#` lines are no payment rows: errors.csv leaves them out.
            let mut lines: Vec<u32> = report.iter().filter(|e| !HASH_LINE_CODES.contains(&e.2)).map(|e| e.0).collect();
            lines.dedup();
            let records = csv_rows(&errors.text)?.len();
            check(records == 1 + lines.len(), || {
                format!("errors.csv should hold the header and {} rows: {:?}", lines.len(), errors.text)
            })
        }
        Outcome::Accepted { .. } => {
            let records = csv_rows(&errors.text)?.len();
            check(records == 1, || format!("errors.csv of a valid file is its header only: {:?}", errors.text))
        }
        _ => Ok(()),
    }
}

/// Every `.csv` under the corpus directory (one level of subdirectories).
fn corpus_files() -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["", "http/"] {
        for entry in std::fs::read_dir(corpus_dir().join(sub)).expect("corpus dir") {
            let name = entry.expect("entry").file_name().to_string_lossy().into_owned();
            if name.ends_with(".csv") {
                out.push(format!("{sub}{name}"));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_corpus_file_gets_the_job_reason_and_report_the_spec_describes_and_never_a_500() {
    let app = spawn_app_with(Options { extra: vec![("SYSGP_AMOUNT_MAX", "10000000".into())], ..Options::default() });
    let mut failures = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        // A wallet per file: some files have the same content, which is a duplicate for one wallet.
        let wallet = format!("2250999{i:04}");
        app.wallet(&wallet, case.currency);
        if let Err(e) = run_case(&app, case, &wallet) {
            failures.push(format!("{}: {e}", case.file));
        }
    }
    let listed: Vec<&str> = CASES.iter().chain(LIMIT_CASES).map(|c| c.file).collect();
    for file in corpus_files() {
        if !listed.contains(&file.as_str()) {
            failures.push(format!("{file}: no case in bulk_files.rs"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    app.assert_invariants();
}

#[test]
fn files_over_a_limit_are_refused_with_an_error_naming_the_limit() {
    let extra = vec![
        ("SYSGP_BULK_ROWS_MAX", "5".to_owned()),
        ("SYSGP_BULK_TOTAL_MAX", "1000".to_owned()),
        ("SYSGP_BULK_FILE_MAX_MB", "1".to_owned()),
    ];
    let app = spawn_app_with(Options { extra, ..Options::default() });
    let mut failures = Vec::new();
    for (i, case) in LIMIT_CASES.iter().enumerate() {
        let wallet = format!("2250998{i:04}");
        app.wallet(&wallet, case.currency);
        if let Err(e) = run_case(&app, case, &wallet) {
            failures.push(format!("{}: {e}", case.file));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    let rows = app.get_as("maker", "/api/v1/bulk/jobs/?status=FAILED").body;
    let reasons: Vec<&str> =
        rows["items"].as_array().expect("jobs").iter().filter_map(|j| j["reason"].as_str()).collect();
    assert!(reasons.iter().any(|r| r.contains("more than 5 rows")), "the rows limit is named: {reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("1000 XOF")), "the total limit is named: {reasons:?}");

    // Over SYSGP_BULK_FILE_MAX_MB: 413 at upload, no job, and the server carries on.
    app.wallet("22509970001", "XOF");
    let mut big = b"msisdn,amount\n".to_vec();
    while big.len() <= 1024 * 1024 + 4096 {
        big.extend_from_slice(b"22507000001,100\n");
    }
    let r = app.upload("maker", "big.csv", &big, &[("source_msisdn", "22509970001")]);
    assert_eq!((r.status, r.code()), (413, "FILE_TOO_LARGE"), "{}", r.text);
    assert!(r.body["error"]["message"].as_str().unwrap_or("").contains("SYSGP_BULK_FILE_MAX_MB"), "{}", r.text);
    assert_eq!(r.body["error"]["details"]["limit_bytes"], 1024 * 1024, "{}", r.text);
    let before = app.get("/api/v1/bulk/jobs/").body["items"].as_array().map_or(0, Vec::len);
    // Each case made two jobs: its file, and its errors.csv uploaded again.
    assert_eq!(before, 2 * LIMIT_CASES.len(), "a refused upload makes no job");
    let id =
        app.upload_job("maker", "small.csv", b"msisdn,amount\n22507000001,100\n", &[("source_msisdn", "22509970001")]);
    assert_eq!(app.job_validated(&id)["status"], "AWAITING_APPROVAL");
    app.assert_invariants();
}

#[test]
fn valid_oddities_keep_their_values_through_to_the_items() {
    let app = spawn_app_with(Options::default());
    app.wallet("22509960001", "XOF");
    let bytes = read_fixture("http/oddities_combined.csv");
    let id = app.upload_job("maker", "oddities.csv", &bytes, &[("source_msisdn", "22509960001")]);
    assert_eq!(app.job_validated(&id)["status"], "AWAITING_APPROVAL");
    let items = app.job_items(&id, None);
    let seen: Vec<(u64, &str, &str, &str, &str)> = items
        .iter()
        .map(|i| {
            let s = |k: &str| i[k].as_str().unwrap_or("");
            (i["line"].as_u64().unwrap_or(0), s("msisdn"), s("amount"), s("name"), s("reference"))
        })
        .collect();
    assert_eq!(
        seen,
        [(2, "2250700000001", "1500", "Traoré; Awa", "A-1"), (3, "22507000002", "2500", "Koffi \"KK\"", "A-2")],
        "{items:?}"
    );
    // results.csv keeps the file's columns (normalised) before the outcome columns.
    let results = app.get(&format!("/api/v1/bulk/jobs/{id}/results.csv"));
    assert!(results.text.starts_with("msisdn,amount,name,reference,status,"), "{}", results.text);
}

#[test]
fn with_skip_invalid_the_bad_rows_become_invalid_items_and_the_others_are_paid() {
    let app = spawn_app_with(Options::default());
    app.funded("22509950001", "XOF", "10000");
    let bytes = read_fixture("bad_msisdn.csv");
    let source = [("source_msisdn", "22509950001"), ("skip_invalid", "true")];
    let id = app.upload_job("maker", "bad_msisdn.csv", &bytes, &source);
    let job = app.job_validated(&id);
    assert_eq!(job["status"], "AWAITING_APPROVAL", "{job}");
    assert_eq!((job["counts"]["INVALID"].as_u64(), job["counts"]["PENDING"].as_u64()), (Some(5), Some(1)), "{job}");
    assert_eq!((job["total_count"].as_u64(), job["total_amount"].as_str()), (Some(1), Some("100")), "{job}");
    let invalid = app.job_items(&id, Some("INVALID"));
    let lines: Vec<(u64, &str)> =
        invalid.iter().map(|i| (i["line"].as_u64().unwrap_or(0), i["error_code"].as_str().unwrap_or(""))).collect();
    assert_eq!(lines, [2, 3, 4, 5, 6].map(|l| (l, "MSISDN_FORMAT")), "{invalid:?}");
    assert_eq!(app.job_report(&id).len(), 5, "the report still lists every problem");

    let r = app.job_action("checker", &id, "approve");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["reserved_remaining"], "100", "only the valid row is reserved: {}", r.text);
    let job = app.job_until(&id, "completion", |j| j["status"] == "COMPLETED");
    assert_eq!((job["counts"]["COMPLETED"].as_u64(), job["counts"]["INVALID"].as_u64()), (Some(1), Some(5)), "{job}");
    assert_eq!(app.account("22509950001")["available"], "9900");
    assert_eq!(app.sim_paid().iter().filter(|t| t["amount"] == "100").count(), 1);
    let errors = app.get(&format!("/api/v1/bulk/jobs/{id}/errors.csv"));
    let rows: Vec<Vec<String>> = csv::Reader::from_reader(errors.text.as_bytes())
        .records()
        .map(|r| r.expect("CSV").iter().map(str::to_owned).collect())
        .collect();
    let msisdns: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(msisdns, ["0700000001", "2250700000a", "", "(225)07000001", "1234567"], "{}", errors.text);

    // skip_invalid does not rescue a file that cannot be read, nor one without a valid row.
    app.wallet("22509950002", "XOF");
    let source = [("source_msisdn", "22509950002"), ("skip_invalid", "true")];
    let id = app.upload_job("maker", "binary.csv", &read_fixture("binary.csv"), &source);
    let job = app.job_validated(&id);
    assert_eq!(st(&job), "FAILED", "{job}");
    assert!(job["reason"].as_str().unwrap_or("").starts_with("NOT_UTF8:"), "{job}");
    let id = app.upload_job("maker", "control_mismatch.csv", &read_fixture("control_mismatch.csv"), &source);
    let job = app.job_validated(&id);
    assert_eq!(st(&job), "FAILED", "a control line that disagrees condemns the file: {job}");
    assert!(job["reason"].as_str().unwrap_or("").starts_with("CONTROL_MISMATCH:"), "{job}");
    // A control character in a name is a problem of its row, not of the file.
    let id = app.upload_job("maker", "control_chars.csv", &read_fixture("control_chars.csv"), &source);
    let job = app.job_validated(&id);
    assert_eq!(st(&job), "AWAITING_APPROVAL", "{job}");
    assert_eq!((job["counts"]["INVALID"].as_u64(), job["total_count"].as_u64()), (Some(2), Some(1)), "{job}");
    let id = app.upload_job("maker", "every_problem.csv", &read_fixture("every_problem.csv"), &source);
    let job = app.job_validated(&id);
    assert_eq!(st(&job), "FAILED", "{job}");
    assert!(job["reason"].as_str().unwrap_or("").starts_with("NO_VALID_ROWS:"), "{job}");
    app.assert_invariants();
}

/// A multipart body with the given text fields and files (name, file name, bytes).
fn multipart(fields: &[(&str, &str)], files: &[(&str, &str, &str)]) -> (String, String) {
    let boundary = "bulk-files-boundary-5c1e";
    let mut body = String::new();
    for (k, v) in fields {
        body.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"));
    }
    for (k, name, text) in files {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"; filename=\"{name}\"\r\nContent-Type: text/csv\r\n\r\n{text}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    (body, format!("multipart/form-data; boundary={boundary}"))
}

/// (what, form fields, status, error code).
type FormCase<'a> = (&'a str, &'a [(&'a str, &'a str)], u16, &'a str);

#[test]
fn upload_form_mistakes_are_4xx_errors_naming_the_problem() {
    let app = spawn_app_with(Options::default());
    app.wallet("22509940001", "XOF");
    let csv = b"msisdn,amount\n22507000001,100\n";
    let cases: [FormCase; 6] = [
        ("no source", &[], 400, "MISSING_FIELD"),
        ("bad source", &[("source_msisdn", "abc")], 400, "MSISDN_FORMAT"),
        ("unknown source", &[("source_msisdn", "22509940099")], 422, "ACCOUNT_NOT_FOUND"),
        ("unknown field", &[("source_msisdn", "22509940001"), ("colour", "blue")], 400, "UNKNOWN_FIELD"),
        ("bad flag", &[("source_msisdn", "22509940001"), ("skip_invalid", "maybe")], 400, "INVALID_FIELD"),
        (
            "duplicate without reason",
            &[("source_msisdn", "22509940001"), ("allow_duplicate", "true")],
            400,
            "REASON_REQUIRED",
        ),
    ];
    for (what, fields, status, code) in cases {
        let r = app.upload("maker", "f.csv", csv, fields);
        assert_eq!((r.status, r.code()), (status, code), "{what}: {}", r.text);
    }
    for (user, status) in [("viewer", 403), ("checker", 403)] {
        let r = app.upload(user, "f.csv", csv, &[("source_msisdn", "22509940001")]);
        assert_eq!(r.status, status, "{user} may not upload: {}", r.text);
    }
    let r = app.post_raw("/api/v1/bulk/upload/", "msisdn,amount\n", "text/csv", &[]);
    assert_eq!((r.status, r.code()), (415, "UNSUPPORTED_MEDIA_TYPE"), "{}", r.text);
    let (body, content_type) = multipart(&[("source_msisdn", "22509940001")], &[]);
    let r = app.post_raw("/api/v1/bulk/upload/", &body, &content_type, &[]);
    assert_eq!((r.status, r.code()), (400, "MISSING_FIELD"), "no file: {}", r.text);
    let two =
        [("file", "a.csv", "msisdn,amount\n22507000001,1\n"), ("file", "b.csv", "msisdn,amount\n22507000001,2\n")];
    let (body, content_type) = multipart(&[("source_msisdn", "22509940001")], &two);
    let r = app.post_raw("/api/v1/bulk/upload/", &body, &content_type, &[]);
    assert_eq!((r.status, r.code()), (400, "DUPLICATE_FIELD"), "two files: {}", r.text);
    let r = app.post_raw("/api/v1/bulk/upload/", "--x\r\ngarbage", "multipart/form-data; boundary=x", &[]);
    assert!((400..500).contains(&r.status), "truncated multipart: {} {}", r.status, r.text);
    let r = app.post("/api/v1/accounts/22509940001/freeze/", json!({"reason": "test"}));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.upload("maker", "f.csv", csv, &[("source_msisdn", "22509940001")]);
    assert_eq!((r.status, r.code()), (422, "ACCOUNT_FROZEN"), "{}", r.text);
    assert_eq!(app.get("/api/v1/bulk/jobs/").body["items"], json!([]), "no refused upload made a job");
    app.assert_invariants();
}

#[test]
fn a_chunked_upload_without_content_length_is_streamed_validated_and_limited() {
    let app = spawn_app_with(Options { extra: vec![("SYSGP_BULK_FILE_MAX_MB", "1".into())], ..Options::default() });
    app.wallet("22509930001", "XOF");
    let mut csv = b"msisdn,amount\n".to_vec();
    for i in 0..2000 {
        csv.extend(format!("2250993{i:04}1,{}\n", 100 + i % 10).as_bytes());
    }
    let r = app.upload_chunked("maker", "chunked.csv", &csv, &[("source_msisdn", "22509930001")]);
    assert_eq!(r.status, 202, "{}", r.text);
    let job = app.job_validated(r.body["job_id"].as_str().expect("job id"));
    let total: u32 = (0..2000).map(|i| 100 + i % 10).sum();
    assert_eq!(job["status"], "AWAITING_APPROVAL", "{job}");
    assert_eq!((job["total_count"].as_u64(), job["total_amount"].as_str()), (Some(2000), Some(&*total.to_string())));

    while csv.len() <= 1024 * 1024 + 4096 {
        csv.extend_from_slice(b"22507000001,100\n");
    }
    let r = app.upload_chunked("maker", "big.csv", &csv, &[("source_msisdn", "22509930001")]);
    assert_eq!((r.status, r.code()), (413, "FILE_TOO_LARGE"), "{}", r.text);
}
