//! Structured games for very large `n` (docs/math.md §7), applied implicitly from small factors.
//!
//! - [`LowRankGame`]: `P = 1/2 + Σ_r w_r (a_r b_rᵀ − b_r a_rᵀ)`, `g(π)` in `O(n·r)`.
//! - [`BlockGame`]: `P[i][j] = Q[t(i)][t(j)]`, `g(π) = Q·(mass per type)` in `O(n + K²)`.
//!
//! Both are skew-consistent by construction; their reductions use fixed chunks, so results do
//! not depend on the thread count.

use super::{
    check_shapes, column, columns_mut, Classes, Factors, Info, MatMut, MatRef, MemStack,
    PreferenceOperator, StackReq, Structure,
};
use crate::error::{Error, Result};
use crate::io::container::TypeWidth;
use crate::io::mmap::Mapped;
use crate::kernels::vector::{self, CHUNK};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

fn f64s(bytes: &[u8]) -> &[f64] {
    bytemuck::cast_slice(bytes)
}

/// A low-rank skew game mapped from a container: `w` (r), then `a` (r × n), then `b` (r × n).
pub struct LowRankGame {
    n: usize,
    r: usize,
    map: Mapped,
    offset: usize,
    path: PathBuf,
}

impl LowRankGame {
    pub(crate) fn mapped(path: &Path, map: Mapped, offset: usize, n: usize, r: usize) -> Self {
        LowRankGame {
            n,
            r,
            map,
            offset,
            path: path.into(),
        }
    }

    fn data(&self) -> &[f64] {
        f64s(&self.map.bytes()[self.offset..])
    }
    fn w(&self) -> &[f64] {
        &self.data()[..self.r]
    }
    fn a(&self, k: usize) -> &[f64] {
        &self.data()[self.r + k * self.n..self.r + (k + 1) * self.n]
    }
    fn b(&self, k: usize) -> &[f64] {
        let off = self.r + self.r * self.n;
        &self.data()[off + k * self.n..off + (k + 1) * self.n]
    }
}

/// The reduction buffers of a low-rank apply over `m` vectors: the per-chunk sums
/// (`⌈n / CHUNK⌉ · m · (2r + 1)`) and their totals (`m · (2r + 1)`).
struct Sums<'a> {
    parts: &'a mut [f64],
    dots: &'a mut [f64],
}

/// The low-rank product of any rank `r` (the fallback above rank 8): `Σx`, `a_k·x`, `b_k·x` in
/// fixed chunks (each sum in index order within a chunk, chunks added in order), then
/// `out_i = ½Σx + Σ_k w_k (a_k[i]·(b_k·x) − b_k[i]·(a_k·x))`, the terms in `k` order.
fn low_rank_apply_any(
    w: &[f64],
    a: &[&[f64]],
    b: &[&[f64]],
    xs: &[&[f64]],
    out: MatMut<'_, f64>,
    s: Sums<'_>,
) {
    let (n, r, m) = (xs[0].len(), w.len(), xs.len());
    let per = 1 + 2 * r;
    // dots[v * per ..]: Σx, a_k·x, b_k·x of vector v.
    let add = |lo: usize, hi: usize, acc: &mut [f64]| {
        for i in lo..hi {
            for (v, x) in xs.iter().enumerate() {
                let xi = x[i];
                let acc = &mut acc[v * per..(v + 1) * per];
                acc[0] += xi;
                for k in 0..r {
                    acc[1 + k] += a[k][i] * xi;
                    acc[1 + r + k] += b[k][i] * xi;
                }
            }
        }
    };
    vector::sums_by_chunk_in(n, m * per, add, s.parts, s.dots);
    let dots = &*s.dots;
    out.par_row_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(c, part)| {
            let lo = c * CHUNK;
            for (v, o) in columns_mut(part).enumerate() {
                let d = &dots[v * per..(v + 1) * per];
                let (sx, ax, bx) = (d[0], &d[1..1 + r], &d[1 + r..]);
                for (j, oi) in o.iter_mut().enumerate() {
                    let i = lo + j;
                    let mut s = 0.5 * sx;
                    for k in 0..r {
                        s += w[k] * (a[k][i] * bx[k] - b[k][i] * ax[k]);
                    }
                    *oi = s;
                }
            }
        });
}

