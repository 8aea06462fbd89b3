//! The core's slice of the configuration: names and texts shown to users and
//! the limits commands enforce. The server builds it from its file and may
//! swap it at run time ([`crate::Network::set_config`]).

/// What the network and the dialects need to know.
#[derive(Clone, Debug, PartialEq)]
pub struct CoreConfig {
    /// Name the server gives itself (source of IRC numerics).
    pub server_name: String,
    /// Network name (ISUPPORT NETWORK).
    pub network: String,
    /// What the server says of itself (IRC `LINKS`, `WHOIS`'s 312).
    pub description: String,
    /// Channel every `line` user joins on connect and returns to on `PART`;
    /// it exists from the start and outlives its last member.
    pub default_channel: String,
    /// The line dialect's greeting.
    pub welcome: String,
    /// Message of the day, one entry per line.
    pub motd: Vec<String>,
    /// Contact shown by IRC `ADMIN`.
    pub admin: Admin,
    /// IRC clients must give the connection password (PASS) to register.
    pub password_required: bool,
    pub limits: Limits,
    /// Registered accounts: who may register, and how.
    pub accounts: Accounts,
    /// This node's number, carried by its connection and message ids.
    pub node: u16,
}

/// Whether clients may register accounts themselves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Registration {
    /// `REGISTER` (draft/account-registration) creates accounts.
    #[default]
    Open,
    /// Only the administrator creates accounts (`bavard account add`).
    Closed,
}

/// The `[accounts]` settings the core applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accounts {
    pub registration: Registration,
    /// `REGISTER` is accepted before the connection completes registration
    /// (cap value `before-connect`).
    pub before_connect: bool,
    /// `REGISTER` needs an email address (cap value `email-required`). No
    /// mail is sent: the address is kept, unverified.
    pub require_email: bool,
    /// Seconds an unidentified holder of a registered nick keeps it before
    /// being renamed to a guest nick; `None`: nicks are not protected.
    pub nick_protection: Option<u64>,
    /// Failed logins per account or address within `login_window` seconds
    /// before further attempts are refused for `login_window` seconds; 0
    /// never throttles.
    pub login_failures: u32,
    pub login_window: u64,
}

impl Accounts {
    /// The failed-login throttle's limits.
    pub fn throttle(&self) -> crate::throttle::Limits {
        crate::throttle::Limits {
            max_failures: self.login_failures,
            window: self.login_window * 1000,
        }
    }
}

impl Default for Accounts {
    fn default() -> Self {
        Accounts {
            registration: Registration::Open,
            before_connect: true,
            require_email: false,
            nick_protection: Some(30),
            login_failures: 5,
            login_window: 60,
        }
    }
}

/// ADMIN reply contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admin {
    pub location: String,
    pub description: String,
    pub email: String,
}

/// The limits a command can run into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest `line` dialect input line in bytes, newline excluded.
    pub line_length: usize,
    /// Longest IRC line without tags, CRLF included.
    pub irc_line_length: usize,
    /// Longest line-dialect chat message, in characters.
    pub message_length: usize,
    pub nick_length: usize,
    pub channel_length: usize,
    pub topic_length: usize,
    pub kick_length: usize,
    pub away_length: usize,
    pub channels_per_user: usize,
    /// Entries in each channel's ban, exception and invite-exception lists.
    pub list_entries: usize,
    /// Targets in one PRIVMSG/NOTICE/TAGMSG, KICK or NAMES.
    pub max_targets: usize,
    /// Entries in one MONITOR list.
    pub monitor: usize,
    /// Conversations whose read marker (draft/read-marker) is kept per
    /// user; past it, the one read longest ago is forgotten.
    pub read_markers: usize,
    /// Seconds a message stays redactable (draft/message-redaction) ...
    pub redact_window: u64,
    /// ... among the last this many messages, which the network remembers.
    pub redact_messages: usize,
    /// Messages each conversation keeps for draft/chathistory
    /// (`CHATHISTORY`), and the most one request returns; 0 keeps none and
    /// offers no history (`history.max_per_target`, or 0 with
    /// `history.enabled = false`, in the server's configuration).
    pub history: usize,
    /// Chat messages played to a client that joins a channel and cannot ask
    /// for history itself (`history.playback_on_join`); 0: none.
    pub playback_on_join: usize,
    /// The most messages the line dialect's `HISTORY` shows at once
    /// (`history.line_history_max`).
    pub line_history: usize,
    /// draft/metadata-3: keys one user or channel may have (`max-keys`) ...
    pub metadata_keys: usize,
    /// ... the longest key, in bytes ...
    pub metadata_key_bytes: usize,
    /// ... the longest value, in bytes (`max-value-bytes`) ...
    pub metadata_value_bytes: usize,
    /// ... and the keys one client may subscribe to (`max-subs`).
    pub metadata_subs: usize,
    /// Seconds of silence before the server PINGs an IRC client ...
    pub ping_interval: u64,
    /// ... and seconds it has to answer.
    pub ping_timeout: u64,
    /// Seconds an IRC client has to register.
    pub registration_timeout: u64,
    /// Seconds a line may stay unfinished (slow-loris guard).
    pub partial_line_timeout: u64,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            server_name: "bavard.local".into(),
            network: "bavard".into(),
            description: "bavard chat server".into(),
            default_channel: "#lobby".into(),
            welcome: "Welcome to Chat Server !".into(),
            motd: vec!["Welcome to bavard.".into()],
            admin: Admin::default(),
            password_required: false,
            limits: Limits::default(),
            accounts: Accounts::default(),
            node: 0,
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
            list_entries: 100,
            max_targets: 4,
            monitor: 100,
            read_markers: 100,
            redact_window: 900,
            redact_messages: 10_000,
            history: 1000,
            playback_on_join: 0,
            line_history: 100,
            metadata_keys: 20,
            metadata_key_bytes: 64,
            metadata_value_bytes: 256,
            metadata_subs: 50,
            ping_interval: 120,
            ping_timeout: 60,
            registration_timeout: 60,
            partial_line_timeout: 60,
        }
    }
}
