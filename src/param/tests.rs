use super::algo::{sampled_direction, DirectionMode, Env, ParamAlgo};
use super::sweep::{write_game, ParamFamily};
use super::*;
use crate::algo::{self, AlgoKind, Context, CurrentPayoff, Schedule};
use crate::equilibrium::{self, EquilibriumParams};
use crate::game::apply_vec;
use crate::oracle::{Fidelity, Oracle};
use crate::policy::uniform_theta;

fn game(
    dir: &Path,
    family: ParamFamily,
    n: usize,
    d: usize,
    seed: u64,
) -> Box<dyn PreferenceOperator> {
    let p = dir.join(format!("{}-{n}-{d}-{seed}.nmp", family.name()));
    write_game(&p, family, n, d, seed).unwrap();
    crate::game::open(&p, None).unwrap()
}

fn class_of(op: &dyn PreferenceOperator) -> LinearClass<'_> {
    let (f, m) = Features::of_game(op, "game").unwrap();
    LinearClass::new(f, None, Some(m))
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// docs/math.md §8: the class's payoff `1/2 + φ M m(π)` is the game's `P π` (realizable).
#[test]
fn factors_reproduce_the_game() {
    let t = tempfile::tempdir().unwrap();
    for family in [ParamFamily::LowRank, ParamFamily::Disc] {
        let op = game(t.path(), family, 3000, 4, 2);
        let c = class_of(op.as_ref());
        let theta = [0.7, -1.1, 0.4, 0.9];
        let mom = c.moments(&theta, false);
        let mut lp = vec![0.0; 3000];
        c.log_probs(&theta, mom.log_z, &mut lp);
        assert!((crate::kernels::vector::logsumexp(&lp)).abs() < 1e-13);
        let p: Vec<f64> = lp.iter().map(|x| x.exp()).collect();
        let mut g = vec![0.0; 3000];
        apply_vec(&*op, &p, &mut g);
        let v = c.skew_times(&mom.mean);
        let err = (0..3000)
            .map(|i| (g[i] - 0.5 - c.features().dot(i, &v)).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-14, "{family:?}: {err}");
        // Moments against the plain sums.
        for k in 0..4 {
            let m: f64 = (0..3000).map(|i| p[i] * c.features().col(k)[i]).sum();
            assert!((m - mom.mean[k]).abs() < 1e-14);
        }
    }
    // The disc game written as factors is the dense disc family, entry for entry.
    let op = game(t.path(), ParamFamily::Disc, 50, 4, 9);
    let params = crate::gen::Params {
        rank: 4,
        ..Default::default()
    };
    let dense = crate::gen::DenseFamily::new(crate::gen::Family::Disc, 50, 9, params);
    for i in 0..50 {
        for j in 0..50 {
            assert!((op.entry(i, j) - dense.entry(i, j)).abs() < 1e-15);
        }
    }
}

/// The acceptance test: from `π_0 = μ`, exact parametric Nash-MP equals tabular Nash-MP to
/// 1e-12 in log space at every iteration (n = 2000, 50 iterations), at β = 0.1 and β = 1.
#[test]
fn exact_parametric_nash_mp_equals_tabular() {
    let t = tempfile::tempdir().unwrap();
    let n = 2000;
    for (family, beta) in [
        (ParamFamily::LowRank, 0.1),
        (ParamFamily::LowRank, 1.0),
        (ParamFamily::Disc, 0.1),
    ] {
        let op = game(t.path(), family, n, 6, 5);
        let c = class_of(op.as_ref());
        let tr = uniform_theta(n);
        let ctx = Context::new(op.as_ref(), &tr, beta);
        for kind in [AlgoKind::NashMp, AlgoKind::Omwu, AlgoKind::Mmd] {
            let alpha = kind.default_alpha(beta);
            let mut tab = algo::build(kind, &tr, alpha, Schedule::Constant);
            let mut par = ParamAlgo::new(kind, alpha, 6, DirectionMode::Exact).unwrap();
            let env = Env {
                class: &c,
                op: op.as_ref(),
                beta,
            };
            let mut cur = CurrentPayoff::new(n);
            let mut lp = vec![0.0; n];
            let mut mom = None;
            let mut worst: f64 = 0.0;
            for k in 0..50 {
                cur.set_in_step(true);
                tab.step(&ctx, &mut cur);
                cur.invalidate();
                let m = par.step(&env, mom.take());
                c.log_probs(&par.theta, m.log_z, &mut lp);
                let diff = max_abs_diff(&lp, tab.theta());
                assert!(diff <= 1e-12, "{family:?} {kind} iteration {k}: {diff}");
                worst = worst.max(diff);
                mom = Some(m);
            }
            // Not trivially equal: the policies moved far from μ.
            let moved = max_abs_diff(&lp, &tr);
            eprintln!("{family:?} β={beta} {kind}: moved {moved}, worst {worst:e}");
            assert!(moved > 0.01, "{kind}: {moved}");
            assert!(worst < 1e-12);
        }
    }
}

