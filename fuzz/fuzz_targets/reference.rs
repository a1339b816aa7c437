//! Reference and starting policies: a 1-D `.npy` parsed and checked as a probability vector.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = nashmp::io::array::parse_vector(Path::new("fuzz.npy"), data) {
        if let Ok(theta) = nashmp::policy::theta_from_probs("ref", &p, p.len()) {
            assert!(theta.iter().all(|t| t.is_finite()));
        }
    }
});
