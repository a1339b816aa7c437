//! Batched dense products: `out_v = P x_v` for up to [`MAX_BATCH`] vectors in one pass over `P`.
//!
//! The vectors are interleaved (`X[j][v]`, padded to a multiple of 8 lanes), so each matrix value
//! is broadcast once against all of them: the matrix is read once instead of `k` times. Products
//! are summed in `f32` over blocks of [`BLOCK`](super::matvec::BLOCK) columns, the block sums in
//! `f64` (the accuracy of the single apply); the summation order differs from the single apply's,
//! so results agree with it to rounding, not to the bit. Rows are grouped as in the single apply:
//! results do not depend on the thread count.

use super::matvec::{simd_available, BLOCK, PAR_MIN_ELEMS};
use rayon::prelude::*;

/// Most vectors per batch.
pub const MAX_BATCH: usize = 16;
/// Rows per kernel call (each vector load serves all of them).
const ROWS: usize = 4;
const TASK_ROWS: usize = 64;

/// A matrix element type the batched kernel reads (probability = value × `SCALE`).
pub trait BatchElem: bytemuck::Pod + Send + Sync {
    const SCALE: f64;
    fn to_f32(self) -> f32;
    /// One column block: rows `rows` against interleaved `x` (`len × L` lanes, `L = 8 or 16`),
    /// written to `out[r * L + v]` (one `f32` sum per block, in `f64`).
    fn rows_batch<const L: usize>(rows: [&[Self]; ROWS], x: &[f32], out: &mut [f64], simd: bool);
}

/// `outs[v] = P xs[v]` for a row-major `n × n` `p`.
///
/// # Panics
/// If lengths disagree or more than [`MAX_BATCH`] vectors are given.
pub fn matvec_batch<T: BatchElem>(p: &[T], xs: &[&[f64]], outs: &mut [&mut [f64]], simd: bool) {
    let k = xs.len();
    assert!(k <= MAX_BATCH && outs.len() == k);
    if k == 0 {
        return;
    }
    let n = xs[0].len();
    assert_eq!(p.len(), n * n);
    let simd = simd && simd_available();
    if k <= 8 {
        run::<T, 8>(p, xs, outs, n, simd)
    } else {
        run::<T, 16>(p, xs, outs, n, simd)
    }
}

fn run<T: BatchElem, const L: usize>(
    p: &[T],
    xs: &[&[f64]],
    outs: &mut [&mut [f64]],
    n: usize,
    simd: bool,
) {
    let k = xs.len();
    let mut xi = vec![0.0f32; n * L];
    xi.par_chunks_mut(L).enumerate().for_each(|(j, lane)| {
        for v in 0..k {
            lane[v] = xs[v][j] as f32;
        }
    });
    // Row-major results, L lanes per row, then scattered to the outputs.
    let mut res = vec![0.0f64; n * L];
    let task = |(t, chunk): (usize, &mut [f64])| {
        let r0 = t * TASK_ROWS;
        let rows = chunk.len() / L;
        // Column blocks outside, row groups inside: the block of X (BLOCK × L f32) stays in
        // L1 while every row of the task passes over it.
        let mut start = 0;
        while start < n {
            let end = (start + BLOCK).min(n);
            let xb = &xi[start * L..end * L];
            let mut r = 0;
            while r < rows {
                // A short last group repeats its last row (the extra results are dropped).
                let take = ROWS.min(rows - r);
                let group: [&[T]; ROWS] = std::array::from_fn(|q| {
                    let i = r0 + r + q.min(take - 1);
                    &p[i * n + start..i * n + end]
                });
                let mut tmp = [0.0f64; ROWS * MAX_BATCH];
                T::rows_batch::<L>(group, xb, &mut tmp[..ROWS * L], simd);
                for (c, t) in chunk[r * L..(r + take) * L].iter_mut().zip(&tmp) {
                    *c += t;
                }
                r += take;
            }
            start = end;
        }
    };
    if p.len() < PAR_MIN_ELEMS {
        res.chunks_mut(TASK_ROWS * L).enumerate().for_each(task);
    } else {
        res.par_chunks_mut(TASK_ROWS * L).enumerate().for_each(task);
    }
    for (v, out) in outs.iter_mut().enumerate() {
        for (i, o) in out.iter_mut().enumerate() {
            *o = res[i * L + v] * T::SCALE;
        }
    }
}

