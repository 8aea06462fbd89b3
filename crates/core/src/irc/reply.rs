//! Everything a command sends back to the client that issued it goes through
//! a [`Responder`], so labeled-response (one reply labeled, several wrapped in
//! a batch, none acknowledged) is applied in one place for every command.

use std::io::Write;
use std::sync::Arc;

use super::cap;
use super::render::IrcDialect;
use crate::config::CoreConfig;
use crate::dialect::Dialect;
use crate::notify::Event;
use bavard_proto::numeric::Numeric;

/// Collects one command's replies. Owned, so that a command waiting on an
/// effect keeps what it has answered so far.
#[derive(Debug)]
pub struct Responder {
    /// For the server's name.
    cfg: Arc<CoreConfig>,
    /// The client's nick, or `*` before it has one.
    pub nick: String,
    caps: u32,
    label: Option<String>,
    lines: Vec<Vec<u8>>,
    /// The reference of the batch being written (see [`Responder::start_batch`]).
    batch: Option<String>,
    /// Batches opened so far: each gets its own reference.
    batches: u16,
}

impl Responder {
    pub fn new(cfg: Arc<CoreConfig>, nick: &str, caps: u32, label: Option<String>) -> Responder {
        Responder {
            cfg,
            nick: if nick.is_empty() { "*" } else { nick }.to_string(),
            caps,
            label,
            lines: Vec::new(),
            batch: None,
            batches: 0,
        }
    }

    /// Opens a batch of `kind` (`metadata`, ...): the lines up to
    /// [`Responder::end_batch`] belong to it. Without the `batch`
    /// capability they are sent as they are.
    pub fn start_batch(&mut self, kind: &str, params: &[&str]) {
        if self.caps & cap::BATCH == 0 {
            return;
        }
        self.end_batch();
        self.batches += 1;
        let id = format!("r{}", self.batches);
        let mut line = format!(":{} BATCH +{id} {kind}", self.server());
        for p in params {
            line.push(' ');
            line.push_str(p);
        }
        line.push_str("\r\n");
        self.lines.push(line.into_bytes());
        self.batch = Some(id);
    }

    /// Closes the batch [`Responder::start_batch`] opened, if any.
    pub fn end_batch(&mut self) {
        if let Some(id) = self.batch.take() {
            let line = format!(":{} BATCH -{id}\r\n", self.server());
            self.lines.push(line.into_bytes());
        }
    }

    /// Adds a line, tagged with the open batch if there is one (a line of
    /// a batch nested in it, a multiline message's, keeps its own tag).
    fn push(&mut self, line: Vec<u8>) {
        match &self.batch {
            Some(id) if !line.starts_with(b"@batch=") => {
                let mut tagged = Vec::with_capacity(line.len() + id.len() + 8);
                add_tag(&mut tagged, &format!("batch={id}"), &line);
                self.lines.push(tagged);
            }
            _ => self.lines.push(line),
        }
    }

    pub fn server(&self) -> &str {
        &self.cfg.server_name
    }

    pub fn caps(&self) -> u32 {
        self.caps
    }

    /// Updates the capability set (CAP REQ inside the command being answered).
    pub fn set_caps(&mut self, caps: u32) {
        self.caps = caps;
    }

    /// Takes the label away, so that this command is not acknowledged: the
    /// opening of a client batch, answered when the batch ends.
    pub fn take_label(&mut self) -> Option<String> {
        self.label.take()
    }

    /// Labels this reply (with a label saved by [`Responder::take_label`]).
    pub fn set_label(&mut self, label: Option<String>) {
        if label.is_some() {
            self.label = label;
        }
    }

    /// A numeric: `:server CODE nick <params...> :<text>`. When the numeric has
    /// no default text, the last parameter is the trailing one.
    pub fn num(&mut self, n: Numeric, params: &[&str]) {
        let mut line = Vec::with_capacity(64);
        let _ = write!(line, ":{} {:03} {}", self.server(), n.code, self.nick);
        let (middle, trailing) = if n.text.is_empty() {
            match params.split_last() {
                Some((last, rest)) => (rest, *last),
                None => (params, ""),
            }
        } else {
            (params, n.text)
        };
        for p in middle {
            line.push(b' ');
            line.extend_from_slice(p.as_bytes());
        }
        if !(n.text.is_empty() && params.is_empty()) {
            line.extend_from_slice(b" :");
            line.extend_from_slice(trailing.as_bytes());
        }
        line.extend_from_slice(b"\r\n");
        self.push(line);
    }

