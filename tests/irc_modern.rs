//! Modern IRC beyond the basics, over real TCP: HELPOP, LINKS, STATUSMSG,
//! KICK and NAMES of several targets, INVITE without parameters, `+C`, the
//! mute extban and extended-monitor, with their edges and how line users see
//! them.

mod support;

use bavard::config::Config;
use support::irc::{IrcClient as Client, ask, cmds, join};
use support::line::LineClient;
use support::server::Server;

/// The 005 tokens of a fresh registration.
async fn isupport(addr: std::net::SocketAddr) -> Vec<String> {
    let mut c = Client::connect(addr).await;
    c.send("NICK tok").await;
    c.send("USER tok 0 * :tok").await;
    let mut tokens = Vec::new();
    loop {
        let m = c.msg().await;
        match &*m.command {
            "005" => tokens.extend(
                m.params[1..m.params.len() - 1]
                    .iter()
                    .map(|p| p.to_string()),
            ),
            "376" | "422" => return tokens,
            _ => {}
        }
    }
}

// ---------------------------------------------------------------- HELPOP, LINKS

#[tokio::test]
async fn helpop_is_help() {
    let s = Server::start_default().await;
    let mut c = Client::registered(s.irc, "nick").await;
    for verb in ["HELP", "HELPOP"] {
        let all = ask(&mut c, verb).await;
        assert_eq!(all[0].command, "704", "{verb}: {all:?}");
        assert_eq!(all.last().unwrap().command, "706");
        assert!(all.iter().any(|m| m.params[2].contains("HELPOP")));
        let one = ask(&mut c, &format!("{verb} privmsg")).await;
        assert_eq!(cmds(&one), ["704", "705", "705", "706"]);
        assert_eq!(one[0].params[1], "PRIVMSG");
        let none = ask(&mut c, &format!("{verb} NOSUCHTHING")).await;
        assert_eq!(cmds(&none), ["524"]);
        assert_eq!(none[0].params[1], "NOSUCHTHING");
    }
    let topic = ask(&mut c, "HELP HELPOP").await;
    assert_eq!(topic[1].params[2], "Syntax: HELPOP [command]");
}

#[tokio::test]
async fn links_lists_this_server_alone() {
    let cfg = Config {
        server_name: "irc.example.org".into(),
        server_description: "a test description".into(),
        ..Config::default()
    };
    let s = Server::start(cfg).await;
    let mut c = Client::registered(s.irc, "nick").await;
    let r = ask(&mut c, "LINKS").await;
    assert_eq!(cmds(&r), ["364", "365"]);
    let srv = "irc.example.org";
    assert_eq!(r[0].params, ["nick", srv, srv, "0 a test description"]);
    assert_eq!(r[1].params[..2], ["nick", "*"]);
    // A mask: matching, not matching (only the end), and the remote form.
    let r = ask(&mut c, "LINKS *.EXAMPLE.org").await;
    assert_eq!(cmds(&r), ["364", "365"]);
    assert_eq!(r[1].params[1], "*.EXAMPLE.org");
    let r = ask(&mut c, "LINKS other.*").await;
    assert_eq!(cmds(&r), ["365"]);
    assert_eq!(r[0].params[1], "other.*");
    let r = ask(&mut c, "LINKS irc.example.org irc.*").await;
    assert_eq!(cmds(&r), ["364", "365"]);
    let r = ask(&mut c, "LINKS elsewhere.net *").await;
    assert_eq!(cmds(&r), ["402"]);
    // WHOIS's 312 carries the same description.
    let r = ask(&mut c, "WHOIS nick").await;
    let m = r.iter().find(|m| m.command == "312").unwrap();
    assert_eq!(m.params[3], "a test description");
}

// ------------------------------------------------------------------ STATUSMSG

