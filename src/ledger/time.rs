//! `Timestamp`: microseconds since the Unix epoch, rendered as RFC 3339.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Microseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Converts a wall-clock time (callers outside the ledger read the clock).
    pub fn from_system(time: SystemTime) -> Timestamp {
        let micros = time.duration_since(UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0);
        Timestamp(i64::try_from(micros).unwrap_or(i64::MAX))
    }

    /// Back to a `SystemTime`.
    pub fn to_system(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(u64::try_from(self.0).unwrap_or(0))
    }

    /// Parses RFC 3339: `2026-11-25T13:50:47Z`, fractional seconds allowed, a `±HH:MM`
    /// offset instead of `Z`, `t` and `z` in either case (and, leniently, no zone at all
    /// for UTC).
    pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        let (local, offset_secs) = split_offset(text)?;
        let mut utc: String = local.to_owned();
        if utc.get(10..11) == Some("t") {
            utc.replace_range(10..11, "T");
        }
        utc.push('Z');
        let t = humantime::parse_rfc3339_weak(&utc).ok().map(Timestamp::from_system)?;
        Some(t.plus_micros(-offset_secs * 1_000_000))
    }

    /// This time plus `micros` (saturating).
    pub fn plus_micros(self, micros: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(micros))
    }

    /// Microseconds from `earlier` to `self` (negative if `earlier` is later).
    pub fn micros_since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// Splits an RFC 3339 time into its local part and its offset from UTC in seconds.
fn split_offset(text: &str) -> Option<(&str, i64)> {
    if let Some(local) = text.strip_suffix(['Z', 'z']) {
        return Some((local, 0));
    }
    let at = text.len().checked_sub(6)?;
    let (local, zone) = (text.get(..at)?, text.get(at..)?.as_bytes());
    let sign = match zone[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return Some((text, 0)),
    };
    if zone[3] != b':' || ![1, 2, 4, 5].iter().all(|&i| zone[i].is_ascii_digit()) {
        return None;
    }
    let digits = |i: usize| i64::from(zone[i] - b'0') * 10 + i64::from(zone[i + 1] - b'0');
    let (hours, minutes) = (digits(1), digits(4));
    (hours <= 23 && minutes <= 59).then_some((local, sign * (hours * 3600 + minutes * 60)))
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_rfc3339_millis(self.to_system()))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_at_millisecond_precision() {
        let t = Timestamp::parse_rfc3339("2026-11-25T13:50:47.202Z").expect("parses");
        assert_eq!(t.to_string(), "2026-11-25T13:50:47.202Z");
        assert!(Timestamp::parse_rfc3339("yesterday").is_none());
    }

    #[test]
    fn rfc3339_offsets_and_lower_case_letters_are_understood() {
        let utc = Timestamp::parse_rfc3339("2026-11-26T14:25:20Z").expect("utc");
        for same in [
            "2026-11-26T15:25:20+01:00",
            "2026-11-26T13:25:20-01:00",
            "2026-11-26t14:25:20z",
            "2026-11-26T19:55:20+05:30",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(same), Some(utc), "{same}");
        }
        for bad in [
            "2026-11-26T15:25:20+1:00",
            "2026-11-26T15:25:20+24:00",
            "2026-11-26T15:25:20+01:60",
            "2026-11-26T15:25:20+0a:00",
            "é",
            "",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad}");
        }
    }
}
