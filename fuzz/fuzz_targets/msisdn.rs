//! `Msisdn::parse` against an independent model of SPEC §2 (E.164: optional `+`, 8 to
//! 15 digits, the first not 0; spaces and dashes ignored), and the round trips of an
//! accepted number through its text, its store key and its masked form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sysgp::ledger::Msisdn;

/// Longest input the parser reads (its documented bound, in bytes).
const INPUT_BYTES_MAX: usize = 40;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else { return };
    let got = Msisdn::parse(input).ok();
    assert_eq!(got.map(|m| m.as_u64()), model(input), "{input:?}");
    let Some(msisdn) = got else { return };
    let text = msisdn.to_string();
    assert!((8..=15).contains(&text.len()), "{input:?} → {text:?}");
    assert!(text.bytes().all(|b| b.is_ascii_digit()) && !text.starts_with('0'), "{input:?} → {text:?}");
    assert_eq!(Msisdn::parse(&text), Ok(msisdn), "{text:?} must parse back");
    assert_eq!(Msisdn::parse(&format!("+{text}")), Ok(msisdn), "+{text:?} must parse back");
    assert_eq!(Msisdn::from_u64(msisdn.as_u64()), Some(msisdn), "store key of {text:?}");
    assert_eq!(String::from(msisdn), text);
    assert_eq!(msisdn.masked(), format!("…{}", &text[text.len() - 4..]), "logs show the last four digits only");
    assert!(!format!("{msisdn:?}").contains(&text), "Debug must not show the whole number");
});

/// SPEC §2, written out separately: the number, or `None` when it must be refused.
fn model(input: &str) -> Option<u64> {
    if input.len() > INPUT_BYTES_MAX {
        return None;
    }
    let compact: String = input.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let digits = compact.strip_prefix('+').unwrap_or(&compact);
    let well_formed =
        (8..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) && !digits.starts_with('0');
    well_formed.then(|| digits.parse().expect("15 digits fit a u64"))
}