/// `π* = π_{θ*}` with `θ* = M m(π*)/β`, where `π*` is the tabular equilibrium: the two agree
/// within the tabular certificate (its residual is exactly `span(θ*_tab − log π_{θ*})` for a
/// realizable game), and parametric Nash-MP converges to `θ*`.
#[test]
fn theta_star_is_the_tabular_equilibrium() {
    let t = tempfile::tempdir().unwrap();
    let n = 2000;
    for beta in [0.1, 1.0] {
        let op = game(t.path(), ParamFamily::LowRank, n, 4, 8);
        let c = class_of(op.as_ref());
        let tr = uniform_theta(n);
        let eq = equilibrium::solve(op.as_ref(), &tr, EquilibriumParams::new(beta)).unwrap();
        let m_star: Vec<f64> = (0..4)
            .map(|k| {
                (0..n)
                    .map(|i| eq.theta[i].exp() * c.features().col(k)[i])
                    .sum()
            })
            .collect();
        let theta_star: Vec<f64> = c.skew_times(&m_star).iter().map(|v| v / beta).collect();
        let mom = c.moments(&theta_star, false);
        let mut lp = vec![0.0; n];
        c.log_probs(&theta_star, mom.log_z, &mut lp);
        let span = crate::metrics::span_diff(&lp, &eq.theta);
        assert!(
            span <= eq.residual * (1.0 + 1e-6) + 1e-13,
            "β = {beta}: span {span} vs certificate {}",
            eq.residual
        );
        assert!(eq.residual < 1e-10, "β = {beta}: {}", eq.residual);
        // Parametric Nash-MP reaches θ* (in the range of the Fisher matrix) and exploit 0.
        let mut par = ParamAlgo::new(AlgoKind::NashMp, 2.0, 4, DirectionMode::Exact).unwrap();
        let env = Env {
            class: &c,
            op: op.as_ref(),
            beta,
        };
        let mut m = None;
        for _ in 0..400 {
            m = Some(par.step(&env, m.take()));
        }
        let m = m.unwrap();
        let e = c.exploit_realizable(&par.theta, &m, beta);
        assert!(e.abs() < 1e-12, "β = {beta}: exploit {e}");
        c.log_probs(&par.theta, m.log_z, &mut lp);
        assert!(crate::metrics::span_diff(&lp, &eq.theta) < 1e-9);
        // The moment formula for the exploitability is the full game's.
        let p: Vec<f64> = lp.iter().map(|x| x.exp()).collect();
        let mut g = vec![0.0; n];
        apply_vec(&*op, &p, &mut g);
        let full = crate::metrics::exploit(&lp, &g, &tr, beta);
        assert!((full - e).abs() < 1e-13, "{full} vs {e}");
    }
}

