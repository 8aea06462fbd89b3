//! IRCv3 drafts over real TCP: `draft/channel-rename`, `draft/read-marker`
//! and `draft/message-redaction`, their errors and edges, and what line
//! users see of them.

mod support;

use support::irc::{IrcClient as Client, Msg, ask, cmds, join};
use support::line::LineClient;
use support::server::Server;

// -------------------------------------------------------------- channel-rename

const RENAME: &str = "draft/channel-rename";

#[tokio::test]
async fn rename_keeps_the_channel_and_tells_each_member_its_way() {
    let s = Server::start_default().await;
    let mut alice = Client::registered_with_caps(s.irc, "alice", &[RENAME]).await;
    join(&mut alice, "#old").await;
    ask(&mut alice, "TOPIC #old :the topic").await;
    ask(&mut alice, "MODE #old +sk sesame").await;
    let mut carol = Client::registered_with_caps(s.irc, "carol", &[RENAME]).await;
    let mut bob = Client::registered_with_caps(s.irc, "bob", &["multi-prefix"]).await;
    for c in [&mut carol, &mut bob] {
        join(c, "#old sesame").await;
    }
    ask(&mut alice, "MODE #old +v bob").await;
    let mut line = LineClient::connect(s.line).await;
    line.send("JOIN #old sesame").await;
    line.until("[server] You joined #old").await;
    for c in [&mut alice, &mut carol, &mut bob] {
        c.sync().await;
    }

    let r = ask(&mut alice, "RENAME #old #New :tidy up").await;
    assert_eq!(cmds(&r), ["RENAME"]);
    assert_eq!(r[0].params, ["#old", "#New", "tidy up"]);
    assert!(r[0].source.as_deref().unwrap().starts_with("alice!"));
    let got = carol.sync().await;
    assert_eq!(cmds(&got), ["RENAME"]);
    assert_eq!(got[0].params, ["#old", "#New", "tidy up"]);
    // Without the capability: PART, JOIN, topic and names of the new name.
    let got = bob.sync().await;
    assert_eq!(cmds(&got), ["PART", "JOIN", "332", "333", "353", "366"]);
    assert!(got[0].source.as_deref().unwrap().starts_with("bob!"));
    assert_eq!(got[0].params, ["#old", "tidy up"]);
    assert_eq!(got[1].params, ["#New"]);
    assert_eq!(got[2].params, ["bob", "#New", "the topic"]);
    assert_eq!(got[4].params[..3], ["bob", "@", "#New"]);
    let names: Vec<&str> = got[4].params[3].split(' ').collect();
    assert_eq!(names[..3], ["@alice", "carol", "+bob"]);
    assert_eq!(got[5].params[1], "#New");
    line.until("[server] alice renamed #old to #New (tidy up)")
        .await;

    // Everything stayed: modes, topic, key, members; the line user talks there.
    let r = ask(&mut bob, "MODE #new").await;
    assert_eq!(r[0].params[1..], ["#New", "+nstk", "sesame"]);
    line.send("MSG still here").await;
    let m = alice.expect("PRIVMSG").await;
    assert_eq!(m.params, ["#New", "still here"]);
    bob.sync().await;
    assert_eq!(cmds(&ask(&mut bob, "PRIVMSG #old :hello?").await), ["403"]);
    // The old name is free: a newcomer founds it.
    let mut dave = Client::registered(s.irc, "dave").await;
    let r = ask(&mut dave, "JOIN #old").await;
    let names = r.iter().find(|m| m.command == "353").unwrap();
    assert_eq!(names.params[3], "@dave");
}

