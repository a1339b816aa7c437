//! Nash-MP, OMWU and MMD in a log-linear class (docs/math.md §8), on `θ ∈ R^d`.
//!
//! Every update is the in-class prox `prox(θ, v) = (θ + α v)/(1 + αβ)` of a payoff direction
//! `v` (the payoff restricted to the class is `c + φ·v`; the constant is absorbed by the
//! normalisation). The direction against an opponent `π'` comes from a [`DirectionMode`]:
//!
//! - **exact, realizable** (`M` known): `v = M m(π')`, so from `π_0 = μ` the iterates equal
//!   the tabular algorithms' (a test);
//! - **exact, projected** (any game, user features): `v = Cov_π(φ)⁺ Cov_π(φ, g(π'))`, the
//!   least-squares projection of the full payoff `g(π') = P π'` onto the features under the
//!   design policy `π` (one operator application);
//! - **sampled**: `B` pairs `y ~ π` (the design: the learner's policy at the start of the prox),
//!   `y' ~ π'` and their Bernoulli answers `o`, and the natural-gradient estimate
//!   `v̂ = Cov_π(φ)⁺ (1/B) Σ_b (φ(y_b) − m(π)) (o_b − 1/2)`. The learner knows `φ` and `π`, so
//!   `m(π)` and `Cov_π(φ)` are exact (no queries) and `v̂` is exactly unbiased for the
//!   projection of `v` onto the range of `Cov_π(φ)` (the rest does not move the policy); its
//!   error is `O(√(d/B))` in the Fisher metric, whatever `n`.
//!
//! Random streams are keyed by `(seed, estimate index, role, chunk)`, never by thread; pairs
//! are answered in fixed chunks of [`PAIRS_PER_CHUNK`] and combined in chunk order.

use super::{linalg, LinearClass, Moments};
use crate::algo::AlgoKind;
use crate::error::{Error, Result};
use crate::game::PreferenceOperator;
use crate::oracle::{stream, Fidelity, Oracle};
use rayon::prelude::*;

/// Pairs per chunk of answers; each chunk draws from its own random stream.
pub const PAIRS_PER_CHUNK: usize = 4096;
/// Relative eigenvalue threshold of the Fisher pseudo-inverse.
pub const FISHER_RCOND: f64 = 1e-10;
/// Stream tag of the parametric estimates (apart from the tabular algorithms' streams).
const TAG: u64 = 0x5041_5241_4D00_0001;

/// How the algorithms get their payoff directions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DirectionMode {
    /// From the game itself (one operator application per direction).
    Exact,
    /// From `batch` sampled pairs and their answers.
    Sampled {
        batch: u64,
        seed: u64,
        fidelity: Fidelity,
    },
}

/// What a step needs besides the algorithm's state.
pub struct Env<'e, 'c> {
    pub class: &'e LinearClass<'c>,
    /// The game that answers queries (and, for the projected direction, `P π'`).
    pub op: &'e dyn PreferenceOperator,
    pub beta: f64,
}

/// The algorithms that make sense in the class.
pub fn check_kind(kind: AlgoKind) -> Result<()> {
    match kind {
        AlgoKind::NashMp | AlgoKind::Omwu | AlgoKind::Mmd => Ok(()),
        k => Err(Error::Param(format!(
            "--policy linear runs nash-mp, omwu and mmd; {k} has no in-class form here"
        ))),
    }
}

/// A parametric algorithm's state: `θ`, OMWU's last direction, and its counters.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamAlgo {
    pub kind: AlgoKind,
    pub alpha: f64,
    pub mode: DirectionMode,
    pub theta: Vec<f64>,
    /// OMWU's `v(π½)` of the previous iteration (`v(π_0)` before the first).
    pub v_prev: Option<Vec<f64>>,
    /// Directions estimated so far (keys the random streams).
    pub calls: u64,
    /// Queries made so far (operator applications for [`DirectionMode::Exact`]).
    pub queries: u64,
}

impl ParamAlgo {
    /// Starts at `π_0 = μ` (`θ = 0`).
    pub fn new(kind: AlgoKind, alpha: f64, d: usize, mode: DirectionMode) -> Result<Self> {
        check_kind(kind)?;
        Ok(ParamAlgo {
            kind,
            alpha,
            mode,
            theta: vec![0.0; d],
            v_prev: None,
            calls: 0,
            queries: 0,
        })
    }

    /// Queries per iteration.
    pub fn queries_per_iter(&self) -> u64 {
        let per = match self.mode {
            DirectionMode::Exact => 1,
            DirectionMode::Sampled { batch, .. } => batch,
        };
        match self.kind {
            AlgoKind::NashMp => 2 * per,
            _ => per,
        }
    }

    fn needs_cov(&self, class: &LinearClass) -> bool {
        !(self.mode == DirectionMode::Exact && class.skew().is_some())
    }

    fn prox(&self, v: &[f64], beta: f64) -> Vec<f64> {
        let s = 1.0 / (1.0 + self.alpha * beta);
        self.theta
            .iter()
            .zip(v)
            .map(|(t, v)| (t + self.alpha * v) * s)
            .collect()
    }

