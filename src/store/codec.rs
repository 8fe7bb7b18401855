//! Record encoding: one schema-version byte, then bincode 2 (standard configuration).

use serde::{de::DeserializeOwned, Serialize};

use super::StoreError;

/// Version of every record layout written by this build. A record or store with a
/// higher version was written by a newer build and is refused, never rewritten.
pub const SCHEMA_VERSION: u8 = 1;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes `value` behind the schema-version byte.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![SCHEMA_VERSION];
    bincode::serde::encode_into_std_write(value, &mut out, config()).map_err(|e| StoreError::Codec(e.to_string()))?;
    Ok(out)
}

/// Decodes a record written by [`encode`], refusing newer schema versions.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    let (&version, body) = bytes.split_first().ok_or_else(|| StoreError::Codec("empty record".into()))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew { found: version, supported: SCHEMA_VERSION });
    }
    let (value, _) = bincode::serde::decode_from_slice(body, config()).map_err(|e| StoreError::Codec(e.to_string()))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Account, Currency, Msisdn, Timestamp};

    #[test]
    fn records_round_trip_behind_the_version_byte() {
        let mut a = Account::new_wallet(
            Msisdn::parse("22507000001").expect("msisdn"),
            Currency::parse("XOF").expect("XOF"),
            Some("Awa Koné".into()),
            Timestamp(1),
        );
        a.available = i128::MAX / 3;
        let bytes = encode(&a).expect("encode");
        assert_eq!(bytes[0], SCHEMA_VERSION);
        assert_eq!(decode::<Account>(&bytes).expect("decode"), a);
    }

    #[test]
    fn newer_records_are_refused() {
        let mut bytes = encode(&5u32).expect("encode");
        bytes[0] = SCHEMA_VERSION + 1;
        assert!(matches!(decode::<u32>(&bytes), Err(StoreError::SchemaTooNew { .. })));
    }
}
