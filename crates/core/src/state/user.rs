//! A user: what the network knows of one connection.

use std::collections::HashSet;
use std::net::IpAddr;

use thin_vec::ThinVec;

use super::metadata::Metadata;
use crate::ids::ConnId;
use crate::names::Nickname;
use crate::notify::Source;

/// User modes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserModes {
    pub invisible: bool,
    pub oper: bool,
    pub wallops: bool,
    pub bot: bool,
    pub secure: bool,
}

/// One connection's user.
///
/// Every connection has one for its whole life, so it holds only what every
/// user needs: what few users have is in [`UserExtra`], boxed, and the host
/// is rendered from the address when shown.
#[derive(Debug)]
pub struct User {
    pub id: ConnId,
    /// Nick, its key, user name and real name, in one allocation.
    pub(super) names: Names,
    pub ip: IpAddr,
    pub registered: bool,
    /// Keys of the channels the user is in, in joining order. A `ThinVec`
    /// (one pointer; length and capacity live in its allocation, and an
    /// empty one allocates nothing): with the 32-bit times below, it keeps
    /// every user's record in a 128-byte allocation.
    pub channels: ThinVec<String>,
    pub modes: UserModes,
    /// Unix seconds at connection and at the last message sent (WHOIS idle);
    /// 32 bits are enough until 2106.
    pub signon: u32,
    pub last_active: u32,
    /// `None` while every field of it would be empty.
    pub(super) extra: Option<Box<UserExtra>>,
    /// The source of its messages, kept once it has spoken (see
    /// [`User::speaking_source`]); users who never speak keep none.
    pub(super) spoken: Option<std::sync::Arc<str>>,
}

/// A user's nick, casefolded nick, user name and real name, in one boxed
/// string: one allocation instead of four, and 24 bytes in [`User`] instead
/// of 64 (which keeps every user's record in jemalloc's 96-byte class).
/// They change seldom (a nick change, registration, SETNAME); each change
/// rebuilds the string.
#[derive(Debug, Default)]
pub(super) struct Names {
    /// `nick`, then the casefolded nick when it differs from the nick (most
    /// nicks are their own key), then the user name, then the real name.
    text: Box<str>,
    /// Lengths of the first three parts. Nicks and user names are bounded by
    /// the configuration far below 64 KiB; a longer one is cut (at a
    /// character boundary) rather than overflow the count.
    nick: u16,
    folded: u16,
    user: u16,
}

impl Names {
    fn nick(&self) -> &str {
        &self.text[..self.nick as usize]
    }

    fn key(&self) -> &str {
        match self.folded {
            0 => self.nick(),
            n => &self.text[self.nick as usize..][..n as usize],
        }
    }

    fn user_start(&self) -> usize {
        self.nick as usize + self.folded as usize
    }

    fn user(&self) -> &str {
        &self.text[self.user_start()..][..self.user as usize]
    }

    fn realname(&self) -> &str {
        &self.text[self.user_start() + self.user as usize..]
    }

    pub(super) fn new(nick: &str, folded: &str, user: &str, realname: &str) -> Names {
        let nick = cut16(nick);
        let folded = if folded == nick { "" } else { cut16(folded) };
        let user = cut16(user);
        Names {
            text: [nick, folded, user, realname].concat().into_boxed_str(),
            nick: nick.len() as u16,
            folded: folded.len() as u16,
            user: user.len() as u16,
        }
    }
}

