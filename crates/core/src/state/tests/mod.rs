//! The network driven through changes alone: each test applies changes and
//! asserts the notifications they leave (who is told what), resolving
//! audiences the way delivery does.

use std::net::{IpAddr, Ipv4Addr};

use super::changes::*;
use super::*;
use crate::deliver::Directory;
use crate::effect::Effect;
use crate::ids::IdGen;
use crate::notify::{MsgKind, Source};
use crate::session::Output;

const T: Millis = 1_700_000_000_000;

struct World {
    net: Network,
    ids: IdGen,
    /// Every user is local here: audiences resolve to the users they reach.
    dir: Directory<ConnId>,
}

impl World {
    fn new() -> World {
        World::with(|_| {})
    }

    fn with(f: impl FnOnce(&mut CoreConfig)) -> World {
        let mut c = CoreConfig::default();
        f(&mut c);
        World {
            net: Network::new(Arc::new(c), T),
            ids: IdGen::new(0),
            dir: Directory::default(),
        }
    }

    /// Applies `c`; returns its result and who was told what, in order.
    fn apply<C: Change>(&mut self, c: C) -> (Result<C::Output, ChangeError>, Told) {
        let mut out = Outputs::default();
        let r = self.net.apply(c, &mut out, T);
        let mut told = Told::default();
        for item in out.items {
            if let Output::Note(n) = item {
                let mut to = Vec::new();
                self.dir.plan(&n, |id, _| to.push(id));
                to.sort();
                told.notes.push((to, n.event));
            }
        }
        told.later = out.later;
        (r, told)
    }

    /// Applies `c`, which must succeed.
    fn ok<C: Change>(&mut self, c: C) -> Told {
        let (r, told) = self.apply(c);
        assert!(r.is_ok(), "{:?}", r.err());
        told
    }

    fn user(&mut self, nick: &str) -> ConnId {
        let id = self.ids.next_conn();
        self.dir.attach(id, id);
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        self.ok(Connect {
            id,
            ip,
            secure: false,
            certfp: None,
        });
        let nick = self.net.validate_nick(nick).unwrap();
        self.ok(SetNick { id, nick });
        self.ok(Register {
            id,
            user: "u".into(),
            realname: "real".into(),
        });
        id
    }

    fn join(&mut self, id: ConnId, chan: &str) -> Result<bool, ChangeError> {
        let channel = self.net.validate_channel(chan)?;
        let founder = self.net.channel(chan).is_none();
        self.apply(Join {
            id,
            channel,
            key: None,
            on_connect: false,
            founder,
        })
        .0
        .map(|joined| joined.is_some())
    }

    fn say(
        &mut self,
        from: ConnId,
        target: &str,
        text: &str,
    ) -> (Result<MessageSent, ChangeError>, Told) {
        self.apply(Message {
            from,
            target: target.into(),
            text: text.into(),
            parts: Vec::new(),
            kind: MsgKind::Privmsg,
            client_tags: String::new(),
        })
    }

    fn set_nick(&mut self, id: ConnId, nick: &str) -> (Result<Source, ChangeError>, Told) {
        match self.net.validate_nick(nick) {
            Ok(nick) => {
                let (r, told) = self.apply(SetNick { id, nick });
                (r.map(|(old, _)| old), told)
            }
            Err(e) => (Err(e), Told::default()),
        }
    }

    fn quit(&mut self, id: ConnId) -> Told {
        let told = self.ok(Quit {
            id,
            reason: "bye".into(),
        });
        self.dir.detach(id);
        told
    }

    fn oper(&mut self, id: ConnId) {
        let modes = UserModes {
            oper: true,
            ..self.net.user(id).unwrap().modes
        };
        self.ok(SetUserModes { id, modes });
    }
}

/// The notifications of one change: recipients (sorted) and event.
#[derive(Debug, Default)]
struct Told {
    notes: Vec<(Vec<ConnId>, Event)>,
    later: Vec<Effect>,
}

impl Told {
    /// Who got an event of this kind.
    fn who(&self, kind: fn(&Event) -> bool) -> Vec<ConnId> {
        self.notes
            .iter()
            .filter(|(_, e)| kind(e))
            .flat_map(|(to, _)| to.clone())
            .collect()
    }
}

fn is_message(e: &Event) -> bool {
    matches!(e, Event::Message { .. })
}

