//! Anderson acceleration (type II, Walker & Ni 2011) of a fixed-point map `x ↦ Φ(x)` on `f64`
//! vectors: from the last `m` differences of iterates `Δx_j` and of residuals `Δf_j`
//! (`f = Φ(x) − x`), the next iterate is
//!
//! `x⁺ = x + f − Σ_j γ_j (Δx_j + Δf_j)`, with `γ = argmin ‖f − Σ_j γ_j Δf_j‖₂`.
//!
//! On a linear map this is GMRES on `(I − J) x = b`; the Nash-MP map of a β-regularised game
//! contracts every direction by about `1/(1+2β)` plus a perturbation of small rank or small size,
//! which a Krylov method resolves in a few steps where the plain iteration needs
//! `O(1/β)`. The least-squares problem is solved through its `m × m` Gram matrix (kept up to
//! date with `m` dot products per step) by Cholesky with a relative ridge; every dot product is a
//! chunked, thread-count-independent sum.

use crate::kernels::vector;
use std::collections::VecDeque;

/// The last `m` differences and their residuals' Gram matrix.
pub struct Anderson {
    m: usize,
    /// `Δg_j = Δx_j + Δf_j`, the differences of the map's values `g = Φ(x) = x + f`.
    dg: VecDeque<Vec<f64>>,
    df: VecDeque<Vec<f64>>,
    /// `gram[i][j] = Δf_i · Δf_j`, in the order of `df`.
    gram: VecDeque<VecDeque<f64>>,
    /// The previous `(x, f)`, whose differences with the current pair enter the history.
    prev: Option<(Vec<f64>, Vec<f64>)>,
}

impl Anderson {
    /// A history of at most `m ≥ 1` differences.
    pub fn new(m: usize) -> Self {
        Anderson {
            m: m.max(1),
            dg: VecDeque::new(),
            df: VecDeque::new(),
            gram: VecDeque::new(),
            prev: None,
        }
    }

    /// Forgets everything (after a rejected step).
    pub fn reset(&mut self) {
        self.dg.clear();
        self.df.clear();
        self.gram.clear();
        self.prev = None;
    }

    /// Differences held.
    pub fn len(&self) -> usize {
        self.df.len()
    }

    pub fn is_empty(&self) -> bool {
        self.df.is_empty()
    }

    /// Records the pair `(x, f = Φ(x) − x)` and writes the accelerated next iterate into `out`
    /// (the plain `x + f` while the history is empty or its least-squares problem is singular).
    ///
    /// Three passes over the history: the new differences, every dot product at once (the new
    /// Gram row and the right-hand side `ΔFᵀ f`), and the combination.
    pub fn step(&mut self, x: &[f64], f: &[f64], out: &mut [f64]) {
        let n = x.len();
        let mut has_new = false;
        if let Some((mut px, mut pf)) = self.prev.take() {
            let (mut ndg, mut ndf) = if self.df.len() == self.m {
                // Recycle the oldest buffers.
                self.gram.pop_front();
                for row in self.gram.iter_mut() {
                    row.pop_front();
                }
                (
                    self.dg.pop_front().unwrap_or_default(),
                    self.df.pop_front().unwrap_or_default(),
                )
            } else {
                (Vec::new(), Vec::new())
            };
            ndg.resize(n, 0.0);
            ndf.resize(n, 0.0);
            chunked(&mut ndf, |lo, o| {
                for (i, v) in o.iter_mut().enumerate() {
                    *v = f[lo + i] - pf[lo + i];
                }
            });
            chunked(&mut ndg, |lo, o| {
                for (i, v) in o.iter_mut().enumerate() {
                    let j = lo + i;
                    *v = (x[j] - px[j]) + (f[j] - pf[j]);
                }
            });
            self.dg.push_back(ndg);
            self.df.push_back(ndf);
            px.copy_from_slice(x);
            pf.copy_from_slice(f);
            self.prev = Some((px, pf));
            has_new = true;
        } else {
            self.prev = Some((x.to_vec(), f.to_vec()));
        }
        let k = self.df.len();
        if k == 0 {
            vector::fill(out, |i| x[i] + f[i]);
            return;
        }
        // dots[j] = Δf_j · f, dots[k + j] = Δf_j · Δf_new.
        let dots = {
            let df = &self.df;
            let new = &df[k - 1];
            vector::sums_by_chunk(n, 2 * k, |lo, hi, acc| {
                for (j, d) in df.iter().enumerate() {
                    acc[j] += dot(&d[lo..hi], &f[lo..hi]);
                    if has_new {
                        acc[k + j] += dot(&d[lo..hi], &new[lo..hi]);
                    }
                }
            })
        };
        if has_new {
            for (row, &d) in self.gram.iter_mut().zip(&dots[k..]) {
                row.push_back(d);
            }
            self.gram.push_back(dots[k..].iter().copied().collect());
        }
        match self.coefficients(&dots[..k]) {
            Some(g) => {
                let dg = &self.dg;
                chunked(out, |lo, o| {
                    let hi = lo + o.len();
                    for (i, v) in o.iter_mut().enumerate() {
                        *v = x[lo + i] + f[lo + i];
                    }
                    for (gj, d) in g.iter().zip(dg.iter()) {
                        for (v, dv) in o.iter_mut().zip(&d[lo..hi]) {
                            *v -= gj * dv;
                        }
                    }
                });
            }
            None => vector::fill(out, |i| x[i] + f[i]),
        }
    }

