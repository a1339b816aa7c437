//! Nash-MP and its baselines (docs/math.md §3), all in `f64` log space, sharing the prox step.
//!
//! An algorithm owns its iterate `θ_k = log π_k` and advances it with [`Algorithm::step`]; it sees
//! the game only through [`PreferenceOperator`]. The payoff of the current iterate, `g(π_k)`, is
//! held in a [`CurrentPayoff`] that the driver shares with the metrics, so it is computed at most
//! once per iterate whoever needs it first (and its time is charged to the algorithm when the
//! algorithm uses it).

mod egpo;
mod linear;
mod mmd;
mod mwu;
mod nash_md;
mod nash_mp;
mod omwu;
pub mod params;

pub use params::{AlgoInfo, AlgoKind, Schedule, Step, StepSpec};

use crate::game::apply_vec;
use crate::game::{payoff, Classes, Factors, PreferenceOperator};
use crate::kernels::vector;
use std::time::Instant;

/// What an algorithm needs besides its own state.
pub struct Context<'a> {
    pub op: &'a dyn PreferenceOperator,
    /// `θ_μ = log μ`, normalised.
    pub theta_ref: &'a [f64],
    pub beta: f64,
    /// `θ_μ`'s one value if all its entries have the same bits (found by [`Context::new`]).
    uniform: Option<f64>,
    /// The operator's classes, if its apply is the class payoff of its stored classes.
    classes: Option<Classes<'a>>,
    /// The operator's features, if it is a low-rank game `½ + φ(i)ᵀ M φ(j)`.
    factors: Option<Factors<'a>>,
}

impl<'a> Context<'a> {
    pub fn new(op: &'a dyn PreferenceOperator, theta_ref: &'a [f64], beta: f64) -> Self {
        let first = theta_ref.first().copied();
        let uniform = first.filter(|f| theta_ref.iter().all(|t| t.to_bits() == f.to_bits()));
        let structure = op.info().structure;
        let classes = structure.clone().classes().filter(|c| c.is_stored());
        let factors = structure.factors();
        Context {
            op,
            theta_ref,
            beta,
            uniform,
            classes,
            factors,
        }
    }

    /// `θ_μ`'s value, if it is the same everywhere (a uniform reference policy).
    pub fn uniform_ref(&self) -> Option<f64> {
        self.uniform
    }

    /// The prox's values over entries `lo .. lo + x.len()`, unnormalised, over the payoffs
    /// there: `x_i ← (c_i + αβ θ_μ,i + α x_i) / (1 + αβ)` (the one place this formula is
    /// written). A uniform reference is not read.
    pub(crate) fn prox_in_place(&self, alpha: f64, c: &[f64], lo: usize, x: &mut [f64]) {
        let ab = alpha * self.beta;
        let s = 1.0 / (1.0 + ab);
        let c = &c[lo..lo + x.len()];
        match self.uniform {
            Some(t) => x
                .iter_mut()
                .zip(c)
                .for_each(|(x, ci)| *x = (ci + ab * t + alpha * *x) * s),
            None => x
                .iter_mut()
                .zip(c)
                .zip(&self.theta_ref[lo..lo + c.len()])
                .for_each(|((x, ci), ti)| *x = (ci + ab * ti + alpha * *x) * s),
        }
    }

    /// The classes of a block game, whose payoff `P π` is `Q · mass(π)` spread by class
    /// ([`crate::game::class_values`]): an algorithm may compute it from the class masses of `π`
    /// (taken in the pass that writes `π`) instead of applying the operator, with the same
    /// bits (the same sums in the same order as the operator's apply).
    pub fn classes(&self) -> Option<&Classes<'a>> {
        self.classes.as_ref()
    }

    /// The features of a low-rank game (`P = ½ + φ(i)ᵀ M φ(j)`), from which an algorithm may
    /// compute `P π = ½ Σπ + φ(i)ᵀ M μ(π)` (to rounding) instead of applying the operator.
    pub fn factors(&self) -> Option<&Factors<'a>> {
        self.factors.as_ref()
    }
}

/// `g(π_k)` of the current iterate, computed lazily at most once per iterate.
pub struct CurrentPayoff {
    g: Vec<f64>,
    scratch: Vec<f64>,
    valid: bool,
    /// Seconds spent computing `g` outside the algorithm's step (by the metrics).
    outside_secs: f64,
    /// Such seconds the algorithm has since used, to be charged to it.
    charged: f64,
    /// Whether the last `get` was made by the algorithm.
    in_step: bool,
    /// `scratch` holds `exp` of the vector with this key (set by `preset_pi`).
    pi_of: Option<[u64; 4]>,
}

