//! Optimistic mirror descent (past extragradient):
//! `θ½ = prox(θ_k, g_prev)`, `g_prev ← g(π½)`, `θ_{k+1} = prox(θ_k, g_prev)`, `g_prev₀ = g(π_0)`.

use super::{prox, AlgoKind, Algorithm, Context, CurrentPayoff};
use crate::game::payoff;

pub struct Omwu {
    alpha: f64,
    theta: Vec<f64>,
    half: Vec<f64>,
    g_prev: Option<Vec<f64>>,
    scratch: Vec<f64>,
}

impl Omwu {
    pub fn new(theta0: &[f64], alpha: f64) -> Self {
        let n = theta0.len();
        Omwu {
            alpha,
            theta: theta0.to_vec(),
            half: vec![0.0; n],
            g_prev: None,
            scratch: vec![0.0; n],
        }
    }
}

impl Algorithm for Omwu {
    fn kind(&self) -> AlgoKind {
        AlgoKind::Omwu
    }
    fn theta(&self) -> &[f64] {
        &self.theta
    }
    /// `[θ]` before the first step, `[θ, g_prev]` after.
    fn state(&self) -> super::AlgoState {
        let mut vectors = vec![self.theta.clone()];
        vectors.extend(self.g_prev.clone());
        super::AlgoState {
            vectors,
            counters: Vec::new(),
        }
    }
    fn restore(&mut self, s: super::AlgoState) -> crate::error::Result<()> {
        let count = s.vectors.len().clamp(1, 2);
        let mut s = s.expect(count, self.theta.len(), 0)?;
        self.g_prev = (s.vectors.len() == 2).then(|| s.vectors.remove(1));
        self.theta = s.vectors.remove(0);
        Ok(())
    }
    fn step(&mut self, ctx: &Context, cur: &mut CurrentPayoff) {
        let mut g_prev = match self.g_prev.take() {
            Some(g) => g,
            None => cur.get(ctx.op, &self.theta).to_vec(),
        };
        prox(ctx, self.alpha, &self.theta, &g_prev, &mut self.half);
        payoff(ctx.op, &self.half, &mut self.scratch, &mut g_prev);
        prox(ctx, self.alpha, &self.theta, &g_prev, &mut self.scratch);
        std::mem::swap(&mut self.theta, &mut self.scratch);
        self.g_prev = Some(g_prev);
    }
}
