//! The hub driven directly, without sockets: each test connects users whose
//! queues are read back with `take`, using the line dialect's rendering.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::*;
use crate::line::LINE;

const T: Millis = 1_700_000_000_000;

fn hub() -> Hub {
    Hub::new(Arc::new(Config::default()), T)
}

fn hub_with(f: impl FnOnce(&mut Config)) -> Hub {
    let mut c = Config::default();
    f(&mut c);
    Hub::new(Arc::new(c), T)
}

/// Connects and registers `nick`.
fn user(h: &mut Hub, nick: &str) -> ConnId {
    let id = h.next_conn_id();
    let send_queue = h.cfg.limits.send_queue;
    let peer = Arc::new(Peer::new(id, &LINE, send_queue));
    h.connect(peer, IpAddr::V4(Ipv4Addr::LOCALHOST), T);
    h.set_nick(id, nick, T).unwrap();
    h.register(id, "u", "real");
    id
}

/// Everything queued for `id`, as text.
fn drain(h: &Hub, id: ConnId) -> String {
    let u = h.user(id).expect("user exists");
    String::from_utf8_lossy(&u.peer.out.take(Default::default()).data.to_vec()).into_owned()
}

#[test]
fn nicks_are_unique_case_insensitively() {
    let mut h = hub();
    let a = user(&mut h, "Alice");
    let b = user(&mut h, "bob");
    let cases: &[(&str, Result<(), HubError>)] = &[
        ("alice", Err(HubError::NicknameInUse("alice".into()))),
        ("ALICE", Err(HubError::NicknameInUse("ALICE".into()))),
        ("1bad", Err(HubError::ErroneousNickname("1bad".into()))),
        ("bob", Ok(())),
        ("Bob", Ok(())),
        ("carol", Ok(())),
    ];
    for (nick, want) in cases {
        assert_eq!(&h.set_nick(b, nick, T).map(|_| ()), want, "{nick}");
    }
    assert_eq!(h.find_nick("CAROL").map(|u| u.id), Some(b));
    assert!(h.find_nick("bob").is_none(), "old nick freed");
    h.quit(a, "bye", T);
    assert!(
        h.set_nick(b, "alice", T).is_ok(),
        "a departed user's nick is free"
    );
}

/// The nick index stores only ids and reads keys from the users: it must
/// stay right through many resizes, renames (case changes included) and
/// departures.
#[test]
fn nick_index_survives_growth_renames_and_departures() {
    let mut h = hub();
    let ids: Vec<ConnId> = (0..3000).map(|i| user(&mut h, &format!("n{i}"))).collect();
    for (i, &id) in ids.iter().enumerate() {
        let nick = if i % 2 == 0 {
            format!("Renamed{i}")
        } else {
            format!("N{i}")
        };
        h.set_nick(id, &nick, T).unwrap();
    }
    for (i, &id) in ids.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
        h.quit(id, "bye", T);
        assert!(h.find_nick(&format!("n{i}")).is_none());
    }
    h.check_invariants().unwrap();
    for (i, &id) in ids.iter().enumerate() {
        let gone = i % 3 == 0;
        let renamed = format!("RENAMED{i}");
        let found = h
            .find_nick(&format!("n{i}"))
            .or_else(|| h.find_nick(&renamed));
        assert_eq!(found.map(|u| u.id), (!gone).then_some(id), "user {i}");
        if i % 2 == 0 && !gone {
            assert!(
                h.find_nick(&format!("n{i}")).is_none(),
                "old nick of {i} freed"
            );
        }
    }
    // A freed nick can be taken, and the taker is found under it.
    let c = user(&mut h, "n0");
    assert_eq!(h.find_nick("N0").map(|u| u.id), Some(c));
    h.check_invariants().unwrap();
}

