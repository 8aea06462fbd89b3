//! IRC message parsing and serialisation (pure, no IO).
//!
//! A wire line looks like
//!
//! ```text
//! [@tags ][:source ]COMMAND[ param]*[ :trailing param]
//! ```
//!
//! [`Message::parse`] takes one line **without** its CR/LF terminator (the
//! framing layer strips it) and [`Message::write_to`] produces one line, again
//! without CR/LF, into a caller-owned buffer so that the hot path can reuse
//! allocations.
//!
//! A parsed [`Message`] borrows its atoms from the line: a line without tags
//! costs one allocation, its parameter list (tags add their lists and a copy
//! of each value that has escapes). [`Message::into_owned`] detaches a
//! message from its line when it must outlive it.
//!
//! The parser is deliberately lenient where real-world software is sloppy
//! (several spaces between atoms, leading spaces, a stray trailing `;` in the
//! tags) and strict where sloppiness would be dangerous (NUL/CR/LF inside a
//! line, oversized or malformed tags).
//!
//! The API works on `&str`: turning bytes from the socket into text (strict
//! UTF-8, or a lossy/latin-1 fallback) is the caller's decision, made before
//! parsing.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// Maximum size of the whole tags section, in bytes, *including* the leading
/// `@` and the space that ends it (IRCv3 message-tags: 4094 bytes of client
/// tags plus room for server tags). [`Message::parse`] enforces this.
pub const MAX_TAGS_SECTION_LEN: usize = 8191;

/// Maximum size of the tag data a client may send, in bytes, *excluding* the
/// leading `@` and trailing space (IRCv3 message-tags).
/// [`Message::parse_client`] enforces this.
pub const MAX_CLIENT_TAG_DATA_LEN: usize = 4094;

/// Why a line could not be parsed as an IRC message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The line is empty or contains only spaces.
    #[error("empty message")]
    Empty,
    /// There are tags and/or a source but no command after them.
    #[error("missing command")]
    MissingCommand,
    /// The tag data is larger than allowed.
    #[error("tags section too long ({len} bytes, max {max})")]
    TagsTooLong {
        /// Size of the tag data (between `@` and the first space), in bytes.
        len: usize,
        /// The limit that was exceeded, in the same unit.
        max: usize,
    },
    /// A tag key is empty or has characters outside
    /// `['+'] [vendor '/'] [A-Za-z0-9-]+`.
    #[error("invalid tag key {key:?}")]
    InvalidTagKey {
        /// The offending key, as received.
        key: String,
    },
    /// The line contains NUL, CR or LF, which IRC never allows inside a
    /// message (CR/LF would mean the framing layer handed us two lines).
    #[error("forbidden character {byte:#04x} in message")]
    ForbiddenChar {
        /// The offending byte.
        byte: u8,
    },
}

/// One IRCv3 message tag.
///
/// The value is stored unescaped. An empty `value` means "no value": IRCv3
/// makes `key` and `key=` equivalent, and we serialise both as `key`.
/// A parsed tag borrows its key, and its value unless it had escapes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag<'a> {
    /// Tag name, possibly with a `+` client-only prefix and a `vendor/` part.
    pub key: Cow<'a, str>,
    /// Unescaped value; empty when the tag has no value.
    pub value: Cow<'a, str>,
}

impl<'a> Tag<'a> {
    /// Creates a tag; pass `""` as the value for a value-less tag.
    pub fn new(key: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) -> Self {
        Tag {
            key: key.into(),
            value: value.into(),
        }
    }

    /// Copies whatever is borrowed, so that the tag outlives its line.
    pub fn into_owned(self) -> Tag<'static> {
        Tag {
            key: Cow::Owned(self.key.into_owned()),
            value: Cow::Owned(self.value.into_owned()),
        }
    }
}

