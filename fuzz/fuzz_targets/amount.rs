//! `parse_amount` against an independent model of SPEC §2: the same verdict for every
//! text, canonical text that parses back to the same minor units.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sysgp::ledger::{format_minor, parse_amount, AmountError, Currency, Minor, AMOUNT_MAJOR_CEILING};

/// Longest amount text the parser reads (its documented bound).
const AMOUNT_TEXT_MAX: usize = 64;

fuzz_target!(|data: &[u8]| {
    let Some((currency, max, rest)) = split_input(data) else { return };
    round_trips_from_minor_units(max, currency);
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let got = parse_amount(text, currency, max);
    let want = model(text, currency, max);
    assert_eq!(verdict(&got), want, "{text:?} {currency} max {max}");
    if let Ok(minor) = got {
        assert!(minor > 0 && minor <= max, "{text:?} → {minor}");
        let canonical = format_minor(minor, currency);
        assert!(canonical.len() <= text.len(), "canonical {canonical:?} is longer than {text:?}");
        assert_eq!(parse_amount(&canonical, currency, max), Ok(minor), "{text:?} → {canonical:?}");
    }
});

/// Currency (one byte) and maximum (eight bytes), then the text.
fn split_input(data: &[u8]) -> Option<(Currency, Minor, &[u8])> {
    let (&pick, rest) = data.split_first()?;
    let (max_bytes, rest) = rest.split_first_chunk::<8>()?;
    let currencies: Vec<Currency> = Currency::all().collect();
    let currency = currencies[usize::from(pick) % currencies.len()];
    // Small maxima hit AMOUNT_TOO_LARGE; the top bit asks for no maximum at all.
    let raw = u64::from_le_bytes(*max_bytes);
    let max = if raw >> 63 == 1 { Minor::MAX } else { Minor::from(raw) + 1 };
    Some((currency, max, rest))
}

/// Any positive minor amount whose integer part fits the grammar formats to text that
/// parses back to itself.
fn round_trips_from_minor_units(max: Minor, currency: Currency) {
    let minor = max % 1_000_000_000_000_000_000_000;
    let major = minor / 10_i128.pow(currency.exponent());
    if minor <= 0 || major > Minor::from(AMOUNT_MAJOR_CEILING) {
        return;
    }
    let text = format_minor(minor, currency);
    assert_eq!(parse_amount(&text, currency, Minor::MAX), Ok(minor), "{minor} → {text:?}");
}

/// The result reduced to what the model predicts.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Ok(Minor),
    Err(&'static str),
}

fn verdict(result: &Result<Minor, AmountError>) -> Verdict {
    match result {
        Ok(minor) => Verdict::Ok(*minor),
        Err(e) => Verdict::Err(e.code()),
    }
}

/// SPEC §2, written out separately: `^(0|[1-9][0-9]{0,17})(\.[0-9]+)?$` in ASCII, then
/// decimals, zero, maximum, in that order.
fn model(text: &str, currency: Currency, max: Minor) -> Verdict {
    let (int, frac) = match text.find('.') {
        Some(dot) => (&text[..dot], Some(&text[dot + 1..])),
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    let int_ok = digits(int) && int.len() <= 18 && (int == "0" || !int.starts_with('0'));
    let frac_ok = frac.is_none_or(digits);
    if !int_ok || !frac_ok || text.len() > AMOUNT_TEXT_MAX {
        return Verdict::Err("AMOUNT_FORMAT");
    }
    let significant = frac.unwrap_or("").trim_end_matches('0');
    let exponent = currency.exponent() as usize;
    if significant.len() > exponent {
        return Verdict::Err("TOO_MANY_DECIMALS");
    }
    let padded = format!("{int}{significant:0<exponent$}");
    let minor: Minor = padded.parse().expect("at most 21 digits fit an i128");
    if minor == 0 {
        Verdict::Err("AMOUNT_ZERO")
    } else if minor > max {
        Verdict::Err("AMOUNT_TOO_LARGE")
    } else {
        Verdict::Ok(minor)
    }
}