/// The sampler draws from `π_θ`: frequencies on a tiny game within 4 standard errors, and the
/// mean feature over several chunks.
#[test]
fn sampler_draws_from_the_policy() {
    let cols = vec![
        Cow::Owned(vec![0.0, 1.0, 2.0, -1.0, 0.5]),
        Cow::Owned(vec![1.0, 0.0, 0.0, 1.0, -2.0]),
    ];
    let c = LinearClass::new(Features::from_columns("t", cols).unwrap(), None, None);
    let theta = [0.8, -0.3];
    let mom = c.moments(&theta, false);
    let mut lp = vec![0.0; 5];
    c.log_probs(&theta, mom.log_z, &mut lp);
    let mut rng = crate::oracle::stream(1, &[2]);
    let k = 200_000;
    let u: Vec<f64> = (0..k).map(|_| crate::oracle::unit(&mut rng)).collect();
    let ys = c.sample(&theta, &mom, &u);
    for (i, l) in lp.iter().enumerate() {
        let p = l.exp();
        let f = ys.iter().filter(|&&y| y == i).count() as f64 / k as f64;
        let se = (p * (1.0 - p) / k as f64).sqrt();
        assert!((f - p).abs() < 4.0 * se, "action {i}: {f} vs {p}");
    }
    // Several chunks: the mean of φ over the draws.
    let t = tempfile::tempdir().unwrap();
    let op = game(t.path(), ParamFamily::Disc, 3 * CHUNK + 77, 4, 1);
    let c = class_of(op.as_ref());
    let theta = [2.0, -1.0, 0.5, 1.5];
    let mom = c.moments(&theta, true);
    let u: Vec<f64> = (0..k).map(|_| crate::oracle::unit(&mut rng)).collect();
    let ys = c.sample(&theta, &mom, &u);
    let cov = mom.cov.as_ref().unwrap();
    for kk in 0..4 {
        let m: f64 = ys.iter().map(|&y| c.features().col(kk)[y]).sum::<f64>() / k as f64;
        let se = (cov[kk * 4 + kk] / k as f64).sqrt();
        assert!((m - mom.mean[kk]).abs() < 4.0 * se, "feature {kk}");
    }
}

/// The natural-gradient estimate is unbiased for `M m(π')` (in the range of the Fisher matrix):
/// its mean over 300 seeds lies within 3 standard errors, coordinate by coordinate.
#[test]
fn sampled_direction_is_unbiased() {
    let t = tempfile::tempdir().unwrap();
    let op = game(t.path(), ParamFamily::LowRank, 5000, 4, 3);
    let c = class_of(op.as_ref());
    let design = [0.5, -0.4, 1.0, 0.2];
    let opp = [-1.0, 0.3, 0.0, 0.7];
    let md = c.moments(&design, true);
    let mo = c.moments(&opp, false);
    let want = c.skew_times(&mo.mean);
    let proj = linalg::range_projector(md.cov.as_ref().unwrap(), 4, super::algo::FISHER_RCOND);
    let want: Vec<f64> = (0..4)
        .map(|a| (0..4).map(|b| proj[a * 4 + b] * want[b]).sum())
        .collect();
    let seeds = 300;
    let batch = 1000;
    let mut sum = [0.0; 4];
    let mut sq = [0.0; 4];
    for s in 0..seeds {
        let oracle = Oracle::new(op.as_ref());
        let v = sampled_direction(&c, &oracle, (&design, &md), Some((&opp, &mo)), batch, s, 0);
        assert_eq!(oracle.queries(), batch);
        for k in 0..4 {
            sum[k] += v[k];
            sq[k] += v[k] * v[k];
        }
    }
    for k in 0..4 {
        let mean = sum[k] / seeds as f64;
        let var = (sq[k] / seeds as f64 - mean * mean).max(0.0);
        let se = (var / seeds as f64).sqrt();
        assert!(
            (mean - want[k]).abs() <= 3.0 * se + 1e-12,
            "coordinate {k}: mean {mean} vs {} (se {se})",
            want[k]
        );
    }
}

/// `B → ∞`: the noise-free twin (`Fidelity::Expected`) follows exact Nash-MP bit for bit
/// while counting `2B` queries per iteration.
#[test]
fn expected_fidelity_is_the_exact_algorithm() {
    let t = tempfile::tempdir().unwrap();
    let op = game(t.path(), ParamFamily::LowRank, 1000, 4, 3);
    let c = class_of(op.as_ref());
    let env = Env {
        class: &c,
        op: op.as_ref(),
        beta: 0.1,
    };
    let mut a = ParamAlgo::new(AlgoKind::NashMp, 2.0, 4, DirectionMode::Exact).unwrap();
    let mode = DirectionMode::Sampled {
        batch: 77,
        seed: 0,
        fidelity: Fidelity::Expected,
    };
    let mut b = ParamAlgo::new(AlgoKind::NashMp, 2.0, 4, mode).unwrap();
    for _ in 0..10 {
        a.step(&env, None);
        b.step(&env, None);
        assert_eq!(a.theta, b.theta);
    }
    assert_eq!(b.queries, 10 * 2 * 77);
}

