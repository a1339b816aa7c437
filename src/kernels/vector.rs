//! Vector building blocks in `f64` log space, parallel with thread-count-independent results:
//! every reduction sums fixed chunks of [`CHUNK`] entries and combines the chunk results in
//! index order.

use rayon::prelude::*;

/// Entries per reduction chunk (fixed: results never depend on the thread count).
pub const CHUNK: usize = 1 << 14;

/// Below this length everything runs sequentially (same chunking, same result).
pub(crate) const PAR_MIN: usize = 1 << 16;

/// `Σ_i f(i)` over `0..n`, summed per fixed chunk, chunks combined in order.
pub fn sum_by(n: usize, f: impl Fn(usize) -> f64 + Sync) -> f64 {
    let chunk_sum = |c: usize| {
        let lo = c * CHUNK;
        let hi = (lo + CHUNK).min(n);
        (lo..hi).map(&f).sum::<f64>()
    };
    let chunks = n.div_ceil(CHUNK);
    if n < PAR_MIN {
        (0..chunks).map(chunk_sum).sum()
    } else {
        let parts: Vec<f64> = (0..chunks).into_par_iter().map(chunk_sum).collect();
        parts.iter().sum()
    }
}

/// Several sums at once: `add(i, acc)` adds entry `i`'s terms into `acc` (length `m`); chunks
/// of [`CHUNK`] entries are summed separately and combined in order.
pub fn sums_by(n: usize, m: usize, add: impl Fn(usize, &mut [f64]) + Sync) -> Vec<f64> {
    sums_by_chunk(n, m, |lo, hi, acc| {
        for i in lo..hi {
            add(i, acc);
        }
    })
}

/// As [`sums_by`], but `add(lo, hi, acc)` adds the terms of the whole chunk `lo..hi` (so it
/// can work on slices).
pub fn sums_by_chunk(
    n: usize,
    m: usize,
    add: impl Fn(usize, usize, &mut [f64]) + Sync,
) -> Vec<f64> {
    let mut parts = vec![0.0; n.div_ceil(CHUNK) * m];
    let mut total = vec![0.0; m];
    sums_by_chunk_in(n, m, add, &mut parts, &mut total);
    total
}

/// [`sums_by_chunk`] into `total` (length `m`), the per-chunk sums in `parts` (length
/// `⌈n / CHUNK⌉ · m`): the same bits, no allocation.
///
/// # Panics
/// If the lengths disagree.
pub fn sums_by_chunk_in(
    n: usize,
    m: usize,
    add: impl Fn(usize, usize, &mut [f64]) + Sync,
    parts: &mut [f64],
    total: &mut [f64],
) {
    let chunks = n.div_ceil(CHUNK);
    assert_eq!(parts.len(), chunks * m, "parts length");
    assert_eq!(total.len(), m, "total length");
    let chunk = |(c, acc): (usize, &mut [f64])| {
        acc.fill(0.0);
        add(c * CHUNK, ((c + 1) * CHUNK).min(n), acc);
    };
    if m > 0 {
        if n < PAR_MIN {
            parts.chunks_mut(m).enumerate().for_each(chunk);
        } else {
            parts.par_chunks_mut(m).enumerate().for_each(chunk);
        }
    }
    total.fill(0.0);
    if m > 0 {
        for p in parts.chunks(m) {
            for (t, v) in total.iter_mut().zip(p) {
                *t += v;
            }
        }
    }
}

/// `max_i f(i)` (`-inf` for `n = 0`). Order-independent, hence deterministic.
pub fn max_by(n: usize, f: impl Fn(usize) -> f64 + Sync + Send) -> f64 {
    if n < PAR_MIN {
        (0..n).map(f).fold(f64::NEG_INFINITY, f64::max)
    } else {
        (0..n)
            .into_par_iter()
            .map(f)
            .reduce(|| f64::NEG_INFINITY, f64::max)
    }
}

/// `min_i f(i)`.
pub fn min_by(n: usize, f: impl Fn(usize) -> f64 + Sync + Send) -> f64 {
    -max_by(n, |i| -f(i))
}

