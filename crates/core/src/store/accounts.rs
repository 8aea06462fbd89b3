//! Registered accounts.

use std::sync::Mutex;

use super::{Reply, StoreError, lock};
use crate::notify::Millis;

/// A registered account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The name as registered.
    pub name: String,
    /// A password hash in PHC format (argon2), never the password: what
    /// SASL PLAIN, NickServ IDENTIFY and the line dialect's LOGIN check.
    pub password_hash: String,
    /// What SASL SCRAM-SHA-256 checks, derived from the same password.
    pub scram: Option<Scram>,
    pub email: Option<String>,
    /// SHA-256 fingerprints of TLS client certificates that log in as it
    /// (lowercase hex), for SASL EXTERNAL; each belongs to one account only.
    pub certfps: Vec<String>,
    /// Unix milliseconds at registration.
    pub created: Millis,
}

/// The SCRAM-SHA-256 verifiers of a password (RFC 5802, RFC 7677): enough
/// to check a client's proof and to prove the server knows them, never
/// enough to log in elsewhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scram {
    pub salt: Vec<u8>,
    pub iterations: u32,
    /// H(ClientKey), ClientKey = HMAC(SaltedPassword, "Client Key").
    pub stored_key: [u8; 32],
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: [u8; 32],
}

/// The accounts, keyed by casefolded name.
pub trait AccountStore: Send + Sync {
    fn get(&self, key: &str) -> Reply<Result<Option<Account>, StoreError>>;
    /// Adds an account; `Exists(name)` when the name is taken, `Exists(fp)`
    /// when one of its certificates belongs to another account.
    fn create(&self, account: Account) -> Reply<Result<(), StoreError>>;
    /// Replaces an account's record (password change, certificates);
    /// `Missing` when there is none, `Exists(fp)` when one of its
    /// certificates belongs to another account.
    fn update(&self, account: Account) -> Reply<Result<(), StoreError>>;
    fn delete(&self, key: &str) -> Reply<Result<(), StoreError>>;
    /// Every account, by name.
    fn list(&self) -> Reply<Result<Vec<Account>, StoreError>>;
    /// The account a TLS client certificate fingerprint belongs to.
    fn by_certfp(&self, fp: &str) -> Reply<Result<Option<Account>, StoreError>>;
}

/// Accounts in memory: lost at exit.
#[derive(Debug, Default)]
pub struct MemoryAccounts {
    accounts: Mutex<std::collections::BTreeMap<String, Account>>,
}

impl AccountStore for MemoryAccounts {
    fn get(&self, key: &str) -> Reply<Result<Option<Account>, StoreError>> {
        Reply::Now(Ok(lock(&self.accounts).get(key).cloned()))
    }

    fn create(&self, account: Account) -> Reply<Result<(), StoreError>> {
        let key = crate::names::casefold(&account.name);
        let mut a = lock(&self.accounts);
        if a.contains_key(&key) {
            return Reply::Now(Err(StoreError::Exists(account.name)));
        }
        Reply::Now(certfps_free(&a, &key, &account).map(|()| {
            a.insert(key, account);
        }))
    }

    fn update(&self, account: Account) -> Reply<Result<(), StoreError>> {
        let key = crate::names::casefold(&account.name);
        let mut a = lock(&self.accounts);
        if !a.contains_key(&key) {
            return Reply::Now(Err(StoreError::Missing(account.name)));
        }
        Reply::Now(certfps_free(&a, &key, &account).map(|()| {
            a.insert(key, account);
        }))
    }

    fn delete(&self, key: &str) -> Reply<Result<(), StoreError>> {
        Reply::Now(match lock(&self.accounts).remove(key) {
            Some(_) => Ok(()),
            None => Err(StoreError::Missing(key.to_string())),
        })
    }

    fn list(&self) -> Reply<Result<Vec<Account>, StoreError>> {
        Reply::Now(Ok(lock(&self.accounts).values().cloned().collect()))
    }

    fn by_certfp(&self, fp: &str) -> Reply<Result<Option<Account>, StoreError>> {
        let a = lock(&self.accounts);
        let found = a.values().find(|a| a.certfps.iter().any(|f| f == fp));
        Reply::Now(Ok(found.cloned()))
    }
}

/// `Exists(fp)` when a certificate of `account` belongs to another account
/// than the one at `key`: a fingerprint logs in as one account only.
fn certfps_free(
    all: &std::collections::BTreeMap<String, Account>,
    key: &str,
    account: &Account,
) -> Result<(), StoreError> {
    let taken = account.certfps.iter().find(|fp| {
        all.iter()
            .any(|(k, other)| k != key && other.certfps.contains(fp))
    });
    match taken {
        Some(fp) => Err(StoreError::Exists(fp.clone())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::MemoryAccounts;
    use crate::store::{conformance, tests::run};

    #[test]
    fn memory_accounts_conform() {
        run(conformance::accounts(&MemoryAccounts::default()));
    }
}