#[tokio::test]
async fn statusmsg_reaches_members_with_that_status() {
    let s = Server::start_default().await;
    assert!(isupport(s.irc).await.contains(&"STATUSMSG=@+".to_string()));
    let mut op = Client::registered(s.irc, "op").await;
    let mut voiced = Client::registered(s.irc, "voiced").await;
    let mut plain = Client::registered_with_caps(s.irc, "plain", &["echo-message"]).await;
    for c in [&mut op, &mut voiced, &mut plain] {
        join(c, "#s").await;
    }
    ask(&mut op, "MODE #s +v voiced").await;
    voiced.sync().await;
    plain.sync().await;

    // `@#chan`: operators only; the echo keeps the prefix.
    let echo = ask(&mut plain, "PRIVMSG @#s :ops only").await;
    assert_eq!(cmds(&echo), ["PRIVMSG"]);
    assert_eq!(echo[0].params, ["@#s", "ops only"]);
    let got = op.sync().await;
    assert_eq!(cmds(&got), ["PRIVMSG"]);
    assert_eq!(got[0].params, ["@#s", "ops only"]);
    assert!(voiced.sync().await.is_empty());
    // `+#chan`: voiced users and operators.
    ask(&mut plain, "NOTICE +#s :voices too").await;
    assert_eq!(op.sync().await[0].params, ["+#s", "voices too"]);
    assert_eq!(voiced.sync().await[0].params, ["+#s", "voices too"]);
    // The sender's own status does not matter, but the channel's rules do.
    ask(&mut op, "MODE #s +m").await;
    plain.sync().await;
    voiced.sync().await;
    let r = ask(&mut plain, "PRIVMSG @#s :moderated").await;
    assert_eq!(cmds(&r), ["404"]);
    assert!(op.sync().await.iter().all(|m| m.command != "PRIVMSG"));
    // No such channel, and a prefix alone.
    let r = ask(&mut plain, "PRIVMSG @#nowhere :x").await;
    assert_eq!(cmds(&r), ["403"]);
    let r = ask(&mut plain, "PRIVMSG @ :x").await;
    assert_eq!(cmds(&r), ["401"]);
}

#[tokio::test]
async fn line_operators_see_who_a_status_message_is_for() {
    let s = Server::start_default().await;
    let mut line = LineClient::connect(s.line).await;
    // The line user founds #lineops, so it is its operator.
    line.send("JOIN #lineops").await;
    line.until("[server] You joined #lineops").await;
    let mut a = Client::registered(s.irc, "alice").await;
    join(&mut a, "#lineops").await;
    a.send("PRIVMSG @#lineops :psst").await;
    line.until("[alice to @#lineops] psst").await;
    a.send("PRIVMSG #lineops :hello all").await;
    line.until("[alice] hello all").await;
}

// ------------------------------------------------------ KICK, NAMES, INVITE

#[tokio::test]
async fn kick_several_nicks_up_to_the_target_limit() {
    let s = Server::start_default().await;
    assert!(
        isupport(s.irc)
            .await
            .iter()
            .any(|t| t.starts_with("TARGMAX=")
                && t.contains(",KICK:4,")
                && t.contains(",NAMES:4,"))
    );
    let mut op = Client::registered(s.irc, "op").await;
    join(&mut op, "#k").await;
    let mut users = Vec::new();
    for n in ["u1", "u2", "u3", "u4", "u5"] {
        let mut c = Client::registered(s.irc, n).await;
        join(&mut c, "#k").await;
        users.push(c);
    }
    op.sync().await;
    // Five targets: the first four (limits.max_targets) go, the fifth is dropped.
    let r = ask(&mut op, "KICK #k u1,u2,u3,u4,u5 :bye").await;
    let kicked: Vec<&str> = r.iter().map(|m| &*m.params[1]).collect();
    assert_eq!(kicked, ["u1", "u2", "u3", "u4"]);
    assert!(
        r.iter()
            .all(|m| m.command == "KICK" && m.params[2] == "bye")
    );
    let u5 = &mut users[4];
    let seen = u5.sync().await;
    assert_eq!(cmds(&seen), ["KICK", "KICK", "KICK", "KICK"]);
    // Channel and nick lists of equal length pair up; errors are per target.
    let mut again = Vec::new();
    for n in ["u1", "u2"] {
        let mut c = Client::registered(s.irc, &format!("{n}b")).await;
        join(&mut c, "#k").await;
        again.push(c);
    }
    op.sync().await;
    let r = ask(&mut op, "KICK #k,#k,#k u1b,nobody,u2b").await;
    assert_eq!(cmds(&r), ["KICK", "401", "KICK"]);
    assert_eq!(
        r[0].params[2], "op",
        "the default reason is the kicker's nick"
    );
    let r = ask(&mut op, "KICK #k,#k u5").await;
    assert_eq!(cmds(&r), ["461"]);
}

#[tokio::test]
async fn names_of_several_channels_end_once() {
    let s = Server::start_default().await;
    let mut c = Client::registered(s.irc, "nick1").await;
    for ch in ["#c1", "#c2", "#c3", "#c4", "#c5"] {
        join(&mut c, ch).await;
    }
    let r = ask(&mut c, "NAMES #c1,#c2").await;
    assert_eq!(cmds(&r), ["353", "353", "366"]);
    assert_eq!(r[0].params, ["nick1", "=", "#c1", "@nick1"]);
    assert_eq!(r[1].params, ["nick1", "=", "#c2", "@nick1"]);
    assert_eq!(r[2].params[1], "#c1,#c2");
    // Unknown channels show nothing; past four channels the rest is dropped.
    let r = ask(&mut c, "NAMES #c1,#none,#c2,#c3,#c4,#c5").await;
    let shown: Vec<&str> = r
        .iter()
        .filter(|m| m.command == "353")
        .map(|m| &*m.params[2])
        .collect();
    assert_eq!(shown, ["#c1", "#c2", "#c3"]);
    assert_eq!(r.last().unwrap().params[1], "#c1,#none,#c2,#c3,#c4,#c5");
    // One channel keeps its own spelling in 366.
    let r = ask(&mut c, "NAMES #C1").await;
    assert_eq!(r.last().unwrap().params[1], "#c1");
}