/// `log Σ_i exp(f(i))`, stable (max subtraction).
pub fn logsumexp_by(n: usize, f: impl Fn(usize) -> f64 + Sync + Send) -> f64 {
    let m = max_by(n, &f);
    if !m.is_finite() {
        return m;
    }
    m + sum_by(n, |i| (f(i) - m).exp()).ln()
}

pub fn logsumexp(x: &[f64]) -> f64 {
    logsumexp_by(x.len(), |i| x[i])
}

/// `out[i] = f(i)` in parallel.
pub fn fill(out: &mut [f64], f: impl Fn(usize) -> f64 + Sync + Send) {
    if out.len() < PAR_MIN {
        out.iter_mut().enumerate().for_each(|(i, o)| *o = f(i));
    } else {
        out.par_iter_mut().enumerate().for_each(|(i, o)| *o = f(i));
    }
}

/// Subtracts the log-normaliser: afterwards `logsumexp(x) = 0`.
///
/// Computed as `(x_i − max) − log Σ exp(x_j − max)`: the first difference is exact near the
/// maximum (Sterbenz), so the result is normalised to the precision of small numbers even when
/// the entries are large.
pub fn normalise(x: &mut [f64]) {
    let n = x.len();
    let m = max_by(n, |i| x[i]);
    if !m.is_finite() {
        return;
    }
    let s = sum_exp_shifted(x, m).ln();
    if n < PAR_MIN {
        x.iter_mut().for_each(|v| *v = (*v - m) - s);
    } else {
        x.par_iter_mut().for_each(|v| *v = (*v - m) - s);
    }
}

/// `out[i] = f(i)`, returning `max_i out[i]` (as [`max_by`] would): one pass instead of two.
pub fn fill_max(out: &mut [f64], f: impl Fn(usize) -> f64 + Sync + Send) -> f64 {
    let part = |(c, o): (usize, &mut [f64])| {
        let lo = c * CHUNK;
        for (k, v) in o.iter_mut().enumerate() {
            *v = f(lo + k);
        }
        max_lanes(o)
    };
    if out.len() < PAR_MIN {
        out.chunks_mut(CHUNK)
            .enumerate()
            .map(part)
            .fold(f64::NEG_INFINITY, f64::max)
    } else {
        out.par_chunks_mut(CHUNK)
            .enumerate()
            .map(part)
            .reduce(|| f64::NEG_INFINITY, f64::max)
    }
}

/// `max_i x[i]` (NaN entries ignored, `−∞` if empty) in 8 independent running maxima, so the
/// loop is not one serial chain of `max` (a maximum does not depend on the order it is taken
/// in; the parallel reductions above combine theirs in any order too).
fn max_lanes(x: &[f64]) -> f64 {
    let mut m = [f64::NEG_INFINITY; 8];
    let chunks = x.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..8 {
            m[l] = m[l].max(c[l]);
        }
    }
    tail.iter()
        .chain(&m)
        .fold(f64::NEG_INFINITY, |a, &b| a.max(b))
}

/// [`normalise`] of a vector whose maximum `m` is known, also writing `pi = exp(x)` of the
/// result in the same pass when given: the bits of `normalise` then [`exp_into`].
pub fn normalise_with_max(x: &mut [f64], m: f64, pi: Option<&mut [f64]>) {
    if !m.is_finite() {
        if let Some(pi) = pi {
            exp_into(x, pi);
        }
        return;
    }
    let s = sum_exp_shifted(x, m).ln();
    match pi {
        None => {
            if x.len() < PAR_MIN {
                x.iter_mut().for_each(|v| *v = (*v - m) - s);
            } else {
                x.par_iter_mut().for_each(|v| *v = (*v - m) - s);
            }
        }
        Some(pi) => {
            assert_eq!(pi.len(), x.len());
            let part = |(xc, pc): (&mut [f64], &mut [f64])| super::exp::shift_exp(xc, m, s, pc);
            if x.len() < PAR_MIN {
                x.chunks_mut(CHUNK).zip(pi.chunks_mut(CHUNK)).for_each(part);
            } else {
                x.par_chunks_mut(CHUNK)
                    .zip(pi.par_chunks_mut(CHUNK))
                    .for_each(part);
            }
        }
    }
}

