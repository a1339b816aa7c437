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

/// The log-normaliser of `x` as `(m, ln S)`, `m = max_i x_i` and `S = Σ_i exp(x_i − m)`,
/// from per-chunk parts: chunk `c` (of [`CHUNK`] entries) gives its maximum `m_c` and
/// `s_c = Σ_{i∈c} exp(x_i − m_c)`, and `S = Σ_c s_c · exp(m_c − m)` in chunk order. A chunk's
/// part needs only the chunk, so [`fill_lse_chunks`] takes it while the chunk is in cache.
/// `(−∞, −∞)` if every entry is `−∞` (or `x` is empty).
pub fn lse_parts(x: &[f64]) -> (f64, f64) {
    let part = |c: &[f64]| chunk_part(c);
    let parts: Vec<(f64, f64)> = if x.len() < PAR_MIN {
        x.chunks(CHUNK).map(part).collect()
    } else {
        x.par_chunks(CHUNK).map(part).collect()
    };
    combine_parts(&parts)
}

/// One chunk's `(m_c, s_c)` ([`lse_parts`]); `(−∞, 0)` if it holds no finite maximum.
#[inline]
fn chunk_part(c: &[f64]) -> (f64, f64) {
    let m = max_lanes(c);
    if m.is_finite() {
        (m, super::exp::sum_exp_shifted(c, m))
    } else {
        (m, 0.0)
    }
}

/// `(m, ln S)` from the chunks' parts, in chunk order ([`lse_parts`]).
fn combine_parts(parts: &[(f64, f64)]) -> (f64, f64) {
    let m = parts
        .iter()
        .fold(f64::NEG_INFINITY, |a, &(mc, _)| a.max(mc));
    if !m.is_finite() {
        return (m, m);
    }
    let s: f64 = parts
        .iter()
        .filter(|(mc, _)| mc.is_finite())
        .map(|&(mc, sc)| sc * super::exp::exp(mc - m))
        .sum();
    (m, s.ln())
}

/// Subtracts the log-normaliser ([`lse_parts`]): afterwards `logsumexp(x) = 0`.
///
/// Computed as `(x_i − m) − ln S`: the first difference is exact near the maximum (Sterbenz),
/// so the result is normalised to the precision of small numbers even when the entries are
/// large.
pub fn normalise(x: &mut [f64]) {
    let (m, ls) = lse_parts(x);
    shift(x, m, ls, Shifted::Theta);
}

/// Fills `out` a chunk at a time (`fill(lo, chunk)` writes entries `lo .. lo + chunk.len()`),
/// returning `(m, ln S)` of `out` as [`lse_parts`] would: one pass over memory instead of
/// three (each chunk's maximum and exponential sum are taken while the chunk is in cache).
pub fn fill_lse_chunks(
    out: &mut [f64],
    fill: impl Fn(usize, &mut [f64]) + Sync + Send,
) -> (f64, f64) {
    let part = |(c, o): (usize, &mut [f64])| {
        fill(c * CHUNK, o);
        chunk_part(o)
    };
    let parts: Vec<(f64, f64)> = if out.len() < PAR_MIN {
        out.chunks_mut(CHUNK).enumerate().map(part).collect()
    } else {
        out.par_chunks_mut(CHUNK).enumerate().map(part).collect()
    };
    combine_parts(&parts)
}

