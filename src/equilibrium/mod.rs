//! The β-regularised equilibrium `π*` in `f64`, with its certificate (docs/math.md §1, §5).
//!
//! The solver iterates the Nash-MP map `Φ` (one Nash-MP iteration at `α = 2`, a contraction of
//! `KL(π*‖·)` by `1 + 2β`), accelerated by Anderson mixing ([`anderson`]) in log space: plain
//! Nash-MP needs `O(log(1/ε)/β)` iterations, which at `β = 0.01` is about 1600 for a residual of
//! `1e-12`; the accelerated solve needs tens. Every accelerated iterate is *safeguarded*: its
//! certificate (below) must improve on the point it was extrapolated from, otherwise it is
//! discarded, the plain Nash-MP step from that point is taken instead and the history is reset.
//! So the solve is never worse than plain Nash-MP by more than one map evaluation per rejection.
//!
//! It stops when the fixed-point residual `span(θ − θ_μ − g(π)/β)` drops below the target, or
//! stops improving (the floor the storage precision allows), or the iteration limit is reached.
//! The residual is free: it uses `g(π_k)`, which the next step needs anyway. Whatever the
//! acceleration did, the returned certificate is computed at the returned `π`.

pub mod anderson;

use crate::algo::{prox, Context};
use crate::error::{Error, Result};
use crate::game::{payoff, PreferenceOperator};
use crate::kernels::vector;
use crate::metrics;
use anderson::Anderson;

/// Settings of the equilibrium solve.
#[derive(Clone, Copy, Debug)]
pub struct EquilibriumParams {
    pub beta: f64,
    /// Stop once the residual is below this.
    pub target_residual: f64,
    /// Map evaluations (Nash-MP iterations) at most.
    pub max_iters: u64,
    /// Anderson history length; 0: plain Nash-MP.
    pub memory: usize,
}

/// Memory the Anderson history may use (two `n`-vectors of `f64` per entry): 2.5 GiB, so that
/// n = 10^7 still gets the full history.
const HISTORY_BYTES: usize = 5 << 29;
/// Longest Anderson history. The history must span the directions in which the game couples
/// the actions: on 16-type block games at β = 0.01 (n = 10^5), 16 differences converge in
/// 145–189 map evaluations, 12 in 240–275 and 8 in 570–1265 (plain Nash-MP: 1598).
pub const MAX_MEMORY: usize = 16;
/// An accelerated iterate is kept if its map residual `‖Φ(x) − x‖₂` is below this multiple of
/// the residual at the point it was extrapolated from. Strict decrease (1) rejects too many
/// steps in the early, nonlinear phase (248 vs 145 evaluations on the block game above); 4
/// lets the iteration wander off and never come back.
const SAFEGUARD: f64 = 2.0;

/// The default Anderson history for `n` actions: [`MAX_MEMORY`], fewer where the history would
/// exceed [`HISTORY_BYTES`] (at least 2).
pub fn default_memory(n: usize) -> usize {
    (HISTORY_BYTES / (16 * n.max(1))).clamp(2, MAX_MEMORY)
}

impl EquilibriumParams {
    pub fn new(beta: f64) -> Self {
        EquilibriumParams {
            beta,
            target_residual: 1e-12,
            max_iters: 1_000_000,
            memory: MAX_MEMORY,
        }
    }
}

/// Why the solve stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EqStop {
    /// The residual reached the target.
    Converged,
    /// The residual stopped improving: the storage precision's floor.
    Stalled,
    /// The iteration limit.
    MaxIters,
}

/// `π*` and its certificate. Reports (`summary.json`) show the certificate; a checkpoint also
/// saves `θ*` (see [`crate::io::blobfile`]).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Equilibrium {
    #[serde(
        skip_serializing_if = "crate::io::blobfile::not_persisting",
        default,
        with = "crate::io::blobfile::f64s"
    )]
    pub theta: Vec<f64>,
    /// Map evaluations (each two operator applications).
    pub iterations: u64,
    pub queries: u64,
    #[serde(with = "crate::io::blobfile::bits")]
    pub residual: f64,
    #[serde(with = "crate::io::blobfile::bits")]
    pub exploit: f64,
    #[serde(with = "crate::io::blobfile::bits")]
    pub exploit0: f64,
    pub stop: EqStop,
    /// Anderson history length used (0: plain Nash-MP).
    pub memory: usize,
    /// Accelerated iterates discarded by the safeguard.
    pub rejected: u64,
    /// Whether the accelerated iteration stopped converging and plain Nash-MP took over.
    pub fallback: bool,
}

