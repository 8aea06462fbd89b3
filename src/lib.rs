//! bavard: a chat server with one hub and several dialects.
//!
//! # Layout
//! - [`names`], [`config`], [`passwd`], [`oper`]: validated names, configuration, password hashing.
//! - [`hub`]: the shared state machine of users, nicks and channels (no IO).
//! - [`line`], [`irc`]: the dialects: parsing commands, encoding events (no IO).
//! - [`outbox`]: each connection's bounded outgoing queue.
//! - [`net`]: listeners and connection tasks, the only code touching sockets.
//! - [`echo`], [`bench`]: the `bavard echo` servers and the `bavard bench` load generator.

pub mod bench;
pub mod config;
pub mod hub;
pub mod irc;
pub mod line;
pub mod names;
pub mod net;
pub mod oper;
pub mod outbox;
pub mod passwd;
pub mod sim;
