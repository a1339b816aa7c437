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
/// Below this many matrix elements an apply runs on the calling thread.
pub const PAR_MIN_ELEMS: usize = 1 << 18;
/// Rows per parallel task; a multiple of `ROWS`, so the row grouping never depends on threads.
const TASK_ROWS: usize = 128;

/// A matrix element type the dense kernels handle.
pub trait Element: bytemuck::Pod + Send + Sync + Copy + 'static {
    /// `x` converted to the compute precision of this storage.
    type X: Copy + Send + Sync + Default + 'static;
    /// Storage units per probability: results of `dot_rows` are multiplied by it.
    const SCALE: f64 = 1.0;
    fn convert_x(x: f64) -> Self::X;
    /// The entry as a probability.
    fn to_f64(self) -> f64;
    /// `out[r] = Σ_j rows[r][j] * x[j]` for `r < R`.
    fn dot_rows<const R: usize>(rows: [&[Self]; R], x: &[Self::X], simd: bool) -> [f64; R];
    /// `Σ_j c[j]` (the bandwidth reference).
    fn sum(c: &[Self], simd: bool) -> f64;
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
    let xs: Vec<T::X> = x.iter().map(|&v| T::convert_x(v)).collect();
    let simd = simd && simd_available();
    let task = |(t, chunk): (usize, &mut [f64])| {
        let r0 = t * TASK_ROWS;
        let mut r = 0;
        while r + ROWS <= chunk.len() {
            let i = r0 + r;
            let rows: [&[T]; ROWS] = std::array::from_fn(|k| &p[(i + k) * n..(i + k + 1) * n]);
            let v = T::dot_rows::<ROWS>(rows, &xs, simd);
            for k in 0..ROWS {
                chunk[r + k] = v[k] * T::SCALE;
            }
            r += ROWS;
        }
        while r < chunk.len() {
            let i = r0 + r;
            chunk[r] = T::dot_rows::<1>([&p[i * n..(i + 1) * n]], &xs, simd)[0] * T::SCALE;
            r += 1;
        }
    };
    // Small games run on the calling thread: the same row groups, so the same result, without
    // handing each apply to the pool and back.
    if p.len() < PAR_MIN_ELEMS {
        out.chunks_mut(TASK_ROWS).enumerate().for_each(task);
    } else {
        out.par_chunks_mut(TASK_ROWS).enumerate().for_each(task);
    }
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
    fn add(a: Self, b: Self) -> Self;
    fn fmadd(a: Self, x: X, acc: Self, fma: bool) -> Self;
}

