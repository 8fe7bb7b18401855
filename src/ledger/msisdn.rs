//! `Msisdn`: an E.164 phone number identifying a wallet, normalised at the edge.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An E.164 number: 8 to 15 digits, the first not `0`, stored without `+`.
///
/// Because the first digit is never 0 the number fits a `u64` exactly, which gives
/// fixed-width, order-preserving store keys.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Msisdn(u64);

/// Why an MSISDN was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("msisdn must be an E.164 number: optional '+', then 8 to 15 digits, the first not 0 (spaces and dashes are ignored)")]
pub struct MsisdnError;

impl Msisdn {
    /// Parses user input: spaces and dashes are removed, one leading `+` is allowed.
    pub fn parse(input: &str) -> Result<Msisdn, MsisdnError> {
        // Longer than any E.164 number with generous separators: refuse early.
        if input.len() > 40 {
            return Err(MsisdnError);
        }
        let compact: String = input.chars().filter(|c| *c != ' ' && *c != '-').collect();
        let digits = compact.strip_prefix('+').unwrap_or(&compact);
        if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.starts_with('0') {
            return Err(MsisdnError);
        }
        digits.parse::<u64>().map(Msisdn).map_err(|_| MsisdnError)
    }

    /// The number as an integer (store keys).
    pub fn as_u64(&self) -> u64 {
        self.0
    }

    /// Rebuilds from a store key; `None` if the value cannot be an MSISDN.
    pub fn from_u64(value: u64) -> Option<Msisdn> {
        Msisdn::parse(&value.to_string()).ok()
    }

    /// The last four digits only, for logs: `…0001`.
    pub fn masked(&self) -> String {
        let digits = self.0.to_string();
        format!("…{}", &digits[digits.len() - 4..])
    }
}

impl fmt::Display for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Msisdn {
    /// Debug output is masked so that a stray `{:?}` never logs a whole number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Msisdn({})", self.masked())
    }
}

impl TryFrom<String> for Msisdn {
    type Error = MsisdnError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Msisdn::parse(&value)
    }
}

impl From<Msisdn> for String {
    fn from(value: Msisdn) -> Self {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_and_plus_are_normalised_away() {
        let expected = Msisdn::parse("22507000001").expect("plain");
        for input in ["+22507000001", "+225 07 00 00 01", "225-07-00-00-01", " 22507000001 "] {
            assert_eq!(Msisdn::parse(input), Ok(expected), "{input:?}");
        }
        assert_eq!(expected.to_string(), "22507000001");
    }

    #[test]
    fn malformed_numbers_are_refused() {
        for input in [
            "",
            "+",
            "1234567",
            "1234567890123456",
            "02250700001",
            "2250700000a",
            "2.25e10",
            "++22507000001",
            "225 07 00 00 0１",
            "(225)07000001",
            "22507000001+",
        ] {
            assert_eq!(Msisdn::parse(input), Err(MsisdnError), "{input:?}");
        }
    }

    #[test]
    fn logs_see_only_the_last_four_digits() {
        let m = Msisdn::parse("22507000001").expect("valid");
        assert_eq!(m.masked(), "…0001");
        assert_eq!(format!("{m:?}"), "Msisdn(…0001)");
    }

    #[test]
    fn store_keys_round_trip() {
        let m = Msisdn::parse("123456789012345").expect("valid");
        assert_eq!(Msisdn::from_u64(m.as_u64()), Some(m));
    }
}
