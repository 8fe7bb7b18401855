//! Bulk CSV files (SPEC §5 "File", "Validation", "Limits"): a streaming parser and
//! validator that turns an uploaded file into row events and a summary, and the
//! spreadsheet-safe cell for CSV output. Pure: no store, no HTTP.
//!
//! Memory does not grow with the file except for one fingerprint per row (see the
//! `seen` module): one record of at most 64 KiB is held at a time.
//!
//! Codes. Fatal ([`Fatal`], validation stops): `NOT_UTF8`, `EMPTY_FILE`,
//! `MISSING_HEADER`, `MISSING_COLUMN`, `UNKNOWN_COLUMN`, `DUPLICATE_COLUMN`, `NO_ROWS`,
//! `ROWS_LIMIT`, `TOTAL_LIMIT`, `ROW_TOO_LONG`, `UNTERMINATED_QUOTE`, `LINE_ENDINGS`,
//! `TOO_MANY_LINES`, `READ_ERROR`. Per line ([`Event::Invalid`]): `FIELD_COUNT`,
//! `QUOTE_FORMAT`, `MSISDN_FORMAT`, `MSISDN_AS_NUMBER`, `AMOUNT_FORMAT`,
//! `DECIMAL_COMMA`, `TOO_MANY_DECIMALS`, `AMOUNT_ZERO`, `AMOUNT_TOO_LARGE`,
//! `CURRENCY_MISMATCH`, `REFERENCE_TOO_LONG`, `DUPLICATE_REFERENCE`, `NAME_TOO_LONG`,
//! `NOTE_TOO_LONG`, `CONTROL_CHARACTER`, `COMMENT_NOT_ALLOWED`, `CONTROL_FORMAT`,
//! `CONTROL_MISMATCH`. Warning ([`Event::Warning`]): `DUPLICATE_ROW`.

mod fields;
mod header;
mod lines;
mod seen;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_corpus;

use std::borrow::Cow;
use std::io::{BufReader, Read};

use sha2::{Digest, Sha256};

use self::header::Column;
use self::lines::{Lines, Record};
use self::seen::{Fingerprints, FirstSeen};
use crate::ledger::{format_minor, Currency, Minor, Msisdn};

/// Read buffer: large enough that a read call moves thousands of rows, small enough
/// to be irrelevant next to the per-row fingerprints.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Limits from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most data rows in one file.
    pub rows_max: u64,
    /// Largest amount of one row, in minor units of the currency.
    pub amount_max: Minor,
    /// Largest total of the valid rows of one file, in minor units.
    pub total_max: Minor,
}

/// One valid row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Physical line (1-based) where the record starts.
    pub line: u32,
    /// The payee, normalised.
    pub msisdn: Msisdn,
    /// Minor units of the source wallet's currency, > 0 and ≤ the per-row limit.
    pub amount: Minor,
    /// Trimmed, ≤ 64 characters, unique in the file; `None` when empty.
    pub reference: Option<String>,
    /// Trimmed, ≤ 100 characters; `None` when empty.
    pub name: Option<String>,
    /// Trimmed, ≤ 128 UTF-16 code units; `None` when empty.
    pub note: Option<String>,
}

/// One problem, by line and field. Lines are the physical lines of the file where the
/// record starts, 1-based (the header is line 1 when there is no control line).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// Physical line, 1-based.
    pub line: u32,
    /// The column (normalised header name), when the problem is in one field.
    pub field: Option<String>,
    /// Stable upper-case code (listed in the module documentation).
    pub code: &'static str,
    /// What is wrong and how to fix it, for the uploader.
    pub message: String,
}

/// What the validator tells its caller, in file order, except for the control line:
/// `CONTROL_FORMAT` comes once the header is read (after any other `#` line before it)
/// and `CONTROL_MISMATCH` can only be known at the end, so it comes last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A row that may be paid.
    Valid(Row),
    /// A line that cannot be paid: a data row with problems, a comment line, or a
    /// control line that is malformed or does not match the file.
    Invalid {
        /// Physical line where the record starts.
        line: u32,
        /// The line's fields as read (unquoted, untrimmed), for `errors.csv`.
        raw: Vec<String>,
        /// Every problem of the line, in column order.
        problems: Vec<Problem>,
        /// The payee, when its cell was valid (never for a comment or control line).
        msisdn: Option<Msisdn>,
        /// The amount, when its cell parsed (also when over the per-row maximum); it
        /// counts toward [`Summary::invalid_total`], never toward the valid total.
        amount: Option<Minor>,
    },
    /// Not an error (e.g. `DUPLICATE_ROW`); comes after the event of its line.
    Warning(Problem),
}

