//! SASL's server side, as pure computation: reassembling a client's
//! `AUTHENTICATE` chunks (IRCv3 sasl-3.2), reading a PLAIN response
//! (RFC 4616), and the two rounds of SCRAM-SHA-256 (RFC 5802, RFC 7677).
//! The IRC command that drives them is `irc::commands::sasl`; the account
//! lookups they need are effects the server runs.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::effect::ScramStart;
use crate::names::casefold;
use crate::scram::{hmac, sha256};

/// The mechanisms offered, as the `sasl` capability's value and 908 say.
pub const MECHANISMS: &str = "PLAIN,EXTERNAL,SCRAM-SHA-256";

/// A client response travels in `AUTHENTICATE` lines of at most this many
/// bytes of base64; a full chunk means more follow.
pub const CHUNK: usize = 400;

/// The longest response reassembled, in bytes of base64: room for a PLAIN
/// response with a 600-byte password and 255-byte names, and far less than
/// a client could otherwise make the server hold.
pub const MAX_RESPONSE: usize = 2 * CHUNK + 400;

/// A SASL mechanism the server offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    External,
    ScramSha256,
}

impl Mechanism {
    /// The mechanism named `name` (any case).
    pub fn parse(name: &str) -> Option<Mechanism> {
        match name.to_ascii_uppercase().as_str() {
            "PLAIN" => Some(Mechanism::Plain),
            "EXTERNAL" => Some(Mechanism::External),
            "SCRAM-SHA-256" => Some(Mechanism::ScramSha256),
            _ => None,
        }
    }
}

/// Why a SASL exchange failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaslError {
    /// One `AUTHENTICATE` parameter over [`CHUNK`] bytes (905).
    ChunkTooLong,
    /// A response over [`MAX_RESPONSE`] bytes (904).
    ResponseTooLong,
    /// Not base64, or not what the mechanism expects (904).
    Malformed,
    /// The proof or the credentials did not match (904).
    Rejected,
}

/// One client response being reassembled from `AUTHENTICATE` chunks.
#[derive(Debug, Default)]
pub struct Chunks {
    buf: String,
}

impl Chunks {
    /// Takes one chunk: the decoded response once it is complete (a chunk
    /// shorter than [`CHUNK`], or `+` after a full one), `None` while more
    /// must follow.
    pub fn push(&mut self, chunk: &str) -> Result<Option<Vec<u8>>, SaslError> {
        if chunk.len() > CHUNK {
            return Err(SaslError::ChunkTooLong);
        }
        if chunk != "+" {
            if self.buf.len() + chunk.len() > MAX_RESPONSE {
                return Err(SaslError::ResponseTooLong);
            }
            self.buf.push_str(chunk);
            if chunk.len() == CHUNK {
                return Ok(None);
            }
        }
        let text = std::mem::take(&mut self.buf);
        B64.decode(text.as_bytes())
            .map(Some)
            .map_err(|_| SaslError::Malformed)
    }
}

/// The `AUTHENTICATE` lines that carry `data` to the client: base64 in
/// chunks of [`CHUNK`] bytes, then `+` when the last was full (or there was
/// nothing to send).
pub fn challenge_lines(data: &[u8]) -> Vec<String> {
    let text = B64.encode(data);
    let mut lines: Vec<String> = text
        .as_bytes()
        .chunks(CHUNK)
        .map(|c| format!("AUTHENTICATE {}", String::from_utf8_lossy(c)))
        .collect();
    if text.len().is_multiple_of(CHUNK) {
        lines.push("AUTHENTICATE +".into());
    }
    lines
}

/// A PLAIN response: `authzid NUL authcid NUL password` (RFC 4616).
#[derive(Debug, PartialEq, Eq)]
pub struct Plain {
    pub authcid: String,
    pub password: String,
}

/// Reads a PLAIN response. The authorization identity must be empty or the
/// authentication identity itself: nobody logs in as someone else.
pub fn parse_plain(response: &[u8]) -> Result<Plain, SaslError> {
    let text = std::str::from_utf8(response).map_err(|_| SaslError::Malformed)?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(authcid), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed);
    };
    if authcid.is_empty() || password.is_empty() {
        return Err(SaslError::Malformed);
    }
    authorized(authzid, authcid)?;
    Ok(Plain {
        authcid: authcid.to_string(),
        password: password.to_string(),
    })
}

/// Whether the authorization identity `authzid` is allowed for `account`:
/// only when empty or the same account.
pub fn authorized(authzid: &str, account: &str) -> Result<(), SaslError> {
    if authzid.is_empty() || casefold(authzid) == casefold(account) {
        Ok(())
    } else {
        Err(SaslError::Rejected)
    }
}

