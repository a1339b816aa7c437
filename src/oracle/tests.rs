//! The stochastic code paths against the deterministic algorithms, query accounting, and
//! sampling at a scale no dense game reaches.

use super::estimate::{sampled_payoff, SampledGame};
use super::pg::{ApproxNashMp, PgParams};
use super::*;
use crate::algo::{self, Algorithm, Context, CurrentPayoff, Schedule, Step};
use crate::game::{
    apply_vec, check_shapes, column, columns_mut, DenseGame, Info, MatMut, MatRef, MemStack,
    PreferenceOperator, StackReq, Structure,
};
use crate::run::{self, MetricsMode, RunSpec};

fn game(n: usize) -> DenseGame {
    let p = (0..n * n)
        .map(|k| crate::gen::uniform_entry(17, k / n, k % n))
        .collect();
    DenseGame::from_vec("uniform", n, p)
}

fn nonuniform(n: usize) -> Vec<f64> {
    let p: Vec<f64> = (0..n).map(|i| (i + 1) as f64).collect();
    let s: f64 = p.iter().sum();
    crate::policy::theta_from_probs("ref", &p.iter().map(|x| x / s).collect::<Vec<_>>(), n).unwrap()
}

const PG: PgParams = PgParams {
    inner_steps: 3,
    batch: 50,
    inner_lr: None,
};

#[test]
fn noise_free_pg_is_nash_mp() {
    let n = 40;
    let g = game(n);
    let theta_ref = nonuniform(n);
    let theta0 = crate::policy::uniform_theta(n);
    let (alpha, beta) = (2.0, 0.05);
    let ctx = Context::new(&g, &theta_ref, beta);
    let mut exact = algo::build(algo::AlgoKind::NashMp, &theta0, alpha, Schedule::Constant);
    let mut approx = ApproxNashMp::new(&theta0, alpha, PG, 1, Fidelity::Expected);
    let (mut c1, mut c2) = (CurrentPayoff::new(n), CurrentPayoff::new(n));
    for k in 1..=60u64 {
        exact.step(&ctx, &mut c1);
        approx.step(&ctx, &mut c2);
        c1.invalidate();
        c2.invalidate();
        let d = exact
            .theta()
            .iter()
            .zip(approx.theta())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(d <= 1e-12, "iteration {k}: |θ − θ_exact| = {d}");
        assert_eq!(approx.queries(), Some(k * 2 * 3 * 50));
    }
    // The trajectory moved: this was not a comparison at a fixed point.
    assert!(crate::metrics::kl(exact.theta(), &theta0) > 1e-2);
}

/// A logged row: iteration, queries, `kl_star`.
type Logged = (u64, u64, Option<f64>);

/// Runs `kind` through the driver with `oracle`; returns the logged rows and the final θ.
fn drive(
    op: &dyn PreferenceOperator,
    kind: algo::AlgoKind,
    oracle: OracleSpec,
    iters: u64,
) -> (Vec<Logged>, Vec<f64>) {
    let n = op.n();
    let theta_ref = nonuniform(n);
    let theta0 = crate::policy::uniform_theta(n);
    let beta = 0.05;
    let eq = crate::equilibrium::solve(
        op,
        &theta_ref,
        crate::equilibrium::EquilibriumParams::new(beta),
    )
    .unwrap();
    let alpha = kind.default_alpha(beta);
    let spec = RunSpec {
        kind,
        beta,
        step: Step {
            alpha,
            eta: alpha * beta,
        },
        schedule: Schedule::Constant,
        iters,
        tol: None,
        metrics: MetricsMode::Full,
        theta_ref: &theta_ref,
        theta0: &theta0,
        theta_star: Some(&eq.theta),
        oracle,
        log_every: 1,
    };
    let mut rows = Vec::new();
    let info = run::run(
        op,
        &spec,
        &mut |r| {
            rows.push((r.iter, r.queries, r.metrics.kl_star));
            Ok(())
        },
        &mut || {},
    )
    .unwrap();
    (rows, info.theta)
}

#[test]
fn noise_free_sampled_payoff_is_every_algorithm() {
    let g = game(30);
    for kind in algo::AlgoKind::ALL {
        let (a, ta) = drive(&g, kind, OracleSpec::exact(), 20);
        let spec = OracleSpec::sampled(7, 3).unwrap().expected();
        let (b, tb) = drive(&g, kind, spec, 20);
        assert_eq!(ta, tb, "{kind}");
        for ((ka, qa, kla), (_, qb, klb)) in a.iter().zip(&b) {
            assert_eq!(kla, klb, "{kind} iteration {ka}");
            // Every operator application is n·M sampled queries.
            assert_eq!(*qb, qa * 30 * 7, "{kind} iteration {ka}");
        }
    }
}

