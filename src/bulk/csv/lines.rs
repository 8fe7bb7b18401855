//! Physical lines and RFC 4180 records. UTF-8 is checked line by line so that an error
//! names its physical line; quoted fields may span lines; every record is bounded.
//!
//! Hand-written rather than the `csv` crate because the rules need what it hides: the
//! raw start of a record (`#` lines are comments only when unquoted), the physical
//! line of a UTF-8 error, and a size bound (the crate reads an unterminated quote to
//! the end of the file into one field).

use std::io::{BufRead, Read};

use super::{fatal, Fatal};

/// Longest record accepted, in bytes. A legitimate row is under ~1.5 KiB (a 64-character
/// reference, a 100-character name and a 128-unit note, all in 4-byte UTF-8); 64 KiB
/// leaves room for sloppy exports while a missing quote or newline cannot make memory
/// grow with the file.
pub(super) const RECORD_BYTES_MAX: usize = 64 * 1024;

/// Reads physical lines, checked as UTF-8, without their terminator.
pub(super) struct Lines<R> {
    input: R,
    /// The current line; its buffer is reused for the next one.
    text: String,
    /// 1-based number of the current line; 0 before the first.
    line: u32,
    /// What ended the current line: `"\r\n"`, `"\n"`, or `""` at the end of the file.
    terminator: &'static str,
}

impl<R: BufRead> Lines<R> {
    pub(super) fn new(input: R) -> Self {
        Lines { input, text: String::new(), line: 0, terminator: "" }
    }

    /// The current line's number.
    pub(super) fn line(&self) -> u32 {
        self.line
    }

    /// The current line, without its terminator (and without a UTF-8 BOM on line 1).
    pub(super) fn text(&self) -> &str {
        &self.text
    }

    /// What ended the current line (kept inside quoted fields).
    pub(super) fn terminator(&self) -> &'static str {
        self.terminator
    }

    /// Moves to the next line; `Ok(false)` at the end of the file.
    pub(super) fn advance(&mut self) -> Result<bool, Fatal> {
        let line = self.line.checked_add(1).ok_or_else(|| fatal(self.line, "TOO_MANY_LINES", "too many lines"))?;
        let mut bytes = std::mem::take(&mut self.text).into_bytes();
        bytes.clear();
        // Room for the CRLF after a maximal line.
        let limit = RECORD_BYTES_MAX as u64 + 2;
        let read = (&mut self.input)
            .take(limit)
            .read_until(b'\n', &mut bytes)
            .map_err(|e| fatal(line, "READ_ERROR", format!("the file could not be read: {e}")))?;
        if read == 0 {
            // An empty buffer is valid UTF-8: this keeps its capacity.
            self.text = String::from_utf8(bytes).unwrap_or_default();
            return Ok(false);
        }
        self.line = line;
        self.terminator = strip_terminator(&mut bytes);
        if self.terminator.is_empty() && read as u64 == limit {
            return Err(too_long(line, bytes.contains(&b'\r')));
        }
        if line == 1 {
            strip_bom(&mut bytes)?;
        }
        self.text = to_text(bytes, line)?;
        Ok(true)
    }
}

fn strip_terminator(bytes: &mut Vec<u8>) -> &'static str {
    if bytes.ends_with(b"\r\n") {
        bytes.truncate(bytes.len() - 2);
        "\r\n"
    } else if bytes.ends_with(b"\n") {
        bytes.truncate(bytes.len() - 1);
        "\n"
    } else {
        ""
    }
}

/// Skips a UTF-8 BOM; a UTF-16 BOM (either order) means the file is not UTF-8.
fn strip_bom(bytes: &mut Vec<u8>) -> Result<(), Fatal> {
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        bytes.drain(..3);
    } else if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Err(fatal(1, "NOT_UTF8", "the file is UTF-16: save it as CSV UTF-8"));
    }
    Ok(())
}

fn to_text(bytes: Vec<u8>, line: u32) -> Result<String, Fatal> {
    // NUL is valid UTF-8 but never text: it is what UTF-16 without a BOM, or a binary
    // file, looks like.
    if bytes.contains(&0) {
        let why = format!("line {line} contains NUL bytes: the file is binary or UTF-16, save it as CSV UTF-8");
        return Err(fatal(line, "NOT_UTF8", why));
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let byte = e.as_bytes().get(at).copied().unwrap_or(0);
        let column = String::from_utf8_lossy(&e.as_bytes()[..at]).chars().count() + 1;
        let why = format!(
            "line {line} is not UTF-8 (byte 0x{byte:02X} at character {column}, e.g. Latin-1 or Windows-1252): save the file as CSV UTF-8"
        );
        fatal(line, "NOT_UTF8", why)
    })
}

fn too_long(line: u32, has_cr: bool) -> Fatal {
    let mut why = format!("the record starting on line {line} is longer than {RECORD_BYTES_MAX} bytes");
    if has_cr {
        why.push_str(" (lines may end with a bare CR, the old Mac format: save as CSV UTF-8)");
    }
    fatal(line, "ROW_TOO_LONG", why)
}

