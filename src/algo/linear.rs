//! Payoffs linear in a few statistics of the policy, which Nash-MP computes in the passes that
//! write its iterates instead of applying the operator (docs/math.md §7):
//!
//! - a block game: `g_i = (Q · mass(π))[t(i)]`, the statistics the class masses;
//! - a low-rank game, `P = ½ + φ(i)ᵀ M φ(j)`: `g_i = ½ Σπ + φ(i)ᵀ M μ(π)`, the statistics
//!   `Σπ` and the feature moments `μ(π) = Σ_j π_j φ(j)`.
//!
//! Statistics are summed over fixed chunks of [`CHUNK`] actions, each in index order, the
//! chunks added in order: the same bits for any thread count.

use crate::game::{class_values, Classes, Factors};
use crate::kernels::exp;
use crate::kernels::vector::{CHUNK, PAR_MIN};
use rayon::prelude::*;

/// A payoff `g(π)` that is a function of `dim()` weighted sums over the actions.
pub(crate) trait Linear: Sync {
    /// Number of statistics.
    fn dim(&self) -> usize;
    /// `part += Σ_j w[j] · s(lo + j)`, `s(i)` action `i`'s statistics, in index order.
    fn add(&self, lo: usize, w: &[f64], part: &mut [f64]);
    /// The payoff's coefficients from a policy's statistics.
    fn coeffs(&self, stats: &[f64]) -> Vec<f64>;
    /// `g_i` from the coefficients.
    fn payoff(&self, i: usize, u: &[f64]) -> f64;
    /// `g[j] = payoff(lo + j, u)` over a chunk (the same bits, possibly faster).
    fn payoff_chunk(&self, lo: usize, u: &[f64], g: &mut [f64]) {
        for (j, x) in g.iter_mut().enumerate() {
            *x = self.payoff(lo + j, u);
        }
    }
    /// The total weight (`Σ w`) among the statistics `add` summed.
    fn total(&self, stats: &[f64]) -> f64;
}

/// A block game's classes: `s(i)` the indicator of class `t(i)`.
pub(crate) struct ClassPayoff<'a, T> {
    pub k: usize,
    pub q: &'a [f64],
    pub t: T,
}

impl<'a, T: Fn(usize) -> usize + Sync> ClassPayoff<'a, T> {
    /// The payoff of `cls`, with its class function `t` (monomorphised by the caller).
    pub fn new(cls: &'a Classes, t: T) -> Self {
        ClassPayoff {
            k: cls.k(),
            q: &cls.q,
            t,
        }
    }
}

impl<T: Fn(usize) -> usize + Sync> Linear for ClassPayoff<'_, T> {
    fn dim(&self) -> usize {
        self.k
    }
    fn add(&self, lo: usize, w: &[f64], part: &mut [f64]) {
        for (j, p) in w.iter().enumerate() {
            part[(self.t)(lo + j)] += p;
        }
    }
    fn coeffs(&self, mass: &[f64]) -> Vec<f64> {
        let mut v = vec![0.0; self.k];
        class_values(self.q, self.k, mass, &mut v);
        v
    }
    fn payoff(&self, i: usize, v: &[f64]) -> f64 {
        v[(self.t)(i)]
    }
    fn total(&self, mass: &[f64]) -> f64 {
        mass.iter().sum()
    }
}

/// Features whose running sums [`FactorPayoff::add`] keeps in registers.
const MAX_FEATURES: usize = 16;

/// A low-rank game's features: `s(i) = (1, φ(i))`.
pub(crate) struct FactorPayoff<'a> {
    cols: &'a [&'a [f64]],
    m: &'a [f64],
}

impl<'a> FactorPayoff<'a> {
    pub fn of(f: &'a Factors) -> Self {
        FactorPayoff {
            cols: &f.cols,
            m: &f.m,
        }
    }
}

