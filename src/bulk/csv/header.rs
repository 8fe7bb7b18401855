//! The header row (the delimiter, the columns) and the optional `#total` control line.

use super::lines::{split_line, Record};
use super::{problem, Problem};
use crate::ledger::{parse_amount, Currency, Minor};

/// Names the columns in messages.
const FIELD_NAMES_HINT: &str = "msisdn, amount, and optionally currency, reference, name, note";

/// A known column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Column {
    Msisdn,
    Amount,
    Currency,
    Reference,
    Name,
    Note,
}

/// Every column with its name, required ones first.
const COLUMNS: [(&str, Column); 6] = [
    ("msisdn", Column::Msisdn),
    ("amount", Column::Amount),
    ("currency", Column::Currency),
    ("reference", Column::Reference),
    ("name", Column::Name),
    ("note", Column::Note),
];

impl Column {
    /// The normalised header name (also the `field` of its problems).
    pub(super) fn name(self) -> &'static str {
        COLUMNS.iter().find(|(_, c)| *c == self).map_or("", |(n, _)| n)
    }

    fn from_name(normalised: &str) -> Option<Column> {
        COLUMNS.iter().find(|(n, _)| *n == normalised).map(|(_, c)| *c)
    }
}

/// Header names are case-insensitive and trimmed.
fn normalise(name: &str) -> String {
    name.trim().to_ascii_lowercase()
}

/// Empty, or only whitespace and delimiters: skipped like an empty line.
pub(super) fn is_blank_line(text: &str) -> bool {
    text.chars().all(|c| c.is_whitespace() || c == ',' || c == ';')
}

/// `,` or `;`: the one under which the header line names more known columns (then has
/// more fields); `,` when nothing tells them apart.
pub(super) fn detect_delimiter(header_line: &str, scratch: &mut Record) -> u8 {
    let mut score = |delimiter: u8| {
        split_line(header_line, delimiter, scratch);
        let known = scratch.fields().filter(|f| Column::from_name(&normalise(f)).is_some()).count();
        (known, scratch.len())
    };
    let comma = score(b',');
    let semicolon = score(b';');
    if semicolon > comma {
        b';'
    } else {
        b','
    }
}

/// The columns of a header record, with their normalised names; a problem is fatal.
pub(super) fn columns(record: &Record) -> Result<(Vec<Column>, Vec<String>), Problem> {
    let line = record.line;
    let names: Vec<String> = record.fields().map(normalise).collect();
    let columns: Vec<Option<Column>> = names.iter().map(|n| Column::from_name(n)).collect();
    if columns.iter().all(Option::is_none) {
        let why = format!("line {line} is not a header: the first line must name the columns ({FIELD_NAMES_HINT})");
        return Err(problem(line, None, "MISSING_HEADER", why));
    }
    let unknown: Vec<String> = names
        .iter()
        .zip(&columns)
        .enumerate()
        .filter(|(_, (_, c))| c.is_none())
        .map(|(i, (n, _))| if n.is_empty() { format!("(column {} has no name)", i + 1) } else { format!("'{n}'") })
        .collect();
    if let Some(first) = names.iter().zip(&columns).find(|(_, c)| c.is_none()).map(|(n, _)| n.as_str()) {
        let why = format!("unknown column {} (allowed: {FIELD_NAMES_HINT})", unknown.join(", "));
        return Err(problem(line, Some(first), "UNKNOWN_COLUMN", why));
    }
    let columns: Vec<Column> = columns.into_iter().flatten().collect();
    for (i, column) in columns.iter().enumerate() {
        if columns[..i].contains(column) {
            let why = format!("column '{}' appears more than once", column.name());
            return Err(problem(line, Some(column.name()), "DUPLICATE_COLUMN", why));
        }
    }
    for required in [Column::Msisdn, Column::Amount] {
        if !columns.contains(&required) {
            let why = format!("the header has no '{}' column (required: msisdn, amount)", required.name());
            return Err(problem(line, Some(required.name()), "MISSING_COLUMN", why));
        }
    }
    Ok((columns, names))
}

/// `#total…`, any case, not followed by a letter or digit.
pub(super) fn is_control_line(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 6
        && bytes[..6].eq_ignore_ascii_case(b"#total")
        && bytes.get(6).is_none_or(|b| !b.is_ascii_alphanumeric())
}

/// A `#` line's fields: split on the delimiter, no quote rules.
pub(super) fn split_plain(text: &str, delimiter: u8) -> Vec<String> {
    text.split(char::from(delimiter)).map(str::to_owned).collect()
}

/// `#total<d><rows><d><sum>` with the header's delimiter: (rows, sum in minor units).
pub(super) fn parse_control(text: &str, line: u32, delimiter: u8, currency: Currency) -> Result<(u64, Minor), Problem> {
    let d = char::from(delimiter);
    let refuse = |why: String| problem(line, None, "CONTROL_FORMAT", why);
    let fields: Vec<&str> = text.split(d).map(str::trim).collect();
    let [_, rows, sum] = fields[..] else {
        let other = if d == ',' { ';' } else { ',' };
        return Err(refuse(match text.split(other).count() {
            3 => format!("the control line is separated by '{other}' but the header by '{d}': use one delimiter"),
            _ => format!("the control line must read #total{d}<rows>{d}<sum>"),
        }));
    };
    let rows = Some(rows)
        .filter(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|r| r.parse::<u64>().ok())
        .ok_or_else(|| {
            refuse(format!("the control line's row count must be a whole number, e.g. #total{d}3{d}1500"))
        })?;
    // The sum has no per-row maximum: it is a total.
    let sum = parse_amount(sum, currency, Minor::MAX)
        .map_err(|e| refuse(format!("the control line's sum is not a valid {currency} amount: {e}")))?;
    Ok((rows, sum))
}