/// One record: its fields, unquoted, in one buffer.
#[derive(Debug, Default)]
pub(super) struct Record {
    /// Physical line where the record starts.
    pub(super) line: u32,
    text: String,
    /// End offset in `text` of each field.
    ends: Vec<usize>,
    /// The record's line starts with `#`: split without quote rules (a comment may
    /// hold a lone `"`), and never a data row.
    pub(super) comment: bool,
    /// A closing quote was followed by something other than the delimiter.
    pub(super) quote_error: bool,
}

impl Record {
    /// Number of fields.
    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Field `i`; empty if there is no such field.
    pub(super) fn field(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends.get(i - 1).copied().unwrap_or(0) };
        let end = self.ends.get(i).copied().unwrap_or(start);
        self.text.get(start..end).unwrap_or("")
    }

    /// The fields in order.
    pub(super) fn fields(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.field(i))
    }

    /// Nothing but whitespace and delimiters (a spreadsheet's empty row): skipped.
    pub(super) fn is_blank(&self) -> bool {
        !self.comment && self.fields().all(|f| f.trim().is_empty())
    }

    /// The fields as owned strings, for `errors.csv`.
    pub(super) fn raw(&self) -> Vec<String> {
        self.fields().map(str::to_owned).collect()
    }

    fn clear(&mut self, line: u32) {
        self.line = line;
        self.text.clear();
        self.ends.clear();
        self.comment = false;
        self.quote_error = false;
    }

    fn end_field(&mut self) {
        self.ends.push(self.text.len());
    }
}

/// Where the splitter is inside a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    FieldStart,
    Unquoted,
    Quoted,
    /// Just after a closing quote.
    AfterQuote,
}

/// Splits the record that starts on the current line, reading more lines while a
/// quoted field is open.
pub(super) fn split_current<R: BufRead>(lines: &mut Lines<R>, delimiter: u8, record: &mut Record) -> Result<(), Fatal> {
    record.clear(lines.line());
    if lines.text().starts_with('#') {
        record.comment = true;
        for field in lines.text().split(char::from(delimiter)) {
            record.text.push_str(field);
            record.end_field();
        }
        return Ok(());
    }
    let mut state = feed(lines.text(), delimiter, State::FieldStart, record);
    while state == State::Quoted {
        record.text.push_str(lines.terminator());
        if !lines.advance()? {
            let why = format!("a quoted field opened on line {} is never closed", record.line);
            return Err(fatal(record.line, "UNTERMINATED_QUOTE", why));
        }
        if record.text.len() + lines.text().len() > RECORD_BYTES_MAX {
            return Err(too_long(record.line, false));
        }
        state = feed(lines.text(), delimiter, State::Quoted, record);
    }
    record.end_field();
    Ok(())
}

/// Splits one line with the quote rules, closing a quote left open at its end (to
/// try a delimiter on the header before committing to it).
pub(super) fn split_line(text: &str, delimiter: u8, record: &mut Record) {
    record.clear(0);
    feed(text, delimiter, State::FieldStart, record);
    record.end_field();
}

/// Appends one physical line's worth of fields; returns the state at its end. RFC 4180
/// with the usual leniency: a quote inside an unquoted field is literal text.
fn feed(text: &str, delimiter: u8, mut state: State, record: &mut Record) -> State {
    let bytes = text.as_bytes();
    let mut i = 0;
    loop {
        match state {
            State::FieldStart => {
                state = if bytes.get(i) == Some(&b'"') { State::Quoted } else { State::Unquoted };
                if state == State::Quoted {
                    i += 1;
                }
            }
            State::Unquoted => {
                // Slicing at ASCII delimiters always falls on character boundaries.
                let end = find(bytes, i, delimiter);
                record.text.push_str(&text[i..end]);
                if end == bytes.len() {
                    return State::Unquoted;
                }
                record.end_field();
                i = end + 1;
                state = State::FieldStart;
            }
            State::Quoted => {
                let end = find(bytes, i, b'"');
                record.text.push_str(&text[i..end]);
                if end == bytes.len() {
                    return State::Quoted;
                }
                i = end + 1;
                if bytes.get(i) == Some(&b'"') {
                    record.text.push('"');
                    i += 1;
                } else {
                    state = State::AfterQuote;
                }
            }
            State::AfterQuote => match bytes.get(i) {
                None => return State::AfterQuote,
                Some(b) if *b == delimiter => {
                    record.end_field();
                    i += 1;
                    state = State::FieldStart;
                }
                Some(_) => {
                    // `"ab"cd`: keep the text, flag the row.
                    record.quote_error = true;
                    state = State::Unquoted;
                }
            },
        }
    }
}

/// Index of the first `byte` at or after `from`, or the length.
fn find(bytes: &[u8], from: usize, byte: u8) -> usize {
    bytes[from..].iter().position(|b| *b == byte).map_or(bytes.len(), |p| from + p)
}
