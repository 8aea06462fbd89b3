//! Server configuration: a TOML file whose every key has a default, so that
//! `bavard serve` runs with no file at all. `bavard.example.toml` documents each key.

use std::net::SocketAddr;
use std::path::Path;

use bavard_core::CoreConfig;
use serde::Deserialize;

/// Errors while loading a configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid configuration in {path}: {source}")]
    Parse {
        path: String,
        source: toml::de::Error,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The whole configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Name the server gives itself (IRC source of numerics, `[server]` lines stay `[server]`).
    pub server_name: String,
    /// Network name advertised to IRC clients (ISUPPORT NETWORK).
    pub network: String,
    /// What the server says of itself: IRC `LINKS` and `WHOIS` (312).
    pub server_description: String,
    /// Channel every `line` user joins on connect and returns to on `PART`.
    pub default_channel: String,
    /// Text of the line dialect's greeting, sent as `[server] <welcome>`.
    pub welcome: String,
    /// Message of the day, one entry per line (IRC MOTD; line users get it too).
    pub motd: Vec<String>,
    /// Connection password for the irc dialect: an argon2 hash from `bavard mkpasswd`.
    pub password: Option<String>,
    /// Which addresses to listen on, in which dialect.
    pub listeners: Listeners,
    /// Named limits; see [`Limits`].
    pub limits: Limits,
    /// Operators (`OPER name password`).
    #[serde(rename = "oper")]
    pub opers: Vec<Oper>,
    /// Administrative contact shown by the IRC `ADMIN` command.
    pub admin: Admin,
    /// Input flood control.
    pub flood: FloodConfig,
    /// Worker threads serving connections; 0 means one per CPU but one
    /// (at least one).
    pub workers: usize,
    /// Certificate for the TLS listeners; without it they are off.
    pub tls: Option<TlsConfig>,
    /// Where accounts and history are kept.
    pub storage: StorageConfig,
    /// Registered accounts (SASL, REGISTER).
    pub accounts: AccountsConfig,
    /// The HTTP listener's WebSocket and pages.
    pub http: HttpConfig,
    /// What is kept for IRCv3 draft/chathistory, and for how long.
    pub history: HistoryConfig,
    /// Other nodes of the same network, through NATS JetStream; without
    /// it, this server is the whole network.
    pub cluster: Option<crate::cluster::ClusterConfig>,
}

/// History (docs/storage.md): kept in the database of `[storage]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// Whether messages are kept and draft/chathistory offered (the cost:
    /// docs/performance.md, "History").
    pub enabled: bool,
    /// Events each conversation keeps; also the most one CHATHISTORY
    /// returns (ISUPPORT `CHATHISTORY`).
    pub max_per_target: usize,
    /// Seconds a message is kept, or a duration such as "30d", "12h", "90m";
    /// 0 keeps messages until `max_per_target` pushes them out.
    #[serde(deserialize_with = "duration_secs")]
    pub max_age: u64,
    /// Chat messages played to a client that joins a channel and cannot ask
    /// for them (IRC without draft/chathistory, the line dialect); 0: none.
    /// Off per channel with mode `+W`.
    pub playback_on_join: usize,
    /// The most messages the line dialect's `HISTORY` shows at once.
    pub line_history_max: usize,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            enabled: true,
            max_per_target: 1000,
            max_age: 0,
            playback_on_join: 0,
            line_history_max: 100,
        }
    }
}

/// Seconds, as a number or as a number with a unit (`s`, `m`, `h`, `d`).
fn duration_secs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Secs {
        Number(u64),
        Text(String),
    }
    let text = match Secs::deserialize(d)? {
        Secs::Number(n) => return Ok(n),
        Secs::Text(t) => t,
    };
    let t = text.trim();
    let (n, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(serde::de::Error::custom(format!("not a duration: {text}"))),
    };
    n.parse::<u64>()
        .map(|n| n.saturating_mul(scale))
        .map_err(|_| serde::de::Error::custom(format!("not a duration: {text}")))
}

/// The database file (docs/storage.md).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// The SQLite file, created if missing; a relative path is from the
    /// server's working directory.
    pub path: std::path::PathBuf,
    /// The most the file may hold, in bytes (0: no limit). Past it, as
    /// on a full disk, history is not kept and account changes are
    /// refused, and the log says so; chat goes on.
    pub max_size: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            path: "bavard.db".into(),
            max_size: 0,
        }
    }
}