/// SCRAM's client-first message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientFirst {
    /// `n,,` or `y,,` (with `a=authzid` inside if given): what the client
    /// must send back, base64, as `c=`.
    gs2_header: String,
    authzid: String,
    /// The user name, `=2C` and `=3D` decoded.
    pub user: String,
    nonce: String,
    /// The message without its GS2 header, part of what both sides sign.
    bare: String,
}

/// Reads a client-first message. Channel binding is not offered: `p=` is
/// refused, `n` and `y` are accepted.
pub fn parse_client_first(msg: &[u8]) -> Result<ClientFirst, SaslError> {
    let text = std::str::from_utf8(msg).map_err(|_| SaslError::Malformed)?;
    let bad = SaslError::Malformed;
    let (flag, rest) = text.split_once(',').ok_or(bad)?;
    if flag != "n" && flag != "y" {
        return Err(bad);
    }
    let (authz, bare) = rest.split_once(',').ok_or(bad)?;
    let authzid = match authz {
        "" => String::new(),
        a => unescape(a.strip_prefix("a=").ok_or(bad)?)?,
    };
    let gs2_header = format!("{flag},{authz},");
    let mut fields = bare.split(',');
    let user = unescape(
        fields
            .next()
            .and_then(|f| f.strip_prefix("n="))
            .ok_or(bad)?,
    )?;
    let nonce = fields
        .next()
        .and_then(|f| f.strip_prefix("r="))
        .ok_or(bad)?;
    // A mandatory extension (`m=`) we cannot honour; empty names or nonces.
    if user.is_empty() || nonce.is_empty() || bare.contains(",m=") {
        return Err(bad);
    }
    if !nonce.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
        return Err(bad);
    }
    authorized(&authzid, &user)?;
    Ok(ClientFirst {
        gs2_header,
        authzid,
        user,
        nonce: nonce.to_string(),
        bare: bare.to_string(),
    })
}

/// A SCRAM `saslname`: `=2C` is `,` and `=3D` is `=`; any other `=` is an
/// error.
fn unescape(name: &str) -> Result<String, SaslError> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(SaslError::Malformed),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The server's side of one SCRAM exchange, after its first message.
#[derive(Debug)]
pub struct ScramServer {
    pub account: String,
    client_first_bare: String,
    server_first: String,
    gs2_header: String,
    /// The client's nonce then the server's.
    nonce: String,
    stored_key: [u8; 32],
    server_key: [u8; 32],
}

