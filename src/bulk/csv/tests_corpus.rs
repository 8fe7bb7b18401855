//! The corpus under `tests/fixtures/bulk/`: each file's exact problems (line, code),
//! fatal error and number of valid rows, as listed in its `README.md`.

use std::path::PathBuf;

use super::*;

/// Limits for most files: small enough to reach in a fixture.
const LIMITS: Limits = Limits { rows_max: 1000, amount_max: 10_000_000, total_max: 1_000_000_000 };

/// One corpus file and what validating it must give.
struct Case {
    file: &'static str,
    currency: &'static str,
    limits: Limits,
    /// (line, code) of every problem of `Invalid` events and every `Warning`, in order.
    problems: &'static [(u32, &'static str)],
    fatal: Option<(u32, &'static str)>,
    valid: u64,
}

const fn case(file: &'static str, problems: &'static [(u32, &'static str)], valid: u64) -> Case {
    Case { file, currency: "XOF", limits: LIMITS, problems, fatal: None, valid }
}

const fn fatal_case(file: &'static str, fatal: (u32, &'static str), valid: u64) -> Case {
    Case { file, currency: "XOF", limits: LIMITS, problems: &[], fatal: Some(fatal), valid }
}

const CASES: &[Case] = &[
    case("valid_basic.csv", &[], 3),
    case("bom.csv", &[], 2),
    case("semicolon.csv", &[], 2),
    case("quoted_commas.csv", &[], 2),
    case("quoted_newlines.csv", &[(3, "CONTROL_CHARACTER"), (5, "CONTROL_CHARACTER"), (8, "MSISDN_FORMAT")], 2),
    case("crlf.csv", &[(4, "AMOUNT_FORMAT")], 2),
    fatal_case("missing_header.csv", (1, "MISSING_HEADER"), 0),
    fatal_case("unknown_column.csv", (1, "UNKNOWN_COLUMN"), 0),
    fatal_case("missing_column.csv", (1, "MISSING_COLUMN"), 0),
    fatal_case("duplicate_column.csv", (1, "DUPLICATE_COLUMN"), 0),
    fatal_case("empty.csv", (1, "EMPTY_FILE"), 0),
    fatal_case("header_only.csv", (1, "NO_ROWS"), 0),
    case("blank_lines.csv", &[(7, "AMOUNT_ZERO")], 1),
    fatal_case("latin1.csv", (3, "NOT_UTF8"), 1),
    fatal_case("utf16_bom.csv", (1, "NOT_UTF8"), 0),
    fatal_case("utf16_no_bom.csv", (1, "NOT_UTF8"), 0),
    fatal_case("binary.csv", (1, "NOT_UTF8"), 0),
    case("wrong_currency.csv", &[(3, "CURRENCY_MISMATCH"), (4, "CURRENCY_MISMATCH")], 2),
    case("too_many_decimals.csv", &[(2, "TOO_MANY_DECIMALS")], 1),
    Case { currency: "USD", ..case("decimal_comma.csv", &[(2, "DECIMAL_COMMA"), (3, "DECIMAL_COMMA")], 1) },
    case("negative.csv", &[(2, "AMOUNT_FORMAT")], 1),
    case("zero.csv", &[(2, "AMOUNT_ZERO"), (3, "AMOUNT_ZERO")], 1),
    case("exponent.csv", &[(2, "AMOUNT_FORMAT"), (3, "AMOUNT_FORMAT")], 1),
    case("msisdn_as_number.csv", &[(2, "MSISDN_AS_NUMBER"), (3, "MSISDN_AS_NUMBER")], 1),
    case(
        "bad_msisdn.csv",
        &[(2, "MSISDN_FORMAT"), (3, "MSISDN_FORMAT"), (4, "MSISDN_FORMAT"), (5, "MSISDN_FORMAT"), (6, "MSISDN_FORMAT")],
        1,
    ),
    case("duplicate_reference.csv", &[(4, "DUPLICATE_REFERENCE")], 3),
    Case { currency: "USD", ..case("control_match.csv", &[], 3) },
    case("control_mismatch.csv", &[(5, "MSISDN_FORMAT"), (1, "CONTROL_MISMATCH")], 2),
    case("control_other_delimiter.csv", &[(1, "CONTROL_FORMAT")], 2),
    case("comment_line.csv", &[(1, "COMMENT_NOT_ALLOWED"), (4, "COMMENT_NOT_ALLOWED"), (6, "COMMENT_NOT_ALLOWED")], 2),
    Case { limits: Limits { rows_max: 5, ..LIMITS }, ..fatal_case("rows_limit.csv", (7, "ROWS_LIMIT"), 5) },
    Case { limits: Limits { total_max: 1000, ..LIMITS }, ..fatal_case("total_limit.csv", (4, "TOTAL_LIMIT"), 2) },
    case("msisdn_spaces.csv", &[], 4),
    case("duplicate_rows.csv", &[(4, "DUPLICATE_ROW")], 4),
    case("field_count.csv", &[(2, "FIELD_COUNT"), (3, "FIELD_COUNT"), (4, "FIELD_COUNT")], 1),
    case("long_fields.csv", &[(2, "REFERENCE_TOO_LONG"), (3, "NAME_TOO_LONG"), (4, "NOTE_TOO_LONG")], 1),
    case("control_chars.csv", &[(2, "CONTROL_CHARACTER"), (3, "CONTROL_CHARACTER")], 1),
    fatal_case("unterminated_quote.csv", (2, "UNTERMINATED_QUOTE"), 0),
    case("amount_too_large.csv", &[(2, "AMOUNT_TOO_LARGE")], 1),
    fatal_case("cr_only.csv", (1, "LINE_ENDINGS"), 0),
    case(
        "every_problem.csv",
        &[
            (2, "MSISDN_FORMAT"),
            (2, "AMOUNT_FORMAT"),
            (2, "CURRENCY_MISMATCH"),
            (2, "REFERENCE_TOO_LONG"),
            (2, "CONTROL_CHARACTER"),
            (2, "NOTE_TOO_LONG"),
        ],
        0,
    ),
    case("quote_format.csv", &[(2, "QUOTE_FORMAT"), (2, "AMOUNT_FORMAT")], 1),
];

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bulk")
}

