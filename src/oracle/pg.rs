//! Approximate Nash-MP (docs/math.md §6): each proximal step
//! `argmax_θ F(θ) = α E_{y~π_θ}[g(π_opp)[y]] − αβ KL(π_θ‖μ) − KL(π_θ‖π_k)`
//! is solved by `S` stochastic policy-gradient steps on the logits, each from `B` sampled pairs
//! `y ~ π_θ`, `y' ~ π_opp` and their Bernoulli outcomes `o = query(y, y')`. The first prox step
//! has `π_opp = π_k` and starts at `θ_k`; the second has `π_opp = π½` and starts at `θ½`.
//!
//! **The step.** With the score-function estimator of `∇_z E_{π_θ}[g]` and the leave-one-out
//! baseline `b = (T − o)/(B−1)` (`T` the batch's wins), the gradient estimate is unbiased.
//! Preconditioned by the Fisher information of the softmax (the natural gradient, which for a
//! tabular policy is the mirror-descent step in the entropy geometry), the score `e_y − π`
//! becomes `e_y/π_y` up to a constant: the payoff part of the step is the importance-weighted
//! advantage `Σ_{b: y_b = a} (o_b − b_b) / (B π_θ(a))`, unbiased for `g[a] − ⟨π_θ, g⟩`, whose
//! tail is heavy: an action drawn once at `π_θ(a) = 1e-6` would move by `1e6/B` in log space.
//! We precondition instead with the larger of the exact Fisher diagonal `B π_θ(a)` and the
//! batch's empirical one, `draws_a`:
//! `â[a] = (wins_a − (T/B)·draws_a) · B/(B−1) / max(draws_a, B π_θ(a))`, so `|â| ≤ B/(B−1)`.
//! Where draws are plentiful this is the unbiased estimate up to `O(1/sqrt(B π_θ(a)))`; an
//! action drawn far more often than expected moves by its empirical mean advantage. The KL
//! terms are exact: `θ ← norm(θ + γ_s (α â − αβ(θ − θ_μ) − (θ − θ_k)))`. As `B → ∞`,
//! `draws_a / B → π_θ(a)` and `â → g − ⟨π_θ, g⟩` ([`Fidelity::Expected`] uses this limit).
//!
//! **The step size.** `F` is `(1+αβ)`-strongly concave relative to the entropy, so the steps
//! follow the `1/(μ t)` schedule `γ_s = γ / (1 + γ(1+αβ)s)`. The default `γ = 1/(1+αβ)` makes
//! step `s` the exact average of the first `s+1` noisy targets `prox(θ_k, â_t)`: with exact
//! gradients the first step lands on the exact prox and the others stay there, so the algorithm
//! reduces to Nash-MP; with sampled gradients the `S` batches are averaged, not forgotten.

use super::alias::AliasTable;
use super::{algo_stream, stream, Fidelity, Oracle};
use crate::algo::{AlgoKind, Algorithm, Context, CurrentPayoff};
use crate::error::{Error, Result};
use crate::game::payoff;
use crate::kernels::vector;
use rayon::prelude::*;

/// Pairs per chunk of work; each chunk draws from its own random stream.
pub const PAIRS_PER_CHUNK: usize = 4096;
/// Chunks sampled in parallel before their pairs are accumulated (bounds memory).
const CHUNKS_PER_WAVE: usize = 16;

/// The inner solver's parameters (`--inner-steps`, `--batch`, `--inner-lr`).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct PgParams {
    /// Policy-gradient steps per proximal step (`S ≥ 1`).
    pub inner_steps: u64,
    /// Sampled pairs per step (`B ≥ 1`).
    pub batch: u64,
    /// Initial natural-gradient step `γ > 0`; `None`: `1/(1+αβ)`.
    pub inner_lr: Option<f64>,
}

