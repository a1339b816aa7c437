//! Solve checkpoints; the first byte chooses the game size the checkpoint is checked against.
#![no_main]
use libfuzzer_sys::fuzz_target;
use nashmp::run::checkpoint::Checkpoint;

fuzz_target!(|data: &[u8]| {
    if let Some((&n, rest)) = data.split_first() {
        let _ = Checkpoint::parse(rest, n as usize % 8);
    }
});
