//! Read markers (IRCv3 `draft/read-marker`) of accounts, kept so they
//! outlive a restart. The network holds every marker in memory and answers
//! from there (a JOIN shows its channel's marker without waiting); this
//! seam is where the accounts' markers are written as they move, and read
//! back once when the server starts. Markers of users without an account
//! belong to a nick and are never kept.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{Reply, StoreError, lock};
use crate::notify::Millis;

/// When `account` last read in `target` (both casefolded).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Marker {
    pub account: String,
    pub target: String,
    pub at: Millis,
}

/// The accounts' read markers.
pub trait MarkerStore: Send + Sync {
    /// Moves a marker forward (never back). An account keeps `keep`
    /// markers: a new one past it replaces the one read longest ago, as in
    /// the network's memory.
    fn save(&self, marker: Marker, keep: usize) -> Reply<Result<(), StoreError>>;
    /// Every marker (the server reads them once, at start).
    fn all(&self) -> Reply<Result<Vec<Marker>, StoreError>>;
    /// A channel was renamed: the markers on `from` move to `to`.
    fn rename(&self, from: &str, to: &str) -> Reply<Result<(), StoreError>>;
    /// An account is gone, and its markers with it.
    fn forget(&self, account: &str) -> Reply<Result<(), StoreError>>;
}

/// Markers in memory, lost at exit.
#[derive(Debug, Default)]
pub struct MemoryMarkers {
    /// Account → target → time.
    marks: Mutex<HashMap<String, HashMap<String, Millis>>>,
}

impl MarkerStore for MemoryMarkers {
    fn save(&self, m: Marker, keep: usize) -> Reply<Result<(), StoreError>> {
        if keep == 0 {
            return Reply::Now(Ok(()));
        }
        let mut all = lock(&self.marks);
        let marks = all.entry(m.account).or_default();
        if let Some(at) = marks.get_mut(&m.target) {
            *at = (*at).max(m.at);
            return Reply::Now(Ok(()));
        }
        while marks.len() >= keep {
            let oldest = marks
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(t, _)| t.clone());
            if let Some(t) = oldest {
                marks.remove(&t);
            }
        }
        marks.insert(m.target, m.at);
        Reply::Now(Ok(()))
    }

    fn all(&self) -> Reply<Result<Vec<Marker>, StoreError>> {
        let all = lock(&self.marks);
        let mut out: Vec<Marker> = all
            .iter()
            .flat_map(|(account, marks)| {
                marks.iter().map(|(target, at)| Marker {
                    account: account.clone(),
                    target: target.clone(),
                    at: *at,
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.account, &a.target).cmp(&(&b.account, &b.target)));
        Reply::Now(Ok(out))
    }

    fn rename(&self, from: &str, to: &str) -> Reply<Result<(), StoreError>> {
        for marks in lock(&self.marks).values_mut() {
            if let Some(at) = marks.remove(from) {
                marks.insert(to.to_string(), at);
            }
        }
        Reply::Now(Ok(()))
    }

    fn forget(&self, account: &str) -> Reply<Result<(), StoreError>> {
        lock(&self.marks).remove(account);
        Reply::Now(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::MemoryMarkers;
    use crate::store::{conformance, tests::run};

    #[test]
    fn memory_markers_conform() {
        run(conformance::markers(&MemoryMarkers::default()));
    }
}
