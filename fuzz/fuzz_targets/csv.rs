//! The bulk CSV validator (SPEC §5) on arbitrary bytes with small limits: the events
//! and the summary agree, every valid row is within the limits and re-parses, and the
//! result does not depend on how the reader splits the input; `revalidate` of an
//! accepted file gives the same rows and summary.
#![no_main]

use std::collections::HashSet;
use std::io::Read;

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use sysgp::bulk::csv::{revalidate, validate, Event, Fatal, Limits, Problem, Row, Summary};
use sysgp::ledger::{format_minor, parse_amount, Currency, Minor, Msisdn};

/// Codes that stop validation (module documentation of `bulk::csv`).
const FATAL_CODES: &[&str] = &[
    "NOT_UTF8",
    "EMPTY_FILE",
    "MISSING_HEADER",
    "MISSING_COLUMN",
    "UNKNOWN_COLUMN",
    "DUPLICATE_COLUMN",
    "NO_ROWS",
    "ROWS_LIMIT",
    "TOTAL_LIMIT",
    "ROW_TOO_LONG",
    "UNTERMINATED_QUOTE",
    "LINE_ENDINGS",
    "TOO_MANY_LINES",
    "READ_ERROR",
];

/// Codes of one line's problems.
const LINE_CODES: &[&str] = &[
    "FIELD_COUNT",
    "QUOTE_FORMAT",
    "MSISDN_FORMAT",
    "MSISDN_AS_NUMBER",
    "AMOUNT_FORMAT",
    "DECIMAL_COMMA",
    "TOO_MANY_DECIMALS",
    "AMOUNT_ZERO",
    "AMOUNT_TOO_LARGE",
    "CURRENCY_MISMATCH",
    "REFERENCE_TOO_LONG",
    "DUPLICATE_REFERENCE",
    "NAME_TOO_LONG",
    "NOTE_TOO_LONG",
    "CONTROL_CHARACTER",
    "COMMENT_NOT_ALLOWED",
    "CONTROL_FORMAT",
    "CONTROL_MISMATCH",
];

const COLUMNS: &[&str] = &["msisdn", "amount", "currency", "reference", "name", "note"];

/// Bytes of parameters before the file: currency, rows, read size, two maxima.
const PARAMETER_BYTES: usize = 11;

fuzz_target!(|data: &[u8]| {
    if data.len() < PARAMETER_BYTES {
        return;
    }
    let (parameters, file) = data.split_at(PARAMETER_BYTES);
    let currency = ["XOF", "USD", "KWD", "JPY"][usize::from(parameters[0] % 4)];
    let currency = Currency::parse(currency).expect("in the table");
    let limits = Limits {
        rows_max: u64::from(parameters[1] % 32) + 1,
        amount_max: Minor::from(u32::from_le_bytes([parameters[3], parameters[4], parameters[5], parameters[6]])) + 1,
        total_max: Minor::from(u32::from_le_bytes([parameters[7], parameters[8], parameters[9], parameters[10]])) + 1,
    };
    let whole = run(file, currency, limits);
    let read_size = usize::from(parameters[2]) + 1;
    let chunked = run(Chunked { data: file, read_size }, currency, limits);
    assert_eq!(whole, chunked, "reads of {read_size} bytes changed the result");
    check(&whole.0, &whole.1, currency, limits);
    if let Ok(summary) = &whole.1 {
        // A second pass over an accepted file (bulk ingest) judges every row the same.
        let mut again = Vec::new();
        let second = revalidate(file, currency, limits, summary, |e| again.push(e));
        let rows: Vec<&Event> = whole.0.iter().filter(|e| !matches!(e, Event::Warning(_))).collect();
        assert_eq!(again.iter().collect::<Vec<_>>(), rows, "revalidate changed the rows");
        assert_eq!(second.as_ref(), Ok(summary), "revalidate changed the summary");
    }
});

fn run(input: impl Read, currency: Currency, limits: Limits) -> (Vec<Event>, Result<Summary, Fatal>) {
    let mut events = Vec::new();
    let result = validate(input, currency, limits, |e| events.push(e));
    (events, result)
}

/// A reader that returns at most `read_size` bytes per call.
struct Chunked<'a> {
    data: &'a [u8],
    read_size: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.read_size).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// What the events add up to.
#[derive(Default)]
struct Tally {
    valid: u64,
    invalid: u64,
    /// Data rows, valid or not (not comment lines, not the control line).
    data_rows: u64,
    control_events: Vec<&'static str>,
    total: Minor,
    /// Amounts of the invalid rows whose amount parsed.
    invalid_total: Minor,
    hash: Sha256,
}

