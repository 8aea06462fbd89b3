//! The effects NickServ asks of the account store: INFO, DROP, SET PASSWORD
//! and CERT. Each reads the account afresh (a change made with
//! `bavard account` counts at once) and hashes on the hashing threads
//! ([`crate::hashing`]).

use std::sync::Arc;

use bavard_core::effect::{AccountInfo, CertEdit, Outcome, Secret};
use bavard_core::names::casefold;
use bavard_core::store::{Account, AccountStore, StoreError};

use crate::effects::{Later, Started};

/// Reads the account named `account`, then answers with `then` of it.
fn with_account<F>(accounts: Arc<dyn AccountStore>, account: &str, then: F) -> Started
where
    F: FnOnce(Arc<dyn AccountStore>, Option<Account>) -> Later + Send + 'static,
{
    let found = accounts.get(&casefold(account));
    Started::Later(Box::pin(async move {
        match found.get().await {
            Ok(a) => then(accounts, a).await,
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }))
}

/// What others may know of an account.
pub fn info(accounts: Arc<dyn AccountStore>, account: &str) -> Started {
    with_account(accounts, account, |_, found| {
        let info = found.map(|a| {
            Box::new(AccountInfo {
                name: a.name,
                created: a.created,
                email: a.email,
            })
        });
        Box::pin(async move { Outcome::Info(info) })
    })
}

/// Whether `password` is the account's, checked on the hashing threads.
async fn password_matches(account: &Account, password: Secret) -> bool {
    let hash = account.password_hash.clone();
    crate::hashing::run(move || crate::passwd::verify(&hash, &password.0))
        .await
        .unwrap_or(false)
}

/// Deletes the account once its password is checked.
pub fn drop_account(accounts: Arc<dyn AccountStore>, account: &str, password: Secret) -> Started {
    with_account(accounts, account, |accounts, found| {
        Box::pin(async move {
            let Some(a) = found else {
                return Outcome::Account(None);
            };
            if !password_matches(&a, password).await {
                return Outcome::Account(None);
            }
            match accounts.delete(&casefold(&a.name)).get().await {
                Ok(()) => Outcome::Account(Some(a.name)),
                Err(e) => Outcome::Failed(e.to_string()),
            }
        })
    })
}

/// Derives a new hash and SCRAM verifiers, and stores them.
pub fn set_password(accounts: Arc<dyn AccountStore>, account: &str, password: Secret) -> Started {
    with_account(accounts, account, |accounts, found| {
        Box::pin(async move {
            let Some(mut a) = found else {
                return Outcome::Failed("no such account".into());
            };
            let derived =
                crate::hashing::run(move || crate::passwd::credentials(&password.0)).await;
            let Some(Ok((hash, scram))) = derived else {
                return Outcome::Failed("the password could not be hashed".into());
            };
            a.password_hash = hash;
            a.scram = Some(scram);
            match accounts.update(a).get().await {
                Ok(()) => Outcome::Done,
                Err(e) => Outcome::Failed(e.to_string()),
            }
        })
    })
}

/// Adds or removes a certificate fingerprint, or lists them.
pub fn edit_certs(
    accounts: Arc<dyn AccountStore>,
    account: &str,
    edit: Option<CertEdit>,
) -> Started {
    with_account(accounts, account, |accounts, found| {
        Box::pin(async move {
            let Some(mut a) = found else {
                return Outcome::Certs(None);
            };
            match edit {
                None => return Outcome::Certs(Some(a.certfps)),
                Some(CertEdit::Add(fp)) if !a.certfps.contains(&fp) => a.certfps.push(fp),
                Some(CertEdit::Del(fp)) => a.certfps.retain(|f| *f != fp),
                Some(CertEdit::Add(_)) => {}
            }
            let certfps = a.certfps.clone();
            match accounts.update(a).get().await {
                Ok(()) => Outcome::Certs(Some(certfps)),
                Err(StoreError::Exists(_)) => Outcome::Certs(None),
                Err(e) => Outcome::Failed(e.to_string()),
            }
        })
    })
}
