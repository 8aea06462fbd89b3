//! Accounts over IRC on a real server: REGISTER (draft/account-registration),
//! SASL PLAIN and SCRAM-SHA-256 (sasl-3.2: chunks, failures, abort,
//! re-authentication), and how a login shows to others (account-notify,
//! account-tag, extended-join, WHOIS, WHOX, +r, +R, +M, the `a:` extban).

mod support;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bavard::config::{Config, RegistrationPolicy};
use bavard_core::scram::{hmac, salted_password, sha256};
use support::irc::{IrcClient, Msg, ask, cmds, create_account, join};
use support::server::Server;

/// A connection that negotiated `sasl` (and `caps`) and has not registered.
async fn sasl_client(s: &Server, caps: &[&str]) -> IrcClient {
    let mut c = IrcClient::connect(s.irc).await;
    c.send("CAP LS 302").await;
    c.expect("CAP").await;
    let mut all = vec!["sasl"];
    all.extend_from_slice(caps);
    c.send(&format!("CAP REQ :{}", all.join(" "))).await;
    let ack = c.expect("CAP").await;
    assert_eq!(ack.params[1], "ACK", "{ack:?}");
    c
}

/// `AUTHENTICATE PLAIN` with `authzid NUL authcid NUL password`: the replies
/// to the response.
async fn plain(c: &mut IrcClient, response: &[u8]) -> Vec<Msg> {
    let r = ask(c, "AUTHENTICATE PLAIN").await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!((&*r[0].command, &*r[0].params[0]), ("AUTHENTICATE", "+"));
    ask(c, &format!("AUTHENTICATE {}", B64.encode(response))).await
}

/// Completes registration as `nick` after SASL.
async fn finish_registration(c: &mut IrcClient, nick: &str) {
    c.nick = nick.to_string();
    c.send(&format!("NICK {nick}")).await;
    c.send(&format!("USER {nick} 0 * :Real {nick}")).await;
    c.send("CAP END").await;
    c.expect("001").await;
    c.until(|m| m.command == "376" || m.command == "422").await;
}

/// A registered client logged in to `account` with SASL PLAIN.
async fn logged_in(
    s: &Server,
    nick: &str,
    account: &str,
    password: &str,
    caps: &[&str],
) -> IrcClient {
    let mut c = sasl_client(s, caps).await;
    let r = plain(&mut c, format!("\0{account}\0{password}").as_bytes()).await;
    assert_eq!(cmds(&r), ["900", "903"], "{r:?}");
    finish_registration(&mut c, nick).await;
    c
}

/// The code of the first FAIL in `r`, and its context parameters.
fn fail(r: &[Msg]) -> (String, Vec<String>) {
    let m = r
        .iter()
        .find(|m| m.command == "FAIL")
        .unwrap_or_else(|| panic!("no FAIL in {r:?}"));
    let ps: Vec<String> = m.params.iter().map(|p| p.to_string()).collect();
    (ps[1].clone(), ps[2..ps.len() - 1].to_vec())
}

#[tokio::test]
async fn plain_logs_in_before_registration_and_shows_everywhere() {
    let s = Server::start_default().await;
    create_account(s.irc, "alice", "sesame1").await;
    let mut c = sasl_client(&s, &[]).await;
    let r = plain(&mut c, b"\0alice\0sesame1").await;
    assert_eq!(cmds(&r), ["900", "903"], "{r:?}");
    assert_eq!(&r[0].params[1..3], ["*!*@127.0.0.1", "alice"]);
    finish_registration(&mut c, "bob").await;

    let mut other = IrcClient::registered(s.irc, "carol").await;
    let r = ask(&mut other, "WHOIS bob").await;
    let account = r.iter().find(|m| m.command == "330").expect("330");
    assert_eq!(&account.params[..3], ["carol", "bob", "alice"]);
    let r = ask(&mut other, "WHOIS carol").await;
    assert!(!cmds(&r).contains(&"330"), "carol is logged out: {r:?}");
    let r = ask(&mut other, "WHO bob %na").await;
    assert_eq!(&r[0].params[..], ["carol", "bob", "alice"]);
    let r = ask(&mut other, "WHO carol %na").await;
    assert_eq!(&r[0].params[..], ["carol", "carol", "0"]);
    let r = ask(&mut c, "MODE bob").await;
    assert_eq!(r[0].params[1], "+r", "{r:?}");
}

