//! Running the effects the core asks for: password checks on the blocking
//! pool (argon2 takes tens of milliseconds of CPU), names in the registry,
//! accounts and history in their stores.
//! An effect that can answer at once does, so a session resumes in the same
//! turn; one that cannot gives a future the connection awaits while its
//! input waits.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use bavard_core::effect::{Effect, Outcome, ScramStart, Secret};
use bavard_core::names::casefold;
use bavard_core::store::{
    Account, AccountStore, HistoryStore, MarkerStore, MemoryAccounts, MemoryHistory, MemoryMarkers,
    NameRegistry, Reply, StoreError,
};
use bavard_sqlite::{OpenError, SqliteStore};

use crate::account_effects;
use crate::config::Oper;

/// A future outcome.
pub type Later = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// How an effect started.
pub enum Started {
    Now(Outcome),
    Later(Later),
}

/// The secrets password checks compare against: the effect runner's slice
/// of the configuration.
#[derive(Clone, Debug, Default)]
pub struct Secrets {
    /// The IRC connection password's hash, if one is required.
    pub password: Option<String>,
    pub opers: Vec<Oper>,
}

/// What outlives a connection: the accounts, the history, the accounts'
/// read markers.
#[derive(Clone)]
pub struct Stores {
    pub accounts: Arc<dyn AccountStore>,
    pub history: Arc<dyn HistoryStore>,
    pub markers: Arc<dyn MarkerStore>,
}

impl Stores {
    /// Both in memory, lost at exit.
    pub fn memory() -> Stores {
        Stores {
            accounts: Arc::new(MemoryAccounts::default()),
            history: Arc::new(MemoryHistory::default()),
            markers: Arc::new(MemoryMarkers::default()),
        }
    }

    /// All in one SQLite database.
    pub fn sqlite(db: SqliteStore) -> Stores {
        let db = Arc::new(db);
        Stores {
            accounts: db.clone(),
            history: db.clone(),
            markers: db,
        }
    }

    /// Both in the SQLite database of `[storage]`, created if missing.
    pub fn open(storage: &crate::config::StorageConfig) -> Result<Stores, OpenError> {
        SqliteStore::open_with(&storage.path, storage.max_size).map(Stores::sqlite)
    }
}

/// The server's effect runner.
pub struct Effects {
    registry: Arc<dyn NameRegistry>,
    /// Registered accounts: read at each login, never cached, so a change
    /// made with `bavard account` counts at the next one.
    accounts: Arc<dyn AccountStore>,
    /// Conversations' history (draft/chathistory).
    history: Arc<dyn HistoryStore>,
    /// The accounts' read markers (draft/read-marker), written as they move.
    markers: Arc<dyn MarkerStore>,
    secrets: RwLock<Arc<Secrets>>,
    /// What REHASH runs: reads the configuration file and applies it, or
    /// says why not. None: the server has no file to read.
    rehash: RwLock<Option<Rehash>>,
}

/// Reads the configuration file again and makes it the running one.
pub type Rehash = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

impl Effects {
    pub fn new(registry: Arc<dyn NameRegistry>, stores: Stores, secrets: Secrets) -> Effects {
        Effects {
            registry,
            accounts: stores.accounts,
            history: stores.history,
            markers: stores.markers,
            secrets: RwLock::new(Arc::new(secrets)),
            rehash: RwLock::new(None),
        }
    }

    /// Takes new secrets (a reload): the next checks use them.
    pub fn set_secrets(&self, secrets: Secrets) {
        *self.secrets.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(secrets);
    }

    /// Sets what REHASH runs.
    pub fn set_rehash(&self, rehash: Rehash) {
        *self.rehash.write().unwrap_or_else(|e| e.into_inner()) = Some(rehash);
    }

