//! NickServ, the built-in pseudo-user, on a real server: each command and
//! its refusals, the reserved nick, and failed-login throttling.

mod support;

use bavard::config::Config;
use support::irc::{IrcClient, Msg, ask, cmds};
use support::server::Server;

/// The texts of NickServ's notices in `r`.
fn said(r: &[Msg]) -> Vec<String> {
    r.iter()
        .filter(|m| m.command == "NOTICE")
        .inspect(|m| {
            let src = m.source.as_deref().unwrap_or("");
            assert!(src.starts_with("NickServ!NickServ@services."), "{m:?}");
        })
        .map(|m| m.params[1].to_string())
        .collect()
}

async fn ns(c: &mut IrcClient, text: &str) -> (Vec<String>, Vec<Msg>) {
    let r = ask(c, &format!("PRIVMSG NickServ :{text}")).await;
    (said(&r), r)
}

fn has(texts: &[String], want: &str) -> bool {
    texts.iter().any(|t| t.contains(want))
}

#[tokio::test]
async fn register_identify_logout_info_drop() {
    let s = Server::start_default().await;
    let mut a = IrcClient::registered(s.irc, "alice").await;
    let (t, r) = ns(&mut a, "REGISTER sesame alice@example.org").await;
    assert!(has(&t, "registered"), "{t:?}");
    assert!(cmds(&r).contains(&"900"), "{r:?}");
    let (t, _) = ns(&mut a, "REGISTER again").await;
    assert!(has(&t, "already logged in"), "{t:?}");
    let (t, _) = ns(&mut a, "INFO").await;
    assert!(
        has(&t, "Information on alice") && has(&t, "Email: alice@"),
        "{t:?}"
    );

    let (t, r) = ns(&mut a, "LOGOUT").await;
    assert!(has(&t, "logged out"), "{t:?}");
    assert!(cmds(&r).contains(&"901"), "{r:?}");
    let (t, _) = ns(&mut a, "LOGOUT").await;
    assert!(has(&t, "not logged in"), "{t:?}");

    // Another user sees no email; a wrong password fails.
    let mut b = IrcClient::registered(s.irc, "bob").await;
    let (t, _) = ns(&mut b, "INFO alice").await;
    assert!(has(&t, "Registered:") && !has(&t, "Email"), "{t:?}");
    let (t, _) = ns(&mut b, "INFO nobody").await;
    assert!(has(&t, "nobody is not registered"), "{t:?}");
    let (t, _) = ns(&mut b, "IDENTIFY alice wrong").await;
    assert!(has(&t, "Invalid"), "{t:?}");
    let (t, r) = ns(&mut b, "IDENTIFY alice sesame").await;
    assert!(has(&t, "identified for alice"), "{t:?}");
    assert!(cmds(&r).contains(&"900"), "{r:?}");

    // The same through NS, and the account shows in WHOIS.
    let r = ask(&mut a, "NS IDENTIFY sesame").await;
    assert!(has(&said(&r), "identified"), "{r:?}");
    let r = ask(&mut a, "WHOIS bob").await;
    assert!(cmds(&r).contains(&"330"), "{r:?}");

    // DROP: a wrong password, then the right one logs everyone out.
    let (t, _) = ns(&mut a, "DROP alice nope").await;
    assert!(has(&t, "Invalid"), "{t:?}");
    let (t, r) = ns(&mut a, "DROP alice sesame").await;
    assert!(has(&t, "dropped"), "{t:?}");
    assert!(cmds(&r).contains(&"901"), "{r:?}");
    let r = ask(&mut b, "WHOIS bob").await;
    assert!(!cmds(&r).contains(&"330"), "{r:?}");
    let (t, _) = ns(&mut b, "IDENTIFY alice sesame").await;
    assert!(has(&t, "Invalid"), "{t:?}");
    s.stop().await;
}

#[tokio::test]
async fn nickserv_is_reserved_and_always_there() {
    let s = Server::start_default().await;
    let mut a = IrcClient::registered(s.irc, "alice").await;
    let r = ask(&mut a, "NICK nickserv").await;
    assert_eq!(cmds(&r), ["433"], "{r:?}");
    let r = ask(&mut a, "WHOIS NickServ").await;
    assert_eq!(cmds(&r), ["311", "312", "318"], "{r:?}");
    let r = ask(&mut a, "NOTICE NickServ :hello").await;
    assert!(r.is_empty(), "{r:?}");
    let (t, _) = ns(&mut a, "HELP").await;
    assert!(has(&t, "IDENTIFY"), "{t:?}");
    let (t, _) = ns(&mut a, "FROB").await;
    assert!(has(&t, "Unknown command"), "{t:?}");
    let (t, _) = ns(&mut a, "SET PASSWORD x").await;
    assert!(has(&t, "must be logged in"), "{t:?}");
    let (t, _) = ns(&mut a, "CERT LIST").await;
    assert!(has(&t, "must be logged in"), "{t:?}");
    s.stop().await;
}

