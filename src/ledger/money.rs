//! Money: the currency table, the strict amount grammar, minor units and canonical text.
//!
//! Every amount that enters the system (API bodies, CSV rows, SDK quotes we compare)
//! goes through [`parse_amount`]; every amount that leaves goes through
//! [`format_minor`]. Amounts are `i128` minor units; arithmetic on them is checked.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Integer minor units (cents, francs, fils). `i128` so that sums of many maximal
/// amounts cannot overflow in practice; every operation is still checked.
pub type Minor = i128;

/// Longest amount text accepted. The grammar allows 18 integer digits; the fraction
/// may carry trailing zeros, but nothing legitimate needs more than this.
const AMOUNT_TEXT_MAX: usize = 64;

/// Largest integer part the grammar allows (18 digits), also the ceiling for
/// `SYSGP_AMOUNT_MAX`.
pub const AMOUNT_MAJOR_CEILING: u64 = 999_999_999_999_999_999;

/// Why an amount text was refused. `code()` is the stable API error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// The text does not match `^(0|[1-9][0-9]{0,17})(\.[0-9]+)?$`.
    #[error("amount must be a decimal number such as \"1500\" or \"12.5\" (digits, an optional '.', no sign, exponent, separators or spaces)")]
    Format,
    /// More decimals than the currency's minor unit allows.
    #[error("{currency} amounts have at most {exponent} decimal places")]
    TooManyDecimals {
        /// The currency of the amount.
        currency: Currency,
        /// Its ISO 4217 exponent.
        exponent: u32,
    },
    /// The amount is zero.
    #[error("amount must be greater than zero")]
    Zero,
    /// The amount exceeds the configured maximum.
    #[error("amount exceeds the largest single amount allowed ({max} {currency})")]
    TooLarge {
        /// The currency of the amount.
        currency: Currency,
        /// The configured maximum in canonical text.
        max: String,
    },
}

impl AmountError {
    /// Stable upper-case error code.
    pub fn code(&self) -> &'static str {
        match self {
            AmountError::Format => "AMOUNT_FORMAT",
            AmountError::TooManyDecimals { .. } => "TOO_MANY_DECIMALS",
            AmountError::Zero => "AMOUNT_ZERO",
            AmountError::TooLarge { .. } => "AMOUNT_TOO_LARGE",
        }
    }
}

/// Checks the amount grammar only: `^(0|[1-9][0-9]{0,17})(\.[0-9]+)?$`, ASCII digits.
/// Returns the integer and fraction digit strings.
pub fn check_amount_grammar(text: &str) -> Result<(&str, &str), AmountError> {
    if text.is_empty() || text.len() > AMOUNT_TEXT_MAX {
        return Err(AmountError::Format);
    }
    let (int, frac) = match text.split_once('.') {
        Some((int, frac)) => {
            if frac.is_empty() {
                return Err(AmountError::Format);
            }
            (int, frac)
        }
        None => (text, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || int.len() > 18 || !all_digits(int) || !all_digits(frac) {
        return Err(AmountError::Format);
    }
    if int.len() > 1 && int.starts_with('0') {
        return Err(AmountError::Format);
    }
    Ok((int, frac))
}

/// Parses amount text into minor units of `currency`, enforcing the grammar, the
/// currency's decimals, non-zero and `max_minor` (inclusive).
pub fn parse_amount(text: &str, currency: Currency, max_minor: Minor) -> Result<Minor, AmountError> {
    let (int, frac) = check_amount_grammar(text)?;
    let exponent = currency.exponent();
    // Trailing zeros do not change the value: "10.50" is 1050 cents.
    let frac = frac.trim_end_matches('0');
    if frac.len() > exponent as usize {
        return Err(AmountError::TooManyDecimals { currency, exponent });
    }
    let mut minor: Minor = 0;
    for digit in int.bytes().chain(frac.bytes()) {
        minor = minor * 10 + Minor::from(digit - b'0');
    }
    for _ in frac.len()..exponent as usize {
        minor *= 10;
    }
    // 18 integer digits plus at most 3 decimals cannot overflow i128.
    if minor == 0 {
        return Err(AmountError::Zero);
    }
    if minor > max_minor {
        return Err(AmountError::TooLarge { currency, max: format_minor(max_minor, currency) });
    }
    Ok(minor)
}

/// Canonical text of a minor-unit amount: no trailing zeros, no trailing point,
/// a leading `-` for negative values (system accounts only).
pub fn format_minor(minor: Minor, currency: Currency) -> String {
    let exponent = currency.exponent() as usize;
    let negative = minor < 0;
    let digits = minor.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + 3);
    if negative {
        out.push('-');
    }
    if exponent == 0 {
        out.push_str(&digits);
        return out;
    }
    let padded = format!("{digits:0>width$}", width = exponent + 1);
    let (int, frac) = padded.split_at(padded.len() - exponent);
    out.push_str(int);
    let frac = frac.trim_end_matches('0');
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    out
}

/// `10^exponent` as minor units, for converting configured major-unit limits.
pub fn major_to_minor(major: u64, currency: Currency) -> Minor {
    Minor::from(major) * 10_i128.pow(currency.exponent())
}

/// An ISO 4217 currency this system can hold, with its minor-unit exponent.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency {
    code: [u8; 3],
    exponent: u8,
}

