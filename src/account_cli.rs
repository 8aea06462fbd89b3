//! `bavard account add|list|del|passwd`: the accounts of the database a
//! server uses (`storage.path` of the same `--config`, or the cluster's
//! account bucket when it has a `[cluster]`), from the shell,
//! while the server runs or not. A running server reads accounts at each
//! login, so a change counts at the next one.

use std::io::{BufRead, IsTerminal, Read};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use bavard_core::names::{Nickname, casefold};
use bavard_core::store::{Account, AccountStore, StoreError};
use bavard_sqlite::SqliteStore;
use clap::{Args, Subcommand};

use crate::config::Config;
use crate::passwd::{self, MAX_PASSWORD_BYTES};

#[derive(Args)]
pub struct AccountArgs {
    /// Configuration file whose `storage.path` names the database (default:
    /// bavard.db in the working directory).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: AccountCmd,
}

#[derive(Subcommand)]
enum AccountCmd {
    /// Register an account; its password is one line on stdin.
    Add { name: String },
    /// Print every account: name, registration time, email, certificates.
    List,
    /// Delete an account.
    Del { name: String },
    /// Change an account's password, read as one line on stdin.
    Passwd { name: String },
}

pub fn run(a: AccountArgs) -> anyhow::Result<()> {
    let cfg = match &a.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    // The store answers through futures; one thread is enough to await them.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // A cluster's accounts are its nodes' shared bucket, not this node's file.
    let db: std::sync::Arc<dyn AccountStore> = match &cfg.cluster {
        Some(c) => rt.block_on(crate::cluster::connect(c))?.accounts(),
        None => std::sync::Arc::new(SqliteStore::open(&cfg.storage.path)?),
    };
    match a.cmd {
        AccountCmd::Add { name } => {
            let name = Nickname::parse(&name, cfg.limits.nick_length)
                .map_err(|e| anyhow!("invalid account name {name:?}: {e}"))?;
            let (password_hash, scram) = derive(&read_password()?)?;
            let account = Account {
                name: name.as_str().to_string(),
                password_hash,
                scram: Some(scram),
                email: None,
                certfps: Vec::new(),
                created: now_ms(),
            };
            rt.block_on(db.create(account).get()).map_err(|e| match e {
                StoreError::Exists(_) => anyhow!("account {name} already exists"),
                e => e.into(),
            })?;
            println!("account {name} added");
        }
        AccountCmd::List => {
            for a in rt.block_on(db.list().get())? {
                let mut created = Vec::new();
                bavard_core::irc::render::format_time(a.created, &mut created);
                println!(
                    "{}\t{}\t{}\t{} cert(s)",
                    a.name,
                    String::from_utf8_lossy(&created),
                    a.email.as_deref().unwrap_or("-"),
                    a.certfps.len()
                );
            }
        }
        AccountCmd::Del { name } => {
            rt.block_on(db.delete(&casefold(&name)).get())
                .map_err(|e| missing(e, &name))?;
            println!("account {name} deleted");
        }
        AccountCmd::Passwd { name } => {
            let mut account = rt
                .block_on(db.get(&casefold(&name)).get())?
                .ok_or_else(|| anyhow!("no account {name}"))?;
            let (password_hash, scram) = derive(&read_password()?)?;
            account.password_hash = password_hash;
            account.scram = Some(scram);
            rt.block_on(db.update(account).get())
                .map_err(|e| missing(e, &name))?;
            println!("password of {name} changed");
        }
    }
    Ok(())
}

fn missing(e: StoreError, name: &str) -> anyhow::Error {
    match e {
        StoreError::Missing(_) => anyhow!("no account {name}"),
        e => e.into(),
    }
}

fn derive(password: &str) -> anyhow::Result<(String, bavard_core::store::Scram)> {
    passwd::credentials(password).map_err(|e| anyhow!("hashing failed: {e}"))
}

/// The password: the first line of stdin, without its line ending.
fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("password (one line, not hidden):");
    }
    let mut line = Vec::new();
    // Enough for the longest password, its CR LF and one byte more to know
    // it is too long, however long the input is.
    let bound = MAX_PASSWORD_BYTES as u64 + 3;
    stdin
        .lock()
        .take(bound)
        .read_until(b'\n', &mut line)
        .context("cannot read the password on stdin")?;
    let line = line.strip_suffix(b"\n").unwrap_or(&line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        bail!("empty password: give it as one line on stdin");
    }
    if line.len() > MAX_PASSWORD_BYTES {
        bail!("password longer than {MAX_PASSWORD_BYTES} bytes");
    }
    String::from_utf8(line.to_vec()).map_err(|_| anyhow!("the password is not UTF-8"))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
