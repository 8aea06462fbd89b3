//! IRCv3 `draft/metadata-3` over real TCP: every subcommand, its refusals,
//! the limits at their edges, notifications to subscribers, and what JOIN,
//! WHOIS and the registration burst bring.

mod support;

use bavard::config::{Config, Limits};
use support::irc::{IrcClient as Client, Msg, ask, cmds, join};
use support::server::Server;

const MD: &[&str] = &["draft/metadata-3", "batch"];

fn params(m: &Msg) -> Vec<&str> {
    m.params.iter().map(|p| &**p).collect()
}

/// The lines of the one batch a reply is (checking its frame), without it.
fn batch<'a>(r: &'a [Msg], kind: &str) -> &'a [Msg] {
    assert!(r.len() >= 2, "{r:?}");
    assert_eq!(r[0].command, "BATCH");
    let id = r[0].params[0].strip_prefix('+').unwrap();
    assert_eq!(r[0].params[1], kind);
    let last = r.last().unwrap();
    assert_eq!(params(last), [format!("-{id}").as_str()]);
    let inner = &r[1..r.len() - 1];
    assert!(inner.iter().all(|m| m.tag("batch") == Some(id)), "{r:?}");
    inner
}

fn fail(r: &[Msg]) -> Vec<&str> {
    assert_eq!(cmds(r), ["FAIL"], "{r:?}");
    params(&r[0])
}

fn limits(f: impl FnOnce(&mut Limits)) -> Config {
    let mut cfg = Config::default();
    f(&mut cfg.limits);
    cfg
}

#[tokio::test]
async fn the_capability_tells_the_limits() {
    let s = Server::start(limits(|l| {
        l.metadata_subs = 7;
        l.metadata_keys = 3;
        l.metadata_value_bytes = 99;
    }))
    .await;
    let mut c = Client::connect(s.irc).await;
    c.send("CAP LS 302").await;
    let ls = c.expect("CAP").await;
    let caps = ls.params.last().unwrap();
    assert!(
        caps.split(' ').any(
            |c| c == "draft/metadata-3=before-connect,max-subs=7,max-keys=3,max-value-bytes=99"
        ),
        "{caps}"
    );
}