#[tokio::test]
async fn plain_refuses_what_it_should_and_allows_a_retry() {
    let s = Server::start_default().await;
    create_account(s.irc, "jilles", "sesame").await;
    let mut c = sasl_client(&s, &[]).await;
    for bad in [
        &b"\0jilles\0millet"[..],
        b"\0\0sesame",
        b"\0jilles\0",
        b"other\0jilles\0sesame",
        b"\0nobody\0sesame",
    ] {
        assert_eq!(cmds(&plain(&mut c, bad).await), ["904"], "{bad:?}");
    }
    ask(&mut c, "AUTHENTICATE PLAIN").await;
    assert_eq!(cmds(&ask(&mut c, "AUTHENTICATE !!!").await), ["904"]);
    // Unknown mechanisms: the list, then 904.
    let r = ask(&mut c, "AUTHENTICATE FOO").await;
    assert_eq!(cmds(&r), ["908", "904"]);
    assert_eq!(r[0].params[1], "PLAIN,EXTERNAL,SCRAM-SHA-256");
    // No certificate, no EXTERNAL.
    assert_eq!(cmds(&ask(&mut c, "AUTHENTICATE EXTERNAL").await), ["904"]);
    // Abort, and a chunk over 400 bytes.
    ask(&mut c, "AUTHENTICATE PLAIN").await;
    assert_eq!(cmds(&ask(&mut c, "AUTHENTICATE *").await), ["906"]);
    ask(&mut c, "AUTHENTICATE PLAIN").await;
    let long = format!("AUTHENTICATE {}", "A".repeat(401));
    assert_eq!(cmds(&ask(&mut c, &long).await), ["905"]);
    // After all that, the right password still works; then no second login
    // before registration.
    let r = plain(&mut c, b"jilles\0jilles\0sesame").await;
    assert_eq!(cmds(&r), ["900", "903"]);
    assert_eq!(cmds(&ask(&mut c, "AUTHENTICATE PLAIN").await), ["907"]);
    // Without the capability, AUTHENTICATE fails.
    let mut plain_client = IrcClient::connect(s.irc).await;
    let r = ask(&mut plain_client, "AUTHENTICATE PLAIN").await;
    assert_eq!(cmds(&r), ["904"]);
}

#[tokio::test]
async fn chunks_of_exactly_400_bytes_end_with_a_plus() {
    let s = Server::start_default().await;
    let exact = "bar".repeat(97);
    create_account(s.irc, "foo", &exact).await;
    let mut c = sasl_client(&s, &[]).await;
    let response = B64.encode(format!("foo\0foo\0{exact}"));
    assert_eq!(response.len(), 400);
    ask(&mut c, "AUTHENTICATE PLAIN").await;
    let r = ask(&mut c, &format!("AUTHENTICATE {response}")).await;
    assert!(r.is_empty(), "a full chunk waits for more: {r:?}");
    let r = ask(&mut c, "AUTHENTICATE +").await;
    assert_eq!(cmds(&r), ["900", "903"]);

    // Longer: a full chunk then the rest.
    let long = "bar".repeat(100);
    create_account(s.irc, "foo2", &long).await;
    let mut c = sasl_client(&s, &[]).await;
    let response = B64.encode(format!("\0foo2\0{long}"));
    ask(&mut c, "AUTHENTICATE PLAIN").await;
    assert!(
        ask(&mut c, &format!("AUTHENTICATE {}", &response[..400]))
            .await
            .is_empty()
    );
    let r = ask(&mut c, &format!("AUTHENTICATE {}", &response[400..])).await;
    assert_eq!(cmds(&r), ["900", "903"]);

    // A response may not grow without end.
    let mut c = sasl_client(&s, &[]).await;
    ask(&mut c, "AUTHENTICATE PLAIN").await;
    let chunk = format!("AUTHENTICATE {}", "A".repeat(400));
    let mut last = Vec::new();
    for _ in 0..4 {
        last = ask(&mut c, &chunk).await;
    }
    assert_eq!(cmds(&last), ["904"]);
}

