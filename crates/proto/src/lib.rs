//! bavard's protocols as values: parsing and printing with no IO.
//!
//! # Layout
//! - [`message`]: IRC messages and tags (`FromStr` / `Display`, borrowed parsing).
//! - [`numeric`]: IRC numeric replies, named in one place.
//! - [`mask`]: the `rfc1459` casemapping and wildcard masks.
//! - [`names`]: validated nicknames and channel names, keyed by their folded form.
//! - [`line`]: the line dialect's command parser.

pub mod line;
pub mod mask;
pub mod message;
pub mod names;
pub mod numeric;
