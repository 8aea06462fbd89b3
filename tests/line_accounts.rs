//! The line dialect's accounts on a real server: REGISTER, LOGIN, LOGOUT,
//! WHO showing who is logged in, and the reserved NickServ nick.

mod support;

use support::line::LineClient;
use support::server::Server;

#[tokio::test]
async fn register_login_logout_and_who() {
    let s = Server::start_default().await;
    let mut a = LineClient::connect(s.line).await;
    a.nick("frank").await;
    a.send("REGISTER").await;
    a.expect("[server] Usage: REGISTER <password>").await;
    a.send("REGISTER hunter2").await;
    a.expect("[server] Account frank registered: you are logged in")
        .await;
    a.send("WHO").await;
    a.expect("[server] frank(frank)").await;
    a.send("REGISTER again").await;
    a.expect("[server] You are already logged in: LOGOUT first")
        .await;
    a.send("LOGOUT").await;
    a.expect("[server] You are now logged out").await;
    // Still holding frank, now unidentified: nick protection warns.
    a.expect(
        "[server] The nick frank belongs to a registered account: log in \
         (LOGIN frank <password>) within 30 seconds, or you will be renamed",
    )
    .await;
    a.send("LOGOUT").await;
    a.expect("[server] You are not logged in").await;
    a.send("WHO").await;
    a.expect("[server] frank").await;
    a.send("LOGIN frank wrong").await;
    a.expect("[server] Invalid account or password for frank")
        .await;
    a.send("LOGIN FRANK hunter2").await;
    a.expect("[server] You are now logged in as frank").await;
    a.send("LOGIN frank").await;
    a.expect("[server] Usage: LOGIN <account> <password>").await;
    a.send("NICK NickServ").await;
    a.expect("[server] Nickname NickServ is already in use !")
        .await;

    // Another nick registers separately; the name taken is refused.
    let mut b = LineClient::connect(s.line).await;
    b.nick("frank2").await;
    b.send("NICK frank").await;
    b.expect("[server] Nickname frank is already in use !")
        .await;
    s.stop().await;
}

/// A server whose nick protection gives one second.
async fn protecting() -> Server {
    let mut cfg = bavard::config::Config::default();
    cfg.accounts.nick_protection = bavard::config::NickProtection::Grace(1);
    Server::start(cfg).await
}

const WARNING: &str = "[server] The nick frank belongs to a registered account: log in \
                       (LOGIN frank <password>) within 1 seconds, or you will be renamed";

#[tokio::test]
async fn protected_nick_is_renamed_unless_logged_in() {
    let s = protecting().await;
    let mut a = LineClient::connect(s.line).await;
    a.nick("frank").await;
    a.send("REGISTER hunter2").await;
    a.expect("[server] Account frank registered: you are logged in")
        .await;
    a.nick("frank_").await;

    // b takes frank and is renamed after the grace.
    let mut b = LineClient::connect(s.line).await;
    b.nick("frank").await;
    b.expect(WARNING).await;
    let l = b.line().await;
    let guest = l
        .strip_prefix("[server] You did not log in in time: your nick is changed to ")
        .unwrap_or_else(|| panic!("{l:?}"))
        .to_string();
    assert!(guest.starts_with("guest"), "{guest}");
    b.expect(&format!("[server] You are now known as {guest}"))
        .await;
    b.nick = guest;

    // b takes it again and logs in in time.
    b.nick("frank").await;
    b.expect(WARNING).await;
    b.send("LOGIN frank hunter2").await;
    b.expect("[server] You are now logged in as frank").await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    b.send("WHO").await;
    let l = b.line().await;
    assert!(l.contains("frank(frank)"), "{l:?}");

    // Logging out while holding frank starts the grace again.
    b.send("LOGOUT").await;
    b.expect("[server] You are now logged out").await;
    b.expect(WARNING).await;
    let l = b.line().await;
    assert!(
        l.starts_with("[server] You did not log in in time: your nick is changed to guest"),
        "{l:?}"
    );
    s.stop().await;
}