    /// A numeric with an explicit trailing text instead of the default one.
    pub fn num_text(&mut self, n: Numeric, params: &[&str], text: &str) {
        let mut all: Vec<&str> = params.to_vec();
        all.push(text);
        self.num(
            Numeric {
                code: n.code,
                text: "",
            },
            &all,
        );
    }

    /// A line from the server: `:server <rest>`.
    pub fn server_line(&mut self, rest: &str) {
        let line = format!(":{} {rest}\r\n", self.server()).into_bytes();
        self.push(line);
    }

    /// A complete line (without CRLF).
    pub fn raw(&mut self, line: &str) {
        let mut l = line.as_bytes().to_vec();
        l.extend_from_slice(b"\r\n");
        self.push(l);
    }

    /// A NOTICE from the server to the client.
    pub fn notice(&mut self, text: &str) {
        let nick = self.nick.to_string();
        self.server_line(&format!("NOTICE {nick} :{text}"));
    }

    /// An IRCv3 standard reply (`FAIL`/`WARN`/`NOTE`).
    pub fn standard(
        &mut self,
        kind: &str,
        command: &str,
        code: &str,
        context: &[&str],
        text: &str,
    ) {
        let mut s = format!("{kind} {command} {code}");
        for c in context {
            s.push(' ');
            s.push_str(c);
        }
        s.push_str(" :");
        s.push_str(text);
        self.server_line(&s);
    }

    /// The client's own copy of an event (its JOIN, its NICK, echo-message...),
    /// encoded for its capabilities.
    pub fn event(&mut self, ev: &Event) {
        if let Some(v) = IrcDialect.variant(ev, self.caps) {
            let mut buf = Vec::new();
            IrcDialect.encode(ev, v, &mut buf);
            // Multi-line encodings (split messages) are kept as separate lines
            // so labeled-response counts them correctly.
            for l in buf.split_inclusive(|&b| b == b'\n') {
                self.push(l.to_vec());
            }
        }
    }

    /// Number of lines collected.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Applies labeled-response and returns the bytes to queue.
    pub fn finish(mut self) -> Vec<u8> {
        self.end_batch();
        let mut out = Vec::new();
        match (&self.label, self.lines.len()) {
            (Some(label), _) if self.caps & cap::LABELED_RESPONSE == 0 => {
                let _ = label;
                for l in &self.lines {
                    out.extend_from_slice(l);
                }
            }
            (Some(label), 0) => {
                let _ = write!(out, "@label={label} :{} ACK\r\n", self.server());
            }
            (Some(label), 1) => add_tag(&mut out, &format!("label={label}"), &self.lines[0]),
            (Some(label), n) if is_one_batch(&self.lines) => {
                // Already a single batch (a multiline echo): label its start.
                add_tag(&mut out, &format!("label={label}"), &self.lines[0]);
                for l in &self.lines[1..n] {
                    out.extend_from_slice(l);
                }
            }
            (Some(label), _) => {
                let id = "lr";
                let _ = write!(
                    out,
                    "@label={label} :{} BATCH +{id} labeled-response\r\n",
                    self.server()
                );
                for l in &self.lines {
                    // Lines of a nested batch (a multiline echo) keep their
                    // own reference; its BATCH lines join the outer one.
                    if l.starts_with(b"@batch=") {
                        out.extend_from_slice(l);
                    } else {
                        add_tag(&mut out, &format!("batch={id}"), l);
                    }
                }
                let _ = write!(out, ":{} BATCH -{id}\r\n", self.server());
            }
            (None, _) => {
                for l in &self.lines {
                    out.extend_from_slice(l);
                }
            }
        }
        out
    }
}

