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
    /// (lowercase hex), for SASL EXTERNAL.
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
    /// Adds an account; `Exists` when the name is taken.
    fn create(&self, account: Account) -> Reply<Result<(), StoreError>>;
    /// Replaces an account's record (password change, certificates).
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
        Reply::Now(match a.entry(key) {
            std::collections::btree_map::Entry::Occupied(_) => {
                Err(StoreError::Exists(account.name))
            }
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(account);
                Ok(())
            }
        })
    }

    fn update(&self, account: Account) -> Reply<Result<(), StoreError>> {
        let key = crate::names::casefold(&account.name);
        let mut a = lock(&self.accounts);
        Reply::Now(match a.get_mut(&key) {
            Some(slot) => {
                *slot = account;
                Ok(())
            }
            None => Err(StoreError::Missing(account.name)),
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::now;

    #[test]
    fn accounts_are_unique_by_folded_name() {
        let s = MemoryAccounts::default();
        let acct = |name: &str| Account {
            name: name.into(),
            password_hash: "$argon2id$x".into(),
            scram: None,
            email: None,
            certfps: Vec::new(),
            created: 0,
        };
        now(s.create(acct("Alice"))).unwrap();
        assert_eq!(
            now(s.create(acct("ALICE"))),
            Err(StoreError::Exists("ALICE".into()))
        );
        assert_eq!(now(s.get("alice")).unwrap().unwrap().name, "Alice");
        let mut changed = acct("alice");
        changed.email = Some("a@example.org".into());
        now(s.update(changed)).unwrap();
        assert_eq!(now(s.list()).unwrap().len(), 1);
        now(s.delete("alice")).unwrap();
        assert_eq!(now(s.get("alice")), Ok(None));
        assert!(now(s.delete("alice")).is_err());
    }
}
