//! The `irc` dialect.

pub mod mask;
pub mod message;
