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