#[tokio::test]
async fn rename_refusals_and_case_changes() {
    let s = Server::start_default().await;
    let mut op = Client::registered_with_caps(s.irc, "op", &[RENAME]).await;
    let mut plain = Client::registered(s.irc, "plain").await;
    join(&mut op, "#a").await;
    join(&mut op, "#b").await;
    join(&mut plain, "#a").await;
    op.sync().await;
    let r = ask(&mut plain, "RENAME #a #c").await;
    assert_eq!(cmds(&r), ["482"]);
    let r = ask(&mut plain, "RENAME #b #c").await;
    assert_eq!(cmds(&r), ["442"]);
    let r = ask(&mut plain, "RENAME #none #c").await;
    assert_eq!(cmds(&r), ["403"]);
    let r = ask(&mut plain, "RENAME #a").await;
    assert_eq!(cmds(&r), ["461"]);
    let r = ask(&mut op, "RENAME #a #B :taken").await;
    assert_eq!(cmds(&r), ["FAIL"]);
    assert_eq!(
        r[0].params[..4],
        ["RENAME", "CHANNEL_NAME_IN_USE", "#a", "#B"]
    );
    let long = format!("#{}", "x".repeat(50));
    for bad in ["nohash", "#a,b", &long] {
        let r = ask(&mut op, &format!("RENAME #a {bad}")).await;
        assert_eq!(
            r[0].params[..4],
            ["RENAME", "CANNOT_RENAME", "#a", bad],
            "{bad}"
        );
    }
    // The default channel keeps its name, whoever asks.
    join(&mut plain, "#lobby").await;
    let r = ask(&mut plain, "RENAME #lobby #hall").await;
    assert_eq!(
        r[0].params[..4],
        ["RENAME", "CANNOT_RENAME", "#lobby", "#hall"]
    );
    plain.sync().await;
    // Only the case changes: shown to clients with the capability alone.
    let r = ask(&mut op, "RENAME #a #A").await;
    assert_eq!(r[0].params, ["#a", "#A", ""]);
    assert!(plain.sync().await.is_empty());
    let r = ask(&mut plain, "NAMES #a").await;
    assert_eq!(r[0].params[2], "#A");
    // A renamer without the capability gets the fallback itself.
    let mut old = Client::registered(s.irc, "oldie").await;
    join(&mut old, "#x").await;
    let r = ask(&mut old, "RENAME #x #y").await;
    assert_eq!(cmds(&r), ["PART", "JOIN", "353", "366"]);
    assert_eq!(r[0].params, ["#x"]);
}

// ----------------------------------------------------------------- read-marker

const MARKER: &str = "draft/read-marker";
const TS1: &str = "2019-06-01T12:00:00.000Z";
const TS0: &str = "2019-01-01T00:00:00.000Z";

/// The MARKREAD lines of a reply, as (target, value).
fn markers(ms: &[Msg]) -> Vec<(String, String)> {
    ms.iter()
        .filter(|m| m.command == "MARKREAD")
        .map(|m| (m.params[0].to_string(), m.params[1].to_string()))
        .collect()
}

fn mark(target: &str, value: &str) -> Vec<(String, String)> {
    vec![(target.to_string(), value.to_string())]
}

#[tokio::test]
async fn markread_sets_gets_and_never_goes_back() {
    let s = Server::start_default().await;
    let mut a = Client::registered_with_caps(s.irc, "alice", &[MARKER]).await;
    assert_eq!(markers(&ask(&mut a, "MARKREAD #c").await), mark("#c", "*"));
    let set = ask(&mut a, &format!("MARKREAD #c timestamp={TS1}")).await;
    assert_eq!(markers(&set), mark("#c", &format!("timestamp={TS1}")));
    // Older: the stored, newer value comes back; the case of the name is free.
    let old = ask(&mut a, &format!("MARKREAD #C timestamp={TS0}")).await;
    assert_eq!(markers(&old), mark("#C", &format!("timestamp={TS1}")));
    // A nick is a conversation too, whether or not it is online.
    let set = ask(&mut a, &format!("MARKREAD Bob timestamp={TS0}")).await;
    assert_eq!(markers(&set), mark("Bob", &format!("timestamp={TS0}")));
    // The future is now: a later time is clamped to the server's clock.
    let r = ask(&mut a, "MARKREAD #c timestamp=2999-01-01T00:00:00.000Z").await;
    let got = markers(&r)[0].1.clone();
    assert!(
        got.as_str() > "timestamp=2020" && got.as_str() < "timestamp=2999",
        "{got}"
    );
    // JOIN sends the marker before the end of NAMES (here, a later time).
    let r = ask(&mut a, "JOIN #c").await;
    let i = r.iter().position(|m| m.command == "MARKREAD").unwrap();
    assert_eq!(r[i + 1].command, "366");
    assert_eq!(markers(&r), mark("#c", &got));
    let r = ask(&mut a, "JOIN #fresh").await;
    assert_eq!(markers(&r), mark("#fresh", "*"));
    // Markers follow the nick.
    ask(&mut a, "NICK alys").await;
    assert_eq!(
        markers(&ask(&mut a, "MARKREAD bob").await)[0].1,
        format!("timestamp={TS0}")
    );
    // Without the capability, JOIN sends none (MARKREAD itself still works).
    let mut plain = Client::registered(s.irc, "plain").await;
    assert!(markers(&ask(&mut plain, "JOIN #c").await).is_empty());
    assert_eq!(
        markers(&ask(&mut plain, "MARKREAD #c").await),
        mark("#c", "*")
    );
}

