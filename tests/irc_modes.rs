//! MODE (channel and user), KICK, INVITE and LIST over the irc dialect, their
//! effect on JOIN / PRIVMSG / TOPIC / NAMES, and how line users see them.

mod support;

use support::TIMEOUT;
use support::irc::{IrcClient, Msg, ask, join};
use support::server::Server;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Sends `line` and asserts the only reply is exactly one message with
/// `command` and `params`.
async fn only(c: &mut IrcClient, line: &str, command: &str, params: &[&str]) {
    let got = ask(c, line).await;
    assert_eq!(got.len(), 1, "{line}: {got:?}");
    assert_eq!(got[0].command, command, "{line}: {got:?}");
    if !params.is_empty() {
        assert_eq!(got[0].params, params, "{line}: {got:?}");
    }
}

/// The numeric codes among `msgs`.
fn codes(msgs: &[Msg]) -> Vec<String> {
    msgs.iter().map(|m| m.command.to_string()).collect()
}

/// Channel names listed by a LIST reply.
async fn listed(c: &mut IrcClient, line: &str) -> Vec<String> {
    let mut out: Vec<String> = ask(c, line)
        .await
        .into_iter()
        .filter(|m| m.command == "322")
        .map(|m| m.params[1].to_string())
        .collect();
    out.sort();
    out
}

/// Two users in `#m`, alice its operator.
async fn pair(s: &Server) -> (IrcClient, IrcClient) {
    let mut a = IrcClient::registered(s.irc, "alice").await;
    let mut b = IrcClient::registered(s.irc, "bob").await;
    join(&mut a, "#m").await;
    join(&mut b, "#m").await;
    a.expect("JOIN").await;
    (a, b)
}

#[tokio::test]
async fn mode_query_and_flags() {
    let s = Server::start_default().await;
    let (mut a, mut b) = pair(&s).await;
    let got = ask(&mut a, "MODE #m").await;
    assert_eq!(codes(&got), ["324", "329"]);
    assert_eq!(got[0].params, ["alice", "#m", "+nt"]);
    assert!(got[1].params[2].parse::<u64>().is_ok(), "{got:?}");

    only(&mut a, "MODE #m +imps", "MODE", &["#m", "+imps"]).await;
    let seen = b.msg().await;
    assert_eq!(seen.params, ["#m", "+imps"]);
    assert!(seen.source.unwrap().starts_with("alice!"));
    // Already set: nothing to echo, nothing broadcast.
    assert!(ask(&mut a, "MODE #m +i").await.is_empty());
    assert!(b.sync().await.is_empty());

    only(&mut a, "MODE #m -imnpst", "MODE", &["#m", "-imnpst"]).await;
    assert_eq!(b.msg().await.params, ["#m", "-imnpst"]);
    let got = ask(&mut a, "MODE #m").await;
    assert_eq!(got[0].params, ["alice", "#m", "+"]);
    only(&mut a, "MODE #m +t-t", "MODE", &["#m", "+t-t"]).await;
}

#[tokio::test]
async fn op_and_voice() {
    let s = Server::start_default().await;
    let (mut a, mut b) = pair(&s).await;
    // -v on an unvoiced member changes nothing and is left out of the echo.
    only(&mut a, "MODE #m +o-v bob bob", "MODE", &["#m", "+o", "bob"]).await;
    assert_eq!(b.msg().await.params, ["#m", "+o", "bob"]);
    only(
        &mut b,
        "MODE #m +v-o BOB alice",
        "MODE",
        &["#m", "+v-o", "bob", "alice"],
    )
    .await;
    assert_eq!(a.msg().await.params, ["#m", "+v-o", "bob", "alice"]);
    let names = ask(&mut a, "NAMES #m").await;
    assert_eq!(names[0].params[3], "alice @bob");
    a.send("CAP REQ multi-prefix").await;
    a.expect("CAP").await;
    let names = ask(&mut a, "NAMES #m").await;
    assert_eq!(names[0].params[3], "alice @+bob");
    // At most MODES=4 parameterised changes per command.
    let mut c = IrcClient::registered(s.irc, "carol").await;
    join(&mut c, "#m").await;
    b.sync().await;
    let got = ask(&mut b, "MODE #m +vvvvv alice carol bob alice carol").await;
    assert_eq!(got[0].params, ["#m", "+vv", "alice", "carol"]);
}