/// `[accounts]`: who may register an account over the wire, and how.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountsConfig {
    /// `"open"`: clients register with `REGISTER`; `"closed"`: only the
    /// administrator creates accounts.
    pub registration: RegistrationPolicy,
    /// `REGISTER` is accepted before the connection has registered.
    pub before_connect: bool,
    /// `REGISTER` needs an email address (kept, never verified: no mail is sent).
    pub require_email: bool,
    /// `"off"`, or the seconds an unidentified holder of a registered nick
    /// keeps it before being renamed to a guest nick.
    pub nick_protection: NickProtection,
    /// Failed logins per account or address within `login_window` seconds
    /// before further attempts wait `login_window` seconds; 0: never.
    pub login_failures: u32,
    pub login_window: u64,
    /// Threads hashing passwords (argon2) at once, at a low priority
    /// (`crate::hashing`); 0: one per CPU but one. Read at start.
    pub password_threads: usize,
}

/// `accounts.nick_protection`: `"off"` or a grace in seconds.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum NickProtection {
    Grace(u64),
    Off(Off),
}

/// The word `"off"`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Off {
    Off,
}

/// `accounts.registration`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationPolicy {
    #[default]
    Open,
    Closed,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig {
            registration: RegistrationPolicy::Open,
            before_connect: true,
            require_email: false,
            nick_protection: NickProtection::Grace(30),
            login_failures: 5,
            login_window: 60,
            password_threads: 0,
        }
    }
}

/// `[http]`: what the HTTP listener (`listeners.http`) accepts.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Origins (`https://chat.example.org`) whose pages may open a
    /// WebSocket; empty: any. A request without `Origin` (not a browser)
    /// is always allowed.
    pub allowed_origins: Vec<String>,
}

/// Flood control: token buckets per client; excess input is delayed, and a
/// client whose backlog would take longer than `max_delay` is dropped.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FloodConfig {
    pub enabled: bool,
    pub lines_per_sec: f64,
    pub burst_lines: f64,
    pub bytes_per_sec: f64,
    pub burst_bytes: f64,
    /// Seconds.
    pub max_delay: f64,
}

impl Default for FloodConfig {
    fn default() -> Self {
        FloodConfig {
            enabled: true,
            lines_per_sec: 50.0,
            burst_lines: 1000.0,
            bytes_per_sec: 131_072.0,
            burst_bytes: 1_048_576.0,
            max_delay: 30.0,
        }
    }
}

/// PEM files of the TLS certificate chain and its private key.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// Listener addresses. `"off"` (or `""`) disables a listener; a missing key
/// keeps its default.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Listeners {
    /// The lab's netcat-friendly protocol.
    #[serde(deserialize_with = "listener")]
    pub line: Option<SocketAddr>,
    /// The IRC client protocol.
    #[serde(deserialize_with = "listener")]
    pub irc: Option<SocketAddr>,
    /// The line protocol over TLS (only when `[tls]` is configured).
    #[serde(deserialize_with = "listener")]
    pub line_tls: Option<SocketAddr>,
    /// The IRC protocol over TLS (only when `[tls]` is configured).
    #[serde(deserialize_with = "listener")]
    pub irc_tls: Option<SocketAddr>,
    /// HTTP: IRC over WebSocket, `/metrics`, `/healthz`; over TLS when
    /// `[tls]` is configured.
    #[serde(deserialize_with = "listener")]
    pub http: Option<SocketAddr>,
}

/// A listener address, or `"off"` / `""` for none.
fn listener<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let s = String::deserialize(d)?;
    match s.trim() {
        "" | "off" => Ok(None),
        a => a
            .parse()
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("invalid listener address {a:?}: {e}"))),
    }
}