#[tokio::test]
async fn invite_alone_lists_pending_invitations() {
    let s = Server::start_default().await;
    let mut foo = Client::registered(s.irc, "foo").await;
    let mut bar = Client::registered(s.irc, "bar").await;
    let r = ask(&mut bar, "INVITE").await;
    assert_eq!(cmds(&r), ["337"]);
    assert_eq!(r[0].params[0], "bar");
    for ch in ["#b", "#a"] {
        join(&mut foo, ch).await;
        ask(&mut foo, &format!("INVITE bar {ch}")).await;
    }
    bar.sync().await;
    let r = ask(&mut bar, "INVITE").await;
    assert_eq!(cmds(&r), ["336", "336", "337"]);
    assert_eq!(r[0].params, ["bar", "#a"]);
    assert_eq!(r[1].params, ["bar", "#b"]);
    // Joining uses the invitation up; one parameter is not enough.
    join(&mut bar, "#a").await;
    let r = ask(&mut bar, "INVITE").await;
    assert_eq!(cmds(&r), ["336", "337"]);
    assert_eq!(r[0].params[1], "#b");
    let r = ask(&mut bar, "INVITE foo").await;
    assert_eq!(cmds(&r), ["461"]);
}

// ------------------------------------------------------------- +C, mute extban

#[tokio::test]
async fn no_ctcp_mode_lets_only_action_through() {
    let s = Server::start_default().await;
    assert!(
        isupport(s.irc)
            .await
            .contains(&"CHANMODES=beI,k,l,CMRWimnpst".to_string())
    );
    let mut op = Client::registered(s.irc, "op").await;
    let mut user = Client::registered(s.irc, "user").await;
    join(&mut op, "#c").await;
    join(&mut user, "#c").await;
    op.sync().await;
    let r = ask(&mut op, "MODE #c +C").await;
    assert_eq!(r[0].params, ["#c", "+C"]);
    let r = ask(&mut op, "MODE #c").await;
    assert_eq!(r[0].params[2], "+Cnt");
    user.sync().await;
    assert!(
        ask(&mut user, "PRIVMSG #c :\x01ACTION waves\x01")
            .await
            .is_empty()
    );
    assert!(
        ask(&mut user, "PRIVMSG #c :\x01ACTION\x01")
            .await
            .is_empty()
    );
    let r = ask(&mut user, "PRIVMSG #c :\x01PING 1\x01").await;
    assert_eq!(cmds(&r), ["404"]);
    assert_eq!(r[0].params[1], "#c");
    // Not ACTION, only starting like it; NOTICEs are dropped without a reply.
    assert_eq!(
        cmds(&ask(&mut user, "PRIVMSG #c :\x01ACTIONS\x01").await),
        ["404"]
    );
    assert!(
        ask(&mut user, "NOTICE #c :\x01VERSION x\x01")
            .await
            .is_empty()
    );
    // Plain text passes; operators are held to it too.
    assert!(
        ask(&mut user, "PRIVMSG #c :plain \x01 text")
            .await
            .is_empty()
    );
    let got = op.sync().await;
    let texts: Vec<&str> = got.iter().map(|m| &*m.params[1]).collect();
    assert_eq!(
        texts,
        ["\x01ACTION waves\x01", "\x01ACTION\x01", "plain \x01 text"]
    );
    assert_eq!(
        cmds(&ask(&mut op, "PRIVMSG #c :\x01TIME\x01").await),
        ["404"]
    );
    ask(&mut op, "MODE #c -C").await;
    user.sync().await;
    assert!(
        ask(&mut user, "PRIVMSG #c :\x01PING 2\x01")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn mute_extban_silences_without_banning() {
    let s = Server::start_default().await;
    assert!(isupport(s.irc).await.contains(&"EXTBAN=,am".to_string()));
    let mut op = Client::registered(s.irc, "op").await;
    join(&mut op, "#m").await;
    // The mask after `m:` is completed like a ban's, and compared without case.
    let r = ask(&mut op, "MODE #m +b m:BAR").await;
    assert_eq!(r[0].params, ["#m", "+b", "m:BAR!*@*"]);
    let mut bar = Client::registered_with_caps(s.irc, "bar", &["echo-message"]).await;
    join(&mut bar, "#m").await;
    op.sync().await;
    let r = ask(&mut bar, "MODE #m +b").await;
    assert_eq!(r[0].params[..3], ["bar", "#m", "m:BAR!*@*"]);
    assert_eq!(cmds(&ask(&mut bar, "PRIVMSG #m :hi").await), ["404"]);
    assert!(op.sync().await.is_empty());
    // A voice lifts it, as do a plain exception and an `m:` one.
    for (lift, undo) in [
        ("+v bar", "-v bar"),
        ("+e bar", "-e bar"),
        ("+e m:*!*bar@*", "-e m:*!*bar@*"),
    ] {
        ask(&mut op, &format!("MODE #m {lift}")).await;
        bar.sync().await;
        assert_eq!(
            cmds(&ask(&mut bar, "PRIVMSG #m :hi").await),
            ["PRIVMSG"],
            "{lift}"
        );
        ask(&mut op, &format!("MODE #m {undo}")).await;
        bar.sync().await;
        assert_eq!(
            cmds(&ask(&mut bar, "PRIVMSG #m :hi").await),
            ["404"],
            "{undo}"
        );
    }
    op.sync().await;
    // `-b` in another case removes it; bar talks again.
    let r = ask(&mut op, "MODE #m -b m:bar!*@*").await;
    assert_eq!(r[0].params, ["#m", "-b", "m:BAR!*@*"]);
    bar.sync().await;
    assert_eq!(cmds(&ask(&mut bar, "PRIVMSG #m :free").await), ["PRIVMSG"]);
    op.sync().await;
    // Unknown types, a bare prefix and `+I m:` are refused.
    for bad in ["+b x:bar", "+b m:", "+I m:bar"] {
        let r = ask(&mut op, &format!("MODE #m {bad}")).await;
        assert_eq!(cmds(&r), ["696"], "{bad}");
    }
}

#[tokio::test]
async fn a_mute_does_not_keep_anyone_out() {
    let s = Server::start_default().await;
    let mut op = Client::registered(s.irc, "op").await;
    join(&mut op, "#m").await;
    ask(&mut op, "MODE #m +b m:*!*@*").await;
    let mut bar = Client::registered(s.irc, "bar").await;
    let r = ask(&mut bar, "JOIN #m").await;
    assert_eq!(r[0].command, "JOIN");
    // A plain ban still does.
    ask(&mut op, "MODE #m +b baz").await;
    let mut baz = Client::registered(s.irc, "baz").await;
    assert_eq!(cmds(&ask(&mut baz, "JOIN #m").await), ["474"]);
}

// ----------------------------------------------------------- extended-monitor

#[tokio::test]
async fn extended_monitor_tells_watchers_what_channels_hear() {
    let s = Server::start_default().await;
    let caps = ["extended-monitor", "away-notify", "setname"];
    let mut watcher = Client::registered_with_caps(s.irc, "watcher", &caps).await;
    // Without extended-monitor, or without away-notify: nothing.
    let mut old = Client::registered_with_caps(s.irc, "old", &["away-notify", "setname"]).await;
    let mut noaway = Client::registered_with_caps(s.irc, "noaway", &["extended-monitor"]).await;
    for c in [&mut watcher, &mut old, &mut noaway] {
        ask(c, "MONITOR + bar").await;
    }
    let mut bar = Client::registered_with_caps(s.irc, "bar", &["setname"]).await;
    for c in [&mut watcher, &mut old, &mut noaway] {
        assert_eq!(cmds(&c.sync().await), ["730"]);
    }
    ask(&mut bar, "AWAY :afk").await;
    let got = watcher.sync().await;
    assert_eq!(cmds(&got), ["AWAY"]);
    assert_eq!(got[0].params, ["afk"]);
    assert!(got[0].source.as_deref().unwrap().starts_with("bar!"));
    ask(&mut bar, "AWAY").await;
    let got = watcher.sync().await;
    assert_eq!(cmds(&got), ["AWAY"]);
    assert!(got[0].params.is_empty());
    ask(&mut bar, "SETNAME :New Name").await;
    let got = watcher.sync().await;
    assert_eq!(cmds(&got), ["SETNAME"]);
    assert_eq!(got[0].params, ["New Name"]);
    assert!(old.sync().await.is_empty());
    assert!(noaway.sync().await.is_empty());
    // Sharing a channel: one copy, through the channel.
    join(&mut watcher, "#w").await;
    join(&mut bar, "#w").await;
    watcher.sync().await;
    ask(&mut bar, "AWAY :again").await;
    assert_eq!(cmds(&watcher.sync().await), ["AWAY"]);
    // Unmonitored: nothing more once they share no channel.
    ask(&mut bar, "PART #w").await;
    ask(&mut watcher, "MONITOR - bar").await;
    ask(&mut bar, "AWAY").await;
    assert!(watcher.sync().await.is_empty());
}
