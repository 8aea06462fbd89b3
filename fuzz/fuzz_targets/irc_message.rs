//! Fuzzes the IRC line parser: arbitrary bytes are decoded lossily (as the
//! server's framing layer would), parsed, and every successfully parsed
//! message must serialise to a clean line that parses back to itself.
//!
//! Run with `cargo +nightly fuzz run irc_message` from the repository root.

#![no_main]

use bavard_proto::message::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let Ok(msg) = Message::parse(&line) else {
        return;
    };
    let mut out = Vec::new();
    msg.write_to(&mut out);
    assert!(
        !out.iter().any(|b| matches!(b, b'\0' | b'\r' | b'\n')),
        "serialiser emitted a line terminator or NUL: {out:?}"
    );
    let text = std::str::from_utf8(&out).expect("serialiser must emit UTF-8");
    let again = Message::parse(text).expect("serialised message must reparse");
    assert_eq!(again, msg, "round trip changed the message ({text:?})");
    // Display must agree with the fast path.
    assert_eq!(msg.to_string(), text);
});