/// Identifies the vector an algorithm preset `π` for: its address, its first, middle and last
/// entries (a vector moved or rewritten since does not match).
pub(crate) fn pi_key(theta: &[f64]) -> [u64; 4] {
    let n = theta.len();
    let at = |i: usize| theta.get(i).map_or(0, |v| v.to_bits());
    [
        theta.as_ptr() as usize as u64,
        at(0),
        at(n / 2),
        at(n.wrapping_sub(1)),
    ]
}

impl CurrentPayoff {
    pub fn new(n: usize) -> Self {
        CurrentPayoff {
            g: vec![0.0; n],
            scratch: vec![0.0; n],
            valid: false,
            outside_secs: 0.0,
            charged: 0.0,
            in_step: false,
            pi_of: None,
        }
    }

    /// The iterate changed.
    pub fn invalidate(&mut self) {
        self.valid = false;
        self.outside_secs = 0.0;
    }

    /// A buffer for `π = exp(θ)` of the next iterate (an algorithm's fused last pass writes
    /// it); [`preset_pi`](Self::preset_pi) then says which iterate it belongs to.
    pub fn pi_buffer(&mut self) -> &mut [f64] {
        self.pi_of = None;
        &mut self.scratch
    }

    /// The [`pi_buffer`](Self::pi_buffer) holds `exp(theta)`: the next [`get`](Self::get) for
    /// `theta` skips its `exp` pass (a `get` for any other vector drops the preset).
    pub fn preset_pi(&mut self, theta: &[f64]) {
        self.pi_of = Some(pi_key(theta));
    }

    /// `g(π)` for `π = exp(theta)`, theta being the current iterate.
    pub fn get(&mut self, op: &dyn PreferenceOperator, theta: &[f64]) -> &[f64] {
        if !self.valid {
            let t = Instant::now();
            if self.pi_of.take() == Some(pi_key(theta)) {
                apply_vec(op, &self.scratch, &mut self.g);
            } else {
                payoff(op, theta, &mut self.scratch, &mut self.g);
            }
            self.valid = true;
            self.outside_secs = if self.in_step {
                0.0
            } else {
                t.elapsed().as_secs_f64()
            };
        } else if self.in_step {
            self.charged += std::mem::take(&mut self.outside_secs);
        }
        &self.g
    }

    /// Whether `g(π_k)` is already known.
    pub fn is_valid(&self) -> bool {
        self.valid
    }

    /// Marks the start/end of an algorithm step (calls in between are the algorithm's own).
    pub fn set_in_step(&mut self, in_step: bool) {
        self.in_step = in_step;
    }

    /// Seconds of metric-side payoff computations the algorithm used since the last call.
    pub fn take_charged_secs(&mut self) -> f64 {
        std::mem::take(&mut self.charged)
    }
}

/// One of the algorithms of docs/math.md §3.
pub trait Algorithm: Send {
    fn kind(&self) -> AlgoKind;
    /// The current iterate `θ_k` (normalised log-probabilities).
    fn theta(&self) -> &[f64];
    /// Advances `θ_k → θ_{k+1}`; `cur` gives `g(π_k)`.
    fn step(&mut self, ctx: &Context, cur: &mut CurrentPayoff);
    /// Operator applications per iteration (by default, its row of [`AlgoKind::TABLE`]).
    fn queries_per_iter(&self) -> u64 {
        self.kind().info().queries_per_iter
    }
    /// Operator applications before the first iteration's own (OMWU's `g(π_0)`; by default,
    /// its row of [`AlgoKind::TABLE`]).
    fn initial_queries(&self) -> u64 {
        self.kind().info().initial_queries
    }
    /// Oracle queries made so far, for algorithms that count their own (sampled preference
    /// queries); `None`: `initial_queries + k · queries_per_iter`.
    fn queries(&self) -> Option<u64> {
        None
    }
    /// Other iterates worth logging, e.g. MWU's average iterate: `(label, θ)`.
    fn extra_iterates(&self) -> Vec<(&'static str, &[f64])> {
        Vec::new()
    }
    /// Everything the next steps depend on (checkpoints): with [`Algorithm::restore`] on an
    /// algorithm built with the same parameters, the run continues bit for bit.
    fn state(&self) -> AlgoState;
    /// Takes over a state saved by [`Algorithm::state`]; `Err` if its shape does not fit.
    fn restore(&mut self, s: AlgoState) -> crate::error::Result<()>;
}