impl PgParams {
    /// Checks `S ≥ 1`, `B ≥ 1`, `γ > 0` finite.
    pub fn check(&self) -> Result<()> {
        if self.inner_steps == 0 {
            return Err(Error::Param("--inner-steps must be at least 1".into()));
        }
        if self.batch == 0 {
            return Err(Error::Param("--batch must be at least 1".into()));
        }
        if let Some(g) = self.inner_lr {
            if !(g.is_finite() && g > 0.0) {
                return Err(Error::Param(format!(
                    "--inner-lr must be positive and finite, got {g}"
                )));
            }
        }
        Ok(())
    }

    /// The initial inner step for `α`, `β`.
    pub fn lr(&self, alpha: f64, beta: f64) -> f64 {
        self.inner_lr.unwrap_or(1.0 / (1.0 + alpha * beta))
    }
}

/// Approximate Nash-MP; its iterate and query count.
pub struct ApproxNashMp {
    alpha: f64,
    params: PgParams,
    fidelity: Fidelity,
    seed: u64,
    theta: Vec<f64>,
    half: Vec<f64>,
    /// Inner iterate.
    inner: Vec<f64>,
    /// Per action: wins and draws of the current batch (exact integers in `f64`).
    wins: Vec<f64>,
    draws: Vec<f64>,
    /// `g(π_opp)` for [`Fidelity::Expected`], and its scratch.
    g_opp: Vec<f64>,
    scratch: Vec<f64>,
    opp_table: AliasTable,
    inner_table: AliasTable,
    prox_calls: u64,
    queries: u64,
}

impl ApproxNashMp {
    /// # Panics
    /// If `params` is invalid (see [`PgParams::check`]).
    pub fn new(
        theta0: &[f64],
        alpha: f64,
        params: PgParams,
        seed: u64,
        fidelity: Fidelity,
    ) -> Self {
        assert!(params.check().is_ok(), "unchecked PgParams");
        let n = theta0.len();
        ApproxNashMp {
            alpha,
            params,
            fidelity,
            seed,
            theta: theta0.to_vec(),
            half: vec![0.0; n],
            inner: vec![0.0; n],
            wins: vec![0.0; n],
            draws: vec![0.0; n],
            g_opp: vec![0.0; n],
            scratch: vec![0.0; n],
            opp_table: AliasTable::default(),
            inner_table: AliasTable::default(),
            prox_calls: 0,
            queries: 0,
        }
    }

    /// Approximately `prox(θ_k, g(π_opp))`, starting from `start`; the result is left in
    /// `self.inner`.
    fn approx_prox(&mut self, ctx: &Context, opp: &[f64], start: &[f64]) {
        let call = self.prox_calls;
        self.prox_calls += 1;
        let (a, ab) = (self.alpha, self.alpha * ctx.beta);
        let lr = self.params.lr(a, ctx.beta);
        let batch = self.params.batch;
        match self.fidelity {
            Fidelity::Sampled => self.opp_table.rebuild(opp),
            Fidelity::Expected => payoff(ctx.op, opp, &mut self.scratch, &mut self.g_opp),
        }
        self.inner.copy_from_slice(start);
        for s in 0..self.params.inner_steps {
            let total = match self.fidelity {
                Fidelity::Sampled => self.sample_batch(ctx, [call, s]),
                Fidelity::Expected => 0.0,
            };
            self.queries += batch;
            let gamma = lr / (1.0 + lr * (1.0 + ab) * s as f64);
            let (tk, tr, inner) = (&self.theta, ctx.theta_ref, &self.inner);
            let step = |i: usize, adv: f64| {
                let t = inner[i];
                t + gamma * (a * adv - ab * (t - tr[i]) - (t - tk[i]))
            };
            match self.fidelity {
                Fidelity::Sampled => {
                    // â[i] = (wins_i − (T/B)·draws_i)·B/(B−1) / max(draws_i, B π_i)
                    // (for B = 1: wins_i / max(draws_i, π_i), no baseline).
                    let (w, d, bf) = (&self.wins, &self.draws, batch as f64);
                    let (base, corr) = if batch > 1 {
                        (total / bf, bf / (bf - 1.0))
                    } else {
                        (0.0, 1.0)
                    };
                    vector::fill(&mut self.scratch, |i| {
                        let adv = if d[i] == 0.0 {
                            0.0
                        } else {
                            (w[i] - base * d[i]) * corr / d[i].max(bf * inner[i].exp())
                        };
                        step(i, adv)
                    });
                }
                Fidelity::Expected => {
                    let g = &self.g_opp;
                    let mean = vector::sum_by(g.len(), |i| inner[i].exp() * g[i]);
                    vector::fill(&mut self.scratch, |i| step(i, g[i] - mean));
                }
            }
            std::mem::swap(&mut self.inner, &mut self.scratch);
            vector::normalise(&mut self.inner);
        }
    }

