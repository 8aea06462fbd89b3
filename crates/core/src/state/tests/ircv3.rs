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
    // other member; the old name goes back to the registry.
    let shared = |e: &Event| matches!(e, Event::Rename { to: None, .. });
    let own = |e: &Event| matches!(e, Event::Rename { to: Some(_), .. });
    assert_eq!(told.who(shared), [b]);
    assert_eq!(told.who(own), [b]);
    assert_eq!(told.later, [Effect::DropChannel { key: "#old".into() }]);
    assert!(w.net.channel("#old").is_none());
    let ch = w.net.channel("#new").unwrap();
    assert_eq!((ch.name.as_str(), ch.key.as_str()), ("#New", "#new"));
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
    assert_eq!(w.net.channel("#new").unwrap().name, "#NEW");
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
