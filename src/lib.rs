//! bavard's server: the IO around the core. The network and both dialects
//! are in `bavard-core` (no IO); this crate listens, drives connections,
//! delivers the core's notifications and runs the effects it asks for.
//!
//! # Layout
//! - [`config`], [`passwd`]: the configuration file and its slices; argon2.
//! - [`hub`]: the core's network and this node's delivery behind one lock.
//! - [`delivery`]: notifications become bytes in connections' queues.
//! - [`effects`]: password checks and name claims the core waits on.
//! - [`outbox`]: each connection's bounded outgoing queue.
//! - [`driver`]: one connection's task (transport, input, output, timers).
//! - [`net`]: listeners, admission, flood control, TLS, shutdown.
//! - [`echo`], [`bench`]: the `bavard echo` servers and the `bavard bench` load generator.

pub mod bench;
pub mod config;
pub mod delivery;
pub mod driver;
pub mod echo;
pub mod effects;
pub mod hub;
pub mod net;
pub mod outbox;
pub mod passwd;
