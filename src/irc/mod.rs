//! The `irc` dialect.

pub mod message;
