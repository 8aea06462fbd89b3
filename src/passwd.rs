//! Password hashing for operators, the connection password and accounts:
//! argon2id with a random salt, in the PHC string format
//! (`$argon2id$v=19$...`); accounts also keep SCRAM-SHA-256 verifiers.

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use bavard_core::scram;
use bavard_core::store::Scram;

/// The longest account password, in bytes.
pub const MAX_PASSWORD_BYTES: usize = 600;

/// Hashes `password` with a fresh random salt.
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// What an account keeps of `password`: its argon2 hash (SASL PLAIN,
/// IDENTIFY, LOGIN) and its SCRAM-SHA-256 verifiers under a fresh 16-byte
/// salt. Both are slow on purpose: the server calls this on the hashing
/// threads, like [`verify`].
pub fn credentials(password: &str) -> Result<(String, Scram), argon2::password_hash::Error> {
    let mut salt = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    Ok((
        hash(password)?,
        scram::derive(password, &salt, scram::ITERATIONS),
    ))
}

/// True when `password` matches `hash`; a malformed hash never matches.
///
/// Deliberately slow (argon2: tens of milliseconds of CPU): the server calls
/// it on the hashing threads ([`crate::hashing`]), never on a worker.
pub fn verify(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Checks that `hash` is a PHC string argon2 can verify against, so a plain-text
/// password in the config is refused at startup instead of never matching.
pub fn check_hash_format(hash: &str) -> Result<(), argon2::password_hash::Error> {
    let parsed = PasswordHash::new(hash)?;
    if !parsed.algorithm.as_str().starts_with("argon2") {
        return Err(argon2::password_hash::Error::Algorithm);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let h = hash("secret").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify(&h, "secret"));
        assert!(!verify(&h, "Secret"));
        assert!(check_hash_format(&h).is_ok());
    }

    /// With one worker, a connection checking a password must not stop the
    /// others: a task counting turns keeps counting during the check.
    #[test]
    fn salts_differ() {
        assert_ne!(hash("x").unwrap(), hash("x").unwrap());
    }

    #[test]
    fn credentials_check_the_password_both_ways() {
        let (hash, s) = credentials("pencil").unwrap();
        assert!(verify(&hash, "pencil"));
        assert_eq!(s.salt.len(), 16);
        assert_eq!(s, scram::derive("pencil", &s.salt, scram::ITERATIONS));
        let (_, other) = credentials("pencil").unwrap();
        assert_ne!(s.salt, other.salt, "a fresh salt each time");
    }

    #[test]
    fn malformed_hashes_never_match() {
        assert!(!verify("secret", "secret"));
        assert!(check_hash_format("secret").is_err());
        assert!(check_hash_format("").is_err());
    }
}