/// `out[i] = exp(theta[i])` ([`super::exp`]).
pub fn exp_into(theta: &[f64], out: &mut [f64]) {
    assert_eq!(theta.len(), out.len());
    if out.len() < PAR_MIN {
        super::exp::exp_slice(theta, out);
    } else {
        out.par_chunks_mut(CHUNK)
            .zip(theta.par_chunks(CHUNK))
            .for_each(|(o, t)| super::exp::exp_slice(t, o));
    }
}

/// `Σ_i exp(x_i − shift)` ([`super::exp`]), per fixed chunk, chunks combined in order.
pub fn sum_exp_shifted(x: &[f64], shift: f64) -> f64 {
    let part = |c: &[f64]| super::exp::sum_exp_shifted(c, shift);
    if x.len() < PAR_MIN {
        x.chunks(CHUNK).map(part).sum()
    } else {
        let parts: Vec<f64> = x.par_chunks(CHUNK).map(part).collect();
        parts.iter().sum()
    }
}

/// `max_i d(i) − min_i d(i)`.
pub fn span_by(n: usize, d: impl Fn(usize) -> f64 + Sync + Send) -> f64 {
    max_by(n, &d) - min_by(n, &d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logsumexp_is_stable() {
        assert!((logsumexp(&[1000.0, 1000.0]) - (1000.0 + 2f64.ln())).abs() < 1e-12);
        assert_eq!(logsumexp(&[]), f64::NEG_INFINITY);
        let mut v = vec![-800.0, -801.0, -1e308];
        normalise(&mut v);
        assert!(logsumexp(&v).abs() < 1e-15, "{}", logsumexp(&v));
    }

    /// The fused passes give the bits of the separate ones.
    #[test]
    fn fused_passes_are_the_separate_bits() {
        for n in [5usize, PAR_MIN + 3 * CHUNK + 17] {
            let f = |i: usize| ((i * 7919) % 1013) as f64 * 0.37 - 200.0;
            let mut a = vec![0.0; n];
            fill(&mut a, f);
            let ma = max_by(n, |i| a[i]);
            normalise(&mut a);
            let mut pa = vec![0.0; n];
            exp_into(&a, &mut pa);
            let mut b = vec![0.0; n];
            let mb = fill_max(&mut b, f);
            assert_eq!(ma.to_bits(), mb.to_bits());
            let mut pb = vec![0.0; n];
            normalise_with_max(&mut b, mb, Some(&mut pb));
            assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()));
            assert!(pa.iter().zip(&pb).all(|(p, q)| p.to_bits() == q.to_bits()));
            let mut c = vec![0.0; n];
            let mc = fill_max(&mut c, f);
            normalise_with_max(&mut c, mc, None);
            assert!(a.iter().zip(&c).all(|(p, q)| p.to_bits() == q.to_bits()));
        }
    }

    #[test]
    fn sum_is_chunk_deterministic() {
        let n = PAR_MIN + 3 * CHUNK + 17;
        let a = sum_by(n, |i| 1.0 / (1.0 + i as f64));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let b = pool.install(|| sum_by(n, |i| 1.0 / (1.0 + i as f64)));
        assert_eq!(a.to_bits(), b.to_bits());
    }

    /// The lane-wise maximum is the sequential one, NaN entries ignored, for every tail length.
    #[test]
    fn max_lanes_is_the_sequential_maximum() {
        for len in 0..40 {
            let mut x: Vec<f64> = (0..len)
                .map(|i| ((i * 37 % 23) as f64).sin() * 5.0)
                .collect();
            if len > 3 {
                x[len / 2] = f64::NAN;
            }
            let want = x.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
            assert_eq!(max_lanes(&x).to_bits(), want.to_bits(), "length {len}");
        }
        assert_eq!(max_lanes(&[f64::NAN; 9]), f64::NEG_INFINITY);
    }
}
