//! The listeners the server runs, by what the configuration asks for, and
//! how a reload adds and removes them.
//!
//! Each running listener is known by the address the configuration gave
//! (port 0 included, not the port it was given), its dialect and whether
//! it speaks TLS. A reload compares the new file's set with the running
//! one: the new listeners are bound first, all of them, and only once
//! every bind worked does the reload go on (a bind that fails keeps the
//! running configuration, listeners included, and says why); then the
//! listeners no longer asked for stop accepting (their connections stay),
//! and the new ones start.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use super::{Kind, Listener, Shared, listen_with};
use crate::config::Config;

/// A listener the configuration asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub kind: Kind,
    pub tls: bool,
    /// As configured (port 0 stays 0).
    pub addr: SocketAddr,
}

/// The listeners `cfg` asks for; the TLS ones only when the server has a
/// certificate (`tls`). The HTTP listener speaks TLS when there is one.
pub fn wanted(cfg: &Config, tls: bool) -> Vec<Wanted> {
    let l = &cfg.listeners;
    let mut all = vec![
        (Kind::Line, false, l.line),
        (Kind::Irc, false, l.irc),
        (Kind::Http, tls, l.http),
    ];
    if tls {
        all.push((Kind::Line, true, l.line_tls));
        all.push((Kind::Irc, true, l.irc_tls));
    }
    all.into_iter()
        .filter_map(|(kind, tls, addr)| addr.map(|addr| Wanted { kind, tls, addr }))
        .collect()
}

/// Binds the listener `w` asks for; the error says which one failed.
pub fn bind(w: Wanted) -> Result<Listener, String> {
    listen_with(w.kind, w.tls, w.addr).map_err(|e| {
        let tls = if w.tls { " over TLS" } else { "" };
        format!("cannot listen on {} ({}{tls}): {e}", w.addr, w.kind)
    })
}

/// One running listener.
struct Entry {
    wanted: Wanted,
    /// Cancelled to stop its accept loop (a child of the shutdown token).
    stop: CancellationToken,
}

/// The running listeners.
#[derive(Default)]
pub(super) struct Running {
    entries: Mutex<Vec<Entry>>,
    /// Held through a whole reload: SIGHUP and REHASH at once would
    /// otherwise both bind the same new listener.
    changing: Mutex<()>,
}

/// What a reload will change: the listeners already bound for it, and the
/// ones to stop.
pub(super) struct Change {
    bound: Vec<Listener>,
    removed: Vec<Wanted>,
}

impl Running {
    /// Starts accepting on `l`.
    pub(super) fn start(&self, shared: &Arc<Shared>, l: Listener) {
        let stop = shared.shutdown.child_token();
        let addr = l.socket.local_addr().map_or(l.asked, |a| a);
        tracing::info!(dialect = %l.kind, %addr, tls = l.tls, "listening");
        let wanted = Wanted {
            kind: l.kind,
            tls: l.tls,
            addr: l.asked,
        };
        self.lock().push(Entry {
            wanted,
            stop: stop.clone(),
        });
        shared
            .tracker
            .spawn(super::accept_loop(l, shared.clone(), stop));
    }

    /// Binds what `cfg` asks for and is not running. Nothing changes yet:
    /// on an error the listeners bound so far are closed again.
    pub(super) fn prepare(&self, cfg: &Config, tls: bool) -> Result<Change, String> {
        let wanted = wanted(cfg, tls);
        let running: Vec<Wanted> = self.lock().iter().map(|e| e.wanted).collect();
        let removed = running
            .iter()
            .filter(|r| !wanted.contains(r))
            .copied()
            .collect();
        let bound = wanted
            .into_iter()
            .filter(|w| !running.contains(w))
            .map(bind)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Change { bound, removed })
    }

    /// Stops the listeners `change` removes and starts the ones it bound.
    pub(super) fn apply(&self, shared: &Arc<Shared>, change: Change) {
        self.lock().retain(|e| {
            let keep = !change.removed.contains(&e.wanted);
            if !keep {
                let w = e.wanted;
                tracing::info!(dialect = %w.kind, addr = %w.addr, tls = w.tls, "stopped listening");
                e.stop.cancel();
            }
            keep
        });
        for l in change.bound {
            self.start(shared, l);
        }
    }

    /// Held while a reload changes the listeners.
    pub(super) fn changing(&self) -> std::sync::MutexGuard<'_, ()> {
        self.changing.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}
