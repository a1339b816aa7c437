//! The `.npy` header parser and the checks against the file length (`io::array::checked_header`).
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = nashmp::io::npy::parse_header(data) {
        let _ = h.data_bytes();
    }
    let _ = nashmp::io::array::checked_header(Path::new("fuzz.npy"), data);
});
