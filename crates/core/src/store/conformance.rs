//! What every implementation of a store seam must answer, as cases any
//! store can be run through: the in-memory stores here, SQLite in
//! `bavard-sqlite` (its tests turn on this crate's `conformance` feature).
//! Failures panic, as in a test.

use std::sync::Arc;

use super::{
    Account, AccountStore, HistoryStore, Kinds, Marker, MarkerStore, Point, Range, Scram,
    StoreError, Stored,
};
use crate::ids::MsgId;
use crate::notify::{Event, MsgKind, Source};

/// An account with only a name and a hash.
pub fn account(name: &str) -> Account {
    Account {
        name: name.into(),
        password_hash: "$argon2id$x".into(),
        scram: None,
        email: None,
        certfps: Vec::new(),
        created: 0,
    }
}

/// Accounts are unique by folded name; a certificate belongs to one account.
pub async fn accounts(s: &dyn AccountStore) {
    s.create(account("Alice")).get().await.unwrap();
    assert_eq!(
        s.create(account("ALICE")).get().await,
        Err(StoreError::Exists("ALICE".into()))
    );
    assert_eq!(s.get("alice").get().await.unwrap().unwrap().name, "Alice");
    assert_eq!(s.get("Alice").get().await, Ok(None), "keys are folded");
    let mut changed = account("alice");
    changed.email = Some("a@example.org".into());
    changed.certfps = vec!["bb".into(), "aa".into()];
    changed.scram = Some(Scram {
        salt: vec![1, 2, 3],
        iterations: 4096,
        stored_key: [7; 32],
        server_key: [9; 32],
    });
    changed.created = 1_700_000_000_123;
    s.update(changed.clone()).get().await.unwrap();
    assert_eq!(s.get("alice").get().await, Ok(Some(changed.clone())));
    assert_eq!(
        s.update(account("bob")).get().await,
        Err(StoreError::Missing("bob".into()))
    );
    let found = s.by_certfp("aa").get().await.unwrap();
    assert_eq!(found.map(|a| a.name), Some("alice".into()));
    assert_eq!(s.by_certfp("cc").get().await, Ok(None));
    // Another account cannot claim alice's certificate.
    let mut bob = account("bob");
    bob.certfps = vec!["aa".into()];
    assert_eq!(
        s.create(bob.clone()).get().await,
        Err(StoreError::Exists("aa".into()))
    );
    bob.certfps.clear();
    s.create(bob.clone()).get().await.unwrap();
    bob.certfps = vec!["bb".into()];
    assert_eq!(
        s.update(bob).get().await,
        Err(StoreError::Exists("bb".into()))
    );
    let names: Vec<String> = s
        .list()
        .get()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["alice", "bob"], "by key, bob unchanged");
    s.delete("alice").get().await.unwrap();
    assert_eq!(s.get("alice").get().await, Ok(None));
    assert_eq!(s.by_certfp("aa").get().await, Ok(None), "gone with it");
    assert_eq!(
        s.delete("alice").get().await,
        Err(StoreError::Missing("alice".into()))
    );
    s.delete("bob").get().await.unwrap();
    assert_eq!(s.list().get().await, Ok(Vec::new()));
}

/// A channel message of `#a`, stored in conversation `target`.
pub fn message(target: &str, id: u64, time: u64) -> Stored {
    let msgid = MsgId::new(0, id);
    Stored {
        target: target.into(),
        msgid,
        time,
        event: Event::Message {
            from: Source::new("alice", "~a", "host", false),
            target: Arc::from("#a"),
            to_channel: true,
            text: id.to_string(),
            kind: MsgKind::Privmsg,
            client_tags: String::new(),
            time,
            msgid,
            parts: Vec::new(),
        },
    }
}