impl Mul<f32> for f32 {
    #[inline(always)]
    fn zero() -> f32 {
        0.0
    }
    #[inline(always)]
    fn add(a: f32, b: f32) -> f32 {
        a + b
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
    fn add(a: f64, b: f64) -> f64 {
        a + b
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
    //! AVX2 + FMA kernels. Every function here requires AVX2 and FMA; callers check
    //! [`super::simd_available`] first. Loads are unaligned and stay inside the slices: each
    //! loop reads `[j, j + 16)` only while `j + 16 <= end <= len`.
    use super::BLOCK;
    use std::arch::x86_64::*;

    /// Horizontal sum of four f64 lanes, in a fixed order.
    #[target_feature(enable = "avx2,fma")]
    fn hsum_pd(v: __m256d) -> f64 {
        let mut a = [0.0f64; 4];
        // SAFETY: `a` holds exactly four f64.
        unsafe { _mm256_storeu_pd(a.as_mut_ptr(), v) };
        (a[0] + a[1]) + (a[2] + a[3])
    }

    /// Widens eight f32 lanes to f64 and adds them to `acc`.
    #[target_feature(enable = "avx2,fma")]
    fn widen_add(acc: __m256d, v: __m256) -> __m256d {
        let lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
        let hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        _mm256_add_pd(acc, _mm256_add_pd(lo, hi))
    }

    /// `Σ_j rows[r][j] x[j]` for `R` rows: f32 products summed in f32 per block of `BLOCK`
    /// columns (two 8-lane accumulators per row), block sums widened to f64. `$load` reads 8
    /// entries as f32 (converting fixed point in the loop), `$conv` one.
    macro_rules! rows_kernel {
        ($name:ident, $t:ty, $load:expr, $conv:expr) => {
            #[target_feature(enable = "avx2,fma")]
            pub fn $name<const R: usize>(rows: [&[$t]; R], x: &[f32]) -> [f64; R] {
                let (load, conv) = ($load, $conv);
                let n = x.len();
                for r in rows {
                    assert_eq!(r.len(), n);
                }
                let xp = x.as_ptr();
                let rp: [*const $t; R] = std::array::from_fn(|r| rows[r].as_ptr());
                let mut tot = [_mm256_setzero_pd(); R];
                let mut tail = [0.0f64; R];
                let mut start = 0;
                while start < n {
                    let end = (start + BLOCK).min(n);
                    let mut a0 = [_mm256_setzero_ps(); R];
                    let mut a1 = [_mm256_setzero_ps(); R];
                    let mut j = start;
                    while j + 16 <= end {
                        // SAFETY: j + 16 <= end <= n = len of x and of every row.
                        unsafe {
                            let x0 = _mm256_loadu_ps(xp.add(j));
                            let x1 = _mm256_loadu_ps(xp.add(j + 8));
                            for r in 0..R {
                                a0[r] = _mm256_fmadd_ps(load(rp[r].add(j)), x0, a0[r]);
                                a1[r] = _mm256_fmadd_ps(load(rp[r].add(j + 8)), x1, a1[r]);
                            }
                        }
                        j += 16;
                    }
                    for r in 0..R {
                        tot[r] = widen_add(tot[r], _mm256_add_ps(a0[r], a1[r]));
                        for jj in j..end {
                            tail[r] += (conv(rows[r][jj]) * x[jj]) as f64;
                        }
                    }
                    start = end;
                }
                std::array::from_fn(|r| hsum_pd(tot[r]) + tail[r])
            }
        };
    }

    rows_kernel!(
        f32_rows,
        f32,
        |p: *const f32| {
            // SAFETY: callers pass pointers with 8 readable f32.
            unsafe { _mm256_loadu_ps(p) }
        },
        |v: f32| v
    );
    rows_kernel!(
        u16_rows,
        u16,
        |p: *const u16| {
            // SAFETY: callers pass pointers with 8 readable u16.
            unsafe {
                _mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(_mm_loadu_si128(p as *const __m128i)))
            }
        },
        |v: u16| v as f32
    );

    /// `Σ_j rows[r][j] x[j]` in f64 for `R` rows (two 4-lane accumulators per row).
    #[target_feature(enable = "avx2,fma")]
    pub fn f64_rows<const R: usize>(rows: [&[f64]; R], x: &[f64]) -> [f64; R] {
        let n = x.len();
        for r in rows {
            assert_eq!(r.len(), n);
        }
        let xp = x.as_ptr();
        let rp: [*const f64; R] = std::array::from_fn(|r| rows[r].as_ptr());
        let mut a0 = [_mm256_setzero_pd(); R];
        let mut a1 = [_mm256_setzero_pd(); R];
        let mut j = 0;
        while j + 8 <= n {
            // SAFETY: j + 8 <= n = len of x and of every row.
            unsafe {
                let x0 = _mm256_loadu_pd(xp.add(j));
                let x1 = _mm256_loadu_pd(xp.add(j + 4));
                for r in 0..R {
                    a0[r] = _mm256_fmadd_pd(_mm256_loadu_pd(rp[r].add(j)), x0, a0[r]);
                    a1[r] = _mm256_fmadd_pd(_mm256_loadu_pd(rp[r].add(j + 4)), x1, a1[r]);
                }
            }
            j += 8;
        }
        std::array::from_fn(|r| {
            let mut s = hsum_pd(_mm256_add_pd(a0[r], a1[r]));
            for jj in j..n {
                s += rows[r][jj] * x[jj];
            }
            s
        })
    }

    /// `Σ c` for f32 (four 8-lane accumulators, widened to f64 per 64 Ki elements chunk).
    #[target_feature(enable = "avx2,fma")]
    pub fn f32_sum(c: &[f32]) -> f64 {
        let p = c.as_ptr();
        let mut a = [_mm256_setzero_ps(); 4];
        let mut j = 0;
        while j + 32 <= c.len() {
            // SAFETY: j + 32 <= len.
            unsafe {
                for (k, acc) in a.iter_mut().enumerate() {
                    *acc = _mm256_add_ps(*acc, _mm256_loadu_ps(p.add(j + 8 * k)));
                }
            }
            j += 32;
        }
        let v = _mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3]));
        hsum_pd(widen_add(_mm256_setzero_pd(), v)) + c[j..].iter().map(|&v| v as f64).sum::<f64>()
    }

    /// `Σ c` for f64.
    #[target_feature(enable = "avx2,fma")]
    pub fn f64_sum(c: &[f64]) -> f64 {
        let p = c.as_ptr();
        let mut a = [_mm256_setzero_pd(); 4];
        let mut j = 0;
        while j + 16 <= c.len() {
            // SAFETY: j + 16 <= len.
            unsafe {
                for (k, acc) in a.iter_mut().enumerate() {
                    *acc = _mm256_add_pd(*acc, _mm256_loadu_pd(p.add(j + 4 * k)));
                }
            }
            j += 16;
        }
        let v = _mm256_add_pd(_mm256_add_pd(a[0], a[1]), _mm256_add_pd(a[2], a[3]));
        hsum_pd(v) + c[j..].iter().sum::<f64>()
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
    fn sum(c: &[f32], simd: bool) -> f64 {
        #[cfg(target_arch = "x86_64")]
        if simd {
            // SAFETY: `simd` is true only when `simd_available()` saw AVX2 and FMA at run time.
            return unsafe { avx2::f32_sum(c) };
        }
        let _ = simd;
        sum_generic::<f32, 32>(c)
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
    fn sum(c: &[f64], simd: bool) -> f64 {
        #[cfg(target_arch = "x86_64")]
        if simd {
            // SAFETY: `simd` is true only when `simd_available()` saw AVX2 and FMA at run time.
            return unsafe { avx2::f64_sum(c) };
        }
        let _ = simd;
        sum_generic::<f64, 16>(c)
    }
}

/// Fixed point `P = q / 65534` (`storage::U16_ONE`); `x` in `f32`, products summed as for `f32`.
impl Element for u16 {
    type X = f32;
    const SCALE: f64 = 1.0 / crate::storage::U16_ONE;
    fn convert_x(x: f64) -> f32 {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self as f64 / crate::storage::U16_ONE
    }
    #[inline]
    fn dot_rows<const R: usize>(rows: [&[u16]; R], x: &[f32], simd: bool) -> [f64; R] {
        #[cfg(target_arch = "x86_64")]
        if simd {
            // SAFETY: `simd` is true only when `simd_available()` saw AVX2 and FMA at run time.
            return unsafe { avx2::u16_rows::<R>(rows, x) };
        }
        let _ = simd;
        std::array::from_fn(|r| {
            rows[r]
                .iter()
                .zip(x)
                .map(|(&q, &v)| q as f64 * v as f64)
                .sum()
        })
    }
    fn sum(c: &[u16], _simd: bool) -> f64 {
        c.iter().map(|&q| q as f64).sum()
    }
}

/// The memory-read reference: a parallel sum of every element of `p` in fixed chunks, with the
/// same SIMD dispatch as the matvec. A matvec cannot read its matrix faster than this reads the
/// same bytes; benchmarks quote the matvec's bandwidth as a fraction of it.
pub fn plain_sum<T: Element>(p: &[T], simd: bool) -> f64 {
    let simd = simd && simd_available();
    p.par_chunks(1 << 16).map(|c| T::sum(c, simd)).sum()
}

#[inline(always)]
fn sum_generic<T: Copy + Into<f64> + Mul<T>, const L: usize>(c: &[T]) -> f64 {
    let mut acc = [T::zero(); L];
    let mut chunks = c.chunks_exact(L);
    for ch in &mut chunks {
        for l in 0..L {
            acc[l] = T::add(acc[l], ch[l]);
        }
    }
    let mut s: f64 = chunks.remainder().iter().map(|&v| v.into()).sum();
    for a in acc {
        s += a.into();
    }
    s
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