/// Every limit a client can run into.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Longest `line` dialect input line in bytes, newline excluded.
    pub line_length: usize,
    /// Longest IRC input line in bytes (tags excluded), CRLF included: 512 per the protocol.
    pub irc_line_length: usize,
    /// Longest chat message in characters (the lab's 2000).
    pub message_length: usize,
    /// Longest nickname in characters.
    pub nick_length: usize,
    /// Longest channel name in bytes.
    pub channel_length: usize,
    /// Longest topic in bytes.
    pub topic_length: usize,
    /// Longest kick reason in bytes.
    pub kick_length: usize,
    /// Longest away message in bytes.
    pub away_length: usize,
    /// Channels one IRC user may be in at once.
    pub channels_per_user: usize,
    /// Bytes queued for one client before it is disconnected (`SendQ exceeded`).
    pub send_queue: usize,
    /// Milliseconds a client's queue may stand still (nothing written to it)
    /// before its reader counts as stopped: until then, whoever sends to it
    /// waits for it to drain once it is past an eighth of `send_queue`.
    pub stall_grace_ms: u64,
    /// Seconds a write to a client may stand still before the client is
    /// dropped (`Write timeout`).
    pub write_timeout: u64,
    /// Entries in each channel's ban, exception and invite-exception lists.
    pub list_entries: usize,
    /// Targets in one PRIVMSG/NOTICE/TAGMSG, KICK or NAMES.
    pub max_targets: usize,
    /// Entries in one client's MONITOR list.
    pub monitor: usize,
    /// Conversations whose read marker (IRCv3 draft/read-marker) is kept per
    /// user; past it, the one read longest ago is forgotten.
    pub read_markers: usize,
    /// Seconds a message stays redactable (IRCv3 draft/message-redaction) ...
    pub redact_window: u64,
    /// ... among the last this many messages, which the server remembers
    /// (40 bytes each); 0 with either turns redaction off.
    pub redact_messages: usize,
    /// IRCv3 draft/metadata-3: keys one user or channel may have ...
    pub metadata_keys: usize,
    /// ... the longest key and the longest value, in bytes (a key and a value
    /// must fit an IRC reply line with the longest nick and channel name) ...
    pub metadata_key_bytes: usize,
    pub metadata_value_bytes: usize,
    /// ... and the keys one client may subscribe to.
    pub metadata_subs: usize,
    /// Connections open at once, all addresses together.
    pub max_connections: usize,
    /// Connections open at once from one address (one /64 for IPv6).
    pub connections_per_ip: usize,
    /// Networks exempt from `connections_per_ip` and the connection rate
    /// (loopback by default, so local tools and tests keep working).
    pub exempt_networks: Vec<ipnet::IpNet>,
    /// New connections per second from one address ...
    pub connection_rate: f64,
    /// ... with this many allowed in a burst.
    pub connection_burst: f64,
    /// Seconds of silence after which the server PINGs a client.
    pub ping_interval: u64,
    /// Seconds to answer that PING before being disconnected.
    pub ping_timeout: u64,
    /// Seconds an IRC client has to complete registration.
    pub registration_timeout: u64,
    /// Seconds a partial line (no newline yet) may stay incomplete (slow-loris guard).
    pub partial_line_timeout: u64,
}

/// An operator account.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Oper {
    pub name: String,
    /// Argon2 hash printed by `bavard mkpasswd`.
    pub password: String,
}

/// ADMIN reply contents.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Admin {
    pub location: String,
    pub description: String,
    pub email: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server_name: "bavard.local".into(),
            network: "bavard".into(),
            server_description: "bavard chat server".into(),
            default_channel: "#lobby".into(),
            welcome: "Welcome to Chat Server !".into(),
            motd: vec!["Welcome to bavard.".into()],
            password: None,
            listeners: Listeners::default(),
            limits: Limits::default(),
            opers: Vec::new(),
            admin: Admin::default(),
            flood: FloodConfig::default(),
            workers: 0,
            tls: None,
            storage: StorageConfig::default(),
            accounts: AccountsConfig::default(),
            http: HttpConfig::default(),
            history: HistoryConfig::default(),
            cluster: None,
        }
    }
}