/// `s`, cut to at most `u16::MAX` bytes at a character boundary.
fn cut16(s: &str) -> &str {
    let mut end = s.len().min(u16::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// What few users have: an away message, invitations, a MONITOR list,
/// metadata and metadata subscriptions, an account, a client certificate.
#[derive(Debug, Default)]
pub(super) struct UserExtra {
    pub(super) away: Option<String>,
    /// The account the user is logged in to, as registered.
    pub(super) account: Option<std::sync::Arc<str>>,
    /// SHA-256 fingerprint (lowercase hex) of the TLS client certificate the
    /// connection presented, for SASL EXTERNAL.
    pub(super) certfp: Option<Box<str>>,
    /// Channel keys the user was invited to.
    pub(super) invites: HashSet<String>,
    /// Keys of nicks on this user's MONITOR list.
    pub(super) monitoring: Vec<String>,
    pub(super) metadata: Metadata,
    /// Metadata keys the user subscribed to.
    pub(super) subscriptions: Vec<String>,
}

impl UserExtra {
    pub(super) fn is_empty(&self) -> bool {
        self.away.is_none()
            && self.account.is_none()
            && self.certfp.is_none()
            && self.invites.is_empty()
            && self.monitoring.is_empty()
            && self.metadata.is_empty()
            && self.subscriptions.is_empty()
    }
}

/// What a user without metadata has.
static NO_METADATA: Metadata = Metadata::EMPTY;

impl User {
    /// The user as others see it in events (the one kept for its messages,
    /// if it has spoken since its names or modes last changed).
    pub fn source(&self) -> Source {
        let (nick_len, prefix_len) = (self.nick().len(), self.prefix_len());
        if let Some(text) = &self.spoken {
            return Source::shared(text.clone(), nick_len, prefix_len, self.modes.bot);
        }
        Source::shared(self.source_text(), nick_len, prefix_len, self.modes.bot)
    }

    /// `nick!user@host` then the account, shareable (see [`Source`]).
    fn source_text(&self) -> std::sync::Arc<str> {
        let account = self.account().unwrap_or("");
        let mut p = Vec::with_capacity(self.prefix_len() + account.len());
        self.put_prefix(&mut p);
        p.extend_from_slice(account.as_bytes());
        std::str::from_utf8(&p).unwrap_or_default().into()
    }

    /// [`User::source`], its text kept for the next messages: a user who
    /// speaks usually speaks again, and each message then shares it.
    pub(super) fn speaking_source(&mut self) -> Source {
        if self.spoken.is_none() {
            self.spoken = Some(self.source_text());
        }
        self.source()
    }

    /// `nick!user@host`.
    pub fn prefix(&self) -> String {
        format!("{}!{}@{}", self.nick(), self.user(), self.host())
    }

    /// The nick, empty until the user has one.
    pub fn nick(&self) -> &str {
        self.names.nick()
    }

    /// The user name (USER's first parameter), empty until registration.
    pub fn user(&self) -> &str {
        self.names.user()
    }

    pub fn realname(&self) -> &str {
        self.names.realname()
    }

    /// The host shown for this user, rendered from its address.
    pub fn host(&self) -> Host {
        Host(self.ip)
    }

    /// The casefolded nick, the user's key in the nick index (empty until
    /// the user has a nick).
    pub fn nick_key(&self) -> &str {
        self.names.key()
    }

    pub(super) fn set_nick(&mut self, nick: &Nickname) {
        self.spoken = None;
        let n = &self.names;
        self.names = Names::new(nick.as_str(), nick.key(), n.user(), n.realname());
    }

    pub(super) fn set_user(&mut self, user: &str, realname: &str) {
        self.spoken = None;
        let n = &self.names;
        self.names = Names::new(n.nick(), n.key(), user, realname);
    }

    pub(super) fn set_realname(&mut self, realname: &str) {
        let n = &self.names;
        self.names = Names::new(n.nick(), n.key(), n.user(), realname);
    }

    /// The length of [`User::prefix`], without building it.
    pub fn prefix_len(&self) -> usize {
        self.nick().len() + 1 + self.user().len() + 1 + self.host().len()
    }

    /// Appends [`User::prefix`] to `out` (encoding, without a temporary string).
    pub fn put_prefix(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.nick().as_bytes());
        out.push(b'!');
        out.extend_from_slice(self.user().as_bytes());
        out.push(b'@');
        self.host().put(out);
    }

    /// The channel a one-channel dialect (`line`) talks to.
    pub fn current_channel(&self) -> Option<&str> {
        self.channels.last().map(String::as_str)
    }

    pub fn away(&self) -> Option<&str> {
        self.extra.as_ref()?.away.as_deref()
    }

    /// The account the user is logged in to.
    pub fn account(&self) -> Option<&str> {
        self.extra.as_ref()?.account.as_deref()
    }

    /// The fingerprint of the TLS client certificate it connected with.
    pub fn certfp(&self) -> Option<&str> {
        self.extra.as_ref()?.certfp.as_deref()
    }

    /// Logs the user in to `account`, or out: its source changes.
    pub(super) fn set_account(&mut self, account: Option<&str>) {
        self.spoken = None;
        self.edit_extra(|e| e.account = account.map(std::sync::Arc::from));
    }

    /// Whether the user was invited to the channel with key `ch_key`.
    pub fn is_invited(&self, ch_key: &str) -> bool {
        self.extra
            .as_ref()
            .is_some_and(|e| e.invites.contains(ch_key))
    }

    /// Keys of the channels the user is invited to, in no order.
    pub fn invitations(&self) -> impl Iterator<Item = &str> {
        self.extra
            .iter()
            .flat_map(|e| e.invites.iter().map(String::as_str))
    }

    /// Keys of the nicks on the user's MONITOR list.
    pub fn monitoring(&self) -> &[String] {
        self.extra.as_ref().map_or(&[], |e| &e.monitoring)
    }

    /// The user's metadata (draft/metadata-3).
    pub fn metadata(&self) -> &Metadata {
        self.extra.as_ref().map_or(&NO_METADATA, |e| &e.metadata)
    }

    /// The user's metadata for changing; [`User::tidy`] afterwards drops an
    /// extra box left empty.
    pub(super) fn metadata_mut(&mut self) -> &mut Metadata {
        &mut self.extra.get_or_insert_with(Box::default).metadata
    }

    pub(super) fn tidy(&mut self) {
        if self.extra.as_ref().is_some_and(|e| e.is_empty()) {
            self.extra = None;
        }
    }

    /// The metadata keys the user subscribed to, in order.
    pub fn subscriptions(&self) -> &[String] {
        self.extra.as_ref().map_or(&[], |e| &e.subscriptions)
    }

    pub fn is_subscribed(&self, key: &str) -> bool {
        self.subscriptions().iter().any(|k| k == key)
    }

    /// The record's own consistency (see `Network::check_invariants`).
    pub(super) fn check(&self) -> Result<(), String> {
        let id = self.id;
        if self.nick_key() != crate::names::casefold(self.nick()) {
            return Err(format!("user {id} ({}) has a wrong nick key", self.nick()));
        }
        let n = &self.names;
        if n.folded != 0 && n.key() == n.nick() {
            return Err(format!("user {id} ({}) stores its nick twice", self.nick()));
        }
        if self.extra.as_ref().is_some_and(|e| e.is_empty()) {
            return Err(format!("user {id} keeps an empty extra box"));
        }
        if let Some(s) = &self.spoken
            && **s != *self.source_text()
        {
            return Err(format!("user {id} keeps a stale source {s}"));
        }
        Ok(())
    }

    /// Changes the rare fields; the box goes away again once they are empty.
    pub(super) fn edit_extra<T>(&mut self, f: impl FnOnce(&mut UserExtra) -> T) -> T {
        let extra = self.extra.get_or_insert_with(Box::default);
        let out = f(extra);
        if extra.is_empty() {
            self.extra = None;
        }
        out
    }
}

/// A user's host as shown to others: its address, IPv4-mapped addresses as
/// plain IPv4, and a leading `0` before a leading `:` ("::1" would break
/// IRC framing).
#[derive(Clone, Copy, Debug)]
pub struct Host(pub IpAddr);

impl Host {
    /// The address as shown: IPv4 for an IPv4 or IPv4-mapped client.
    fn shown(&self) -> Result<std::net::Ipv4Addr, V6Text> {
        match self.0 {
            IpAddr::V4(v4) => Ok(v4),
            IpAddr::V6(v6) => v6.to_ipv4_mapped().ok_or_else(|| V6Text::new(v6)),
        }
    }

    /// Appends the host to `out`. Every relayed message shows its sender's
    /// host: IPv4 is written digit by digit, as the formatting machinery
    /// costs more than the rest of a delivery, and nothing is allocated.
    pub fn put(&self, out: &mut Vec<u8>) {
        match self.shown() {
            Ok(v4) => {
                for (i, o) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        out.push(b'.');
                    }
                    if o >= 100 {
                        out.push(b'0' + o / 100);
                    }
                    if o >= 10 {
                        out.push(b'0' + o / 10 % 10);
                    }
                    out.push(b'0' + o % 10);
                }
            }
            Err(v6) => out.extend_from_slice(v6.as_bytes()),
        }
    }

    /// The length of the host as shown.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        match self.shown() {
            Ok(v4) => {
                let digits = |o: u8| 1 + usize::from(o >= 10) + usize::from(o >= 100);
                3 + v4.octets().into_iter().map(digits).sum::<usize>()
            }
            Err(v6) => v6.len,
        }
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.shown() {
            Ok(v4) => v4.fmt(f),
            Err(v6) => {
                f.write_str(std::str::from_utf8(v6.as_bytes()).map_err(|_| std::fmt::Error)?)
            }
        }
    }
}

