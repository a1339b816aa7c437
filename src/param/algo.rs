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
//! A sampled prox step is solved by one natural-gradient estimate and the closed-form prox
//! ([`Estimator::Natural`], the default), or, for comparison, by `S` plain score-function
//! policy-gradient steps on the prox objective ([`Estimator::Gradient`], `--estimator gradient
//! --inner-steps S`), each from its own batch of `B` pairs drawn from the current inner iterate:
//! the gradient of `⟨π_θ, g(π')⟩ − β KL(π_θ‖μ) − KL(π_θ‖π_k)/α` in `θ` is
//! `Cov_θ(φ, g(π')) − Cov_θ(φ)(βθ + (θ − θ_k)/α)`, whose zero is the closed-form prox; its
//! steps are preconditioned by the largest eigenvalue of `Cov_θ(φ)` only, so ill-conditioned
//! features converge slowly along their small directions (the natural gradient does not).
//!
//! Random streams are keyed by `(seed, estimate index, role, chunk)`, never by thread; pairs
//! are answered in fixed chunks of [`PAIRS_PER_CHUNK`] and combined in chunk order.

use super::{linalg, LinearClass, Moments};
use crate::algo::AlgoKind;
use crate::error::{Error, Result};
use crate::game::apply_vec;
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

/// How a sampled prox step is solved (module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Estimator {
    /// One natural-gradient estimate of the direction, then the closed-form prox.
    Natural,
    /// `steps` plain policy-gradient steps; step `s` has size
    /// `γ_s / ((1/α + β) λ_max(Cov_θs(φ)))`, `γ_s = lr/(1 + lr·s)` (with `lr = 1` and isotropic
    /// features, the inner iterate is the running mean of the batches' prox targets).
    Gradient { steps: u64, lr: f64 },
}

