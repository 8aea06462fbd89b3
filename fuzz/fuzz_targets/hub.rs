//! The hub driven by several simulated clients of both dialects with
//! arbitrary input: never panics, stays consistent.
#![no_main]

use bavard_core::sim::Sim;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut sim = Sim::mixed();
    // Each chunk: one control byte (client, action), then bytes up to the next 0xFF.
    for chunk in data.split(|&b| b == 0xFF) {
        let Some((&ctl, body)) = chunk.split_first() else { continue };
        let n = sim.clients.len();
        match ctl >> 5 {
            0 => {
                sim.connect(ctl & 1 == 1);
            }
            1 => sim.disconnect(ctl as usize % n),
            2 => sim.drain(),
            _ => sim.send(ctl as usize % n, body),
        }
        if let Err(e) = sim.check() {
            panic!("hub inconsistent: {e}");
        }
    }
});
