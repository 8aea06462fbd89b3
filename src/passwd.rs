//! Password hashing for operators and the connection password: argon2id with a
//! random salt, in the PHC string format (`$argon2id$v=19$...`).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Hashes `password` with a fresh random salt.
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// What an account keeps of its password: the argon2 hash (PLAIN, NickServ,
/// the line dialect's LOGIN) and the SCRAM-SHA-256 verifiers, under a fresh
/// random 16-byte salt. Slow (argon2 and 4096 HMAC rounds): the server runs
/// it on the blocking pool.
///
/// Hashing fails only for inputs argon2 cannot take (over 4 GiB); the hash
/// is then empty, which [`verify`] never matches, so no password opens it.
pub fn credentials(password: &str) -> (String, bavard_core::store::Scram) {
    let hash = hash(password).unwrap_or_default();
    let salt: [u8; 16] = rand::random();
    let scram = bavard_core::scram::derive(password, &salt, bavard_core::scram::ITERATIONS);
    (hash, scram)
}

/// True when `password` matches `hash`; a malformed hash never matches.
///
/// Deliberately slow (argon2: tens of milliseconds of CPU): the server calls
/// it on the blocking pool ([`crate::effects`]), never on a worker.
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
    fn credentials_match_their_password() {
        let (hash, scram) = credentials("sesame");
        assert!(verify(&hash, "sesame"));
        assert_eq!(scram.iterations, bavard_core::scram::ITERATIONS);
        let again = bavard_core::scram::derive("sesame", &scram.salt, scram.iterations);
        assert_eq!(again, scram);
        assert_ne!(credentials("sesame").1.salt, scram.salt, "fresh salts");
    }

    #[test]
    fn malformed_hashes_never_match() {
        assert!(!verify("secret", "secret"));
        assert!(check_hash_format("secret").is_err());
        assert!(check_hash_format("").is_err());
    }
}
