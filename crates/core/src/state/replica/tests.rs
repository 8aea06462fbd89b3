//! Two networks, two nodes, kept equal by the records each sends the other
//! through one ordered log.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::*;
use crate::config::CoreConfig;
use crate::ids::IdGen;
use crate::state::changes::*;
use crate::state::{Change, ChangeError, ModeChange, SetChannelModes};

const T: Millis = 1_700_000_000_000;

struct Node {
    net: Network,
    ids: IdGen,
    told: Told,
}

struct Cluster {
    nodes: Vec<Node>,
    /// What local users of each node were shown (events, in order).
    seen: Vec<Vec<Event>>,
}

impl Cluster {
    fn new(n: u16) -> Cluster {
        let nodes = (1..=n)
            .map(|k| Node {
                net: Network::new(Arc::new(CoreConfig::default()), T),
                ids: IdGen::new(k),
                told: Told::default(),
            })
            .collect();
        Cluster {
            nodes,
            seen: vec![Vec::new(); n as usize],
        }
    }

    /// Applies `c` on node `k` (0-based) for `me`, then every node replays
    /// the records in one order.
    fn on<C: Change>(&mut self, k: usize, me: ConnId, c: C) -> Result<C::Output, ChangeError> {
        let mut out = Outputs::default();
        let node = &mut self.nodes[k];
        let r = node.net.apply(c, &mut out, T);
        let local = k as u16 + 1;
        let records = node
            .net
            .records_for(local, Some(me), &mut node.told, &out.items);
        self.log(local, &records);
        r
    }

    fn log(&mut self, origin: u16, records: &[Record]) {
        for (j, node) in self.nodes.iter_mut().enumerate() {
            let mut out = Outputs::default();
            for rec in records {
                node.net
                    .replay(rec, origin == j as u16 + 1, j as u16 + 1, &mut out, T);
            }
            self.seen[j].extend(out.notes().map(|n| n.event.clone()));
            node.net.check_invariants().unwrap();
        }
    }

    fn user(&mut self, k: usize, nick: &str) -> ConnId {
        let id = self.nodes[k].ids.next_conn();
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        self.on(
            k,
            id,
            Connect {
                id,
                ip,
                secure: false,
                certfp: None,
            },
        )
        .unwrap();
        let nick = Nickname::parse(nick, 30).unwrap();
        self.on(k, id, SetNick { id, nick }).unwrap();
        let reg = Register {
            id,
            user: "u".into(),
            realname: "R".into(),
        };
        self.on(k, id, reg).unwrap();
        id
    }

    fn join(&mut self, k: usize, id: ConnId, chan: &str, founder: bool) {
        let channel = ChannelName::parse(chan, 50).unwrap();
        let join = Join {
            id,
            channel,
            key: None,
            on_connect: false,
            founder,
        };
        self.on(k, id, join).unwrap();
    }

    /// Every node's view, sorted, must be the same.
    fn assert_agree(&self) {
        let first = self.nodes[0].net.snapshot();
        for n in &self.nodes[1..] {
            assert_eq!(n.net.snapshot(), first);
        }
    }
}