/// Whether `lines` are exactly one batch: a start, its lines, its end.
fn is_one_batch(lines: &[Vec<u8>]) -> bool {
    let find = |l: &[u8], pat: &[u8]| l.windows(pat.len()).any(|w| w == pat);
    lines.len() >= 2
        && find(&lines[0], b" BATCH +")
        && lines.last().is_some_and(|l| find(l, b" BATCH -"))
        && lines[1..lines.len() - 1]
            .iter()
            .all(|l| l.starts_with(b"@batch="))
}

/// Copies `line` to `out` with `tag` added to its tag section.
fn add_tag(out: &mut Vec<u8>, tag: &str, line: &[u8]) {
    out.push(b'@');
    out.extend_from_slice(tag.as_bytes());
    if let Some(rest) = line.strip_prefix(b"@") {
        out.push(b';');
        out.extend_from_slice(rest);
    } else {
        out.push(b' ');
        out.extend_from_slice(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bavard_proto::numeric::*;

    fn text(r: Responder) -> String {
        String::from_utf8(r.finish()).unwrap()
    }

    fn cfg(server: &str) -> Arc<CoreConfig> {
        Arc::new(CoreConfig {
            server_name: server.into(),
            ..CoreConfig::default()
        })
    }

    #[test]
    fn numerics() {
        let mut r = Responder::new(cfg("srv"), "", 0, None);
        r.num(ERR_NEEDMOREPARAMS, &["JOIN"]);
        r.num(RPL_WELCOME, &["Welcome home"]);
        r.num(RPL_TOPIC, &["#a", "a topic"]);
        assert_eq!(
            text(r),
            ":srv 461 * JOIN :Not enough parameters\r\n:srv 001 * :Welcome home\r\n:srv 332 * #a :a topic\r\n"
        );
    }

    #[test]
    fn labels() {
        let r = Responder::new(cfg("srv"), "n", cap::LABELED_RESPONSE, Some("x".into()));
        assert_eq!(text(r), "@label=x :srv ACK\r\n");
        let mut r = Responder::new(cfg("srv"), "n", cap::LABELED_RESPONSE, Some("x".into()));
        r.raw("@time=t :a PRIVMSG b :c");
        assert_eq!(text(r), "@label=x;time=t :a PRIVMSG b :c\r\n");
        let mut r = Responder::new(
            cfg("srv"),
            "n",
            cap::LABELED_RESPONSE | cap::BATCH,
            Some("x".into()),
        );
        r.raw("A");
        r.raw("B");
        assert_eq!(
            text(r),
            "@label=x :srv BATCH +lr labeled-response\r\n@batch=lr A\r\n@batch=lr B\r\n:srv BATCH -lr\r\n"
        );
        let mut r = Responder::new(cfg("srv"), "n", 0, Some("x".into()));
        r.raw("A");
        assert_eq!(text(r), "A\r\n");
    }

    #[test]
    fn batches_tag_their_lines_and_need_the_cap() {
        let caps = cap::BATCH | cap::LABELED_RESPONSE;
        let mut r = Responder::new(cfg("srv"), "n", caps, Some("x".into()));
        r.start_batch("metadata", &["n"]);
        r.num(RPL_KEYNOTSET, &["n", "k"]);
        r.end_batch();
        // One batch alone: its start carries the label.
        assert_eq!(
            text(r),
            "@label=x :srv BATCH +r1 metadata n\r\n@batch=r1 :srv 766 n n k :Key not set\r\n:srv BATCH -r1\r\n"
        );
        // Left open, it is closed; a second one gets its own reference,
        // and both are wrapped in the labeled-response batch.
        let mut r = Responder::new(cfg("srv"), "n", caps, Some("x".into()));
        r.start_batch("a", &[]);
        r.start_batch("b", &[]);
        r.raw("L");
        let out = text(r);
        assert!(out.starts_with("@label=x :srv BATCH +lr labeled-response\r\n"));
        assert!(
            out.contains(
                "@batch=lr :srv BATCH +r2 b\r\n@batch=r2 L\r\n@batch=lr :srv BATCH -r2\r\n"
            )
        );
        // Without the cap, only the lines.
        let mut r = Responder::new(cfg("srv"), "n", 0, None);
        r.start_batch("metadata", &[]);
        r.raw("L");
        r.end_batch();
        assert_eq!(text(r), "L\r\n");
    }
}