#[test]
fn nicks_are_unique_case_insensitively() {
    let mut w = World::new();
    let a = w.user("Alice");
    let b = w.user("bob");
    let cases: &[(&str, Result<(), ChangeError>)] = &[
        ("alice", Err(ChangeError::NicknameInUse("alice".into()))),
        ("ALICE", Err(ChangeError::NicknameInUse("ALICE".into()))),
        ("1bad", Err(ChangeError::ErroneousNickname("1bad".into()))),
        ("bob", Ok(())),
        ("Bob", Ok(())),
        ("carol", Ok(())),
    ];
    for (nick, want) in cases {
        assert_eq!(&w.set_nick(b, nick).0.map(|_| ()), want, "{nick}");
    }
    assert_eq!(w.net.find_nick("CAROL").map(|u| u.id), Some(b));
    assert!(w.net.find_nick("bob").is_none(), "old nick freed");
    w.quit(a);
    assert!(
        w.set_nick(b, "alice").0.is_ok(),
        "a departed user's nick is free"
    );
    w.net.check_invariants().unwrap();
}

/// The nick index stores only ids and reads keys from the users: it must
/// stay right through many resizes, renames (case changes included) and
/// departures.
#[test]
fn nick_index_survives_growth_renames_and_departures() {
    let mut w = World::new();
    let ids: Vec<ConnId> = (0..3000).map(|i| w.user(&format!("n{i}"))).collect();
    for (i, &id) in ids.iter().enumerate() {
        let nick = if i % 2 == 0 {
            format!("Renamed{i}")
        } else {
            format!("N{i}")
        };
        w.set_nick(id, &nick).0.unwrap();
    }
    for (i, &id) in ids.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
        w.quit(id);
        assert!(w.net.find_nick(&format!("n{i}")).is_none());
    }
    w.net.check_invariants().unwrap();
    for (i, &id) in ids.iter().enumerate() {
        let gone = i % 3 == 0;
        let found = w
            .net
            .find_nick(&format!("n{i}"))
            .or_else(|| w.net.find_nick(&format!("RENAMED{i}")));
        assert_eq!(found.map(|u| u.id), (!gone).then_some(id), "user {i}");
    }
    let c = w.user("n0");
    assert_eq!(w.net.find_nick("N0").map(|u| u.id), Some(c));
    w.net.check_invariants().unwrap();
}

#[test]
fn channel_messages_reach_every_other_member_once() {
    let mut w = World::new();
    let ids: Vec<ConnId> = (0..4).map(|i| w.user(&format!("u{i}"))).collect();
    for &id in &ids[..3] {
        w.join(id, "#a").unwrap();
    }
    let (sent, told) = w.say(ids[0], "#a", "one");
    let sent = sent.unwrap();
    assert_eq!((&*sent.target, sent.to_channel), ("#a", true));
    assert_eq!(
        told.who(is_message),
        [ids[1], ids[2]],
        "not the sender, not outsiders"
    );
    let Event::Message {
        from, text, msgid, ..
    } = &told.notes[0].1
    else {
        panic!("{told:?}");
    };
    assert_eq!((from.prefix(), text.as_str()), ("u0!u@127.0.0.1", "one"));
    assert_eq!(*msgid, sent.msgid);
    let (second, _) = w.say(ids[1], "#a", "two");
    assert!(second.unwrap().msgid > sent.msgid, "message ids increase");
    assert_eq!(
        w.say(ids[3], "#a", "no").0.unwrap_err(),
        ChangeError::CannotSendToChan("#a".into()),
        "+n: outsiders cannot send"
    );
}

#[test]
fn private_messages_reach_their_recipient_with_its_away_text() {
    let mut w = World::new();
    let a = w.user("a");
    let b = w.user("b");
    w.ok(SetAway {
        id: b,
        text: Some("lunch".into()),
    });
    let (sent, told) = w.say(a, "B", "hi");
    let sent = sent.unwrap();
    assert_eq!((&*sent.target, sent.away.as_deref()), ("b", Some("lunch")));
    assert_eq!(told.who(is_message), [b]);
    assert_eq!(
        w.say(a, "nobody", "hi").0.unwrap_err(),
        ChangeError::NoSuchNick("nobody".into())
    );
}

#[test]
fn departed_users_never_receive_and_others_are_told() {
    let mut w = World::new();
    let a = w.user("a");
    let b = w.user("b");
    w.join(a, "#x").unwrap();
    w.join(b, "#x").unwrap();
    let told = w.quit(b);
    assert!(w.net.user(b).is_none());
    assert_eq!(w.net.channel("#x").unwrap().members.len(), 1);
    assert_eq!(told.who(|e| matches!(e, Event::Quit { .. })), [a]);
    assert!(told.later.contains(&Effect::ReleaseNick {
        key: "b".into(),
        owner: b
    }));
    assert_eq!(
        w.say(a, "b", "hi").0.unwrap_err(),
        ChangeError::NoSuchNick("b".into())
    );
    let told = w.quit(a);
    assert!(w.net.channel("#x").is_none(), "empty channels disappear");
    assert!(
        told.later
            .contains(&Effect::DropChannel { key: "#x".into() })
    );
    assert!(
        w.net.channel("#lobby").is_some(),
        "the default channel stays"
    );
    w.net.check_invariants().unwrap();
}