#[tokio::test]
async fn set_password_cert_and_ghost() {
    let s = Server::start_default().await;
    let mut a = IrcClient::registered(s.irc, "carol").await;
    ns(&mut a, "REGISTER first").await;
    let (t, _) = ns(&mut a, "SET PASSWORD second").await;
    assert!(has(&t, "password has been changed"), "{t:?}");
    let (t, _) = ns(&mut a, "CERT ADD").await;
    assert!(has(&t, "no TLS client certificate"), "{t:?}");
    let (t, _) = ns(&mut a, "CERT ADD AB12").await;
    assert!(has(&t, "Added certificate fingerprint ab12"), "{t:?}");
    let (t, _) = ns(&mut a, "CERT LIST").await;
    assert!(has(&t, "fingerprints: 1") && has(&t, "ab12"), "{t:?}");
    let (t, _) = ns(&mut a, "CERT DEL ab12").await;
    assert!(has(&t, "Removed"), "{t:?}");
    let (t, _) = ns(&mut a, "CERT LIST").await;
    assert!(has(&t, "fingerprints: 0"), "{t:?}");
    a.send("QUIT").await;
    a.eof().await;

    // Someone took the nick; its owner ghosts it with the new password.
    let mut squatter = IrcClient::registered(s.irc, "carol").await;
    let mut owner = IrcClient::registered(s.irc, "carol2").await;
    let (t, _) = ns(&mut owner, "GHOST carol").await;
    assert!(has(&t, "Access denied"), "{t:?}");
    let (t, _) = ns(&mut owner, "GHOST carol first").await;
    assert!(has(&t, "Access denied"), "{t:?}");
    let (t, r) = ns(&mut owner, "RECOVER carol second").await;
    assert!(has(&t, "ghosted"), "{t:?}");
    squatter.until(|m| m.command == "ERROR").await;
    let nick = r.iter().find(|m| m.command == "NICK").expect("NICK");
    assert_eq!(nick.params[0], "carol", "{r:?}");
    let (t, _) = ns(&mut owner, "GHOST nobody").await;
    assert!(has(&t, "not online"), "{t:?}");
    s.stop().await;
}

#[tokio::test]
async fn failed_logins_are_throttled() {
    let mut cfg = Config::default();
    cfg.accounts.login_failures = 3;
    let s = Server::start(cfg).await;
    let mut a = IrcClient::registered(s.irc, "dave").await;
    ns(&mut a, "REGISTER right").await;
    ns(&mut a, "LOGOUT").await;
    let (t, _) = ns(&mut a, "IDENTIFY wrong").await;
    assert!(has(&t, "Invalid"), "{t:?}");
    // One failure never delays the next try.
    let (t, _) = ns(&mut a, "IDENTIFY right").await;
    assert!(has(&t, "identified"), "{t:?}");
    ns(&mut a, "LOGOUT").await;
    // The address keeps its earlier failure: two more reach the limit.
    for _ in 0..2 {
        let (t, _) = ns(&mut a, "IDENTIFY wrong").await;
        assert!(has(&t, "Invalid"), "{t:?}");
    }
    let (t, _) = ns(&mut a, "IDENTIFY right").await;
    assert!(
        has(&t, "Too many failed attempts, try again in 60 s"),
        "{t:?}"
    );
    // From another address-less angle: the account is throttled for others too.
    let mut b = IrcClient::registered(s.irc, "eve").await;
    let (t, _) = ns(&mut b, "IDENTIFY dave right").await;
    assert!(has(&t, "Too many failed attempts"), "{t:?}");
    s.stop().await;
}

/// A server whose nick protection gives `grace` seconds (`None`: off).
async fn protecting(grace: Option<u64>) -> Server {
    use bavard::config::{NickProtection, Off};
    let mut cfg = Config::default();
    cfg.accounts.nick_protection = match grace {
        Some(s) => NickProtection::Grace(s),
        None => NickProtection::Off(Off::Off),
    };
    Server::start(cfg).await
}

/// The owner of account `alice`, logged in under the nick `alice_`, in #room.
async fn owner(s: &Server) -> IrcClient {
    let mut a = IrcClient::registered(s.irc, "alice").await;
    let (t, _) = ns(&mut a, "REGISTER sesame").await;
    assert!(has(&t, "registered"), "{t:?}");
    ask(&mut a, "NICK alice_").await;
    ask(&mut a, "JOIN #room").await;
    a
}