#[test]
fn users_and_channels_are_the_same_on_every_node() {
    let mut c = Cluster::new(2);
    let alice = c.user(0, "alice");
    let bob = c.user(1, "bob");
    c.assert_agree();
    assert_eq!(c.nodes[1].net.find_nick("ALICE").map(|u| u.id), Some(alice));
    c.join(0, alice, "#chat", true);
    c.join(1, bob, "#chat", false);
    c.assert_agree();
    let topic = SetTopic {
        id: alice,
        channel: "#chat".into(),
        text: "hello".into(),
    };
    c.on(0, alice, topic).unwrap();
    let modes = SetChannelModes {
        by: alice,
        channel: "#chat".into(),
        changes: vec![
            ModeChange::new(true, 'v', Some("bob".into())),
            ModeChange::new(true, 'k', Some("key".into())),
        ],
    };
    c.on(0, alice, modes).unwrap();
    c.assert_agree();
    let ch = c.nodes[1].net.channel("#chat").unwrap();
    assert_eq!(ch.topic.as_ref().unwrap().text, "hello");
    assert!(ch.member(bob).unwrap().voice && ch.member(alice).unwrap().op);
    assert_eq!(ch.modes.key.as_deref(), Some("key"));

    // bob's message reaches node 1's log, and node 0 shows it.
    let msg = crate::state::message::Message {
        from: bob,
        target: "#chat".into(),
        text: "hi".into(),
        parts: vec![],
        kind: MsgKind::Privmsg,
        client_tags: String::new(),
    };
    c.on(1, bob, msg).unwrap();
    assert!(
        c.seen[0]
            .iter()
            .any(|e| matches!(e, Event::Message { text, .. } if text == "hi"))
    );
    // Node 1 delivered it itself: its own records are not shown twice.
    assert!(!c.seen[1].iter().any(|e| matches!(e, Event::Message { .. })));

    c.on(
        1,
        bob,
        SetNick {
            id: bob,
            nick: Nickname::parse("robert", 30).unwrap(),
        },
    )
    .unwrap();
    c.assert_agree();
    assert!(c.nodes[0].net.find_nick("bob").is_none());
    assert_eq!(c.nodes[0].net.find_nick("robert").map(|u| u.id), Some(bob));

    let part = Part {
        id: bob,
        channel: "#chat".into(),
        reason: String::new(),
    };
    c.on(1, bob, part).unwrap();
    c.assert_agree();
    c.on(
        0,
        alice,
        Quit {
            id: alice,
            reason: "bye".into(),
        },
    )
    .unwrap();
    c.assert_agree();
    assert!(c.nodes[1].net.channel("#chat").is_none());
    assert_eq!(c.nodes[1].net.user_count(), 1);
}

#[test]
fn a_failed_node_takes_only_its_users_away() {
    let mut c = Cluster::new(3);
    let a = c.user(0, "a");
    let b = c.user(1, "b");
    let b2 = c.user(1, "b2");
    let z = c.user(2, "z");
    for (k, id) in [(0, a), (1, b), (1, b2), (2, z)] {
        c.join(k, id, "#x", k == 0);
    }
    c.assert_agree();
    for s in &mut c.seen {
        s.clear();
    }
    let down = Record::NodeDown {
        node: 2,
        before: u64::MAX,
        reason: "node lost".into(),
    };
    // Told by node 1 and node 3 both: the second changes nothing.
    c.log(1, std::slice::from_ref(&down));
    c.log(3, &[down]);
    // Node 2's own view is left as it was; the others agree.
    let n0 = c.nodes[0].net.snapshot();
    assert_eq!(n0.users.len(), 2);
    let x = n0.channels.iter().find(|c| c.name == "#x").unwrap();
    assert_eq!(x.ranks.len(), 2);
    let quits = |s: &Vec<Event>| s.iter().filter(|e| matches!(e, Event::Quit { .. })).count();
    assert_eq!(quits(&c.seen[0]), 2);
    assert_eq!(quits(&c.seen[2]), 2);
    assert!(c.seen[0].iter().all(|e| matches!(e, Event::Quit { .. })));
    assert!(c.nodes[2].net.find_nick("b2").is_none());
}

#[test]
fn a_late_node_restores_a_snapshot() {
    let mut c = Cluster::new(2);
    let a = c.user(0, "a");
    c.join(0, a, "#x", true);
    let snap = c.nodes[0].net.snapshot();
    let mut fresh = Network::new(Arc::new(CoreConfig::default()), T);
    fresh.restore(&snap, &mut Outputs::default());
    fresh.check_invariants().unwrap();
    assert_eq!(fresh.snapshot(), snap);
}

