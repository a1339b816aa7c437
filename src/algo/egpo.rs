//! Explicit entropic extragradient (Cen et al. 2021; tabular EGPO):
//! `b = (1−αβ)θ_k + αβθ_μ`, `θ½ = norm(b + α g(π_k))`, `θ_{k+1} = norm(b + α g(π½))`.

use super::{AlgoKind, Algorithm, Context, CurrentPayoff};
use crate::game::payoff;
use crate::kernels::vector;

pub struct Egpo {
    alpha: f64,
    theta: Vec<f64>,
    base: Vec<f64>,
    half: Vec<f64>,
    g_half: Vec<f64>,
    scratch: Vec<f64>,
}

impl Egpo {
    pub fn new(theta0: &[f64], alpha: f64) -> Self {
        let n = theta0.len();
        Egpo {
            alpha,
            theta: theta0.to_vec(),
            base: vec![0.0; n],
            half: vec![0.0; n],
            g_half: vec![0.0; n],
            scratch: vec![0.0; n],
        }
    }
}

impl Algorithm for Egpo {
    fn kind(&self) -> AlgoKind {
        AlgoKind::Egpo
    }
    fn theta(&self) -> &[f64] {
        &self.theta
    }
    fn state(&self) -> super::AlgoState {
        super::AlgoState::theta_only(&self.theta)
    }
    fn restore(&mut self, s: super::AlgoState) -> crate::error::Result<()> {
        s.restore_theta(&mut self.theta)
    }
    fn step(&mut self, ctx: &Context, cur: &mut CurrentPayoff) {
        let (a, ab) = (self.alpha, self.alpha * ctx.beta);
        let (theta, tr) = (&self.theta, ctx.theta_ref);
        vector::fill(&mut self.base, |i| (1.0 - ab) * theta[i] + ab * tr[i]);
        let g = cur.get(ctx.op, &self.theta);
        let base = &self.base;
        vector::fill(&mut self.half, |i| base[i] + a * g[i]);
        vector::normalise(&mut self.half);
        payoff(ctx.op, &self.half, &mut self.scratch, &mut self.g_half);
        let gh = &self.g_half;
        vector::fill(&mut self.theta, |i| base[i] + a * gh[i]);
        vector::normalise(&mut self.theta);
    }
}
