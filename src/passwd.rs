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

/// True when `password` matches `hash`; a malformed hash never matches.
///
/// Deliberately slow (argon2: tens of milliseconds). Called on a worker of a
/// multi-thread runtime (a connection checking `PASS` or `OPER`), it runs in
/// `block_in_place`: the worker's other connections move to another thread
/// meanwhile instead of waiting, which matters most with one worker.
pub fn verify(hash: &str, password: &str) -> bool {
    let check = || match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    };
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(check)
        }
        _ => check(),
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
    fn checks_do_not_hold_up_the_worker() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
        let h = hash("secret").unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let turns = Arc::new(AtomicU64::new(0));
        let t = turns.clone();
        let (during, ok) = rt.block_on(async move {
            let counter = tokio::spawn(async move {
                loop {
                    t.fetch_add(1, Relaxed);
                    tokio::task::yield_now().await;
                }
            });
            // Let the counter start on the one worker.
            while turns.load(Relaxed) == 0 {
                tokio::task::yield_now().await;
            }
            let checker = tokio::spawn(async move {
                let before = turns.load(Relaxed);
                let ok = verify(&h, "secret");
                (turns.load(Relaxed) - before, ok)
            });
            let r = checker.await.unwrap();
            counter.abort();
            r
        });
        assert!(ok);
        assert!(during > 0, "no other task ran during the check");
    }

    #[test]
    fn salts_differ() {
        assert_ne!(hash("x").unwrap(), hash("x").unwrap());
    }

    #[test]
    fn malformed_hashes_never_match() {
        assert!(!verify("secret", "secret"));
        assert!(check_hash_format("secret").is_err());
        assert!(check_hash_format("").is_err());
    }
}
