//! Preference games behind one operator interface: an algorithm only ever asks for `P x`.

mod dense;
pub mod packed;
pub mod sharded;
mod structured;
pub mod validate;

pub use dense::{DenseGame, ElementBytes, Storage};
pub use packed::PackedGame;
pub use structured::{BlockGame, LowRankGame};

use crate::error::{Error, Result};
use crate::io::mmap::Mapped;
use std::path::Path;

/// A preference matrix `P` (docs/math.md §1) seen as an operator.
///
/// Implementations are skew-consistent (`P + Pᵀ = 1`), so `Pᵀ x = (Σx)·1 − P x`: one
/// application gives both products.
pub trait PreferenceOperator: Send + Sync {
    /// Number of actions.
    fn n(&self) -> usize;
    /// `out = P x`.
    ///
    /// # Panics
    /// If `x` or `out` does not have length `n()`.
    fn apply(&self, x: &[f64], out: &mut [f64]);
    /// `outs[k] = P xs[k]` for several vectors; storages that can do it in one pass override it.
    /// Contract: each `outs[k]` is the bits of `apply(xs[k])`, whatever the batch (its size,
    /// the other vectors, the position): callers such as the sweep's lock step rely on it and
    /// never pad.
    fn apply_batch(&self, xs: &[&[f64]], outs: &mut [&mut [f64]]) {
        for (x, out) in xs.iter().zip(outs.iter_mut()) {
            self.apply(x, out);
        }
    }
    /// Lanes a batch of `k` vectors occupies. Since every `apply_batch` gives the single
    /// apply's bits (the contract above), this no longer matters to any caller; kept (always
    /// 1) until the operator is reshaped.
    fn batch_lanes(&self, k: usize) -> usize {
        let _ = k;
        1
    }
    /// The single entry `P[i][j]` (for sampled preference queries).
    ///
    /// # Panics
    /// If `i` or `j` is out of range.
    fn entry(&self, i: usize, j: usize) -> f64;
    /// Relative accuracy of `apply` (about `1e-7` for `f32` storage, `1e-16` for `f64`).
    fn precision(&self) -> f64;
    /// Checks every stored entry (finite, in `[0, 1]`, skew-consistent within `tol` where the
    /// layout stores both `P[i][j]` and `P[j][i]`); the error names the first offending entry.
    fn validate(&self, tol: Option<f64>) -> Result<()>;
    /// The layout and element type, e.g. `packed u16`.
    fn layout(&self) -> String;
    /// Bytes of game data read by one `apply`.
    fn stored_bytes(&self) -> u64;
    /// One line for logs: storage, dtype, size.
    fn describe(&self) -> String;
    /// A partition of the actions into `k` classes with `P[i][j] = Q[class(i)][class(j)]`, as
    /// `(Q row-major k × k, class of every action)`, where the layout stores one (block games).
    /// The equilibrium solver then solves the `k`-action game exactly and certifies the result
    /// on the full operator.
    fn classes(&self) -> Option<(Vec<f64>, Vec<u32>)> {
        None
    }
    /// Features `φ` (columns of length `n`) and a skew `d × d` matrix `M` (row-major) with
    /// `P[i][j] = 1/2 + φ(i)ᵀ M φ(j)`, where the layout stores the game that way (low-rank):
    /// the game's own features for a log-linear policy (MATH.md §8).
    fn factors(&self) -> Option<(Vec<&[f64]>, Vec<f64>)> {
        None
    }
}

/// The payoff vector `g(π) = P π` for `π = exp(θ)`; `scratch` holds `π`.
pub fn payoff(op: &dyn PreferenceOperator, theta: &[f64], scratch: &mut [f64], out: &mut [f64]) {
    crate::kernels::vector::exp_into(theta, scratch);
    op.apply(scratch, out);
}