#[test]
fn a_kill_from_another_node_removes_the_user_everywhere() {
    let mut c = Cluster::new(2);
    let op = c.user(0, "op");
    let victim = c.user(1, "victim");
    let modes = UserModes {
        oper: true,
        ..UserModes::default()
    };
    c.on(0, op, SetUserModes { id: op, modes }).unwrap();
    c.assert_agree();
    let kill = Kill {
        by: op,
        target: "victim".into(),
        reason: "spam".into(),
    };
    c.on(0, op, kill).unwrap();
    c.assert_agree();
    assert!(c.nodes[1].net.user(victim).is_none());
    // The victim's node shows it the KILL, then its QUIT (closing it).
    assert!(matches!(
        c.seen[1][..],
        [Event::Kill { .. }, Event::Quit { .. }, ..]
    ));
}

#[test]
fn a_private_message_goes_straight_to_its_node_not_to_the_log() {
    let mut c = Cluster::new(2);
    let a = c.user(0, "a");
    let b = c.user(1, "b");
    let pm = crate::state::message::Message {
        from: a,
        target: "b".into(),
        text: "psst".into(),
        parts: vec![],
        kind: MsgKind::Privmsg,
        client_tags: String::new(),
    };
    let mut out = Outputs::default();
    c.nodes[0].net.apply(pm, &mut out, T).unwrap();
    let node = &mut c.nodes[0];
    let records = node.net.records_for(1, Some(a), &mut node.told, &out.items);
    assert!(records.is_empty(), "{records:?}");
    let n = out.notes().next().unwrap();
    assert_eq!(direct_to(n, 1), Some(b.node()));
    assert_eq!(direct_to(n, 2), None);
    // Node 2 shows it to b.
    let mut shown = Outputs::default();
    c.nodes[1]
        .net
        .replay(&Record::Note(n.clone()), false, 2, &mut shown, T);
    assert!(matches!(shown.notes().next().unwrap().audience, Audience::User(id) if id == b));
}

