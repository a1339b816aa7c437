//! Payoffs linear in a few statistics of the policy, which Nash-MP computes in the passes that
//! write its iterates instead of applying the operator (docs/math.md §7):
//!
//! - a block game: `g_i = (Q · mass(π))[t(i)]`, the statistics the class masses;
//! - a low-rank game, `P = ½ + φ(i)ᵀ M φ(j)`: `g_i = ½ Σπ + φ(i)ᵀ M μ(π)`, the statistics
//!   `Σπ` and the feature moments `μ(π) = Σ_j π_j φ(j)`.
//!
//! Statistics are summed over fixed chunks of [`CHUNK`] actions, the chunks added in order: the
//! same bits for any thread count. Within a chunk a block game's class masses are summed in index
//! order; a low-rank game's statistics in eight lanes ([`factor_sums`]), so the sums vectorise
//! (the same bits on every instruction set), and its payoffs column by column over blocks that
//! stay in L1 ([`factor_payoffs`]). Measured (n = 10^7, rank 4, `solve --algo nash-mp --iters
//! 20 --metrics none`, one run each): 0.171 s per iteration with scalar index-order sums and
//! payoff columns the length of a chunk, 0.134 s with these.

use crate::game::{class_values, Classes, Factors};
use crate::kernels::exp;
use crate::kernels::isa::Isa;
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
    /// The sums of [`factor_sums`], through the widest instruction set the CPU has (the same
    /// bits on every one).
    fn add(&self, lo: usize, w: &[f64], part: &mut [f64]) {
        factor_sums_on(Isa::best(), self.cols, lo, w, part)
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
    /// Each entry's terms in the order of [`Self::payoff`] (so its bits), computed column by
    /// column over blocks of [`PAYOFF_BLOCK`] entries that stay in L1.
    fn payoff_chunk(&self, lo: usize, u: &[f64], g: &mut [f64]) {
        factor_payoffs_on(Isa::best(), self.cols, lo, u, g)
    }
    fn total(&self, stats: &[f64]) -> f64 {
        stats[0]
    }
}

/// [`factor_payoffs`] compiled for `isa` (the same bits on every one).
fn factor_payoffs_on(isa: Isa, cols: &[&[f64]], lo: usize, u: &[f64], g: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    match isa {
        // SAFETY: the token exists only where the CPU has AVX-512 F (and AVX2).
        Isa::Avx512(_) => return unsafe { factor_payoffs_avx512(cols, lo, u, g) },
        // SAFETY: the token exists only where the CPU has AVX2 and FMA.
        Isa::Avx2(_) => return unsafe { factor_payoffs_avx2(cols, lo, u, g) },
        Isa::Scalar => {}
    }
    let _ = isa;
    factor_payoffs(cols, lo, u, g)
}

/// [`factor_sums`] compiled for `isa` (the same bits on every one).
fn factor_sums_on(isa: Isa, cols: &[&[f64]], lo: usize, w: &[f64], part: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    match isa {
        // SAFETY: the token exists only where the CPU has AVX-512 F (and AVX2).
        Isa::Avx512(_) => return unsafe { factor_sums_avx512(cols, lo, w, part) },
        // SAFETY: the token exists only where the CPU has AVX2 and FMA.
        Isa::Avx2(_) => return unsafe { factor_sums_avx2(cols, lo, w, part) },
        Isa::Scalar => {}
    }
    let _ = isa;
    factor_sums::<4>(cols, lo, w, part)
}

/// Entries per block of [`factor_payoffs`] (the block's payoffs stay in L1 across the columns).
const PAYOFF_BLOCK: usize = 256;

