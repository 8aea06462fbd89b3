//! The line dialect's framing and parsing on arbitrary bytes: never panics,
//! and every line is either a command or "invalid".
#![no_main]

use bavard_proto::line::{Command, parse};
use bavard::net::framing::{Framer, Next};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut framer = Framer::default();
    // Feed in two pieces to exercise lines split across reads.
    let cut = data.first().map_or(0, |&b| b as usize % (data.len() + 1));
    for piece in [&data[..cut], &data[cut..]] {
        framer.feed(piece, 512, |f| {
            if let bavard::net::framing::Frame::Line(l) = f {
                let text = String::from_utf8_lossy(l);
                let cmd = parse(&text);
                if let Command::Msg(t) = cmd {
                    assert!(!t.trim().is_empty());
                }
            }
            Next::Continue
        });
    }
});