/// Values over `0..n` chunk by chunk without storing them: each chunk of [`CHUNK`] values is
/// written into a buffer by `fill(lo, chunk)`, its maximum `m_c` taken, then `visit(lo, values, m_c, part)` runs
/// on it (it may overwrite the buffer) with the chunk's `parts_len` values (zeros before).
/// Returns the chunk maxima and the parts, in chunk order: what a pass needs that wants only
/// sums of the values' exponentials (e.g. class masses of the policy `f` defines), not the
/// values. The chunks do not depend on the thread count.
pub fn chunk_visit(
    n: usize,
    fill: impl Fn(usize, &mut [f64]) + Sync + Send,
    parts_len: usize,
    visit: impl Fn(usize, &mut [f64], f64, &mut [f64]) + Sync + Send,
) -> (Vec<f64>, Vec<f64>) {
    let one = |buf: &mut Vec<f64>, c: usize| {
        let (lo, hi) = (c * CHUNK, ((c + 1) * CHUNK).min(n));
        let b = &mut buf[..hi - lo];
        fill(lo, b);
        let m = max_lanes(b);
        let mut part = vec![0.0; parts_len];
        visit(lo, b, m, &mut part);
        (m, part)
    };
    let chunks = n.div_ceil(CHUNK);
    let done: Vec<(f64, Vec<f64>)> = if n < PAR_MIN {
        let mut buf = vec![0.0; CHUNK.min(n)];
        (0..chunks).map(|c| one(&mut buf, c)).collect()
    } else {
        (0..chunks)
            .into_par_iter()
            .map_init(|| vec![0.0; CHUNK], one)
            .collect()
    };
    let maxima = done.iter().map(|d| d.0).collect();
    let parts = done.into_iter().flat_map(|d| d.1).collect();
    (maxima, parts)
}

/// What [`shift`] writes.
pub enum Shifted<'a> {
    /// `x ← (x − m) − ln S`.
    Theta,
    /// That, and `pi = exp` of it, in the same pass.
    ThetaAndPi(&'a mut [f64]),
    /// `x ← exp((x − m) − ln S)`: the policy over its own unnormalised log (no second vector).
    ExpInPlace,
}

/// Normalises by a known `(m, ln S)` ([`lse_parts`], [`fill_lse_chunks`]); with a `pi`, also
/// writes the exponential of the result (the bits of [`exp_into`] on it). If `m` is not
/// finite, `x` is left as it is and the policy is `exp(x)`.
pub fn shift(x: &mut [f64], m: f64, ls: f64, to: Shifted) {
    shift_visit(x, m, ls, to, 0, |_, _, _| {});
}

