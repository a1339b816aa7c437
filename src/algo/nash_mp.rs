//! Nash Mirror Prox: `θ½ = prox(θ_k, g(π_k))`, `θ_{k+1} = prox(θ_k, g(π½))`.

use super::linear::{self, ClassPayoff, FactorPayoff, Linear};
use super::{pi_key, prox_exp, prox_pi, AlgoKind, Algorithm, Context, CurrentPayoff};
use crate::game::apply_vec;
use crate::kernels::vector::{self, Shifted};

pub struct NashMp {
    alpha: f64,
    theta: Vec<f64>,
    g_half: Vec<f64>,
    scratch: Vec<f64>,
    /// The statistics of `π = exp(θ)` for the `θ` with this key (block and low-rank games,
    /// [`NashMp::step_linear`]).
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
    /// ([`prox_pi`]). On a block or low-rank game the payoffs come from a few statistics of
    /// the policy instead ([`NashMp::step_linear`]).
    fn step(&mut self, ctx: &Context, cur: &mut CurrentPayoff) {
        if let Some(cls) = ctx.classes() {
            return match cls.u8_ids() {
                Some(b) => self.step_linear(ctx, &ClassPayoff::new(cls, |i| b[i] as usize)),
                None => self.step_linear(ctx, &ClassPayoff::new(cls, |i| cls.class_of(i) as usize)),
            };
        }
        if let Some(f) = ctx.factors() {
            return self.step_linear(ctx, &FactorPayoff::of(f));
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
    /// The step on a game whose payoff is linear in a few statistics of the policy (block
    /// and low-rank games, [`super::linear`]), in two passes over memory instead of the
    /// general step's five, with no `n`-vector of payoffs:
    ///
    /// 1. `π½`'s statistics in a pass that stores nothing: per chunk, the prox `x` of
    ///    `g(π_k)` (from `π_k`'s statistics) in a buffer, then
    ///    `E_c = Σ_{i∈c} exp(x_i − m_c) s(i)`, and `stats = Σ_c e^{m_c − m} E_c` divided by its
    ///    total weight (the policy `π½` is never written);
    /// 2. `θ_{k+1}` (the prox of `g(π½)`), normalised, and the statistics of `exp(θ_{k+1})`
    ///    summed chunk by chunk as it is written, kept for the next step's `g(π_{k+1})`.
    ///    `π_{k+1}` is not written: metrics that need it compute it.
    ///
    /// Without kept statistics (the first step, after a restore) they are summed from `θ_k`
    /// ([`linear::stats_of_exp`], the kept statistics' bits), so a resumed run ends on the
    /// same bits. The payoffs are the operator's to rounding, not bit for bit (tested).
    fn step_linear(&mut self, ctx: &Context, lin: &impl Linear) {
        let (n, dim, alpha) = (self.theta.len(), lin.dim(), self.alpha);
        // The prox over a chunk at lo of the payoff of coefficients u.
        let prox = |c: &[f64], u: &[f64], lo: usize, x: &mut [f64]| {
            lin.payoff_chunk(lo, u, x);
            ctx.prox_in_place(alpha, c, lo, x);
        };
        // 1. π½'s statistics.
        let theta = &self.theta;
        let stats_k = match self.mass.take() {
            Some((key, st)) if key == pi_key(theta) => st,
            _ => linear::stats_of_exp(lin, theta),
        };
        let u = lin.coeffs(&stats_k);
        let visit = |lo: usize, x: &mut [f64], m: f64, part: &mut [f64]| {
            if m.is_finite() {
                crate::kernels::exp::shifted_exp_in_place(x, m, 0.0);
                lin.add(lo, x, part);
            }
        };
        let (maxima, parts) = vector::chunk_visit(n, |lo, x| prox(theta, &u, lo, x), dim, visit);
        let m = maxima.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        let mut acc = vec![0.0; dim];
        for (mc, p) in maxima.iter().zip(parts.chunks(dim)) {
            if mc.is_finite() {
                let w = crate::kernels::exp::exp(mc - m);
                for (a, v) in acc.iter_mut().zip(p) {
                    *a += w * v;
                }
            }
        }
        let total = lin.total(&acc);
        let u_half = lin.coeffs(&acc.iter().map(|a| a / total).collect::<Vec<_>>());
        // 2. θ_{k+1} over the scratch buffer, and the statistics of exp(θ_{k+1}).
        let center = std::mem::take(&mut self.theta);
        let mut next = std::mem::take(&mut self.scratch);
        let (m, ls) = vector::fill_lse_chunks(&mut next, |lo, x| prox(&center, &u_half, lo, x));
        let parts = vector::shift_visit(&mut next, m, ls, Shifted::Theta, dim, |lo, th, part| {
            linear::add_exp_stats(lin, lo, th, part)
        });
        self.mass = Some((pi_key(&next), linear::sum_parts(&parts, dim)));
        self.theta = next;
        self.scratch = center;
    }
}
