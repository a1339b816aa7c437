//! Preference games behind one operator interface: an algorithm only ever asks for `P x`.

mod dense;
pub mod validate;

pub use dense::{DenseGame, Storage};

use crate::error::Result;
use std::path::Path;

/// A preference matrix `P` (MATH.md §1) seen as an operator.
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
    fn apply_batch(&self, xs: &[&[f64]], outs: &mut [&mut [f64]]) {
        for (x, out) in xs.iter().zip(outs.iter_mut()) {
            self.apply(x, out);
        }
    }
    /// The single entry `P[i][j]` (for sampled preference queries).
    ///
    /// # Panics
    /// If `i` or `j` is out of range.
    fn entry(&self, i: usize, j: usize) -> f64;
    /// Relative accuracy of `apply` (about `1e-7` for `f32` storage, `1e-16` for `f64`).
    fn precision(&self) -> f64;
    /// One line for logs: storage, dtype, size.
    fn describe(&self) -> String;
}

/// The payoff vector `g(π) = P π` for `π = exp(θ)`; `scratch` holds `π`.
pub fn payoff(op: &dyn PreferenceOperator, theta: &[f64], scratch: &mut [f64], out: &mut [f64]) {
    crate::kernels::vector::exp_into(theta, scratch);
    op.apply(scratch, out);
}

/// Opens a game file, checks its header and validates every entry.
pub fn open(path: &Path, tol: Option<f64>) -> Result<Box<dyn PreferenceOperator>> {
    Ok(Box::new(open_dense(path, tol)?))
}

/// Opens a dense `.npy` game and validates every entry.
pub fn open_dense(path: &Path, tol: Option<f64>) -> Result<DenseGame> {
    let g = DenseGame::open(path)?;
    g.validate(tol)?;
    Ok(g)
}
