//! One game of the sweep: `π*` at every β, then every (β, algorithm) run, all through the
//! lock-step batcher (or one by one, to measure what batching saves).
//!
//! With a [`GameCheckpoint`], each `π*` is saved once solved and each run saves its iterates and
//! its algorithm's state every `--checkpoint-every` iterations, when interrupted and when it
//! ends; what is saved there is picked up again instead of being recomputed.

use super::cache::GameSpec;
use super::checkpoint::{GameCheckpoint, SavedRun};
use super::config::{CellKind, Oracle, Policy, SweepConfig};
use super::lockstep::{run_lockstep, BatchStats, Job};
use super::lookahead;
use crate::algo::{AlgoKind, Schedule, StepSpec};
use crate::equilibrium::{self, Equilibrium, EquilibriumParams};
use crate::error::{Error, Result};
use crate::game::PreferenceOperator;
use crate::metrics;
use crate::oracle::{pg::PgParams, OracleSpec};
use crate::param::adapter::LinearPolicy;
use crate::policy;
use crate::run::{self, MetricsMode, RunSpec, RunState, StopReason};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Memory the lock-step vectors of one group of runs may use (each run holds about a dozen
/// `n`-vectors of `f64`); beyond it, runs are split into several groups.
const GROUP_BYTES: usize = 4 << 30;
/// Most runs per group: the dense batched kernel reads the matrix once for up to 16 vectors.
const GROUP_MAX: usize = 16;
/// Vectors of `n` `f64` a run holds (iterates, payoffs, scratch, lock-step buffers).
const VECTORS_PER_RUN: usize = 12;

pub use super::record::{EqReport, Record, RunResult};

/// Everything one game produced.
pub struct GameOutcome {
    pub runs: Vec<RunResult>,
    pub equilibria: Vec<EqReport>,
    /// Batching statistics (zero when run one by one).
    pub stats: BatchStats,
    pub seconds: f64,
}

/// How a game ended.
pub enum GameEnd {
    Done(GameOutcome),
    /// Stopped by the interrupt flag; what was done is in the checkpoint.
    Interrupted,
}

/// Checkpoints and interruption of one game.
#[derive(Clone, Copy, Default)]
pub struct GamePersist<'a> {
    /// Where equilibria and runs are saved, and picked up from (`None`: nothing is saved).
    pub ck: Option<&'a GameCheckpoint>,
    /// Save every run's state after every `K`-th iteration.
    pub every: Option<u64>,
    /// When set, every run saves its state and stops.
    pub interrupt: Option<&'a AtomicBool>,
}

impl GamePersist<'_> {
    fn interrupted(&self) -> bool {
        self.interrupt.is_some_and(|f| f.load(Ordering::Relaxed))
    }
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
                stats.add(&s);
                out.extend(res);
            }
            out
        }
    }
}