#[test]
fn driver_counts_real_queries_and_metrics_stay_exact() {
    let g = game(30);
    let spec = OracleSpec::pg(PG, 9).unwrap();
    let (rows, _) = drive(&g, algo::AlgoKind::NashMp, spec, 5);
    for (k, q, kl) in &rows {
        assert_eq!(*q, k * 2 * 3 * 50);
        assert!(kl.is_some());
    }
    let spec = OracleSpec::sampled(4, 9).unwrap();
    let (rows, _) = drive(&g, algo::AlgoKind::Omwu, spec, 5);
    for (k, q, _) in &rows {
        // OMWU: g(π_0) once, then one estimate per iteration.
        assert_eq!(*q, if *k == 0 { 0 } else { (k + 1) * 30 * 4 });
    }
    // Same seed, same run; another seed, another run.
    let a = drive(
        &g,
        algo::AlgoKind::NashMp,
        OracleSpec::pg(PG, 9).unwrap(),
        3,
    )
    .1;
    let b = drive(
        &g,
        algo::AlgoKind::NashMp,
        OracleSpec::pg(PG, 9).unwrap(),
        3,
    )
    .1;
    let c = drive(
        &g,
        algo::AlgoKind::NashMp,
        OracleSpec::pg(PG, 8).unwrap(),
        3,
    )
    .1;
    assert_eq!(a, b);
    assert_ne!(a, c);
}

/// `P[i][j] = 1/2 + (s_i − s_j)/2` with skills `s ∈ [0, 1]`: an implicit game of any size,
/// `O(n)` per apply.
struct Skill(Vec<f64>);

impl PreferenceOperator for Skill {
    fn n(&self) -> usize {
        self.0.len()
    }
    fn apply(&self, out: MatMut<'_, f64>, rhs: MatRef<'_, f64>, _stack: &mut MemStack) {
        check_shapes(self.n(), &out, &rhs);
        for (v, out) in columns_mut(out).enumerate() {
            let x = column(rhs, v);
            let mass: f64 = x.iter().sum();
            let sx: f64 = x.iter().zip(&self.0).map(|(a, b)| a * b).sum();
            for (o, s) in out.iter_mut().zip(&self.0) {
                *o = 0.5 * mass + 0.5 * (s * mass - sx);
            }
        }
    }
    fn apply_scratch(&self, _k: usize) -> StackReq {
        StackReq::EMPTY
    }
    fn entry(&self, i: usize, j: usize) -> f64 {
        0.5 + 0.5 * (self.0[i] - self.0[j])
    }
    fn precision(&self) -> f64 {
        1e-15
    }
    fn validate(&self, _tol: Option<f64>) -> crate::error::Result<()> {
        Ok(())
    }
    fn info(&self) -> Info<'_> {
        Info {
            layout: "implicit (test)".into(),
            stored_bytes: 0,
            description: "skill".into(),
            structure: Structure::None,
        }
    }
}

#[test]
fn sampling_scales_past_dense_sizes() {
    let n = 200_000;
    let skill = Skill((0..n).map(|i| crate::gen::unit(5, i as u64, 0)).collect());
    let mut theta: Vec<f64> = (0..n).map(|i| -3.0 * skill.0[i]).collect();
    crate::kernels::vector::normalise(&mut theta);
    let pi = crate::policy::probs(&theta);
    let mut g = vec![0.0; n];
    apply_vec(&skill, &pi, &mut g);
    // Mean error over actions of a 2-sample estimate: each error has variance ≤ 1/8 and they
    // are independent, so the mean has standard deviation ≤ sqrt(1/(8n)); 5 of them.
    let oracle = Oracle::new(&skill);
    let table = alias::AliasTable::from_log(&theta);
    let mut est = vec![0.0; n];
    sampled_payoff(&oracle, &table, 2, |c| stream(4, &[c as u64]), &mut est);
    assert_eq!(oracle.queries(), 2 * n as u64);
    let mean_err = est.iter().zip(&g).map(|(a, b)| a - b).sum::<f64>() / n as f64;
    assert!(
        mean_err.abs() <= 5.0 * (1.0 / (8.0 * n as f64)).sqrt(),
        "{mean_err}"
    );
    // One approximate Nash-MP iteration: O(n) per inner step, O(1) per sampled pair.
    let theta_ref = crate::policy::uniform_theta(n);
    let ctx = Context::new(&skill, &theta_ref, 0.1);
    let params = PgParams {
        inner_steps: 2,
        batch: 10_000,
        inner_lr: None,
    };
    let mut approx = ApproxNashMp::new(&theta_ref, 2.0, params, 0, Fidelity::Sampled);
    approx.step(&ctx, &mut CurrentPayoff::new(n));
    assert_eq!(approx.queries(), Some(40_000));
    assert!(crate::kernels::vector::logsumexp(approx.theta()).abs() < 1e-12);
    // The sampled wrapper reports its queries too.
    let sg = SampledGame::new(&skill, 1, 0, 0, Fidelity::Sampled);
    apply_vec(&sg, &pi, &mut est);
    assert_eq!(sg.queries(), n as u64);
}