#[tokio::test]
async fn mode_errors() {
    let s = Server::start_default().await;
    let (mut a, mut b) = pair(&s).await;
    let mut c = IrcClient::registered(s.irc, "carol").await;
    only(&mut b, "MODE #m +o bob", "482", &[]).await;
    only(&mut b, "MODE #m +n", "482", &[]).await;
    only(&mut a, "MODE #nowhere +o alice", "403", &[]).await;
    only(&mut a, "MODE #nowhere", "403", &[]).await;
    only(&mut a, "MODE #m +o nobody", "401", &[]).await;
    only(
        &mut a,
        "MODE #m +o carol",
        "441",
        &["alice", "carol", "#m", "They aren't on that channel"],
    )
    .await;
    only(&mut a, "MODE #m +x", "472", &[]).await;
    only(&mut c, "MODE #m +i", "442", &[]).await;
    only(&mut a, "MODE #m +l abc", "696", &[]).await;
    let got = ask(&mut a, "MODE #m +l 0").await;
    assert_eq!(got[0].params[..4], ["alice", "#m", "l", "0"]);
    let got = ask(&mut a, "MODE #m +k :with space").await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].command, "696");
    assert_eq!(got[0].params[..4], ["alice", "#m", "k", "*"]);
    only(
        &mut a,
        &format!("MODE #m +k {}", "x".repeat(40)),
        "696",
        &[],
    )
    .await;
    // A bad change does not stop the good ones.
    let got = ask(&mut a, "MODE #m +xi").await;
    assert_eq!(codes(&got), ["472", "MODE"]);
    assert_eq!(got[1].params, ["#m", "+i"]);
    // Users' modes.
    only(&mut a, "MODE bob", "502", &[]).await;
    only(&mut a, "MODE bob +i", "502", &[]).await;
    only(&mut a, "MODE nobody", "401", &[]).await;
    only(&mut a, "MODE alice +x", "501", &[]).await;
}

#[tokio::test]
async fn user_modes() {
    let s = Server::start_default().await;
    let mut a = IrcClient::registered(s.irc, "alice").await;
    only(&mut a, "MODE alice", "221", &["alice", "+"]).await;
    let got = ask(&mut a, "MODE alice +iwB").await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].source.as_deref(), Some("alice"));
    assert_eq!(got[0].params, ["alice", "+iwB"]);
    only(&mut a, "MODE Alice", "221", &["alice", "+Biw"]).await;
    // +o only comes with OPER; +Z only from the server.
    assert!(ask(&mut a, "MODE alice +oZ").await.is_empty());
    only(&mut a, "MODE alice -i+Z-B", "MODE", &["alice", "-iB"]).await;
    only(&mut a, "MODE alice", "221", &["alice", "+w"]).await;
}

