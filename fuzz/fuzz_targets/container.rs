//! The nashmp container header parser and the data size it declares.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((h, _offset)) = nashmp::io::container::parse(data) {
        let _ = h.expected_data_bytes();
        let _ = h.tiles_per_side();
    }
});