#[tokio::test]
async fn markread_refusals() {
    let s = Server::start_default().await;
    let mut a = Client::registered_with_caps(s.irc, "alice", &[MARKER]).await;
    let fail = |r: &[Msg]| -> Vec<String> {
        assert_eq!(cmds(r), ["FAIL"], "{r:?}");
        r[0].params.iter().map(|p| p.to_string()).collect()
    };
    assert_eq!(
        fail(&ask(&mut a, "MARKREAD").await)[..2],
        ["MARKREAD", "NEED_MORE_PARAMS"]
    );
    for bad in [
        "MARKREAD #c *",
        "MARKREAD #c timestamp=not-a-timestamp",
        "MARKREAD #c 2019-01-01T00:00:00.000Z",
        "MARKREAD #c timestamp=2019-02-30T00:00:00.000Z",
        "MARKREAD #a,b",
        "MARKREAD :two words",
    ] {
        assert_eq!(
            fail(&ask(&mut a, bad).await)[..2],
            ["MARKREAD", "INVALID_PARAMS"],
            "{bad}"
        );
    }
    // Nothing was stored.
    assert_eq!(markers(&ask(&mut a, "MARKREAD #c").await), mark("#c", "*"));
}

#[tokio::test]
async fn read_markers_are_forgotten_at_quit_and_bounded() {
    let cfg = bavard::config::Config {
        limits: bavard::config::Limits {
            read_markers: 2,
            ..Default::default()
        },
        ..Default::default()
    };
    let s = Server::start(cfg).await;
    let mut a = Client::registered_with_caps(s.irc, "alice", &[MARKER]).await;
    for (t, day) in [("#one", "01"), ("#two", "03"), ("#three", "02")] {
        ask(
            &mut a,
            &format!("MARKREAD {t} timestamp=2020-01-{day}T00:00:00.000Z"),
        )
        .await;
    }
    // Two are kept: the one read longest ago (#one) went.
    assert_eq!(markers(&ask(&mut a, "MARKREAD #one").await)[0].1, "*");
    assert_ne!(markers(&ask(&mut a, "MARKREAD #two").await)[0].1, "*");
    assert_ne!(markers(&ask(&mut a, "MARKREAD #three").await)[0].1, "*");
    // The next holder of the nick does not see them.
    a.send("QUIT").await;
    a.eof().await;
    let mut again = Client::registered_with_caps(s.irc, "alice", &[MARKER]).await;
    assert_eq!(markers(&ask(&mut again, "MARKREAD #two").await)[0].1, "*");
}

#[tokio::test]
async fn a_renamed_channel_keeps_its_markers() {
    let s = Server::start_default().await;
    let mut a = Client::registered_with_caps(s.irc, "alice", &[MARKER]).await;
    join(&mut a, "#before").await;
    ask(&mut a, &format!("MARKREAD #before timestamp={TS1}")).await;
    ask(&mut a, "RENAME #before #after").await;
    let r = ask(&mut a, "MARKREAD #after").await;
    assert_eq!(markers(&r)[0].1, format!("timestamp={TS1}"));
}

// ----------------------------------------------------------- message-redaction

const REDACT_CAPS: &[&str] = &["draft/message-redaction", "message-tags", "echo-message"];

/// Sends a message and returns its msgid, from the sender's echo.
async fn said(c: &mut Client, line: &str) -> String {
    let r = ask(c, line).await;
    let me = format!("{}!", c.nick);
    let echo = r
        .iter()
        .filter(|m| m.source.as_deref().is_some_and(|s| s.starts_with(&me)))
        .find(|m| m.command == "PRIVMSG" || m.command == "TAGMSG")
        .unwrap_or_else(|| panic!("no echo for {line}: {r:?}"));
    echo.tag("msgid").unwrap().to_string()
}