#[tokio::test]
async fn bans_exceptions_and_lists() {
    let s = Server::start_default().await;
    let mut a = IrcClient::registered(s.irc, "alice").await;
    let mut b = IrcClient::registered(s.irc, "bob").await;
    join(&mut a, "#m").await;
    only(&mut a, "MODE #m +b bob", "MODE", &["#m", "+b", "bob!*@*"]).await;
    only(
        &mut b,
        "JOIN #m",
        "474",
        &["bob", "#m", "Cannot join channel (+b)"],
    )
    .await;
    // Already banned: no echo.
    assert!(ask(&mut a, "MODE #m +b BOB!*@*").await.is_empty());
    only(
        &mut a,
        "MODE #m +e ~bob@127.0.0.1",
        "MODE",
        &["#m", "+e", "*!~bob@127.0.0.1"],
    )
    .await;
    join(&mut b, "#m").await;
    a.expect("JOIN").await;

    let got = ask(&mut b, "MODE #m +b").await;
    assert_eq!(codes(&got), ["367", "368"]);
    assert_eq!(
        got[0].params[..4],
        ["bob", "#m", "bob!*@*", "alice!~alice@127.0.0.1"]
    );
    assert!(got[0].params[4].parse::<u64>().is_ok());
    let got = ask(&mut b, "MODE #m e").await;
    assert_eq!(codes(&got), ["348", "349"]);
    assert_eq!(got[0].params[2], "*!~bob@127.0.0.1");
    let got = ask(&mut b, "MODE #m +I").await;
    assert_eq!(codes(&got), ["347"]);
    // Banned members may not speak, the exception covers bob.
    b.send("PRIVMSG #m :still here").await;
    a.expect("PRIVMSG").await;

    // Removal matches up to case and echoes the stored mask.
    only(&mut a, "MODE #m -b BOB", "MODE", &["#m", "-b", "bob!*@*"]).await;
    b.expect("MODE").await;
    assert!(ask(&mut a, "MODE #m -b bob").await.is_empty());
    only(&mut a, "MODE #m -e *!~bob@127.0.0.1", "MODE", &[]).await;
    b.expect("MODE").await;
}

#[tokio::test]
async fn list_modes_are_limited() {
    let mut cfg = bavard::config::Config::default();
    cfg.limits.list_entries = 2;
    let s = Server::start(cfg).await;
    let mut a = IrcClient::registered(s.irc, "alice").await;
    join(&mut a, "#m").await;
    let got = ask(&mut a, "MODE #m +beI x y z").await;
    assert_eq!(codes(&got), ["478", "MODE"]);
    assert_eq!(got[0].params[..3], ["alice", "#m", "I"]);
    assert_eq!(got[1].params, ["#m", "+be", "x!*@*", "y!*@*"]);
}

#[tokio::test]
async fn invite_only_and_invite() {
    let s = Server::start_default().await;
    let mut a = IrcClient::registered(s.irc, "alice").await;
    let mut b = IrcClient::registered(s.irc, "bob").await;
    let mut c = IrcClient::registered_with_caps(s.irc, "carol", &["invite-notify"]).await;
    let mut d = IrcClient::registered_with_caps(s.irc, "dave", &["invite-notify"]).await;
    join(&mut a, "#m").await;
    join(&mut c, "#m").await;
    join(&mut d, "#m").await;
    a.sync().await;
    c.sync().await;
    only(&mut a, "MODE #m +io carol", "MODE", &["#m", "+io", "carol"]).await;
    c.sync().await;
    d.sync().await;
    only(&mut b, "JOIN #m", "473", &[]).await;
    // The inviter must be on the channel, and an operator when it is +i.
    only(
        &mut b,
        "INVITE dave #m",
        "442",
        &["bob", "#m", "You're not on that channel"],
    )
    .await;
    only(
        &mut d,
        "INVITE bob #m",
        "482",
        &["dave", "#m", "You're not channel operator"],
    )
    .await;
    only(&mut a, "INVITE nobody #m", "401", &[]).await;
    only(&mut a, "INVITE bob #nowhere", "403", &[]).await;
    only(
        &mut a,
        "INVITE dave #m",
        "443",
        &["alice", "dave", "#m", "is already on channel"],
    )
    .await;

    b.send("AWAY :lunch").await;
    b.expect("306").await;
    let got = ask(&mut a, "INVITE bob #m").await;
    assert_eq!(codes(&got), ["341", "301"]);
    assert_eq!(got[0].params, ["alice", "bob", "#m"]);
    assert_eq!(got[1].params, ["alice", "bob", "lunch"]);
    let inv = b.msg().await;
    assert_eq!(inv.command, "INVITE");
    assert_eq!(inv.params, ["bob", "#m"]);
    assert!(inv.source.unwrap().starts_with("alice!"));
    // invite-notify: the other operator hears of it, a plain member does not.
    assert_eq!(c.msg().await.params, ["bob", "#m"]);
    assert!(d.sync().await.is_empty());
    join(&mut b, "#m").await;

    // The invitation is used up by the join.
    b.send("PART #m").await;
    b.expect("PART").await;
    only(&mut b, "JOIN #m", "473", &[]).await;
    // An invitation also passes bans and the limit.
    ask(&mut a, "MODE #m -i+bl bob 1").await;
    only(&mut b, "JOIN #m", "471", &[]).await;
    ask(&mut a, "MODE #m -l").await;
    only(&mut b, "JOIN #m", "474", &[]).await;
    ask(&mut a, "MODE #m +l 1").await;
    ask(&mut a, "INVITE bob #m").await;
    join(&mut b, "#m").await;
}

