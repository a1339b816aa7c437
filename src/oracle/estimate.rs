//! The sampled payoff (docs/math.md §6): `ĝ(π)[i] = (1/m) Σ_{t<m} Bernoulli(P[i][j_t])`,
//! `j_t ~ π`, for every action `i`: `n·m` queries.
//!
//! Each term is marginally Bernoulli(`g(π)[i]`), so `m·ĝ[i]` is Binomial(`m`, `g[i]`): unbiased,
//! with variance `g[i](1 − g[i])/m ≤ 1/(4m)`.

use super::alias::AliasTable;
use super::{stream, Fidelity, Oracle};
use crate::game::{
    check_shapes, column, columns_mut, Info, MatMut, MatRef, MemStack, PreferenceOperator,
    StackReq, Structure,
};
use crate::kernels::vector;
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};

/// Actions per chunk of work; each chunk draws from its own random stream.
pub const ROWS_PER_CHUNK: usize = 256;

/// `out[i] = (1/m) Σ_{t<m} query(i, j_t)` with `j_t` drawn from `table`, in parallel over fixed
/// chunks of [`ROWS_PER_CHUNK`] actions; chunk `c` draws from `rng_for(c)`.
///
/// # Panics
/// If `m = 0` or `table` and `out` have different lengths from the game.
pub fn sampled_payoff(
    oracle: &Oracle,
    table: &AliasTable,
    m: u64,
    rng_for: impl Fn(usize) -> Xoshiro256PlusPlus + Sync,
    out: &mut [f64],
) {
    assert!(m > 0, "sampled payoff from no opponents");
    let n = oracle.game().n();
    assert!(table.len() == n && out.len() == n, "dimension mismatch");
    out.par_chunks_mut(ROWS_PER_CHUNK)
        .enumerate()
        .for_each(|(c, rows)| {
            let mut rng = rng_for(c);
            let mut asker = oracle.asker();
            for (r, o) in rows.iter_mut().enumerate() {
                let i = c * ROWS_PER_CHUNK + r;
                let wins: f64 = (0..m)
                    .map(|_| {
                        let j = table.sample(&mut rng);
                        asker.query(i, j, &mut rng)
                    })
                    .sum();
                *o = wins / m as f64;
            }
        });
}

/// The game as the algorithms see it under `--oracle sampled`: [`PreferenceOperator::apply`]
/// returns an unbiased estimate of `P x` from `m` sampled opponents per action, and every
/// estimate draws from fresh streams (keyed by the call's index). Everything else (entries,
/// size) is the underlying game's. Metrics and `π*` never use it.
pub struct SampledGame<'a> {
    oracle: Oracle<'a>,
    samples: u64,
    seed: u64,
    /// Which algorithm's streams these are.
    stream: u64,
    fidelity: Fidelity,
    calls: AtomicU64,
}

impl<'a> SampledGame<'a> {
    /// `samples ≥ 1` opponents per action; streams keyed by `(seed, stream, call, chunk)`.
    ///
    /// # Panics
    /// If `samples = 0` (validated in [`super::OracleSpec::sampled`]).
    pub fn new(
        op: &'a dyn PreferenceOperator,
        samples: u64,
        seed: u64,
        stream: u64,
        fidelity: Fidelity,
    ) -> Self {
        assert!(samples > 0, "sampled payoff from no opponents");
        SampledGame {
            oracle: Oracle::new(op),
            samples,
            seed,
            stream,
            fidelity,
            calls: AtomicU64::new(0),
        }
    }

    /// Oracle queries made so far.
    pub fn queries(&self) -> u64 {
        self.oracle.queries()
    }

    /// Where the random streams stand: `(estimates made, queries made)`.
    pub fn position(&self) -> (u64, u64) {
        (self.calls.load(Ordering::Relaxed), self.queries())
    }

    /// Continues from a [`SampledGame::position`] of a game built with the same arguments
    /// (checkpoints): the next estimate draws from the streams the saved one would have.
    pub fn set_position(&self, (calls, queries): (u64, u64)) {
        self.calls.store(calls, Ordering::Relaxed);
        self.oracle.charge(queries.saturating_sub(self.queries()));
    }
}

