//! Passwords: the policy of SPEC §7 and argon2id hashing.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::error::Error;

/// Shortest password (long passphrases beat composition rules).
pub const PASSWORD_CHARS_MIN: usize = 12;
/// Longest password (bounds hashing work per attempt).
pub const PASSWORD_CHARS_MAX: usize = 128;

/// 12–128 characters, not equal to the user name; no composition rules.
pub fn check_policy(username: &str, password: &str) -> Result<(), Error> {
    let n = password.chars().count();
    if !(PASSWORD_CHARS_MIN..=PASSWORD_CHARS_MAX).contains(&n) {
        return Err(Error::invalid_field(
            "PASSWORD_POLICY",
            "password",
            format!("passwords have {PASSWORD_CHARS_MIN} to {PASSWORD_CHARS_MAX} characters"),
        ));
    }
    if password.eq_ignore_ascii_case(username) {
        return Err(Error::invalid_field("PASSWORD_POLICY", "password", "the password may not be the user name"));
    }
    Ok(())
}

/// argon2id with the crate's defaults (19 MiB, 2 passes, 1 lane: OWASP's baseline).
pub fn hash(password: &str) -> Result<String, Error> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(Error::internal)?;
    let salt = SaltString::encode_b64(&salt).map_err(Error::internal)?;
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(Error::internal)
}

/// Checks a password against a stored PHC string (constant time in the comparison).
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_counts_characters_and_refuses_the_user_name() {
        assert!(check_policy("alice", "short").is_err());
        assert!(check_policy("alice", &"x".repeat(129)).is_err());
        assert!(check_policy("alicealice12", "ALICEALICE12").is_err());
        assert!(check_policy("alice", "correct horse battery").is_ok());
        assert!(check_policy("alice", "éééééééééééé").is_ok(), "12 characters, 24 bytes");
    }

    #[test]
    fn hashes_verify_only_their_password() {
        let h = hash("correct horse battery").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse battery!", &h));
        assert!(!verify("x", "not a hash"));
    }
}