/// An IRC message, borrowing from the line it was parsed from (or from the
/// strings it was built with); `Message<'static>` owns or borrows only
/// static text.
///
/// Invariants that [`Message::parse`] guarantees and that builders should
/// respect for the output to reparse identically: the command and source are
/// non-empty and contain no space; every parameter except the last is
/// non-empty, contains no space and does not start with `:`; tag keys satisfy
/// [`is_valid_tag_key`]. Whatever the contents, [`Message::write_to`] never
/// emits NUL, CR or LF.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message<'a> {
    /// IRCv3 tags, in received order, without duplicate keys.
    pub tags: Vec<Tag<'a>>,
    /// The source (prefix) without its leading `:`, e.g. `nick!user@host`.
    pub source: Option<Cow<'a, str>>,
    /// The command exactly as received (any case); see [`Message::verb`].
    pub command: Cow<'a, str>,
    /// Parameters, with the trailing one's `:` marker removed.
    pub params: Vec<Cow<'a, str>>,
}

impl<'a> Message<'a> {
    /// Creates a message with a command and parameters, no tags, no source.
    ///
    /// ```
    /// use bavard_proto::message::Message;
    /// let m = Message::new("PRIVMSG", ["#chan", "hello there"]).with_source("nick!u@h");
    /// assert_eq!(m.to_string(), ":nick!u@h PRIVMSG #chan :hello there");
    /// ```
    pub fn new<I, P>(command: impl Into<Cow<'a, str>>, params: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<Cow<'a, str>>,
    {
        Message {
            tags: Vec::new(),
            source: None,
            command: command.into(),
            params: params.into_iter().map(Into::into).collect(),
        }
    }

    /// Sets the source (without the leading `:`).
    pub fn with_source(mut self, source: impl Into<Cow<'a, str>>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Appends a tag, replacing the value of an existing tag with the same key.
    /// Pass `""` as the value for a value-less tag.
    pub fn with_tag(
        mut self,
        key: impl Into<Cow<'a, str>>,
        value: impl Into<Cow<'a, str>>,
    ) -> Self {
        let tag = Tag::new(key, value);
        match self.tags.iter_mut().find(|t| t.key == tag.key) {
            Some(existing) => existing.value = tag.value,
            None => self.tags.push(tag),
        }
        self
    }

    /// Appends one parameter.
    pub fn with_param(mut self, param: impl Into<Cow<'a, str>>) -> Self {
        self.params.push(param.into());
        self
    }

    /// Parses one line (without CR/LF), accepting up to
    /// [`MAX_TAGS_SECTION_LEN`] bytes of tags. Use this for lines from peers
    /// that may carry server tags.
    ///
    /// The number of parameters is not capped; callers enforce any limit.
    /// Never panics, whatever the input.
    pub fn parse(line: &'a str) -> Result<Message<'a>, ParseError> {
        parse_line(line, MAX_TAGS_SECTION_LEN - 2)
    }

    /// Parses one line (without CR/LF) received from a client, accepting at
    /// most [`MAX_CLIENT_TAG_DATA_LEN`] bytes of tag data.
    pub fn parse_client(line: &'a str) -> Result<Message<'a>, ParseError> {
        parse_line(line, MAX_CLIENT_TAG_DATA_LEN)
    }

    /// Copies whatever is borrowed, so that the message outlives its line.
    pub fn into_owned(self) -> Message<'static> {
        Message {
            tags: self.tags.into_iter().map(Tag::into_owned).collect(),
            source: self.source.map(|s| Cow::Owned(s.into_owned())),
            command: Cow::Owned(self.command.into_owned()),
            params: self
                .params
                .into_iter()
                .map(|p| Cow::Owned(p.into_owned()))
                .collect(),
        }
    }

    /// The command upper-cased (ASCII only), for dispatch. Borrows when the
    /// command is already upper case, which is the common case.
    pub fn verb(&self) -> Cow<'_, str> {
        if self.command.bytes().any(|b| b.is_ascii_lowercase()) {
            Cow::Owned(self.command.to_ascii_uppercase())
        } else {
            Cow::Borrowed(&*self.command)
        }
    }

    /// Whether the command is `cmd`, ignoring ASCII case. Does not allocate.
    pub fn is_command(&self, cmd: &str) -> bool {
        self.command.eq_ignore_ascii_case(cmd)
    }

    /// The `i`-th parameter, if present.
    pub fn param(&self, i: usize) -> Option<&str> {
        self.params.get(i).map(|p| &**p)
    }

    /// The (unescaped) value of the tag `key`, if present; `Some("")` for a
    /// tag without value.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.iter().find(|t| t.key == key).map(|t| &*t.value)
    }

    /// Appends the serialised message to `out`, **without** CR/LF.
    ///
    /// Tag values are escaped. The last parameter gets a `:` prefix only when
    /// it needs one (empty, contains a space, or starts with `:`). Any NUL, CR
    /// or LF found in the source, command, parameters or tag keys is written
    /// as a space (in tag values CR/LF are escaped and NUL becomes a space),
    /// so relaying user text can never inject a second line.
    ///
    /// Line length (512 bytes for the non-tag part) is the caller's concern.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        if !self.tags.is_empty() {
            out.push(b'@');
            for (i, tag) in self.tags.iter().enumerate() {
                if i > 0 {
                    out.push(b';');
                }
                put_sanitized(out, &tag.key);
                if !tag.value.is_empty() {
                    out.push(b'=');
                    put_escaped_tag_value(out, &tag.value);
                }
            }
            out.push(b' ');
        }
        if let Some(source) = self.source.as_deref().filter(|s| !s.is_empty()) {
            out.push(b':');
            put_sanitized(out, source);
            out.push(b' ');
        }
        put_sanitized(out, &self.command);
        if let Some((last, middle)) = self.params.split_last() {
            for p in middle {
                out.push(b' ');
                put_sanitized(out, p);
            }
            out.push(b' ');
            if needs_trailing_colon(last) {
                out.push(b':');
            }
            put_sanitized(out, last);
        }
    }

    /// Like [`Message::write_to`], followed by `\r\n`.
    pub fn write_line_to(&self, out: &mut Vec<u8>) {
        self.write_to(out);
        out.extend_from_slice(b"\r\n");
    }
}