impl Estimator {
    /// `natural` or `gradient`.
    pub fn name(&self) -> &'static str {
        match self {
            Estimator::Natural => "natural",
            Estimator::Gradient { .. } => "gradient",
        }
    }
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
    pub estimator: Estimator,
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
            estimator: Estimator::Natural,
            theta: vec![0.0; d],
            v_prev: None,
            calls: 0,
            queries: 0,
        })
    }

    /// Solves the sampled prox steps with `e` (checked against the mode and the algorithm).
    pub fn with_estimator(mut self, e: Estimator) -> Result<Self> {
        if let Estimator::Gradient { steps, lr } = e {
            if !matches!(self.mode, DirectionMode::Sampled { .. }) {
                return Err(Error::Param(
                    "--estimator gradient estimates from sampled pairs: give --oracle pg --batch B"
                        .into(),
                ));
            }
            if !matches!(self.kind, AlgoKind::NashMp | AlgoKind::Mmd) {
                return Err(Error::Param(format!(
                    "--estimator gradient runs nash-mp and mmd (whose prox steps it solves); \
                     {} reuses a direction across steps and needs --estimator natural",
                    self.kind
                )));
            }
            if steps == 0 {
                return Err(Error::Param("--inner-steps must be at least 1".into()));
            }
            if !(lr.is_finite() && lr > 0.0) {
                return Err(Error::Param(format!(
                    "--inner-lr must be positive and finite, got {lr}"
                )));
            }
        }
        self.estimator = e;
        Ok(self)
    }

    /// Queries per iteration.
    pub fn queries_per_iter(&self) -> u64 {
        let steps = match self.estimator {
            Estimator::Natural => 1,
            Estimator::Gradient { steps, .. } => steps,
        };
        let per = match self.mode {
            DirectionMode::Exact => 1,
            DirectionMode::Sampled { batch, .. } => batch * steps,
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
        if let Estimator::Gradient { steps, lr } = self.estimator {
            let th_k = self.theta.clone();
            let anchor = (&th_k[..], &mom_k);
            let half = self.pg_prox(env, anchor, None, steps, lr);
            self.theta = match self.kind {
                AlgoKind::NashMp => {
                    let mom_h = class.moments(&half, false);
                    self.pg_prox(env, anchor, Some((&half, &mom_h)), steps, lr)
                }
                _ => half,
            };
            return class.moments(&self.theta, cov);
        }
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

    /// The prox of `anchor` = `(θ_k, its moments with covariance)` for the payoff `g(π')`,
    /// `π'` = `opp` (default: `π_k`), by `steps` plain policy-gradient steps (module docs).
    fn pg_prox(
        &mut self,
        env: &Env,
        anchor: (&[f64], &Moments),
        opp: Option<(&[f64], &Moments)>,
        steps: u64,
        lr: f64,
    ) -> Vec<f64> {
        let class = env.class;
        let d = class.d();
        let opp = opp.unwrap_or(anchor);
        let curvature = 1.0 / self.alpha + env.beta;
        let mut theta = anchor.0.to_vec();
        for s in 0..steps {
            let fresh;
            let mom = if s == 0 {
                anchor.1
            } else {
                fresh = class.moments(&theta, true);
                &fresh
            };
            let c = self.cov_payoff(env, (&theta, mom), opp);
            let cov = mom.cov.as_ref().expect("design covariance");
            let lam = linalg::sym_eigen(cov, d).0.into_iter().fold(0.0, f64::max);
            if lam <= 0.0 {
                continue; // constant features under π_θ: the objective is flat in θ
            }
            let gamma = lr / (1.0 + lr * s as f64);
            let eta = gamma / (curvature * lam);
            let w: Vec<f64> = (0..d)
                .map(|i| env.beta * theta[i] + (theta[i] - anchor.0[i]) / self.alpha)
                .collect();
            theta = (0..d)
                .map(|i| {
                    let cw: f64 = (0..d).map(|j| cov[i * d + j] * w[j]).sum();
                    theta[i] + eta * (c[i] - cw)
                })
                .collect();
        }
        theta
    }

    /// `Cov_π(φ, g(π'))` for the design `π` and opponent `π'`: from `B` sampled pairs
    /// (`y ∼ π`, `y' ∼ π'`), or exactly under `--fidelity expected` (`B` queries counted).
    fn cov_payoff(
        &mut self,
        env: &Env,
        design: (&[f64], &Moments),
        opp: (&[f64], &Moments),
    ) -> Vec<f64> {
        let call = self.calls;
        self.calls += 1;
        let DirectionMode::Sampled {
            batch,
            seed,
            fidelity,
        } = self.mode
        else {
            unreachable!("the gradient estimator is sampled (checked in with_estimator)")
        };
        if fidelity == Fidelity::Expected {
            self.queries += batch;
            return exact_cov_payoff(env, design, opp);
        }
        let class = env.class;
        let b = batch as usize;
        let ys = class.draws(design.0, design.1, b, seed, &[TAG, call, 0]);
        let ops = class.draws(opp.0, opp.1, b, seed, &[TAG, call, 1]);
        let oracle = Oracle::new(env.op);
        let c = sampled_rhs(class, &oracle, design.1, &ys, &ops, seed, call);
        self.queries += oracle.queries();
        c
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
    let rhs = exact_cov_payoff(env, design, opp);
    let cov = design.1.cov.as_ref().expect("design covariance");
    linalg::psd_solve(cov, &rhs, class.d(), FISHER_RCOND).0
}

/// `Cov_π(φ, g(π'))` exactly: `Cov_π(φ) M m(π')` (realizable) or from `g(π') = P π'` (one
/// operator application).
pub fn exact_cov_payoff(
    env: &Env,
    design: (&[f64], &Moments),
    opp: (&[f64], &Moments),
) -> Vec<f64> {
    let class = env.class;
    let d = class.d();
    if class.skew().is_some() {
        let v = class.skew_times(&opp.1.mean);
        let cov = design.1.cov.as_ref().expect("design covariance");
        return (0..d)
            .map(|i| (0..d).map(|j| cov[i * d + j] * v[j]).sum())
            .collect();
    }
    let n = class.n();
    let mut p = vec![0.0; n];
    class.log_probs(opp.0, opp.1.log_z, &mut p);
    p.iter_mut().for_each(|x| *x = x.exp());
    let mut g = vec![0.0; n];
    apply_vec(env.op, &p, &mut g);
    class.cov_with(design.0, design.1, &g)
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