/// Validates a corpus file: its events and result.
pub(super) fn run_file(file: &str, currency: &str, limits: Limits) -> (Vec<Event>, Result<Summary, Fatal>) {
    let bytes = std::fs::read(corpus_dir().join(file)).expect("corpus file");
    let currency = Currency::parse(currency).expect("currency");
    let mut events = Vec::new();
    let result = validate(&bytes[..], currency, limits, |e| events.push(e));
    (events, result)
}

/// (line, code) of every problem and warning, in event order.
pub(super) fn codes(events: &[Event]) -> Vec<(u32, &'static str)> {
    let mut out = Vec::new();
    for event in events {
        match event {
            Event::Valid(_) => {}
            Event::Invalid { line, problems, .. } => {
                for p in problems {
                    assert_eq!(p.line, *line, "a problem is on its event's line");
                    out.push((p.line, p.code));
                }
            }
            Event::Warning(p) => out.push((p.line, p.code)),
        }
    }
    out
}

#[test]
fn corpus_files_give_their_documented_outcomes() {
    let mut failures = Vec::new();
    for case in CASES {
        let (events, result) = run_file(case.file, case.currency, case.limits);
        let valid = events.iter().filter(|e| matches!(e, Event::Valid(_))).count() as u64;
        let fatal = result.as_ref().err().map(|Fatal(p)| (p.line, p.code));
        let problems = codes(&events);
        if problems != case.problems || fatal != case.fatal || valid != case.valid {
            failures.push(format!(
                "{}: problems {problems:?} (want {:?}), fatal {fatal:?} (want {:?}), valid {valid} (want {})",
                case.file, case.problems, case.fatal, case.valid
            ));
        }
        if let Ok(summary) = &result {
            assert_eq!(summary.valid, valid, "{}", case.file);
            assert_eq!(summary.rows, summary.valid + summary.invalid, "{}", case.file);
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_corpus_file_has_a_case_and_a_readme_entry() {
    let readme = std::fs::read_to_string(corpus_dir().join("README.md")).expect("README.md");
    let mut files: Vec<String> = std::fs::read_dir(corpus_dir())
        .expect("corpus dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".csv"))
        .collect();
    files.sort();
    assert_eq!(files.len(), CASES.len(), "one case per file");
    for file in &files {
        assert!(CASES.iter().any(|c| c.file == file), "{file} has no case");
        assert!(readme.contains(&format!("`{file}`")), "{file} is not in README.md");
    }
}

#[test]
fn oddities_that_are_valid_read_as_intended() {
    let rows = |file: &str| -> Vec<Row> {
        let (events, result) = run_file(file, "XOF", LIMITS);
        result.expect(file);
        events.into_iter().filter_map(|e| if let Event::Valid(r) = e { Some(r) } else { None }).collect()
    };
    let quoted = rows("quoted_commas.csv");
    assert_eq!(quoted[0].name.as_deref(), Some("Doe, Jane"));
    assert_eq!(quoted[0].note.as_deref(), Some("Bonus, Q1"));
    assert_eq!(quoted[1].name.as_deref(), Some("Jean \"JJ\" Kouassi"));
    assert_eq!(quoted[1].note, None);
    let newlines = rows("quoted_newlines.csv");
    assert_eq!((newlines[1].line, newlines[1].name.as_deref()), (9, Some("Ama, \"the\" second")));
    let crlf = rows("crlf.csv");
    assert_eq!(crlf[1].name.as_deref(), Some("Koffi"), "no CR left at the end of a line");
    let spaces = rows("msisdn_spaces.csv");
    let numbers: Vec<String> = spaces.iter().map(|r| r.msisdn.to_string()).collect();
    assert_eq!(numbers, ["2250700000001", "2250700000002", "2250700000003", "22507000004"]);
    let semicolon = rows("semicolon.csv");
    assert_eq!(semicolon[0].name.as_deref(), Some("Traoré; Awa"));
    let basic = rows("valid_basic.csv");
    assert_eq!((basic[0].amount, basic[0].reference.as_deref()), (1500, Some("INV-1")));
}

#[test]
fn summaries_describe_the_file() {
    let (_, result) = run_file("semicolon.csv", "XOF", LIMITS);
    let summary = result.expect("valid");
    assert_eq!(summary.delimiter, b';');
    assert_eq!(summary.columns, ["msisdn", "amount", "name"]);
    assert_eq!((summary.rows, summary.valid, summary.invalid, summary.valid_total), (2, 2, 0, 4000));
    let (_, result) = run_file("control_match.csv", "USD", LIMITS);
    assert_eq!(result.expect("valid").control, Some((3, 4550)));
    let (events, result) = run_file("control_mismatch.csv", "XOF", LIMITS);
    let summary = result.expect("a mismatch is reported, not fatal");
    assert_eq!((summary.rows, summary.valid, summary.invalid), (4, 2, 2));
    let Some(Event::Invalid { problems, raw, .. }) = events.last() else { panic!("mismatch last") };
    assert_eq!(raw, &["#total", "3", "4500"]);
    assert!(problems[0].message.contains("3 rows totalling 4500 XOF"), "{}", problems[0].message);
    assert!(problems[0].message.contains("3 rows totalling 4000 XOF"), "{}", problems[0].message);
}
