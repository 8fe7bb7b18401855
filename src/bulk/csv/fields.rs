//! The checks of one data row, field by field: every problem is reported, not just the
//! first. Values are trimmed, and the `'` our own CSV output puts before a neutralised
//! cell is dropped; amounts go through the one amount parser of the ledger.

use super::header::Column;
use super::lines::Record;
use super::{problem, Problem};
use crate::ledger::{parse_amount, AmountError, Currency, Minor, Msisdn};

/// Longest reference, in characters (SPEC §5; it goes to the SDK as an identifier).
const REFERENCE_CHARS_MAX: usize = 64;
/// Longest name, in characters.
const NAME_CHARS_MAX: usize = 100;
/// Longest note, in UTF-16 code units: the Mojaloop note is limited in those.
const NOTE_UNITS_MAX: usize = 128;

/// What a row's fields hold once read; borrowed from the record.
#[derive(Debug, Default)]
pub(super) struct Parsed<'a> {
    pub(super) msisdn: Option<Msisdn>,
    /// Set only when the amount is acceptable for a row.
    pub(super) amount: Option<Minor>,
    /// The amount for the control line's sum: also set when it is over the per-row
    /// maximum (the row is invalid, but the sum is still known).
    pub(super) control_amount: Option<Minor>,
    pub(super) reference: Option<&'a str>,
    pub(super) name: Option<&'a str>,
    pub(super) note: Option<&'a str>,
}

/// A refused field: code and message.
type Refusal = (&'static str, String);

/// Checks every field of `record`, pushing its problems.
pub(super) fn check<'a>(
    record: &'a Record,
    columns: &[Column],
    currency: Currency,
    amount_max: Minor,
    problems: &mut Vec<Problem>,
) -> Parsed<'a> {
    let mut parsed = Parsed::default();
    let line = record.line;
    if record.len() != columns.len() {
        // Fields are matched to columns by position; with a wrong count every field
        // check would be noise.
        let why = format!(
            "expected {} fields, found {}: quote fields that contain the delimiter",
            columns.len(),
            record.len()
        );
        problems.push(problem(line, None, "FIELD_COUNT", why));
        return parsed;
    }
    if record.quote_error {
        let why =
            "text after a closing quote: a quoted field must end at the delimiter (write \"\" for a quote inside it)";
        problems.push(problem(line, None, "QUOTE_FORMAT", why));
    }
    for (column, field) in columns.iter().zip(record.fields()) {
        let text = super::unneutralise(field.trim()).trim();
        let checked = match column {
            Column::Msisdn => msisdn(text).map(|m| parsed.msisdn = Some(m)),
            Column::Amount => {
                let (amount, control) = amount(text, currency, amount_max);
                parsed.control_amount = control;
                amount.map(|a| parsed.amount = Some(a))
            }
            Column::Currency => same_currency(text, currency),
            Column::Reference => free_text(text, "reference", "REFERENCE_TOO_LONG", chars(REFERENCE_CHARS_MAX))
                .map(|t| parsed.reference = t),
            Column::Name => free_text(text, "name", "NAME_TOO_LONG", chars(NAME_CHARS_MAX)).map(|t| parsed.name = t),
            Column::Note => free_text(text, "note", "NOTE_TOO_LONG", units(NOTE_UNITS_MAX)).map(|t| parsed.note = t),
        };
        if let Err((code, why)) = checked {
            problems.push(problem(line, Some(column.name()), code, why));
        }
    }
    parsed
}

fn msisdn(text: &str) -> Result<Msisdn, Refusal> {
    if text.is_empty() {
        return Err(("MSISDN_FORMAT", "msisdn is empty".into()));
    }
    Msisdn::parse(text).map_err(|e| match looks_like_number(text) {
        true => (
            "MSISDN_AS_NUMBER",
            "msisdn was turned into a number by a spreadsheet (e.g. 2.25070000001E+10): format the column as text"
                .into(),
        ),
        false => ("MSISDN_FORMAT", e.to_string()),
    })
}

