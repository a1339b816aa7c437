//! Dense row-major matrix–vector products `out = P x`, parallel over fixed row groups.
//!
//! Each output entry is computed by exactly one code path whose summation order depends only on
//! `n`, never on the thread count, so results are bit-identical for any `--threads`.
//! The SIMD path (AVX2 + FMA, chosen at run time) and the portable scalar twin agree to rounding.
//!
//! Accuracy: for an `f32` matrix, `x` is rounded to `f32` (as numpy does when it multiplies an
//! `f32` matrix), products are summed in `f32` over blocks of [`BLOCK`] columns and the block sums
//! in `f64`: the error of `(P x)_i` is at most about `1e-7 · Σ_j P_ij |x_j|`.
//! For an `f64` matrix everything is `f64`.

use rayon::prelude::*;

/// Columns summed in the storage precision before the partial sum moves to `f64`.
pub const BLOCK: usize = 512;
/// Rows processed together (each `x` load serves all of them).
const ROWS: usize = 4;
/// Rows per parallel task; a multiple of `ROWS`, so the row grouping never depends on threads.
const TASK_ROWS: usize = 32;

/// A matrix element type the dense kernels handle.
pub trait Element: bytemuck::Pod + Send + Sync + Copy + 'static {
    /// `x` converted to the compute precision of this storage.
    type X: Copy + Send + Sync + Default + 'static;
    fn convert_x(x: f64) -> Self::X;
    fn to_f64(self) -> f64;
    /// `out[r] = Σ_j rows[r][j] * x[j]` for `r < R`.
    fn dot_rows<const R: usize>(rows: [&[Self]; R], x: &[Self::X], simd: bool) -> [f64; R];
}

/// Whether the running CPU has AVX2 and FMA (detected once by std).
pub fn simd_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `out = P x` for a row-major `n × n` matrix `p` (`p.len() == n * n`).
///
/// # Panics
/// If the lengths disagree (a bug in the caller, not bad input).
pub fn matvec<T: Element>(p: &[T], x: &[f64], out: &mut [f64], simd: bool) {
    let n = x.len();
    assert_eq!(p.len(), n * n, "matrix length");
    assert_eq!(out.len(), n, "output length");
    let xs: Vec<T::X> = x.par_iter().map(|&v| T::convert_x(v)).collect();
    let simd = simd && simd_available();
    out.par_chunks_mut(TASK_ROWS)
        .enumerate()
        .for_each(|(t, chunk)| {
            let r0 = t * TASK_ROWS;
            let mut r = 0;
            while r + ROWS <= chunk.len() {
                let i = r0 + r;
                let rows: [&[T]; ROWS] = std::array::from_fn(|k| &p[(i + k) * n..(i + k + 1) * n]);
                let v = T::dot_rows::<ROWS>(rows, &xs, simd);
                chunk[r..r + ROWS].copy_from_slice(&v);
                r += ROWS;
            }
            while r < chunk.len() {
                let i = r0 + r;
                chunk[r] = T::dot_rows::<1>([&p[i * n..(i + 1) * n]], &xs, simd)[0];
                r += 1;
            }
        });
}

/// The portable reference: the same blocked summation order, no SIMD.
#[inline(always)]
fn dot_rows_generic<T, X, const R: usize, const L: usize>(
    rows: [&[T]; R],
    x: &[X],
    fma: bool,
) -> [f64; R]
where
    T: Copy + Into<f64>,
    X: Copy,
    T: Mul<X>,
{
    let n = x.len();
    let mut total = [0.0f64; R];
    let mut start = 0;
    while start < n {
        let end = (start + BLOCK).min(n);
        let mut acc = [[T::zero(); L]; R];
        let xb = &x[start..end];
        let full = xb.len() / L * L;
        for (c, xc) in xb[..full].chunks_exact(L).enumerate() {
            let off = start + c * L;
            for r in 0..R {
                let pc = &rows[r][off..off + L];
                for l in 0..L {
                    acc[r][l] = T::fmadd(pc[l], xc[l], acc[r][l], fma);
                }
            }
        }
        for r in 0..R {
            let mut s = 0.0f64;
            for a in acc[r] {
                s += a.into();
            }
            for j in start + full..end {
                s += T::fmadd(rows[r][j], x[j], T::zero(), fma).into();
            }
            total[r] += s;
        }
        start = end;
    }
    total
}