    fn secrets(&self) -> Arc<Secrets> {
        self.secrets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn registry(&self) -> &Arc<dyn NameRegistry> {
        &self.registry
    }

    pub fn accounts(&self) -> &Arc<dyn AccountStore> {
        &self.accounts
    }

    /// Starts `effect`. Never blocks: slow work is handed to the blocking
    /// pool or a store, and comes back as [`Started::Later`].
    pub fn start(&self, effect: Effect) -> Started {
        match effect {
            Effect::CheckServerPassword { password } => match &self.secrets().password {
                Some(hash) => verify_later(hash.clone(), password),
                None => Started::Now(Outcome::Verified(true)),
            },
            Effect::CheckOper { name, password } => {
                let secrets = self.secrets();
                match secrets.opers.iter().find(|o| o.name == name) {
                    Some(o) => verify_later(o.password.clone(), password),
                    None => Started::Now(Outcome::Verified(false)),
                }
            }
            Effect::Rehash => {
                let rehash = self
                    .rehash
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                let Some(rehash) = rehash else {
                    return Started::Now(Outcome::Failed(
                        "the server was started without --config".into(),
                    ));
                };
                // Off the hub's lock, which applying the file takes, and
                // off the workers: it reads a file.
                Started::Later(Box::pin(async move {
                    match tokio::task::spawn_blocking(move || rehash()).await {
                        Ok(Ok(())) => Outcome::Done,
                        Ok(Err(why)) => Outcome::Failed(why),
                        Err(e) => Outcome::Failed(e.to_string()),
                    }
                }))
            }
            Effect::ClaimNick { key, owner } => claimed(self.registry.claim_nick(&key, owner)),
            Effect::FoundChannel { key } => claimed(self.registry.found_channel(&key)),
            Effect::ReleaseNick { key, owner } => done(self.registry.release_nick(&key, owner)),
            Effect::DropChannel { key } => done(self.registry.drop_channel(&key)),
            Effect::ReleaseOwner { owner } => done(self.registry.release_owner(owner)),
            Effect::AppendHistory { stored, keep } => {
                done(self.history.append(vec![*stored], keep))
            }
            Effect::RedactHistory { target, msgid } => done(self.history.remove(&target, msgid)),
            Effect::ForgetHistory { target } => done(self.history.forget(&target)),
            Effect::RenameHistory { from, to } => done(self.history.rename(&from, &to)),
            Effect::SaveReadMarker { marker, keep } => done(self.markers.save(marker, keep)),
            Effect::RenameReadMarkers { from, to } => done(self.markers.rename(&from, &to)),
            Effect::ForgetReadMarkers { account } => done(self.markers.forget(&account)),
            Effect::ReadHistory {
                target,
                range,
                kinds,
            } => answered(
                self.history.read_kinds(&target, range, kinds),
                Outcome::History,
            ),
            Effect::HistoryTargets {
                targets,
                prefix,
                from,
                to,
                limit,
            } => answered(
                self.history.latest(targets, prefix, from, to, limit),
                Outcome::Targets,
            ),
            Effect::CheckAccount { account, password } => {
                check_account(self.accounts.get(&casefold(&account)), password)
            }
            Effect::ScramLookup { account } => {
                answered(self.accounts.get(&casefold(&account)), |found| {
                    Outcome::Scram(found.and_then(|a| {
                        let scram = a.scram?;
                        Some(Box::new(ScramStart {
                            account: a.name,
                            scram,
                            nonce: nonce(),
                        }))
                    }))
                })
            }
            Effect::AccountByCert { certfp } => {
                answered(self.accounts.by_certfp(&certfp), |found| {
                    Outcome::Account(found.map(|a| a.name))
                })
            }
            Effect::RegisterAccount {
                name,
                password,
                email,
                created,
            } => register(self.accounts.clone(), name, password, email, created),
            Effect::AccountInfo { account } => {
                account_effects::info(self.accounts.clone(), &account)
            }
            Effect::DropAccount { account, password } => {
                account_effects::drop_account(self.accounts.clone(), &account, password)
            }
            Effect::SetPassword { account, password } => {
                account_effects::set_password(self.accounts.clone(), &account, password)
            }
            Effect::EditCerts { account, edit } => {
                account_effects::edit_certs(self.accounts.clone(), &account, edit)
            }
        }
    }

    /// Starts an effect nobody waits for; one that cannot finish at once
    /// goes on in a task of its own.
    pub fn start_detached(&self, effect: Effect) {
        if let Started::Later(f) = self.start(effect) {
            tokio::spawn(f);
        }
    }
}

/// Checks `password` against `hash` on the hashing threads.
fn verify_later(hash: String, password: String) -> Started {
    Started::Later(Box::pin(async move {
        let ok = crate::hashing::run(move || crate::passwd::verify(&hash, &password))
            .await
            .unwrap_or(false);
        Outcome::Verified(ok)
    }))
}

/// A nonce for SCRAM: 18 random bytes in hex (printable, no comma).
fn nonce() -> String {
    let bytes: [u8; 18] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks `password` against the account `found`'s hash on the hashing
/// threads. An unknown account answers without hashing.
fn check_account(found: Reply<Result<Option<Account>, StoreError>>, password: Secret) -> Started {
    Started::Later(Box::pin(async move {
        let account = match found.get().await {
            Ok(Some(a)) => a,
            Ok(None) => return Outcome::Account(None),
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let hash = account.password_hash;
        let ok = crate::hashing::run(move || crate::passwd::verify(&hash, &password.0))
            .await
            .unwrap_or(false);
        Outcome::Account(ok.then_some(account.name))
    }))
}

/// Derives the credentials on the hashing threads, then creates the account.
fn register(
    accounts: Arc<dyn AccountStore>,
    name: String,
    password: Secret,
    email: Option<String>,
    created: u64,
) -> Started {
    Started::Later(Box::pin(async move {
        let Some(Ok((password_hash, scram))) =
            crate::hashing::run(move || crate::passwd::credentials(&password.0)).await
        else {
            return Outcome::Failed("the password could not be hashed".into());
        };
        let account = Account {
            name,
            password_hash,
            scram: Some(scram),
            email,
            certfps: Vec::new(),
            created,
        };
        match accounts.create(account).get().await {
            Ok(()) => Outcome::Created(true),
            Err(StoreError::Exists(_)) => Outcome::Created(false),
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }))
}

/// A store's answer as an outcome: `ok` of it, or the failure.
fn answered<T: Send + 'static>(
    reply: Reply<Result<T, StoreError>>,
    ok: impl FnOnce(T) -> Outcome + Send + 'static,
) -> Started {
    let outcome = move |r: Result<T, StoreError>| match r {
        Ok(t) => ok(t),
        Err(e) => Outcome::Failed(e.to_string()),
    };
    match reply {
        Reply::Now(r) => Started::Now(outcome(r)),
        Reply::Later(f) => Started::Later(Box::pin(async move { outcome(f.await) })),
    }
}

fn claimed(reply: Reply<Result<bool, StoreError>>) -> Started {
    let outcome = |r: Result<bool, StoreError>| match r {
        Ok(yes) => Outcome::Claimed(yes),
        Err(e) => Outcome::Failed(e.to_string()),
    };
    match reply {
        Reply::Now(r) => Started::Now(outcome(r)),
        Reply::Later(f) => Started::Later(Box::pin(async move { outcome(f.await) })),
    }
}

/// Logs a failed effect nobody waits for (a history write the database
/// could not take), at most once a second with the count since: a store
/// that falls behind a flood refuses thousands of writes a second, and a
/// line for each would cost more than the flood itself.
fn unwaited_failure(e: &StoreError) {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    static LAST: AtomicU64 = AtomicU64::new(0);
    static SINCE: AtomicU64 = AtomicU64::new(0);
    let failed = SINCE.fetch_add(1, Relaxed) + 1;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST.load(Relaxed);
    if now > last && LAST.compare_exchange(last, now, Relaxed, Relaxed).is_ok() {
        SINCE.store(0, Relaxed);
        tracing::warn!(error = %e, failed, "effects nobody waits for failed (count since the last report)");
    }
}

fn done(reply: Reply<Result<(), StoreError>>) -> Started {
    let outcome = |r: Result<(), StoreError>| match r {
        Ok(()) => Outcome::Done,
        Err(e) => {
            unwaited_failure(&e);
            Outcome::Failed(e.to_string())
        }
    };
    match reply {
        Reply::Now(r) => Started::Now(outcome(r)),
        Reply::Later(f) => Started::Later(Box::pin(async move { outcome(f.await) })),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

    use bavard_core::ConnId;
    use bavard_core::store::MemoryRegistry;

    use super::*;

    fn effects() -> Effects {
        let secrets = Secrets {
            password: Some(crate::passwd::hash("letmein").unwrap()),
            opers: vec![Oper {
                name: "admin".into(),
                password: crate::passwd::hash("secret").unwrap(),
            }],
        };
        Effects::new(
            Arc::new(MemoryRegistry::default()),
            Stores::memory(),
            secrets,
        )
    }

    async fn outcome(s: Started) -> Outcome {
        match s {
            Started::Now(o) => o,
            Started::Later(f) => f.await,
        }
    }

    /// A password check runs on the hashing threads: with one worker, other
    /// tasks go on while it hashes.
    #[test]
    fn password_checks_do_not_hold_up_the_worker() {
        let e = effects();
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
            while turns.load(Relaxed) == 0 {
                tokio::task::yield_now().await;
            }
            let before = turns.load(Relaxed);
            let check = e.start(Effect::CheckOper {
                name: "admin".into(),
                password: "secret".into(),
            });
            assert!(
                matches!(check, Started::Later(_)),
                "hashing never runs inline"
            );
            let ok = outcome(check).await;
            counter.abort();
            (turns.load(Relaxed) - before, ok)
        });
        assert_eq!(ok, Outcome::Verified(true));
        assert!(during > 0, "no other task ran during the check");
    }

    #[tokio::test]
    async fn checks_answer_each_secret() {
        let e = effects();
        let cases = [
            (
                Effect::CheckServerPassword {
                    password: "letmein".into(),
                },
                Outcome::Verified(true),
            ),
            (
                Effect::CheckServerPassword {
                    password: "nope".into(),
                },
                Outcome::Verified(false),
            ),
            (
                Effect::CheckOper {
                    name: "admin".into(),
                    password: "secret".into(),
                },
                Outcome::Verified(true),
            ),
            (
                Effect::CheckOper {
                    name: "admin".into(),
                    password: "nope".into(),
                },
                Outcome::Verified(false),
            ),
            (
                Effect::CheckOper {
                    name: "nobody".into(),
                    password: "secret".into(),
                },
                Outcome::Verified(false),
            ),
        ];
        for (effect, want) in cases {
            assert_eq!(outcome(e.start(effect.clone())).await, want, "{effect:?}");
        }
        // Without a connection password, PASS needs no check.
        let open = Effects::new(
            Arc::new(MemoryRegistry::default()),
            Stores::memory(),
            Secrets::default(),
        );
        let pass = Effect::CheckServerPassword {
            password: "x".into(),
        };
        assert!(matches!(
            open.start(pass),
            Started::Now(Outcome::Verified(true))
        ));
    }

    #[tokio::test]
    async fn names_are_claimed_in_the_registry() {
        let e = effects();
        let (a, b) = (ConnId::new(0, 1), ConnId::new(0, 2));
        let claim = |owner| Effect::ClaimNick {
            key: "bob".into(),
            owner,
        };
        assert_eq!(outcome(e.start(claim(a))).await, Outcome::Claimed(true));
        assert_eq!(outcome(e.start(claim(b))).await, Outcome::Claimed(false));
        e.start_detached(Effect::ReleaseOwner { owner: a });
        assert_eq!(outcome(e.start(claim(b))).await, Outcome::Claimed(true));
        let found = || Effect::FoundChannel { key: "#x".into() };
        assert_eq!(outcome(e.start(found())).await, Outcome::Claimed(true));
        assert_eq!(outcome(e.start(found())).await, Outcome::Claimed(false));
    }
}