/// Solves for `π*` of `op` at `params.beta > 0` with reference `θ_μ`, starting from `μ`.
pub fn solve(
    op: &dyn PreferenceOperator,
    theta_ref: &[f64],
    params: EquilibriumParams,
) -> Result<Equilibrium> {
    solve_from(op, theta_ref, theta_ref, params)
}

/// An accelerated iterate on probation: the point it was extrapolated from, that point's
/// residual, and the plain Nash-MP step from it (taken if the iterate is rejected).
struct Probation {
    base_norm: f64,
    plain: Vec<f64>,
}

/// As [`solve`], checking `interrupted` at every iteration: `Ok(None)` if it turned true (a
/// Ctrl-C during a long solve).
pub fn solve_interruptible(
    op: &dyn PreferenceOperator,
    theta_ref: &[f64],
    params: EquilibriumParams,
    interrupted: &dyn Fn() -> bool,
) -> Result<Option<Equilibrium>> {
    solve_core(op, theta_ref, theta_ref, params, interrupted)
}

/// As [`solve`], starting from `theta_start` (e.g. the solution at a nearby β, for β paths).
pub fn solve_from(
    op: &dyn PreferenceOperator,
    theta_ref: &[f64],
    theta_start: &[f64],
    params: EquilibriumParams,
) -> Result<Equilibrium> {
    Ok(solve_core(op, theta_ref, theta_start, params, &|| false)?.expect("never interrupted"))
}

