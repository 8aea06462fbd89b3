//! bavard's core: the network as a state machine, and the dialects that
//! speak to it. No sockets, no runtime: a session takes a line and the time,
//! and leaves what it causes as values (notifications for an audience, bytes
//! for its own connection, effects for the server to run).
//!
//! # Layout
//! - [`state`]: the network (users, nicks, channels), changed only through
//!   [`state::Network::apply`] with the values of [`state::changes`];
//!   permission decisions in [`state::policy`].
//! - [`notify`]: what changes tell the world ([`notify::Notification`]: an
//!   [`notify::Audience`] and an owned [`notify::Event`]).
//! - [`session`]: the [`Session`] seam a connection drives, and its [`Outputs`].
//! - [`effect`]: IO a command waits on, as values.
//! - [`deliver`]: delivery planning: which local connections an audience
//!   reaches; [`dialect`]: how a dialect encodes events.
//! - [`irc`], [`line`]: the two dialects (commands, replies, rendering).
//! - [`timers`], [`oper`]: keep-alive and slow-loris timers, OPER throttling.
//! - [`sasl`], [`scram`]: SASL's server side (chunks, PLAIN, SCRAM-SHA-256)
//!   and the verifiers accounts keep.
//! - [`store`]: the seams to names, accounts and history, with in-memory
//!   implementations.
//! - [`sim`]: the network driven through both dialects without sockets.

pub mod config;
pub mod deliver;
pub mod dialect;
pub mod effect;
pub mod ids;
pub mod irc;
pub mod line;
pub mod notify;
pub mod oper;
pub mod protect;
pub mod sasl;
pub mod scram;
pub mod session;
pub mod sim;
pub mod state;
pub mod store;
pub mod throttle;
pub mod timers;

pub use bavard_proto::{mask, names};
pub use config::CoreConfig;
pub use ids::{ConnId, MsgId};
pub use session::{Cx, Output, Outputs, Session, Step};
pub use state::{ChangeError, Network};
