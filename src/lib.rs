//! bavard's server: the IO around the core. The network and both dialects
//! are in `bavard-core` (no IO); this crate listens, drives connections,
//! delivers the core's notifications and runs the effects it asks for.
//!
//! # Layout
//! - [`config`], [`passwd`]: the configuration file and its slices; argon2
//!   and the credentials an account keeps.
//! - [`hashing`]: the low-priority threads password hashing runs on.
//! - [`account_cli`]: `bavard account`, accounts from the shell.
//! - [`hub`]: the core's network and this node's delivery behind one lock.
//! - [`cluster`]: many nodes as one network, through NATS JetStream.
//! - [`metrics`]: the counters `/metrics` shows, in the Prometheus format.
//! - [`delivery`]: notifications become bytes in connections' queues.
//! - [`retention`]: the task that prunes history past `history.max_age`.
//! - [`effects`]: password checks, name claims, accounts and history: the
//!   IO the core waits on, and the stores it runs against.
//! - [`outbox`]: each connection's bounded outgoing queue.
//! - [`driver`]: one connection's task (transport, input, output, timers).
//! - [`net`]: listeners, admission, flood control, TLS, the HTTP listener
//!   (WebSocket, `/metrics`, `/healthz`), shutdown (the
//!   dual-stack bind and open-file limit come from `bavard-sockets`).
//!
//! The rest of the workspace is in `crates/`, and none of it depends on this
//! crate:
//! - `bavard-proto` (`crates/proto`): IRC messages, casemapping, names,
//!   numerics, the line dialect's parser; no IO.
//! - `bavard-core` (`crates/core`): the network and both dialects; no IO.
//! - `bavard-nats` (`crates/nats`): the cluster's log, nick registry and
//!   leases on NATS JetStream.
//! - `bavard-sqlite` (`crates/sqlite`): accounts and history in one SQLite
//!   file, on threads of their own.
//! - `bavard-sockets` (`crates/sockets`): `bind_listener` and `raise_fd_limit`,
//!   shared by the server, the echo lab and the load generator.
//! - `bavard-echo` (`crates/echo`): the `bavard echo` servers (the lab's first part).
//! - `bavard-bench` (`crates/bench`): the `bavard bench` load generator.
//!
//! `src/main.rs`, the `bavard` binary, puts the server and both tools behind
//! one command line.

pub mod account_cli;
pub mod account_effects;
pub mod cluster;
pub mod config;
pub mod delivery;
pub mod driver;
pub mod effects;
pub mod hashing;
pub mod hub;
pub mod metrics;
pub mod net;
pub mod outbox;
pub mod passwd;
pub mod retention;
pub mod web;