#[tokio::test]
async fn get_list_set_clear_on_oneself_and_others() {
    let s = Server::start_default().await;
    let mut foo = Client::registered_with_caps(s.irc, "foo", MD).await;
    let mut bar = Client::registered_with_caps(s.irc, "bar", MD).await;
    let r = ask(&mut foo, "METADATA * SET display-name :Foo The First").await;
    assert_eq!(cmds(&r), ["761"]);
    assert_eq!(
        params(&r[0]),
        ["foo", "foo", "display-name", "*", "Foo The First"]
    );
    // An empty value is a value; no value removes the key.
    let r = ask(&mut foo, "METADATA foo SET status :").await;
    assert_eq!(params(&r[0]), ["foo", "foo", "status", "*", ""]);
    let r = ask(&mut foo, "METADATA * GET display-name avatar BAD").await;
    let lines = batch(&r, "metadata");
    assert_eq!(r[0].params[2], "foo", "the batch names its target");
    assert_eq!(cmds(lines), ["761", "766", "FAIL"]);
    assert_eq!(params(&lines[1])[..3], ["foo", "foo", "avatar"]);
    assert_eq!(params(&lines[2])[..3], ["METADATA", "KEY_INVALID", "BAD"]);
    // Others may read, not write.
    let r = ask(&mut bar, "METADATA FOO LIST").await;
    let lines = batch(&r, "metadata");
    let listed: Vec<Vec<&str>> = lines.iter().map(params).collect();
    assert_eq!(
        listed,
        [
            ["bar", "foo", "display-name", "*", "Foo The First"],
            ["bar", "foo", "status", "*", ""]
        ]
    );
    assert_eq!(
        fail(&ask(&mut bar, "METADATA foo SET x :y").await)[..4],
        ["METADATA", "KEY_NO_PERMISSION", "foo", "x"]
    );
    assert_eq!(
        fail(&ask(&mut bar, "METADATA foo CLEAR").await)[..4],
        ["METADATA", "KEY_NO_PERMISSION", "foo", "*"]
    );
    assert!(foo.sync().await.is_empty(), "nothing for foo");
    // Unknown targets get only the FAIL; removing an unset key fails.
    for target in ["nobody", "#nowhere"] {
        let r = ask(&mut bar, &format!("METADATA {target} LIST")).await;
        assert_eq!(fail(&r)[..3], ["METADATA", "INVALID_TARGET", target]);
    }
    assert_eq!(
        fail(&ask(&mut foo, "METADATA * SET avatar").await)[..4],
        ["METADATA", "KEY_NOT_SET", "foo", "avatar"]
    );
    assert_eq!(
        fail(&ask(&mut foo, "METADATA * SET $url :x").await)[..3],
        ["METADATA", "KEY_INVALID", "$url"]
    );
    assert_eq!(
        fail(&ask(&mut foo, "METADATA * DESTROY").await)[..3],
        ["METADATA", "SUBCOMMAND_INVALID", "DESTROY"]
    );
    for short in [
        "METADATA *",
        "METADATA * GET",
        "METADATA * SET",
        "METADATA * SUB",
    ] {
        assert_eq!(cmds(&ask(&mut foo, short).await), ["461"], "{short}");
    }
    // CLEAR lists what it removed; the rest is gone.
    let r = ask(&mut foo, "METADATA * CLEAR").await;
    let cleared: Vec<&str> = batch(&r, "metadata")
        .iter()
        .map(|m| &*m.params[2])
        .collect();
    assert_eq!(cleared, ["display-name", "status"]);
    assert!(batch(&ask(&mut foo, "METADATA * LIST").await, "metadata").is_empty());
    // Without `batch`, the same lines, unframed.
    let mut plain = Client::registered_with_caps(s.irc, "plain", &["draft/metadata-3"]).await;
    ask(&mut plain, "METADATA * SET a :1").await;
    assert_eq!(cmds(&ask(&mut plain, "METADATA * LIST").await), ["761"]);
}

#[tokio::test]
async fn limits_at_their_edges() {
    let s = Server::start(limits(|l| {
        l.metadata_keys = 2;
        l.metadata_key_bytes = 8;
        l.metadata_value_bytes = 10;
        l.metadata_subs = 2;
    }))
    .await;
    let mut c = Client::registered_with_caps(s.irc, "foo", MD).await;
    assert_eq!(
        cmds(&ask(&mut c, "METADATA * SET a :0123456789").await),
        ["761"]
    );
    assert_eq!(
        fail(&ask(&mut c, "METADATA * SET b :0123456789x").await)[..3],
        ["METADATA", "INVALID_VALUE", "b"]
    );
    assert_eq!(
        cmds(&ask(&mut c, "METADATA * SET kkkkkkkk :v").await),
        ["761"]
    );
    assert_eq!(
        fail(&ask(&mut c, "METADATA * SET kkkkkkkkk :v").await)[1],
        "KEY_INVALID"
    );
    // Two keys: a third is refused, a new value for one of them is not.
    assert_eq!(
        fail(&ask(&mut c, "METADATA * SET c :v").await)[..3],
        ["METADATA", "LIMIT_REACHED", "foo"]
    );
    assert_eq!(cmds(&ask(&mut c, "METADATA * SET a :again").await), ["761"]);
    // Two subscriptions: the third key and those after it are refused.
    let r = ask(&mut c, "METADATA * SUB x $bad y z w").await;
    assert_eq!(cmds(&r), ["770", "FAIL", "FAIL"]);
    assert_eq!(params(&r[0]), ["foo", "x", "y"]);
    assert_eq!(params(&r[1])[..3], ["METADATA", "KEY_INVALID", "$bad"]);
    assert_eq!(params(&r[2])[..3], ["METADATA", "TOO_MANY_SUBS", "z"]);
    // Subscribing again to one already there is fine.
    assert_eq!(cmds(&ask(&mut c, "METADATA * SUB y").await), ["770"]);
    let r = ask(&mut c, "METADATA * SUBS").await;
    let subs: Vec<Vec<&str>> = batch(&r, "metadata-subs").iter().map(params).collect();
    assert_eq!(subs, [["foo", "x", "y"]]);
    let r = ask(&mut c, "METADATA * UNSUB x q").await;
    assert_eq!(params(&r[0]), ["foo", "x", "q"]);
    assert_eq!(cmds(&ask(&mut c, "METADATA * SUB z").await), ["770"]);
}