/// [`low_rank_apply_any`] for a rank known at compile time: the same sums in the same order
/// (so the same bits), with the `2R + 1` running sums of a vector in registers and the factor
/// slices of a chunk cut once, so the passes run at memory speed instead of being bound by
/// indexing and reloads.
fn low_rank_apply<const R: usize>(
    w: &[f64],
    a: &[&[f64]],
    b: &[&[f64]],
    xs: &[&[f64]],
    out: MatMut<'_, f64>,
    s: Sums<'_>,
) {
    let (n, m) = (xs[0].len(), xs.len());
    let per = 1 + 2 * R;
    let add = |lo: usize, hi: usize, acc: &mut [f64]| {
        let len = hi - lo;
        let ac: [&[f64]; R] = std::array::from_fn(|k| &a[k][lo..hi]);
        let bc: [&[f64]; R] = std::array::from_fn(|k| &b[k][lo..hi]);
        for (v, x) in xs.iter().enumerate() {
            let x = &x[lo..hi];
            let mut sx = 0.0;
            let mut sa = [0.0f64; R];
            let mut sb = [0.0f64; R];
            for j in 0..len {
                let xi = x[j];
                sx += xi;
                for k in 0..R {
                    sa[k] += ac[k][j] * xi;
                    sb[k] += bc[k][j] * xi;
                }
            }
            let acc = &mut acc[v * per..(v + 1) * per];
            acc[0] += sx;
            for k in 0..R {
                acc[1 + k] += sa[k];
                acc[1 + R + k] += sb[k];
            }
        }
    };
    vector::sums_by_chunk_in(n, m * per, add, s.parts, s.dots);
    let dots = &*s.dots;
    out.par_row_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(c, part)| {
            let lo = c * CHUNK;
            for (v, o) in columns_mut(part).enumerate() {
                let d = &dots[v * per..(v + 1) * per];
                let sx = d[0];
                let ax: [f64; R] = std::array::from_fn(|k| d[1 + k]);
                let bx: [f64; R] = std::array::from_fn(|k| d[1 + R + k]);
                let hi = lo + o.len();
                let ac: [&[f64]; R] = std::array::from_fn(|k| &a[k][lo..hi]);
                let bc: [&[f64]; R] = std::array::from_fn(|k| &b[k][lo..hi]);
                for (j, oi) in o.iter_mut().enumerate() {
                    let mut s = 0.5 * sx;
                    for k in 0..R {
                        s += w[k] * (ac[k][j] * bx[k] - bc[k][j] * ax[k]);
                    }
                    *oi = s;
                }
            }
        });
}

impl PreferenceOperator for LowRankGame {
    fn n(&self) -> usize {
        self.n
    }

    /// One pass over the factors for every column's `2r + 1` dot products, one pass to write
    /// every output: the factors (`2r` `f64` per action, the bulk of the traffic) are read twice
    /// per batch instead of twice per vector. Each column's sums run over the same fixed chunks
    /// in the same order whatever the batch, so its product does not depend on the batch.
    fn apply(&self, out: MatMut<'_, f64>, rhs: MatRef<'_, f64>, stack: &mut MemStack) {
        check_shapes(self.n, &out, &rhs);
        let (n, r, m) = (self.n, self.r, rhs.ncols());
        if m == 0 {
            return;
        }
        let per = 1 + 2 * r;
        let (a, stack) = stack.collect((0..r).map(|k| self.a(k)));
        let (b, stack) = stack.collect((0..r).map(|k| self.b(k)));
        let (xs, stack) = stack.collect((0..m).map(|v| column(rhs, v)));
        let (mut parts, stack) = stack.make_with(n.div_ceil(CHUNK) * m * per, |_| 0.0f64);
        let (mut dots, _) = stack.make_with(m * per, |_| 0.0f64);
        assert!(
            a.len() == r && b.len() == r && xs.len() == m,
            "scratch too small"
        );
        let (a, b, xs, w) = (&*a, &*b, &*xs, self.w());
        let s = Sums {
            parts: &mut parts,
            dots: &mut dots,
        };
        match r {
            1 => low_rank_apply::<1>(w, a, b, xs, out, s),
            2 => low_rank_apply::<2>(w, a, b, xs, out, s),
            3 => low_rank_apply::<3>(w, a, b, xs, out, s),
            4 => low_rank_apply::<4>(w, a, b, xs, out, s),
            5 => low_rank_apply::<5>(w, a, b, xs, out, s),
            6 => low_rank_apply::<6>(w, a, b, xs, out, s),
            7 => low_rank_apply::<7>(w, a, b, xs, out, s),
            8 => low_rank_apply::<8>(w, a, b, xs, out, s),
            _ => low_rank_apply_any(w, a, b, xs, out, s),
        }
    }

    fn apply_scratch(&self, k: usize) -> StackReq {
        let per = 1 + 2 * self.r;
        StackReq::all_of(&[
            StackReq::new::<&[f64]>(2 * self.r + k),
            StackReq::new::<f64>(self.n.div_ceil(CHUNK) * k * per),
            StackReq::new::<f64>(k * per),
        ])
    }