fn warned(m: &Msg) -> bool {
    m.command == "NOTICE" && m.params[1].contains("belongs to a registered account")
}

#[tokio::test]
async fn protected_nick_is_renamed_after_the_grace() {
    let s = protecting(Some(1)).await;
    let mut a = owner(&s).await;
    let mut b = IrcClient::registered(s.irc, "alice").await;
    let w = b.until(warned).await;
    assert!(w.params[1].contains("within 1 seconds"), "{w:?}");
    assert!(
        w.source.as_deref().unwrap().starts_with("NickServ!"),
        "{w:?}"
    );
    ask(&mut b, "JOIN #room").await;
    let n = b.expect("NICK").await;
    assert!(n.params[0].starts_with("guest"), "{n:?}");
    // Who shares a channel sees the rename.
    let seen = a.expect("NICK").await;
    assert!(
        seen.source.as_deref().unwrap().starts_with("alice!"),
        "{seen:?}"
    );
    assert_eq!(seen.params[0], n.params[0]);
    s.stop().await;
}

/// Logging out while holding the account's nick is taking it unidentified:
/// the grace starts, then the rename.
#[tokio::test]
async fn logging_out_on_the_nick_starts_protection() {
    let s = protecting(Some(1)).await;
    let mut a = IrcClient::registered(s.irc, "alice").await;
    let (t, _) = ns(&mut a, "REGISTER sesame").await;
    assert!(has(&t, "registered"), "{t:?}");
    let r = a.sync().await;
    assert!(!r.iter().any(warned), "logged in: {r:?}");
    let (_, r) = ns(&mut a, "LOGOUT").await;
    assert!(cmds(&r).contains(&"901"), "{r:?}");
    // The warning follows, once the account is looked up.
    let w = match r.iter().find(|m| warned(m)) {
        Some(w) => w.clone(),
        None => a.until(warned).await,
    };
    assert!(w.params[1].contains("within 1 seconds"), "{w:?}");
    let n = a.expect("NICK").await;
    assert!(n.params[0].starts_with("guest"), "{n:?}");
    s.stop().await;
}

#[tokio::test]
async fn identifying_or_changing_nick_in_time_keeps_the_nick() {
    let s = protecting(Some(1)).await;
    let _a = owner(&s).await;
    let mut b = IrcClient::registered(s.irc, "alice").await;
    b.until(warned).await;
    let (t, _) = ns(&mut b, "IDENTIFY sesame").await;
    assert!(has(&t, "identified for alice"), "{t:?}");
    let mut c = IrcClient::registered(s.irc, "carol").await;
    ask(&mut c, "NICK alice_").await; // taken: nothing changes
    let r = ask(&mut c, "NICK ALICE").await;
    assert!(cmds(&r).contains(&"433"), "{r:?}");
    // c takes a protected nick of its own, then leaves it in time.
    let mut d = IrcClient::registered(s.irc, "dave").await;
    let (t, _) = ns(&mut d, "REGISTER pw").await;
    assert!(has(&t, "registered"), "{t:?}");
    ask(&mut d, "NICK dave_").await;
    let r = ask(&mut c, "NICK dave").await;
    assert!(r.iter().any(warned), "{r:?}");
    ask(&mut c, "NICK carol").await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    for (who, cl) in [("b", &mut b), ("c", &mut c)] {
        let r = cl.sync().await;
        assert!(!cmds(&r).contains(&"NICK"), "{who}: {r:?}");
    }
    s.stop().await;
}

#[tokio::test]
async fn no_protection_when_off_or_logged_in() {
    for grace in [None, Some(1)] {
        let s = protecting(grace).await;
        let mut a = owner(&s).await;
        // Logged in to the account: never warned.
        let r = ask(&mut a, "NICK alice").await;
        assert!(cmds(&r).contains(&"NICK") && !r.iter().any(warned), "{r:?}");
        ask(&mut a, "NICK alice_").await;
        let mut b = IrcClient::registered(s.irc, "alice").await;
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let r = b.sync().await;
        match grace {
            None => assert!(
                !r.iter().any(warned) && !cmds(&r).contains(&"NICK"),
                "{r:?}"
            ),
            Some(_) => assert!(cmds(&r).contains(&"NICK"), "{r:?}"),
        }
        let r = a.sync().await;
        assert!(!r.iter().any(warned), "{r:?}");
        s.stop().await;
    }
}