#[test]
fn channel_messages_reach_every_other_member_in_order() {
    let mut h = hub();
    let ids: Vec<ConnId> = (0..4).map(|i| user(&mut h, &format!("u{i}"))).collect();
    for &id in &ids[..3] {
        h.join(id, "#a", None, false, T).unwrap();
    }
    for &id in &ids {
        drain(&h, id);
    }
    h.message(ids[0], "#a", "one", MsgKind::Privmsg, "", T)
        .unwrap();
    h.message(ids[1], "#a", "two", MsgKind::Privmsg, "", T)
        .unwrap();
    assert_eq!(drain(&h, ids[0]), "[u1] two\n");
    assert_eq!(drain(&h, ids[1]), "[u0] one\n");
    assert_eq!(drain(&h, ids[2]), "[u0] one\n[u1] two\n");
    assert_eq!(drain(&h, ids[3]), "", "not a member");
}

#[test]
fn departed_users_never_receive_and_others_are_told() {
    let mut h = hub();
    let a = user(&mut h, "a");
    let b = user(&mut h, "b");
    h.join(a, "#x", None, false, T).unwrap();
    h.join(b, "#x", None, false, T).unwrap();
    drain(&h, a);
    h.quit(b, "gone", T);
    assert!(h.user(b).is_none());
    assert_eq!(h.channel("#x").unwrap().members.len(), 1);
    assert_eq!(drain(&h, a), "[server] b is disconnected\n");
    assert_eq!(
        h.message(a, "b", "hi", MsgKind::Privmsg, "", T)
            .unwrap_err(),
        HubError::NoSuchNick("b".into())
    );
    h.quit(a, "gone", T);
    assert!(h.channel("#x").is_none(), "empty channels disappear");
    assert!(h.channel("#lobby").is_some(), "the default channel stays");
}

#[test]
fn a_full_send_queue_drops_only_that_client() {
    let mut h = hub_with(|c| c.limits.send_queue = 4096);
    let talker = user(&mut h, "talker");
    let reader = user(&mut h, "reader");
    let sleeper = user(&mut h, "sleeper");
    for id in [talker, reader, sleeper] {
        h.join(id, "#x", None, false, T).unwrap();
    }
    let sleeper_peer = h.user(sleeper).unwrap().peer.clone();
    let line = "x".repeat(100);
    let mut received = 0;
    for _ in 0..100 {
        h.message(talker, "#x", &line, MsgKind::Privmsg, "", T)
            .unwrap();
        received += drain(&h, reader).matches("[talker]").count();
    }
    assert_eq!(received, 100, "the reading client got everything");
    assert!(h.user(sleeper).is_none(), "the sleeper was dropped");
    assert_eq!(
        sleeper_peer.out.closed(),
        Some(crate::outbox::Closed::Overflow)
    );
}

#[test]
fn first_joiner_is_operator_except_in_the_default_channel() {
    let mut h = hub();
    let a = user(&mut h, "a");
    let b = user(&mut h, "b");
    h.join(a, "#new", None, false, T).unwrap();
    h.join(b, "#new", None, false, T).unwrap();
    let ch = h.channel("#new").unwrap();
    assert!(ch.member(a).unwrap().op);
    assert!(!ch.member(b).unwrap().op);
    h.join(a, "#lobby", None, false, T).unwrap();
    assert!(!h.channel("#lobby").unwrap().member(a).unwrap().op);
    // Anyone may set the lobby's topic; only ops may in a +t channel.
    assert!(h.set_topic(b, "#lobby", "hi", T).is_err(), "not a member");
    h.join(b, "#lobby", None, false, T).unwrap();
    assert!(h.set_topic(b, "#lobby", "hi", T).is_ok());
    assert_eq!(
        h.set_topic(b, "#new", "hi", T),
        Err(HubError::ChanOpPrivsNeeded("#new".into()))
    );
}

#[test]
fn kill_is_for_operators_only() {
    let mut h = hub();
    let a = user(&mut h, "a");
    let b = user(&mut h, "b");
    assert_eq!(h.kill(a, "b", "x", T), Err(HubError::NoPrivileges));
    let modes = h.user(a).unwrap().modes;
    h.set_modes(
        a,
        UserModes {
            oper: true,
            ..modes
        },
    );
    assert_eq!(
        h.kill(a, "nobody", "x", T),
        Err(HubError::NoSuchNick("nobody".into()))
    );
    let bpeer = h.user(b).unwrap().peer.clone();
    h.kill(a, "B", "bye", T).unwrap();
    assert!(h.user(b).is_none());
    let got = bpeer.out.take(Default::default());
    assert_eq!(got.data.to_vec(), b"[a] bye\n");
    assert_eq!(got.closed, Some(crate::outbox::Closed::Closing));
}