#[tokio::test]
async fn channels_have_metadata_their_operators_set() {
    let s = Server::start_default().await;
    let mut op = Client::registered_with_caps(s.irc, "op", MD).await;
    let mut member = Client::registered_with_caps(s.irc, "member", MD).await;
    let mut outsider = Client::registered_with_caps(s.irc, "outsider", MD).await;
    join(&mut op, "#c").await;
    join(&mut member, "#c").await;
    op.sync().await;
    let r = ask(&mut op, "METADATA #C SET url :https://example.org").await;
    assert_eq!(
        params(&r[0]),
        ["op", "#c", "url", "*", "https://example.org"]
    );
    assert_eq!(
        fail(&ask(&mut member, "METADATA #c SET url :mine").await)[..4],
        ["METADATA", "KEY_NO_PERMISSION", "#c", "url"]
    );
    let r = ask(&mut member, "METADATA #c GET url").await;
    assert_eq!(batch(&r, "metadata")[0].params[4], "https://example.org");
    // Outsiders read nothing; a secret channel does not exist for them.
    for sub in ["GET url", "LIST", "SYNC"] {
        let r = ask(&mut outsider, &format!("METADATA #c {sub}")).await;
        assert_eq!(
            fail(&r)[..3],
            ["METADATA", "KEY_NO_PERMISSION", "#c"],
            "{sub}"
        );
    }
    ask(&mut op, "MODE #c +s").await;
    let r = ask(&mut outsider, "METADATA #c LIST").await;
    assert_eq!(fail(&r)[1], "INVALID_TARGET");
    // A rename keeps it.
    ask(&mut op, "RENAME #c #d").await;
    let r = ask(&mut op, "METADATA #d LIST").await;
    assert_eq!(batch(&r, "metadata")[0].params[2], "url");
}

#[tokio::test]
async fn subscribers_hear_of_changes_they_share_a_channel_with() {
    let s = Server::start_default().await;
    let mut foo = Client::registered_with_caps(s.irc, "foo", MD).await;
    let mut bar = Client::registered_with_caps(s.irc, "bar", MD).await;
    let mut deaf = Client::registered_with_caps(s.irc, "deaf", MD).await;
    let mut watcher = Client::registered_with_caps(s.irc, "watcher", MD).await;
    for c in [&mut bar, &mut watcher] {
        let r = ask(c, "METADATA * SUB display-name url").await;
        assert_eq!(cmds(&r), ["770"], "no channel yet: no sync later");
    }
    ask(&mut watcher, "MONITOR + foo").await;
    // Nobody shares a channel with foo yet: only its watcher hears.
    ask(&mut foo, "METADATA * SET display-name :Foo").await;
    let got = watcher.sync().await;
    assert_eq!(params(&got[0]), ["*", "foo", "display-name", "*", "Foo"]);
    assert!(bar.sync().await.is_empty());
    for c in [&mut foo, &mut bar, &mut deaf] {
        join(c, "#chan").await;
    }
    foo.sync().await;
    bar.sync().await;
    ask(&mut foo, "METADATA * SET display-name :Foo Two").await;
    let got = bar.sync().await;
    assert_eq!(cmds(&got), ["761"]);
    assert_eq!(
        params(&got[0]),
        ["*", "foo", "display-name", "*", "Foo Two"]
    );
    assert!(deaf.sync().await.is_empty(), "not subscribed");
    ask(&mut foo, "METADATA * SET other :x").await;
    assert!(bar.sync().await.is_empty(), "another key");
    ask(&mut foo, "METADATA * SET display-name").await;
    let got = bar.sync().await;
    assert_eq!(cmds(&got), ["766"]);
    assert_eq!(params(&got[0])[..3], ["*", "foo", "display-name"]);
    // Channel keys go to the channel's subscribers; CLEAR tells each key.
    ask(&mut foo, "METADATA #chan SET url :u").await;
    assert_eq!(
        params(&bar.sync().await[0]),
        ["*", "#chan", "url", "*", "u"]
    );
    ask(&mut foo, "METADATA #chan CLEAR").await;
    assert_eq!(cmds(&bar.sync().await), ["766"]);
    // A late subscriber is told which channels to SYNC, and SYNC sends them.
    ask(&mut foo, "METADATA * SET avatar :pic").await;
    let r = ask(&mut deaf, "METADATA * SUB avatar").await;
    assert_eq!(cmds(&r), ["770", "774"]);
    assert_eq!(params(&r[1]), ["deaf", "#chan"]);
    let r = ask(&mut deaf, "METADATA #chan SYNC").await;
    let lines = batch(&r, "metadata");
    assert_eq!(
        lines.iter().map(params).collect::<Vec<_>>(),
        [["deaf", "foo", "avatar", "*", "pic"]]
    );
    let r = ask(&mut deaf, "METADATA foo SYNC").await;
    assert_eq!(batch(&r, "metadata").len(), 1);
}