/// Totals at the end.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// `valid + invalid`: every `Valid` and `Invalid` event.
    pub rows: u64,
    /// `Valid` events.
    pub valid: u64,
    /// `Invalid` events (data rows, comment lines, a bad control line).
    pub invalid: u64,
    /// Sum of the valid rows' amounts, minor units.
    pub valid_total: Minor,
    /// Sum of the amounts that parsed on invalid rows, minor units: shown, never paid
    /// or reserved. Saturates rather than fail on absurd files (it moves no money).
    pub invalid_total: Minor,
    /// SHA-256 over the valid rows in order (msisdn as u64, minor units as i128, the
    /// reference length and bytes): independent of encoding, column order, delimiter.
    pub content_hash: [u8; 32],
    /// `b','` or `b';'`.
    pub delimiter: u8,
    /// (line, first line) of each `DUPLICATE_REFERENCE`, in line order: what
    /// [`revalidate`] needs to judge the same file again without a per-row table.
    pub duplicate_references: Vec<(u32, u32)>,
    /// Normalised header names in file order.
    pub columns: Vec<String>,
    /// The control line's (rows, sum), when present and well formed.
    pub control: Option<(u64, Minor)>,
}

/// A problem with the whole file that stops validation (not UTF-8 at line N, no
/// header, over a limit…), reported by line where there is one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {}: {} ({})", .0.line, .0.message, .0.code)]
pub struct Fatal(pub Problem);

/// Validates `input` for a source wallet in `currency`. Calls `on_event` for each line
/// event in order; returns the summary, or the fatal problem (events already sent
/// stay valid: they describe the lines before it).
pub fn validate(
    input: impl Read,
    currency: Currency,
    limits: Limits,
    on_event: impl FnMut(Event),
) -> Result<Summary, Fatal> {
    read_all(input, Run::new(currency, limits, Uniqueness::track(), on_event))
}

/// Validates `input` again after [`validate`] accepted it (the same bytes, the same
/// currency and limits): the same `Valid` and `Invalid` events and summary, without
/// `DUPLICATE_ROW` warnings and without remembering a fingerprint per row, because
/// duplicate references are taken from the first summary. A later pass that writes
/// the items therefore holds no per-row table while the store grows.
pub fn revalidate(
    input: impl Read,
    currency: Currency,
    limits: Limits,
    first: &Summary,
    on_event: impl FnMut(Event),
) -> Result<Summary, Fatal> {
    let uniqueness = Uniqueness::Known { duplicates: &first.duplicate_references, next: 0 };
    read_all(input, Run::new(currency, limits, uniqueness, on_event))
}

fn read_all<F: FnMut(Event)>(input: impl Read, mut run: Run<'_, F>) -> Result<Summary, Fatal> {
    let mut lines = Lines::new(BufReader::with_capacity(READ_BUFFER_BYTES, input));
    let control = run.find_header(&mut lines)?;
    let header_line = lines.line();
    let mut record = Record::default();
    run.header(&mut lines, &mut record)?;
    if let Some((line, text)) = &control {
        run.control(*line, text);
    }
    while lines.advance()? {
        lines::split_current(&mut lines, run.summary.delimiter, &mut record)?;
        run.record(&record)?;
    }
    run.finish(header_line, control)
}

/// CSV output cells: neutralises spreadsheet formula injection (SPEC §5). A cell
/// starting with `=`, `+`, `-`, `@`, tab or CR gets a leading `'`.
pub fn safe_cell(text: &str) -> Cow<'_, str> {
    match text.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => Cow::Owned(format!("'{text}")),
        _ => Cow::Borrowed(text),
    }
}