#[test]
fn first_joiner_is_operator_except_in_the_default_channel() {
    let mut w = World::new();
    let a = w.user("a");
    let b = w.user("b");
    w.join(a, "#new").unwrap();
    w.join(b, "#new").unwrap();
    let ch = w.net.channel("#new").unwrap();
    assert!(ch.member(a).unwrap().op);
    assert!(!ch.member(b).unwrap().op);
    w.join(a, "#lobby").unwrap();
    assert!(!w.net.channel("#lobby").unwrap().member(a).unwrap().op);
    let topic = |w: &mut World, id, chan: &str| {
        w.apply(SetTopic {
            id,
            channel: chan.into(),
            text: "hi".into(),
        })
        .0
        .map(|_| ())
    };
    // Anyone may set the lobby's topic; only ops may in a +t channel.
    assert!(topic(&mut w, b, "#lobby").is_err(), "not a member");
    w.join(b, "#lobby").unwrap();
    assert!(topic(&mut w, b, "#lobby").is_ok());
    assert_eq!(
        topic(&mut w, b, "#new"),
        Err(ChangeError::ChanOpPrivsNeeded("#new".into()))
    );
}

#[test]
fn joins_reach_the_members_before_the_joiner() {
    let mut w = World::new();
    let a = w.user("a");
    let b = w.user("b");
    w.join(a, "#x").unwrap();
    let channel = w.net.validate_channel("#x").unwrap();
    let told = w.ok(Join {
        id: b,
        channel,
        key: None,
        on_connect: false,
        founder: false,
    });
    assert_eq!(told.who(|e| matches!(e, Event::Join { .. })), [a]);
    // And from then on, b is told too.
    assert_eq!(w.say(a, "#x", "hi").1.who(is_message), [b]);
}

#[test]
fn a_kick_reaches_its_target_then_removes_it() {
    let mut w = World::new();
    let op = w.user("op");
    let t = w.user("t");
    let other = w.user("other");
    for id in [op, t, other] {
        w.join(id, "#x").unwrap();
    }
    let kick = |target: &str| Kick {
        by: op,
        channel: "#x".into(),
        target: target.into(),
        reason: "out".into(),
    };
    let told = w.ok(kick("T"));
    let mut want = vec![t, other];
    want.sort();
    assert_eq!(told.who(|e| matches!(e, Event::Kick { .. })), want);
    assert!(w.net.channel("#x").unwrap().member(t).is_none());
    assert_eq!(w.say(op, "#x", "hi").1.who(is_message), [other]);
    assert_eq!(
        w.apply(kick("t")).0.unwrap_err(),
        ChangeError::UserNotInChannel("#x".into(), "t".into())
    );
    let (r, _) = w.apply(Kick {
        by: other,
        channel: "#x".into(),
        target: "op".into(),
        reason: String::new(),
    });
    assert_eq!(r.unwrap_err(), ChangeError::ChanOpPrivsNeeded("#x".into()));
}

#[test]
fn kill_is_for_operators_only_and_tells_the_target() {
    let mut w = World::new();
    let a = w.user("a");
    let b = w.user("b");
    let kill = |target: &str| Kill {
        by: a,
        target: target.into(),
        reason: "bye".into(),
    };
    assert_eq!(w.apply(kill("b")).0, Err(ChangeError::NoPrivileges));
    w.oper(a);
    assert_eq!(
        w.apply(kill("nobody")).0,
        Err(ChangeError::NoSuchNick("nobody".into()))
    );
    let told = w.ok(kill("B"));
    assert!(w.net.user(b).is_none());
    assert_eq!(told.who(|e| matches!(e, Event::Kill { .. })), [b]);
    let Some((_, Event::Quit { reason, .. })) = told.notes.last() else {
        panic!("{told:?}");
    };
    assert_eq!(reason, "Killed (a (bye))");
}

#[test]
fn nick_change_is_seen_once_by_each_neighbour() {
    let mut w = World::new();
    let a = w.user("a");
    let b = w.user("b");
    let c = w.user("c");
    for ch in ["#1", "#2", "#3"] {
        w.join(a, ch).unwrap();
        w.join(b, ch).unwrap();
    }
    let (old, told) = w.set_nick(a, "z");
    assert_eq!(old.unwrap().prefix(), "a!u@127.0.0.1");
    assert_eq!(
        told.who(|e| matches!(e, Event::Nick { .. })),
        [b],
        "not c: {c}"
    );
    assert_eq!(w.net.whowas("a").count(), 1);
    assert!(told.later.contains(&Effect::ReleaseNick {
        key: "a".into(),
        owner: a
    }));
}

