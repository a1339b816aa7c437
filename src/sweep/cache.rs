//! The sweep's game cache: one file per (family, n, seed, parameters), named by a fingerprint of
//! everything that determines its bytes, generated once and reused by later sweeps.
//!
//! Matrix families are written as dense `f32` `.npy` files; `low-rank` and `block` as factor
//! containers (`.nmp`). Writes are atomic, so an interrupted sweep never leaves a half file under
//! a final name.

use crate::error::{Error, Result};
use crate::gen::{self, Family, Params};
use crate::io::write::MatrixFormat;
use std::path::{Path, PathBuf};

/// One generated game of the sweep.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct GameSpec {
    pub family: Family,
    pub n: usize,
    pub seed: u64,
    pub params: Params,
}

/// FNV-1a, 64 bits: a stable fingerprint (unlike `std`'s hasher, fixed across Rust versions).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl GameSpec {
    /// The family's name as the CLI spells it.
    pub fn family_name(&self) -> String {
        family_name(self.family)
    }

    /// `uniform-n1024-s0-3f2a…c1.npy`: readable, and unique for everything that sets the bytes
    /// (the file format version included).
    pub fn file_name(&self) -> String {
        let key = serde_json::json!({
            "format": crate::io::container::VERSION,
            "game": self,
        });
        let fp = fnv1a(key.to_string().as_bytes());
        let ext = if self.family.is_structured() {
            "nmp"
        } else {
            "npy"
        };
        format!(
            "{}-n{}-s{}-{fp:016x}.{ext}",
            self.family_name(),
            self.n,
            self.seed
        )
    }

    /// The game's file in `cache`, generated unless already there; `true` if generated now.
    pub fn ensure(&self, cache: &Path) -> Result<(PathBuf, bool)> {
        std::fs::create_dir_all(cache).map_err(|e| Error::io(cache, e))?;
        let path = cache.join(self.file_name());
        if path.exists() {
            return Ok((path, false));
        }
        self.write(&path)?;
        Ok((path, true))
    }

    fn write(&self, path: &Path) -> Result<()> {
        let none = |_| {};
        gen::file::write_game(
            path,
            self.family,
            self.n,
            self.seed,
            self.params,
            MatrixFormat::DENSE_F32,
            &none,
        )
        .map(|_| ())
    }
}

/// A family's CLI name (`bradley-terry`, `low-rank` …).
pub fn family_name(f: Family) -> String {
    gen::family_name(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_and_distinguish_parameters() {
        let a = GameSpec {
            family: Family::Uniform,
            n: 10,
            seed: 1,
            params: Params::default(),
        };
        let mut b = a;
        b.params.sigma = 2.0;
        assert_ne!(a.file_name(), b.file_name());
        assert_eq!(a.file_name(), a.file_name());
        assert!(a.file_name().starts_with("uniform-n10-s1-"));
        let t = tempfile::tempdir().unwrap();
        let (p, fresh) = a.ensure(t.path()).unwrap();
        assert!(fresh);
        assert_eq!(a.ensure(t.path()).unwrap(), (p.clone(), false));
        assert_eq!(crate::game::open(&p, None).unwrap().n(), 10);
    }
}
