//! Batched dense products: `out_v = P x_v` for several vectors in one pass over `P`.
//!
//! Each matrix value is loaded (and, for `u16`, converted) once and multiplied into every
//! vector's accumulators, so the matrix is read from memory once instead of `k` times. Every
//! vector keeps the lanes and the summation order of the single apply
//! ([`super::matvec`]), so its product is the single apply's, **bit for bit**, whatever the
//! batch, its size, the vector's position in it, the thread count or the instruction set: a
//! caller never has to pad a batch to keep results stable.
//!
//! Loop order (f32, u16): tasks of [`TASK_ROWS`] rows. With AVX-512, groups of eight rows taken
//! summation block by summation block (512 columns): in each block, each half of four rows
//! against four vectors at a time, sixteen accumulators in registers (each row load serves four
//! vectors, each vector load four rows), accumulated in place, so the block's rows and the
//! vectors' columns are reused from L1; the first vector group asks for its rows' data
//! [`super::isa::PREFETCH_SLOW`] bytes ahead. With AVX2 (16 registers) and the scalar twin,
//! groups of four whole rows against one vector at a time with the single kernel, the group's
//! rows coming from cache after the first vector. `f64` games take whole rows against up to four
//! vectors at a time.
//!
//! Measured (`nashmp bench u16k.npy --vectors K`, n = 16384 f32, interleaved, 2026-12-03):
//! - whole rows four at a time, each vector group re-reading the rows and vectors from L2:
//!   a batch of 8 at 4.70–4.78× the throughput of 8 single applies, of 16 7.00–7.18×; asking
//!   8 KiB ahead took the batch of 8 from 52.6–53.6 to 49.4–50.4 ms, and asking, from the
//!   second vector group, for the next group's rows made it slower (59.3 ms);
//! - this order: 5.94–6.05× and 7.86–7.98×; with the vectors 64-byte aligned and 2 KiB ahead,
//!   6.56–6.65× and 9.04–9.50× (three runs). Twelve or sixteen rows, or two summation blocks at
//!   a time, measured slower (batch of 8 47.8–49.4 and 53.9–54.6 ms against 45.4–47.0);
//! - earlier orders: column blocks of 512 outside and 64 rows inside read the matrix as 64
//!   interleaved 2 KiB streams, at half the single kernel's bandwidth (a batch of 2 cost more
//!   than two single applies); column blocks inside each four-row group (accumulators copied,
//!   no prefetch, vectors unaligned) measured no faster than whole rows (k = 16 168–175 ms
//!   against 140–160 ms).

use super::isa::SIMD_ALIGN;
use super::matvec::{self, row_scalar_f64, Element, Isa, PAR_MIN_ELEMS};
use faer::dyn_stack::{MemBuffer, MemStack, StackReq};
use rayon::prelude::*;

/// Most vectors per pass (more are split into passes of this many; the bits are the same).
pub const MAX_BATCH: usize = 16;
/// Rows per parallel task.
const TASK_ROWS: usize = 64;

/// A matrix element type the batched kernel reads.
pub trait BatchElem: Element {
    /// One task: rows `r0 .. r0 + rows` against every vector, `res[r * k + v]` in storage units.
    fn task(p: &[Self], n: usize, r0: usize, xs: &[&[Self::X]], res: &mut [f64], isa: Isa);
}

/// `outs[v] = P xs[v]` for a row-major `n × n` `p`; each `outs[v]` is the bits of
/// [`matvec::matvec`] on `xs[v]`.
///
/// # Panics
/// If lengths disagree.
pub fn matvec_batch<T: BatchElem>(p: &[T], xs: &[&[f64]], outs: &mut [&mut [f64]], isa: Isa) {
    let n = xs.first().map_or(0, |x| x.len());
    let mut buf = MemBuffer::new(matvec_batch_scratch::<T>(n, xs.len()));
    matvec_batch_in(p, xs, outs, isa, MemStack::new(&mut buf));
}

/// Distance between the converted vectors in the batch buffer, in elements of `X`: `stride`
/// bytes are 2 KiB + 64 more than a multiple of 4 KiB, so the vectors' entries `j` fall in
/// different L1 sets (separate allocations of `n·4` bytes, 4 KiB-aligned for large `n`, put
/// all `k` of them in one set).
fn stride<X>(n: usize) -> usize {
    let size = std::mem::size_of::<X>();
    ((n * size).div_ceil(4096) * 4096 + 2048 + 64) / size
}