#[test]
fn monitor_watchers_are_told_of_arrivals_and_departures() {
    let mut w = World::new();
    let watcher = w.user("watcher");
    assert!(
        w.ok(Monitor {
            id: watcher,
            nick_key: "alice".into()
        })
        .later
        .is_empty()
    );
    let alice = w.user("alice");
    let told = w.quit(alice);
    let online = |e: &Event| matches!(e, Event::Monitor { online: false, .. });
    assert_eq!(told.who(online), [watcher]);
    w.ok(Unmonitor {
        id: watcher,
        nick_key: None,
    });
    let alice = w.user("alice");
    assert!(
        w.quit(alice)
            .who(|e| matches!(e, Event::Monitor { .. }))
            .is_empty()
    );
}

#[test]
fn channels_per_user_limit() {
    let mut w = World::with(|c| c.limits.channels_per_user = 2);
    let a = w.user("a");
    w.join(a, "#1").unwrap();
    w.join(a, "#2").unwrap();
    assert_eq!(
        w.join(a, "#3"),
        Err(ChangeError::TooManyChannels("#3".into()))
    );
}

#[test]
fn lusers_counts_follow_registration_modes_and_leaving() {
    let counts = |registered, invisible, opers| Counts {
        registered,
        invisible,
        opers,
    };
    let mut w = World::new();
    let set = |w: &mut World, id, f: fn(&mut UserModes)| {
        let mut modes = w.net.user(id).unwrap().modes;
        f(&mut modes);
        w.ok(SetUserModes { id, modes });
    };
    // Connected, not registered: counted nowhere (LUSERS says "unknown").
    let id = w.ids.next_conn();
    w.ok(Connect {
        id,
        ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        secure: false,
        certfp: None,
    });
    // +i before registering counts as invisible only once registered.
    set(&mut w, id, |m| m.invisible = true);
    assert_eq!(w.net.counts(), counts(0, 0, 0));
    let nick = w.net.validate_nick("early").unwrap();
    w.ok(SetNick { id, nick });
    for realname in ["real", "again"] {
        w.ok(Register {
            id,
            user: "u".into(),
            realname: realname.into(),
        });
    }
    assert_eq!(
        w.net.counts(),
        counts(1, 1, 0),
        "registering twice counts once"
    );
    let b = w.user("b");
    assert_eq!(w.net.counts(), counts(2, 1, 0));
    set(&mut w, b, |m| {
        m.oper = true;
        m.invisible = true
    });
    assert_eq!(w.net.counts(), counts(2, 2, 1));
    set(&mut w, b, |_| {});
    assert_eq!(w.net.counts(), counts(2, 2, 1), "the same modes again");
    set(&mut w, b, |m| m.invisible = false);
    assert_eq!(w.net.counts(), counts(2, 1, 1));
    set(&mut w, b, |m| m.invisible = true);
    w.quit(b);
    assert_eq!(w.net.counts(), counts(1, 1, 0));
    w.quit(id);
    assert_eq!(w.net.counts(), counts(0, 0, 0));
    w.net.check_invariants().unwrap();
}

#[test]
fn nick_changes_keep_user_and_realname() {
    let mut w = World::new();
    let id = w.user("alice");
    w.set_nick(id, "ALICE").0.unwrap();
    w.ok(SetRealname {
        id,
        realname: "new real".into(),
    });
    let u = w.net.user(id).unwrap();
    assert_eq!(
        (u.nick(), u.nick_key(), u.user(), u.realname()),
        ("ALICE", "alice", "u", "new real")
    );
    assert_eq!(u.prefix(), "ALICE!u@127.0.0.1");
    w.net.check_invariants().unwrap();
}

#[test]
fn invites_reach_the_target_and_the_other_operators() {
    let mut w = World::new();
    let op = w.user("op");
    let op2 = w.user("op2");
    let t = w.user("t");
    w.join(op, "#x").unwrap();
    w.join(op2, "#x").unwrap();
    w.ok(SetChannelModes {
        by: op,
        channel: "#x".into(),
        changes: vec![
            ModeChange::new(true, 'o', Some("op2".into())),
            ModeChange::new(true, 'i', None),
        ],
    });
    assert_eq!(
        w.join(t, "#x"),
        Err(ChangeError::InviteOnlyChan("#x".into()))
    );
    let told = w.ok(Invite {
        by: op,
        target: "t".into(),
        channel: "#X".into(),
    });
    let direct = |e: &Event| matches!(e, Event::Invite { notify: false, .. });
    let notify = |e: &Event| matches!(e, Event::Invite { notify: true, .. });
    assert_eq!((told.who(direct), told.who(notify)), (vec![t], vec![op2]));
    assert_eq!(w.join(t, "#x"), Ok(true), "invited past +i");
}

mod ircv3;
