//! CSV logs of pairwise judgements.
#![no_main]
use libfuzzer_sys::fuzz_target;
use nashmp::pairwise::log;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = log::parse(Path::new("fuzz.csv"), data, &log::Columns::default());
});