/// Every [`Range`]: bounds exclusive, limits, ties in time, unknown
/// messages and conversations; then removal and `latest`.
pub async fn history(h: &dyn HistoryStore) {
    // Events 1..=7 at times 10..=70; 4 and 5 share time 40.
    let ev = |id: u64| message("#a", id, if id == 5 { 40 } else { id * 10 });
    h.append((1..=7).map(ev).collect(), 6).get().await.unwrap();
    let (t, m) = (Point::Time, |id| Point::Msgid(MsgId::new(0, id)));
    let cases: &[(Range, &[u64], &str)] = &[
        (latest(None, 10), &[2, 3, 4, 5, 6, 7], "six kept"),
        (latest(None, 2), &[6, 7], ""),
        (latest(None, 0), &[], ""),
        (latest(Some(m(5)), 9), &[6, 7], ""),
        (latest(Some(t(40)), 9), &[6, 7], ""),
        (latest(Some(m(1)), 9), &[], "1 is gone"),
        (before(t(60), 2), &[4, 5], ""),
        (before(m(5), 2), &[3, 4], "by place"),
        (before(t(40), 9), &[2, 3], ""),
        (before(t(5), 9), &[], ""),
        (before(m(1), 9), &[], "1 is gone"),
        (after(t(40), 2), &[6, 7], ""),
        (after(m(4), 1), &[5], ""),
        (after(t(0), 3), &[2, 3, 4], ""),
        (after(m(7), 3), &[], ""),
        (around(m(4), 3), &[3, 4, 5], ""),
        (around(t(70), 4), &[5, 6, 7], ""),
        (around(t(40), 1), &[4, 5], "the tie whole"),
        (around(m(2), 0), &[2], "the point itself"),
        (around(t(45), 2), &[5, 6], ""),
        (between(t(20), t(70), 2), &[3, 4], ""),
        (between(t(70), t(20), 2), &[5, 6], "backwards: the newest"),
        (between(m(3), m(6), 9), &[4, 5], ""),
        (between(m(6), m(3), 9), &[4, 5], ""),
        (between(m(4), m(5), 9), &[], "adjacent"),
        (between(m(3), m(3), 9), &[], ""),
        (between(t(40), t(40), 9), &[], ""),
        (between(t(0), m(1), 9), &[], "1 is gone"),
    ];
    for (range, want, why) in cases {
        assert_eq!(ids(h, "#a", *range).await, *want, "{range:?} {why}");
    }
    let nothing = latest(None, 3);
    assert!(ids(h, "#none", nothing).await.is_empty());
    // Events come back as they went in.
    let last = h.read("#a", latest(None, 1)).get().await.unwrap();
    assert_eq!(last, [ev(7)]);
    // Another conversation, kept apart.
    h.append(vec![message("#b", 8, 75)], 6).get().await.unwrap();
    assert_eq!(ids(h, "#b", nothing).await, [8]);
    // Removing one message, then a conversation.
    h.remove("#a", MsgId::new(0, 6)).get().await.unwrap();
    h.remove("#a", MsgId::new(0, 99)).get().await.unwrap();
    let two = latest(None, 2);
    assert_eq!(ids(h, "#a", two).await, [5, 7]);
    let targets = || vec!["#a".to_string(), "#b".into(), "#none".into()];
    let found = h.latest(targets(), None, 0, 100, 5).get().await.unwrap();
    assert_eq!(found, [("#a".to_string(), 70), ("#b".to_string(), 75)]);
    let found = h.latest(targets(), None, 100, 0, 1).get().await.unwrap();
    assert_eq!(found, [("#b".to_string(), 75)], "backwards");
    let found = h.latest(targets(), None, 0, 70, 5).get().await.unwrap();
    assert!(found.is_empty(), "exclusive");
    let dm = || Some("#".to_string());
    let found = h.latest(Vec::new(), dm(), 0, 100, 5).get().await.unwrap();
    assert_eq!(found.len(), 2, "by prefix");
    let found = h.latest(vec!["#a".into()], dm(), 100, 0, 5).get().await;
    assert_eq!(found.unwrap().len(), 2, "a target found twice is said once");
    assert_eq!(h.targets().get().await.unwrap(), ["#a", "#b"]);
    h.rename("#b", "#c").get().await.unwrap();
    assert!(ids(h, "#b", nothing).await.is_empty());
    assert_eq!(ids(h, "#c", nothing).await, [8], "renamed");
    h.rename("#c", "#b").get().await.unwrap();
    h.prune(70).get().await.unwrap();
    assert_eq!(ids(h, "#a", nothing).await, [7], "pruned");
    assert_eq!(ids(h, "#b", nothing).await, [8], "kept");
    h.forget("#a").get().await.unwrap();
    assert!(ids(h, "#a", nothing).await.is_empty());
    assert_eq!(h.targets().get().await.unwrap(), ["#b"], "forgotten");
    assert_eq!(ids(h, "#b", nothing).await, [8]);
    // `keep` counts per conversation, over several appends.
    h.append((10..15).map(|id| message("#b", id, 80 + id)).collect(), 3)
        .get()
        .await
        .unwrap();
    assert_eq!(ids(h, "#b", nothing).await, [12, 13, 14]);
    kinds(h).await;
}

/// A channel event other than a message: a JOIN with this msgid and time.
pub fn join(target: &str, id: u64, time: u64) -> Stored {
    let msgid = MsgId::new(0, id);
    Stored {
        target: target.into(),
        msgid,
        time,
        event: Event::Join {
            who: Source::new("bob", "~b", "host", false),
            id: crate::ids::ConnId::new(0, 9),
            channel: "#k".into(),
            realname: "Bob".into(),
            on_connect: false,
            time,
            msgid,
        },
    }
}