/// The inverse of [`safe_cell`], for uploads: drops the `'` that our own CSV output
/// puts before a cell starting with `=`, `+`, `-`, `@`, tab or CR, so that `errors.csv`
/// uploads again as it is (spreadsheets hide that `'` the same way).
pub fn unneutralise(text: &str) -> &str {
    match text.as_bytes() {
        [b'\'', b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r', ..] => &text[1..],
        _ => text,
    }
}

/// The normalised column names of a file's header, read without its rows (the file's
/// columns for the downloads of a job whose validation stopped).
pub fn header_columns(input: impl Read, currency: Currency, limits: Limits) -> Result<Vec<String>, Fatal> {
    let uniqueness = Uniqueness::Known { duplicates: &[], next: 0 };
    let mut run = Run::new(currency, limits, uniqueness, |_| {});
    let mut lines = Lines::new(BufReader::with_capacity(READ_BUFFER_BYTES, input));
    run.find_header(&mut lines)?;
    run.header(&mut lines, &mut Record::default())?;
    Ok(run.summary.columns)
}

/// Builds a problem; `field` is a column name.
fn problem(line: u32, field: Option<&str>, code: &'static str, message: impl Into<String>) -> Problem {
    Problem { line, field: field.map(str::to_owned), code, message: message.into() }
}

/// Builds a fatal problem (no field).
fn fatal(line: u32, code: &'static str, message: impl Into<String>) -> Fatal {
    Fatal(problem(line, None, code, message))
}

/// How a validation knows which references and (msisdn, amount) pairs came before.
enum Uniqueness<'k> {
    /// A fingerprint per row: the first validation of a file.
    Track { keys: Fingerprints, pairs: FirstSeen<2>, references: FirstSeen<4> },
    /// The duplicate references a first validation found, in line order, and the
    /// position of the next one; pairs are not checked (their only use is a warning).
    Known { duplicates: &'k [(u32, u32)], next: usize },
}

impl Uniqueness<'_> {
    fn track() -> Self {
        Uniqueness::Track { keys: Fingerprints::new(), pairs: FirstSeen::new(), references: FirstSeen::new() }
    }

    /// The line `reference` was first used on, if before `line` (lines come in order).
    fn reference(&mut self, reference: &str, line: u32) -> Option<u32> {
        match self {
            Uniqueness::Track { keys, references, .. } => references.first_or_insert(keys.reference(reference), line),
            Uniqueness::Known { duplicates, next } => {
                while duplicates.get(*next).is_some_and(|&(at, _)| at < line) {
                    *next += 1;
                }
                duplicates.get(*next).filter(|&&(at, _)| at == line).map(|&(_, first)| first)
            }
        }
    }

    /// The line the same (msisdn, amount) was first seen on, when tracked.
    fn pair(&mut self, msisdn: Msisdn, amount: Minor, line: u32) -> Option<u32> {
        match self {
            Uniqueness::Track { keys, pairs, .. } => pairs.first_or_insert(keys.pair(msisdn, amount), line),
            Uniqueness::Known { .. } => None,
        }
    }
}

/// The state of one validation.
struct Run<'k, F> {
    on_event: F,
    currency: Currency,
    limits: Limits,
    columns: Vec<Column>,
    summary: Summary,
    /// Lines counted against `rows_max`: data rows and comment lines.
    counted: u64,
    /// Non-blank records after the header (none → `NO_ROWS`).
    after_header: u64,
    /// Data rows (not comment lines), compared with the control line.
    data_rows: u64,
    /// Sum of every parsed amount, valid rows or not, for the control line; `None`
    /// once an amount could not be read (the sum is then unknown).
    control_total: Option<Minor>,
    content: Sha256,
    uniqueness: Uniqueness<'k>,
    /// Reused for each row: only rows with problems allocate.
    problems: Vec<Problem>,
}

impl<'k, F: FnMut(Event)> Run<'k, F> {
    fn new(currency: Currency, limits: Limits, uniqueness: Uniqueness<'k>, on_event: F) -> Self {
        Run {
            on_event,
            currency,
            limits,
            columns: Vec::new(),
            summary: Summary::default(),
            counted: 0,
            after_header: 0,
            data_rows: 0,
            control_total: Some(0),
            content: Sha256::new(),
            uniqueness,
            problems: Vec::new(),
        }
    }

