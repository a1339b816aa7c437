//! Measurements for sampled preference queries (docs/math.md §6); not part of the test suite.
//!
//! ```sh
//! # A dense 1000-action mixture game (Bradley–Terry + cyclic) for `nashmp solve --oracle pg`:
//! cargo run --release --example oracle_sweep -- mixture 1000 /tmp/mix1000.npy
//! # Queries approximate Nash-MP needs to reach KL(π*‖π) ≤ 1e-2, for n = 10^2 … 10^5, on an
//! # implicit skill + disc game (O(n) per apply, O(1) per entry):
//! cargo run --release --example oracle_sweep -- sweep [BATCH_PER_ACTION] [INNER_STEPS]
//! ```

use nashmp::algo::{AlgoKind, Schedule, Step};
use nashmp::equilibrium::{self, EquilibriumParams};
use nashmp::game::{
    check_shapes, column, columns_mut, Info, MatMut, MatRef, MemStack, PreferenceOperator,
    StackReq, Structure,
};
use nashmp::gen::{cyclic_entry, unit};
use nashmp::io::{array, npy::DType};
use nashmp::oracle::{pg::PgParams, OracleSpec};
use nashmp::policy::uniform_theta;
use nashmp::run::{self, MetricsMode, RunSpec};

/// `P = ½·sigmoid(s_i − s_j) + ½·cyclic`, skills `s_i = 3·U[0,1)` from `seed`.
fn mixture_entry(n: usize, seed: u64, i: usize, j: usize) -> f64 {
    if i > j {
        return 1.0 - mixture_entry(n, seed, j, i);
    }
    let d = 3.0 * (unit(seed, i as u64, 0) - unit(seed, j as u64, 0));
    0.5 / (1.0 + (-d).exp()) + 0.5 * cyclic_entry(n, i, j)
}

/// `P[i][j] = ½ + ¼(s_i − s_j) + ¼ r_i r_j sin(φ_i − φ_j)`: a linear skill plus a disc game
/// (docs/math.md §7, rank 4), in `[0, 1]` for `s, r ∈ [0, 1]`.
struct SkillDisc {
    s: Vec<f64>,
    /// `r cos φ`, `r sin φ`.
    u: Vec<f64>,
    v: Vec<f64>,
}

impl SkillDisc {
    fn new(n: usize, seed: u64) -> Self {
        let (mut s, mut u, mut v) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        for i in 0..n {
            let k = i as u64;
            s[i] = unit(seed, k, 0);
            let (r, phi) = (unit(seed, k, 1), std::f64::consts::TAU * unit(seed, k, 2));
            u[i] = r * phi.cos();
            v[i] = r * phi.sin();
        }
        SkillDisc { s, u, v }
    }
}

impl PreferenceOperator for SkillDisc {
    fn n(&self) -> usize {
        self.s.len()
    }
    fn apply(&self, out: MatMut<'_, f64>, rhs: MatRef<'_, f64>, _stack: &mut MemStack) {
        check_shapes(self.n(), &out, &rhs);
        for (v, out) in columns_mut(out).enumerate() {
            let x = column(rhs, v);
            let dot = |a: &[f64]| a.iter().zip(x).map(|(p, q)| p * q).sum::<f64>();
            // Σx in index order (the bits of a dot with ones: 1·q = q exactly).
            let (mass, sx, ux, vx) = (
                x.iter().sum::<f64>(),
                dot(&self.s),
                dot(&self.u),
                dot(&self.v),
            );
            for (i, o) in out.iter_mut().enumerate() {
                // r_i r_j sin(φ_i − φ_j) = v_i u_j − u_i v_j.
                *o = 0.5 * mass
                    + 0.25 * (self.s[i] * mass - sx)
                    + 0.25 * (self.v[i] * ux - self.u[i] * vx);
            }
        }
    }
    fn apply_scratch(&self, _k: usize) -> StackReq {
        StackReq::EMPTY
    }
    fn entry(&self, i: usize, j: usize) -> f64 {
        0.5 + 0.25 * (self.s[i] - self.s[j])
            + 0.25 * (self.v[i] * self.u[j] - self.u[i] * self.v[j])
    }
    fn precision(&self) -> f64 {
        1e-15
    }
    fn validate(&self, _tol: Option<f64>) -> nashmp::Result<()> {
        Ok(())
    }
    fn info(&self) -> Info<'_> {
        Info {
            layout: "implicit (test)".into(),
            stored_bytes: 0,
            description: format!("skill+disc {0}x{0} (implicit)", self.n()),
            structure: Structure::None,
        }
    }
}

/// Queries of approximate Nash-MP until `kl_star ≤ target` (or `None` within `iters`).
fn queries_to_reach(
    op: &dyn PreferenceOperator,
    beta: f64,
    pg: PgParams,
    target: f64,
    iters: u64,
) -> (Option<u64>, f64) {
    let n = op.n();
    let theta_ref = uniform_theta(n);
    let eq = equilibrium::solve(op, &theta_ref, EquilibriumParams::new(beta)).expect("π*");
    let spec = RunSpec {
        kind: AlgoKind::NashMp,
        beta,
        step: Step {
            alpha: 2.0,
            eta: 2.0 * beta,
        },
        schedule: Schedule::Constant,
        iters,
        tol: None,
        metrics: MetricsMode::Full,
        theta_ref: &theta_ref,
        theta0: &theta_ref,
        theta_star: Some(&eq.theta),
        oracle: OracleSpec::pg(pg, 0).expect("valid"),
        log_every: 1,
    };
    let mut hit = None;
    let mut best = f64::INFINITY;
    run::run(
        op,
        &spec,
        &mut |r| {
            let kl = r.metrics.kl_star.expect("full metrics");
            best = best.min(kl);
            if kl <= target && hit.is_none() {
                hit = Some(r.queries);
            }
            Ok(())
        },
        &mut || {},
    )
    .expect("run");
    (hit, best)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("mixture") if args.len() == 3 => {
            let n: usize = args[1].parse()?;
            array::write_matrix(std::path::Path::new(&args[2]), n, DType::F64, |i, row| {
                row.iter_mut().enumerate().for_each(|(j, p)| *p = mixture_entry(n, 1, i, j));
                Ok(())
            })?;
            println!("wrote {}", args[2]);
        }
        Some("sweep") => {
            let per_action: u64 = args.get(1).map_or(Ok(100), |a| a.parse())?;
            let steps: u64 = args.get(2).map_or(Ok(10), |a| a.parse())?;
            println!("n,batch,inner_steps,queries_to_1e-2,queries_per_n,best_kl,seconds");
            for n in [100usize, 1_000, 10_000, 100_000] {
                let t = std::time::Instant::now();
                let op = SkillDisc::new(n, 7);
                let pg = PgParams { inner_steps: steps, batch: per_action * n as u64 / steps, inner_lr: None };
                let (q, best) = queries_to_reach(&op, 0.1, pg, 1e-2, 60);
                let fmt = |q: Option<u64>| q.map_or("-".into(), |q| q.to_string());
                println!(
                    "{n},{},{steps},{},{},{best:.3e},{:.1}",
                    pg.batch,
                    fmt(q),
                    q.map_or("-".into(), |q| format!("{:.0}", q as f64 / n as f64)),
                    t.elapsed().as_secs_f64()
                );
            }
        }
        _ => anyhow::bail!("usage: oracle_sweep mixture N OUT.npy | oracle_sweep sweep [BATCH_PER_ACTION] [INNER_STEPS]"),
    }
    Ok(())
}
