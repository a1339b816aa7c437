//! OMWU with its next product prefetched, so that a lock-step pass carries two of its vectors.
//!
//! An OMWU iteration makes one operator application of its own, `g(π_{k+½})` with
//! `θ_{k+½} = prox(θ_k, g(π_{k−½}))`, and the run's metrics make another, `g(π_{k+1})`. In lock
//! step each is a pass: OMWU at β = 0.01 (799 iterations) took 1599 passes where Nash-MP, MMD
//! and EGPO take 801, and its second half ran alone. But `θ_{k+1½}` depends only on `θ_{k+1}`
//! and `g(π_{k+½})`, both known when iteration `k` ends: so after each step this wrapper
//! computes `π_{k+1}` and `π_{k+1½}` and applies both in one two-column
//! [`apply`](crate::game::PreferenceOperator::apply) on its [`Lane`], which keeps
//! the products; the metrics' `g(π_{k+1})` and the next step's `g(π_{k+1½})` are then answered
//! from there (their vectors are the same bits: the same `exp` and `prox` of the same inputs).
//! The run's passes halve, its results do not change: the wrapped OMWU does every computation
//! it did before, and a product that was not prefetched (the first step, after a resume) is
//! simply applied. The last prefetch of a run is not used (one vector more per run).
//!
//! [`Lane`]: super::lockstep::Lane

use crate::algo::{self, prox_exp, AlgoKind, AlgoState, Algorithm, Context, CurrentPayoff};
use crate::error::Result;
use crate::kernels::vector;
use crate::run::{AlgoFactory, RunSpec};

/// Vectors of `n` `f64` a prefetching run holds beyond a plain one (its half step, the two
/// vectors and products it prefetches, the lane's copies of them, a copy of the state).
pub const EXTRA_VECTORS: usize = 12;

/// Builds the sweep's algorithms: OMWU prefetching, the others as they are.
#[derive(Debug)]
pub struct Prefetching;

impl AlgoFactory for Prefetching {
    fn build(&self, spec: &RunSpec) -> Result<Box<dyn Algorithm>> {
        let inner = algo::build(spec.kind, spec.theta0, spec.step.alpha, spec.schedule);
        Ok(match spec.kind {
            AlgoKind::Omwu if spec.schedule == algo::Schedule::Constant => {
                let n = spec.theta0.len();
                Box::new(OmwuAhead {
                    inner,
                    alpha: spec.step.alpha,
                    half: vec![0.0; n],
                    pi: vec![0.0; n],
                    pi_half: vec![0.0; n],
                    out: [vec![0.0; n], vec![0.0; n]],
                })
            }
            _ => inner,
        })
    }
    fn fingerprint(&self) -> String {
        // The same results as the plain algorithms.
        String::new()
    }
    fn record(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

/// OMWU, prefetching after each step the two products the run asks for next.
struct OmwuAhead {
    inner: Box<dyn Algorithm>,
    alpha: f64,
    half: Vec<f64>,
    pi: Vec<f64>,
    pi_half: Vec<f64>,
    out: [Vec<f64>; 2],
}

impl Algorithm for OmwuAhead {
    fn kind(&self) -> AlgoKind {
        self.inner.kind()
    }
    fn theta(&self) -> &[f64] {
        self.inner.theta()
    }
    fn step(&mut self, ctx: &Context, cur: &mut CurrentPayoff) {
        self.inner.step(ctx, cur);
        // OMWU's state: θ_{k+1}, then g(π_{k+½}).
        let st = self.inner.state();
        let [theta, g_prev] = &st.vectors[..] else {
            return;
        };
        // As the metrics' `payoff` (exp) and the next step's `prox` then `payoff` compute them.
        vector::exp_into(theta, &mut self.pi);
        prox_exp(
            ctx,
            self.alpha,
            theta,
            g_prev,
            &mut self.half,
            Some(&mut self.pi_half),
        );
        let [o1, o2] = &mut self.out;
        crate::game::apply_cols(
            ctx.op,
            &[&self.pi, &self.pi_half],
            &mut [&mut o1[..], &mut o2[..]],
        );
    }
    fn queries_per_iter(&self) -> u64 {
        self.inner.queries_per_iter()
    }
    fn initial_queries(&self) -> u64 {
        self.inner.initial_queries()
    }
    fn queries(&self) -> Option<u64> {
        self.inner.queries()
    }
    fn extra_iterates(&self) -> Vec<(&'static str, &[f64])> {
        self.inner.extra_iterates()
    }
    fn state(&self) -> AlgoState {
        self.inner.state()
    }
    fn restore(&mut self, s: AlgoState) -> Result<()> {
        self.inner.restore(s)
    }
}
