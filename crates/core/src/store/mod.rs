//! The seams to what lives outside a node: who holds a name, the accounts,
//! the history. Each is a trait whose answers may come at once ([`Reply::Now`],
//! the in-memory implementations here) or later ([`Reply::Later`], a future
//! the server awaits: a database, a broker). The core never calls them: it
//! asks through [`crate::effect::Effect`]s, which the server runs against
//! these seams.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};

/// An answer now, or a future that gives it.
pub enum Reply<T> {
    Now(T),
    Later(Pin<Box<dyn Future<Output = T> + Send>>),
}

impl<T> Reply<T> {
    /// The answer, waiting for it if it comes later.
    pub async fn get(self) -> T {
        match self {
            Reply::Now(t) => t,
            Reply::Later(f) => f.await,
        }
    }
}

impl<T> std::fmt::Debug for Reply<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reply::Now(_) => "Reply::Now",
            Reply::Later(_) => "Reply::Later",
        })
    }
}

/// A store could not answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    Exists(String),
    #[error("{0} does not exist")]
    Missing(String),
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

mod accounts;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod history;
mod markers;
mod registry;

pub use accounts::{Account, AccountStore, MemoryAccounts, Scram};
pub use history::{
    HistoryStore, Kinds, MemoryHistory, Point, Range, Stored, dm_key, dm_prefix, history_key,
};
pub use markers::{Marker, MarkerStore, MemoryMarkers};
pub use registry::{MemoryRegistry, NameRegistry, SoleRegistry};

#[cfg(test)]
pub(crate) mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::Reply;

    /// The answer of an in-memory store, which never defers.
    pub(crate) fn now<T>(r: Reply<T>) -> T {
        match r {
            Reply::Now(t) => t,
            Reply::Later(_) => panic!("the in-memory stores answer at once"),
        }
    }

    /// Runs a future that never waits (the conformance cases on the
    /// in-memory stores) without a runtime.
    pub(crate) fn run(f: impl Future<Output = ()>) {
        match pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(()) => {}
            Poll::Pending => panic!("the in-memory stores answer at once"),
        }
    }
}