impl Linear for FactorPayoff<'_> {
    fn dim(&self) -> usize {
        1 + self.cols.len()
    }
    /// Every statistic summed in index order; up to 16 features, all running sums at once
    /// (independent chains, instead of one latency-bound chain per feature).
    fn add(&self, lo: usize, w: &[f64], part: &mut [f64]) {
        let (d, len) = (self.cols.len(), w.len());
        if d <= MAX_FEATURES {
            let mut cs: [&[f64]; MAX_FEATURES] = [&[]; MAX_FEATURES];
            for (c, col) in cs.iter_mut().zip(self.cols) {
                *c = &col[lo..lo + len];
            }
            let mut acc = [0.0f64; MAX_FEATURES + 1];
            acc[..=d].copy_from_slice(part);
            for (j, &p) in w.iter().enumerate() {
                acc[0] += p;
                for a in 0..d {
                    acc[1 + a] += p * cs[a][j];
                }
            }
            part.copy_from_slice(&acc[..=d]);
            return;
        }
        let (first, rest) = part.split_first_mut().expect("dim ≥ 1");
        for p in w {
            *first += p;
        }
        for (col, acc) in self.cols.iter().zip(rest) {
            let c = &col[lo..lo + len];
            for (p, x) in w.iter().zip(c) {
                *acc += p * x;
            }
        }
    }
    fn coeffs(&self, stats: &[f64]) -> Vec<f64> {
        let d = self.cols.len();
        let mu = &stats[1..];
        let mut u = Vec::with_capacity(1 + d);
        u.push(0.5 * stats[0]);
        u.extend((0..d).map(|a| (0..d).map(|b| self.m[a * d + b] * mu[b]).sum::<f64>()));
        u
    }
    fn payoff(&self, i: usize, u: &[f64]) -> f64 {
        let mut s = u[0];
        for (col, ua) in self.cols.iter().zip(&u[1..]) {
            s += col[i] * ua;
        }
        s
    }
    /// Column by column over the chunk: each entry's terms in the order of [`Self::payoff`].
    fn payoff_chunk(&self, lo: usize, u: &[f64], g: &mut [f64]) {
        g.fill(u[0]);
        let len = g.len();
        for (col, &ua) in self.cols.iter().zip(&u[1..]) {
            for (x, c) in g.iter_mut().zip(&col[lo..lo + len]) {
                *x += c * ua;
            }
        }
    }
    fn total(&self, stats: &[f64]) -> f64 {
        stats[0]
    }
}

/// `part += s(lo + j) · exp(θ[j])` over one chunk of `θ` starting at action `lo`: the
/// statistics of `π = exp(θ)` (the exponentials those of `exp_into`).
pub(crate) fn add_exp_stats(lin: &impl Linear, lo: usize, theta: &[f64], part: &mut [f64]) {
    let mut e = [0.0f64; 512];
    for (b, blk) in theta.chunks(512).enumerate() {
        let e = &mut e[..blk.len()];
        exp::exp_slice(blk, e);
        lin.add(lo + b * 512, e, part);
    }
}

/// Per-chunk statistics added in chunk order.
pub(crate) fn sum_parts(parts: &[f64], dim: usize) -> Vec<f64> {
    let mut s = vec![0.0; dim];
    for p in parts.chunks(dim) {
        for (a, v) in s.iter_mut().zip(p) {
            *a += v;
        }
    }
    s
}

/// The statistics of `π = exp(θ)` in one pass that writes nothing, with the bits of those
/// [`add_exp_stats`] sums chunk by chunk while `θ` is written.
pub(crate) fn stats_of_exp(lin: &impl Linear, theta: &[f64]) -> Vec<f64> {
    let dim = lin.dim();
    let part = |(c, th): (usize, &[f64])| {
        let mut p = vec![0.0; dim];
        add_exp_stats(lin, c * CHUNK, th, &mut p);
        p
    };
    let parts: Vec<f64> = if theta.len() < PAR_MIN {
        theta.chunks(CHUNK).enumerate().flat_map(part).collect()
    } else {
        theta
            .par_chunks(CHUNK)
            .enumerate()
            .flat_map_iter(part)
            .collect()
    };
    sum_parts(&parts, dim)
}