/// The workspace of [`matvec_batch_in`] for `k` vectors of length `n`.
pub fn matvec_batch_scratch<T: BatchElem>(n: usize, k: usize) -> StackReq {
    if k <= 1 {
        return StackReq::new_aligned::<T::X>(n, SIMD_ALIGN);
    }
    let k = k.min(MAX_BATCH);
    StackReq::all_of(&[
        StackReq::new_aligned::<T::X>(stride::<T::X>(n) * k, SIMD_ALIGN),
        StackReq::new::<&[T::X]>(k),
        StackReq::new::<f64>(n * k),
    ])
}

/// [`matvec_batch`] with its workspace ([`matvec_batch_scratch`]) from `stack`.
///
/// # Panics
/// If lengths disagree or `stack` is too small.
pub fn matvec_batch_in<T: BatchElem>(
    p: &[T],
    xs: &[&[f64]],
    outs: &mut [&mut [f64]],
    isa: Isa,
    stack: &mut MemStack,
) {
    assert_eq!(outs.len(), xs.len());
    if xs.len() == 1 {
        // The single kernel (four rows per vector load) is the faster way to the same bits.
        let (mut xc, _) = stack.make_aligned_with(xs[0].len(), SIMD_ALIGN, |_| T::X::default());
        return matvec::matvec_with(p, xs[0], outs[0], isa, &mut xc);
    }
    for (xc, oc) in xs.chunks(MAX_BATCH).zip(outs.chunks_mut(MAX_BATCH)) {
        run(p, xc, oc, isa, stack);
    }
}

fn run<T: BatchElem>(
    p: &[T],
    xs: &[&[f64]],
    outs: &mut [&mut [f64]],
    isa: Isa,
    stack: &mut MemStack,
) {
    let k = xs.len();
    if k == 0 {
        return;
    }
    let n = xs[0].len();
    assert_eq!(p.len(), n * n);
    assert!(xs.iter().all(|x| x.len() == n) && outs.iter().all(|o| o.len() == n));
    // The converted vectors in one buffer, `stride` apart (see [`stride`]).
    let stride = stride::<T::X>(n);
    let (mut xc, stack) = stack.make_aligned_with(stride * k, SIMD_ALIGN, |_| T::X::default());
    for (x, c) in xs.iter().zip(xc.chunks_mut(stride)) {
        c[..n]
            .iter_mut()
            .zip(x.iter())
            .for_each(|(a, &b)| *a = T::convert_x(b));
    }
    let (xr, stack) = stack.collect(xc.chunks(stride).map(|v| &v[..n]));
    assert_eq!(xr.len(), k, "scratch too small");
    let xr = &*xr;
    // Row-major results, k per row, then scattered to the outputs.
    let (mut res, _) = stack.make_with(n * k, |_| 0.0f64);
    let task = |(t, chunk): (usize, &mut [f64])| T::task(p, n, t * TASK_ROWS, xr, chunk, isa);
    if p.len() < PAR_MIN_ELEMS {
        res.chunks_mut(TASK_ROWS * k).enumerate().for_each(task);
    } else {
        res.par_chunks_mut(TASK_ROWS * k).enumerate().for_each(task);
    }
    let res = &*res;
    let scatter = |(v, out): (usize, &mut &mut [f64])| {
        for (i, o) in out.iter_mut().enumerate() {
            *o = res[i * k + v] * T::SCALE;
        }
    };
    if p.len() < PAR_MIN_ELEMS {
        outs.iter_mut().enumerate().for_each(scatter);
    } else {
        outs.par_iter_mut().enumerate().for_each(scatter);
    }
}

/// Rows four at a time, each group against every vector with the single kernel: the group's
/// rows come from memory once (for the first vector) and from cache for the others. The AVX2
/// and scalar path (AVX2 has too few registers for a useful row × vector grid).
#[inline(always)]
fn rows4_task<T: Element<X = f32>>(
    p: &[T],
    n: usize,
    r0: usize,
    xs: &[&[f32]],
    res: &mut [f64],
    isa: Isa,
) {
    let k = xs.len();
    let rows = res.len() / k;
    let mut r = 0;
    while r + 4 <= rows {
        let i = r0 + r;
        let g: [&[T]; 4] = std::array::from_fn(|q| &p[(i + q) * n..(i + q + 1) * n]);
        for (v, x) in xs.iter().enumerate() {
            let o = T::dot_rows::<4>(g, x, isa);
            for q in 0..4 {
                res[(r + q) * k + v] = o[q];
            }
        }
        r += 4;
    }
    while r < rows {
        let i = r0 + r;
        for (v, x) in xs.iter().enumerate() {
            res[r * k + v] = T::dot_rows::<1>([&p[i * n..(i + 1) * n]], x, isa)[0];
        }
        r += 1;
    }
}

