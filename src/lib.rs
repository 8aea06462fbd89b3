//! bavard: a chat server with one hub and several dialects.
//!
//! # Layout
//! - [`names`], [`config`], [`passwd`], [`oper`]: validated names, configuration, password hashing.
//! - [`hub`]: the shared state machine of users, nicks and channels (no IO).
//! - [`line`], [`irc`]: the dialects: parsing commands, encoding events (no IO).
//! - [`outbox`]: each connection's bounded outgoing queue.
//! - [`net`]: listeners and connection tasks, the only code touching sockets
//!   (its dual-stack bind and open-file limit come from `bavard-sockets`).
//!
//! The rest of the workspace is in `crates/`, and none of it depends on this
//! crate:
//! - `bavard-sockets` (`crates/sockets`): `bind_listener` and `raise_fd_limit`,
//!   shared by the server, the echo lab and the load generator.
//! - `bavard-echo` (`crates/echo`): the `bavard echo` servers (the lab's first part).
//! - `bavard-bench` (`crates/bench`): the `bavard bench` load generator.
//!
//! `src/main.rs`, the `bavard` binary, puts the server and both tools behind
//! one command line.

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