#[tokio::test]
async fn join_whois_and_the_registration_burst_bring_metadata() {
    let s = Server::start_default().await;
    // before-connect: set before registering, shown in the burst.
    let mut foo = Client::connect(s.irc).await;
    foo.send("CAP LS 302").await;
    foo.expect("CAP").await;
    foo.send("CAP REQ :draft/metadata-3 batch").await;
    foo.expect("CAP").await;
    let r = ask(&mut foo, "METADATA * SET display-name :Early").await;
    assert_eq!(params(&r[0]), ["*", "*", "display-name", "*", "Early"]);
    let r = ask(&mut foo, "METADATA bar SET x :y").await;
    assert_eq!(fail(&r)[..4], ["METADATA", "KEY_NO_PERMISSION", "bar", "*"]);
    assert_eq!(cmds(&ask(&mut foo, "METADATA * SUB avatar").await), ["770"]);
    foo.send("NICK foo").await;
    foo.send("USER foo 0 * :Foo").await;
    foo.send("CAP END").await;
    let burst = foo.collect_until("376").await;
    let start = burst.iter().position(|m| m.command == "BATCH").unwrap();
    let lines = batch(&burst[start..start + 3], "metadata");
    assert_eq!(
        params(&lines[0]),
        ["foo", "foo", "display-name", "*", "Early"]
    );
    // A client with the cap and no metadata gets an empty batch.
    let mut bar = Client::connect(s.irc).await;
    bar.send("CAP LS 302").await;
    bar.expect("CAP").await;
    bar.send("CAP REQ :draft/metadata-3 batch").await;
    bar.expect("CAP").await;
    bar.send("NICK bar\r\nUSER bar 0 * :Bar\r\nCAP END").await;
    let burst = bar.collect_until("376").await;
    let start = burst.iter().position(|m| m.command == "BATCH").unwrap();
    assert!(batch(&burst[start..start + 2], "metadata").is_empty());
    ask(&mut bar, "METADATA * SET avatar :b.png").await;
    // JOIN brings the subscribed keys of the members.
    join(&mut bar, "#j").await;
    let r = ask(&mut foo, "JOIN #j").await;
    let end = r.iter().position(|m| m.command == "366").unwrap();
    let lines = batch(&r[end + 1..], "metadata");
    assert_eq!(params(&lines[0]), ["foo", "bar", "avatar", "*", "b.png"]);
    // WHOIS shows them to clients with the cap only.
    let r = ask(&mut bar, "WHOIS foo").await;
    let kv: Vec<&Msg> = r.iter().filter(|m| m.command == "760").collect();
    assert_eq!(params(kv[0]), ["bar", "foo", "display-name", "*", "Early"]);
    let mut plain = Client::registered(s.irc, "plain").await;
    let r = ask(&mut plain, "WHOIS foo").await;
    assert!(r.iter().all(|m| m.command != "760"));
}