macro_rules! rows_impl {
    ($t:ty, $grid:ident) => {
        impl BatchElem for $t {
            fn task(p: &[$t], n: usize, r0: usize, xs: &[&[f32]], res: &mut [f64], isa: Isa) {
                match isa {
                    // Four rows against four vectors in 16 registers of 16 lanes.
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512(t) => {
                        // SAFETY: the token `t` exists only where the CPU has the instructions.
                        unsafe { matvec::avx512::$grid(t, p, n, r0, xs, res) }
                    }
                    _ => rows4_task(p, n, r0, xs, res, isa),
                }
            }
        }
    };
}
rows_impl!(f32, f32_grid_all);
rows_impl!(u16, u16_grid_all);

impl BatchElem for f64 {
    fn task(p: &[f64], n: usize, r0: usize, xs: &[&[f64]], res: &mut [f64], isa: Isa) {
        let k = xs.len();
        for (r, o) in res.chunks_mut(k).enumerate() {
            let i = r0 + r;
            let row = &p[i * n..(i + 1) * n];
            match isa.avx2() {
                // The AVX-512 f64 row kernel gives the AVX2 bits; AVX2 serves both here.
                #[cfg(target_arch = "x86_64")]
                Some(t) => {
                    // SAFETY: the token `t` exists only where the CPU has the instructions.
                    unsafe { matvec::avx2::f64_row_all(t, row, xs, o) }
                }
                _ => {
                    for (x, out) in xs.iter().zip(o.iter_mut()) {
                        *out = row_scalar_f64(row, x);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vectors(n: usize, k: usize, seed: u64) -> Vec<Vec<f64>> {
        (0..k)
            .map(|v| {
                (0..n)
                    .map(|j| crate::gen::unit(seed, j as u64, v as u64))
                    .collect()
            })
            .collect()
    }

    /// Every vector of a batch gets the bits of its single apply, for every element type and
    /// instruction set.
    fn check<T: BatchElem>(p: &[T], n: usize, k: usize) -> Result<(), TestCaseError> {
        let xs = vectors(n, k, 2);
        let xr: Vec<&[f64]> = xs.iter().map(|v| &v[..]).collect();
        let mut single = vec![vec![0.0; n]; k];
        for (x, o) in xs.iter().zip(single.iter_mut()) {
            matvec::matvec(p, x, o, Isa::Scalar);
        }
        for isa in Isa::available() {
            let mut outs = vec![vec![0.0; n]; k];
            let mut or: Vec<&mut [f64]> = outs.iter_mut().map(|v| &mut v[..]).collect();
            matvec_batch(p, &xr, &mut or, isa);
            for v in 0..k {
                let a: Vec<u64> = outs[v].iter().map(|x| x.to_bits()).collect();
                let b: Vec<u64> = single[v].iter().map(|x| x.to_bits()).collect();
                prop_assert_eq!(a, b, "{} n={} k={} v={}", isa.name(), n, k, v);
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn batch_is_single_bit_for_bit(n in 1usize..1100, k in 1usize..=20) {
            let p: Vec<f64> = (0..n * n)
                .map(|i| crate::gen::unit(1, i as u64, 0))
                .collect();
            let p32: Vec<f32> = p.iter().map(|&v| v as f32).collect();
            let q: Vec<u16> = p.iter().map(|&v| (v * 65534.0) as u16).collect();
            check(&p, n, k)?;
            check(&p32, n, k)?;
            check(&q, n, k)?;
        }
    }

    /// The parallel path (more than `PAR_MIN_ELEMS` entries) gives the same bits.
    #[test]
    fn large_batch_is_single_bit_for_bit() {
        let n = 700;
        let p: Vec<f32> = (0..n * n)
            .map(|i| crate::gen::unit(4, i as u64, 0) as f32)
            .collect();
        check(&p, n, 11).unwrap();
    }
}
