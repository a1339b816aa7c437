//! Multiplicative weights: `θ_{k+1} = norm(θ_k + α g(π_k))`. The last iterate cycles; the
//! average iterate `π̄_K = (1/(K+1)) Σ_{k≤K} π_k` is tracked in log space and logged as `mwu-avg`.

use super::{AlgoKind, Algorithm, Context, CurrentPayoff};
use crate::kernels::vector;

pub struct Mwu {
    alpha: f64,
    theta: Vec<f64>,
    /// `log Σ_{k≤K} π_k`, entry-wise.
    log_sum: Vec<f64>,
    avg: Vec<f64>,
    next: Vec<f64>,
}

impl Mwu {
    pub fn new(theta0: &[f64], alpha: f64, n: usize) -> Self {
        Mwu {
            alpha,
            theta: theta0.to_vec(),
            log_sum: theta0.to_vec(),
            avg: theta0.to_vec(),
            next: vec![0.0; n],
        }
    }
}

fn log_add_exp(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    if lo == f64::NEG_INFINITY {
        return hi;
    }
    hi + (lo - hi).exp().ln_1p()
}

impl Algorithm for Mwu {
    fn kind(&self) -> AlgoKind {
        AlgoKind::Mwu
    }
    fn theta(&self) -> &[f64] {
        &self.theta
    }
    fn step(&mut self, ctx: &Context, cur: &mut CurrentPayoff) {
        let g = cur.get(ctx.op, &self.theta);
        let (theta, a) = (&self.theta, self.alpha);
        vector::fill(&mut self.next, |i| theta[i] + a * g[i]);
        vector::normalise(&mut self.next);
        std::mem::swap(&mut self.theta, &mut self.next);
        // log Σ π_k: `next` (free now) receives the new sum, then becomes `log_sum`.
        let (theta, ls) = (&self.theta, &self.log_sum);
        vector::fill(&mut self.next, |i| log_add_exp(ls[i], theta[i]));
        std::mem::swap(&mut self.log_sum, &mut self.next);
        self.avg.copy_from_slice(&self.log_sum);
        vector::normalise(&mut self.avg);
    }
    /// `[θ, log Σ π_k, θ̄]`.
    fn state(&self) -> super::AlgoState {
        super::AlgoState {
            vectors: vec![self.theta.clone(), self.log_sum.clone(), self.avg.clone()],
            counters: Vec::new(),
        }
    }
    fn restore(&mut self, s: super::AlgoState) -> crate::error::Result<()> {
        let s = s.expect(3, self.theta.len(), 0)?;
        let [theta, log_sum, avg]: [Vec<f64>; 3] = s.vectors.try_into().expect("checked length");
        (self.theta, self.log_sum, self.avg) = (theta, log_sum, avg);
        Ok(())
    }
    fn extra_iterates(&self) -> Vec<(&'static str, &[f64])> {
        vec![("mwu-avg", &self.avg)]
    }
}
