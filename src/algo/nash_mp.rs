//! Nash Mirror Prox: `θ½ = prox(θ_k, g(π_k))`, `θ_{k+1} = prox(θ_k, g(π½))`.

use super::{
    pi_key, prox_exp, prox_fill_with, prox_pi, AlgoKind, Algorithm, Context, CurrentPayoff,
};
use crate::game::{apply_vec, class_values, Classes};
use crate::kernels::vector::{self, Shifted};

pub struct NashMp {
    alpha: f64,
    theta: Vec<f64>,
    g_half: Vec<f64>,
    scratch: Vec<f64>,
    /// The class masses of `π = exp(θ)` for the `θ` with this key (block games: taken in the
    /// pass that wrote `π`, [`Context::classes`]).
    mass: Option<([u64; 4], Vec<f64>)>,
}

impl NashMp {
    pub fn new(theta0: &[f64], alpha: f64) -> Self {
        let n = theta0.len();
        NashMp {
            alpha,
            theta: theta0.to_vec(),
            g_half: vec![0.0; n],
            scratch: vec![0.0; n],
            mass: None,
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
        self.mass = None;
        s.restore_theta(&mut self.theta)
    }
    /// Fused passes: each prox also writes `exp` of its result, so `π½ = exp(θ½)` and
    /// `π_{k+1} = exp(θ_{k+1})` (handed to `cur` for the next `g(π_{k+1})`) cost no pass of
    /// their own; `θ½` itself is needed only through `π½`, so it is never normalised
    /// ([`prox_pi`]). On a block game the payoffs come from class masses instead
    /// ([`NashMp::step_classes`]).
    fn step(&mut self, ctx: &Context, cur: &mut CurrentPayoff) {
        if let Some(cls) = ctx.classes() {
            return match cls.u8_ids() {
                Some(b) => self.step_classes(ctx, cur, cls, |i| b[i] as usize),
                None => self.step_classes(ctx, cur, cls, |i| cls.class_of(i) as usize),
            };
        }
        let g = cur.get(ctx.op, &self.theta);
        prox_pi(ctx, self.alpha, &self.theta, g, &mut self.scratch);
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

impl NashMp {
    /// The step on a block game (`P π = Q · mass(π)` spread by class `t(i)`): each pass
    /// that writes a policy also sums its class masses (chunk by chunk, in the order of the
    /// operator's apply), and the prox reads the payoff as `v[t(i)]`, so the `n`-vectors
    /// `g(π_k)` and `g(π½)` are neither written nor read and `π` is not read again: the bits
    /// of [`Algorithm::step`] through the operator, in fewer passes over memory.
    fn step_classes(
        &mut self,
        ctx: &Context,
        cur: &mut CurrentPayoff,
        cls: &Classes,
        t: impl Fn(usize) -> usize + Sync + Send + Copy,
    ) {
        let (k, q, alpha) = (cls.k(), &cls.q[..], self.alpha);
        let values = |mass: &[f64]| {
            let mut v = vec![0.0; k];
            class_values(q, k, mass, &mut v);
            v
        };
        let masses = |x: &mut [f64], m: f64, ls: f64, to: Shifted| {
            let parts = vector::shift_visit(x, m, ls, to, k, |lo, pi, part| {
                for (j, p) in pi.iter().enumerate() {
                    part[t(lo + j)] += p;
                }
            });
            let mut mass = vec![0.0; k];
            for p in parts.chunks(k) {
                for a in 0..k {
                    mass[a] += p[a];
                }
            }
            mass
        };
        // π½, in `scratch`, from g(π_k): the kept masses of π_k, else the operator's product.
        let (m, ls) = match self.mass.take() {
            Some((key, mass)) if key == pi_key(&self.theta) => {
                let v = values(&mass);
                prox_fill_with(ctx, alpha, &self.theta, |i| v[t(i)], &mut self.scratch)
            }
            _ => {
                let g = cur.get(ctx.op, &self.theta);
                prox_fill_with(ctx, alpha, &self.theta, |i| g[i], &mut self.scratch)
            }
        };
        let v_half = values(&masses(&mut self.scratch, m, ls, Shifted::ExpInPlace));
        // θ_{k+1} over π½'s buffer, π_{k+1} into `cur`'s, with its masses kept.
        let center = std::mem::take(&mut self.theta);
        let mut next = std::mem::take(&mut self.scratch);
        let (m, ls) = prox_fill_with(ctx, alpha, &center, |i| v_half[t(i)], &mut next);
        let mass = masses(&mut next, m, ls, Shifted::ThetaAndPi(cur.pi_buffer()));
        cur.preset_pi(&next);
        self.mass = Some((pi_key(&next), mass));
        self.theta = next;
        self.scratch = center;
    }
}