impl PreferenceOperator for SampledGame<'_> {
    fn n(&self) -> usize {
        self.oracle.game().n()
    }

    /// An unbiased estimate of `P x` for every column `x ≥ 0` (a policy): `(Σx)·ĝ(x/Σx)`,
    /// one call (one set of streams) per column, in column order. With expected fidelity, the
    /// game's own apply on the whole batch (its scratch from `stack`); sampled, each column
    /// builds its alias table (an allocation per column: sampling costs far more than it).
    ///
    /// # Panics
    /// If a column has negative or non-finite entries or is all 0, or shapes differ from `n`.
    fn apply(&self, out: MatMut<'_, f64>, rhs: MatRef<'_, f64>, stack: &mut MemStack) {
        let op = self.oracle.game();
        check_shapes(op.n(), &out, &rhs);
        let k = rhs.ncols() as u64;
        let call = self.calls.fetch_add(k, Ordering::Relaxed);
        if self.fidelity == Fidelity::Expected {
            op.apply(out, rhs, stack);
            self.oracle.charge(op.n() as u64 * self.samples * k);
            return;
        }
        for (v, out) in columns_mut(out).enumerate() {
            let x = column(rhs, v);
            let call = call + v as u64;
            let mut table = AliasTable::default();
            table.rebuild_weights(x);
            let (seed, s) = (self.seed, self.stream);
            sampled_payoff(
                &self.oracle,
                &table,
                self.samples,
                |c| stream(seed, &[s, call, c as u64]),
                out,
            );
            let mass = vector::sum_by(x.len(), |i| x[i]);
            if mass != 1.0 {
                out.iter_mut().for_each(|o| *o *= mass);
            }
        }
    }

    fn apply_scratch(&self, k: usize) -> StackReq {
        match self.fidelity {
            Fidelity::Expected => self.oracle.game().apply_scratch(k),
            _ => StackReq::EMPTY,
        }
    }

    fn entry(&self, i: usize, j: usize) -> f64 {
        self.oracle.game().entry(i, j)
    }

    fn precision(&self) -> f64 {
        self.oracle.game().precision()
    }

    fn validate(&self, tol: Option<f64>) -> crate::error::Result<()> {
        self.oracle.game().validate(tol)
    }

    /// The game's info, marked sampled; no structure (an estimate has none to exploit).
    fn info(&self) -> Info<'_> {
        let g = self.oracle.game().info();
        Info {
            layout: format!("sampled {}", g.layout),
            stored_bytes: g.stored_bytes,
            description: format!(
                "sampled payoff ({} opponents per action) of {}",
                self.samples, g.description
            ),
            structure: Structure::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::{apply_vec, DenseGame};

    /// A 5-action game and a fixed policy whose payoffs are away from 0 and 1.
    fn setup() -> (DenseGame, Vec<f64>) {
        let a = [
            [0.0, 0.3, -0.2, 0.1, 0.4],
            [0.0, 0.0, 0.25, -0.35, 0.05],
            [0.0, 0.0, 0.0, 0.15, -0.3],
            [0.0, 0.0, 0.0, 0.0, 0.2],
            [0.0; 5],
        ];
        let mut p = vec![0.5; 25];
        for i in 0..5 {
            for j in i + 1..5 {
                p[i * 5 + j] = 0.5 + a[i][j];
                p[j * 5 + i] = 0.5 - a[i][j];
            }
        }
        (
            DenseGame::from_vec("t", 5, p),
            vec![0.1, 0.3, 0.2, 0.25, 0.15],
        )
    }

    /// Unbiasedness and the variance bound, with tolerances derived from the bound `1/(4m)`.
    ///
    /// `R` independent estimates `ĝ_r[i]` (each from `m` opponents) have variance
    /// `σ² = g(1−g)/m ≤ 1/(4m)`. Their mean is within `z·sqrt(1/(4mR))` of `g[i]` except with
    /// probability about `P(|N(0,1)| > z)`; with `z = 5` that is `5.7e-7` per action, `3e-6` for
    /// the 5 actions. The sample variance `s²` has standard deviation
    /// `σ²·sqrt(2/(R−1) + κ/R)` (`κ`: excess kurtosis of a Binomial(m, g)/m,
    /// `(1 − 6g(1−g))/(m g(1−g))`), so `s² ≤ (1/(4m))·(1 + z·sqrt(2/(R−1) + κ⁺/R))` fails with
    /// probability about `3e-7` per action: the χ² upper tail in its normal approximation, valid
    /// for `R` in the thousands. The test is seeded, so it is deterministic; these figures are
    /// the chance that a fresh seed would fail it.
    #[test]
    fn unbiased_with_variance_within_the_bound() {
        let (game, pi) = setup();
        let mut g = vec![0.0; 5];
        apply_vec(&game, &pi, &mut g);
        let (m, reps, z) = (16u64, 4000usize, 5.0);
        let oracle = Oracle::new(&game);
        let table = {
            let mut t = AliasTable::default();
            t.rebuild_weights(&pi);
            t
        };
        let mut est = vec![0.0; 5];
        let (mut sum, mut sum2) = (vec![0.0; 5], vec![0.0; 5]);
        for r in 0..reps {
            sampled_payoff(
                &oracle,
                &table,
                m,
                |c| stream(11, &[r as u64, c as u64]),
                &mut est,
            );
            for i in 0..5 {
                sum[i] += est[i];
                sum2[i] += est[i] * est[i];
            }
        }
        assert_eq!(oracle.queries(), 5 * m * reps as u64);
        let bound = 1.0 / (4.0 * m as f64);
        let rf = reps as f64;
        for i in 0..5 {
            let mean = sum[i] / rf;
            let var = (sum2[i] - rf * mean * mean) / (rf - 1.0);
            let tol = z * (bound / rf).sqrt();
            assert!(
                (mean - g[i]).abs() <= tol,
                "action {i}: mean {mean} vs g {}",
                g[i]
            );
            let v = g[i] * (1.0 - g[i]);
            let kurt = ((1.0 - 6.0 * v) / (m as f64 * v)).max(0.0);
            let factor = 1.0 + z * (2.0 / (rf - 1.0) + kurt / rf).sqrt();
            assert!(
                var <= bound * factor,
                "action {i}: variance {var} > {bound}·{factor}"
            );
            // And the variance is really the binomial one, not just under the bound.
            assert!((var - v / m as f64).abs() <= v / m as f64 * (factor - 1.0));
        }
    }

    #[test]
    fn same_bytes_for_any_thread_count() {
        let n = 1000;
        let p: Vec<f64> = (0..n * n)
            .map(|k| crate::gen::uniform_entry(3, k / n, k % n))
            .collect();
        let game = DenseGame::from_vec("u", n, p);
        let x: Vec<f64> = (0..n).map(|i| (i % 7 + 1) as f64 / 4000.0).collect();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let sg = SampledGame::new(&game, 3, 5, 0, Fidelity::Sampled);
            let mut out = vec![0.0; n];
            pool.install(|| apply_vec(&sg, &x, &mut out));
            (out, sg.queries())
        };
        let (a, qa) = run(1);
        let (b, qb) = run(2);
        assert_eq!(qa, 3 * n as u64);
        assert_eq!(qa, qb);
        assert!(a.iter().zip(&b).all(|(u, v)| u.to_bits() == v.to_bits()));
    }
}
