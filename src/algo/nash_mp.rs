//! Nash Mirror Prox: `θ½ = prox(θ_k, g(π_k))`, `θ_{k+1} = prox(θ_k, g(π½))`.

use super::{
    pi_key, prox_exp, prox_fill_with, prox_pi, AlgoKind, Algorithm, Context, CurrentPayoff,
};
use crate::game::{apply_vec, class_values, Classes};
use crate::kernels::vector::{self, Shifted, CHUNK, PAR_MIN};
use rayon::prelude::*;

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
    /// The step on a block game (`P π = Q · mass(π)` spread by class `t(i)`), in two passes
    /// over memory instead of the general step's five, with no `n`-vector of payoffs:
    ///
    /// 1. `π½`'s class masses in a pass that stores nothing: the prox of `g(π_k) = v_k[t(i)]`
    ///    per chunk in a buffer, `E_{c,a} = Σ_{i∈c, t(i)=a} exp(x_i − m_c)`, and
    ///    `mass_a = Σ_c e^{m_c − m} E_{c,a} / Σ_{c,b} e^{m_c − m} E_{c,b}` (the policy `π½` is
    ///    never written);
    /// 2. `θ_{k+1}` (the prox of `v½[t(i)]`), normalised, and the class masses of
    ///    `exp(θ_{k+1})` summed as the operator's apply sums them, kept for the next step's
    ///    `g(π_{k+1})`. `π_{k+1}` is not written: metrics that need it compute it.
    ///
    /// Without kept masses (the first step, after a restore) they are summed from `θ_k` by
    /// [`masses_of_exp`], with the kept masses' bits, so a resumed run ends on the same bits.
    /// `π½`'s masses are summed in another order than an apply on `π½` would (rounding-level
    /// differences from the general step, tested).
    fn step_classes(
        &mut self,
        ctx: &Context,
        _cur: &mut CurrentPayoff,
        cls: &Classes,
        t: impl Fn(usize) -> usize + Sync + Send + Copy,
    ) {
        let (n, k, q, alpha) = (self.theta.len(), cls.k(), &cls.q[..], self.alpha);
        let values = |mass: &[f64]| {
            let mut v = vec![0.0; k];
            class_values(q, k, mass, &mut v);
            v
        };
        let ab = alpha * ctx.beta;
        let s = 1.0 / (1.0 + ab);
        let (uniform, tr) = (ctx.uniform_ref(), ctx.theta_ref);
        // The prox's value at i for the payoff value gi (the operations of `prox_fill_with`).
        let prox = |c: &[f64], i: usize, gi: f64| match uniform {
            Some(u) => (c[i] + ab * u + alpha * gi) * s,
            None => (c[i] + ab * tr[i] + alpha * gi) * s,
        };
        // 1. π½'s class masses.
        let visit = |lo: usize, x: &mut [f64], m: f64, part: &mut [f64]| {
            if m.is_finite() {
                crate::kernels::exp::shifted_exp_in_place(x, m, 0.0);
                for (j, e) in x.iter().enumerate() {
                    part[t(lo + j)] += e;
                }
            }
        };
        let theta = &self.theta;
        let mass_k = match self.mass.take() {
            Some((key, mass)) if key == pi_key(theta) => mass,
            _ => masses_of_exp(theta, k, t),
        };
        let v = values(&mass_k);
        let (maxima, parts) = vector::chunk_visit(n, |i| prox(theta, i, v[t(i)]), k, visit);
        let m = maxima.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        let mut acc = vec![0.0; k];
        for (mc, p) in maxima.iter().zip(parts.chunks(k)) {
            if mc.is_finite() {
                let w = crate::kernels::exp::exp(mc - m);
                for a in 0..k {
                    acc[a] += w * p[a];
                }
            }
        }
        let total: f64 = acc.iter().sum();
        let v_half = values(&acc.iter().map(|a| a / total).collect::<Vec<_>>());
        // 2. θ_{k+1} over the scratch buffer, and the masses of exp(θ_{k+1}).
        let center = std::mem::take(&mut self.theta);
        let mut next = std::mem::take(&mut self.scratch);
        let (m, ls) = prox_fill_with(ctx, alpha, &center, |i| v_half[t(i)], &mut next);
        let parts = vector::shift_visit(&mut next, m, ls, Shifted::Theta, k, |lo, th, part| {
            add_exp_masses(lo, th, t, part)
        });
        self.mass = Some((pi_key(&next), sum_parts(&parts, k)));
        self.theta = next;
        self.scratch = center;
    }
}

/// `part[t(lo + j)] += exp(θ[j])` over one chunk of `θ` starting at action `lo`, in index
/// order: the class masses of `π = exp(θ)` as a block game's apply sums them (the exponentials
/// those of `exp_into`).
fn add_exp_masses(lo: usize, theta: &[f64], t: impl Fn(usize) -> usize, part: &mut [f64]) {
    let mut e = [0.0f64; 512];
    for (b, blk) in theta.chunks(512).enumerate() {
        let e = &mut e[..blk.len()];
        crate::kernels::exp::exp_slice(blk, e);
        for (j, p) in e.iter().enumerate() {
            part[t(lo + b * 512 + j)] += p;
        }
    }
}

/// Per-chunk class sums added in chunk order (as a block game's apply adds them).
fn sum_parts(parts: &[f64], k: usize) -> Vec<f64> {
    let mut mass = vec![0.0; k];
    for p in parts.chunks(k) {
        for a in 0..k {
            mass[a] += p[a];
        }
    }
    mass
}

/// The class masses of `π = exp(θ)`, in one pass that writes nothing: the bits of the masses
/// a block game's apply computes for `exp_into(θ)`.
fn masses_of_exp(theta: &[f64], k: usize, t: impl Fn(usize) -> usize + Sync + Send) -> Vec<f64> {
    let part = |(c, th): (usize, &[f64])| {
        let mut p = vec![0.0; k];
        add_exp_masses(c * CHUNK, th, &t, &mut p);
        p
    };
    let parts: Vec<f64> = if theta.len() < PAR_MIN {
        theta.chunks(CHUNK).enumerate().flat_map(part).collect()
    } else {
        theta
            .par_chunks(CHUNK)
            .enumerate()
            .flat_map_iter(part)
            .collect()
    };
    sum_parts(&parts, k)
}