    fn entry(&self, i: usize, j: usize) -> f64 {
        assert!(
            i < self.n && j < self.n,
            "entry ({i}, {j}) of an {0}x{0} game",
            self.n
        );
        let w = self.w();
        0.5 + (0..self.r)
            .map(|k| w[k] * (self.a(k)[i] * self.b(k)[j] - self.b(k)[i] * self.a(k)[j]))
            .sum::<f64>()
    }

    /// Certifies `P ∈ [0, 1]` by the bound `Σ_r |w_r|·min(2·max|a_r|·max|b_r|, max(a_r² + b_r²))
    /// ≤ 1/2` (sufficient, checked in `O(n·r)`), after checking every factor is finite.
    fn validate(&self, _tol: Option<f64>) -> Result<()> {
        let mut bound = 0.0;
        for k in 0..self.r {
            let w = self.w()[k];
            let (a, b) = (self.a(k), self.b(k));
            for (name, v) in [("a", a), ("b", b)] {
                if let Some(i) = v.par_iter().position_first(|x| !x.is_finite()) {
                    return Err(Error::BadVector {
                        what: self.path.display().to_string(),
                        reason: format!("factor {name}[{k}][{i}] = {} is not finite", v[i]),
                    });
                }
            }
            if !w.is_finite() {
                return Err(Error::BadVector {
                    what: self.path.display().to_string(),
                    reason: format!("weight w[{k}] = {w} is not finite"),
                });
            }
            let ma = vector::max_by(self.n, |i| a[i].abs());
            let mb = vector::max_by(self.n, |i| b[i].abs());
            // |a_i b_j − b_i a_j| ≤ ‖(a_i, b_i)‖·‖(a_j, b_j)‖ as well (disc games are tight here).
            let norm = vector::max_by(self.n, |i| a[i] * a[i] + b[i] * b[i]);
            bound += w.abs() * (2.0 * ma * mb).min(norm);
        }
        if bound > 0.5 + 1e-12 {
            return Err(Error::BadVector {
                what: self.path.display().to_string(),
                reason: format!(
                    "cannot certify P ∈ [0, 1]: Σ_r |w_r|·min(2·max|a_r|·max|b_r|, max(a_r² + b_r²)) = {bound} > 1/2"
                ),
            });
        }
        Ok(())
    }

    fn precision(&self) -> f64 {
        1e-15
    }

    /// The structure: `φ = (a_1..a_r, b_1..b_r)`, `M = [[0, W], [−W, 0]]`, `W = diag(w)`
    /// (docs/math.md §8).
    fn info(&self) -> Info<'_> {
        let r = self.r;
        let mut cols: Vec<&[f64]> = (0..r).map(|k| self.a(k)).collect();
        cols.extend((0..r).map(|k| self.b(k)));
        let d = 2 * r;
        let mut m = vec![0.0; d * d];
        for (k, &w) in self.w().iter().enumerate() {
            m[k * d + r + k] = w;
            m[(r + k) * d + k] = -w;
        }
        let stored_bytes = ((2 * self.r * self.n + self.r) * 8) as u64;
        Info {
            layout: format!("low-rank (r = {})", self.r),
            stored_bytes,
            description: format!(
                "low-rank r={} {}x{} ({} bytes) from {}",
                self.r,
                self.n,
                self.n,
                stored_bytes,
                self.path.display()
            ),
            structure: Structure::Factors(Factors { cols, m }),
        }
    }
}

/// A block (type) game mapped from a container: `Q` (K × K f64), then the types.
pub struct BlockGame {
    n: usize,
    k: usize,
    width: TypeWidth,
    map: Mapped,
    offset: usize,
    path: PathBuf,
}

impl BlockGame {
    pub(crate) fn mapped(
        path: &Path,
        map: Mapped,
        offset: usize,
        n: usize,
        k: usize,
        width: TypeWidth,
    ) -> Self {
        map.advise_sequential();
        BlockGame {
            n,
            k,
            width,
            map,
            offset,
            path: path.into(),
        }
    }

    fn q(&self) -> &[f64] {
        &f64s(&self.map.bytes()[self.offset..])[..self.k * self.k]
    }

    fn types_bytes(&self) -> &[u8] {
        let start = self.offset + self.k * self.k * 8;
        &self.map.bytes()[start..start + self.n * self.width.size()]
    }