/// Runs the sweep's cell for one game file, continuing from what `persist.ck` holds.
// Over 80 lines: two phases (every π*, then every run) that build their job lists for the same
// lock-step batcher; the lists borrow the phase's locals, so each phase stays in place.
pub fn run_game(
    op: &dyn PreferenceOperator,
    spec: GameSpec,
    cfg: &SweepConfig,
    mode: Mode,
    persist: GamePersist<'_>,
) -> Result<GameEnd> {
    let t = Instant::now();
    let n = op.n();
    let theta_ref = policy::uniform_theta(n);
    let group = (GROUP_BYTES / (n * 8 * VECTORS_PER_RUN)).clamp(1, GROUP_MAX);
    // OMWU prefetches where a full group of prefetching runs still fits in GROUP_BYTES.
    let prefetch = mode == Mode::Batched
        && group * n * 8 * (VECTORS_PER_RUN + lookahead::EXTRA_VECTORS) <= GROUP_BYTES;
    let mut stats = BatchStats::default();
    if let Some(ck) = persist.ck {
        ck.create_dir()?;
    }

    // Every β is a job, the solved ones returning at once: the lock-step groups, and so the
    // batches' kernel, are those of an uninterrupted sweep.
    let mut eq_jobs: Vec<Job<'_, Result<Option<Equilibrium>>>> =
        Vec::with_capacity(cfg.betas.len());
    for (bi, &beta) in cfg.betas.iter().enumerate() {
        let saved = match persist.ck {
            Some(ck) => ck.load_eq(bi, beta)?,
            None => None,
        };
        let theta_ref = &theta_ref;
        eq_jobs.push(Box::new(move |op: &dyn PreferenceOperator| {
            if saved.is_some() || persist.interrupted() {
                return Ok(saved);
            }
            let params = EquilibriumParams::new(beta);
            let stop = || persist.interrupted();
            let Some(e) = equilibrium::solve_interruptible(op, theta_ref, params, &stop)? else {
                return Ok(None);
            };
            if let Some(ck) = persist.ck {
                ck.save_eq(bi, beta, &e)?;
            }
            Ok(Some(e))
        }));
    }
    let equilibria: Vec<Option<Equilibrium>> = execute(op, eq_jobs, mode, group, &mut stats)
        .into_iter()
        .collect::<Result<_>>()?;
    let eq_stats = stats;
    // An interrupted equilibrium solve is dropped (it is solved again on resume), as are those
    // not started.
    let Some(equilibria) = equilibria.into_iter().collect::<Option<Vec<_>>>() else {
        return Ok(GameEnd::Interrupted);
    };
    if persist.interrupted() {
        return Ok(GameEnd::Interrupted);
    }

    let mut cells = Vec::new();
    for (bi, &beta) in cfg.betas.iter().enumerate() {
        for c in cfg.cells_at(n) {
            cells.push((bi, beta, c));
        }
    }
    let linear = cells
        .iter()
        .any(|c| c.2.policy == Policy::Linear)
        .then(|| linear_class(op, &theta_ref))
        .transpose()?;
    let mut saved = Vec::with_capacity(cells.len());
    for (j, &(_, beta, c)) in cells.iter().enumerate() {
        saved.push(match persist.ck {
            Some(ck) => ck.load_run(j, beta, c.kind)?,
            None => None,
        });
    }
    // Exact tabular runs go through the lock step; sampled and parametric runs (whose
    // applies are only their metrics, between long stretches of sampling) run one by one, so
    // that they never hold a lock-step group waiting.
    let mut lock = Vec::new();
    let mut alone = Vec::new();
    for (j, (&(bi, beta, c), saved)) in cells.iter().zip(saved).enumerate() {
        let (theta_ref, star) = (&theta_ref, &equilibria[bi].theta);
        let linear = linear.as_ref();
        let job = Box::new(move |op: &dyn PreferenceOperator| {
            let cell = Cell {
                game: spec,
                beta,
                c,
                index: j,
            };
            one_run(
                op,
                cfg,
                cell,
                (theta_ref, star),
                prefetch,
                persist,
                saved,
                linear,
            )
        }) as Job<'_, _>;
        if (c.policy, c.oracle) == (Policy::Tabular, Oracle::Exact) {
            lock.push((j, job));
        } else {
            alone.push((j, job));
        }
    }
    let (lock_at, lock): (Vec<usize>, Vec<_>) = lock.into_iter().unzip();
    let (alone_at, alone): (Vec<usize>, Vec<_>) = alone.into_iter().unzip();
    let mut done: Vec<(usize, Result<Option<Vec<RunResult>>>)> = Vec::new();
    done.extend(
        lock_at
            .into_iter()
            .zip(execute(op, lock, mode, group, &mut stats)),
    );
    let mut none = BatchStats::default();
    let one = Mode::OneByOne;
    done.extend(
        alone_at
            .into_iter()
            .zip(execute(op, alone, one, group, &mut none)),
    );
    done.sort_by_key(|d| d.0);
    let mut runs = Vec::new();
    let mut interrupted = false;
    for (_, r) in done {
        match r? {
            Some(r) => runs.extend(r),
            None => interrupted = true,
        }
    }
    if interrupted {
        return Ok(GameEnd::Interrupted);
    }
    if mode == Mode::Batched && std::env::var_os("NASHMP_BATCH_SIZES").is_some() {
        let mut runs_stats = stats;
        for (a, b) in runs_stats.sizes.iter_mut().zip(&eq_stats.sizes) {
            *a -= b;
        }
        eprintln!(
            "batch sizes (vectors:passes), n={n}: equilibria {} | runs {}",
            eq_stats.sizes_line(),
            runs_stats.sizes_line()
        );
    }
    Ok(GameEnd::Done(GameOutcome {
        runs,
        equilibria: cfg
            .betas
            .iter()
            .zip(equilibria)
            .map(|(&beta, certificate)| EqReport { beta, certificate })
            .collect(),
        stats,
        seconds: t.elapsed().as_secs_f64(),
    }))
}

/// The linear class of a game's own factors, with the sweep's uniform reference.
fn linear_class(op: &dyn PreferenceOperator, theta_ref: &[f64]) -> Result<Arc<LinearPolicy>> {
    let args = crate::param::cli::PolicyArgs {
        policy: crate::param::cli::PolicyKind::Linear,
        features: Some("game".into()),
        estimator: None,
    };
    Ok(args
        .build(op, theta_ref)?
        .expect("--policy linear builds a class"))
}

/// One (β, class, oracle, algorithm) cell of a game.
struct Cell {
    game: GameSpec,
    beta: f64,
    c: CellKind,
    /// Its position among the game's cells (names its checkpoint file).
    index: usize,
}