fn fail_code(r: &[Msg]) -> (String, Vec<String>) {
    assert_eq!(cmds(r), ["FAIL"], "{r:?}");
    let p: Vec<String> = r[0].params.iter().map(|p| p.to_string()).collect();
    assert_eq!(p[0], "REDACT");
    (p[1].clone(), p[2..].to_vec())
}

#[tokio::test]
async fn redact_own_messages_and_as_channel_operator() {
    let s = Server::start_default().await;
    let mut alice = Client::registered_with_caps(s.irc, "alice", REDACT_CAPS).await;
    join(&mut alice, "#r").await;
    let mut bob = Client::registered_with_caps(s.irc, "bob", REDACT_CAPS).await;
    let mut carol = Client::registered_with_caps(s.irc, "carol", &["message-tags"]).await;
    join(&mut bob, "#r").await;
    join(&mut carol, "#r").await;
    let mut line = LineClient::connect(s.line).await;
    line.send("JOIN #r").await;
    line.until("[server] You joined #r").await;
    for c in [&mut alice, &mut bob, &mut carol] {
        c.sync().await;
    }
    // The operator redacts bob's message, with a reason.
    let id = said(&mut bob, "PRIVMSG #r :buy my stuff").await;
    alice.sync().await;
    carol.sync().await;
    let r = ask(&mut alice, &format!("REDACT #r {id} :spam")).await;
    assert_eq!(cmds(&r), ["REDACT"]);
    assert_eq!(r[0].params, ["#r", &*id, "spam"]);
    assert!(r[0].source.as_deref().unwrap().starts_with("alice!"));
    let got = bob.sync().await;
    assert_eq!(cmds(&got), ["REDACT"]);
    assert_eq!(got[0].params, ["#r", &*id, "spam"]);
    assert!(carol.sync().await.is_empty(), "no REDACT without the cap");
    line.until("[server] alice deleted a message by bob in #r (spam)")
        .await;
    // Gone: a second REDACT does not find it.
    let (code, ctx) = fail_code(&ask(&mut alice, &format!("REDACT #r {id}")).await);
    assert_eq!(
        (code.as_str(), &ctx[..2]),
        ("UNKNOWN_MSGID", &["#r".to_string(), id.clone()][..])
    );
    // A member redacts its own message (no reason: two parameters), not
    // the operator's.
    let own = said(&mut bob, "PRIVMSG #r :oops").await;
    let r = ask(&mut bob, &format!("REDACT #r {own}")).await;
    assert_eq!(r[0].params, ["#r", &*own]);
    let theirs = said(&mut alice, "PRIVMSG #r :rules").await;
    bob.sync().await;
    let (code, ctx) = fail_code(&ask(&mut bob, &format!("REDACT #r {theirs}")).await);
    assert_eq!(code, "REDACT_FORBIDDEN");
    assert_eq!(ctx[..2], ["#r".to_string(), theirs.clone()]);
    // A TAGMSG has a msgid too.
    let tag = said(&mut bob, "@+draft/react=x TAGMSG #r").await;
    assert_eq!(
        cmds(&ask(&mut bob, &format!("REDACT #r {tag}")).await),
        ["REDACT"]
    );
    // Unknown ids, wrong conversations, targets one is not in.
    join(&mut alice, "#elsewhere").await;
    let other = said(&mut alice, "PRIVMSG #elsewhere :x").await;
    for (target, msgid, want) in [
        ("#r", "nonexistent123", "UNKNOWN_MSGID"),
        ("#r", "99999999", "UNKNOWN_MSGID"),
        ("#r", other.as_str(), "UNKNOWN_MSGID"),
        ("#elsewhere", other.as_str(), "INVALID_TARGET"),
        ("#nowhere", "1", "INVALID_TARGET"),
        ("nobody", "1", "INVALID_TARGET"),
    ] {
        let (code, ctx) = fail_code(&ask(&mut bob, &format!("REDACT {target} {msgid}")).await);
        assert_eq!(code, want, "{target} {msgid}");
        assert_eq!(ctx[0], target);
    }
    assert_eq!(cmds(&ask(&mut bob, "REDACT #r").await), ["461"]);
}

