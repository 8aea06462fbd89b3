//! Fuzzes the wildcard matcher: it must never panic, must accept any subject
//! against `*`, and must match every string against itself casefolded.
//!
//! Run with `cargo +nightly fuzz run irc_mask` from the repository root.

#![no_main]

use bavard_proto::mask::{casefold, wildcard_match};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // The first NUL (if any) separates the mask from the subject.
    let (mask, subject) = text.split_once('\0').unwrap_or((&text, ""));
    let _ = wildcard_match(mask, subject);
    assert!(wildcard_match("*", subject));
    // Without wildcards in it, a string matches its own casefolded form.
    if !subject.contains(['*', '?']) {
        assert!(wildcard_match(subject, &casefold(subject)));
    }
});