#[tokio::test]
async fn invite_without_invite_only() {
    let s = Server::start_default().await;
    let (mut a, mut b) = pair(&s).await;
    let mut c = IrcClient::registered(s.irc, "carol").await;
    // Any member may invite to a channel that is not +i; others hear nothing.
    only(&mut b, "INVITE carol #m", "341", &["bob", "carol", "#m"]).await;
    assert_eq!(c.msg().await.params, ["carol", "#m"]);
    assert!(a.sync().await.is_empty());
}

#[tokio::test]
async fn key_and_limit() {
    let s = Server::start_default().await;
    let mut a = IrcClient::registered(s.irc, "alice").await;
    let mut b = IrcClient::registered(s.irc, "bob").await;
    let mut c = IrcClient::registered(s.irc, "carol").await;
    join(&mut a, "#m").await;
    only(&mut a, "MODE #m +k beer", "MODE", &["#m", "+k", "beer"]).await;
    only(
        &mut b,
        "JOIN #m",
        "475",
        &["bob", "#m", "Cannot join channel (+k)"],
    )
    .await;
    only(&mut b, "JOIN #m bees", "475", &[]).await;
    b.send("JOIN #m beer").await;
    assert_eq!(b.msg().await.params, ["#m"]);
    b.expect("366").await;
    a.expect("JOIN").await;
    // Members see the key, others only that there is one.
    let got = ask(&mut a, "MODE #m").await;
    assert_eq!(got[0].params, ["alice", "#m", "+ntk", "beer"]);
    let got = ask(&mut c, "MODE #m").await;
    assert_eq!(got[0].params, ["carol", "#m", "+ntk"]);
    only(&mut a, "MODE #m -k", "MODE", &["#m", "-k", "*"]).await;
    b.expect("MODE").await;

    only(&mut a, "MODE #m +l 2", "MODE", &["#m", "+l", "2"]).await;
    assert_eq!(b.msg().await.params, ["#m", "+l", "2"]);
    only(
        &mut c,
        "JOIN #m",
        "471",
        &["carol", "#m", "Cannot join channel (+l)"],
    )
    .await;
    let got = ask(&mut c, "MODE #m").await;
    assert_eq!(got[0].params, ["carol", "#m", "+ntl", "2"]);
    assert!(ask(&mut a, "MODE #m +l 2").await.is_empty());
    only(&mut a, "MODE #m -l", "MODE", &["#m", "-l"]).await;
    join(&mut c, "#m").await;
}