#[tokio::test]
async fn redact_private_messages() {
    let s = Server::start_default().await;
    let mut alice = Client::registered_with_caps(s.irc, "alice", REDACT_CAPS).await;
    let mut bob = Client::registered_with_caps(s.irc, "bob", REDACT_CAPS).await;
    let mut carol = Client::registered_with_caps(s.irc, "carol", REDACT_CAPS).await;
    let id = said(&mut alice, "PRIVMSG bob :secret").await;
    bob.sync().await;
    // The recipient may not redact it; someone else does not even find it.
    let (code, _) = fail_code(&ask(&mut bob, &format!("REDACT alice {id}")).await);
    assert_eq!(code, "REDACT_FORBIDDEN");
    let (code, _) = fail_code(&ask(&mut carol, &format!("REDACT bob {id}")).await);
    assert_eq!(code, "UNKNOWN_MSGID");
    let (code, _) = fail_code(&ask(&mut alice, &format!("REDACT carol {id}")).await);
    assert_eq!(code, "UNKNOWN_MSGID");
    // The sender may; both sides see `REDACT bob <id>`.
    let r = ask(&mut alice, &format!("REDACT bob {id}")).await;
    assert_eq!(r[0].params, ["bob", &*id]);
    let got = bob.sync().await;
    assert_eq!(cmds(&got), ["REDACT"]);
    assert_eq!(got[0].params, ["bob", &*id]);
    assert!(carol.sync().await.is_empty());
    // A line recipient gets a notice.
    let mut line = LineClient::connect(s.line).await;
    line.send("NICK linus").await;
    line.until("[server] You are now known as linus").await;
    let id = said(&mut alice, "PRIVMSG linus :hi").await;
    ask(&mut alice, &format!("REDACT linus {id} :typo")).await;
    line.until("[server] alice deleted a private message to you (typo)")
        .await;
}

#[tokio::test]
async fn redaction_limits_the_window_and_count() {
    // Only the last message is remembered.
    let cfg = bavard::config::Config {
        limits: bavard::config::Limits {
            redact_messages: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    let s = Server::start(cfg).await;
    let mut a = Client::registered_with_caps(s.irc, "alice", REDACT_CAPS).await;
    join(&mut a, "#w").await;
    let first = said(&mut a, "PRIVMSG #w :one").await;
    let second = said(&mut a, "PRIVMSG #w :two").await;
    let (code, _) = fail_code(&ask(&mut a, &format!("REDACT #w {first}")).await);
    assert_eq!(code, "UNKNOWN_MSGID");
    assert_eq!(
        cmds(&ask(&mut a, &format!("REDACT #w {second}")).await),
        ["REDACT"]
    );
    // A window of 0 turns redaction off.
    let cfg = bavard::config::Config {
        limits: bavard::config::Limits {
            redact_window: 0,
            ..Default::default()
        },
        ..Default::default()
    };
    let s = Server::start(cfg).await;
    let mut a = Client::registered_with_caps(s.irc, "alice", REDACT_CAPS).await;
    join(&mut a, "#w").await;
    let id = said(&mut a, "PRIVMSG #w :one").await;
    let (code, _) = fail_code(&ask(&mut a, &format!("REDACT #w {id}")).await);
    assert_eq!(code, "UNKNOWN_MSGID");
}

#[tokio::test]
async fn a_renamed_channel_keeps_its_messages_redactable() {
    let s = Server::start_default().await;
    let mut a = Client::registered_with_caps(s.irc, "alice", REDACT_CAPS).await;
    join(&mut a, "#a").await;
    let id = said(&mut a, "PRIVMSG #a :before").await;
    ask(&mut a, "RENAME #a #b").await;
    assert_eq!(
        cmds(&ask(&mut a, &format!("REDACT #b {id}")).await),
        ["REDACT"]
    );
    // A new channel under the old name is another conversation.
    let id = said(&mut a, "PRIVMSG #b :after").await;
    ask(&mut a, "RENAME #b #c").await;
    join(&mut a, "#b").await;
    let (code, _) = fail_code(&ask(&mut a, &format!("REDACT #b {id}")).await);
    assert_eq!(code, "UNKNOWN_MSGID");
}
