//! One step of each baseline against its closed form in probability space (docs/math.md §2–3),
//! computed here independently of the library's log-space prox: `π ∝` products and powers of
//! `π_k`, `μ` and `e^{α g}`. The game, `μ`, `π_0` and the step make every quantity distinct.

use super::{build, AlgoKind, Context, CurrentPayoff, Schedule};
use crate::game::DenseGame;

const P: [f64; 9] = [0.5, 0.8, 0.3, 0.2, 0.5, 0.6, 0.7, 0.4, 0.5];
const MU: [f64; 3] = [0.5, 0.25, 0.25];
const PI0: [f64; 3] = [0.2, 0.3, 0.5];
const ALPHA: f64 = 1.0;
const BETA: f64 = 0.5;

/// `g(π) = Pπ`.
fn g(x: &[f64]) -> Vec<f64> {
    (0..3)
        .map(|i| (0..3).map(|j| P[i * 3 + j] * x[j]).sum())
        .collect()
}

/// Normalises positive weights.
fn norm(w: Vec<f64>) -> Vec<f64> {
    let z: f64 = w.iter().sum();
    w.iter().map(|v| v / z).collect()
}

/// The prox step `π ∝ (c · μ^{αβ} · e^{α g})^{1/(1+αβ)}`.
fn prox(alpha: f64, c: &[f64], gv: &[f64]) -> Vec<f64> {
    let ab = alpha * BETA;
    norm(
        (0..3)
            .map(|i| (c[i] * MU[i].powf(ab) * (alpha * gv[i]).exp()).powf(1.0 / (1.0 + ab)))
            .collect(),
    )
}

/// The geometric mixture `π ∝ c^{1−αβ} μ^{αβ}`, times `e^{α g}` if given.
fn mix(alpha: f64, c: &[f64], gv: Option<&[f64]>) -> Vec<f64> {
    let ab = alpha * BETA;
    norm(
        (0..3)
            .map(|i| {
                c[i].powf(1.0 - ab) * MU[i].powf(ab) * gv.map_or(1.0, |g| (alpha * g[i]).exp())
            })
            .collect(),
    )
}

/// Runs `steps` iterations of `kind` from `π_0`; returns the iterate and the extra iterates.
fn run(kind: AlgoKind, schedule: Schedule, steps: usize) -> (Vec<f64>, Vec<Vec<f64>>) {
    let game = DenseGame::from_vec("p", 3, P.to_vec());
    let theta_ref: Vec<f64> = MU.iter().map(|v| v.ln()).collect();
    let theta0: Vec<f64> = PI0.iter().map(|v| v.ln()).collect();
    let ctx = Context::new(&game, &theta_ref, BETA);
    let mut a = build(kind, &theta0, ALPHA, schedule);
    for _ in 0..steps {
        let mut cur = CurrentPayoff::new(3);
        a.step(&ctx, &mut cur);
    }
    let probs = |t: &[f64]| t.iter().map(|v| v.exp()).collect::<Vec<_>>();
    let extras = a.extra_iterates().iter().map(|(_, t)| probs(t)).collect();
    (probs(a.theta()), extras)
}

fn close(got: &[f64], want: &[f64], what: &str) {
    for i in 0..3 {
        assert!(
            (got[i] - want[i]).abs() < 1e-14,
            "{what}[{i}]: {} vs {}",
            got[i],
            want[i]
        );
    }
    // Guard against a vacuous test: the step moved away from π_0.
    assert!((0..3).any(|i| (want[i] - PI0[i]).abs() > 1e-3), "{what}");
}

#[test]
fn mmd_step_is_one_prox() {
    let want = prox(ALPHA, &PI0, &g(&PI0));
    close(
        &run(AlgoKind::Mmd, Schedule::Constant, 1).0,
        &want,
        "mmd π_1",
    );
}

#[test]
fn omwu_steps_reuse_the_previous_half_step_payoff() {
    // Step 1: g_prev = g(π_0); π½ = prox(π_0, g(π_0)); π_1 = prox(π_0, g(π½)).
    let half = prox(ALPHA, &PI0, &g(&PI0));
    let pi1 = prox(ALPHA, &PI0, &g(&half));
    close(
        &run(AlgoKind::Omwu, Schedule::Constant, 1).0,
        &pi1,
        "omwu π_1",
    );
    // Step 2 pays one query: π_{3/2} = prox(π_1, g(π½)), π_2 = prox(π_1, g(π_{3/2})).
    let half2 = prox(ALPHA, &pi1, &g(&half));
    let pi2 = prox(ALPHA, &pi1, &g(&half2));
    close(
        &run(AlgoKind::Omwu, Schedule::Constant, 2).0,
        &pi2,
        "omwu π_2",
    );
    // Nash-MP's second step would use g(π_1) for its half step instead: a different answer.
    let nmp2 = prox(ALPHA, &pi1, &g(&prox(ALPHA, &pi1, &g(&pi1))));
    assert!((0..3).any(|i| (nmp2[i] - pi2[i]).abs() > 1e-6));
}

#[test]
fn egpo_step_is_an_extragradient_from_the_mixture() {
    // π½ ∝ π_0^{1−αβ} μ^{αβ} e^{α g(π_0)}, π_1 ∝ π_0^{1−αβ} μ^{αβ} e^{α g(π½)}.
    let half = mix(ALPHA, &PI0, Some(&g(&PI0)));
    let want = mix(ALPHA, &PI0, Some(&g(&half)));
    close(
        &run(AlgoKind::Egpo, Schedule::Constant, 1).0,
        &want,
        "egpo π_1",
    );
}