/// Why a currency code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown currency {0:?}: expected an upper-case ISO 4217 code such as XOF or USD")]
pub struct CurrencyError(pub String);

impl Currency {
    /// Looks an upper-case code up in the table.
    pub fn parse(code: &str) -> Result<Currency, CurrencyError> {
        CURRENCIES
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(c, e)| {
                let b = c.as_bytes();
                Currency { code: [b[0], b[1], b[2]], exponent: *e }
            })
            .ok_or_else(|| CurrencyError(code.chars().take(16).collect()))
    }

    /// The three-letter code.
    pub fn code(&self) -> &str {
        // The table only holds ASCII codes.
        std::str::from_utf8(&self.code).unwrap_or("???")
    }

    /// Number of decimal places of the minor unit.
    pub fn exponent(&self) -> u32 {
        u32::from(self.exponent)
    }

    /// Every currency in the table.
    pub fn all() -> impl Iterator<Item = Currency> {
        CURRENCIES.iter().filter_map(|(c, _)| Currency::parse(c).ok())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl TryFrom<String> for Currency {
    type Error = CurrencyError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Currency::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.code().to_owned()
    }
}

/// Codes of the Mojaloop outbound API's `Currency` enum that are deliberately not in
/// [`CURRENCIES`], with the reason. A test checks that the two lists cover the enum.
pub const EXCLUDED_CURRENCIES: &[(&str, &str)] = &[
    ("XDR", "no ISO 4217 minor unit (SDR)"),
    ("XTS", "no ISO 4217 minor unit (testing code)"),
    ("XXX", "no ISO 4217 minor unit (no currency)"),
    ("GGP", "not an ISO 4217 code (Guernsey pound)"),
    ("IMP", "not an ISO 4217 code (Manx pound)"),
    ("JEP", "not an ISO 4217 code (Jersey pound)"),
    ("SPL", "not an ISO 4217 code (Seborga luigino)"),
    ("TVD", "not an ISO 4217 code (Tuvalu dollar)"),
    ("ANG", "withdrawn 2025, replaced by XCG"),
    ("CUC", "withdrawn 2022"),
    ("HRK", "withdrawn 2023, replaced by EUR"),
    ("MRO", "withdrawn 2018, replaced by MRU"),
    ("SLL", "withdrawn, replaced by SLE"),
    ("STD", "withdrawn 2018, replaced by STN"),
    ("VEF", "withdrawn 2018, replaced by VES"),
    ("ZWD", "withdrawn 2009"),
];

