//! Whitespace/comma-separated text matrices.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok((n, v)) = nashmp::io::text::parse_text_matrix(Path::new("fuzz.txt"), data) {
        assert_eq!(v.len(), n * n);
    }
});