// Over 80 lines on purpose: one loop whose state (the Anderson history, the iterate on
// probation, the lowest residual, the fallback switch and the stop rules) interlocks at every
// step; split up, each piece would take most of that state as arguments.
fn solve_core(
    op: &dyn PreferenceOperator,
    theta_ref: &[f64],
    theta_start: &[f64],
    params: EquilibriumParams,
    interrupted: &dyn Fn() -> bool,
) -> Result<Option<Equilibrium>> {
    let beta = params.beta;
    if !(beta > 0.0 && beta.is_finite()) {
        return Err(Error::Param(format!(
            "the regularised equilibrium needs β > 0, got β = {beta}"
        )));
    }
    let n = op.n();
    let ctx = Context::new(op, theta_ref, beta);
    let alpha = 2.0;
    let memory = params.memory.min(default_memory(n));
    let mut aa = (memory > 0).then(|| Anderson::new(memory));
    let mut theta = match op.info().structure.classes() {
        Some(c) => reduced_start(&c.q, &c.to_vec(), theta_ref, params)
            .unwrap_or_else(|| theta_start.to_vec()),
        None => theta_start.to_vec(),
    };
    vector::normalise(&mut theta);
    let mut half = vec![0.0; n];
    let mut next = vec![0.0; n];
    let mut g = vec![0.0; n];
    let mut g_half = vec![0.0; n];
    let mut scratch = vec![0.0; n];
    let mut f = if aa.is_some() {
        vec![0.0; n]
    } else {
        Vec::new()
    };
    let mut spare: Vec<f64> = Vec::new();
    let mut probation: Option<Probation> = None;
    let mut rejected = 0u64;
    let mut fallback = false;
    let mut best = f64::INFINITY;
    let mut best_at = 0u64;
    // The iterate with the lowest residual, returned if the solve ends elsewhere (an accelerated
    // or stalled iteration may end on a worse point than one it passed).
    let mut lowest = f64::INFINITY;
    let mut lowest_theta: Vec<f64> = Vec::new();
    // The guaranteed contraction is (1 + 2β) per iteration, so a tenfold improvement takes at
    // most about ln 10 / ln(1 + 2β) iterations; a run that does not improve its best residual
    // tenfold in twice that has hit the floor of the operator's precision. Accelerated, the
    // improvement comes far sooner, and a stall is declared after `AA_WINDOW` iterations once
    // the residual is near the precision floor (below).
    let window = (2.0 * std::f64::consts::LN_10 / (2.0 * beta).ln_1p()).ceil() as u64 + 50;
    const AA_WINDOW: u64 = 20;
    // Far from the floor, this many accelerated iterations without a tenfold improvement hand
    // the solve over to plain Nash-MP (measured: block games at n = 10^3–10^4, β = 0.01, where
    // the accelerated iteration otherwise stalls at residuals of 6–21).
    const AA_GIVE_UP: u64 = 150;
    // Rounding in `g` (the storage's precision, plus summation over n terms) divided by β:
    // `f32` games stall at 0.2–0.8 × `precision / β` (n = 2000–4096, β = 0.01). At n = 10^7 in
    // f64 the floor is about 1e-12 where `precision / β` says 1e-13, so anything within tenfold
    // of the target also counts as near the floor. (A looser rule, 100 × `precision / β`, let a
    // 256-action f32 game stop at a residual of 3e-4, which spoils `kl_star` below ~1e-7.)
    let near_floor = (op.precision() / beta).max(10.0 * params.target_residual);
    let mut k = 0u64;
    let mut queries = 0u64;
    let stop = loop {
        if interrupted() {
            return Ok(None);
        }
        payoff(op, &theta, &mut scratch, &mut g);
        queries += 1;
        let r = metrics::residual(&theta, &g, theta_ref, beta);
        if r < params.target_residual {
            break EqStop::Converged;
        }
        if r < lowest {
            lowest = r;
            lowest_theta.clear();
            lowest_theta.extend_from_slice(&theta);
        }
        if r < best * 0.1 {
            best = r;
            best_at = k;
        }
        if k >= params.max_iters {
            break EqStop::MaxIters;
        }
        let stale = k - best_at;
        if stale > window || (aa.is_some() && stale > AA_WINDOW && lowest < near_floor) {
            break EqStop::Stalled;
        }
        if aa.is_some() && stale > AA_GIVE_UP && lowest >= near_floor {
            // Anderson is not converging (it can cycle far from π* on hard games at small β):
            // plain Nash-MP from the best iterate so far, which contracts whatever the game.
            aa = None;
            fallback = true;
            probation = None;
            theta.clear();
            theta.extend_from_slice(&lowest_theta);
            best_at = k;
            continue;
        }
        prox(&ctx, alpha, &theta, &g, &mut half);
        payoff(op, &half, &mut scratch, &mut g_half);
        queries += 1;
        prox(&ctx, alpha, &theta, &g_half, &mut next);
        k += 1;
        match aa.as_mut() {
            None => std::mem::swap(&mut theta, &mut next),
            Some(a) => {
                vector::fill(&mut f, |i| next[i] - theta[i]);
                let fnorm = vector::sum_by(n, |i| f[i] * f[i]).sqrt();
                if let Some(p) = probation.take() {
                    let improved = fnorm < SAFEGUARD * p.base_norm; // false for NaN
                    if !improved {
                        rejected += 1;
                        a.reset();
                        spare = std::mem::replace(&mut theta, p.plain);
                        continue;
                    }
                    spare = p.plain;
                }
                let mut cand = std::mem::take(&mut spare);
                cand.resize(n, 0.0);
                a.step(&theta, &f, &mut cand);
                if a.is_empty() {
                    spare = cand;
                    std::mem::swap(&mut theta, &mut next);
                } else {
                    vector::normalise(&mut cand);
                    let base = std::mem::replace(&mut theta, cand);
                    let plain = std::mem::replace(&mut next, base);
                    probation = Some(Probation {
                        base_norm: fnorm,
                        plain,
                    });
                }
            }
        }
    };
    if stop != EqStop::Converged && !lowest_theta.is_empty() {
        theta = lowest_theta;
        payoff(op, &theta, &mut scratch, &mut g);
        queries += 1;
    }
    Ok(Some(Equilibrium {
        residual: metrics::residual(&theta, &g, theta_ref, beta),
        exploit: metrics::exploit(&theta, &g, theta_ref, beta),
        exploit0: metrics::exploit0(&g),
        theta,
        iterations: k,
        queries,
        stop,
        memory: if params.memory > 0 { memory } else { 0 },
        rejected,
        fallback,
    }))
}

