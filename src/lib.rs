//! bavard: a chat server with one hub and several dialects.

pub mod bench;
pub mod echo;
pub mod irc;