    /// `γ = argmin ‖f − ΔF γ‖` from `rhs = ΔFᵀ f` through the ridge-regularised normal
    /// equations; `None` if they are singular or the result is not finite.
    fn coefficients(&self, rhs: &[f64]) -> Option<Vec<f64>> {
        let k = rhs.len();
        let scale = (0..k).map(|i| self.gram[i][i]).fold(0.0, f64::max);
        if !(scale > 0.0 && scale.is_finite()) {
            return None;
        }
        let mut a: Vec<Vec<f64>> = (0..k)
            .map(|i| (0..k).map(|j| self.gram[i][j]).collect())
            .collect();
        for (i, row) in a.iter_mut().enumerate() {
            row[i] += 1e-12 * scale;
        }
        let g = cholesky_solve(a, rhs.to_vec())?;
        g.iter().all(|v| v.is_finite()).then_some(g)
    }
}

/// `Σ a_i b_i` with four interleaved accumulators (vectorisable, fixed order).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..4 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut tail = 0.0;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Runs `f(start, chunk)` over fixed chunks of `out` of [`vector::CHUNK`] entries, in parallel.
fn chunked(out: &mut [f64], f: impl Fn(usize, &mut [f64]) + Sync + Send) {
    use rayon::prelude::*;
    out.par_chunks_mut(vector::CHUNK)
        .enumerate()
        .for_each(|(c, o)| f(c * vector::CHUNK, o));
}

/// Solves `A x = b` for symmetric positive definite `A` (small, dense) by faer's `L Lᵀ`
/// factorisation (sequential at these sizes, so the same bits for any thread count); `None` if
/// `A` is not numerically positive definite.
fn cholesky_solve(a: Vec<Vec<f64>>, b: Vec<f64>) -> Option<Vec<f64>> {
    use faer::linalg::solvers::Solve;
    let k = b.len();
    let m = faer::Mat::from_fn(k, k, |i, j| a[i][j]);
    let llt = m.llt(faer::Side::Lower).ok()?;
    let x = llt.solve(faer::Mat::from_fn(k, 1, |i, _| b[i]));
    Some((0..k).map(|i| x[(i, 0)]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_known_system() {
        let a = vec![vec![4.0, 2.0], vec![2.0, 3.0]];
        let x = cholesky_solve(a, vec![2.0, 1.0]).unwrap();
        // 4x + 2y = 2, 2x + 3y = 1 → x = 1/2, y = 0.
        assert!((x[0] - 0.5).abs() < 1e-15 && x[1].abs() < 1e-15, "{x:?}");
        assert!(cholesky_solve(vec![vec![0.0]], vec![1.0]).is_none());
    }

    /// On an affine contraction `Φ(x) = c + J x` of dimension `d`, Anderson with `m ≥ d` is exact
    /// after `d + 1` steps (GMRES in exact arithmetic), where the plain iteration contracts by
    /// `‖J‖` per step.
    #[test]
    fn solves_an_affine_fixed_point_in_few_steps() {
        let d = 4;
        // J = 0.99 · rotation-ish (slow plain iteration).
        let j = [
            [0.99, 0.05, 0.0, 0.0],
            [-0.05, 0.99, 0.0, 0.0],
            [0.0, 0.0, 0.97, 0.1],
            [0.0, 0.0, -0.1, 0.97],
        ];
        let c = [1.0, -2.0, 0.5, 3.0];
        let phi = |x: &[f64]| -> Vec<f64> {
            (0..d)
                .map(|i| c[i] + (0..d).map(|k| j[i][k] * x[k]).sum::<f64>())
                .collect()
        };
        let mut aa = Anderson::new(d);
        let mut x = vec![0.0; d];
        let mut next = vec![0.0; d];
        for _ in 0..=d + 1 {
            let y = phi(&x);
            let f: Vec<f64> = (0..d).map(|i| y[i] - x[i]).collect();
            aa.step(&x, &f, &mut next);
            std::mem::swap(&mut x, &mut next);
        }
        let y = phi(&x);
        let res = (0..d).map(|i| (y[i] - x[i]).abs()).fold(0.0, f64::max);
        assert!(res < 1e-9, "residual {res} after {} steps", d + 2);
    }
}