fn check(events: &[Event], result: &Result<Summary, Fatal>, currency: Currency, limits: Limits) {
    let tally = check_events(events, currency, limits);
    let counted = tally.valid + tally.invalid - tally.control_events.len() as u64;
    assert!(counted <= limits.rows_max, "{counted} rows and comment lines, rows_max {}", limits.rows_max);
    let summary = match result {
        Ok(summary) => summary,
        Err(Fatal(p)) => {
            assert!(FATAL_CODES.contains(&p.code) && p.line >= 1 && !p.message.is_empty(), "{p:?}");
            return;
        }
    };
    assert_eq!((summary.valid, summary.invalid), (tally.valid, tally.invalid), "{summary:?}");
    assert_eq!(summary.rows, summary.valid + summary.invalid);
    assert_eq!(summary.valid_total, tally.total);
    assert_eq!(summary.invalid_total, tally.invalid_total, "the invalid rows' parsed amounts");
    assert!(summary.valid_total <= limits.total_max);
    assert_eq!(summary.content_hash, <[u8; 32]>::from(tally.hash.finalize()), "content hash of the valid rows");
    assert!(matches!(summary.delimiter, b',' | b';'));
    for required in ["msisdn", "amount"] {
        assert!(summary.columns.iter().any(|c| c == required), "{:?}", summary.columns);
    }
    let distinct: HashSet<&String> = summary.columns.iter().collect();
    assert_eq!(distinct.len(), summary.columns.len(), "{:?}", summary.columns);
    assert!(summary.columns.iter().all(|c| COLUMNS.contains(&c.as_str())), "{:?}", summary.columns);
    assert!(summary.rows > tally.control_events.len() as u64, "a valid file has rows");
    match summary.control {
        Some((rows, sum)) if !tally.control_events.contains(&"CONTROL_MISMATCH") => {
            assert_eq!(rows, tally.data_rows, "the control line matched");
            if tally.valid == tally.data_rows {
                assert_eq!(sum, tally.total, "the control line matched");
            }
        }
        Some(_) => {}
        None => assert!(!tally.control_events.contains(&"CONTROL_MISMATCH"), "mismatch without a control line"),
    }
}

fn check_events(events: &[Event], currency: Currency, limits: Limits) -> Tally {
    let mut tally = Tally::default();
    let mut last_line = 0;
    let mut pairs = HashSet::new();
    let mut references = HashSet::new();
    for (i, event) in events.iter().enumerate() {
        match event {
            Event::Valid(row) => {
                assert!(row.line > last_line, "rows come in file order");
                last_line = row.line;
                check_row(row, currency, limits);
                if let Some(reference) = &row.reference {
                    assert!(references.insert(reference.clone()), "reference {reference:?} twice");
                }
                let duplicate = !pairs.insert((row.msisdn, row.amount));
                let warned = matches!(events.get(i + 1), Some(Event::Warning(_)));
                assert_eq!(duplicate, warned, "DUPLICATE_ROW iff the pair was seen, line {}", row.line);
                tally.valid += 1;
                tally.data_rows += 1;
                tally.total += row.amount;
                tally.hash.update(row.msisdn.as_u64().to_be_bytes());
                tally.hash.update(row.amount.to_be_bytes());
                let reference = row.reference.as_deref().unwrap_or("");
                tally.hash.update((reference.len() as u16).to_be_bytes());
                tally.hash.update(reference.as_bytes());
            }
            Event::Invalid { line, raw, problems, msisdn, amount } => {
                assert!(!problems.is_empty() && !raw.is_empty(), "line {line} says why");
                problems.iter().for_each(|p| check_problem(p, *line));
                tally.invalid += 1;
                tally.invalid_total = tally.invalid_total.saturating_add(amount.unwrap_or(0));
                if matches!(problems[0].code, "CONTROL_FORMAT" | "CONTROL_MISMATCH" | "COMMENT_NOT_ALLOWED") {
                    assert!(msisdn.is_none() && amount.is_none(), "line {line}: not a data row");
                }
                match problems[0].code {
                    code @ ("CONTROL_FORMAT" | "CONTROL_MISMATCH") => {
                        assert_eq!(problems.len(), 1);
                        tally.control_events.push(code);
                    }
                    code => {
                        assert!(*line > last_line, "lines come in file order");
                        last_line = *line;
                        if code != "COMMENT_NOT_ALLOWED" {
                            tally.data_rows += 1;
                        }
                    }
                }
            }
            Event::Warning(p) => {
                assert_eq!(p.code, "DUPLICATE_ROW");
                let previous = i.checked_sub(1).and_then(|j| events.get(j));
                assert!(matches!(previous, Some(Event::Valid(r)) if r.line == p.line), "warning after its row");
            }
        }
    }
    tally
}

fn check_row(row: &Row, currency: Currency, limits: Limits) {
    assert!(row.line >= 2, "the header comes first");
    assert!(row.amount > 0 && row.amount <= limits.amount_max, "{row:?}");
    let text = format_minor(row.amount, currency);
    assert_eq!(parse_amount(&text, currency, limits.amount_max), Ok(row.amount), "{text:?}");
    assert_eq!(Msisdn::parse(&row.msisdn.to_string()), Ok(row.msisdn));
    check_text(row.reference.as_deref(), row.reference.as_ref().map_or(0, |t| t.chars().count()), 64);
    check_text(row.name.as_deref(), row.name.as_ref().map_or(0, |t| t.chars().count()), 100);
    check_text(row.note.as_deref(), row.note.as_ref().map_or(0, |t| t.encode_utf16().count()), 128);
}

fn check_text(text: Option<&str>, length: usize, max: usize) {
    let Some(text) = text else { return };
    assert!(!text.is_empty() && text == text.trim() && length <= max, "{text:?}");
    assert!(!text.chars().any(char::is_control), "{text:?}");
}

fn check_problem(p: &Problem, line: u32) {
    assert_eq!(p.line, line, "{p:?}");
    assert!(LINE_CODES.contains(&p.code) && !p.message.is_empty(), "{p:?}");
    assert!(p.field.as_deref().is_none_or(|f| COLUMNS.contains(&f)), "{p:?}");
}