/// `2.25070000001E+10`, `2.2507E10` or `22507000001.0`: how spreadsheets print a long
/// number.
fn looks_like_number(text: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e.strip_prefix('+').unwrap_or(e))),
        None => (text, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => digits(int) && digits(frac),
        None => digits(mantissa),
    };
    match exponent {
        Some(e) => mantissa_ok && digits(e),
        None => mantissa_ok && mantissa.contains('.'),
    }
}

/// The row's amount (if acceptable) and the amount for the control sum.
fn amount(text: &str, currency: Currency, amount_max: Minor) -> (Result<Minor, Refusal>, Option<Minor>) {
    match parse_amount(text, currency, amount_max) {
        Ok(minor) => (Ok(minor), Some(minor)),
        Err(AmountError::Format) if looks_like_decimal_comma(text) => {
            let why = "amounts use '.' for decimals and no thousands separator: write 12.5, not 12,5";
            (Err(("DECIMAL_COMMA", why.into())), None)
        }
        Err(AmountError::Format) if text.is_empty() => (Err(("AMOUNT_FORMAT", "amount is empty".into())), None),
        Err(e @ AmountError::TooLarge { .. }) => {
            let control = parse_amount(text, currency, Minor::MAX).ok();
            (Err((e.code(), e.to_string())), control)
        }
        Err(e) => (Err((e.code(), e.to_string())), None),
    }
}

/// `12,50`, `1.234,56`, `1,500`: digits with a comma where the grammar wants `.`.
fn looks_like_decimal_comma(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.contains(&b',')
        && bytes.first().is_some_and(u8::is_ascii_digit)
        && bytes.last().is_some_and(u8::is_ascii_digit)
        && bytes.iter().all(|b| b.is_ascii_digit() || *b == b',' || *b == b'.')
}

/// An empty currency cell means the wallet's; anything else must be its code.
fn same_currency(text: &str, currency: Currency) -> Result<(), Refusal> {
    if text.is_empty() || text == currency.code() {
        return Ok(());
    }
    let shown: String = text.chars().take(16).collect();
    Err(("CURRENCY_MISMATCH", format!("currency must be {currency} (the source wallet's), not {shown:?}")))
}

/// A length rule: its unit and how to measure it.
struct Length {
    max: usize,
    unit: &'static str,
    measure: fn(&str) -> usize,
}

fn chars(max: usize) -> Length {
    Length { max, unit: "characters", measure: |t| t.chars().count() }
}

fn units(max: usize) -> Length {
    Length { max, unit: "UTF-16 code units", measure: |t| t.encode_utf16().count() }
}

/// Optional text: `None` when empty; bounded; no control characters (a newline or a
/// tab in a name breaks the SDK message and the reports).
fn free_text<'a>(
    text: &'a str,
    field: &str,
    too_long: &'static str,
    length: Length,
) -> Result<Option<&'a str>, Refusal> {
    if text.is_empty() {
        return Ok(None);
    }
    let measured = (length.measure)(text);
    if measured > length.max {
        return Err((too_long, format!("{field} is {measured} {} long; at most {}", length.unit, length.max)));
    }
    if text.chars().any(char::is_control) {
        return Err(("CONTROL_CHARACTER", format!("{field} contains a control character (newline, tab…)")));
    }
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreadsheet_numbers_are_recognised_and_phone_text_is_not() {
        for text in ["2.25070000001E+10", "2.2507e10", "22507000001.0", "2E+10"] {
            assert!(looks_like_number(text), "{text}");
        }
        for text in ["+225 07 00", "abc", "2.25E", "E10", "22507000001", "1.2.3", "2.5E+1x"] {
            assert!(!looks_like_number(text), "{text}");
        }
    }

    #[test]
    fn decimal_commas_are_recognised_and_other_garbage_is_not() {
        for text in ["12,50", "1.234,56", "1,500", "0,5"] {
            assert!(looks_like_decimal_comma(text), "{text}");
        }
        for text in ["12.50", ",5", "5,", "-1,5", "1,5e3", "a,b"] {
            assert!(!looks_like_decimal_comma(text), "{text}");
        }
    }
}
