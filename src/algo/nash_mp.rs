//! Nash Mirror Prox: `θ½ = prox(θ_k, g(π_k))`, `θ_{k+1} = prox(θ_k, g(π½))`.

use super::{prox_exp, prox_pi, AlgoKind, Algorithm, Context, CurrentPayoff};
use crate::game::apply_vec;

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
    /// Fused passes: each prox also writes `exp` of its result, so `π½ = exp(θ½)` and
    /// `π_{k+1} = exp(θ_{k+1})` (handed to `cur` for the next `g(π_{k+1})`) cost no pass of
    /// their own; `θ½` itself is needed only through `π½`, so it is never normalised
    /// ([`prox_pi`]).
    fn step(&mut self, ctx: &Context, cur: &mut CurrentPayoff) {
        let g = cur.get(ctx.op, &self.theta);
        prox_pi(
            ctx,
            self.alpha,
            &self.theta,
            g,
            &mut self.half,
            &mut self.scratch,
        );
        apply_vec(ctx.op, &self.scratch, &mut self.g_half);
        // prox is element-wise before its normalisation, so it may write over its centre.
        let center = std::mem::take(&mut self.theta);
        let mut next = std::mem::take(&mut self.scratch);
        let (alpha, g_half) = (self.alpha, &self.g_half);
        prox_exp(
            ctx,
            alpha,
            &center,
            g_half,
            &mut next,
            Some(cur.pi_buffer()),
        );
        cur.preset_pi(&next);
        self.theta = next;
        self.scratch = center;
    }
}