/// The currencies of the Mojaloop outbound API with their ISO 4217 exponents.
#[rustfmt::skip]
const CURRENCIES: &[(&str, u8)] = &[
    ("AED", 2), ("AFN", 2), ("ALL", 2), ("AMD", 2), ("AOA", 2), ("ARS", 2), ("AUD", 2),
    ("AWG", 2), ("AZN", 2), ("BAM", 2), ("BBD", 2), ("BDT", 2), ("BGN", 2), ("BHD", 3),
    ("BIF", 0), ("BMD", 2), ("BND", 2), ("BOB", 2), ("BRL", 2), ("BSD", 2), ("BTN", 2),
    ("BWP", 2), ("BYN", 2), ("BZD", 2), ("CAD", 2), ("CDF", 2), ("CHF", 2), ("CLP", 0),
    ("CNY", 2), ("COP", 2), ("CRC", 2), ("CUP", 2), ("CVE", 2), ("CZK", 2), ("DJF", 0),
    ("DKK", 2), ("DOP", 2), ("DZD", 2), ("EGP", 2), ("ERN", 2), ("ETB", 2), ("EUR", 2),
    ("FJD", 2), ("FKP", 2), ("GBP", 2), ("GEL", 2), ("GHS", 2), ("GIP", 2), ("GMD", 2),
    ("GNF", 0), ("GTQ", 2), ("GYD", 2), ("HKD", 2), ("HNL", 2), ("HTG", 2), ("HUF", 2),
    ("IDR", 2), ("ILS", 2), ("INR", 2), ("IQD", 3), ("IRR", 2), ("ISK", 0), ("JMD", 2),
    ("JOD", 3), ("JPY", 0), ("KES", 2), ("KGS", 2), ("KHR", 2), ("KMF", 0), ("KPW", 2),
    ("KRW", 0), ("KWD", 3), ("KYD", 2), ("KZT", 2), ("LAK", 2), ("LBP", 2), ("LKR", 2),
    ("LRD", 2), ("LSL", 2), ("LYD", 3), ("MAD", 2), ("MDL", 2), ("MGA", 2), ("MKD", 2),
    ("MMK", 2), ("MNT", 2), ("MOP", 2), ("MUR", 2), ("MVR", 2), ("MWK", 2), ("MXN", 2),
    ("MYR", 2), ("MZN", 2), ("NAD", 2), ("NGN", 2), ("NIO", 2), ("NOK", 2), ("NPR", 2),
    ("NZD", 2), ("OMR", 3), ("PAB", 2), ("PEN", 2), ("PGK", 2), ("PHP", 2), ("PKR", 2),
    ("PLN", 2), ("PYG", 0), ("QAR", 2), ("RON", 2), ("RSD", 2), ("RUB", 2), ("RWF", 0),
    ("SAR", 2), ("SBD", 2), ("SCR", 2), ("SDG", 2), ("SEK", 2), ("SGD", 2), ("SHP", 2),
    ("SOS", 2), ("SRD", 2), ("SVC", 2), ("SYP", 2), ("SZL", 2), ("THB", 2), ("TJS", 2),
    ("TMT", 2), ("TND", 3), ("TOP", 2), ("TRY", 2), ("TTD", 2), ("TWD", 2), ("TZS", 2),
    ("UAH", 2), ("UGX", 0), ("USD", 2), ("UYU", 2), ("UZS", 2), ("VND", 0), ("VUV", 0),
    ("WST", 2), ("XAF", 0), ("XCD", 2), ("XOF", 0), ("XPF", 0), ("YER", 2), ("ZAR", 2),
    ("ZMW", 2),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn xof() -> Currency {
        Currency::parse("XOF").expect("XOF")
    }
    fn usd() -> Currency {
        Currency::parse("USD").expect("USD")
    }
    const MAX: Minor = 1_000_000_000_000_000_000;

    #[test]
    fn lenient_forms_that_decimal_parsers_accept_are_refused() {
        for text in [
            "1e3",
            "1E3",
            "1_000",
            "+5",
            "-5",
            ".5",
            "5.",
            "0012",
            "1,5",
            " 1",
            "1 ",
            "",
            "١٢",
            "１２",
            "0x10",
            "NaN",
            "inf",
            "1.2.3",
            "00",
            "01.5",
            "1234567890123456789",
        ] {
            assert_eq!(parse_amount(text, usd(), MAX), Err(AmountError::Format), "{text:?}");
        }
    }

    #[test]
    fn canonical_and_padded_amounts_become_minor_units() {
        assert_eq!(parse_amount("1500", xof(), MAX), Ok(1500));
        assert_eq!(parse_amount("12.5", usd(), MAX), Ok(1250));
        assert_eq!(parse_amount("10.50", usd(), MAX), Ok(1050));
        assert_eq!(parse_amount("0.01", usd(), MAX), Ok(1));
        assert_eq!(parse_amount("100.000", xof(), MAX), Ok(100));
        let kwd = Currency::parse("KWD").expect("KWD");
        assert_eq!(parse_amount("1.234", kwd, MAX), Ok(1234));
        assert_eq!(parse_amount("999999999999999999", xof(), Minor::MAX), Ok(999_999_999_999_999_999));
    }

    #[test]
    fn decimals_beyond_the_currency_are_refused() {
        assert!(matches!(parse_amount("1.234", xof(), MAX), Err(AmountError::TooManyDecimals { .. })));
        assert!(matches!(parse_amount("1.5", xof(), MAX), Err(AmountError::TooManyDecimals { .. })));
        assert!(matches!(parse_amount("0.001", usd(), MAX), Err(AmountError::TooManyDecimals { .. })));
    }

    #[test]
    fn zero_and_too_large_have_their_own_codes() {
        assert_eq!(parse_amount("0", xof(), MAX), Err(AmountError::Zero));
        assert_eq!(parse_amount("0.00", usd(), MAX), Err(AmountError::Zero));
        assert_eq!(parse_amount("101", xof(), 100).map_err(|e| e.code()), Err("AMOUNT_TOO_LARGE"));
        assert_eq!(parse_amount("100", xof(), 100), Ok(100));
    }

    #[test]
    fn formatting_is_canonical() {
        assert_eq!(format_minor(1050, usd()), "10.5");
        assert_eq!(format_minor(1000, usd()), "10");
        assert_eq!(format_minor(1, usd()), "0.01");
        assert_eq!(format_minor(0, usd()), "0");
        assert_eq!(format_minor(-1050, usd()), "-10.5");
        assert_eq!(format_minor(1500, xof()), "1500");
        assert_eq!(format_minor(-7, xof()), "-7");
    }

    #[test]
    fn formatting_round_trips_through_parsing() {
        for minor in [1, 9, 10, 99, 100, 101, 1234567, 100000] {
            for cur in [xof(), usd(), Currency::parse("KWD").expect("KWD")] {
                let text = format_minor(minor, cur);
                assert_eq!(parse_amount(&text, cur, MAX), Ok(minor), "{text}");
            }
        }
    }

    #[test]
    fn currency_codes_are_upper_case_table_entries() {
        assert!(Currency::parse("xof").is_err());
        assert!(Currency::parse("XXX").is_err());
        assert!(Currency::parse("XO").is_err());
        assert_eq!(Currency::parse("KWD").map(|c| c.exponent()), Ok(3));
        assert_eq!(Currency::parse("JPY").map(|c| c.exponent()), Ok(0));
    }

    #[test]
    fn currency_table_covers_the_sdk_enum_exactly() {
        // The Currency enum of the Mojaloop outbound API v2.1.0 JSON schema.
        let schema = include_str!("../../tests/fixtures/sdk_currency_enum.txt");
        let mut seen = 0;
        let codes = schema.lines().filter(|l| !l.starts_with('#')).flat_map(str::split_whitespace);
        for code in codes {
            let in_table = Currency::parse(code).is_ok();
            let excluded = EXCLUDED_CURRENCIES.iter().any(|(c, _)| *c == code);
            assert!(in_table ^ excluded, "{code} must be either in the table or excluded");
            seen += 1;
        }
        assert_eq!(seen, CURRENCIES.len() + EXCLUDED_CURRENCIES.len());
    }
}