/// An algorithm's internal state: its vectors (each of length `n`) and counters, in an order
/// each algorithm defines.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlgoState {
    #[serde(with = "crate::io::blobfile::f64s_list")]
    pub vectors: Vec<Vec<f64>>,
    pub counters: Vec<u64>,
}

impl AlgoState {
    /// Checks that the state has `vectors` vectors of length `n` and `counters` counters.
    pub fn expect(self, vectors: usize, n: usize, counters: usize) -> crate::error::Result<Self> {
        let ok = self.vectors.len() == vectors
            && self.vectors.iter().all(|v| v.len() == n)
            && self.counters.len() == counters;
        if !ok {
            return Err(crate::error::Error::Param(format!(
                "saved algorithm state has {} vectors (lengths {:?}) and {} counters; \
                 expected {vectors} of length {n} and {counters}",
                self.vectors.len(),
                self.vectors.iter().map(Vec::len).collect::<Vec<_>>(),
                self.counters.len()
            )));
        }
        Ok(self)
    }

    /// The state of an algorithm whose only state is its iterate.
    pub fn theta_only(theta: &[f64]) -> Self {
        AlgoState {
            vectors: vec![theta.to_vec()],
            counters: Vec::new(),
        }
    }

    /// Restores an iterate saved by [`AlgoState::theta_only`].
    pub fn restore_theta(self, theta: &mut Vec<f64>) -> crate::error::Result<()> {
        let mut s = self.expect(1, theta.len(), 0)?;
        *theta = s.vectors.remove(0);
        Ok(())
    }
}

/// Builds an algorithm starting from `theta0` with step `alpha` (see [`AlgoKind::TABLE`]).
pub fn build(kind: AlgoKind, theta0: &[f64], alpha: f64, schedule: Schedule) -> Box<dyn Algorithm> {
    (kind.info().build)(theta0, alpha, schedule)
}

/// `out = prox(c, g) = norm((c + αβ θ_μ + α g) / (1 + αβ))` (docs/math.md §2).
pub fn prox(ctx: &Context, alpha: f64, c: &[f64], g: &[f64], out: &mut [f64]) {
    prox_exp(ctx, alpha, c, g, out, None)
}

/// [`prox`], also writing `pi = exp(out)` when given, in two passes over the vectors: the prox
/// with each chunk's maximum and exponential sum taken while it is in cache
/// ([`vector::fill_lse_chunks`]), then the normalisation and `exp` ([`vector::shift`]). A uniform
/// reference (`θ_μ` constant) is not read. The bits of `prox` then `exp`.
pub fn prox_exp(
    ctx: &Context,
    alpha: f64,
    c: &[f64],
    g: &[f64],
    out: &mut [f64],
    pi: Option<&mut [f64]>,
) {
    let (m, ls) = prox_fill(ctx, alpha, c, g, out);
    let to = match pi {
        Some(pi) => vector::Shifted::ThetaAndPi(pi),
        None => vector::Shifted::Theta,
    };
    vector::shift(out, m, ls, to);
}

/// Only `pi = exp(prox(c, g))`, computed in `pi` itself (the unnormalised log-policy is
/// written there, then exponentiated in place): for a prox whose log-policy is needed only
/// through its exponential (Nash-MP's `π½`). The bits of [`prox_exp`]'s `pi`, one vector
/// and one write fewer.
pub fn prox_pi(ctx: &Context, alpha: f64, c: &[f64], g: &[f64], pi: &mut [f64]) {
    let (m, ls) = prox_fill(ctx, alpha, c, g, pi);
    vector::shift(pi, m, ls, vector::Shifted::ExpInPlace);
}

/// `out = (c + αβ θ_μ + α g) / (1 + αβ)` unnormalised, and its `(m, ln S)`.
fn prox_fill(ctx: &Context, alpha: f64, c: &[f64], g: &[f64], out: &mut [f64]) -> (f64, f64) {
    vector::fill_lse_chunks(out, |lo, x| {
        x.copy_from_slice(&g[lo..lo + x.len()]);
        ctx.prox_in_place(alpha, c, lo, x);
    })
}

#[cfg(test)]
mod tests;