#[test]
fn nash_md_step_plays_against_the_mixture() {
    // π^μ ∝ π_0^{1−αβ} μ^{αβ}; π_1 ∝ π^μ e^{α g(π^μ)}.
    let m = mix(ALPHA, &PI0, None);
    let gm = g(&m);
    let pi1 = norm((0..3).map(|i| m[i] * (ALPHA * gm[i]).exp()).collect());
    close(
        &run(AlgoKind::NashMd, Schedule::Constant, 1).0,
        &pi1,
        "nash-md π_1",
    );
    // The decaying schedule takes α_1 = α/(1 + αβ) at the second step.
    let a1 = ALPHA / (1.0 + ALPHA * BETA);
    let m1 = mix(a1, &pi1, None);
    let gm1 = g(&m1);
    let pi2 = norm((0..3).map(|i| m1[i] * (a1 * gm1[i]).exp()).collect());
    close(
        &run(AlgoKind::NashMd, Schedule::Decaying, 2).0,
        &pi2,
        "nash-md decaying π_2",
    );
}

#[test]
fn mwu_step_and_its_average() {
    // π_1 ∝ π_0 e^{α g(π_0)}; the average iterate is (π_0 + π_1)/2.
    let g0 = g(&PI0);
    let pi1 = norm((0..3).map(|i| PI0[i] * (ALPHA * g0[i]).exp()).collect());
    let (got, extras) = run(AlgoKind::Mwu, Schedule::Constant, 1);
    close(&got, &pi1, "mwu π_1");
    let avg: Vec<f64> = (0..3).map(|i| (PI0[i] + pi1[i]) / 2.0).collect();
    close(&extras[0], &avg, "mwu-avg π̄_1");
}

/// Nash-MP on a block or low-rank game takes its payoffs from statistics of the policy
/// (`Context::classes`, `Context::factors`); through an operator that hides its structure it
/// applies the game. The iterates and payoffs agree to rounding (`π½`'s statistics are summed
/// in another order), step after step, across parallel chunks, with a uniform and a
/// non-uniform reference; a restore mid-run (which drops the kept statistics, so they are
/// summed again from `θ`) and a single thread end on the uninterrupted run's bits.
#[test]
fn nash_mp_on_structured_games_matches_the_applied_step() {
    use crate::kernels::vector::{CHUNK, PAR_MIN};
    let dir = tempfile::tempdir().unwrap();
    let n = PAR_MIN + 3 * CHUNK + 17;
    for family in [crate::gen::Family::Block, crate::gen::Family::LowRank] {
        let path = dir.path().join(format!("{family:?}.nmp"));
        let params = crate::gen::Params {
            types: 5,
            rank: 3,
            ..Default::default()
        };
        let none = |_| {};
        crate::gen::file::write_game(
            &path,
            family,
            n,
            7,
            params,
            crate::io::write::MatrixFormat::DENSE_F32,
            &none,
        )
        .unwrap();
        let game = crate::game::open(&path, None).unwrap();
        let hidden = crate::game::testing::Restructured {
            op: game.as_ref(),
            classes: None,
        };
        let uniform = vec![-(n as f64).ln(); n];
        let mut skewed: Vec<f64> = (0..n).map(|i| ((i % 11) as f64 * 0.3).sin()).collect();
        crate::kernels::vector::normalise(&mut skewed);
        let theta0: Vec<f64> = {
            let mut t: Vec<f64> = (0..n).map(|i| ((i * 7 % 13) as f64) * 0.05).collect();
            crate::kernels::vector::normalise(&mut t);
            t
        };
        for theta_ref in [&uniform, &skewed] {
            let fused = Context::new(game.as_ref(), theta_ref, 0.2);
            let plain = Context::new(&hidden, theta_ref, 0.2);
            let structured = |c: &Context| c.classes().is_some() || c.factors().is_some();
            assert!(structured(&fused) && !structured(&plain), "{family:?}");
            let mk = || build(AlgoKind::NashMp, &theta0, 1.5, Schedule::Constant);
            let (mut a, mut r, mut b) = (mk(), mk(), mk());
            let (mut ca, mut cr, mut cb) = (
                CurrentPayoff::new(n),
                CurrentPayoff::new(n),
                CurrentPayoff::new(n),
            );
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let diff = |x: &[f64], y: &[f64]| {
                x.iter()
                    .zip(y)
                    .map(|(p, q)| (p - q).abs())
                    .fold(0.0, f64::max)
            };
            for step in 0..5 {
                if step == 2 {
                    r.restore(r.state()).unwrap();
                }
                a.step(&fused, &mut ca);
                r.step(&fused, &mut cr);
                b.step(&plain, &mut cb);
                for c in [&mut ca, &mut cr, &mut cb] {
                    c.invalidate();
                }
                assert_eq!(bits(a.theta()), bits(r.theta()), "restored, step {step}");
                let d = diff(a.theta(), b.theta());
                assert!(
                    d < 1e-12,
                    "{family:?} step {step}: |θ_fused − θ_applied| = {d:e}"
                );
                let (ga, gb) = (
                    ca.get(game.as_ref(), a.theta()).to_vec(),
                    cb.get(&hidden, b.theta()).to_vec(),
                );
                assert!(diff(&ga, &gb) < 1e-12, "g after step {step}");
                ca.invalidate();
                cb.invalidate();
            }
            // Not vacuous: the iterate moved.
            assert!(a
                .theta()
                .iter()
                .zip(&theta0)
                .any(|(x, y)| (x - y).abs() > 1e-3));
            // One thread, the same bits.
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap();
            let (mut one, mut c1) = (mk(), CurrentPayoff::new(n));
            for _ in 0..5 {
                pool.install(|| one.step(&fused, &mut c1));
                c1.invalidate();
            }
            assert_eq!(bits(one.theta()), bits(a.theta()), "one thread");
        }
    }
}