    /// Skips to the header's first line. Returns the control line (line, text) if the
    /// first non-blank line is one; other `#` lines before the header are reported.
    fn find_header<R: std::io::BufRead>(&mut self, lines: &mut Lines<R>) -> Result<Option<(u32, String)>, Fatal> {
        let mut control = None;
        let mut seen_any = false;
        loop {
            if !lines.advance()? {
                return Err(match seen_any {
                    true => fatal(lines.line(), "MISSING_HEADER", "the file has no header row (msisdn, amount, …)"),
                    false => fatal(1, "EMPTY_FILE", "the file is empty"),
                });
            }
            let text = lines.text();
            if header::is_blank_line(text) {
                continue;
            }
            if !text.starts_with('#') {
                return Ok(control);
            }
            if !seen_any && header::is_control_line(text) {
                control = Some((lines.line(), text.to_owned()));
            } else {
                let why = "lines starting with '#' are not allowed (only a #total control line before the header)";
                self.count(lines.line())?;
                let raw = vec![text.to_owned()];
                self.invalid(lines.line(), raw, vec![problem(lines.line(), None, "COMMENT_NOT_ALLOWED", why)]);
            }
            seen_any = true;
        }
    }

    /// Reads the header that starts on the current line: delimiter, then columns.
    fn header<R: std::io::BufRead>(&mut self, lines: &mut Lines<R>, record: &mut Record) -> Result<(), Fatal> {
        if lines.text().contains('\r') {
            let why = "lines end with a bare CR (old Mac format): save the file as CSV UTF-8 with LF or CRLF line ends";
            return Err(fatal(lines.line(), "LINE_ENDINGS", why));
        }
        let delimiter = header::detect_delimiter(lines.text(), record);
        lines::split_current(lines, delimiter, record)?;
        let (columns, names) = header::columns(record).map_err(Fatal)?;
        self.columns = columns;
        self.summary.columns = names;
        self.summary.delimiter = delimiter;
        Ok(())
    }

    /// Checks the control line against the delimiter; a bad one is an invalid line.
    fn control(&mut self, line: u32, text: &str) {
        match header::parse_control(text, line, self.summary.delimiter, self.currency) {
            Ok(control) => self.summary.control = Some(control),
            Err(p) => self.invalid(line, header::split_plain(text, self.summary.delimiter), vec![p]),
        }
    }

    /// One record after the header.
    fn record(&mut self, record: &Record) -> Result<(), Fatal> {
        if record.is_blank() {
            return Ok(());
        }
        self.after_header += 1;
        self.count(record.line)?;
        if record.comment {
            let why = match header::is_control_line(record.field(0)) {
                true => "a #total control line must be the first line, before the header",
                false => "lines starting with '#' are not allowed",
            };
            self.invalid(record.line, record.raw(), vec![problem(record.line, None, "COMMENT_NOT_ALLOWED", why)]);
            return Ok(());
        }
        self.data_rows += 1;
        self.problems.clear();
        let parsed = fields::check(record, &self.columns, self.currency, self.limits.amount_max, &mut self.problems);
        self.control_total = match parsed.control_amount {
            Some(amount) => self.control_total.and_then(|t| t.checked_add(amount)),
            None => None,
        };
        if let Some(reference) = parsed.reference {
            if let Some(first) = self.uniqueness.reference(reference, record.line) {
                self.summary.duplicate_references.push((record.line, first));
                let why = format!("reference already used on line {first}; references must be unique in the file");
                self.problems.push(problem(record.line, Some("reference"), "DUPLICATE_REFERENCE", why));
            }
        }
        match (parsed.msisdn, parsed.amount) {
            (Some(msisdn), Some(amount)) if self.problems.is_empty() => {
                let row = Row {
                    line: record.line,
                    msisdn,
                    amount,
                    reference: parsed.reference.map(str::to_owned),
                    name: parsed.name.map(str::to_owned),
                    note: parsed.note.map(str::to_owned),
                };
                self.valid(row)
            }
            _ => {
                let problems = std::mem::take(&mut self.problems);
                self.invalid_row(record.line, record.raw(), problems, parsed.msisdn, parsed.control_amount);
                Ok(())
            }
        }
    }

