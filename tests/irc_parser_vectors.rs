//! Runs the CC0 `irc-parser-tests` vectors (tests/data/irc-parser-tests/)
//! against `bavard_proto`. One test per YAML file; every vector is checked and
//! all failures are reported together.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::PathBuf;

use bavard_proto::mask::wildcard_match;
use bavard_proto::message::{Message, Tag, is_valid_hostname, split_userhost};
use serde::Deserialize;

fn load<T: for<'de> Deserialize<'de>>(name: &str) -> T {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "data",
        "irc-parser-tests",
        name,
    ]
    .iter()
    .collect();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()))
}

fn report(file: &str, total: usize, failures: Vec<String>) {
    assert!(total > 0, "{file}: no vectors loaded");
    assert!(
        failures.is_empty(),
        "{file}: {} of {total} vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[derive(Deserialize)]
struct File<T> {
    tests: Vec<T>,
}

/// Absent keys mean "null"/empty, as the vector files specify.
#[derive(Deserialize, Default, Debug)]
struct Atoms {
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    verb: Option<String>,
    #[serde(default)]
    params: Vec<String>,
}

#[derive(Deserialize)]
struct SplitCase {
    input: String,
    atoms: Atoms,
}

#[test]
fn msg_split() {
    let file: File<SplitCase> = load("msg-split.yaml");
    let mut failures = Vec::new();
    for case in &file.tests {
        let msg = match Message::parse(&case.input) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{:?}: parse error {e}", case.input));
                continue;
            }
        };
        let tags: BTreeMap<String, String> = msg
            .tags
            .iter()
            .map(|t| (t.key.to_string(), t.value.to_string()))
            .collect();
        let want_tags = case.atoms.tags.clone().unwrap_or_default();
        // Duplicates must have been collapsed by the parser itself.
        let ok = tags == want_tags
            && tags.len() == msg.tags.len()
            && msg.source.as_deref() == case.atoms.source.as_deref()
            && Some(&*msg.command) == case.atoms.verb.as_deref()
            && msg.params == case.atoms.params;
        if !ok {
            failures.push(format!(
                "{:?}: got {msg:?}, want {:?}",
                case.input, case.atoms
            ));
        }
    }
    report("msg-split.yaml", file.tests.len(), failures);
}

#[derive(Deserialize)]
struct JoinCase {
    #[serde(default)]
    desc: String,
    atoms: Atoms,
    matches: Vec<String>,
}

#[test]
fn msg_join() {
    let file: File<JoinCase> = load("msg-join.yaml");
    let mut failures = Vec::new();
    for case in &file.tests {
        let msg = Message {
            tags: case
                .atoms
                .tags
                .iter()
                .flatten()
                .map(|(k, v)| Tag::new(k.as_str(), v.as_str()))
                .collect(),
            source: case.atoms.source.as_deref().map(Cow::Borrowed),
            command: Cow::Borrowed(case.atoms.verb.as_deref().unwrap_or_default()),
            params: case
                .atoms
                .params
                .iter()
                .map(|p| Cow::Borrowed(p.as_str()))
                .collect(),
        };
        let line = msg.to_string();
        let mut buf = Vec::new();
        msg.write_to(&mut buf);
        if !case.matches.contains(&line) || buf != line.as_bytes() {
            failures.push(format!(
                "{}: got {line:?}, want one of {:?}",
                case.desc, case.matches
            ));
        }
    }
    report("msg-join.yaml", file.tests.len(), failures);
}

#[derive(Deserialize, Default)]
struct UserHostAtoms {
    #[serde(default)]
    nick: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    host: String,
}

#[derive(Deserialize)]
struct UserHostCase {
    source: String,
    atoms: UserHostAtoms,
}

#[test]
fn userhost_split() {
    let file: File<UserHostCase> = load("userhost-split.yaml");
    let mut failures = Vec::new();
    for case in &file.tests {
        let got = split_userhost(&case.source);
        let want = &case.atoms;
        if got.nick != want.nick
            || got.user.unwrap_or("") != want.user
            || got.host.unwrap_or("") != want.host
        {
            failures.push(format!("{:?}: got {got:?}", case.source));
        }
    }
    report("userhost-split.yaml", file.tests.len(), failures);
}

#[derive(Deserialize)]
struct MaskCase {
    mask: String,
    #[serde(default)]
    matches: Vec<String>,
    #[serde(default)]
    fails: Vec<String>,
}

#[test]
fn mask_match() {
    let file: File<MaskCase> = load("mask-match.yaml");
    let mut failures = Vec::new();
    for case in &file.tests {
        for s in &case.matches {
            if !wildcard_match(&case.mask, s) {
                failures.push(format!("{:?} should match {s:?}", case.mask));
            }
        }
        for s in &case.fails {
            if wildcard_match(&case.mask, s) {
                failures.push(format!("{:?} should not match {s:?}", case.mask));
            }
        }
    }
    report("mask-match.yaml", file.tests.len(), failures);
}

#[derive(Deserialize)]
struct HostCase {
    host: String,
    valid: bool,
}

#[test]
fn validate_hostname() {
    let file: File<HostCase> = load("validate-hostname.yaml");
    let mut failures = Vec::new();
    for case in &file.tests {
        if is_valid_hostname(&case.host) != case.valid {
            failures.push(format!("{:?}: expected valid={}", case.host, case.valid));
        }
    }
    report("validate-hostname.yaml", file.tests.len(), failures);
}