    /// The type of action `i`.
    #[inline]
    pub fn type_of(&self, i: usize) -> usize {
        let b = self.types_bytes();
        match self.width {
            TypeWidth::U8 => b[i] as usize,
            TypeWidth::U16 => u16::from_le_bytes([b[2 * i], b[2 * i + 1]]) as usize,
            TypeWidth::U32 => {
                u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]) as usize
            }
        }
    }
}

/// `out = P x` for a block game: the mass per type (per fixed chunk, each in index order, then
/// chunks in order), `v = Q·mass`, `out_i = v[t(i)]`, for `Q` of `k × k`. `types` holds `w`
/// little-endian bytes per action, read by `t`; monomorphised per width, so the loops run over
/// slices. The masses and `v` are in `stack` (`(⌈n / CHUNK⌉ + 2)·k` f64).
fn block_apply(
    (q, k): (&[f64], usize),
    (types, w): (&[u8], usize),
    t: impl Fn(&[u8]) -> usize + Sync,
    x: &[f64],
    out: &mut [f64],
    stack: &mut MemStack,
) {
    let n = x.len();
    // Mass per type of every chunk, [chunk × k + type], then in total, then `v = Q·mass`.
    let (mut per_chunk, stack) = stack.make_with(n.div_ceil(CHUNK) * k, |_| 0.0f64);
    let (mut mass, stack) = stack.make_with(k, |_| 0.0f64);
    let (mut v, _) = stack.make_with(k, |_| 0.0f64);
    per_chunk
        .par_chunks_mut(k)
        .zip(x.par_chunks(CHUNK))
        .zip(types.par_chunks(CHUNK * w))
        .for_each(|((m, xc), tc)| {
            for (xi, ti) in xc.iter().zip(tc.chunks_exact(w)) {
                m[t(ti)] += xi;
            }
        });
    for m in per_chunk.chunks(k) {
        for a in 0..k {
            mass[a] += m[a];
        }
    }
    class_values(q, k, &mass, &mut v);
    let v = &*v;
    let fill = |(oc, tc): (&mut [f64], &[u8])| {
        for (o, ti) in oc.iter_mut().zip(tc.chunks_exact(w)) {
            *o = v[t(ti)];
        }
    };
    if n < vector::PAR_MIN {
        out.chunks_mut(CHUNK)
            .zip(types.chunks(CHUNK * w))
            .for_each(fill);
    } else {
        out.par_chunks_mut(CHUNK)
            .zip(types.par_chunks(CHUNK * w))
            .for_each(fill);
    }
}

/// `v = Q·mass` for the `k × k` row-major `Q`: a block game's payoff per class (the one
/// computation of it, shared by the apply and the algorithms' fused class payoff).
pub(crate) fn class_values(q: &[f64], k: usize, mass: &[f64], v: &mut [f64]) {
    for (a, va) in v.iter_mut().enumerate() {
        *va = (0..k).map(|b| q[a * k + b] * mass[b]).sum();
    }
}

impl PreferenceOperator for BlockGame {
    fn n(&self) -> usize {
        self.n
    }

    /// Column by column: `O(n + K²)` each, the workspace reused.
    fn apply(&self, out: MatMut<'_, f64>, rhs: MatRef<'_, f64>, stack: &mut MemStack) {
        check_shapes(self.n, &out, &rhs);
        let k = self.k;
        let b = self.types_bytes();
        for (v, o) in columns_mut(out).enumerate() {
            let x = column(rhs, v);
            let q = (self.q(), k);
            match self.width {
                TypeWidth::U8 => block_apply(q, (b, 1), |c| c[0] as usize, x, o, stack),
                TypeWidth::U16 => block_apply(
                    q,
                    (b, 2),
                    |c| u16::from_le_bytes([c[0], c[1]]) as usize,
                    x,
                    o,
                    stack,
                ),
                TypeWidth::U32 => block_apply(
                    q,
                    (b, 4),
                    |c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize,
                    x,
                    o,
                    stack,
                ),
            }
        }
    }

    fn apply_scratch(&self, _k: usize) -> StackReq {
        StackReq::new::<f64>(self.n.div_ceil(CHUNK) * self.k + 2 * self.k)
    }

    fn entry(&self, i: usize, j: usize) -> f64 {
        assert!(
            i < self.n && j < self.n,
            "entry ({i}, {j}) of an {0}x{0} game",
            self.n
        );
        self.q()[self.type_of(i) * self.k + self.type_of(j)]
    }