/// The client's side of SCRAM-SHA-256, for the test.
async fn scram(c: &mut IrcClient, user: &str, password: &str) -> Vec<Msg> {
    let r = ask(c, "AUTHENTICATE SCRAM-SHA-256").await;
    assert_eq!(&*r[0].params[0], "+");
    let bare = format!("n={user},r=fyko+d2lbbFgONRv9qkxdawL");
    let r = ask(
        c,
        &format!("AUTHENTICATE {}", B64.encode(format!("n,,{bare}"))),
    )
    .await;
    if r[0].command != "AUTHENTICATE" {
        return r;
    }
    let server_first = String::from_utf8(B64.decode(&*r[0].params[0]).unwrap()).unwrap();
    let field = |k: &str| {
        server_first
            .split(',')
            .find_map(|f| f.strip_prefix(k))
            .unwrap()
            .to_string()
    };
    let (nonce, salt, iterations) = (field("r="), field("s="), field("i="));
    assert!(nonce.starts_with("fyko+d2lbbFgONRv9qkxdawL") && nonce.len() > 30);
    let salted = salted_password(
        password,
        &B64.decode(salt).unwrap(),
        iterations.parse().unwrap(),
    );
    let client_key = hmac(&salted, b"Client Key");
    let without_proof = format!("c=biws,r={nonce}");
    let auth = format!("{bare},{server_first},{without_proof}");
    let signature = hmac(&sha256(&client_key), auth.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(signature)
        .map(|(k, s)| k ^ s)
        .collect();
    let client_final = format!("{without_proof},p={}", B64.encode(proof));
    let r = ask(c, &format!("AUTHENTICATE {}", B64.encode(client_final))).await;
    if r[0].command != "AUTHENTICATE" {
        return r;
    }
    let server_final = String::from_utf8(B64.decode(&*r[0].params[0]).unwrap()).unwrap();
    let expected = hmac(&hmac(&salted, b"Server Key"), auth.as_bytes());
    assert_eq!(server_final, format!("v={}", B64.encode(expected)));
    ask(c, "AUTHENTICATE +").await
}

#[tokio::test]
async fn scram_sha_256_proves_both_sides() {
    let s = Server::start_default().await;
    create_account(s.irc, "Scramtest", "sesame").await;
    let mut c = sasl_client(&s, &[]).await;
    assert_eq!(cmds(&scram(&mut c, "Scramtest", "millet").await), ["904"]);
    assert_eq!(cmds(&scram(&mut c, "nobody", "sesame").await), ["904"]);
    let r = scram(&mut c, "scramtest", "sesame").await;
    assert_eq!(cmds(&r), ["900", "903"], "{r:?}");
    assert_eq!(r[0].params[2], "Scramtest", "the name as registered");
}

#[tokio::test]
async fn login_after_registration_and_again() {
    let s = Server::start_default().await;
    create_account(s.irc, "foo", "barbar").await;
    create_account(s.irc, "jilles", "sesame").await;
    let mut watcher = IrcClient::registered_with_caps(s.irc, "w", &["account-notify"]).await;
    join(&mut watcher, "#c").await;
    let mut c = IrcClient::registered_with_caps(s.irc, "user", &["sasl"]).await;
    join(&mut c, "#c").await;
    watcher.sync().await;
    assert_eq!(cmds(&plain(&mut c, b"\0foo\0barbar").await), ["900", "903"]);
    let m = watcher.expect("ACCOUNT").await;
    assert_eq!(
        (m.source.as_deref(), &*m.params[0]),
        (Some("user!~user@127.0.0.1"), "foo")
    );
    let r = plain(&mut c, b"\0jilles\0sesame").await;
    assert_eq!(cmds(&r), ["900", "903"]);
    assert_eq!(&*watcher.expect("ACCOUNT").await.params[0], "jilles");
}

#[tokio::test]
async fn registration_during_sasl_abandons_it() {
    let s = Server::start_default().await;
    let mut c = sasl_client(&s, &[]).await;
    ask(&mut c, "AUTHENTICATE PLAIN").await;
    c.send("NICK reguser").await;
    c.send("USER reguser 0 * :Test").await;
    let r = ask(&mut c, "CAP END").await;
    assert_eq!(cmds(&r)[..2], ["906", "001"]);
}

#[tokio::test]
async fn register_answers_each_refusal() {
    let mut cfg = Config::default();
    cfg.limits.irc_line_length = 1024;
    let s = Server::start(cfg).await;
    let mut c =
        IrcClient::registered_with_caps(s.irc, "bar", &["draft/account-registration"]).await;
    let refused = |r: Vec<Msg>| fail(&r);
    let r = ask(&mut c, "REGISTER foo * sesame").await;
    assert_eq!(
        refused(r),
        ("ACCOUNT_NAME_MUST_BE_NICK".into(), vec!["foo".into()])
    );
    let r = ask(&mut c, "REGISTER * * :").await;
    assert_eq!(refused(r).0, "WEAK_PASSWORD");
    let r = ask(&mut c, &format!("REGISTER * * {}", "x".repeat(601))).await;
    assert_eq!(refused(r).0, "UNACCEPTABLE_PASSWORD");
    let r = ask(&mut c, "REGISTER * nope sesame").await;
    assert_eq!(refused(r).0, "INVALID_EMAIL");
    let r = ask(&mut c, &format!("REGISTER * * {}", "x".repeat(600))).await;
    assert!(cmds(&r).contains(&"900"), "600 bytes are accepted: {r:?}");
    let r = ask(&mut c, "REGISTER * * sesame").await;
    assert_eq!(refused(r).0, "ALREADY_AUTHENTICATED");
    let r = ask(&mut c, "VERIFY bar 1234").await;
    assert_eq!(refused(r), ("INVALID_CODE".into(), vec!["bar".into()]));
    c.send("QUIT").await;
    c.eof().await;

    // Taken, in any case; and a nick someone else holds.
    let mut c = IrcClient::registered(s.irc, "BAR").await;
    let r = ask(&mut c, "REGISTER * a@example.org sesame").await;
    assert_eq!(refused(r).0, "ACCOUNT_EXISTS");
    let _root = IrcClient::registered(s.irc, "root").await;
    let mut c = IrcClient::connect(s.irc).await;
    let r = ask(&mut c, "REGISTER * * sesame").await;
    assert_eq!(refused(r).0, "NEED_NICK");
    c.send("NICK root").await;
    let r = ask(&mut c, "REGISTER * * sesame").await;
    assert_eq!(refused(r).0, "ACCOUNT_EXISTS");
    // Before registration, with an email.
    c.send("NICK early").await;
    let r = ask(&mut c, "REGISTER * early@example.org sesame").await;
    assert_eq!(cmds(&r), ["900", "REGISTER"], "{r:?}");
}

/// The capability's value as `CAP LS 302` shows it, if offered.
async fn registration_cap(s: &Server) -> Option<String> {
    let mut c = IrcClient::connect(s.irc).await;
    let r = ask(&mut c, "CAP LS 302").await;
    r[0].params.last().unwrap().split(' ').find_map(|c| {
        c.strip_prefix("draft/account-registration")
            .map(str::to_string)
    })
}

#[tokio::test]
async fn registration_settings() {
    let s = Server::start_default().await;
    assert_eq!(
        registration_cap(&s).await.as_deref(),
        Some("=before-connect")
    );

    let mut cfg = Config::default();
    cfg.accounts.before_connect = false;
    cfg.accounts.require_email = true;
    let s = Server::start(cfg).await;
    assert_eq!(
        registration_cap(&s).await.as_deref(),
        Some("=email-required")
    );
    let mut c = IrcClient::connect(s.irc).await;
    c.send("NICK bar").await;
    let r = ask(&mut c, "REGISTER * * sesame").await;
    assert_eq!(fail(&r).0, "COMPLETE_CONNECTION_REQUIRED");
    let mut c = IrcClient::registered(s.irc, "baz").await;
    let r = ask(&mut c, "REGISTER * * sesame").await;
    assert_eq!(fail(&r).0, "INVALID_EMAIL");
    let r = ask(&mut c, "REGISTER * baz@example.org sesame").await;
    assert!(cmds(&r).contains(&"REGISTER"), "{r:?}");

    let mut cfg = Config::default();
    cfg.accounts.registration = RegistrationPolicy::Closed;
    let s = Server::start(cfg).await;
    assert_eq!(registration_cap(&s).await, None, "not offered");
    let mut c = IrcClient::registered(s.irc, "qux").await;
    let r = ask(&mut c, "REGISTER * * sesame").await;
    assert_eq!(fail(&r).0, "TEMPORARILY_UNAVAILABLE");
}

#[tokio::test]
async fn account_tag_and_extended_join() {
    let s = Server::start_default().await;
    create_account(s.irc, "jilles", "sesame").await;
    let caps = ["account-tag", "extended-join", "account-notify"];
    let mut foo = IrcClient::registered_with_caps(s.irc, "foo", &caps).await;
    join(&mut foo, "#chan").await;
    let mut anon = IrcClient::registered(s.irc, "anon").await;
    join(&mut anon, "#chan").await;
    let m = foo.expect("JOIN").await;
    assert_eq!(&m.params[..], ["#chan", "*", "Real anon"]);
    assert_eq!(m.tag("account"), None);

    let mut bar = logged_in(&s, "bar", "jilles", "sesame", &[]).await;
    join(&mut bar, "#chan").await;
    let m = foo.expect("JOIN").await;
    assert_eq!(&m.params[..], ["#chan", "jilles", "Real bar"]);
    assert_eq!(m.tag("account"), Some("jilles"));
    bar.send("PRIVMSG foo :hi").await;
    let m = foo.expect("PRIVMSG").await;
    assert_eq!(m.tag("account"), Some("jilles"));
    join(&mut bar, "#other").await;
    ask(&mut bar, "INVITE foo #other").await;
    let m = foo.expect("INVITE").await;
    assert_eq!(m.tag("account"), Some("jilles"));
    // Without the capability, no tag.
    bar.send("PRIVMSG anon :hi").await;
    assert_eq!(anon.expect("PRIVMSG").await.tag("account"), None);
}

#[tokio::test]
async fn extended_monitor_tells_account_changes() {
    let s = Server::start_default().await;
    let caps = ["extended-monitor", "account-notify"];
    let mut w = IrcClient::registered_with_caps(s.irc, "w", &caps).await;
    let mut nocap = IrcClient::registered_with_caps(s.irc, "n", &["extended-monitor"]).await;
    let mut jill = IrcClient::registered(s.irc, "jill").await;
    ask(&mut w, "MONITOR + jill").await;
    ask(&mut nocap, "MONITOR + jill").await;
    ask(&mut jill, "REGISTER * * sesame").await;
    let m = w.expect("ACCOUNT").await;
    assert_eq!(&*m.params[0], "jill");
    assert!(
        nocap.sync().await.is_empty(),
        "no account-notify, no ACCOUNT"
    );
}

#[tokio::test]
async fn registered_only_channels_and_speech() {
    let s = Server::start_default().await;
    create_account(s.irc, "reg", "sesame").await;
    let mut op = IrcClient::registered(s.irc, "op").await;
    join(&mut op, "#r").await;
    ask(&mut op, "MODE #r +R").await;
    let mut anon = IrcClient::registered(s.irc, "anon").await;
    let r = ask(&mut anon, "JOIN #r").await;
    assert_eq!(cmds(&r), ["477"]);
    let mut reg = logged_in(&s, "reg", "reg", "sesame", &[]).await;
    let r = ask(&mut reg, "JOIN #r").await;
    assert_eq!(cmds(&r)[0], "JOIN");

    join(&mut op, "#m").await;
    join(&mut anon, "#m").await;
    join(&mut reg, "#m").await;
    op.sync().await;
    let r = ask(&mut op, "MODE #m +M").await;
    assert_eq!(&*r[0].params[1], "+M");
    anon.sync().await;
    reg.sync().await;
    assert_eq!(cmds(&ask(&mut anon, "PRIVMSG #m :hi").await), ["477"]);
    assert!(ask(&mut reg, "PRIVMSG #m :hi").await.is_empty());
    ask(&mut op, "MODE #m +v anon").await;
    anon.sync().await;
    assert!(ask(&mut anon, "PRIVMSG #m :voiced").await.is_empty());
    let r = ask(&mut op, "MODE #m").await;
    let modes = r.iter().find(|m| m.command == "324").expect("324");
    assert_eq!(&*modes.params[2], "+Mnt");
}

#[tokio::test]
async fn the_account_extban_matches_accounts_not_nicks() {
    let s = Server::start_default().await;
    create_account(s.irc, "bob", "sesame").await;
    let mut op = IrcClient::registered(s.irc, "chanop").await;
    for ch in ["#b", "#e", "#i"] {
        join(&mut op, ch).await;
    }
    let r = ask(&mut op, "MODE #b +b a:BOB").await;
    assert_eq!(&r[0].params[1..], ["+b", "a:BOB"]);
    ask(&mut op, "MODE #e +b *!*@*").await;
    ask(&mut op, "MODE #e +e a:b*").await;
    ask(&mut op, "MODE #i +i").await;
    ask(&mut op, "MODE #i +I a:bob").await;
    let r = ask(&mut op, "MODE #b +b x:bob").await;
    assert_eq!(cmds(&r), ["696"], "unknown extban");

    let mut anon = IrcClient::registered(s.irc, "bob").await;
    // Nick protection warns the unidentified holder of "bob" first.
    anon.until(|m| m.command == "NOTICE").await;
    assert_eq!(cmds(&ask(&mut anon, "JOIN #b").await)[0], "JOIN");
    assert_eq!(cmds(&ask(&mut anon, "JOIN #e").await), ["474"]);
    assert_eq!(cmds(&ask(&mut anon, "JOIN #i").await), ["473"]);
    anon.send("QUIT").await;
    anon.eof().await;

    let mut bob = logged_in(&s, "bob", "bob", "sesame", &[]).await;
    assert_eq!(cmds(&ask(&mut bob, "JOIN #b").await), ["474"]);
    assert_eq!(cmds(&ask(&mut bob, "JOIN #e").await)[0], "JOIN");
    assert_eq!(cmds(&ask(&mut bob, "JOIN #i").await)[0], "JOIN");
    op.sync().await;
    let r = ask(&mut op, "MODE #b -b a:BOB").await;
    assert_eq!(cmds(&r), ["MODE"]);
    assert_eq!(cmds(&ask(&mut bob, "JOIN #b").await)[0], "JOIN");
}

#[tokio::test]
async fn line_who_shows_who_is_logged_in() {
    let s = Server::start_default().await;
    let mut line = support::line::named(&s, &["ann"]).await.remove(0);
    let mut irc = IrcClient::registered(s.irc, "bob").await;
    join(&mut irc, "#lobby").await;
    ask(&mut irc, "REGISTER * * sesame").await;
    line.expect("[server] bob joined #lobby").await;
    line.send("WHO").await;
    line.expect("[server] ann bob(bob)").await;
}
