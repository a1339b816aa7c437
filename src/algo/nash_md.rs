//! Nash-MD (Munos et al. 2023): `θ^μ = norm((1−α_kβ)θ_k + α_kβθ_μ)`,
//! `θ_{k+1} = norm(θ^μ + α_k g(π^μ))`, with `α_k = α` or `α / (1 + αβk)`.

use super::{AlgoKind, Algorithm, Context, CurrentPayoff, Schedule};
use crate::game::payoff;
use crate::kernels::vector;

pub struct NashMd {
    alpha: f64,
    schedule: Schedule,
    k: u64,
    theta: Vec<f64>,
    mix: Vec<f64>,
    g_mix: Vec<f64>,
    scratch: Vec<f64>,
}

impl NashMd {
    pub fn new(theta0: &[f64], alpha: f64, schedule: Schedule) -> Self {
        let n = theta0.len();
        NashMd {
            alpha,
            schedule,
            k: 0,
            theta: theta0.to_vec(),
            mix: vec![0.0; n],
            g_mix: vec![0.0; n],
            scratch: vec![0.0; n],
        }
    }

    fn alpha_k(&self, beta: f64) -> f64 {
        match self.schedule {
            Schedule::Constant => self.alpha,
            Schedule::Decaying => self.alpha / (1.0 + self.alpha * beta * self.k as f64),
        }
    }
}

impl Algorithm for NashMd {
    fn kind(&self) -> AlgoKind {
        AlgoKind::NashMd
    }
    fn theta(&self) -> &[f64] {
        &self.theta
    }
    /// `[θ]` and the iteration counter of the schedule.
    fn state(&self) -> super::AlgoState {
        super::AlgoState {
            vectors: vec![self.theta.clone()],
            counters: vec![self.k],
        }
    }
    fn restore(&mut self, s: super::AlgoState) -> crate::error::Result<()> {
        let mut s = s.expect(1, self.theta.len(), 1)?;
        self.k = s.counters[0];
        self.theta = s.vectors.remove(0);
        Ok(())
    }
    fn step(&mut self, ctx: &Context, _cur: &mut CurrentPayoff) {
        let a = self.alpha_k(ctx.beta);
        let ab = a * ctx.beta;
        let (theta, tr) = (&self.theta, ctx.theta_ref);
        vector::fill(&mut self.mix, |i| (1.0 - ab) * theta[i] + ab * tr[i]);
        vector::normalise(&mut self.mix);
        payoff(ctx.op, &self.mix, &mut self.scratch, &mut self.g_mix);
        let (mix, g) = (&self.mix, &self.g_mix);
        vector::fill(&mut self.theta, |i| mix[i] + a * g[i]);
        vector::normalise(&mut self.theta);
        self.k += 1;
    }
}