    /// Checks `Q` (finite, in `[0, 1]`, `|Q + Qᵀ − 1| ≤ tol`) and that every type is `< K`.
    fn validate(&self, tol: Option<f64>) -> Result<()> {
        let tol = tol.unwrap_or(1e-9);
        let (q, k) = (self.q(), self.k);
        for a in 0..k {
            for b in 0..k {
                let v = q[a * k + b];
                let path = self.path.clone();
                if !v.is_finite() {
                    return Err(Error::NotFinite {
                        path,
                        i: a,
                        j: b,
                        value: v,
                    });
                }
                if !(0.0..=1.0).contains(&v) {
                    return Err(Error::OutOfRange {
                        path,
                        i: a,
                        j: b,
                        value: v,
                    });
                }
                let w = q[b * k + a];
                if b >= a && (v + w - 1.0).abs() > tol {
                    return Err(Error::NotSkewSymmetric {
                        path,
                        i: a,
                        j: b,
                        pij: v,
                        pji: w,
                        sum: v + w,
                        tol,
                    });
                }
            }
        }
        if let Some(i) = (0..self.n)
            .into_par_iter()
            .position_first(|i| self.type_of(i) >= k)
        {
            return Err(Error::BadVector {
                what: self.path.display().to_string(),
                reason: format!(
                    "action {i} has type {} but there are only {k} types",
                    self.type_of(i)
                ),
            });
        }
        Ok(())
    }

    fn precision(&self) -> f64 {
        1e-15
    }

    /// The structure: the actions' types as classes, `Q` as the class game.
    fn info(&self) -> Info<'_> {
        let stored_bytes = (self.k * self.k * 8 + self.n * self.width.size()) as u64;
        Info {
            layout: format!("block (K = {})", self.k),
            stored_bytes,
            description: format!(
                "block K={} {}x{} ({} bytes) from {}",
                self.k,
                self.n,
                self.n,
                stored_bytes,
                self.path.display()
            ),
            structure: Structure::Classes(Classes::stored(
                self.q().to_vec(),
                self.types_bytes(),
                self.width,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixed-rank product is the any-rank one, bit for bit (the same sums in the same
    /// order), for every rank it serves, across chunk boundaries and batches.
    #[test]
    fn fixed_rank_apply_gives_the_general_bits() {
        let u = |s: u64, i: usize| crate::gen::unit(s, i as u64, 0) - 0.5;
        for (n, m) in [(1usize, 1usize), (37, 2), (CHUNK + 5, 3), (3 * CHUNK, 1)] {
            for r in 1..=8usize {
                let w: Vec<f64> = (0..r).map(|k| u(1, k)).collect();
                let fa: Vec<Vec<f64>> = (0..r)
                    .map(|k| (0..n).map(|i| u(2 + k as u64, i)).collect())
                    .collect();
                let fb: Vec<Vec<f64>> = (0..r)
                    .map(|k| (0..n).map(|i| u(20 + k as u64, i)).collect())
                    .collect();
                let a: Vec<&[f64]> = fa.iter().map(|v| &v[..]).collect();
                let b: Vec<&[f64]> = fb.iter().map(|v| &v[..]).collect();
                let xv: Vec<Vec<f64>> = (0..m)
                    .map(|v| (0..n).map(|i| u(40 + v as u64, i) + 0.5).collect())
                    .collect();
                let xs: Vec<&[f64]> = xv.iter().map(|v| &v[..]).collect();
                let run = |fixed: bool| {
                    let mut out = faer::Mat::<f64>::zeros(n, m);
                    let per = 1 + 2 * r;
                    let mut parts = vec![0.0; n.div_ceil(CHUNK) * m * per];
                    let mut dots = vec![0.0; m * per];
                    let s = Sums {
                        parts: &mut parts,
                        dots: &mut dots,
                    };
                    let o = out.as_mut();
                    if fixed {
                        match r {
                            1 => low_rank_apply::<1>(&w, &a, &b, &xs, o, s),
                            2 => low_rank_apply::<2>(&w, &a, &b, &xs, o, s),
                            3 => low_rank_apply::<3>(&w, &a, &b, &xs, o, s),
                            4 => low_rank_apply::<4>(&w, &a, &b, &xs, o, s),
                            5 => low_rank_apply::<5>(&w, &a, &b, &xs, o, s),
                            6 => low_rank_apply::<6>(&w, &a, &b, &xs, o, s),
                            7 => low_rank_apply::<7>(&w, &a, &b, &xs, o, s),
                            _ => low_rank_apply::<8>(&w, &a, &b, &xs, o, s),
                        }
                    } else {
                        low_rank_apply_any(&w, &a, &b, &xs, o, s);
                    }
                    (0..m)
                        .flat_map(|v| column(out.as_ref(), v).to_vec())
                        .map(|x| x.to_bits())
                        .collect::<Vec<u64>>()
                };
                assert_eq!(run(true), run(false), "n = {n}, r = {r}, m = {m}");
            }
        }
    }
}