impl Default for Listeners {
    fn default() -> Self {
        Listeners {
            line: Some("[::]:7777".parse().expect("valid literal")),
            irc: Some("[::]:6667".parse().expect("valid literal")),
            line_tls: Some("[::]:7778".parse().expect("valid literal")),
            irc_tls: Some("[::]:6697".parse().expect("valid literal")),
            http: Some("[::]:8080".parse().expect("valid literal")),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            line_length: 8192,
            irc_line_length: 512,
            message_length: 2000,
            nick_length: 30,
            channel_length: 50,
            topic_length: 390,
            kick_length: 255,
            away_length: 200,
            channels_per_user: 50,
            send_queue: 1 << 20,
            stall_grace_ms: 1000,
            write_timeout: 60,
            list_entries: 100,
            max_targets: 4,
            monitor: 100,
            read_markers: 100,
            redact_window: 900,
            redact_messages: 10_000,
            metadata_keys: 20,
            metadata_key_bytes: 64,
            metadata_value_bytes: 256,
            metadata_subs: 50,
            max_connections: 150_000,
            connections_per_ip: 10,
            exempt_networks: vec![
                "127.0.0.0/8".parse().expect("valid literal"),
                "::1/128".parse().expect("valid literal"),
            ],
            connection_rate: 50.0,
            connection_burst: 500.0,
            ping_interval: 120,
            ping_timeout: 60,
            registration_timeout: 60,
            partial_line_timeout: 60,
        }
    }
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            location: "bavard chat server".into(),
            description: "Administrator".into(),
            email: "admin@bavard.local".into(),
        }
    }
}

impl Config {
    /// The core's slice: names, texts and the limits commands enforce.
    pub fn core(&self) -> CoreConfig {
        let l = &self.limits;
        CoreConfig {
            server_name: self.server_name.clone(),
            network: self.network.clone(),
            description: self.server_description.clone(),
            default_channel: self.default_channel.clone(),
            welcome: self.welcome.clone(),
            motd: self.motd.clone(),
            admin: bavard_core::config::Admin {
                location: self.admin.location.clone(),
                description: self.admin.description.clone(),
                email: self.admin.email.clone(),
            },
            password_required: self.password.is_some(),
            limits: bavard_core::config::Limits {
                line_length: l.line_length,
                irc_line_length: l.irc_line_length,
                message_length: l.message_length,
                nick_length: l.nick_length,
                channel_length: l.channel_length,
                topic_length: l.topic_length,
                kick_length: l.kick_length,
                away_length: l.away_length,
                channels_per_user: l.channels_per_user,
                list_entries: l.list_entries,
                max_targets: l.max_targets,
                monitor: l.monitor,
                read_markers: l.read_markers,
                redact_window: l.redact_window,
                redact_messages: l.redact_messages,
                history: if self.history.enabled {
                    self.history.max_per_target
                } else {
                    0
                },
                playback_on_join: self.history.playback_on_join,
                line_history: self.history.line_history_max,
                metadata_keys: l.metadata_keys,
                metadata_key_bytes: l.metadata_key_bytes,
                metadata_value_bytes: l.metadata_value_bytes,
                metadata_subs: l.metadata_subs,
                ping_interval: l.ping_interval,
                ping_timeout: l.ping_timeout,
                registration_timeout: l.registration_timeout,
                partial_line_timeout: l.partial_line_timeout,
            },
            accounts: bavard_core::config::Accounts {
                registration: match self.accounts.registration {
                    RegistrationPolicy::Open => bavard_core::config::Registration::Open,
                    RegistrationPolicy::Closed => bavard_core::config::Registration::Closed,
                },
                before_connect: self.accounts.before_connect,
                require_email: self.accounts.require_email,
                nick_protection: match self.accounts.nick_protection {
                    NickProtection::Grace(s) => Some(s),
                    NickProtection::Off(_) => None,
                },
                login_failures: self.accounts.login_failures,
                login_window: self.accounts.login_window,
            },
            node: 0,
        }
    }

    /// The send queues' slice: when a reader counts as stopped, when a stuck
    /// write drops its client.
    pub fn send_limits(&self) -> crate::hub::SendLimits {
        crate::hub::SendLimits {
            stall_grace: std::time::Duration::from_millis(self.limits.stall_grace_ms),
            write_timeout: std::time::Duration::from_secs(self.limits.write_timeout),
        }
    }

