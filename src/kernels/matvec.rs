//! Dense row-major matrix–vector products `out = P x`, parallel over fixed row groups.
//!
//! Each output entry is computed by exactly one summation order that depends only on `n`, never
//! on the thread count, the instruction set ([`Isa`]) or the batch it is computed in, so results
//! are bit-identical for any `--threads`, on any CPU, alone or batched ([`super::batch`]).
//!
//! **The summation order** (f32 and u16 storage). Columns are cut into blocks of [`BLOCK`]; in a
//! block, 16 `f32` lanes (lane `l` takes the columns `≡ l (mod 16)` from the block start) each
//! accumulate `P_ij x_j` with a fused multiply-add, in column order; at the block end lane `l`
//! and lane `l + 8` are added in `f32`, and the eight results widened to `f64` and added
//! pairwise (`l`, `l + 4`) into four `f64` totals; the columns of a last partial group of 16 go
//! to an `f64` tail, each product rounded to `f32`. The row's value is
//! `((t0 + t1) + (t2 + t3)) + tail`. This is what the AVX2 kernel does with two 8-lane registers;
//! the AVX-512 kernel holds the same 16 lanes in one register, the scalar twin in an array.
//! For `f64` storage: 8 lanes over the whole row (no blocks), reduced as
//! `((a0+a4) + (a1+a5)) + ((a2+a6) + (a3+a7))`, then the tail products added one by one.
//!
//! Accuracy: for an `f32` matrix, `x` is rounded to `f32` (as numpy does when it multiplies an
//! `f32` matrix), products are summed in `f32` over blocks of [`BLOCK`] columns and the block sums
//! in `f64`: the error of `(P x)_i` is at most about `1e-7 · Σ_j P_ij |x_j|`.
//! For an `f64` matrix everything is `f64`.

pub use super::isa::Isa;
use rayon::prelude::*;

/// Columns summed in the storage precision before the partial sum moves to `f64`.
pub const BLOCK: usize = 512;
/// Rows processed together (each `x` load serves all of them).
const ROWS: usize = 4;
/// Below this many matrix elements an apply runs on the calling thread.
pub const PAR_MIN_ELEMS: usize = 1 << 18;
/// Rows per parallel task; a multiple of `ROWS`, so the row grouping never depends on threads.
const TASK_ROWS: usize = 128;

/// Running sums of one (row, vector) pair across the column blocks of the f32/u16 order.
#[derive(Clone, Copy, Debug, Default)]
pub struct BlockAcc {
    tot: [f64; 4],
    tail: f64,
}

impl BlockAcc {
    /// The row's value.
    #[inline]
    pub fn finish(self) -> f64 {
        ((self.tot[0] + self.tot[1]) + (self.tot[2] + self.tot[3])) + self.tail
    }

    /// Adds a finished block: the 16 lanes `a` and the tail products.
    #[inline(always)]
    fn add_lanes(&mut self, a: &[f32; 16]) {
        let v: [f32; 8] = std::array::from_fn(|l| a[l] + a[l + 8]);
        for l in 0..4 {
            self.tot[l] += v[l] as f64 + v[l + 4] as f64;
        }
    }
}

/// A matrix element type the dense kernels handle.
pub trait Element: bytemuck::Pod + Send + Sync + Copy + 'static {
    /// `x` converted to the compute precision of this storage.
    type X: Copy + Send + Sync + Default + 'static;
    /// Storage units per probability: results of `dot_rows` are multiplied by it.
    const SCALE: f64 = 1.0;
    fn convert_x(x: f64) -> Self::X;
    /// The entry as a probability.
    fn to_f64(self) -> f64;
    /// `out[r] = Σ_j rows[r][j] * x[j]` for `r < R`, in the order of the module docs.
    fn dot_rows<const R: usize>(rows: [&[Self]; R], x: &[Self::X], isa: Isa) -> [f64; R];
    /// `Σ_j c[j]` (the bandwidth reference; not part of the bit-identity rule).
    fn sum(c: &[Self], isa: Isa) -> f64;
}