/// Parses into an owned message, for callers that do not keep the line;
/// [`Message::parse`] borrows instead and is the one to use on hot paths.
impl FromStr for Message<'static> {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Message::parse(s).map(Message::into_owned)
    }
}

/// Same text as [`Message::write_to`] (no CR/LF). Allocates a scratch buffer:
/// prefer `write_to` on hot paths.
impl fmt::Display for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = Vec::with_capacity(64);
        self.write_to(&mut buf);
        // `write_to` only ever copies whole UTF-8 strings and ASCII bytes, so
        // this is always the borrowed, valid case.
        f.write_str(&String::from_utf8_lossy(&buf))
    }
}

/// Whether `key` is a syntactically valid IRCv3 tag key:
/// `['+'] [vendor '/'] name`, where `vendor` is a non-empty run of
/// `[A-Za-z0-9.-]` and `name` a non-empty run of `[A-Za-z0-9-]`.
pub fn is_valid_tag_key(key: &str) -> bool {
    let key = key.strip_prefix('+').unwrap_or(key);
    let (vendor, name) = match key.rsplit_once('/') {
        Some((vendor, name)) => (Some(vendor), name),
        None => (None, key),
    };
    let vendor_ok = vendor.is_none_or(|v| {
        !v.is_empty()
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    });
    vendor_ok && !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Replaces every NUL, CR and LF in `s` with a space. Borrows when there is
/// nothing to replace. Use on user text that is stored or relayed outside of
/// [`Message::write_to`] (which already does this on its own).
pub fn sanitize_text(s: &str) -> Cow<'_, str> {
    if s.bytes().any(is_forbidden) {
        Cow::Owned(
            s.chars()
                .map(|c| {
                    if matches!(c, '\0' | '\r' | '\n') {
                        ' '
                    } else {
                        c
                    }
                })
                .collect(),
        )
    } else {
        Cow::Borrowed(s)
    }
}