    /// The effect runner's slice: what passwords are checked against.
    pub fn secrets(&self) -> crate::effects::Secrets {
        crate::effects::Secrets {
            password: self.password.clone(),
            opers: self.opers.clone(),
        }
    }

    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: display.clone(),
            source,
        })?;
        Config::parse(&text).map_err(|e| match e {
            ConfigError::Parse { source, .. } => ConfigError::Parse {
                path: display,
                source,
            },
            other => other,
        })
    }

    /// Parses and validates configuration text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: String::new(),
            source,
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks values serde cannot: limits that would make the server unusable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        let bad = |what: &str| Err(ConfigError::Invalid(what.to_string()));
        if bavard_core::names::ChannelName::parse(&self.default_channel, l.channel_length).is_err()
        {
            return bad("default_channel must be a valid channel name such as \"#lobby\"");
        }
        if self.storage.path.as_os_str().is_empty() {
            return bad("storage.path must name a file, such as \"bavard.db\"");
        }
        if l.nick_length < 9 {
            return bad("limits.nick_length must be at least 9");
        }
        if l.line_length < 64 || l.irc_line_length < 512 {
            return bad("limits.line_length must be >= 64 and limits.irc_line_length >= 512");
        }
        if l.message_length == 0 || l.channels_per_user == 0 {
            return bad("limits.message_length and channels_per_user must be > 0");
        }
        if !(4096..=u32::MAX as usize).contains(&l.send_queue) {
            return bad("limits.send_queue must be between 4096 and 4294967295 bytes");
        }
        if l.max_connections == 0
            || l.connections_per_ip == 0
            || l.connection_rate.is_nan()
            || l.connection_rate <= 0.0
            || l.connection_burst.is_nan()
            || l.connection_burst < 1.0
        {
            return bad(
                "limits.max_connections, connections_per_ip and connection_rate must be > 0, connection_burst >= 1",
            );
        }
        if !(10..=600_000).contains(&l.stall_grace_ms)
            || l.write_timeout == 0
            || l.write_timeout.saturating_mul(1000) <= l.stall_grace_ms
        {
            return bad(
                "limits.stall_grace_ms must be 10 to 600000, limits.write_timeout (seconds) longer than it",
            );
        }
        if self.history.line_history_max == 0 {
            return bad("history.line_history_max must be > 0");
        }
        if l.max_targets == 0 || l.ping_interval == 0 || l.ping_timeout == 0 {
            return bad("limits.max_targets, ping_interval and ping_timeout must be > 0");
        }
        // `:<server> 761 <nick> <target> <key> * :<value>` must fit 512 bytes
        // (with the longest nick and target; 16 for the rest).
        let name = l.nick_length.max(l.channel_length);
        let line =
            self.server_name.len() + 2 * name + l.metadata_key_bytes + l.metadata_value_bytes + 16;
        if l.metadata_key_bytes == 0 || line > 512 {
            return Err(ConfigError::Invalid(format!(
                "limits.metadata_key_bytes must be > 0, and server_name, twice the longest of \
                 nick_length and channel_length, metadata_key_bytes and metadata_value_bytes \
                 with 16 must fit 512 bytes (an IRC reply line); they make {line}"
            )));
        }
        let f = &self.flood;
        let positive = |x: f64| x.is_finite() && x > 0.0;
        if !(positive(f.lines_per_sec)
            && positive(f.bytes_per_sec)
            && positive(f.max_delay)
            && f.burst_lines >= 1.0
            && f.burst_bytes >= 1.0)
        {
            return bad("flood rates and max_delay must be > 0, bursts >= 1");
        }
        for o in &self.opers {
            if crate::passwd::check_hash_format(&o.password).is_err() {
                return Err(ConfigError::Invalid(format!(
                    "oper {:?}: password must be a hash printed by `bavard mkpasswd`",
                    o.name
                )));
            }
        }
        if let Some(p) = &self.password
            && crate::passwd::check_hash_format(p).is_err()
        {
            return bad("password must be a hash printed by `bavard mkpasswd`");
        }
        if let Some(c) = &self.cluster {
            c.validate().map_err(ConfigError::Invalid)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.default_channel, "#lobby");
        assert_eq!(c.limits.message_length, 2000);
        assert_eq!(c.listeners.line.unwrap().port(), 7777);
        assert_eq!(c.storage.path, std::path::Path::new("bavard.db"));
    }

    #[test]
    fn storage_names_a_file() {
        let c = Config::parse("[storage]\npath = \"/var/lib/bavard/chat.db\"").unwrap();
        assert_eq!(
            c.storage.path,
            std::path::Path::new("/var/lib/bavard/chat.db")
        );
        assert!(Config::parse("[storage]\npath = \"\"").is_err());
        assert!(Config::parse("[storage]\nfile = \"x.db\"").is_err());
    }

    #[test]
    fn listeners_can_be_turned_off() {
        let c = Config::parse("[listeners]\nline = \"off\"\nirc = \"127.0.0.1:1\"").unwrap();
        assert_eq!(c.listeners.line, None);
        assert_eq!(c.listeners.irc, Some("127.0.0.1:1".parse().unwrap()));
        assert!(Config::parse("[listeners]\nline = \"nope\"").is_err());
        let c = Config::parse("[listeners]\nhttp = \"off\"").unwrap();
        assert_eq!(c.listeners.http, None);
        assert_eq!(Config::default().listeners.http.unwrap().port(), 8080);
        let c = Config::parse("[http]\nallowed_origins = [\"https://a.example\"]").unwrap();
        assert_eq!(c.http.allowed_origins, ["https://a.example"]);
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(Config::parse("nope = 1").is_err());
        assert!(Config::parse("[limits]\nline_lenght = 5").is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(Config::parse("default_channel = \"lobby\"").is_err());
        assert!(Config::parse("[limits]\nnick_length = 3").is_err());
        // The send queue bound: 4 KiB to 4 GiB, both ends included.
        assert!(Config::parse("[limits]\nsend_queue = 4095").is_err());
        assert!(Config::parse("[limits]\nsend_queue = 4096").is_ok());
        assert!(Config::parse("[limits]\nsend_queue = 4294967295").is_ok());
        assert!(Config::parse("[limits]\nsend_queue = 4294967296").is_err());
        assert!(Config::parse("[[oper]]\nname = \"a\"\npassword = \"plain\"").is_err());
    }

    #[test]
    fn ircv3_limits_reach_the_core_and_may_be_zero() {
        let c = Config::parse(
            "server_description = \"d\"\n[limits]\nread_markers = 0\nredact_window = 0\nredact_messages = 0",
        )
        .unwrap();
        let core = c.core();
        assert_eq!(core.description, "d");
        let l = &core.limits;
        assert_eq!(
            (l.read_markers, l.redact_window, l.redact_messages),
            (0, 0, 0)
        );
        assert!(Config::parse("[limits]\nredact_window = -1").is_err());
    }

    #[test]
    fn metadata_must_fit_a_reply_line() {
        // "bavard.local" (12) + 2 * 50 + 64 + 256 + 16 = 448 by default;
        // 512 is the most.
        let at = |key: usize, value: usize| {
            Config::parse(&format!(
                "[limits]\nmetadata_key_bytes = {key}\nmetadata_value_bytes = {value}"
            ))
        };
        assert!(at(64, 320).is_ok());
        assert!(at(64, 321).is_err());
        assert!(at(0, 10).is_err());
        let c = at(64, 320).unwrap().core();
        assert_eq!(
            (c.limits.metadata_key_bytes, c.limits.metadata_value_bytes),
            (64, 320)
        );
    }

    #[test]
    fn the_core_slice_has_the_core_defaults() {
        assert_eq!(Config::default().core(), CoreConfig::default());
    }

    #[test]
    fn history_max_age_takes_seconds_or_a_unit() {
        let age = |v: &str| Config::parse(&format!("[history]\nmax_age = {v}\n"));
        assert_eq!(age("90").unwrap().history.max_age, 90);
        assert_eq!(age("\"30d\"").unwrap().history.max_age, 30 * 86_400);
        assert_eq!(age("\"12h\"").unwrap().history.max_age, 12 * 3600);
        assert!(age("\"soon\"").is_err());
        let off = Config::parse("[history]\nenabled = false\n").unwrap();
        assert_eq!(off.core().limits.history, 0);
    }

    #[test]
    fn example_config_parses() {
        let text = include_str!("../bavard.example.toml");
        Config::parse(text).unwrap();
    }
}