/// Opens a game file (a `.npy` matrix or a nashmp container of any layout), checks its header
/// and validates every entry.
pub fn open(path: &Path, tol: Option<f64>) -> Result<Box<dyn PreferenceOperator>> {
    // Under `mpirun -np R` (R > 1): this rank's shard of a shard set, opened collectively.
    #[cfg(feature = "mpi")]
    if let Some(g) = crate::dist::open(path, tol)? {
        return Ok(g);
    }
    let g = open_unchecked(path)?;
    g.validate(tol)?;
    Ok(g)
}

/// Whether a game file is a whitespace-separated text matrix (its first bytes are numbers and
/// blanks), which `convert` imports.
fn looks_like_text(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(256)];
    !head.is_empty()
        && head[0].is_ascii_digit()
        && head.iter().all(|&b| {
            b.is_ascii_digit()
                || b.is_ascii_whitespace()
                || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E')
        })
}

/// Opens a game file and checks its header and length, not its entries.
pub fn open_unchecked(path: &Path) -> Result<Box<dyn PreferenceOperator>> {
    use crate::io::container::{self, Layout};
    if let Some(manifest) = crate::io::shards::manifest_path(path) {
        let set = crate::io::shards::ShardSet::open(&manifest)?;
        return Ok(Box::new(sharded::ShardedGame::open(set)?));
    }
    let map = Mapped::open(path)?;
    if looks_like_text(map.bytes()) {
        return Err(Error::TextGame {
            path: path.into(),
            npy: path.with_extension("npy"),
        });
    }
    if !map.bytes().starts_with(container::MAGIC) {
        return Ok(Box::new(DenseGame::open(path)?));
    }
    let bad = |reason: String| Error::Container {
        path: path.into(),
        reason,
    };
    let (h, offset) = container::parse(map.bytes()).map_err(bad)?;
    let expected = h.expected_data_bytes().map_err(bad)?;
    let found = map.bytes().len().saturating_sub(offset) as u64;
    if found > expected {
        return Err(Error::TrailingData {
            path: path.into(),
            expected,
            found,
        });
    }
    if found != expected || map.bytes().len() < offset {
        return Err(Error::Truncated {
            path: path.into(),
            expected,
            found,
        });
    }
    let n = usize::try_from(h.n).map_err(|_| bad(format!("n = {} is too large", h.n)))?;
    let as_usize = |v: Option<u64>| v.and_then(|v| usize::try_from(v).ok()).unwrap_or(0);
    Ok(match h.layout {
        Layout::Dense => Box::new(DenseGame::mapped(
            path,
            map,
            offset,
            n,
            h.dtype.expect("checked"),
        )),
        Layout::Packed => Box::new(PackedGame::mapped(
            path,
            map,
            offset,
            n,
            h.dtype.expect("checked"),
        )),
        Layout::LowRank => Box::new(LowRankGame::mapped(path, map, offset, n, as_usize(h.rank))),
        Layout::Block => Box::new(BlockGame::mapped(
            path,
            map,
            offset,
            n,
            as_usize(h.types),
            h.type_width.expect("checked"),
        )),
    })
}

/// Opens a packed game with the portable scalar kernel (to test the SIMD one against).
pub fn packed_scalar(path: &Path) -> Result<PackedGame> {
    use crate::io::container::{self, Layout};
    let map = Mapped::open(path)?;
    let (h, offset) = container::parse(map.bytes()).map_err(|reason| Error::NpyHeader {
        path: path.into(),
        reason,
    })?;
    if h.layout != Layout::Packed {
        return Err(Error::Param(format!(
            "{} is not a packed game",
            path.display()
        )));
    }
    let elem = h
        .dtype
        .ok_or_else(|| Error::Param("dtype missing".into()))?;
    Ok(PackedGame::mapped(path, map, offset, h.n as usize, elem).with_simd(false))
}

/// Opens a dense `.npy` game and validates every entry.
pub fn open_dense(path: &Path, tol: Option<f64>) -> Result<DenseGame> {
    let g = DenseGame::open(path)?;
    PreferenceOperator::validate(&g, tol)?;
    Ok(g)
}
