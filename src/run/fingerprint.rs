//! Fingerprints that tie a checkpoint to the game file and the arguments it was made with.
//!
//! The hash is FNV-1a over 64-bit little-endian words (a trailing partial word is zero-padded
//! and the byte count mixed in): not cryptographic, it detects accidental changes. A game file
//! up to [`FULL_HASH_BYTES`] is hashed whole; a larger one by its size, its first and last MiB
//! and [`SAMPLES`] blocks of 64 KiB spread evenly over it, so that fingerprinting a 40 GiB game
//! reads about 6 MiB. An edit of a large game that keeps its size and touches none of those
//! bytes goes unnoticed.

use crate::error::{Error, Result};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Game files up to this size are hashed whole.
pub const FULL_HASH_BYTES: u64 = 64 << 20;
/// Evenly spread 64 KiB blocks hashed in larger files.
pub const SAMPLES: u64 = 64;
const EDGE: u64 = 1 << 20;
const BLOCK: u64 = 64 << 10;

/// FNV-1a over 64-bit words.
#[derive(Clone, Copy, Debug)]
pub struct Hasher(u64);

impl Default for Hasher {
    fn default() -> Self {
        Hasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher {
    fn word(&mut self, w: u64) {
        self.0 = (self.0 ^ w).wrapping_mul(0x0000_0100_0000_01b3);
    }

    /// Adds bytes (their count included, so concatenations differ).
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let mut last = [0u8; 8];
        last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.word(u64::from_le_bytes(last));
        self.word(b.len() as u64);
        self
    }

    /// Adds the bit patterns of `v`.
    pub fn f64s(&mut self, v: &[f64]) -> &mut Self {
        v.iter().for_each(|x| self.word(x.to_bits()));
        self.word(v.len() as u64);
        self
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// `size=<bytes> hash=<16 hex digits> (whole|sampled)` of the file at `path`.
pub fn game_file(path: &Path) -> Result<String> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let size = f.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut h = Hasher::default();
    h.word(size);
    let mut read = |offset: u64, len: u64| -> Result<()> {
        let mut buf = vec![0u8; len as usize];
        f.read_exact_at(&mut buf, offset)
            .map_err(|e| Error::io(path, e))?;
        h.bytes(&buf);
        Ok(())
    };
    let whole = size <= FULL_HASH_BYTES;
    if whole {
        for off in (0..size).step_by(EDGE as usize) {
            read(off, EDGE.min(size - off))?;
        }
    } else {
        read(0, EDGE)?;
        for s in 0..SAMPLES {
            read(EDGE + s * ((size - 2 * EDGE - BLOCK) / SAMPLES), BLOCK)?;
        }
        read(size - EDGE, EDGE)?;
    }
    Ok(format!(
        "size={size} hash={:016x} ({})",
        h.finish(),
        if whole { "whole" } else { "sampled" }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_show() {
        let a = Hasher::default().bytes(b"abcdefghi").finish();
        let b = Hasher::default().bytes(b"abcdefghj").finish();
        let c = Hasher::default().bytes(b"abcdefghi\0").finish();
        assert!(a != b && a != c);
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("g");
        std::fs::write(&p, b"0123456789").unwrap();
        let f1 = game_file(&p).unwrap();
        std::fs::write(&p, b"0123456788").unwrap();
        assert_ne!(f1, game_file(&p).unwrap());
        assert!(f1.starts_with("size=10 "), "{f1}");
    }
}
