//! One game of the sweep: `π*` at every β, then every (β, algorithm) run, all through the
//! lock-step batcher (or one by one, to measure what batching saves).

use super::cache::GameSpec;
use super::config::SweepConfig;
use super::lockstep::{run_lockstep, BatchStats, Job};
use crate::algo::{AlgoKind, Schedule, StepSpec};
use crate::equilibrium::{self, Equilibrium, EquilibriumParams};
use crate::error::{Error, Result};
use crate::game::PreferenceOperator;
use crate::metrics::{self, Metrics};
use crate::oracle::OracleSpec;
use crate::policy;
use crate::run::{self, MetricsMode, RunSpec};
use std::time::Instant;

/// Memory the lock-step vectors of one group of runs may use (each run holds about a dozen
/// `n`-vectors of `f64`); beyond it, runs are split into several groups.
const GROUP_BYTES: usize = 4 << 30;
/// Most runs per group: the dense batched kernel reads the matrix once for up to 16 vectors.
const GROUP_MAX: usize = 16;
/// Vectors of `n` `f64` a run holds (iterates, payoffs, scratch, lock-step buffers).
const VECTORS_PER_RUN: usize = 12;

/// One logged iterate.
#[derive(Clone, Copy, Debug)]
pub struct Record {
    pub iter: u64,
    pub queries: u64,
    pub m: Metrics,
}

/// One algorithm (or extra iterate, e.g. `mwu-avg`) on one game at one β.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub game: GameSpec,
    pub beta: f64,
    /// `nash-mp`, `mmd` …, or an extra iterate's label.
    pub algo: String,
    pub alpha: f64,
    /// `KL(π*‖π_0)`.
    pub kl0: f64,
    pub records: Vec<Record>,
}

/// How the equilibrium solve of one β went.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EqReport {
    pub beta: f64,
    pub certificate: Equilibrium,
}

/// Everything one game produced.
pub struct GameOutcome {
    pub runs: Vec<RunResult>,
    pub equilibria: Vec<EqReport>,
    /// Batching statistics (zero when run one by one).
    pub stats: BatchStats,
    pub seconds: f64,
}

/// Whether runs sharing a game are batched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Batched,
    OneByOne,
}

/// Runs every job, batched in groups of at most `group` or one after another.
fn execute<'s, T: Send>(
    op: &dyn PreferenceOperator,
    jobs: Vec<Job<'s, T>>,
    mode: Mode,
    group: usize,
    stats: &mut BatchStats,
) -> Vec<T> {
    match mode {
        Mode::OneByOne => jobs.into_iter().map(|j| j(op)).collect(),
        Mode::Batched => {
            let mut out = Vec::with_capacity(jobs.len());
            let mut jobs = jobs.into_iter().peekable();
            while jobs.peek().is_some() {
                let chunk: Vec<_> = jobs.by_ref().take(group).collect();
                let (res, s) = run_lockstep(op, chunk);
                stats.passes += s.passes;
                stats.vectors += s.vectors;
                out.extend(res);
            }
            out
        }
    }
}

/// Runs the sweep's cell for one game file.
pub fn run_game(
    op: &dyn PreferenceOperator,
    spec: GameSpec,
    cfg: &SweepConfig,
    mode: Mode,
) -> Result<GameOutcome> {
    let t = Instant::now();
    let n = op.n();
    let theta_ref = policy::uniform_theta(n);
    let group = (GROUP_BYTES / (n * 8 * VECTORS_PER_RUN)).clamp(1, GROUP_MAX);
    let mut stats = BatchStats::default();

    let eq_jobs: Vec<Job<'_, Result<Equilibrium>>> = cfg
        .betas
        .iter()
        .map(|&beta| {
            let theta_ref = &theta_ref;
            Box::new(move |op: &dyn PreferenceOperator| {
                equilibrium::solve(op, theta_ref, EquilibriumParams::new(beta))
            }) as Job<'_, _>
        })
        .collect();
    let equilibria: Vec<Equilibrium> = execute(op, eq_jobs, mode, group, &mut stats)
        .into_iter()
        .collect::<Result<_>>()?;

    let mut cells = Vec::new();
    for (bi, &beta) in cfg.betas.iter().enumerate() {
        for &kind in &cfg.algos {
            cells.push((bi, beta, kind));
        }
    }
    let run_jobs: Vec<Job<'_, Result<Vec<RunResult>>>> = cells
        .iter()
        .map(|&(bi, beta, kind)| {
            let (theta_ref, star) = (&theta_ref, &equilibria[bi].theta);
            Box::new(move |op: &dyn PreferenceOperator| {
                one_run(op, spec, cfg, beta, kind, theta_ref, star)
            }) as Job<'_, _>
        })
        .collect();
    let mut runs = Vec::new();
    for r in execute(op, run_jobs, mode, group, &mut stats) {
        runs.extend(r?);
    }
    Ok(GameOutcome {
        runs,
        equilibria: cfg
            .betas
            .iter()
            .zip(equilibria)
            .map(|(&beta, certificate)| EqReport { beta, certificate })
            .collect(),
        stats,
        seconds: t.elapsed().as_secs_f64(),
    })
}

/// One algorithm from `μ` with its default step and full metrics; its rows split by label.
fn one_run(
    op: &dyn PreferenceOperator,
    game: GameSpec,
    cfg: &SweepConfig,
    beta: f64,
    kind: AlgoKind,
    theta_ref: &[f64],
    star: &[f64],
) -> Result<Vec<RunResult>> {
    // The default step, validated (e.g. mmd's α = 4β is refused at β = 0).
    let (step, _) = StepSpec::Default.resolve(kind, beta)?;
    let spec = RunSpec {
        kind,
        beta,
        step,
        schedule: Schedule::Constant,
        iters: cfg.algo_iters(kind, beta),
        tol: None,
        metrics: MetricsMode::Full,
        theta_ref,
        theta0: theta_ref,
        theta_star: Some(star),
        oracle: OracleSpec::exact(),
    };
    let mut labels: Vec<String> = Vec::new();
    let mut records: Vec<Vec<Record>> = Vec::new();
    run::run(
        op,
        &spec,
        &mut |r| {
            let at = match labels.iter().position(|l| l == r.algo) {
                Some(i) => i,
                None => {
                    labels.push(r.algo.to_string());
                    records.push(Vec::new());
                    labels.len() - 1
                }
            };
            records[at].push(Record {
                iter: r.iter,
                queries: r.queries,
                m: r.metrics,
            });
            Ok(())
        },
        &mut || {},
    )
    .map_err(|e| {
        Error::Param(format!(
            "{} n={} β={beta} {kind}: {e}",
            game.family_name(),
            game.n
        ))
    })?;
    let kl0 = metrics::kl(star, theta_ref);
    Ok(labels
        .into_iter()
        .zip(records)
        .map(|(algo, records)| RunResult {
            game,
            beta,
            algo,
            alpha: step.alpha,
            kl0,
            records,
        })
        .collect())
}