    /// Counts a line against `rows_max`.
    fn count(&mut self, line: u32) -> Result<(), Fatal> {
        self.counted += 1;
        if self.counted > self.limits.rows_max {
            let why = format!("the file has more than {} rows, the most one job may have", self.limits.rows_max);
            return Err(fatal(line, "ROWS_LIMIT", why));
        }
        Ok(())
    }

    fn valid(&mut self, row: Row) -> Result<(), Fatal> {
        let total = self.summary.valid_total.checked_add(row.amount).filter(|t| *t <= self.limits.total_max);
        let Some(total) = total else {
            let max = format_minor(self.limits.total_max, self.currency);
            let why = format!("the valid rows total more than {max} {}, the most one job may pay", self.currency);
            return Err(fatal(row.line, "TOTAL_LIMIT", why));
        };
        debug_assert!(row.amount > 0 && row.amount <= self.limits.amount_max);
        self.summary.valid_total = total;
        self.summary.valid += 1;
        self.summary.rows += 1;
        self.content.update(row.msisdn.as_u64().to_be_bytes());
        self.content.update(row.amount.to_be_bytes());
        let reference = row.reference.as_deref().unwrap_or("");
        // At most 64 characters of 4 bytes: the length fits a u16. Empty means none.
        self.content.update((reference.len() as u16).to_be_bytes());
        self.content.update(reference.as_bytes());
        let first = self.uniqueness.pair(row.msisdn, row.amount, row.line);
        let line = row.line;
        (self.on_event)(Event::Valid(row));
        if let Some(first) = first {
            let why = format!("same msisdn and amount as line {first}: check that this payment is not paid twice");
            (self.on_event)(Event::Warning(problem(line, None, "DUPLICATE_ROW", why)));
        }
        Ok(())
    }

    /// A comment or control line that cannot be paid: nothing of it is read.
    fn invalid(&mut self, line: u32, raw: Vec<String>, problems: Vec<Problem>) {
        self.invalid_row(line, raw, problems, None, None);
    }

    fn invalid_row(
        &mut self,
        line: u32,
        raw: Vec<String>,
        problems: Vec<Problem>,
        msisdn: Option<Msisdn>,
        amount: Option<Minor>,
    ) {
        debug_assert!(!problems.is_empty(), "an invalid line says why");
        self.summary.invalid += 1;
        self.summary.rows += 1;
        self.summary.invalid_total = self.summary.invalid_total.saturating_add(amount.unwrap_or(0));
        (self.on_event)(Event::Invalid { line, raw, problems, msisdn, amount });
    }

    /// Rows present, control line compared, content hash sealed.
    fn finish(mut self, header_line: u32, control: Option<(u32, String)>) -> Result<Summary, Fatal> {
        if self.after_header == 0 {
            return Err(fatal(header_line, "NO_ROWS", "the file has a header but no data rows"));
        }
        if let (Some((rows, sum)), Some((line, text))) = (self.summary.control, control) {
            let rows_match = rows == self.data_rows;
            // When an amount could not be read the sum is unknown; that row is reported.
            let sum_match = self.control_total.is_none_or(|total| total == sum);
            if !(rows_match && sum_match) {
                let why = self.control_mismatch(rows, sum);
                let raw = header::split_plain(&text, self.summary.delimiter);
                self.invalid(line, raw, vec![problem(line, None, "CONTROL_MISMATCH", why)]);
            }
        }
        debug_assert_eq!(self.summary.rows, self.summary.valid + self.summary.invalid);
        self.summary.content_hash = self.content.finalize().into();
        Ok(self.summary)
    }

    fn control_mismatch(&self, rows: u64, sum: Minor) -> String {
        let currency = self.currency;
        let declared = format!("{rows} rows totalling {} {currency}", format_minor(sum, currency));
        match self.control_total {
            Some(total) => format!(
                "the control line declares {declared} but the file has {} rows totalling {} {currency}",
                self.data_rows,
                format_minor(total, currency)
            ),
            None => format!("the control line declares {declared} but the file has {} rows", self.data_rows),
        }
    }
}