#[test]
fn nick_change_is_seen_once_by_each_neighbour() {
    let mut h = hub();
    let a = user(&mut h, "a");
    let b = user(&mut h, "b");
    for c in ["#1", "#2", "#3"] {
        h.join(a, c, None, false, T).unwrap();
        h.join(b, c, None, false, T).unwrap();
    }
    drain(&h, b);
    h.set_nick(a, "z", T).unwrap();
    assert_eq!(drain(&h, b), "[server] a is now known as z\n");
    assert_eq!(h.whowas("a").count(), 1);
}

#[test]
fn channels_per_user_limit() {
    let mut h = hub_with(|c| c.limits.channels_per_user = 2);
    let a = user(&mut h, "a");
    h.join(a, "#1", None, false, T).unwrap();
    h.join(a, "#2", None, false, T).unwrap();
    assert_eq!(
        h.join(a, "#3", None, false, T),
        Err(HubError::TooManyChannels("#3".into()))
    );
}

#[test]
fn host_is_a_safe_parameter() {
    let shown = |ip: &str| Host(ip.parse::<IpAddr>().unwrap()).to_string();
    assert_eq!(shown("::1"), "0::1");
    assert_eq!(shown("::ffff:10.0.0.1"), "10.0.0.1");
    assert_eq!(shown("2001:db8::1"), "2001:db8::1");
    assert_eq!(shown("192.0.2.7"), "192.0.2.7");
}

#[test]
fn host_is_written_as_displayed() {
    for ip in [
        "0.0.0.0",
        "127.0.0.1",
        "9.99.100.255",
        "10.0.12.3",
        "::1",
        "::ffff:192.168.1.20",
        "2001:db8::42",
        "fe80::1:2:3:4",
    ] {
        let host = Host(ip.parse::<IpAddr>().unwrap());
        let shown = host.to_string();
        let mut out = b"x@".to_vec();
        host.put(&mut out);
        assert_eq!(&out[2..], shown.as_bytes(), "{ip}");
        assert_eq!(host.len(), shown.len(), "{ip}");
    }
}

/// Members alternating between dialects and capability sets each get their
/// own encoding (fan-out reuses the previous member's only when it matches).
#[test]
fn fanout_encodes_per_dialect_and_caps_in_any_member_order() {
    let mut h = hub();
    let irc = |h: &mut Hub, nick: &str, caps: u32| {
        let id = h.next_conn_id();
        let peer = Arc::new(Peer::new(id, &crate::irc::render::IRC, 1 << 20));
        peer.set_caps(caps);
        h.connect(peer, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)), T);
        h.set_nick(id, nick, T).unwrap();
        h.register(id, "u", "real");
        id
    };
    let sender = user(&mut h, "sender");
    let members = [
        irc(&mut h, "plain1", 0),
        irc(&mut h, "timed1", cap::SERVER_TIME),
        irc(&mut h, "timed2", cap::SERVER_TIME),
        user(&mut h, "line1"),
        irc(&mut h, "plain2", 0),
        user(&mut h, "line2"),
        irc(&mut h, "timed3", cap::SERVER_TIME | cap::AWAY_NOTIFY),
    ];
    for &id in std::iter::once(&sender).chain(&members) {
        h.join(id, "#mix", None, false, T).unwrap();
    }
    for &id in std::iter::once(&sender).chain(&members) {
        drain(&h, id);
    }
    h.message_parts(sender, "#mix", "hi", &[], MsgKind::Privmsg, "", T)
        .unwrap();
    let plain = ":sender!u@127.0.0.1 PRIVMSG #mix :hi\r\n";
    let timed = format!("@time=2023-11-14T22:13:20.000Z {plain}");
    let want = [
        plain.to_string(),
        timed.clone(),
        timed.clone(),
        "[sender] hi\n".to_string(),
        plain.to_string(),
        "[sender] hi\n".to_string(),
        timed,
    ];
    for (id, want) in members.iter().zip(want) {
        assert_eq!(drain(&h, *id), want, "member {id}");
    }
}

