//! Nash Mirror Prox: `θ½ = prox(θ_k, g(π_k))`, `θ_{k+1} = prox(θ_k, g(π½))`.

use super::{prox, AlgoKind, Algorithm, Context, CurrentPayoff};
use crate::game::payoff;

pub struct NashMp {
    alpha: f64,
    theta: Vec<f64>,
    half: Vec<f64>,
    g_half: Vec<f64>,
    scratch: Vec<f64>,
}

impl NashMp {
    pub fn new(theta0: &[f64], alpha: f64) -> Self {
        let n = theta0.len();
        NashMp {
            alpha,
            theta: theta0.to_vec(),
            half: vec![0.0; n],
            g_half: vec![0.0; n],
            scratch: vec![0.0; n],
        }
    }
}

impl Algorithm for NashMp {
    fn kind(&self) -> AlgoKind {
        AlgoKind::NashMp
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
        let g = cur.get(ctx.op, &self.theta);
        prox(ctx, self.alpha, &self.theta, g, &mut self.half);
        payoff(ctx.op, &self.half, &mut self.scratch, &mut self.g_half);
        // prox is element-wise before its normalisation, so it may write over its centre.
        let center = std::mem::take(&mut self.theta);
        let mut next = std::mem::take(&mut self.scratch);
        prox(ctx, self.alpha, &center, &self.g_half, &mut next);
        self.theta = next;
        self.scratch = center;
    }
}
