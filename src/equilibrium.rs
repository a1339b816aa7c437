//! The β-regularised equilibrium `π*` in `f64`, with its certificate (MATH.md §1, §5).
//!
//! Nash-MP at `α = 2` is run until the fixed-point residual `span(θ − θ_μ − g(π)/β)` drops below
//! the target, or stops improving (the floor the storage precision allows), or the iteration
//! limit is reached. The residual is free: it uses `g(π_k)`, which the next step needs anyway.

use crate::algo::{prox, Context};
use crate::error::{Error, Result};
use crate::game::{payoff, PreferenceOperator};
use crate::metrics;

/// Settings of the equilibrium solve.
#[derive(Clone, Copy, Debug)]
pub struct EquilibriumParams {
    pub beta: f64,
    /// Stop once the residual is below this.
    pub target_residual: f64,
    pub max_iters: u64,
}

impl EquilibriumParams {
    pub fn new(beta: f64) -> Self {
        EquilibriumParams {
            beta,
            target_residual: 1e-12,
            max_iters: 1_000_000,
        }
    }
}

/// Why the solve stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EqStop {
    /// The residual reached the target.
    Converged,
    /// The residual stopped improving: the storage precision's floor.
    Stalled,
    /// The iteration limit.
    MaxIters,
}

/// `π*` and its certificate.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Equilibrium {
    #[serde(skip)]
    pub theta: Vec<f64>,
    pub iterations: u64,
    pub queries: u64,
    pub residual: f64,
    pub exploit: f64,
    pub exploit0: f64,
    pub stop: EqStop,
}

/// Solves for `π*` of `op` at `params.beta > 0` with reference `θ_μ`, starting from `μ`.
pub fn solve(
    op: &dyn PreferenceOperator,
    theta_ref: &[f64],
    params: EquilibriumParams,
) -> Result<Equilibrium> {
    solve_from(op, theta_ref, theta_ref, params)
}

/// As [`solve`], starting from `theta_start` (e.g. the solution at a nearby β, for β paths).
pub fn solve_from(
    op: &dyn PreferenceOperator,
    theta_ref: &[f64],
    theta_start: &[f64],
    params: EquilibriumParams,
) -> Result<Equilibrium> {
    let beta = params.beta;
    if !(beta > 0.0 && beta.is_finite()) {
        return Err(Error::Param(format!(
            "the regularised equilibrium needs β > 0, got β = {beta}"
        )));
    }
    let n = op.n();
    let ctx = Context {
        op,
        theta_ref,
        beta,
    };
    let alpha = 2.0;
    let mut theta = theta_start.to_vec();
    let mut half = vec![0.0; n];
    let mut next = vec![0.0; n];
    let mut g = vec![0.0; n];
    let mut g_half = vec![0.0; n];
    let mut scratch = vec![0.0; n];
    let mut best = f64::INFINITY;
    let mut best_at = 0u64;
    // The guaranteed contraction is (1 + 2β) per iteration, so a tenfold improvement takes at
    // most about ln 10 / ln(1 + 2β) iterations; a run that does not improve its best residual
    // tenfold in twice that has hit the floor of the operator's precision.
    let window = (2.0 * std::f64::consts::LN_10 / (2.0 * beta).ln_1p()).ceil() as u64 + 50;
    let mut k = 0u64;
    let mut queries = 0u64;
    let stop = loop {
        payoff(op, &theta, &mut scratch, &mut g);
        queries += 1;
        let r = metrics::residual(&theta, &g, theta_ref, beta);
        if r < params.target_residual {
            break EqStop::Converged;
        }
        if r < best * 0.1 {
            best = r;
            best_at = k;
        }
        if k >= params.max_iters {
            break EqStop::MaxIters;
        }
        if k - best_at > window {
            break EqStop::Stalled;
        }
        prox(&ctx, alpha, &theta, &g, &mut half);
        payoff(op, &half, &mut scratch, &mut g_half);
        queries += 1;
        prox(&ctx, alpha, &theta, &g_half, &mut next);
        std::mem::swap(&mut theta, &mut next);
        k += 1;
    };
    Ok(Equilibrium {
        residual: metrics::residual(&theta, &g, theta_ref, beta),
        exploit: metrics::exploit(&theta, &g, theta_ref, beta),
        exploit0: metrics::exploit0(&g),
        theta,
        iterations: k,
        queries,
        stop,
    })
}
