//! The corpus table: what each file of `tests/fixtures/bulk/` must give.

/// One expected report entry: (line, field, code).
pub(super) type Entry = (u32, Option<&'static str>, &'static str);

/// What uploading a file must give.
pub(super) enum Outcome {
    /// The job reaches AWAITING_APPROVAL with this many items and this total; the
    /// report holds exactly these entries (warnings).
    Accepted { count: u64, total: &'static str, report: &'static [Entry] },
    /// The job ends FAILED with a reason starting with `code`; the report holds exactly
    /// these entries.
    Failed { code: &'static str, report: &'static [Entry] },
    /// The upload itself is refused.
    Refused { status: u16, code: &'static str },
}

pub(super) struct Case {
    /// Path under `tests/fixtures/bulk/`.
    pub(super) file: &'static str,
    pub(super) currency: &'static str,
    pub(super) outcome: Outcome,
}

const fn accepted(file: &'static str, count: u64, total: &'static str) -> Case {
    Case { file, currency: "XOF", outcome: Outcome::Accepted { count, total, report: &[] } }
}

const fn invalid_rows(file: &'static str, report: &'static [Entry]) -> Case {
    Case { file, currency: "XOF", outcome: Outcome::Failed { code: "INVALID_ROWS", report } }
}

const fn fatal(file: &'static str, code: &'static str, report: &'static [Entry]) -> Case {
    Case { file, currency: "XOF", outcome: Outcome::Failed { code, report } }
}

const AMOUNT: Option<&str> = Some("amount");
const MSISDN: Option<&str> = Some("msisdn");

/// Every corpus file but those that need smaller limits (see [`LIMIT_CASES`]).
/// The app runs with `SYSGP_AMOUNT_MAX=10000000` (the README's `amount_max`).
pub(super) const CASES: &[Case] = &[
    // Valid oddities.
    accepted("valid_basic.csv", 3, "4100"),
    accepted("bom.csv", 2, "1700"),
    accepted("semicolon.csv", 2, "4000"),
    accepted("quoted_commas.csv", 2, "4000"),
    accepted("msisdn_spaces.csv", 4, "400"),
    Case { currency: "USD", ..accepted("control_match.csv", 3, "45.5") },
    Case {
        file: "duplicate_rows.csv",
        currency: "XOF",
        outcome: Outcome::Accepted { count: 4, total: "401", report: &[(4, None, "DUPLICATE_ROW")] },
    },
    accepted("http/crlf_valid.csv", 2, "4000"),
    accepted("http/oddities_combined.csv", 2, "4000"),
    // Rows with problems: the whole job fails, nothing is paid.
    invalid_rows(
        "quoted_newlines.csv",
        &[(3, Some("note"), "CONTROL_CHARACTER"), (5, Some("name"), "CONTROL_CHARACTER"), (8, MSISDN, "MSISDN_FORMAT")],
    ),
    invalid_rows("crlf.csv", &[(4, AMOUNT, "AMOUNT_FORMAT")]),
    invalid_rows("blank_lines.csv", &[(7, AMOUNT, "AMOUNT_ZERO")]),
    invalid_rows(
        "wrong_currency.csv",
        &[(3, Some("currency"), "CURRENCY_MISMATCH"), (4, Some("currency"), "CURRENCY_MISMATCH")],
    ),
    invalid_rows("too_many_decimals.csv", &[(2, AMOUNT, "TOO_MANY_DECIMALS")]),
    Case {
        currency: "USD",
        ..invalid_rows("decimal_comma.csv", &[(2, AMOUNT, "DECIMAL_COMMA"), (3, AMOUNT, "DECIMAL_COMMA")])
    },
    invalid_rows("negative.csv", &[(2, AMOUNT, "AMOUNT_FORMAT")]),
    invalid_rows("zero.csv", &[(2, AMOUNT, "AMOUNT_ZERO"), (3, AMOUNT, "AMOUNT_ZERO")]),
    invalid_rows("exponent.csv", &[(2, AMOUNT, "AMOUNT_FORMAT"), (3, AMOUNT, "AMOUNT_FORMAT")]),
    invalid_rows("msisdn_as_number.csv", &[(2, MSISDN, "MSISDN_AS_NUMBER"), (3, MSISDN, "MSISDN_AS_NUMBER")]),
    invalid_rows(
        "bad_msisdn.csv",
        &[
            (2, MSISDN, "MSISDN_FORMAT"),
            (3, MSISDN, "MSISDN_FORMAT"),
            (4, MSISDN, "MSISDN_FORMAT"),
            (5, MSISDN, "MSISDN_FORMAT"),
            (6, MSISDN, "MSISDN_FORMAT"),
        ],
    ),
    invalid_rows("duplicate_reference.csv", &[(4, Some("reference"), "DUPLICATE_REFERENCE")]),
    // A control line that disagrees with the file condemns the file (reason: its code).
    fatal("control_mismatch.csv", "CONTROL_MISMATCH", &[(5, MSISDN, "MSISDN_FORMAT"), (1, None, "CONTROL_MISMATCH")]),
    fatal("control_other_delimiter.csv", "CONTROL_FORMAT", &[(1, None, "CONTROL_FORMAT")]),
    invalid_rows(
        "comment_line.csv",
        &[(1, None, "COMMENT_NOT_ALLOWED"), (4, None, "COMMENT_NOT_ALLOWED"), (6, None, "COMMENT_NOT_ALLOWED")],
    ),
    invalid_rows("field_count.csv", &[(2, None, "FIELD_COUNT"), (3, None, "FIELD_COUNT"), (4, None, "FIELD_COUNT")]),
    invalid_rows(
        "long_fields.csv",
        &[
            (2, Some("reference"), "REFERENCE_TOO_LONG"),
            (3, Some("name"), "NAME_TOO_LONG"),
            (4, Some("note"), "NOTE_TOO_LONG"),
        ],
    ),
    invalid_rows(
        "control_chars.csv",
        &[(2, Some("name"), "CONTROL_CHARACTER"), (3, Some("note"), "CONTROL_CHARACTER")],
    ),
    invalid_rows("amount_too_large.csv", &[(2, AMOUNT, "AMOUNT_TOO_LARGE")]),
    invalid_rows(
        "every_problem.csv",
        &[
            (2, MSISDN, "MSISDN_FORMAT"),
            (2, AMOUNT, "AMOUNT_FORMAT"),
            (2, Some("currency"), "CURRENCY_MISMATCH"),
            (2, Some("reference"), "REFERENCE_TOO_LONG"),
            (2, Some("name"), "CONTROL_CHARACTER"),
            (2, Some("note"), "NOTE_TOO_LONG"),
        ],
    ),
    invalid_rows("quote_format.csv", &[(2, None, "QUOTE_FORMAT"), (2, AMOUNT, "AMOUNT_FORMAT")]),
    // Files that cannot be read as a table: validation stops at the first problem.
    fatal("missing_header.csv", "MISSING_HEADER", &[(1, None, "MISSING_HEADER")]),
    fatal("unknown_column.csv", "UNKNOWN_COLUMN", &[(1, Some("iban"), "UNKNOWN_COLUMN")]),
    fatal("missing_column.csv", "MISSING_COLUMN", &[(1, AMOUNT, "MISSING_COLUMN")]),
    fatal("duplicate_column.csv", "DUPLICATE_COLUMN", &[(1, AMOUNT, "DUPLICATE_COLUMN")]),
    fatal("header_only.csv", "NO_ROWS", &[(1, None, "NO_ROWS")]),
    fatal("latin1.csv", "NOT_UTF8", &[(3, None, "NOT_UTF8")]),
    fatal("utf16_bom.csv", "NOT_UTF8", &[(1, None, "NOT_UTF8")]),
    fatal("utf16_no_bom.csv", "NOT_UTF8", &[(1, None, "NOT_UTF8")]),
    fatal("binary.csv", "NOT_UTF8", &[(1, None, "NOT_UTF8")]),
    fatal("unterminated_quote.csv", "UNTERMINATED_QUOTE", &[(2, None, "UNTERMINATED_QUOTE")]),
    fatal("cr_only.csv", "LINE_ENDINGS", &[(1, None, "LINE_ENDINGS")]),
    // An empty upload is refused at once: there is nothing to store.
    Case { file: "empty.csv", currency: "XOF", outcome: Outcome::Refused { status: 400, code: "EMPTY_FILE" } },
];

/// Files that need the README's small limits: `SYSGP_BULK_ROWS_MAX=5`,
/// `SYSGP_BULK_TOTAL_MAX=1000`.
pub(super) const LIMIT_CASES: &[Case] = &[
    fatal("rows_limit.csv", "ROWS_LIMIT", &[(7, None, "ROWS_LIMIT")]),
    fatal("total_limit.csv", "TOTAL_LIMIT", &[(4, None, "TOTAL_LIMIT")]),
];