/// The sampled run's final distance to `θ*` falls like `√(d/B)`: with a 16 times larger batch
/// the RMS error (over seeds and the last iterates, in the Fisher metric at `π*`) is 4 times
/// smaller, within ±30 %; the exploitability, quadratic near `π*`, falls about 16 times.
#[test]
fn sampled_error_falls_like_sqrt_d_over_b() {
    let t = tempfile::tempdir().unwrap();
    let op = game(t.path(), ParamFamily::LowRank, 2000, 4, 4);
    let c = class_of(op.as_ref());
    let beta = 0.5;
    let env = Env {
        class: &c,
        op: op.as_ref(),
        beta,
    };
    let mut exact = ParamAlgo::new(AlgoKind::NashMp, 2.0, 4, DirectionMode::Exact).unwrap();
    for _ in 0..200 {
        exact.step(&env, None);
    }
    let star = exact.theta.clone();
    let fisher = c.moments(&star, true).cov.unwrap();
    let run = |batch: u64| -> (f64, f64) {
        let (mut err2, mut expl, mut count) = (0.0, 0.0, 0.0);
        for seed in 0..8 {
            let mode = DirectionMode::Sampled {
                batch,
                seed,
                fidelity: Fidelity::Sampled,
            };
            let mut a = ParamAlgo::new(AlgoKind::NashMp, 2.0, 4, mode).unwrap();
            let mut m = None;
            for k in 0..40 {
                let mm = a.step(&env, m.take());
                if k >= 20 {
                    let dt: Vec<f64> = a.theta.iter().zip(&star).map(|(x, y)| x - y).collect();
                    let q: f64 = (0..4)
                        .map(|i| {
                            (0..4)
                                .map(|j| dt[i] * fisher[i * 4 + j] * dt[j])
                                .sum::<f64>()
                        })
                        .sum();
                    err2 += q;
                    expl += c.exploit_realizable(&a.theta, &mm, beta);
                    count += 1.0;
                }
                m = Some(mm);
            }
        }
        ((err2 / count).sqrt(), expl / count)
    };
    let (e1, x1) = run(500);
    let (e2, x2) = run(8000);
    let ratio = e1 / e2;
    eprintln!(
        "error {e1} vs {e2}: ratio {ratio}; exploit {x1} vs {x2}: ratio {}",
        x1 / x2
    );
    assert!(
        (2.8..=5.2).contains(&ratio),
        "error ratio {ratio} ({e1} vs {e2})"
    );
    let xr = x1 / x2;
    assert!(
        (8.0..=32.0).contains(&xr),
        "exploit ratio {xr} ({x1} vs {x2})"
    );
}

/// Same seed, same bits, whatever the thread count: moments, samples and a sampled run.
#[test]
fn results_do_not_depend_on_threads() {
    let t = tempfile::tempdir().unwrap();
    let op = game(t.path(), ParamFamily::Disc, 5 * CHUNK + 3, 6, 2);
    let c = class_of(op.as_ref());
    let go = || {
        let env = Env {
            class: &c,
            op: op.as_ref(),
            beta: 0.1,
        };
        let mode = DirectionMode::Sampled {
            batch: 3 * super::algo::PAIRS_PER_CHUNK as u64 + 5,
            seed: 4,
            fidelity: Fidelity::Sampled,
        };
        let mut a = ParamAlgo::new(AlgoKind::NashMp, 2.0, 6, mode).unwrap();
        let mut m = None;
        for _ in 0..3 {
            m = Some(a.step(&env, m.take()));
        }
        (a, m.unwrap())
    };
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(go);
    let three = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap()
        .install(go);
    assert_eq!(one.0, three.0);
    assert_eq!(one.1, three.1);
}