/// A source split into its `nick!user@host` parts; see [`split_userhost`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserHost<'a> {
    /// Everything before the first `!` or `@` (a server name has only this).
    pub nick: &'a str,
    /// The part between `!` and `@`, if there is a `!`.
    pub user: Option<&'a str>,
    /// The part after the first `@`, if there is one.
    pub host: Option<&'a str>,
}

/// Splits a source such as `nick!user@host`, `nick@host`, `nick!user` or a
/// bare `server.name`. Never fails: missing parts are `None`.
pub fn split_userhost(s: &str) -> UserHost<'_> {
    let (before_host, host) = match s.split_once('@') {
        Some((before, host)) => (before, Some(host)),
        None => (s, None),
    };
    let (nick, user) = match before_host.split_once('!') {
        Some((nick, user)) => (nick, Some(user)),
        None => (before_host, None),
    };
    UserHost { nick, user, host }
}

/// Whether `s` is acceptable as an IRC host or server name: dot-separated
/// labels (a single trailing dot is allowed), each 1-63 characters of
/// `[A-Za-z0-9-]` not starting or ending with `-`, at most 253 characters
/// overall, and at least one dot somewhere (`services.` is fine, `irc` is
/// not: a dot is what tells a server name apart from a nickname).
/// Internationalised names must already be in punycode.
pub fn is_valid_hostname(s: &str) -> bool {
    let name = s.strip_suffix('.').unwrap_or(s);
    if name.is_empty() || name.len() > 253 || !s.contains('.') {
        return false;
    }
    name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

// ---------------------------------------------------------------------------
// Parsing internals

/// Above this many tags, duplicate detection switches from a linear scan to a
/// hash map so that a line packed with thousands of tiny tags stays linear.
const LINEAR_DEDUP_MAX: usize = 16;

fn parse_line(line: &str, max_tag_data: usize) -> Result<Message<'_>, ParseError> {
    // Every line goes through this scan, so it is a vectorised search rather
    // than a byte-by-byte loop.
    if let Some(i) = memchr::memchr3(b'\0', b'\r', b'\n', line.as_bytes()) {
        return Err(ParseError::ForbiddenChar {
            byte: line.as_bytes()[i],
        });
    }
    let mut rest = skip_spaces(line);
    if rest.is_empty() {
        return Err(ParseError::Empty);
    }

    let mut tags = Vec::new();
    if let Some(after_at) = rest.strip_prefix('@') {
        let (data, after) = split_atom(after_at);
        if data.len() > max_tag_data {
            return Err(ParseError::TagsTooLong {
                len: data.len(),
                max: max_tag_data,
            });
        }
        tags = parse_tags(data)?;
        rest = after;
    }

    let mut source = None;
    if let Some(after_colon) = rest.strip_prefix(':') {
        let (src, after) = split_atom(after_colon);
        // A bare `:` carries no information; treat it as "no source" rather
        // than producing an empty string that would not round-trip.
        if !src.is_empty() {
            source = Some(Cow::Borrowed(src));
        }
        rest = after;
    }

    let (command, mut rest) = split_atom(rest);
    // After a bare `:` source, `@x` or `:x` would be taken for a command but
    // reads back as tags or a source: no command starts with either marker.
    if command.is_empty() || command.starts_with(['@', ':']) {
        return Err(ParseError::MissingCommand);
    }

    let mut params = Vec::new();
    while !rest.is_empty() {
        if let Some(trailing) = rest.strip_prefix(':') {
            params.push(Cow::Borrowed(trailing));
            break;
        }
        let (param, after) = split_atom(rest);
        params.push(Cow::Borrowed(param));
        rest = after;
    }

    Ok(Message {
        tags,
        source,
        command: Cow::Borrowed(command),
        params,
    })
}

