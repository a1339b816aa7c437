//! Magnetic mirror descent (one-step regularised mirror descent): `θ_{k+1} = prox(θ_k, g(π_k))`.

use super::{prox, AlgoKind, Algorithm, Context, CurrentPayoff};

pub struct Mmd {
    alpha: f64,
    theta: Vec<f64>,
    next: Vec<f64>,
}

impl Mmd {
    pub fn new(theta0: &[f64], alpha: f64) -> Self {
        Mmd {
            alpha,
            theta: theta0.to_vec(),
            next: vec![0.0; theta0.len()],
        }
    }
}

impl Algorithm for Mmd {
    fn kind(&self) -> AlgoKind {
        AlgoKind::Mmd
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
        prox(ctx, self.alpha, &self.theta, g, &mut self.next);
        std::mem::swap(&mut self.theta, &mut self.next);
    }
}