    /// Draws `B` pairs `y ~ π_inner`, `y' ~ π_opp` with their outcomes into `wins`, `draws`;
    /// returns the batch's total wins `T`.
    fn sample_batch(&mut self, ctx: &Context, key: [u64; 2]) -> f64 {
        self.inner_table.rebuild(&self.inner);
        self.wins.iter_mut().for_each(|w| *w = 0.0);
        self.draws.iter_mut().for_each(|d| *d = 0.0);
        let oracle = Oracle::new(ctx.op);
        let batch = self.params.batch as usize;
        let chunks = batch.div_ceil(PAIRS_PER_CHUNK);
        let (seed, algo) = (self.seed, algo_stream(AlgoKind::NashMp));
        let (mine, theirs) = (&self.inner_table, &self.opp_table);
        let mut total = 0.0;
        for wave in (0..chunks).step_by(CHUNKS_PER_WAVE) {
            let last = (wave + CHUNKS_PER_WAVE).min(chunks);
            let pairs: Vec<Vec<(usize, f64)>> = (wave..last)
                .into_par_iter()
                .map(|c| {
                    let mut rng = stream(seed, &[algo, key[0], key[1], c as u64]);
                    let mut asker = oracle.asker();
                    let len = PAIRS_PER_CHUNK.min(batch - c * PAIRS_PER_CHUNK);
                    (0..len)
                        .map(|_| {
                            let y = mine.sample(&mut rng);
                            let y2 = theirs.sample(&mut rng);
                            (y, asker.query(y, y2, &mut rng))
                        })
                        .collect()
                })
                .collect();
            for (y, o) in pairs.into_iter().flatten() {
                total += o;
                self.wins[y] += o;
                self.draws[y] += 1.0;
            }
        }
        debug_assert_eq!(oracle.queries(), batch as u64);
        total
    }
}

impl Algorithm for ApproxNashMp {
    fn kind(&self) -> AlgoKind {
        AlgoKind::NashMp
    }
    fn theta(&self) -> &[f64] {
        &self.theta
    }
    fn queries_per_iter(&self) -> u64 {
        2 * self.params.inner_steps * self.params.batch
    }
    fn queries(&self) -> Option<u64> {
        Some(self.queries)
    }
    /// `[θ]` and the counters `[prox calls, queries]`: the random streams are keyed by the
    /// prox call, so restoring them continues the same draws.
    fn state(&self) -> crate::algo::AlgoState {
        crate::algo::AlgoState {
            vectors: vec![self.theta.clone()],
            counters: vec![self.prox_calls, self.queries],
        }
    }
    fn restore(&mut self, s: crate::algo::AlgoState) -> Result<()> {
        let mut s = s.expect(1, self.theta.len(), 2)?;
        (self.prox_calls, self.queries) = (s.counters[0], s.counters[1]);
        self.theta = s.vectors.remove(0);
        Ok(())
    }
    fn step(&mut self, ctx: &Context, _cur: &mut CurrentPayoff) {
        // `buf` holds the opponent and start of each prox step: θ_k, then θ½.
        let mut buf = std::mem::take(&mut self.half);
        buf.copy_from_slice(&self.theta);
        self.approx_prox(ctx, &buf, &buf);
        buf.copy_from_slice(&self.inner);
        self.approx_prox(ctx, &buf, &buf);
        self.half = buf;
        std::mem::swap(&mut self.theta, &mut self.inner);
    }
}