/// Splits off the atom up to the next space and skips all the spaces after it
/// (RFC 1459: atoms are separated by one *or more* spaces).
///
/// Atoms (command, channel, nick) are a few bytes long, and the trailing
/// parameter is never scanned, so a plain byte loop beats both the generic
/// `str` pattern machinery and a vectorised search's setup.
#[inline]
fn split_atom(s: &str) -> (&str, &str) {
    match s.bytes().position(|b| b == b' ') {
        Some(i) => (&s[..i], skip_spaces(&s[i + 1..])),
        None => (s, ""),
    }
}

/// `s` without its leading spaces.
#[inline]
fn skip_spaces(s: &str) -> &str {
    let n = s.bytes().take_while(|&b| b == b' ').count();
    &s[n..]
}

fn parse_tags(data: &str) -> Result<Vec<Tag<'_>>, ParseError> {
    // Some software ends the tag list with `;`; accept a single one.
    let data = data.strip_suffix(';').unwrap_or(data);
    // Work on raw slices of the input first: duplicates are resolved before
    // any value is unescaped ("the last occurrence wins", keeping the first
    // position).
    let mut raw: Vec<(&str, &str)> = Vec::new();
    let mut index: Option<HashMap<&str, usize>> = None;
    for piece in data.split(';') {
        let (key, value) = piece.split_once('=').unwrap_or((piece, ""));
        if !is_valid_tag_key(key) {
            return Err(ParseError::InvalidTagKey {
                key: key.to_owned(),
            });
        }
        if index.is_none() && raw.len() >= LINEAR_DEDUP_MAX {
            index = Some(raw.iter().enumerate().map(|(i, (k, _))| (*k, i)).collect());
        }
        let existing = match &index {
            Some(map) => map.get(key).copied(),
            None => raw.iter().position(|(k, _)| *k == key),
        };
        match existing.and_then(|i| raw.get_mut(i)) {
            Some(slot) => slot.1 = value,
            None => {
                if let Some(map) = index.as_mut() {
                    map.insert(key, raw.len());
                }
                raw.push((key, value));
            }
        }
    }
    Ok(raw
        .into_iter()
        .map(|(key, value)| Tag {
            key: Cow::Borrowed(key),
            value: unescape_tag_value(value),
        })
        .collect())
}

/// IRCv3 tag value unescaping: `\:` `\s` `\\` `\r` `\n` map to `;` space `\`
/// CR LF, any other escaped char stands for itself, and a lone trailing
/// backslash is dropped.
fn unescape_tag_value(raw: &str) -> Cow<'_, str> {
    if !raw.contains('\\') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(':') => out.push(';'),
            Some('s') => out.push(' '),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    Cow::Owned(out)
}

// ---------------------------------------------------------------------------
// Serialisation internals

#[inline]
fn is_forbidden(b: u8) -> bool {
    matches!(b, b'\0' | b'\r' | b'\n')
}

/// The last parameter must be written in trailing form when a bare atom would
/// parse differently. NUL/CR/LF count as spaces since that is what they become.
#[inline]
fn needs_trailing_colon(p: &str) -> bool {
    p.is_empty() || p.starts_with(':') || p.bytes().any(|b| b == b' ' || is_forbidden(b))
}

/// Copies `s`, turning NUL/CR/LF into spaces. Copies in runs so the common
/// clean case is a single `memcpy`.
fn put_sanitized(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if is_forbidden(b) {
            out.extend_from_slice(&bytes[start..i]);
            out.push(b' ');
            start = i + 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Appends `value` escaped as an IRCv3 tag value: `;`, space, `\`, CR and
/// LF become `\:`, `\s`, `\\`, `\r` and `\n`; NUL becomes `\s`.
pub fn put_escaped_tag_value(out: &mut Vec<u8>, value: &str) {
    let bytes = value.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b';' => b"\\:",
            // NUL has no escape; like everywhere else it becomes a space.
            b' ' | b'\0' => b"\\s",
            b'\\' => b"\\\\",
            b'\r' => b"\\r",
            b'\n' => b"\\n",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests;