#[tokio::test]
async fn moderated_and_no_external() {
    let s = Server::start_default().await;
    let (mut a, mut b) = pair(&s).await;
    let mut c = IrcClient::registered(s.irc, "carol").await;
    ask(&mut a, "MODE #m +m").await;
    b.expect("MODE").await;
    only(
        &mut b,
        "PRIVMSG #m :hello",
        "404",
        &["bob", "#m", "Cannot send to channel"],
    )
    .await;
    ask(&mut a, "MODE #m +v bob").await;
    b.expect("MODE").await;
    b.send("PRIVMSG #m :voiced now").await;
    assert_eq!(a.expect("PRIVMSG").await.params, ["#m", "voiced now"]);
    // +n (on by default) keeps outsiders out.
    only(&mut c, "PRIVMSG #m :from outside", "404", &[]).await;
    ask(&mut a, "MODE #m -mn").await;
    c.send("PRIVMSG #m :from outside").await;
    assert_eq!(a.expect("PRIVMSG").await.params, ["#m", "from outside"]);
}

#[tokio::test]
async fn topic_lock() {
    let s = Server::start_default().await;
    let (mut a, mut b) = pair(&s).await;
    only(&mut b, "TOPIC #m :mine", "482", &[]).await;
    ask(&mut a, "MODE #m -t").await;
    b.expect("MODE").await;
    only(&mut b, "TOPIC #m :mine", "TOPIC", &["#m", "mine"]).await;
}

#[tokio::test]
async fn secret_channels_are_hidden() {
    let s = Server::start_default().await;
    let mut a = IrcClient::registered(s.irc, "alice").await;
    let mut c = IrcClient::registered(s.irc, "carol").await;
    join(&mut a, "#m").await;
    join(&mut a, "#open").await;
    ask(&mut a, "MODE #m +s").await;
    assert_eq!(listed(&mut c, "LIST").await, ["#open"]);
    assert_eq!(listed(&mut a, "LIST").await, ["#m", "#open"]);
    let names = ask(&mut c, "NAMES #m").await;
    assert_eq!(codes(&names), ["366"]);
    // Private channels too.
    ask(&mut a, "MODE #open +p").await;
    assert!(listed(&mut c, "LIST").await.is_empty());
    only(&mut c, "MODE #m b", "442", &[]).await;
}

#[tokio::test]
async fn kick() {
    let s = Server::start_default().await;
    let (mut a, mut b) = pair(&s).await;
    let mut c = IrcClient::registered(s.irc, "carol").await;
    join(&mut c, "#m").await;
    a.expect("JOIN").await;
    b.expect("JOIN").await;
    // Errors: outsider, non-operator, target elsewhere, no channel, no nick.
    let mut d = IrcClient::registered(s.irc, "dave").await;
    only(&mut d, "KICK #m bob", "442", &[]).await;
    only(&mut b, "KICK #m carol", "482", &[]).await;
    only(
        &mut a,
        "KICK #m dave",
        "441",
        &["alice", "dave", "#m", "They aren't on that channel"],
    )
    .await;
    only(&mut a, "KICK #nowhere bob", "403", &[]).await;
    only(&mut a, "KICK #m nobody", "401", &[]).await;

    only(
        &mut a,
        "KICK #m bob :bye now",
        "KICK",
        &["#m", "bob", "bye now"],
    )
    .await;
    let k = b.msg().await;
    assert_eq!(k.params, ["#m", "bob", "bye now"]);
    assert!(k.source.unwrap().starts_with("alice!"));
    assert_eq!(c.msg().await.params, ["#m", "bob", "bye now"]);
    only(&mut b, "PRIVMSG #m :let me back", "404", &[]).await;
    // The default reason is the kicker's nick; several nicks in one command.
    join(&mut b, "#m").await;
    let got = ask(&mut a, "KICK #m Bob,carol").await;
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[1].params, ["#m", "bob", "alice"]);
    assert_eq!(got[2].params, ["#m", "carol", "alice"]);
    // Reasons are cut at KICKLEN.
    join(&mut b, "#m").await;
    let long = "x".repeat(400);
    let got = ask(&mut a, &format!("KICK #m bob :{long}")).await;
    let k = got.last().unwrap();
    assert_eq!(k.command, "KICK");
    assert_eq!(k.params[2].len(), 255);
}

