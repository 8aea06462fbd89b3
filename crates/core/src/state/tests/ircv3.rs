//! Changes behind the IRCv3 drafts: channel rename, read markers, redaction,
//! metadata; who is told what.

use super::*;
use crate::state::rename::Rename;

fn rename(w: &mut World, by: ConnId, from: &str, to: &str) -> (Result<(), ChangeError>, Told) {
    let new = w.net.validate_channel(to).unwrap();
    let (r, told) = w.apply(Rename {
        by,
        channel: from.into(),
        new,
        reason: "why".into(),
    });
    (r.map(|_| ()), told)
}

#[test]
fn a_rename_moves_the_channel_and_its_room() {
    let mut w = World::new();
    let (a, b, c) = (w.user("a"), w.user("b"), w.user("c"));
    for id in [a, b] {
        w.join(id, "#old").unwrap();
    }
    w.join(c, "#other").unwrap();
    w.net.check_invariants().unwrap();
    let (r, told) = rename(&mut w, a, "#OLD", "#New");
    r.unwrap();
    // One shared copy for the channel but the renamer, then one for each
    // other member; the old name goes back to the registry, the history
    // and the read markers move to the new one.
    let shared = |e: &Event| matches!(e, Event::Rename { to: None, .. });
    let own = |e: &Event| matches!(e, Event::Rename { to: Some(_), .. });
    assert_eq!(told.who(shared), [b]);
    assert_eq!(told.who(own), [b]);
    let moved = Effect::RenameHistory {
        from: "channel:#old".into(),
        to: "channel:#new".into(),
    };
    let markers = Effect::RenameReadMarkers {
        from: "#old".into(),
        to: "#new".into(),
    };
    let dropped = Effect::DropChannel { key: "#old".into() };
    assert_eq!(told.later, [moved, markers, dropped]);
    assert!(w.net.channel("#old").is_none());
    let ch = w.net.channel("#new").unwrap();
    assert_eq!((&*ch.name, &*ch.key), ("#New", "#new"));
    assert_eq!(w.net.user(b).unwrap().channels.to_vec(), ["#new"]);
    w.net.check_invariants().unwrap();
    w.dir.check(&w.net).unwrap();
    // Messages follow the new name.
    let (_, told) = w.say(b, "#new", "hi");
    assert_eq!(told.who(is_message), [a]);
    // A taken name, a non-operator, the default channel.
    assert_eq!(
        rename(&mut w, a, "#new", "#other").0,
        Err(ChangeError::ChannelNameInUse(
            "#New".into(),
            "#other".into()
        ))
    );
    assert_eq!(
        rename(&mut w, b, "#new", "#x").0,
        Err(ChangeError::ChanOpPrivsNeeded("#New".into()))
    );
    w.join(a, "#lobby").unwrap();
    assert!(matches!(
        rename(&mut w, a, "#lobby", "#hall").0,
        Err(ChangeError::CannotRename(..))
    ));
    // A change of case only: no registry change.
    let (r, told) = rename(&mut w, a, "#new", "#NEW");
    r.unwrap();
    assert!(told.later.is_empty());
    assert_eq!(&*w.net.channel("#new").unwrap().name, "#NEW");
    w.dir.check(&w.net).unwrap();
}

#[test]
fn a_lone_renamer_moves_the_room_too() {
    let mut w = World::new();
    let a = w.user("a");
    w.join(a, "#solo").unwrap();
    let (r, told) = rename(&mut w, a, "#solo", "#duo");
    r.unwrap();
    assert!(told.notes.iter().all(|(to, _)| to.is_empty()));
    w.dir.check(&w.net).unwrap();
}

fn redact_at(
    w: &mut World,
    by: ConnId,
    target: &str,
    id: MsgId,
    now: Millis,
) -> Result<(), ChangeError> {
    let mut out = Outputs::default();
    let change = crate::state::redact::Redact {
        by,
        target: target.into(),
        msgid: id.to_string(),
        reason: None,
    };
    w.net.apply(change, &mut out, now).map(|_| ())
}