/// The equilibrium of a game whose entries depend only on the actions' classes
/// (`P[i][j] = Q[c(i)][c(j)]`), from the `k`-action class game: there `g(π)` is constant on each
/// class, so `π*_i ∝ μ_i exp(g_{c(i)}/β)` and the class masses `ρ*` are the equilibrium of `Q`
/// with reference `ν_c = Σ_{c(i) = c} μ_i`. Then `θ*_i = θ_μ,i + log ρ*_c − log ν_c`. This is
/// the start of the full solve, which certifies it on the full operator (and iterates further
/// if the certificate is above target); `None` if the class game's solve failed.
fn reduced_start(
    q: &[f64],
    classes: &[u32],
    theta_ref: &[f64],
    params: EquilibriumParams,
) -> Option<Vec<f64>> {
    let n = classes.len();
    let k = (q.len() as f64).sqrt() as usize;
    if k * k != q.len() || theta_ref.len() != n || classes.iter().any(|&c| c as usize >= k) {
        return None;
    }
    let nu = vector::sums_by(n, k, |i, acc| {
        acc[classes[i] as usize] += theta_ref[i].exp()
    });
    // Classes without actions (or without reference mass) drop out.
    let live: Vec<usize> = (0..k).filter(|&c| nu[c] > 0.0).collect();
    let m = live.len();
    let data = live
        .iter()
        .flat_map(|&a| live.iter().map(move |&b| q[a * k + b]))
        .collect();
    let small = crate::game::DenseGame::from_vec("class game", m, data);
    let mut theta_nu: Vec<f64> = live.iter().map(|&c| nu[c].ln()).collect();
    vector::normalise(&mut theta_nu);
    let eq = solve_from(&small, &theta_nu, &theta_nu, params).ok()?;
    // A start, not the answer: the full solve continues from it to its own target.
    if eq.residual.is_nan() || eq.residual >= 1e-6 {
        return None;
    }
    let mut shift = vec![f64::NAN; k];
    for (s, &c) in live.iter().enumerate() {
        shift[c] = eq.theta[s] - theta_nu[s];
    }
    let mut theta = vec![0.0; n];
    vector::fill(&mut theta, |i| theta_ref[i] + shift[classes[i] as usize]);
    theta
        .iter()
        .all(|v| v.is_finite() || *v == f64::NEG_INFINITY)
        .then_some(theta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::DenseGame;
    use crate::gen::{self, DenseFamily, Family, Params};
    use crate::policy;

    /// A 16-type block game as a dense `f64` matrix (`n` actions).
    fn block(n: usize, seed: u64) -> DenseGame {
        let k = 16;
        let q = gen::block_q(seed, k);
        let t: Vec<usize> = (0..n)
            .map(|i| gen::block_type(seed, k, i) as usize)
            .collect();
        let data = (0..n * n).map(|x| q[t[x / n] * k + t[x % n]]).collect();
        DenseGame::from_vec("block", n, data)
    }

    fn dense(family: Family, n: usize, seed: u64) -> DenseGame {
        let f = DenseFamily::new(family, n, seed, Params::default());
        let data = (0..n * n).map(|x| f.entry(x / n, x % n)).collect();
        DenseGame::from_vec("dense", n, data)
    }

    /// The accelerated solve reaches the same certified `π*` as plain Nash-MP at β = 0.01, with
    /// at least three times fewer operator applications (measured: block 7.0×, uniform 3.9×,
    /// disc 60×; the gain grows with n, e.g. 11× on a 10^5-action block game).
    #[test]
    fn anderson_agrees_with_plain_nash_mp_and_is_faster() {
        for (name, g) in [
            ("block", block(300, 3)),
            ("uniform", dense(Family::Uniform, 300, 1)),
            ("disc", dense(Family::Disc, 300, 2)),
        ] {
            let theta_ref = policy::uniform_theta(300);
            let mut p = EquilibriumParams::new(0.01);
            p.target_residual = 1e-10;
            let fast = solve(&g, &theta_ref, p).unwrap();
            p.memory = 0;
            let plain = solve(&g, &theta_ref, p).unwrap();
            assert_eq!(plain.memory, 0);
            assert!(fast.memory > 0);
            for e in [&fast, &plain] {
                // Converged, or stopped within tenfold of the target (the floor rule).
                assert!(e.stop != EqStop::MaxIters, "{name}: {e:?}");
                assert!(e.residual < 1e-9 && e.exploit < 1e-10, "{name}: {e:?}");
            }
            eprintln!(
                "{name}: {} accelerated queries vs {} plain",
                fast.queries, plain.queries
            );
            let kl = metrics::kl(&plain.theta, &fast.theta);
            assert!(kl < 1e-12, "{name}: KL(plain ‖ accelerated) = {kl}");
            assert!(
                3 * fast.queries <= plain.queries,
                "{name}: {} accelerated queries vs {} plain",
                fast.queries,
                plain.queries
            );
        }
    }

    /// A block game's equilibrium, solved through its class game, equals the full solve's.
    #[test]
    fn class_reduction_gives_the_full_solution() {
        let (n, k, seed) = (300, 16, 3);
        let dense = block(n, seed);
        let classed = crate::game::testing::Restructured {
            op: &dense,
            classes: Some((
                gen::block_q(seed, k),
                (0..n).map(|i| gen::block_type(seed, k, i)).collect(),
            )),
        };
        // A non-uniform reference: the reduction must weigh classes by their reference mass.
        let mut theta_ref: Vec<f64> = (0..n).map(|i| ((i % 7) as f64 + 1.0).ln()).collect();
        vector::normalise(&mut theta_ref);
        let p = EquilibriumParams::new(0.01);
        let full = solve(&block(n, seed), &theta_ref, p).unwrap();
        let fast = solve(&classed, &theta_ref, p).unwrap();
        assert!(fast.residual < 1e-11, "{fast:?}");
        assert!(
            fast.queries <= 5,
            "the class game's solution is certified at once: {fast:?}"
        );
        let kl = metrics::kl(&full.theta, &fast.theta);
        assert!(kl < 1e-12, "KL(full ‖ reduced) = {kl}");
    }

    /// The 1000-action block game (seed 1) on which the accelerated iteration stalls at a
    /// residual of 14 when the class reduction is not available: the plain Nash-MP fallback
    /// takes over and converges to the plain solve's π*.
    #[test]
    fn stalled_acceleration_falls_back_to_plain_nash_mp() {
        let g = block(1000, 1);
        let theta_ref = policy::uniform_theta(1000);
        let mut p = EquilibriumParams::new(0.01);
        p.target_residual = 1e-10;
        let fast = solve(&g, &theta_ref, p).unwrap();
        assert_eq!(fast.stop, EqStop::Converged, "{fast:?}");
        p.memory = 0;
        let plain = solve(&g, &theta_ref, p).unwrap();
        let kl = metrics::kl(&plain.theta, &fast.theta);
        assert!(kl < 1e-12, "KL(plain ‖ accelerated) = {kl}; {fast:?}");
        eprintln!("block-1000: {fast:?}");
    }

    /// An interrupted solve stops at once and says so.
    #[test]
    fn interrupt_stops_the_solve() {
        let g = block(100, 1);
        let theta_ref = policy::uniform_theta(100);
        let calls = std::cell::Cell::new(0);
        let stop = || {
            calls.set(calls.get() + 1);
            calls.get() > 3
        };
        let mut p = EquilibriumParams::new(0.01);
        p.memory = 0;
        assert!(solve_interruptible(&g, &theta_ref, p, &stop)
            .unwrap()
            .is_none());
        assert_eq!(calls.get(), 4);
        assert!(solve_interruptible(&g, &theta_ref, p, &|| false)
            .unwrap()
            .is_some());
    }

    /// Results do not depend on the thread count (every reduction is chunked).
    #[test]
    fn accelerated_solve_is_thread_independent() {
        let g = block(200, 5);
        let theta_ref = policy::uniform_theta(200);
        let p = EquilibriumParams::new(0.05);
        let a = solve(&g, &theta_ref, p).unwrap();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let b = pool.install(|| solve(&g, &theta_ref, p).unwrap());
        assert_eq!(a.queries, b.queries);
        assert!(a
            .theta
            .iter()
            .zip(&b.theta)
            .all(|(x, y)| x.to_bits() == y.to_bits()));
    }
}
