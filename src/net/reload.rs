//! Live reload: a configuration read again (SIGHUP, REHASH) replaces the
//! running one where it can without dropping anyone. The network's limits,
//! texts and operators, the send queues' deadlines, the secrets, the
//! admission limits, flood control (for connections made from then on),
//! `http.allowed_origins` and the listeners ([`super::listeners`]) follow
//! the new file; the database, and whether TLS is on, stay as they were
//! started (README, "Reloading the configuration").

use std::sync::{Arc, RwLock};

use super::{Shared, flood, limits};

type Load = dyn Fn() -> Result<Config, String> + Send + Sync;
use crate::config::Config;

/// The parts of the configuration the connection tasks read as they go.
pub(super) struct Live {
    cfg: RwLock<Arc<Config>>,
    flood: RwLock<Option<Arc<flood::FloodLimits>>>,
}

impl Live {
    pub(super) fn new(cfg: Arc<Config>) -> Live {
        Live {
            flood: RwLock::new(flood::FloodLimits::from_config(&cfg.flood).map(Arc::new)),
            cfg: RwLock::new(cfg),
        }
    }

    /// The configuration now.
    pub(super) fn cfg(&self) -> Arc<Config> {
        self.cfg.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Flood control for a new connection.
    pub(super) fn flood(&self) -> Option<Arc<flood::FloodLimits>> {
        self.flood.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, cfg: Arc<Config>) {
        let flood = flood::FloodLimits::from_config(&cfg.flood).map(Arc::new);
        *self.flood.write().unwrap_or_else(|e| e.into_inner()) = flood;
        *self.cfg.write().unwrap_or_else(|e| e.into_inner()) = cfg;
    }
}

/// The admission limits `cfg` asks for.
pub(super) fn conn_limits(cfg: &Config) -> limits::ConnLimits {
    let l = &cfg.limits;
    limits::ConnLimits {
        max_connections: l.max_connections,
        per_address: l.connections_per_ip,
        rate: l.connection_rate,
        burst: l.connection_burst,
        exempt: l.exempt_networks.clone(),
    }
}

/// How the configuration is read again: `load` reads the file (the
/// command line's listeners applied), each message on `requests` (SIGHUP)
/// asks for a reload; REHASH asks through the hub's effects.
pub struct Reloads {
    pub load: Arc<dyn Fn() -> Result<Config, String> + Send + Sync>,
    pub requests: tokio::sync::mpsc::Receiver<()>,
}

/// Reads the configuration with `load` and applies it; a file that does
/// not load, or a new listener that cannot be bound, keeps the running
/// configuration, and the log says why.
pub(super) fn reload(shared: &Arc<Shared>, load: &Load) -> Result<(), String> {
    let _one_at_a_time = shared.listeners.changing();
    let loaded = load().and_then(|cfg| {
        let change = shared.listeners.prepare(&cfg, shared.tls.is_some())?;
        Ok((cfg, change))
    });
    match loaded {
        Ok((cfg, change)) => {
            if cfg.tls.is_some() != shared.tls.is_some() {
                tracing::warn!(
                    "[tls] is read at start: adding or removing it needs a restart \
                     (TLS listeners unchanged)"
                );
            }
            apply(shared, Arc::new(cfg));
            shared.listeners.apply(shared, change);
            // The certificate and key, from the paths the server started
            // with; a pair that does not load keeps the running one.
            if let Some(tls) = &shared.tls {
                match tls.reload() {
                    Ok(()) => tracing::info!("TLS certificate reloaded"),
                    Err(e) => {
                        tracing::error!(error = %e, "TLS reload failed, keeping the old certificate")
                    }
                }
            }
            Ok(())
        }
        Err(why) => {
            tracing::error!(error = %why, "configuration not reloaded, keeping the running one");
            Err(why)
        }
    }
}

/// Starts serving reload requests: SIGHUP's, and REHASH's through the
/// hub's effects.
pub(super) fn start(shared: &Arc<Shared>, reloads: Reloads) {
    let Reloads { load, mut requests } = reloads;
    let weak = Arc::downgrade(shared);
    let on_rehash = load.clone();
    shared
        .hub
        .effects()
        .set_rehash(Arc::new(move || match weak.upgrade() {
            Some(shared) => reload(&shared, &*on_rehash),
            None => Err("the server is shutting down".into()),
        }));
    let shared = shared.clone();
    shared.tracker.clone().spawn(async move {
        loop {
            tokio::select! {
                Some(()) = requests.recv() => {
                    let _ = reload(&shared, &*load);
                }
                _ = shared.shutdown.cancelled() => break,
                else => break,
            }
        }
    });
}

/// Makes `cfg` the running configuration.
pub(super) fn apply(shared: &Shared, cfg: Arc<Config>) {
    shared
        .hub
        .reconfigure(Arc::new(cfg.core()), cfg.send_limits(), cfg.secrets());
    shared
        .admission
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .set_limits(conn_limits(&cfg));
    shared.live.set(cfg);
    tracing::info!("configuration reloaded");
}