#[tokio::test]
async fn list_with_elist_conditions() {
    let s = Server::start_default().await;
    let mut a = IrcClient::registered(s.irc, "alice").await;
    let mut b = IrcClient::registered(s.irc, "bob").await;
    let mut c = IrcClient::registered(s.irc, "carol").await;
    join(&mut a, "#chan1").await;
    join(&mut a, "#chan2").await;
    join(&mut b, "#chan2").await;
    ask(&mut a, "TOPIC #chan1 :first one").await;

    let got = ask(&mut c, "LIST").await;
    assert_eq!(codes(&got), ["321", "322", "322", "323"]);
    assert_eq!(got[1].params, ["carol", "#chan1", "1", "[+nt] first one"]);
    assert_eq!(got[2].params, ["carol", "#chan2", "2", "[+nt]"]);
    let both = ["#chan1", "#chan2"];
    assert_eq!(listed(&mut c, "LIST #chan2").await, ["#chan2"]);
    assert_eq!(listed(&mut c, "LIST #CHAN1,#chan2").await, both);
    assert_eq!(listed(&mut c, "LIST #nowhere").await, Vec::<String>::new());
    assert_eq!(listed(&mut c, "LIST *an1").await, ["#chan1"]);
    assert_eq!(listed(&mut c, "LIST #c?an*").await, both);
    assert_eq!(listed(&mut c, "LIST !*an1").await, ["#chan2"]);
    assert_eq!(listed(&mut c, "LIST >1").await, ["#chan2"]);
    assert_eq!(listed(&mut c, "LIST <2").await, ["#chan1"]);
    assert_eq!(listed(&mut c, "LIST >0,<100").await, both);
    assert_eq!(listed(&mut c, "LIST C<10").await, both);
    assert!(listed(&mut c, "LIST C>10").await.is_empty());
    assert!(listed(&mut c, "LIST C<0").await.is_empty());
    assert_eq!(listed(&mut c, "LIST T<10").await, ["#chan1"]);
    assert!(listed(&mut c, "LIST T>10").await.is_empty());
    // Conditions may follow a channel list, as a second parameter.
    assert_eq!(listed(&mut c, "LIST #chan* >1").await, ["#chan2"]);
}

/// Reads a line user's lines until `want` arrives.
async fn line_until(
    r: &mut tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
    want: &str,
) {
    loop {
        let l = tokio::time::timeout(TIMEOUT, r.next_line())
            .await
            .expect("timed out waiting for a line")
            .unwrap()
            .unwrap();
        if l == want {
            return;
        }
    }
}

#[tokio::test]
async fn line_users_see_modes_kicks_and_invites() {
    let s = Server::start_default().await;
    let mut a = IrcClient::registered(s.irc, "alice").await;
    join(&mut a, "#m").await;
    let stream = tokio::net::TcpStream::connect(s.line).await.unwrap();
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r).lines();
    w.write_all(b"JOIN #m\n").await.unwrap();
    let j = a.expect("JOIN").await;
    let guest = j.source.unwrap().split('!').next().unwrap().to_string();

    ask(&mut a, &format!("MODE #m +o-t {guest}")).await;
    let want = format!("[server] alice sets mode +o-t {guest} on #m");
    line_until(&mut r, &want).await;
    ask(&mut a, &format!("KICK #m {guest} :out")).await;
    let want = format!("[server] {guest} was kicked from #m by alice (out)");
    line_until(&mut r, &want).await;
    // The kicked line user may be invited back.
    ask(&mut a, "MODE #m +i").await;
    let got = ask(&mut a, &format!("INVITE {guest} #m")).await;
    assert_eq!(got[0].command, "341");
    let want = format!("[server] alice invites {guest} to #m");
    line_until(&mut r, &want).await;
    w.write_all(b"JOIN #m\n").await.unwrap();
    a.expect("JOIN").await;
}