    /// Advances `θ_k → θ_{k+1}`; returns the moments of `θ_{k+1}` (with the covariance the
    /// next step needs).
    pub fn step(&mut self, env: &Env, mom_k: Option<Moments>) -> Moments {
        let class = env.class;
        let cov = self.needs_cov(class);
        let mom_k = match mom_k {
            Some(m) if m.cov.is_some() || !cov => m,
            _ => class.moments(&self.theta, cov),
        };
        match self.kind {
            AlgoKind::NashMp => {
                let v1 = self.direction(env, (&self.theta.clone(), &mom_k), None);
                let half = self.prox(&v1, env.beta);
                let mom_h = class.moments(&half, false);
                let v2 = self.direction(env, (&self.theta.clone(), &mom_k), Some((&half, &mom_h)));
                self.theta = self.prox(&v2, env.beta);
            }
            AlgoKind::Mmd => {
                let v = self.direction(env, (&self.theta.clone(), &mom_k), None);
                self.theta = self.prox(&v, env.beta);
            }
            AlgoKind::Omwu => {
                let v0 = match self.v_prev.take() {
                    Some(v) => v,
                    None => self.direction(env, (&self.theta.clone(), &mom_k), None),
                };
                let half = self.prox(&v0, env.beta);
                let mom_h = class.moments(&half, cov);
                let v = self.direction(env, (&half, &mom_h), None);
                self.theta = self.prox(&v, env.beta);
                self.v_prev = Some(v);
            }
            k => unreachable!("{k} is checked out in ParamAlgo::new"),
        }
        class.moments(&self.theta, cov)
    }

    /// The payoff direction against `opp` (default: the design policy itself) with design
    /// policy `design`.
    fn direction(
        &mut self,
        env: &Env,
        design: (&[f64], &Moments),
        opp: Option<(&[f64], &Moments)>,
    ) -> Vec<f64> {
        let call = self.calls;
        self.calls += 1;
        let opp_or = opp.unwrap_or(design);
        match self.mode {
            DirectionMode::Exact => {
                self.queries += 1;
                exact_direction(env, design, opp_or)
            }
            DirectionMode::Sampled {
                batch,
                fidelity: Fidelity::Expected,
                ..
            } => {
                self.queries += batch;
                exact_direction(env, design, opp_or)
            }
            DirectionMode::Sampled { batch, seed, .. } => {
                let oracle = Oracle::new(env.op);
                let v = sampled_direction(env.class, &oracle, design, opp, batch, seed, call);
                self.queries += oracle.queries();
                v
            }
        }
    }
}

/// `M m(π')` (realizable) or `Cov_π(φ)⁺ Cov_π(φ, P π')` (projected).
pub fn exact_direction(env: &Env, design: (&[f64], &Moments), opp: (&[f64], &Moments)) -> Vec<f64> {
    let class = env.class;
    if class.skew().is_some() {
        return class.skew_times(&opp.1.mean);
    }
    let n = class.n();
    let mut p = vec![0.0; n];
    class.log_probs(opp.0, opp.1.log_z, &mut p);
    p.iter_mut().for_each(|x| *x = x.exp());
    let mut g = vec![0.0; n];
    env.op.apply(&p, &mut g);
    let rhs = class.cov_with(design.0, design.1, &g);
    let cov = design.1.cov.as_ref().expect("design covariance");
    linalg::psd_solve(cov, &rhs, class.d(), FISHER_RCOND).0
}

/// The sampled natural-gradient direction from `batch` pairs; also used by the tests.
pub fn sampled_direction(
    class: &LinearClass,
    oracle: &Oracle,
    design: (&[f64], &Moments),
    opp: Option<(&[f64], &Moments)>,
    batch: u64,
    seed: u64,
    call: u64,
) -> Vec<f64> {
    let b = batch as usize;
    let (ys, ops) = match opp {
        // One policy: one set of draws gives both sides.
        None => {
            let mut all = class.draws(design.0, design.1, 2 * b, seed, &[TAG, call, 0]);
            let ops = all.split_off(b);
            (all, ops)
        }
        Some(o) => (
            class.draws(design.0, design.1, b, seed, &[TAG, call, 0]),
            class.draws(o.0, o.1, b, seed, &[TAG, call, 1]),
        ),
    };
    let rhs = sampled_rhs(class, oracle, design.1, &ys, &ops, seed, call);
    let cov = design.1.cov.as_ref().expect("design covariance");
    linalg::psd_solve(cov, &rhs, class.d(), FISHER_RCOND).0
}

/// `(1/B) Σ_b (φ(y_b) − m)(o_b − 1/2)` with `o_b = query(y_b, y'_b)`, answered in fixed chunks.
pub fn sampled_rhs(
    class: &LinearClass,
    oracle: &Oracle,
    design: &Moments,
    ys: &[usize],
    ops: &[usize],
    seed: u64,
    call: u64,
) -> Vec<f64> {
    let d = class.d();
    let f = class.features();
    let chunks = ys.len().div_ceil(PAIRS_PER_CHUNK);
    let parts: Vec<Vec<f64>> = (0..chunks)
        .into_par_iter()
        .map(|c| {
            let mut rng = stream(seed, &[TAG, call, 2, c as u64]);
            let mut asker = oracle.asker();
            let mut acc = vec![0.0; d];
            let hi = ((c + 1) * PAIRS_PER_CHUNK).min(ys.len());
            for p in c * PAIRS_PER_CHUNK..hi {
                let o = asker.query(ys[p], ops[p], &mut rng) - 0.5;
                for (k, a) in acc.iter_mut().enumerate() {
                    *a += (f.col(k)[ys[p]] - design.mean[k]) * o;
                }
            }
            acc
        })
        .collect();
    let mut rhs = vec![0.0; d];
    for p in &parts {
        for (r, v) in rhs.iter_mut().zip(p) {
            *r += v;
        }
    }
    let b = ys.len().max(1) as f64;
    rhs.iter_mut().for_each(|r| *r /= b);
    rhs
}
