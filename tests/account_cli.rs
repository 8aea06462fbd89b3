//! `bavard account` as a user runs it: the built binary, a configuration
//! naming a database in a temporary directory, the password on stdin.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use bavard_core::store::AccountStore;
use bavard_sqlite::SqliteStore;

/// A temporary directory with a configuration whose database is in it.
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("bavard.toml");
        let db = dir.path().join("accounts.db");
        std::fs::write(&config, format!("[storage]\npath = {:?}\n", db)).unwrap();
        Setup { dir, config }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("accounts.db")
    }

    /// Runs `bavard account ARGS --config FILE` with `stdin` as its input.
    fn run(&self, args: &[&str], stdin: &[u8]) -> Output {
        account(args, Some(&self.config), None, stdin)
    }
}

fn account(args: &[&str], config: Option<&Path>, cwd: Option<&Path>, stdin: &[u8]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bavard"));
    cmd.arg("account").args(args);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // A refused password may close stdin before the whole input is written.
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "failed: {}", stderr(&o));
    stdout(&o)
}

fn refused(o: Output, why: &str) {
    assert!(!o.status.success(), "succeeded: {}", stdout(&o));
    assert!(stderr(&o).contains(why), "{:?} lacks {why:?}", stderr(&o));
}

#[test]
fn add_list_passwd_del() {
    let s = Setup::new();
    assert!(ok(s.run(&["add", "Alice"], b"pencil\n")).contains("Alice"));
    // `echo -n` and CR LF endings work too.
    ok(s.run(&["add", "bob"], b"hunter2"));
    ok(s.run(&["add", "carol"], b"x y z\r\n"));
    let list = ok(s.run(&["list"], b""));
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 3, "{list}");
    let alice: Vec<&str> = lines[0].split('\t').collect();
    assert_eq!(alice[0], "Alice");
    assert!(
        alice[1].starts_with("20") && alice[1].ends_with('Z'),
        "{alice:?}"
    );
    assert_eq!(&alice[2..], ["-", "0 cert(s)"]);

    // A store opened by someone else (the server) sees the account, with
    // credentials for PLAIN and SCRAM from the password given.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = SqliteStore::open(s.db()).unwrap();
    let get = |key: &str| rt.block_on(db.get(key).get()).unwrap();
    let a = get("alice").expect("alice");
    assert!(bavard::passwd::verify(&a.password_hash, "pencil"));
    let scram = a.scram.expect("SCRAM verifiers");
    let want = bavard_core::scram::derive("pencil", &scram.salt, scram.iterations);
    assert_eq!(scram, want);
    assert!(bavard::passwd::verify(
        &get("carol").unwrap().password_hash,
        "x y z"
    ));

    ok(s.run(&["passwd", "ALICE"], b"newer\n"));
    let a = get("alice").unwrap();
    assert!(bavard::passwd::verify(&a.password_hash, "newer"));
    assert!(!bavard::passwd::verify(&a.password_hash, "pencil"));
    let scram = a.scram.unwrap();
    assert_eq!(
        scram,
        bavard_core::scram::derive("newer", &scram.salt, scram.iterations)
    );
    assert_eq!(a.name, "Alice", "the name as registered");

    ok(s.run(&["del", "bob"], b""));
    assert_eq!(get("bob"), None);
    assert_eq!(ok(s.run(&["list"], b"")).lines().count(), 2);
}

#[test]
fn refusals_say_why() {
    let s = Setup::new();
    ok(s.run(&["add", "alice"], b"pencil\n"));
    refused(s.run(&["add", "ALICE"], b"other\n"), "already exists");
    refused(s.run(&["add", "1abc"], b"pw\n"), "invalid account name");
    refused(s.run(&["add", "a b"], b"pw\n"), "invalid account name");
    refused(s.run(&["add", "dave"], b"\n"), "empty password");
    refused(s.run(&["add", "dave"], b""), "empty password");
    let long = vec![b'x'; 601];
    refused(s.run(&["add", "dave"], &long), "longer than 600 bytes");
    let mut max = vec![b'x'; 600];
    max.push(b'\n');
    ok(s.run(&["add", "dave"], &max));
    refused(s.run(&["del", "nobody"], b""), "no account nobody");
    refused(s.run(&["passwd", "nobody"], b"pw\n"), "no account nobody");
    assert_eq!(ok(s.run(&["list"], b"")).lines().count(), 2);
}

/// Without `--config`, the database is bavard.db in the working directory,
/// as for `bavard serve`.
#[test]
fn without_a_config_the_database_is_in_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    ok(account(&["add", "alice"], None, Some(dir.path()), b"pw\n"));
    assert!(dir.path().join("bavard.db").is_file());
    let list = ok(account(&["list"], None, Some(dir.path()), b""));
    assert!(list.starts_with("alice\t"), "{list}");
}

#[test]
fn an_unusable_database_is_named() {
    let s = Setup::new();
    std::fs::write(s.db(), "garbage".repeat(1000)).unwrap();
    refused(s.run(&["list"], b""), &s.db().display().to_string());
}