/// Multiply-add in the storage precision (fused when the CPU has FMA).
trait Mul<X>: Sized {
    fn zero() -> Self;
    fn fmadd(a: Self, x: X, acc: Self, fma: bool) -> Self;
}

impl Mul<f32> for f32 {
    #[inline(always)]
    fn zero() -> f32 {
        0.0
    }
    #[inline(always)]
    fn fmadd(a: f32, x: f32, acc: f32, fma: bool) -> f32 {
        if fma {
            a.mul_add(x, acc)
        } else {
            acc + a * x
        }
    }
}

impl Mul<f64> for f64 {
    #[inline(always)]
    fn zero() -> f64 {
        0.0
    }
    #[inline(always)]
    fn fmadd(a: f64, x: f64, acc: f64, fma: bool) -> f64 {
        if fma {
            a.mul_add(x, acc)
        } else {
            acc + a * x
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! The generic kernel compiled with AVX2 + FMA enabled: LLVM turns the lane loops into
    //! 256-bit FMAs. Callers must have checked [`super::simd_available`].
    use super::dot_rows_generic;

    #[target_feature(enable = "avx2,fma")]
    pub fn f32_rows<const R: usize>(rows: [&[f32]; R], x: &[f32]) -> [f64; R] {
        dot_rows_generic::<f32, f32, R, 16>(rows, x, true)
    }

    #[target_feature(enable = "avx2,fma")]
    pub fn f64_rows<const R: usize>(rows: [&[f64]; R], x: &[f64]) -> [f64; R] {
        dot_rows_generic::<f64, f64, R, 8>(rows, x, true)
    }
}

impl Element for f32 {
    type X = f32;
    fn convert_x(x: f64) -> f32 {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline]
    fn dot_rows<const R: usize>(rows: [&[f32]; R], x: &[f32], simd: bool) -> [f64; R] {
        #[cfg(target_arch = "x86_64")]
        if simd {
            // SAFETY: `simd` is true only when `simd_available()` saw AVX2 and FMA at run time.
            return unsafe { avx2::f32_rows::<R>(rows, x) };
        }
        let _ = simd;
        dot_rows_generic::<f32, f32, R, 16>(rows, x, false)
    }
}

impl Element for f64 {
    type X = f64;
    fn convert_x(x: f64) -> f64 {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
    #[inline]
    fn dot_rows<const R: usize>(rows: [&[f64]; R], x: &[f64], simd: bool) -> [f64; R] {
        #[cfg(target_arch = "x86_64")]
        if simd {
            // SAFETY: `simd` is true only when `simd_available()` saw AVX2 and FMA at run time.
            return unsafe { avx2::f64_rows::<R>(rows, x) };
        }
        let _ = simd;
        dot_rows_generic::<f64, f64, R, 8>(rows, x, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    fn naive(p: &[f64], x: &[f64]) -> Vec<f64> {
        let n = x.len();
        (0..n)
            .map(|i| (0..n).map(|j| p[i * n + j] * x[j]).sum())
            .collect()
    }

    #[test]
    fn simd_matches_scalar_and_naive() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        for n in [1usize, 3, 5, 17, 100, 513, 1100] {
            let p: Vec<f64> = (0..n * n).map(|_| rng.random::<f64>()).collect();
            let x: Vec<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
            let want = naive(&p, &x);
            for simd in [false, true] {
                let mut out = vec![0.0; n];
                matvec(&p, &x, &mut out, simd);
                for i in 0..n {
                    assert!(
                        (out[i] - want[i]).abs() <= 1e-12 * n as f64,
                        "f64 n={n} simd={simd}"
                    );
                }
                let p32: Vec<f32> = p.iter().map(|&v| v as f32).collect();
                matvec(&p32, &x, &mut out, simd);
                for i in 0..n {
                    assert!(
                        (out[i] - want[i]).abs() <= 1e-6 * want[i].max(1.0),
                        "f32 n={n}"
                    );
                }
            }
        }
    }
}