impl ScramServer {
    /// Answers a client-first message for the account `start` found: the
    /// exchange, and the server-first message to send.
    pub fn new(first: ClientFirst, start: ScramStart) -> Result<(ScramServer, String), SaslError> {
        authorized(&first.authzid, &start.account)?;
        let nonce = format!("{}{}", first.nonce, start.nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&start.scram.salt),
            start.scram.iterations
        );
        let server = ScramServer {
            account: start.account,
            client_first_bare: first.bare,
            server_first: server_first.clone(),
            gs2_header: first.gs2_header,
            nonce,
            stored_key: start.scram.stored_key,
            server_key: start.scram.server_key,
        };
        Ok((server, server_first))
    }

    /// Checks the client-final message's proof: the server-final message
    /// (`v=` and the server's signature) when it holds.
    pub fn finish(&self, client_final: &[u8]) -> Result<String, SaslError> {
        let text = std::str::from_utf8(client_final).map_err(|_| SaslError::Malformed)?;
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or(SaslError::Malformed)?;
        let mut fields = without_proof.split(',');
        let binding = fields.next().and_then(|f| f.strip_prefix("c="));
        let nonce = fields.next().and_then(|f| f.strip_prefix("r="));
        if binding != Some(B64.encode(&self.gs2_header).as_str()) || nonce != Some(&self.nonce) {
            return Err(SaslError::Rejected);
        }
        let proof = B64.decode(proof).map_err(|_| SaslError::Malformed)?;
        let auth = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        let signature = hmac(&self.stored_key, auth.as_bytes());
        if proof.len() != signature.len() {
            return Err(SaslError::Rejected);
        }
        let mut client_key = [0u8; 32];
        for (k, (p, s)) in client_key.iter_mut().zip(proof.iter().zip(signature)) {
            *k = p ^ s;
        }
        // Compared whole, without stopping at the first difference.
        let diff = sha256(&client_key)
            .iter()
            .zip(self.stored_key)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return Err(SaslError::Rejected);
        }
        let server_signature = hmac(&self.server_key, auth.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scram::derive;

    #[test]
    fn chunks_end_short_or_with_a_plus() {
        let mut c = Chunks::default();
        assert_eq!(c.push("Zm9v"), Ok(Some(b"foo".to_vec())));
        let full = "A".repeat(CHUNK);
        assert_eq!(c.push(&full), Ok(None), "a full chunk waits for more");
        assert_eq!(c.push("+"), Ok(Some(vec![0; 300])), "then + ends it");
        assert_eq!(c.push(&full), Ok(None));
        assert_eq!(c.push("AAAA"), Ok(Some(vec![0; 303])));
        assert_eq!(c.push("+"), Ok(Some(Vec::new())), "+ alone is empty");
        assert_eq!(c.push(&"A".repeat(CHUNK + 1)), Err(SaslError::ChunkTooLong));
        assert_eq!(c.push("!!!"), Err(SaslError::Malformed));
        // A response may not grow past the bound, however it is cut.
        let mut c = Chunks::default();
        let mut result = Ok(None);
        for _ in 0..10 {
            result = c.push(&full);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(SaslError::ResponseTooLong));
    }

    #[test]
    fn challenges_are_chunked_like_responses() {
        assert_eq!(challenge_lines(b""), ["AUTHENTICATE +"]);
        assert_eq!(challenge_lines(b"foo"), ["AUTHENTICATE Zm9v"]);
        let lines = challenge_lines(&[0; 300]);
        assert_eq!(lines.len(), 2, "400 bytes of base64, then +");
        assert_eq!(lines[1], "AUTHENTICATE +");
        let lines = challenge_lines(&[0; 301]);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1], "AUTHENTICATE AA==");
    }

    #[test]
    fn plain_needs_three_fields_and_no_one_else() {
        let ok = |s: &[u8]| parse_plain(s).map(|p| (p.authcid, p.password));
        assert_eq!(
            ok(b"\0jilles\0sesame"),
            Ok(("jilles".into(), "sesame".into()))
        );
        assert_eq!(
            ok(b"Jilles\0jilles\0sesame"),
            Ok(("jilles".into(), "sesame".into()))
        );
        assert_eq!(ok(b"other\0jilles\0sesame"), Err(SaslError::Rejected));
        for bad in [
            &b"\0\0sesame"[..],
            b"\0jilles\0",
            b"jilles\0sesame",
            b"\0jilles\0ses\0ame",
            b"\0jil\xffles\0sesame",
        ] {
            assert_eq!(parse_plain(bad), Err(SaslError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn client_first_messages() {
        let f = parse_client_first(b"n,,n=us=2Cer,r=abc").unwrap();
        assert_eq!(
            (f.user.as_str(), f.bare.as_str()),
            ("us,er", "n=us=2Cer,r=abc")
        );
        assert!(parse_client_first(b"y,a=user,n=user,r=abc").is_ok());
        assert_eq!(
            parse_client_first(b"n,a=other,n=user,r=abc").unwrap_err(),
            SaslError::Rejected
        );
        for bad in [
            &b"p=tls-unique,,n=user,r=abc"[..],
            b"n,,n=,r=abc",
            b"n,,n=user",
            b"n,,n=user,r=abc,m=ext",
            b"n,,n=us=2er,r=abc",
            b"n,,r=abc,n=user",
            b"x",
        ] {
            assert!(parse_client_first(bad).is_err(), "{bad:?}");
        }
    }

    /// RFC 7677 section 3, with the example's server nonce: the
    /// server-first message and the server's signature are the RFC's.
    #[test]
    fn rfc7677_exchange() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let start = ScramStart {
            account: "user".into(),
            scram: derive("pencil", &salt, 4096),
            nonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into(),
        };
        let first = parse_client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap();
        let (server, server_first) = ScramServer::new(first, start).unwrap();
        assert_eq!(
            server_first,
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let client_final = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert_eq!(
            server.finish(client_final.as_bytes()),
            Ok("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".into())
        );
        // A wrong proof, a changed nonce or binding: refused.
        let wrong = client_final.replace("dHzb", "dHzc");
        assert_eq!(server.finish(wrong.as_bytes()), Err(SaslError::Rejected));
        let nonce = client_final.replace("k0,p", "k1,p");
        assert_eq!(server.finish(nonce.as_bytes()), Err(SaslError::Rejected));
        let binding = client_final.replace("c=biws", "c=eSws");
        assert_eq!(server.finish(binding.as_bytes()), Err(SaslError::Rejected));
        assert_eq!(server.finish(b"c=biws"), Err(SaslError::Malformed));
    }
}