/// Whether the running CPU has AVX2 and FMA (detected once by std).
pub fn simd_available() -> bool {
    super::isa::Avx2::try_new().is_some()
}

/// `out = P x` for a row-major `n × n` matrix `p` (`p.len() == n * n`).
///
/// # Panics
/// If the lengths disagree (a bug in the caller, not bad input).
pub fn matvec<T: Element>(p: &[T], x: &[f64], out: &mut [f64], isa: Isa) {
    let mut xs = vec![T::X::default(); x.len()];
    matvec_with(p, x, out, isa, &mut xs);
}

/// [`matvec`] with the converted vector's buffer (length `n`) from the caller.
///
/// # Panics
/// If the lengths disagree (a bug in the caller, not bad input).
pub fn matvec_with<T: Element>(p: &[T], x: &[f64], out: &mut [f64], isa: Isa, xs: &mut [T::X]) {
    let n = x.len();
    assert_eq!(p.len(), n * n, "matrix length");
    assert_eq!(out.len(), n, "output length");
    assert_eq!(xs.len(), n, "scratch length");
    xs.iter_mut()
        .zip(x)
        .for_each(|(a, &b)| *a = T::convert_x(b));
    let xs = &*xs;
    let task = |(t, chunk): (usize, &mut [f64])| {
        let r0 = t * TASK_ROWS;
        let mut r = 0;
        while r + ROWS <= chunk.len() {
            let i = r0 + r;
            let rows: [&[T]; ROWS] = std::array::from_fn(|k| &p[(i + k) * n..(i + k + 1) * n]);
            let v = T::dot_rows::<ROWS>(rows, xs, isa);
            for k in 0..ROWS {
                chunk[r + k] = v[k] * T::SCALE;
            }
            r += ROWS;
        }
        while r < chunk.len() {
            let i = r0 + r;
            chunk[r] = T::dot_rows::<1>([&p[i * n..(i + 1) * n]], xs, isa)[0] * T::SCALE;
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

/// The scalar twin of the f32/u16 order: one row against `x`.
#[inline(always)]
fn row_scalar_f32<T: Copy>(row: &[T], x: &[f32], conv: impl Fn(T) -> f32) -> f64 {
    let n = x.len();
    assert_eq!(row.len(), n);
    let mut acc = BlockAcc::default();
    let mut start = 0;
    while start < n {
        let end = (start + BLOCK).min(n);
        block_scalar_f32(&row[start..end], &x[start..end], &conv, &mut acc);
        start = end;
    }
    acc.finish()
}

/// One column block of the f32/u16 order, scalar.
#[inline(always)]
pub(crate) fn block_scalar_f32<T: Copy>(
    row: &[T],
    x: &[f32],
    conv: &impl Fn(T) -> f32,
    acc: &mut BlockAcc,
) {
    let len = row.len();
    let mut a = [0.0f32; 16];
    let mut j = 0;
    while j + 16 <= len {
        for l in 0..16 {
            a[l] = conv(row[j + l]).mul_add(x[j + l], a[l]);
        }
        j += 16;
    }
    acc.add_lanes(&a);
    for jj in j..len {
        acc.tail += (conv(row[jj]) * x[jj]) as f64;
    }
}

/// The scalar twin of the f64 order.
#[inline(always)]
pub(crate) fn row_scalar_f64(row: &[f64], x: &[f64]) -> f64 {
    let n = x.len();
    assert_eq!(row.len(), n);
    let mut a = [0.0f64; 8];
    let mut j = 0;
    while j + 8 <= n {
        for l in 0..8 {
            a[l] = row[j + l].mul_add(x[j + l], a[l]);
        }
        j += 8;
    }
    let mut s = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
    for jj in j..n {
        s += row[jj] * x[jj];
    }
    s
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    //! AVX2 + FMA kernels: every function takes an [`Avx2`] token, so it only runs where the
    //! instructions were detected. Loads are unaligned and stay inside the slices: each loop
    //! reads `[j, j + 16)` only while `j + 16 <= end <= len`.
    use super::{BlockAcc, BLOCK};
    use crate::kernels::isa::Avx2;
    use std::arch::x86_64::*;

    /// Horizontal sum of four f64 lanes, `(a0 + a1) + (a2 + a3)`.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn hsum_pd(v: __m256d) -> f64 {
        let mut a = [0.0f64; 4];
        // SAFETY: `a` holds exactly four f64.
        unsafe { _mm256_storeu_pd(a.as_mut_ptr(), v) };
        (a[0] + a[1]) + (a[2] + a[3])
    }

    /// Widens eight f32 lanes to f64 and adds them to `acc`: `acc + (v[0..4] + v[4..8])`.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn widen_add(acc: __m256d, v: __m256) -> __m256d {
        let lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
        let hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        _mm256_add_pd(acc, _mm256_add_pd(lo, hi))
    }

    /// Adds a block's 16 lanes (`a0`: lanes 0–7, `a1`: 8–15) to `acc`, as the scalar order.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn finish_block(acc: &mut BlockAcc, a0: __m256, a1: __m256) {
        // SAFETY: `acc.tot` holds four f64.
        unsafe {
            let t = _mm256_loadu_pd(acc.tot.as_ptr());
            _mm256_storeu_pd(acc.tot.as_mut_ptr(), widen_add(t, _mm256_add_ps(a0, a1)));
        }
    }

    /// Eight f32 from `p`.
    ///
    /// # Safety
    /// `p` points to 8 readable `f32` (any alignment).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn load_f32(p: *const f32) -> __m256 {
        // SAFETY: the caller's contract.
        unsafe { _mm256_loadu_ps(p) }
    }

    /// Eight u16 from `p`, converted (exactly) to f32.
    ///
    /// # Safety
    /// `p` points to 8 readable `u16` (16 bytes, any alignment).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn load_u16(p: *const u16) -> __m256 {
        // SAFETY: the caller's contract.
        unsafe { _mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(_mm_loadu_si128(p as *const __m128i))) }
    }

    /// `Σ_j rows[r][j] x[j]` for `R` rows in the order of the module docs. `$load` reads 8
    /// entries as f32 (an `unsafe fn` whose contract the loop meets), `$conv` one.
    macro_rules! rows_kernel {
        ($name:ident, $t:ty, $load:ident, $conv:expr) => {
            #[target_feature(enable = "avx2,fma")]
            pub fn $name<const R: usize>(_: Avx2, rows: [&[$t]; R], x: &[f32]) -> [f64; R] {
                let conv = $conv;
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
                                a0[r] = _mm256_fmadd_ps($load(rp[r].add(j)), x0, a0[r]);
                                a1[r] = _mm256_fmadd_ps($load(rp[r].add(j + 8)), x1, a1[r]);
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

    rows_kernel!(f32_rows, f32, load_f32, |v: f32| v);
    rows_kernel!(u16_rows, u16, load_u16, |v: u16| v as f32);

    /// `Σ_j rows[r][j] x[j]` in f64 for `R` rows (two 4-lane accumulators per row).
    #[target_feature(enable = "avx2,fma")]
    pub fn f64_rows<const R: usize>(_: Avx2, rows: [&[f64]; R], x: &[f64]) -> [f64; R] {
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

    /// One f64 row against `K` vectors, the f64 order per vector.
    ///
    /// # Safety
    /// `row` and every `xs[v]` hold `n` readable f64.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn f64_row_batch<const K: usize>(
        row: *const f64,
        xs: [*const f64; K],
        n: usize,
        out: &mut [f64],
    ) {
        let mut a0 = [_mm256_setzero_pd(); K];
        let mut a1 = [_mm256_setzero_pd(); K];
        let mut j = 0;
        while j + 8 <= n {
            // SAFETY: j + 8 <= n (the caller's contract).
            unsafe {
                let p0 = _mm256_loadu_pd(row.add(j));
                let p1 = _mm256_loadu_pd(row.add(j + 4));
                for v in 0..K {
                    a0[v] = _mm256_fmadd_pd(p0, _mm256_loadu_pd(xs[v].add(j)), a0[v]);
                    a1[v] = _mm256_fmadd_pd(p1, _mm256_loadu_pd(xs[v].add(j + 4)), a1[v]);
                }
            }
            j += 8;
        }
        for v in 0..K {
            let mut s = hsum_pd(_mm256_add_pd(a0[v], a1[v]));
            for jj in j..n {
                // SAFETY: jj < n.
                s += unsafe { *row.add(jj) * *xs[v].add(jj) };
            }
            out[v] = s;
        }
    }

    /// One f64 row against every vector of `xs`, four at a time.
    #[target_feature(enable = "avx2,fma")]
    pub fn f64_row_all(_: Avx2, row: &[f64], xs: &[&[f64]], out: &mut [f64]) {
        let n = row.len();
        assert!(xs.iter().all(|x| x.len() == n) && out.len() == xs.len());
        let rp = row.as_ptr();
        let mut v = 0;
        while v < xs.len() {
            let k = (xs.len() - v).min(4);
            let p = |i: usize| xs[v + i.min(k - 1)].as_ptr();
            let o = &mut out[v..v + k];
            // SAFETY: row and every xs[v] hold n elements (asserted above).
            unsafe {
                match k {
                    4 => f64_row_batch::<4>(rp, [p(0), p(1), p(2), p(3)], n, o),
                    3 => f64_row_batch::<3>(rp, [p(0), p(1), p(2)], n, o),
                    2 => f64_row_batch::<2>(rp, [p(0), p(1)], n, o),
                    _ => f64_row_batch::<1>(rp, [p(0)], n, o),
                }
            }
            v += k;
        }
    }

    /// `Σ c` for f32 (four 8-lane accumulators, widened to f64 per 64 Ki elements chunk).
    #[target_feature(enable = "avx2,fma")]
    pub fn f32_sum(_: Avx2, c: &[f32]) -> f64 {
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
    pub fn f64_sum(_: Avx2, c: &[f64]) -> f64 {
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

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512 {
    //! AVX-512 kernels: each takes an [`Avx512`] token. One 16-lane register holds what the AVX2
    //! kernels hold in two 8-lane ones (lanes 0–7 and 8–15), with the same operations per lane,
    //! so the results are the AVX2 bits.
    use super::avx2::{finish_block, hsum_pd};
    use super::{BlockAcc, BLOCK};
    use crate::kernels::batch::MAX_BATCH;
    use crate::kernels::isa::{prefetch_l2, Avx512, PREFETCH_SLOW};
    use std::arch::x86_64::*;

    /// Sixteen f32 from `p`.
    ///
    /// # Safety
    /// `p` points to 16 readable `f32` (any alignment).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    pub(crate) unsafe fn load_f32(p: *const f32) -> __m512 {
        // SAFETY: the caller's contract.
        unsafe { _mm512_loadu_ps(p) }
    }

    /// Sixteen u16 from `p`, converted (exactly) to f32.
    ///
    /// # Safety
    /// `p` points to 16 readable `u16` (32 bytes, any alignment).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    pub(crate) unsafe fn load_u16(p: *const u16) -> __m512 {
        // SAFETY: the caller's contract.
        unsafe {
            _mm512_cvtepi32_ps(_mm512_cvtepu16_epi32(_mm256_loadu_si256(
                p as *const __m256i,
            )))
        }
    }

    /// The two 8-lane halves of `a`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    fn halves(a: __m512) -> (__m256, __m256) {
        (
            _mm512_castps512_ps256(a),
            _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)),
        )
    }

    macro_rules! rows_kernel {
        ($name:ident, $t:ty, $load:ident, $conv:expr) => {
            #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
            pub fn $name<const R: usize>(_: Avx512, rows: [&[$t]; R], x: &[f32]) -> [f64; R] {
                let conv = $conv;
                let n = x.len();
                for r in rows {
                    assert_eq!(r.len(), n);
                }
                let xp = x.as_ptr();
                let rp: [*const $t; R] = std::array::from_fn(|r| rows[r].as_ptr());
                let mut acc = [BlockAcc::default(); R];
                let mut start = 0;
                while start < n {
                    let end = (start + BLOCK).min(n);
                    let mut a = [_mm512_setzero_ps(); R];
                    let mut j = start;
                    while j + 16 <= end {
                        // SAFETY: j + 16 <= end <= n = len of x and of every row.
                        unsafe {
                            let x0 = _mm512_loadu_ps(xp.add(j));
                            for r in 0..R {
                                a[r] = _mm512_fmadd_ps($load(rp[r].add(j)), x0, a[r]);
                            }
                        }
                        j += 16;
                    }
                    for r in 0..R {
                        let (lo, hi) = halves(a[r]);
                        finish_block(&mut acc[r], lo, hi);
                        for jj in j..end {
                            acc[r].tail += (conv(rows[r][jj]) * x[jj]) as f64;
                        }
                    }
                    start = end;
                }
                std::array::from_fn(|r| acc[r].finish())
            }
        };
    }

    rows_kernel!(f32_rows, f32, load_f32, |v: f32| v);
    rows_kernel!(u16_rows, u16, load_u16, |v: u16| v as f32);

    /// Register-blocked batches: `R` whole rows against `K` vectors at once.
    macro_rules! grid_kernel {
        ($grid:ident, $block:ident, $all:ident, $t:ty, $load:ident, $conv:expr) => {
            /// Columns `start..end` (one summation block) of `R` rows against `K` vectors,
            /// added to `acc`: each row load serves `K` vectors and each vector load `R` rows
            /// (`R·K` accumulators in registers), and every (row, vector) sum keeps the single
            /// kernel's lanes, blocks and order, so its bits. If `pf` is given, each of its
            /// pointers is asked for (into L2) at the columns this call reads.
            ///
            /// # Safety
            /// Every `rows[r]` and `xs[v]` points to `n ≥ end` readable elements; `start` is
            /// a multiple of `BLOCK` and `end = min(start + BLOCK, n)`.
            #[inline]
            #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
            unsafe fn $block<const R: usize, const K: usize>(
                rows: [*const $t; R],
                xs: [*const f32; K],
                (start, end): (usize, usize),
                acc: &mut [[BlockAcc; MAX_BATCH]],
                v0: usize,
                pf: Option<[*const $t; R]>,
            ) {
                let conv = $conv;
                let mut a = [[_mm512_setzero_ps(); K]; R];
                let mut j = start;
                while j + 16 <= end {
                    if let Some(pf) = pf {
                        for q in pf {
                            prefetch_l2(q.wrapping_add(j));
                        }
                    }
                    // SAFETY: j + 16 <= end <= n (the caller's contract).
                    unsafe {
                        let x: [__m512; K] = std::array::from_fn(|v| _mm512_loadu_ps(xs[v].add(j)));
                        for r in 0..R {
                            let p = $load(rows[r].add(j));
                            for v in 0..K {
                                a[r][v] = _mm512_fmadd_ps(p, x[v], a[r][v]);
                            }
                        }
                    }
                    j += 16;
                }
                for r in 0..R {
                    for v in 0..K {
                        let (lo, hi) = halves(a[r][v]);
                        let acc = &mut acc[r][v0 + v];
                        finish_block(acc, lo, hi);
                        for jj in j..end {
                            // SAFETY: jj < end <= n.
                            acc.tail += unsafe { (conv(*rows[r].add(jj)) * *xs[v].add(jj)) as f64 };
                        }
                    }
                }
            }

            /// `R` whole rows against `K` vectors ([`$block`] over every column block).
            ///
            /// # Safety
            /// Every `rows[r]` and `xs[v]` points to `n` readable elements.
            #[inline]
            #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
            unsafe fn $grid<const R: usize, const K: usize>(
                rows: [*const $t; R],
                xs: [*const f32; K],
                n: usize,
                pf: Option<[*const $t; R]>,
            ) -> [[f64; K]; R] {
                let mut acc = [[BlockAcc::default(); MAX_BATCH]; R];
                let mut start = 0;
                while start < n {
                    let end = (start + BLOCK).min(n);
                    // SAFETY: the caller's contract; start is a multiple of BLOCK.
                    unsafe { $block(rows, xs, (start, end), &mut acc, 0, pf) };
                    start = end;
                }
                std::array::from_fn(|r| std::array::from_fn(|v| acc[r][v].finish()))
            }

            /// Rows `r0 .. r0 + res.len() / k` of the row-major `n × n` `p` against every
            /// vector of `xs` (`k` of them): `res[r * k + v]`, in storage units. Four rows
            /// against four vectors at a time.
            #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
            pub fn $all(_: Avx512, p: &[$t], n: usize, r0: usize, xs: &[&[f32]], res: &mut [f64]) {
                let k = xs.len();
                assert!(k > 0 && xs.iter().all(|x| x.len() == n) && res.len() % k == 0);
                let rows = res.len() / k;
                assert!((r0 + rows) * n <= p.len());
                let row = |i: usize| p[(r0 + i) * n..(r0 + i + 1) * n].as_ptr();
                let ahead = PREFETCH_SLOW / size_of::<$t>();
                macro_rules! go {
                    ($r:literal, $i:expr) => {{
                        let rp: [*const $t; $r] = std::array::from_fn(|q| row($i + q));
                        let mut v = 0;
                        while v < k {
                            let kk = (k - v).min(4);
                            // The first vector group streams the rows from memory, asking
                            // for each `ahead` further on; the others find them in cache.
                            let pf: Option<[*const $t; $r]> = if v == 0 {
                                Some(rp.map(|q| q.wrapping_add(ahead)))
                            } else {
                                None
                            };
                            let x = |q: usize| xs[v + q.min(kk - 1)].as_ptr();
                            let mut put =
                                |o: &[f64], q: usize, w: usize| res[($i + q) * k + v + w] = o[w];
                            // SAFETY: every row and vector holds n elements (asserted above).
                            unsafe {
                                match kk {
                                    4 => {
                                        for (q, o) in
                                            $grid::<$r, 4>(rp, [x(0), x(1), x(2), x(3)], n, pf)
                                                .iter()
                                                .enumerate()
                                        {
                                            (0..4).for_each(|w| put(o, q, w))
                                        }
                                    }
                                    3 => {
                                        for (q, o) in $grid::<$r, 3>(rp, [x(0), x(1), x(2)], n, pf)
                                            .iter()
                                            .enumerate()
                                        {
                                            (0..3).for_each(|w| put(o, q, w))
                                        }
                                    }
                                    2 => {
                                        for (q, o) in $grid::<$r, 2>(rp, [x(0), x(1)], n, pf)
                                            .iter()
                                            .enumerate()
                                        {
                                            (0..2).for_each(|w| put(o, q, w))
                                        }
                                    }
                                    _ => {
                                        for (q, o) in
                                            $grid::<$r, 1>(rp, [x(0)], n, pf).iter().enumerate()
                                        {
                                            put(o, q, 0)
                                        }
                                    }
                                }
                            }
                            v += kk;
                        }
                    }};
                }
                let mut i = 0;
                while i + GRID_ROWS <= rows {
                    // Eight rows, summation block by summation block: in each block, each half
                    // of the rows against each group of four vectors, so the block's rows
                    // (16 KiB) and the vectors' columns (k · 2 KiB) are reused from L1; the
                    // first vector group asks for its rows' data ahead.
                    let rp: [*const $t; GRID_ROWS] = std::array::from_fn(|q| row(i + q));
                    let mut acc = [[BlockAcc::default(); MAX_BATCH]; GRID_ROWS];
                    let mut start = 0;
                    while start < n {
                        let end = (start + BLOCK).min(n);
                        for h in 0..GRID_ROWS / 4 {
                            let sub: [*const $t; 4] = std::array::from_fn(|q| rp[4 * h + q]);
                            let acc = &mut acc[4 * h..4 * h + 4];
                            let mut v = 0;
                            while v < k {
                                let kk = (k - v).min(4);
                                let pf = (v == 0).then(|| sub.map(|q| q.wrapping_add(ahead)));
                                let x = |w: usize| xs[v + w.min(kk - 1)].as_ptr();
                                let cols = (start, end);
                                // SAFETY: every row and vector holds n elements (asserted
                                // above); start is a multiple of BLOCK, end = min(start +
                                // BLOCK, n).
                                unsafe {
                                    match kk {
                                        4 => $block::<4, 4>(
                                            sub,
                                            [x(0), x(1), x(2), x(3)],
                                            cols,
                                            acc,
                                            v,
                                            pf,
                                        ),
                                        3 => $block::<4, 3>(
                                            sub,
                                            [x(0), x(1), x(2)],
                                            cols,
                                            acc,
                                            v,
                                            pf,
                                        ),
                                        2 => $block::<4, 2>(sub, [x(0), x(1)], cols, acc, v, pf),
                                        _ => $block::<4, 1>(sub, [x(0)], cols, acc, v, pf),
                                    }
                                }
                                v += kk;
                            }
                        }
                        start = end;
                    }
                    for q in 0..GRID_ROWS {
                        for w in 0..k {
                            res[(i + q) * k + w] = acc[q][w].finish();
                        }
                    }
                    i += GRID_ROWS;
                }
                while i + 4 <= rows {
                    go!(4, i);
                    i += 4;
                }
                while i < rows {
                    go!(1, i);
                    i += 1;
                }
            }
        };
    }

    /// Rows the batched grid takes together, as two halves of four (n = 16384 f32, interleaved:
    /// a batch of 8 took 45.4–47.0 ms with 8, 47.8–48.1 with 12, 49.4 with 16, and 53.9–55.0
    /// with whole rows four at a time and no column blocks; of 16, 68.2–69.0 ms with 8 against
    /// 76.2–76.9 with whole rows).
    const GRID_ROWS: usize = 8;
    grid_kernel!(f32_grid, f32_block, f32_grid_all, f32, load_f32, |v: f32| v);
    grid_kernel!(
        u16_grid,
        u16_block,
        u16_grid_all,
        u16,
        load_u16,
        |v: u16| v as f32
    );

    /// `Σ_j rows[r][j] x[j]` in f64 for `R` rows (one 8-lane accumulator per row).
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    pub fn f64_rows<const R: usize>(_: Avx512, rows: [&[f64]; R], x: &[f64]) -> [f64; R] {
        let n = x.len();
        for r in rows {
            assert_eq!(r.len(), n);
        }
        let xp = x.as_ptr();
        let rp: [*const f64; R] = std::array::from_fn(|r| rows[r].as_ptr());
        let mut a = [_mm512_setzero_pd(); R];
        let mut j = 0;
        while j + 8 <= n {
            // SAFETY: j + 8 <= n = len of x and of every row.
            unsafe {
                let x0 = _mm512_loadu_pd(xp.add(j));
                for r in 0..R {
                    a[r] = _mm512_fmadd_pd(_mm512_loadu_pd(rp[r].add(j)), x0, a[r]);
                }
            }
            j += 8;
        }
        std::array::from_fn(|r| {
            let lo = _mm512_castpd512_pd256(a[r]);
            let hi = _mm512_extractf64x4_pd(a[r], 1);
            let mut s = hsum_pd(_mm256_add_pd(lo, hi));
            for jj in j..n {
                s += rows[r][jj] * x[jj];
            }
            s
        })
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
    fn dot_rows<const R: usize>(rows: [&[f32]; R], x: &[f32], isa: Isa) -> [f64; R] {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512(t) => {
                // SAFETY: the token `t` exists only where the CPU has the instructions.
                unsafe { avx512::f32_rows::<R>(t, rows, x) }
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2(t) => {
                // SAFETY: the token `t` exists only where the CPU has the instructions.
                unsafe { avx2::f32_rows::<R>(t, rows, x) }
            }
            _ => std::array::from_fn(|r| row_scalar_f32(rows[r], x, |v| v)),
        }
    }
    fn sum(c: &[f32], isa: Isa) -> f64 {
        #[cfg(target_arch = "x86_64")]
        if let Some(t) = isa.avx2() {
            // SAFETY: the token `t` exists only where the CPU has AVX2 and FMA.
            return unsafe { avx2::f32_sum(t, c) };
        }
        let _ = isa;
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
    fn dot_rows<const R: usize>(rows: [&[f64]; R], x: &[f64], isa: Isa) -> [f64; R] {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512(t) => {
                // SAFETY: the token `t` exists only where the CPU has the instructions.
                unsafe { avx512::f64_rows::<R>(t, rows, x) }
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2(t) => {
                // SAFETY: the token `t` exists only where the CPU has the instructions.
                unsafe { avx2::f64_rows::<R>(t, rows, x) }
            }
            _ => std::array::from_fn(|r| row_scalar_f64(rows[r], x)),
        }
    }
    fn sum(c: &[f64], isa: Isa) -> f64 {
        #[cfg(target_arch = "x86_64")]
        if let Some(t) = isa.avx2() {
            // SAFETY: the token `t` exists only where the CPU has AVX2 and FMA.
            return unsafe { avx2::f64_sum(t, c) };
        }
        let _ = isa;
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
    fn dot_rows<const R: usize>(rows: [&[u16]; R], x: &[f32], isa: Isa) -> [f64; R] {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512(t) => {
                // SAFETY: the token `t` exists only where the CPU has the instructions.
                unsafe { avx512::u16_rows::<R>(t, rows, x) }
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2(t) => {
                // SAFETY: the token `t` exists only where the CPU has the instructions.
                unsafe { avx2::u16_rows::<R>(t, rows, x) }
            }
            _ => std::array::from_fn(|r| row_scalar_f32(rows[r], x, |q| q as f32)),
        }
    }
    fn sum(c: &[u16], _isa: Isa) -> f64 {
        c.iter().map(|&q| q as f64).sum()
    }
}

/// The memory-read reference: a parallel sum of every element of `p` in fixed chunks, with the
/// same SIMD dispatch as the matvec. A matvec cannot read its matrix faster than this reads the
/// same bytes; benchmarks quote the matvec's bandwidth as a fraction of it.
pub fn plain_sum<T: Element>(p: &[T], isa: Isa) -> f64 {
    p.par_chunks(1 << 16).map(|c| T::sum(c, isa)).sum()
}

#[inline(always)]
fn sum_generic<T: Copy + Into<f64> + std::ops::Add<Output = T> + Default, const L: usize>(
    c: &[T],
) -> f64 {
    let mut acc = [T::default(); L];
    let mut chunks = c.chunks_exact(L);
    for ch in &mut chunks {
        for l in 0..L {
            acc[l] = acc[l] + ch[l];
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

    fn bits(v: &[f64]) -> Vec<u64> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Every instruction set gives the scalar twin's bits, and the result is `P x`.
    #[test]
    fn every_isa_gives_the_same_bits_and_p_x() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        for n in [1usize, 3, 5, 15, 16, 17, 100, 513, 1100] {
            let p: Vec<f64> = (0..n * n).map(|_| rng.random::<f64>()).collect();
            let x: Vec<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
            let want = naive(&p, &x);
            let p32: Vec<f32> = p.iter().map(|&v| v as f32).collect();
            let q: Vec<u16> = p.iter().map(|&v| (v * 65534.0).round() as u16).collect();
            let run = |isa: Isa| {
                let mut o = [vec![0.0; n], vec![0.0; n], vec![0.0; n]];
                matvec(&p, &x, &mut o[0], isa);
                matvec(&p32, &x, &mut o[1], isa);
                matvec(&q, &x, &mut o[2], isa);
                o
            };
            let scalar = run(Isa::Scalar);
            for i in 0..n {
                assert!(
                    (scalar[0][i] - want[i]).abs() <= 1e-12 * n as f64,
                    "f64 n={n}"
                );
                assert!(
                    (scalar[1][i] - want[i]).abs() <= 1e-6 * want[i].max(1.0),
                    "f32 n={n}"
                );
                assert!(
                    (scalar[2][i] - want[i]).abs() <= 2e-5 * want[i].max(1.0),
                    "u16 n={n}"
                );
            }
            for isa in Isa::available() {
                let got = run(isa);
                for t in 0..3 {
                    assert_eq!(
                        bits(&got[t]),
                        bits(&scalar[t]),
                        "{} n={n} type {t}",
                        isa.name()
                    );
                }
            }
        }
    }
}