/// An IPv6 host as shown, rendered on the stack. A leading `:` is made `0:`,
/// as a word starting with `:` would end an IRC message's parameters.
struct V6Text {
    buf: [u8; 48],
    len: usize,
}

impl V6Text {
    fn new(v6: std::net::Ipv6Addr) -> V6Text {
        use std::fmt::Write;
        let mut t = V6Text {
            buf: [0; 48],
            len: 0,
        };
        // At most 39 characters: it always fits.
        let _ = write!(t, "{v6}");
        if t.buf[0] == b':' {
            t.buf.copy_within(..t.len, 1);
            t.buf[0] = b'0';
            t.len += 1;
        }
        t
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::fmt::Write for V6Text {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(std::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_is_a_safe_parameter() {
        let shown = |ip: &str| Host(ip.parse::<IpAddr>().unwrap()).to_string();
        assert_eq!(shown("::1"), "0::1");
        assert_eq!(shown("::ffff:10.0.0.1"), "10.0.0.1");
        assert_eq!(shown("2001:db8::1"), "2001:db8::1");
        assert_eq!(shown("192.0.2.7"), "192.0.2.7");
    }

    #[test]
    fn host_is_written_as_displayed() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "9.99.100.255",
            "10.0.12.3",
            "::1",
            "::ffff:192.168.1.20",
            "2001:db8::42",
            "fe80::1:2:3:4",
        ] {
            let host = Host(ip.parse::<IpAddr>().unwrap());
            let shown = host.to_string();
            let mut out = b"x@".to_vec();
            host.put(&mut out);
            assert_eq!(&out[2..], shown.as_bytes(), "{ip}");
            assert_eq!(host.len(), shown.len(), "{ip}");
        }
    }

    #[test]
    fn names_keep_each_part_through_changes() {
        // (nick, key, user, real name): a nick that is its own key stores it
        // once; one whose key differs stores both.
        let cases = [
            ("alice", "alice", "al", "Alice Liddell"),
            ("Bob[1]", "bob{1}", "b", ""),
            ("", "", "", ""),
            ("évé", "évé", "ü", "réel : nom avec espaces"),
        ];
        for (nick, key, user, real) in cases {
            let n = Names::new(nick, key, user, real);
            assert_eq!(
                (n.nick(), n.key(), n.user(), n.realname()),
                (nick, key, user, real)
            );
            assert_eq!(n.folded == 0, nick == key, "{nick}");
        }
        // A realname longer than the 16-bit counts is kept whole; a nick that
        // long is cut at a character boundary.
        let long = "é".repeat(40_000);
        let n = Names::new("n", "n", "u", &long);
        assert_eq!(n.realname(), long);
        let n = Names::new(&long, &long, "u", "r");
        assert!(n.nick().len() <= u16::MAX as usize && long.starts_with(n.nick()));
        assert_eq!((n.user(), n.realname()), ("u", "r"));
    }
}