/// [`shift`], then `visit(lo, chunk, part)` on each chunk of [`CHUNK`] entries of what it
/// wrote last (`pi` for [`Shifted::ThetaAndPi`], else `x`) while the chunk is in cache;
/// `part` is that chunk's `parts_len` values (zeros before the visit). Returns the parts,
/// chunk after chunk (`⌈n / CHUNK⌉ · parts_len` values).
pub fn shift_visit(
    x: &mut [f64],
    m: f64,
    ls: f64,
    to: Shifted,
    parts_len: usize,
    visit: impl Fn(usize, &[f64], &mut [f64]) + Sync,
) -> Vec<f64> {
    let n = x.len();
    // Without a finite maximum the shift is the identity ((x − 0) − 0 = x, bit for bit).
    let (m, ls) = if m.is_finite() { (m, ls) } else { (0.0, 0.0) };
    // One slot per chunk even when nothing is collected (chunks_mut needs a length ≥ 1).
    let width = parts_len.max(1);
    let mut parts = vec![0.0; n.div_ceil(CHUNK) * width];
    let par = n >= PAR_MIN;
    match to {
        Shifted::ThetaAndPi(pi) => {
            assert_eq!(pi.len(), n);
            type Pair<'c> = (&'c mut [f64], &'c mut [f64]);
            let one = |(c, ((xc, pc), part)): (usize, (Pair, &mut [f64]))| {
                super::exp::shift_exp(xc, m, ls, pc);
                visit(c * CHUNK, pc, &mut part[..parts_len]);
            };
            if par {
                x.par_chunks_mut(CHUNK)
                    .zip(pi.par_chunks_mut(CHUNK))
                    .zip(parts.par_chunks_mut(width))
                    .enumerate()
                    .for_each(one);
            } else {
                x.chunks_mut(CHUNK)
                    .zip(pi.chunks_mut(CHUNK))
                    .zip(parts.chunks_mut(width))
                    .enumerate()
                    .for_each(one);
            }
        }
        to => {
            let exp = matches!(to, Shifted::ExpInPlace);
            let one = |(c, (xc, part)): (usize, (&mut [f64], &mut [f64]))| {
                if exp {
                    super::exp::shifted_exp_in_place(xc, m, ls);
                } else {
                    xc.iter_mut().for_each(|v| *v = (*v - m) - ls);
                }
                visit(c * CHUNK, xc, &mut part[..parts_len]);
            };
            if par {
                x.par_chunks_mut(CHUNK)
                    .zip(parts.par_chunks_mut(width))
                    .enumerate()
                    .for_each(one);
            } else {
                x.chunks_mut(CHUNK)
                    .zip(parts.chunks_mut(width))
                    .enumerate()
                    .for_each(one);
            }
        }
    }
    if parts_len == 0 {
        parts.clear();
    }
    parts
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

    /// The fused passes give the bits of the separate ones, for every output.
    #[test]
    fn fused_passes_are_the_separate_bits() {
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for n in [5usize, PAR_MIN + 3 * CHUNK + 17] {
            let f = |i: usize| ((i * 7919) % 1013) as f64 * 0.37 - 200.0;
            let mut a = vec![0.0; n];
            fill(&mut a, f);
            let raw = a.clone();
            normalise(&mut a);
            let mut pa = vec![0.0; n];
            exp_into(&a, &mut pa);
            let mut b = vec![0.0; n];
            let (m, ls) = fill_lse_chunks(&mut b, |lo, o| {
                o.iter_mut().enumerate().for_each(|(k, v)| *v = f(lo + k))
            });
            assert_eq!(bits(&b), bits(&raw));
            assert_eq!((m.to_bits(), ls.to_bits()), {
                let (m2, l2) = lse_parts(&raw);
                (m2.to_bits(), l2.to_bits())
            });
            let mut pb = vec![0.0; n];
            shift(&mut b, m, ls, Shifted::ThetaAndPi(&mut pb));
            assert_eq!(bits(&a), bits(&b));
            assert_eq!(bits(&pa), bits(&pb));
            let mut c = raw.clone();
            shift(&mut c, m, ls, Shifted::Theta);
            assert_eq!(bits(&a), bits(&c));
            let mut d = raw.clone();
            shift(&mut d, m, ls, Shifted::ExpInPlace);
            assert_eq!(bits(&pa), bits(&d));
            // Normalised: Σ π = 1.
            assert!((pa.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
    }

    /// The chunked log-normaliser is the exact one to rounding, with chunks of very different
    /// maxima, chunks of `−∞` and an all-`−∞` vector.
    #[test]
    fn lse_parts_is_the_log_normaliser() {
        let n = 3 * CHUNK + 5;
        let mut x: Vec<f64> = (0..n).map(|i| ((i % 97) as f64).sin() * 3.0).collect();
        x[CHUNK..2 * CHUNK].fill(f64::NEG_INFINITY);
        x[2 * CHUNK..3 * CHUNK].iter_mut().for_each(|v| *v += 40.0);
        let (m, ls) = lse_parts(&x);
        let want_m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let want: f64 = x.iter().map(|v| (v - want_m).exp()).sum::<f64>().ln();
        assert_eq!(m, want_m);
        assert!((ls - want).abs() < 1e-13, "{ls} vs {want}");
        let (m, ls) = lse_parts(&[f64::NEG_INFINITY; 7]);
        assert!(m == f64::NEG_INFINITY && ls == f64::NEG_INFINITY);
        let mut v = vec![f64::NEG_INFINITY, 0.0];
        normalise(&mut v);
        assert_eq!(v, vec![f64::NEG_INFINITY, 0.0]);
        // No finite maximum: x is left as it is, the policy is exp(x).
        let (mut w, mut pw) = (vec![f64::NEG_INFINITY; 3], vec![1.0; 3]);
        shift(&mut w, m, ls, Shifted::ThetaAndPi(&mut pw));
        assert_eq!((w, pw), (vec![f64::NEG_INFINITY; 3], vec![0.0; 3]));
        let mut e = vec![f64::NEG_INFINITY; 3];
        shift(&mut e, m, ls, Shifted::ExpInPlace);
        assert_eq!(e, vec![0.0; 3]);
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