#[test]
fn lusers_counts_follow_registration_modes_and_leaving() {
    let counts = |registered, invisible, opers| Counts {
        registered,
        invisible,
        opers,
    };
    let modes = |h: &Hub, id| h.user(id).unwrap().modes;
    let mut h = hub();
    // Connected, not registered: counted nowhere (LUSERS says "unknown").
    let id = h.next_conn_id();
    let peer = Arc::new(Peer::new(id, &LINE, 1 << 20));
    h.connect(peer, IpAddr::V4(Ipv4Addr::LOCALHOST), T);
    // +i before registering counts as invisible only once registered.
    h.set_modes(
        id,
        UserModes {
            invisible: true,
            ..modes(&h, id)
        },
    );
    assert_eq!(h.counts(), counts(0, 0, 0));
    h.set_nick(id, "early", T).unwrap();
    h.register(id, "u", "real");
    h.register(id, "u", "again");
    assert_eq!(h.counts(), counts(1, 1, 0), "registering twice counts once");
    let b = user(&mut h, "b");
    assert_eq!(h.counts(), counts(2, 1, 0));
    h.set_modes(
        b,
        UserModes {
            oper: true,
            invisible: true,
            ..modes(&h, b)
        },
    );
    assert_eq!(h.counts(), counts(2, 2, 1));
    // Setting the same modes again changes nothing.
    h.set_modes(b, modes(&h, b));
    assert_eq!(h.counts(), counts(2, 2, 1));
    h.set_modes(
        b,
        UserModes {
            invisible: false,
            ..modes(&h, b)
        },
    );
    assert_eq!(h.counts(), counts(2, 1, 1));
    // An invisible operator leaving takes both with it.
    h.set_modes(
        b,
        UserModes {
            invisible: true,
            ..modes(&h, b)
        },
    );
    h.quit(b, "bye", T);
    assert_eq!(h.counts(), counts(1, 1, 0));
    h.quit(id, "bye", T);
    assert_eq!(h.counts(), counts(0, 0, 0));
    h.check_invariants().unwrap();
}

#[test]
fn names_keep_each_part_through_changes() {
    // (nick, key, user, real name): a nick that is its own key stores it
    // once; one whose key differs stores both.
    let cases = [
        ("alice", "alice", "al", "Alice Liddell"),
        ("Bob[1]", "bob{1}", "b", ""),
        ("", "", "", ""),
        ("évé", "évé", "ü", "réel : nom avec espaces"),
    ];
    for (nick, key, user, real) in cases {
        let n = Names::new(nick, key, user, real);
        assert_eq!(
            (n.nick(), n.key(), n.user(), n.realname()),
            (nick, key, user, real)
        );
        assert_eq!(n.folded == 0, nick == key, "{nick}");
    }
    // A realname longer than the 16-bit counts is kept whole; a nick that
    // long is cut at a character boundary.
    let long = "é".repeat(40_000);
    let n = Names::new("n", "n", "u", &long);
    assert_eq!(n.realname(), long);
    let n = Names::new(&long, &long, "u", "r");
    assert!(n.nick().len() <= u16::MAX as usize && long.starts_with(n.nick()));
    assert_eq!((n.user(), n.realname()), ("u", "r"));
}

#[test]
fn nick_changes_keep_user_and_realname() {
    let mut h = hub();
    let id = user(&mut h, "alice");
    h.set_nick(id, "ALICE", T).unwrap();
    h.set_realname(id, "new real", T);
    let u = h.user(id).unwrap();
    assert_eq!(
        (u.nick(), u.nick_key(), u.user(), u.realname()),
        ("ALICE", "alice", "u", "new real")
    );
    assert_eq!(u.prefix(), "ALICE!u@127.0.0.1");
    h.check_invariants().unwrap();
}