/// Reads of chat messages only: the limit counts messages, points may name
/// the other events; `latest` dates a conversation by its last message.
async fn kinds(h: &dyn HistoryStore) {
    // 1 message, 2 join, 3 tagmsg, 4 message, 5 join, 6 message, 7 join.
    let mut tagmsg = message("#k", 3, 30);
    if let Event::Message { kind, .. } = &mut tagmsg.event {
        *kind = MsgKind::Tagmsg;
    }
    let events = vec![
        message("#k", 1, 10),
        join("#k", 2, 20),
        tagmsg,
        message("#k", 4, 40),
        join("#k", 5, 50),
        message("#k", 6, 60),
        join("#k", 7, 70),
    ];
    h.append(events, 100).get().await.unwrap();
    let (t, m) = (Point::Time, |id| Point::Msgid(MsgId::new(0, id)));
    let cases: &[(Range, &[u64], &[u64])] = &[
        (latest(None, 2), &[4, 6], &[6, 7]),
        (latest(Some(m(2)), 9), &[4, 6], &[3, 4, 5, 6, 7]),
        (before(m(5), 1), &[4], &[4]),
        (before(t(70), 2), &[4, 6], &[5, 6]),
        (after(m(2), 1), &[4], &[3]),
        (after(t(10), 2), &[4, 6], &[2, 3]),
        (around(m(5), 2), &[4, 6], &[4, 5]),
        (between(m(1), m(7), 9), &[4, 6], &[2, 3, 4, 5, 6]),
        (between(m(7), m(1), 1), &[6], &[6]),
    ];
    for (range, messages, all) in cases {
        let read = |k| async move {
            let events = h.read_kinds("#k", *range, k).get().await.unwrap();
            events.iter().map(|e| e.msgid.serial()).collect::<Vec<_>>()
        };
        assert_eq!(read(Kinds::Messages).await, *messages, "{range:?} messages");
        assert_eq!(read(Kinds::All).await, *all, "{range:?} all");
    }
    let k = || vec!["#k".to_string()];
    let found = h.latest(k(), None, 0, 100, 5).get().await.unwrap();
    assert_eq!(found, [("#k".to_string(), 60)], "by its last message");
    h.append(vec![join("#j", 8, 80)], 100).get().await.unwrap();
    let found = h.latest(vec!["#j".into()], None, 0, 100, 5).get().await;
    assert_eq!(found, Ok(Vec::new()), "comings and goings only");
    h.forget("#k").get().await.unwrap();
    h.forget("#j").get().await.unwrap();
}

/// Read markers move forward only, are bounded per account, follow a
/// rename, go with their account, and all come back.
pub async fn markers(s: &dyn MarkerStore) {
    let m = |account: &str, target: &str, at| Marker {
        account: account.into(),
        target: target.into(),
        at,
    };
    assert_eq!(s.all().get().await, Ok(Vec::new()));
    s.save(m("alice", "#a", 10), 2).get().await.unwrap();
    s.save(m("alice", "#a", 5), 2).get().await.unwrap();
    s.save(m("alice", "bob", 30), 2).get().await.unwrap();
    s.save(m("bob", "#a", 7), 2).get().await.unwrap();
    let all = s.all().get().await.unwrap();
    assert_eq!(
        all,
        [
            m("alice", "#a", 10),
            m("alice", "bob", 30),
            m("bob", "#a", 7)
        ],
        "never back"
    );
    // A third target replaces the one read longest ago (#a at 20), even
    // when it was read longer ago still.
    s.save(m("alice", "#a", 20), 2).get().await.unwrap();
    s.save(m("alice", "#c", 15), 2).get().await.unwrap();
    let all = s.all().get().await.unwrap();
    assert_eq!(
        all,
        [
            m("alice", "#c", 15),
            m("alice", "bob", 30),
            m("bob", "#a", 7)
        ]
    );
    s.save(m("carol", "#a", 1), 0).get().await.unwrap();
    assert_eq!(s.all().get().await.unwrap().len(), 3, "0 keeps none");
    s.rename("#a", "#z").get().await.unwrap();
    s.rename("#nothing", "#y").get().await.unwrap();
    s.forget("alice").get().await.unwrap();
    assert_eq!(s.all().get().await, Ok(vec![m("bob", "#z", 7)]));
    s.forget("bob").get().await.unwrap();
}

async fn ids(h: &dyn HistoryStore, target: &str, r: Range) -> Vec<u64> {
    let events = h.read(target, r).get().await.unwrap();
    events.iter().map(|e| e.msgid.serial()).collect()
}

fn latest(after: Option<Point>, limit: usize) -> Range {
    Range::Latest { after, limit }
}

fn before(point: Point, limit: usize) -> Range {
    Range::Before { point, limit }
}

fn after(point: Point, limit: usize) -> Range {
    Range::After { point, limit }
}

fn around(point: Point, limit: usize) -> Range {
    Range::Around { point, limit }
}

fn between(from: Point, to: Point, limit: usize) -> Range {
    Range::Between { from, to, limit }
}