/// The portable twin: `f32` products summed in `f64`, written to `out[r * L + v]`.
fn rows_batch_scalar<T: BatchElem, const L: usize>(rows: [&[T]; ROWS], x: &[f32], out: &mut [f64]) {
    let n = rows[0].len();
    for (r, row) in rows.iter().enumerate() {
        for v in 0..L {
            out[r * L + v] = (0..n)
                .map(|j| row[j].to_f32() as f64 * x[j * L + v] as f64)
                .sum();
        }
    }
}

impl BatchElem for f32 {
    const SCALE: f64 = 1.0;
    fn to_f32(self) -> f32 {
        self
    }
    fn rows_batch<const L: usize>(rows: [&[f32]; ROWS], x: &[f32], out: &mut [f64], simd: bool) {
        #[cfg(target_arch = "x86_64")]
        if simd {
            // SAFETY: `simd` is true only when AVX2 and FMA were detected at run time.
            return unsafe { avx2::f32_batch::<L>(rows, x, out) };
        }
        let _ = simd;
        rows_batch_scalar::<f32, L>(rows, x, out)
    }
}

impl BatchElem for u16 {
    const SCALE: f64 = 1.0 / crate::storage::U16_ONE;
    fn to_f32(self) -> f32 {
        self as f32
    }
    fn rows_batch<const L: usize>(rows: [&[u16]; ROWS], x: &[f32], out: &mut [f64], simd: bool) {
        #[cfg(target_arch = "x86_64")]
        if simd {
            // SAFETY: `simd` is true only when AVX2 and FMA were detected at run time.
            return unsafe { avx2::u16_batch::<L>(rows, x, out) };
        }
        let _ = simd;
        rows_batch_scalar::<u16, L>(rows, x, out)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! Requires AVX2 and FMA (checked by the caller). Loads stay inside the slices, whose lengths
    //! are asserted on entry.
    use super::ROWS;
    use std::arch::x86_64::*;

    macro_rules! batch_kernel {
        ($name:ident, $t:ty, $bcast:expr, $quad:expr) => {
            /// `ROWS` rows against `L / 8` interleaved vector registers per column.
            #[target_feature(enable = "avx2,fma")]
            pub fn $name<const L: usize>(rows: [&[$t]; ROWS], x: &[f32], out: &mut [f64]) {
                let n = rows[0].len();
                assert!(rows.iter().all(|r| r.len() == n) && x.len() == n * L);
                assert!(out.len() >= ROWS * L);
                const W: usize = 8;
                let lanes = L / W;
                let (bcast, quad) = ($bcast, $quad);
                let xp = x.as_ptr();
                let rp: [*const $t; ROWS] = std::array::from_fn(|r| rows[r].as_ptr());
                {
                    let mut acc = [[_mm256_setzero_ps(); 2]; ROWS];
                    let mut j = 0;
                    if lanes == 1 {
                        // Eight vectors: four consecutive matrix values are loaded once into both
                        // 128-bit halves and spread by in-lane permutes (cheaper than four
                        // broadcasts from memory); two accumulator sets give eight FMA chains.
                        let mut odd = [_mm256_setzero_ps(); ROWS];
                        while j + 4 <= n {
                            // SAFETY: j + 3 < n = every row's length; (j + 3) * 8 + 8 <= n * L.
                            unsafe {
                                let q: [__m256; ROWS] = std::array::from_fn(|r| quad(rp[r].add(j)));
                                let x0 = _mm256_loadu_ps(xp.add(j * L));
                                let x1 = _mm256_loadu_ps(xp.add((j + 1) * L));
                                let x2 = _mm256_loadu_ps(xp.add((j + 2) * L));
                                let x3 = _mm256_loadu_ps(xp.add((j + 3) * L));
                                for r in 0..ROWS {
                                    let v = q[r];
                                    acc[r][0] = _mm256_fmadd_ps(
                                        _mm256_permute_ps::<0x00>(v),
                                        x0,
                                        acc[r][0],
                                    );
                                    odd[r] =
                                        _mm256_fmadd_ps(_mm256_permute_ps::<0x55>(v), x1, odd[r]);
                                    acc[r][0] = _mm256_fmadd_ps(
                                        _mm256_permute_ps::<0xAA>(v),
                                        x2,
                                        acc[r][0],
                                    );
                                    odd[r] =
                                        _mm256_fmadd_ps(_mm256_permute_ps::<0xFF>(v), x3, odd[r]);
                                }
                            }
                            j += 4;
                        }
                        for r in 0..ROWS {
                            acc[r][0] = _mm256_add_ps(acc[r][0], odd[r]);
                        }
                    }
                    while j < n {
                        // SAFETY: j < n = every row's length; j * L + l * 8 + 8 <= n * L.
                        unsafe {
                            let p: [__m256; ROWS] = std::array::from_fn(|r| bcast(rp[r].add(j)));
                            for l in 0..lanes {
                                let xv = _mm256_loadu_ps(xp.add(j * L + l * W));
                                for r in 0..ROWS {
                                    acc[r][l] = _mm256_fmadd_ps(p[r], xv, acc[r][l]);
                                }
                            }
                        }
                        j += 1;
                    }
                    for r in 0..ROWS {
                        for l in 0..lanes {
                            let mut a = [0.0f32; W];
                            // SAFETY: `a` holds 8 f32.
                            unsafe { _mm256_storeu_ps(a.as_mut_ptr(), acc[r][l]) };
                            for (v, val) in a.iter().enumerate() {
                                out[r * L + l * W + v] = *val as f64;
                            }
                        }
                    }
                }
            }
        };
    }

    batch_kernel!(
        f32_batch,
        f32,
        |p: *const f32| {
            // SAFETY: the caller passes a pointer to a readable f32.
            unsafe { _mm256_broadcast_ss(&*p) }
        },
        |p: *const f32| {
            // SAFETY: the caller passes a pointer to four readable f32 (any alignment).
            unsafe {
                let q = _mm_loadu_ps(p);
                _mm256_set_m128(q, q)
            }
        }
    );
    batch_kernel!(
        u16_batch,
        u16,
        |p: *const u16| {
            // SAFETY: the caller passes a pointer to a readable u16.
            unsafe { _mm256_set1_ps(*p as f32) }
        },
        |p: *const u16| {
            // SAFETY: the caller passes a pointer to four readable u16 (8 bytes).
            unsafe {
                let q = _mm_cvtepi32_ps(_mm_cvtepu16_epi32(_mm_loadl_epi64(p as *const __m128i)));
                _mm256_set_m128(q, q)
            }
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_matches_single_products() {
        let n = 1037;
        let p: Vec<f32> = (0..n * n)
            .map(|k| crate::gen::unit(1, k as u64, 0) as f32)
            .collect();
        let q: Vec<u16> = p.iter().map(|&v| (v * 65534.0) as u16).collect();
        for k in [1usize, 3, 8, 11, 16] {
            let xs: Vec<Vec<f64>> = (0..k)
                .map(|v| {
                    (0..n)
                        .map(|j| crate::gen::unit(2, j as u64, v as u64))
                        .collect()
                })
                .collect();
            let xr: Vec<&[f64]> = xs.iter().map(|v| &v[..]).collect();
            for simd in [false, true] {
                let mut outs = vec![vec![0.0; n]; k];
                let mut or: Vec<&mut [f64]> = outs.iter_mut().map(|v| &mut v[..]).collect();
                matvec_batch(&p, &xr, &mut or, simd);
                let mut qouts = vec![vec![0.0; n]; k];
                let mut qr: Vec<&mut [f64]> = qouts.iter_mut().map(|v| &mut v[..]).collect();
                matvec_batch(&q, &xr, &mut qr, simd);
                for v in 0..k {
                    let mut single = vec![0.0; n];
                    super::super::matvec::matvec(&p, &xs[v], &mut single, simd);
                    let mut qsingle = vec![0.0; n];
                    super::super::matvec::matvec(&q, &xs[v], &mut qsingle, simd);
                    for i in 0..n {
                        assert!(
                            (outs[v][i] - single[i]).abs() <= 1e-6 * single[i].abs().max(1.0),
                            "k={k} simd={simd}"
                        );
                        assert!(
                            (qouts[v][i] - qsingle[i]).abs() <= 1e-6 * qsingle[i].abs().max(1.0),
                            "u16 k={k}"
                        );
                    }
                }
            }
        }
    }
}