/// `g[j] = u₀ + Σ_a φ_a(lo + j)·u_{1+a}`, the terms added in feature order (plain multiplies and
/// adds: the loop vectorises across entries without changing any entry's bits).
#[inline(always)]
fn factor_payoffs(cols: &[&[f64]], lo: usize, u: &[f64], g: &mut [f64]) {
    for (b, gb) in g.chunks_mut(PAYOFF_BLOCK).enumerate() {
        let (at, len) = (lo + b * PAYOFF_BLOCK, gb.len());
        gb.fill(u[0]);
        for (col, &ua) in cols.iter().zip(&u[1..]) {
            for (x, c) in gb.iter_mut().zip(&col[at..at + len]) {
                *x += c * ua;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2")]
unsafe fn factor_payoffs_avx512(cols: &[&[f64]], lo: usize, u: &[f64], g: &mut [f64]) {
    factor_payoffs(cols, lo, u, g)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn factor_payoffs_avx2(cols: &[&[f64]], lo: usize, u: &[f64], g: &mut [f64]) {
    factor_payoffs(cols, lo, u, g)
}

/// Lanes of the statistics' running sums.
const LANES: usize = 8;

/// `part += Σ_j w[j]·(1, φ(lo + j))`. The order, the same on every instruction set: each
/// statistic has [`LANES`] running sums, lane `l` taking the entries `j ≡ l (mod 8)` of the
/// call's whole groups of eight in index order (plain multiplies and adds); at the end lane
/// sums `h_l` are added as `((h₀ + h₄) + (h₁ + h₅)) + ((h₂ + h₆) + (h₃ + h₇))` into `part`, then
/// the last `len mod 8` entries one by one. Features are taken `G` at a time (each group a pass
/// over `w`), so that the sums fit in registers; `G` changes no bits.
#[inline(always)]
fn factor_sums<const G: usize>(cols: &[&[f64]], lo: usize, w: &[f64], part: &mut [f64]) {
    let len = w.len();
    let whole = len - len % LANES;
    let fold = |h: [f64; LANES]| ((h[0] + h[4]) + (h[1] + h[5])) + ((h[2] + h[6]) + (h[3] + h[7]));
    // Σ w.
    let mut acc = [0.0f64; LANES];
    for pw in w[..whole].chunks_exact(LANES) {
        for l in 0..LANES {
            acc[l] += pw[l];
        }
    }
    part[0] += fold(acc);
    for p in &w[whole..] {
        part[0] += p;
    }
    // The feature moments, a group of features per pass.
    for (g, group) in cols.chunks(G).enumerate() {
        let mut acc = [[0.0f64; LANES]; G];
        let cs: [&[f64]; G] =
            std::array::from_fn(|a| group.get(a).map_or(&[][..], |c| &c[lo..lo + len]));
        let d = group.len();
        for (q, pw) in w[..whole].chunks_exact(LANES).enumerate() {
            for a in 0..d {
                let c = &cs[a][q * LANES..(q + 1) * LANES];
                for l in 0..LANES {
                    acc[a][l] += pw[l] * c[l];
                }
            }
        }
        for a in 0..d {
            let out = &mut part[1 + g * G + a];
            *out += fold(acc[a]);
            for (p, c) in w[whole..].iter().zip(&cs[a][whole..]) {
                *out += p * c;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2")]
unsafe fn factor_sums_avx512(cols: &[&[f64]], lo: usize, w: &[f64], part: &mut [f64]) {
    // Eight features' sums: eight of the 32 registers.
    factor_sums::<8>(cols, lo, w, part)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn factor_sums_avx2(cols: &[&[f64]], lo: usize, w: &[f64], part: &mut [f64]) {
    // Four features' sums: eight of the 16 registers (two per feature), two more for `w`.
    factor_sums::<4>(cols, lo, w, part)
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    fn features(n: usize, d: usize) -> Vec<Vec<f64>> {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        (0..d)
            .map(|_| (0..n).map(|_| rng.random::<f64>() - 0.5).collect())
            .collect()
    }

    /// Every instruction set gives the scalar bits, for lengths with and without a tail and
    /// feature counts that fill a group, leave one partial, or need several; the sums are the
    /// statistics (to rounding).
    #[test]
    fn factor_sums_and_payoffs_are_the_same_bits_on_every_isa() {
        let n = 1000;
        for d in [1, 4, 5, 8, 11] {
            let fs = features(n, d);
            let cols: Vec<&[f64]> = fs.iter().map(|c| &c[..]).collect();
            let w: Vec<f64> = (0..n).map(|j| 1.0 / (1.0 + j as f64)).collect();
            let u: Vec<f64> = (0..=d).map(|a| 0.25 - 0.1 * a as f64).collect();
            for (lo, len) in [(0, 1000), (3, 517), (40, 7), (8, 0)] {
                let w = &w[..len];
                let mut want = vec![0.5; 1 + d];
                factor_sums_on(Isa::Scalar, &cols, lo, w, &mut want);
                let naive = |a: usize| -> f64 {
                    0.5 + (0..len)
                        .map(|j| w[j] * if a == 0 { 1.0 } else { cols[a - 1][lo + j] })
                        .sum::<f64>()
                };
                for (a, v) in want.iter().enumerate() {
                    assert!((v - naive(a)).abs() <= 1e-13, "d {d} len {len} stat {a}");
                }
                let mut g_want = vec![0.0; len];
                factor_payoffs_on(Isa::Scalar, &cols, lo, &u, &mut g_want);
                for (j, g) in g_want.iter().enumerate() {
                    let lin = FactorPayoff {
                        cols: &cols,
                        m: &[],
                    };
                    assert_eq!(g.to_bits(), lin.payoff(lo + j, &u).to_bits());
                }
                for isa in Isa::available() {
                    let mut got = vec![0.5; 1 + d];
                    factor_sums_on(isa, &cols, lo, w, &mut got);
                    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&got), bits(&want), "{} d {d} len {len}", isa.name());
                    let mut g = vec![0.0; len];
                    factor_payoffs_on(isa, &cols, lo, &u, &mut g);
                    assert_eq!(bits(&g), bits(&g_want), "{} d {d} len {len}", isa.name());
                }
            }
        }
    }
}