/// Bad feature files: wrong shape, rows of another game, d = 0, a NaN — each named.
#[test]
fn bad_features_are_rejected_with_their_place() {
    use crate::io::npy::{header_bytes, DType};
    let file = |shape: &[u64], vals: &[f64]| {
        let mut b = header_bytes(DType::F64, shape);
        for v in vals {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b
    };
    let p = Path::new("f.npy");
    let err = |b: Vec<u8>, n: usize| Features::parse_npy(p, &b, n).unwrap_err().to_string();
    assert!(err(file(&[3], &[1.0, 2.0, 3.0]), 3).contains("shape (n, d)"));
    assert!(err(file(&[3, 0], &[]), 3).contains("d ≥ 1"));
    assert!(err(file(&[2, 1], &[1.0, 2.0]), 3).contains("different game"));
    let e = err(file(&[3, 2], &[1.0, 2.0, 3.0, f64::NAN, 5.0, 6.0]), 3);
    assert!(
        e.contains("φ[1][1]") && e.contains("NaN") && e.contains("f.npy"),
        "{e}"
    );
    let ok = Features::parse_npy(p, &file(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), 3).unwrap();
    assert_eq!(ok.col(1), &[2.0, 4.0, 6.0]);
    // A float32 file.
    let mut b = header_bytes(DType::F32, &[2, 1]);
    for v in [0.5f32, -1.5] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    assert_eq!(Features::parse_npy(p, &b, 2).unwrap().col(0), &[0.5, -1.5]);
}

/// The rejection sampler of [`LinearClass::draws`] draws from `π_θ` too (frequencies within 4
/// standard errors), with a reference inside the class.
#[test]
fn rejection_draws_follow_the_policy() {
    let cols = vec![
        Cow::Owned(vec![0.0, 1.0, 2.0, -1.0, 0.5, 0.0]),
        Cow::Owned(vec![1.0, 0.0, 0.0, 1.0, -2.0, 0.3]),
    ];
    let c = LinearClass::new(Features::from_columns("t", cols).unwrap(), None, None)
        .with_reference_params(vec![0.2, 0.1]);
    let theta = [0.8, -0.3];
    let mom = c.moments(&theta, false);
    let mut lp = vec![0.0; 6];
    c.log_probs(&theta, mom.log_z, &mut lp);
    assert!(crate::kernels::vector::logsumexp(&lp).abs() < 1e-14);
    let k = 100_000;
    let ys = c.draws(&theta, &mom, k, 5, &[1]);
    assert_eq!(ys.len(), k);
    for (i, l) in lp.iter().enumerate() {
        let p = l.exp();
        let f = ys.iter().filter(|&&y| y == i).count() as f64 / k as f64;
        let se = (p * (1.0 - p) / k as f64).sqrt();
        assert!((f - p).abs() < 4.0 * se, "action {i}: {f} vs {p}");
    }
}

/// `--estimator gradient`, noise-free (`Fidelity::Expected`): the plain policy-gradient steps
/// converge to the closed-form prox (docs/math.md §8), so MMD by many inner steps ends where
/// MMD by the natural step ends, and every inner step is counted as `B` queries.
#[test]
fn gradient_steps_converge_to_the_closed_form_prox() {
    use super::algo::Estimator;
    let t = tempfile::tempdir().unwrap();
    let op = game(t.path(), ParamFamily::LowRank, 2000, 4, 5);
    let c = class_of(op.as_ref());
    let env = Env {
        class: &c,
        op: op.as_ref(),
        beta: 0.5,
    };
    let mode = DirectionMode::Sampled {
        batch: 10,
        seed: 0,
        fidelity: Fidelity::Expected,
    };
    let dist = |steps: u64| -> f64 {
        let mut nat = ParamAlgo::new(AlgoKind::Mmd, 1.0, 4, mode).unwrap();
        let mut pg = ParamAlgo::new(AlgoKind::Mmd, 1.0, 4, mode)
            .unwrap()
            .with_estimator(Estimator::Gradient { steps, lr: 1.0 })
            .unwrap();
        for _ in 0..3 {
            nat.step(&env, None);
            pg.step(&env, None);
        }
        assert_eq!(pg.queries, 3 * steps * 10);
        assert_eq!(pg.queries_per_iter(), steps * 10);
        // Compared as policies (θ may differ along the null space of Cov(φ), which does not
        // move the policy): the largest log-probability difference.
        let lp = |th: &[f64]| {
            let mut v = vec![0.0; 2000];
            c.log_probs(th, c.moments(th, false).log_z, &mut v);
            v
        };
        max_abs_diff(&lp(&nat.theta), &lp(&pg.theta))
    };
    let (d1, d2, d3) = (dist(1), dist(20), dist(2000));
    eprintln!(
        "max |Δ log π| to the closed-form prox: S = 1: {d1:.3e}, 20: {d2:.3e}, 2000: {d3:.3e}"
    );
    assert!(
        d1 > 1e-3,
        "one plain step is not the natural step here: {d1}"
    );
    assert!(
        d2 < 0.5 * d1 && d3 < 0.1 * d2 && d3 < 1e-4,
        "{d1} {d2} {d3}"
    );
}

/// Sampled `--estimator gradient` Nash-MP learns: its exploitability falls well below the
/// start's, as the natural estimator's does with the same queries per iteration (printed side
/// by side: the comparison the estimator exists for); bad settings are refused.
#[test]
fn sampled_gradient_nash_mp_learns_and_is_checked() {
    use super::algo::Estimator;
    let t = tempfile::tempdir().unwrap();
    let op = game(t.path(), ParamFamily::LowRank, 2000, 4, 6);
    let c = class_of(op.as_ref());
    let beta = 0.5;
    let env = Env {
        class: &c,
        op: op.as_ref(),
        beta,
    };
    let mode = |batch| DirectionMode::Sampled {
        batch,
        seed: 3,
        fidelity: Fidelity::Sampled,
    };
    let mom0 = c.moments(&[0.0; 4], false);
    let e0 = c.exploit_realizable(&[0.0; 4], &mom0, beta);
    let run = |a: &mut ParamAlgo| -> f64 {
        let mut m = None;
        let mut e = 0.0;
        for _ in 0..30 {
            let mm = a.step(&env, m.take());
            e = c.exploit_realizable(&a.theta, &mm, beta);
            m = Some(mm);
        }
        e
    };
    let mut pg = ParamAlgo::new(AlgoKind::NashMp, 2.0, 4, mode(2000))
        .unwrap()
        .with_estimator(Estimator::Gradient { steps: 4, lr: 1.0 })
        .unwrap();
    let mut nat = ParamAlgo::new(AlgoKind::NashMp, 2.0, 4, mode(8000)).unwrap();
    let (ep, en) = (run(&mut pg), run(&mut nat));
    assert_eq!(pg.queries, nat.queries);
    assert_eq!(pg.queries, 30 * 2 * 4 * 2000);
    eprintln!(
        "exploit: start {e0:.3e}, gradient (S=4, B=2000) {ep:.3e}, natural (B=8000) {en:.3e}"
    );
    assert!(
        ep < 0.05 * e0 && en < 0.05 * e0,
        "gradient {ep}, natural {en}, start {e0}"
    );
    // Refused: exact mode, OMWU, zero steps, a bad step.
    let g = Estimator::Gradient { steps: 2, lr: 1.0 };
    let err = |r: crate::error::Result<ParamAlgo>| r.unwrap_err().to_string();
    assert!(err(
        ParamAlgo::new(AlgoKind::NashMp, 2.0, 4, DirectionMode::Exact)
            .unwrap()
            .with_estimator(g)
    )
    .contains("--oracle pg"));
    assert!(err(ParamAlgo::new(AlgoKind::Omwu, 2.0, 4, mode(10))
        .unwrap()
        .with_estimator(g))
    .contains("omwu"));
    let bad = Estimator::Gradient { steps: 0, lr: 1.0 };
    assert!(err(ParamAlgo::new(AlgoKind::Mmd, 2.0, 4, mode(10))
        .unwrap()
        .with_estimator(bad))
    .contains("--inner-steps"));
    let bad = Estimator::Gradient {
        steps: 1,
        lr: f64::NAN,
    };
    assert!(err(ParamAlgo::new(AlgoKind::Mmd, 2.0, 4, mode(10))
        .unwrap()
        .with_estimator(bad))
    .contains("--inner-lr"));
}