#[test]
fn a_message_is_redactable_for_the_window_and_no_longer() {
    let mut w = World::with(|c| c.limits.redact_window = 10);
    let (a, b) = (w.user("a"), w.user("b"));
    w.join(a, "#w").unwrap();
    w.join(b, "#w").unwrap();
    let first = w.say(b, "#w", "one").0.unwrap().msgid;
    let second = w.say(b, "#w", "two").0.unwrap().msgid;
    // The window's last millisecond still counts; the next one does not.
    assert_eq!(redact_at(&mut w, b, "#w", first, T + 10_000), Ok(()));
    assert_eq!(
        redact_at(&mut w, b, "#w", second, T + 10_001),
        Err(ChangeError::RedactWindowExpired(
            "#w".into(),
            second.to_string(),
            10
        ))
    );
    // The operator may redact b's message; b may not redact the operator's.
    let third = w.say(b, "#w", "three").0.unwrap().msgid;
    let ops = w.say(a, "#w", "ops").0.unwrap().msgid;
    assert_eq!(
        redact_at(&mut w, b, "#w", ops, T),
        Err(ChangeError::RedactForbidden("#w".into(), ops.to_string()))
    );
    let mut out = Outputs::default();
    let change = crate::state::redact::Redact {
        by: a,
        target: "#W".into(),
        msgid: third.to_string(),
        reason: Some("no".into()),
    };
    w.net.apply(change, &mut out, T).unwrap();
    let told: Vec<_> = out.notes().cloned().collect();
    assert_eq!(told.len(), 1);
    assert!(matches!(
        &told[0].event,
        Event::Redact { author, target, .. } if author == "b" && target == "#w"
    ));
    assert_eq!(
        told[0].audience,
        Audience::Channel {
            key: "#w".into(),
            except: Some(a)
        }
    );
}

#[test]
fn markers_move_forward_up_to_now_and_follow_the_nick() {
    let mut w = World::new();
    let a = w.user("a");
    let mark = |w: &mut World, at: Millis| {
        w.apply(crate::state::markers::MarkRead {
            id: a,
            target: "#M".into(),
            at,
        })
        .0
        .unwrap()
    };
    assert_eq!(mark(&mut w, T - 5), T - 5);
    assert_eq!(mark(&mut w, T - 9), T - 5, "never back");
    assert_eq!(mark(&mut w, T + 1_000_000), T, "never past now");
    w.set_nick(a, "renamed").0.unwrap();
    assert_eq!(w.net.read_marker(a, "#m"), Some(T));
    w.quit(a);
    assert!(w.net.read_markers().is_empty());
}

#[test]
fn metadata_changes_reach_subscribers_who_share_a_channel_or_watch() {
    use crate::state::metadata::{MetaTarget, SetMetadata, Subscribe};
    let mut w = World::new();
    let (a, b, c, d, e) = (
        w.user("a"),
        w.user("b"),
        w.user("c"),
        w.user("d"),
        w.user("e"),
    );
    for id in [a, b, c] {
        w.join(id, "#m").unwrap();
    }
    for id in [a, b, d] {
        w.ok(Subscribe {
            id,
            keys: vec!["k".into()],
        });
    }
    // d watches a without sharing a channel; e shares nothing.
    w.ok(Monitor {
        id: d,
        nick_key: "a".into(),
    });
    let set = |w: &mut World, target: MetaTarget, value: Option<&str>| {
        w.ok(SetMetadata {
            by: a,
            target,
            key: "k".into(),
            value: value.map(str::to_string),
        })
    };
    let is_md = |e: &Event| matches!(e, Event::Metadata { .. });
    // b subscribes and shares #m, d watches; c is not subscribed, a made it.
    let told = set(&mut w, MetaTarget::Me, Some("v"));
    assert_eq!(told.who(is_md), [b, d]);
    assert_eq!(w.net.user(a).unwrap().metadata().get("k"), Some("v"));
    let told = set(&mut w, MetaTarget::Channel("#m".into()), Some("v"));
    assert_eq!(told.who(is_md), [b], "a channel's members only");
    let told = set(&mut w, MetaTarget::Me, None);
    assert_eq!(told.who(is_md), [b, d]);
    assert!(w.net.user(a).unwrap().metadata().is_empty());
    let _ = e;
    w.net.check_invariants().unwrap();
}