#[test]
fn a_private_message_is_kept_by_every_node_but_shown_only_by_its_recipients() {
    let mut c = Cluster::new(3);
    let a = c.user(0, "a");
    c.user(1, "b");
    let anon = c.user(1, "anon");
    let login = crate::state::account::SetAccount {
        id: a,
        account: Some("alice".into()),
    };
    c.on(0, a, login).unwrap();
    let pm = |target: &str| crate::state::message::Message {
        from: a,
        target: target.into(),
        text: "psst".into(),
        parts: vec![],
        kind: MsgKind::Privmsg,
        client_tags: String::new(),
    };
    let mut out = Outputs::default();
    c.nodes[0].net.apply(pm("b"), &mut out, T).unwrap();
    let n = out.notes().next().unwrap().clone();
    let kept = c.nodes[0].net.kept_elsewhere(&n).expect("alice keeps it");
    let appended = |node: &mut Node, own: bool, local: u16| {
        let mut out = Outputs::default();
        node.net.replay(&kept, own, local, &mut out, T);
        assert_eq!(out.notes().count(), 0, "kept, not shown");
        out.later
            .iter()
            .filter_map(|e| match e {
                Effect::AppendHistory { stored, .. } => Some(stored.target.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    // Node 3 keeps alice's side (b has no account); node 2 had it straight
    // and node 1 made it: neither keeps it twice.
    assert_eq!(appended(&mut c.nodes[2], false, 3), ["dm:alice b"]);
    assert!(appended(&mut c.nodes[1], false, 2).is_empty());
    assert!(appended(&mut c.nodes[0], true, 1).is_empty());
    // Without an account on either side nothing is kept, nor logged.
    let mut out = Outputs::default();
    let by_anon = crate::state::message::Message {
        from: anon,
        ..pm("b")
    };
    c.nodes[1].net.apply(by_anon, &mut out, T).unwrap();
    let n = out.notes().next().unwrap();
    assert_eq!(c.nodes[1].net.kept_elsewhere(n), None);
}

#[test]
fn a_renamed_channel_moves_on_every_node() {
    let mut c = Cluster::new(2);
    let alice = c.user(0, "alice");
    let bob = c.user(1, "bob");
    c.join(0, alice, "#old", true);
    c.join(1, bob, "#old", false);
    let rename = crate::state::rename::Rename {
        by: alice,
        channel: "#old".into(),
        new: ChannelName::parse("#New", 50).unwrap(),
        reason: "tidy".into(),
    };
    c.on(0, alice, rename).unwrap();
    c.assert_agree();
    let net = &c.nodes[1].net;
    assert!(!net.channels.contains_key("#old"));
    let ch = net.channels.get("#new").expect("moved");
    assert_eq!(&*ch.name, "#New");
    assert_eq!(ch.members.len(), 2);
    // Messages to the new name reach the member of the other node.
    c.on(
        0,
        alice,
        crate::state::message::Message {
            from: alice,
            target: "#new".into(),
            text: "hi".into(),
            parts: vec![],
            kind: MsgKind::Privmsg,
            client_tags: String::new(),
        },
    )
    .unwrap();
    assert!(
        c.seen[1]
            .iter()
            .any(|e| matches!(e, Event::Message { text, .. } if text == "hi")),
        "{:?}",
        c.seen[1]
    );
}

#[test]
fn a_read_marker_moves_on_every_node_and_in_snapshots() {
    let mut c = Cluster::new(2);
    let a1 = c.user(0, "a1");
    let a2 = c.user(1, "a2");
    for (k, id) in [(0, a1), (1, a2)] {
        let login = crate::state::account::SetAccount {
            id,
            account: Some("Alice".into()),
        };
        c.on(k, id, login).unwrap();
    }
    let mark = crate::state::markers::MarkRead {
        id: a1,
        target: "#Chat".into(),
        at: T - 5,
    };
    c.on(0, a1, mark).unwrap();
    assert_eq!(c.nodes[1].net.read_marker(a2, "#chat"), Some(T - 5));
    assert!(
        c.seen[1]
            .iter()
            .any(|e| matches!(e, Event::ReadMarker { target, at, .. } if target == "#Chat" && *at == T - 5)),
        "{:?}",
        c.seen[1]
    );
    c.assert_agree();
    // A node that joins later has it too.
    let snap = c.nodes[0].net.snapshot();
    assert_eq!(snap.markers.len(), 1);
    let mut late = Network::new(Arc::new(CoreConfig::default()), T);
    late.restore(&snap, &mut Outputs::default());
    assert_eq!(late.snapshot(), snap);
}

#[test]
fn metadata_is_the_same_on_every_node_and_told_to_subscribers() {
    use crate::state::metadata::{MetaTarget, SetMetadata, Subscribe};
    let mut c = Cluster::new(2);
    let alice = c.user(0, "alice");
    let bob = c.user(1, "bob");
    c.join(0, alice, "#c", true);
    c.join(1, bob, "#c", false);
    let sub = Subscribe {
        id: bob,
        keys: vec!["avatar".into(), "url".into()],
    };
    c.on(1, bob, sub).unwrap();
    let set = |target: MetaTarget, key: &str| SetMetadata {
        by: alice,
        target,
        key: key.into(),
        value: Some("v".into()),
    };
    c.on(0, alice, set(MetaTarget::Me, "avatar")).unwrap();
    c.on(0, alice, set(MetaTarget::Channel("#c".into()), "url"))
        .unwrap();
    c.assert_agree();
    let net = &c.nodes[1].net;
    assert_eq!(
        net.users.get(&alice).unwrap().metadata().get("avatar"),
        Some("v")
    );
    assert_eq!(
        net.channels.get("#c").unwrap().metadata.get("url"),
        Some("v")
    );
    let told: Vec<(&str, &str)> = c.seen[1]
        .iter()
        .filter_map(|e| match e {
            Event::Metadata { target, key, .. } => Some((target.as_str(), key.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(told, [("alice", "avatar"), ("#c", "url")]);
    // A node that joins later has both.
    let snap = c.nodes[0].net.snapshot();
    let mut late = Network::new(Arc::new(CoreConfig::default()), T);
    late.restore(&snap, &mut Outputs::default());
    assert_eq!(late.snapshot(), snap);
    assert_eq!(
        late.channels.get("#c").unwrap().metadata.get("url"),
        Some("v")
    );
}