/// One algorithm from `μ` with its default step and full metrics; its rows split by label.
/// Continues from `saved`; `None` if interrupted (its state saved in `persist.ck`).
// Over 80 lines: the saved states it resumes from are matched in place, and the class and
// oracle of the cell are set up next to the spec they go into.
#[allow(clippy::too_many_arguments)]
fn one_run(
    op: &dyn PreferenceOperator,
    cfg: &SweepConfig,
    cell: Cell,
    (theta_ref, star): (&[f64], &[f64]),
    prefetch: bool,
    persist: GamePersist<'_>,
    saved: Option<SavedRun>,
    linear: Option<&Arc<LinearPolicy>>,
) -> Result<Option<Vec<RunResult>>> {
    let Cell {
        game,
        beta,
        c,
        index,
    } = cell;
    let kind = c.kind;
    // The default step, validated (e.g. mmd's α = 4β is refused at β = 0).
    let (step, _) = StepSpec::Default.resolve(kind, beta)?;
    let kl0 = metrics::kl(star, theta_ref);
    let results = |series: Vec<(String, Vec<Record>)>| {
        series
            .into_iter()
            .map(|(algo, records)| RunResult {
                game,
                beta,
                policy: c.policy,
                oracle: c.oracle,
                algo,
                alpha: step.alpha,
                kl0,
                records,
            })
            .collect()
    };
    let (state, series) = match saved {
        // Saved without a state: the run had ended.
        Some(SavedRun {
            state: None,
            series,
        }) => return Ok(Some(results(series))),
        Some(SavedRun {
            state: Some(st),
            series,
        }) => (Some(st), series),
        None if persist.interrupted() => return Ok(None),
        None => (None, Vec::new()),
    };
    let spec = RunSpec {
        kind,
        beta,
        step,
        schedule: Schedule::Constant,
        iters: cfg.algo_iters(kind, beta, op.n()),
        tol: None,
        metrics: MetricsMode::Full,
        theta_ref,
        theta0: theta_ref,
        theta_star: Some(star),
        oracle: match c.oracle {
            Oracle::Exact => OracleSpec::exact(),
            Oracle::Pg => OracleSpec::pg(
                PgParams {
                    inner_steps: 1,
                    batch: cfg.pg_batch(c.policy, op.n()),
                    inner_lr: None,
                },
                game.seed,
            )?,
        },
        log_every: cfg.log_every(op.n(), cfg.algo_iters(kind, beta, op.n())),
    };
    let factory = match (c.policy, c.oracle) {
        // Prefetching changes the passes, not the results (see `lookahead`); it applies to
        // the lock step's runs only.
        (Policy::Tabular, Oracle::Exact) => {
            prefetch.then_some(&lookahead::Prefetching as &dyn run::AlgoFactory)
        }
        (Policy::Tabular, Oracle::Pg) => None,
        (Policy::Linear, _) => {
            let l = linear.expect("the game's linear class is built for its linear cells");
            l.check(&[kind], &spec.oracle)?;
            Some(l.as_ref() as &dyn run::AlgoFactory)
        }
    };
    let mut obs = SeriesObserver {
        series,
        persist,
        index,
        beta,
        kind,
    };
    let info =
        run::run_observed_with(op, &spec, factory, state, &mut obs).map_err(|e| match e {
            // A checkpoint that cannot be written names its own file.
            e @ Error::Io { .. } => e,
            e => e.context(format!(
                "{} n={} β={beta} {kind} ({}, {})",
                game.family_name(),
                game.n,
                c.policy.name(),
                c.oracle.name()
            )),
        })?;
    if info.stop == StopReason::Interrupted {
        return Ok(None);
    }
    let series = obs.series;
    if let Some(ck) = persist.ck {
        ck.save_run(index, beta, kind, None, &series)?;
    }
    Ok(Some(results(series)))
}

/// Owns a sweep run's logged iterates (by label) and saves them with its state.
struct SeriesObserver<'a> {
    series: Vec<(String, Vec<Record>)>,
    persist: GamePersist<'a>,
    /// The run's position among the game's cells, β and algorithm (name its checkpoint).
    index: usize,
    beta: f64,
    kind: AlgoKind,
}

impl run::Observer for SeriesObserver<'_> {
    fn row(&mut self, r: &run::Row) -> Result<()> {
        let s = &mut self.series;
        let at = match s.iter().position(|(l, _)| l == r.algo) {
            Some(i) => i,
            None => {
                s.push((r.algo.to_string(), Vec::new()));
                s.len() - 1
            }
        };
        s[at].1.push(Record {
            iter: r.iter,
            queries: r.queries,
            m: r.metrics,
        });
        Ok(())
    }
    fn interrupted(&self) -> bool {
        self.persist.interrupted()
    }
    fn save_every(&self) -> Option<u64> {
        self.persist.every
    }
    fn save(&mut self, st: &RunState) -> Result<()> {
        match self.persist.ck {
            Some(ck) => ck.save_run(self.index, self.beta, self.kind, Some(st), &self.series),
            None => Ok(()),
        }
    }
}
