//! Validated names. A [`Nickname`] or [`ChannelName`] can only be built through
//! validation, and carries its casefolded key (RFC 1459 casemapping), so two
//! nicks differing only in case map to the same key and cannot both exist.

use std::fmt;

pub use crate::mask::{casefold, fold_char, folded};

/// Why a name was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("name is empty")]
    Empty,
    #[error("name is longer than {0}")]
    TooLong(usize),
    #[error("name contains a character that is not allowed")]
    BadChar,
}

/// A nickname that follows RFC 2812 rules: a letter or one of ``[]\`_^{|}`` first,
/// then letters, digits, those specials and `-`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Nickname {
    name: String,
    key: String,
}

fn is_nick_special(c: char) -> bool {
    matches!(c, '[' | ']' | '\\' | '`' | '_' | '^' | '{' | '|' | '}')
}

impl Nickname {
    /// Validates `s` as a nick of at most `max_len` characters.
    pub fn parse(s: &str, max_len: usize) -> Result<Nickname, NameError> {
        let mut chars = s.chars();
        let first = chars.next().ok_or(NameError::Empty)?;
        if !(first.is_ascii_alphabetic() || is_nick_special(first)) {
            return Err(NameError::BadChar);
        }
        if !chars.all(|c| c.is_ascii_alphanumeric() || is_nick_special(c) || c == '-') {
            return Err(NameError::BadChar);
        }
        // All characters are ASCII here, so bytes == characters.
        if s.len() > max_len {
            return Err(NameError::TooLong(max_len));
        }
        Ok(Nickname {
            name: s.to_string(),
            key: casefold(s),
        })
    }

    /// The nick as the user spelled it.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The casefolded key under which the nick is unique.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Display for Nickname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// A channel name: `#` followed by anything but space, comma, BEL, NUL, CR and LF.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChannelName {
    name: String,
    key: String,
}

impl ChannelName {
    /// Validates `s` as a channel name of at most `max_len` bytes.
    pub fn parse(s: &str, max_len: usize) -> Result<ChannelName, NameError> {
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if !s.starts_with('#') {
            return Err(NameError::BadChar);
        }
        if s.len() > max_len {
            return Err(NameError::TooLong(max_len));
        }
        if s.chars()
            .any(|c| matches!(c, ' ' | ',' | '\x07' | '\0' | '\r' | '\n'))
        {
            return Err(NameError::BadChar);
        }
        Ok(ChannelName {
            name: s.to_string(),
            key: casefold(s),
        })
    }

    /// The name as first created.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The casefolded key.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicks() {
        let cases: &[(&str, bool)] = &[
            ("alice", true),
            ("[bot]", true),
            ("a-1", true),
            ("_x`^{|}", true),
            ("1abc", false),
            ("-abc", false),
            ("a b", false),
            ("a,b", false),
            ("a!b", false),
            ("a@b", false),
            ("#chan", false),
            (":x", false),
            ("", false),
            ("héllo", false),
            ("abcdefghij", true),
            ("abcdefghijk", false),
        ];
        for (s, ok) in cases {
            assert_eq!(Nickname::parse(s, 10).is_ok(), *ok, "{s:?}");
        }
    }

    #[test]
    fn nick_keys_fold_rfc1459() {
        let a = Nickname::parse("Foo[]\\", 30).unwrap();
        let b = Nickname::parse("fOO{}|", 30).unwrap();
        assert_eq!(a.key(), b.key());
        assert_eq!(a.as_str(), "Foo[]\\");
    }

    #[test]
    fn channels() {
        let cases: &[(&str, bool)] = &[
            ("#lobby", true),
            ("#", true),
            ("#café", true),
            ("lobby", false),
            ("&local", false),
            ("#a b", false),
            ("#a,b", false),
            ("#a\x07", false),
            ("", false),
        ];
        for (s, ok) in cases {
            assert_eq!(ChannelName::parse(s, 50).is_ok(), *ok, "{s:?}");
        }
        assert!(ChannelName::parse(&format!("#{}", "x".repeat(50)), 50).is_err());
        assert_eq!(
            ChannelName::parse("#LoBby", 50).unwrap().key(),
            ChannelName::parse("#lobby", 50).unwrap().key()
        );
    }
}
