//! The driver: iterate an algorithm, log its metrics per iteration, stop on a reason.

pub mod checkpoint;
pub mod csv_out;
pub mod fingerprint;
pub mod memory;
pub mod session;

use crate::algo::{self, AlgoKind, AlgoState, Context, CurrentPayoff, Schedule, Step};
use crate::game::{payoff, PreferenceOperator};
use crate::metrics::{self, Metrics};
use crate::oracle::{self, estimate::SampledGame, pg::ApproxNashMp, OracleMode, OracleSpec};
use std::time::Instant;

/// Which metrics to compute per iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum MetricsMode {
    /// Everything, including the distances to `π*` (needs `π*`).
    Full,
    /// Only the certificates that need no `π*` (exploit, gap, exploit0, residual).
    Cheap,
    /// Nothing: no extra queries, only `algo,iter,queries,seconds`.
    None,
}

/// One algorithm run.
pub struct RunSpec<'a> {
    pub kind: AlgoKind,
    pub beta: f64,
    pub step: Step,
    pub schedule: Schedule,
    pub iters: u64,
    /// Stop once `exploit ≤ tol`.
    pub tol: Option<f64>,
    pub metrics: MetricsMode,
    pub theta_ref: &'a [f64],
    pub theta0: &'a [f64],
    /// `θ*`, required for [`MetricsMode::Full`].
    pub theta_star: Option<&'a [f64]>,
    /// How the algorithm sees the game; metrics always use the exact operator.
    pub oracle: OracleSpec,
    /// Log (and measure) every `log_every`-th iterate, and always the first and the last
    /// (`1`: every iterate). Metrics cost several passes over `n`-vectors, about as much as an
    /// iteration, so very large games in sweeps thin them; `--tol` is checked at logged
    /// iterates only.
    pub log_every: u64,
}

/// One logged iterate.
#[derive(Clone, Debug)]
pub struct Row<'a> {
    pub algo: &'a str,
    pub iter: u64,
    pub queries: u64,
    pub metrics: Metrics,
    pub seconds: f64,
}

/// Why a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    /// `--iters` reached.
    MaxIters,
    /// `exploit ≤ tol`.
    Tol,
    /// The iterate stopped being finite (a step far too large).
    NonFinite,
    /// The user interrupted the run (SIGINT); its state was saved for `--resume`.
    Interrupted,
}

/// Where a run stands after logging iterate `k`: enough to continue it bit for bit.
#[derive(Clone, Debug, PartialEq)]
pub struct RunState {
    pub k: u64,
    pub queries: u64,
    pub seconds: f64,
    pub algo: AlgoState,
    /// The sampled game's [`SampledGame::position`] under `--oracle sampled`.
    pub oracle: Option<(u64, u64)>,
    /// Metrics of iterate `k` and of the extra iterates (the stop rules and the summary read them).
    pub last: Metrics,
    pub extra_last: Vec<Metrics>,
}

/// Checkpoints and interruption of a run (see [`run_persistent`]).
pub struct Persist<'a> {
    /// Continue from this state (saved by an earlier run of the same spec) instead of `θ_0`.
    pub resume: Option<RunState>,
    /// Pass the state to `save` after every `every`-th iteration.
    pub every: Option<u64>,
    /// Whether the user asked to stop; checked after every iteration.
    pub interrupted: &'a dyn Fn() -> bool,
    /// Stores a state (a checkpoint); also called once when the run is interrupted.
    pub save: &'a mut dyn FnMut(&RunState) -> crate::error::Result<()>,
}

/// The outcome of a run.
#[derive(Clone, Debug)]
pub struct RunInfo {
    pub kind: AlgoKind,
    pub step: Step,
    pub iterations: u64,
    pub queries: u64,
    pub seconds: f64,
    pub stop: StopReason,
    pub last: Metrics,
    pub theta: Vec<f64>,
    /// Extra iterates (label, θ, last metrics), e.g. MWU's average.
    pub extras: Vec<(String, Vec<f64>, Metrics)>,
}

/// Runs `spec` on `op`, calling `on_row` for every logged iterate and `tick` after each
/// iteration.
///
/// # Panics
/// If `MetricsMode::Full` is asked without `theta_star`, or vector lengths disagree.
pub fn run(
    op: &dyn PreferenceOperator,
    spec: &RunSpec,
    on_row: &mut dyn FnMut(&Row) -> crate::error::Result<()>,
    tick: &mut dyn FnMut(),
) -> crate::error::Result<RunInfo> {
    run_persistent(op, spec, on_row, tick, None)
}

/// As [`run`], saving its state as `persist` asks, resuming from a saved state and stopping
/// with [`StopReason::Interrupted`] when `persist.interrupted()` turns true. A resumed run
/// logs the rows after the saved iterate, identical to those of an uninterrupted run (but
/// for `seconds`), and ends on the same bits.
///
/// # Panics
/// As [`run`].
pub fn run_persistent(
    op: &dyn PreferenceOperator,
    spec: &RunSpec,
    on_row: &mut dyn FnMut(&Row) -> crate::error::Result<()>,
    tick: &mut dyn FnMut(),
    persist: Option<Persist>,
) -> crate::error::Result<RunInfo> {
    run_persistent_with(op, spec, None, on_row, tick, persist)
}

/// Builds a run's algorithm in place of the tabular ones: another policy class (e.g. the
/// log-linear policies of [`crate::param`]), behind the same [`algo::Algorithm`] interface.
pub trait AlgoFactory: Send + Sync + std::fmt::Debug {
    fn build(&self, spec: &RunSpec) -> crate::error::Result<Box<dyn algo::Algorithm>>;
    /// Every parameter of the class that affects the results (checkpoint fingerprints).
    fn fingerprint(&self) -> String;
    /// What `summary.json` records about the class.
    fn record(&self) -> serde_json::Value;
}

/// As [`run_persistent`], with the algorithm built by `factory` when one is given.
///
/// # Panics
/// As [`run`].
pub fn run_persistent_with(
    op: &dyn PreferenceOperator,
    spec: &RunSpec,
    factory: Option<&dyn AlgoFactory>,
    on_row: &mut dyn FnMut(&Row) -> crate::error::Result<()>,
    tick: &mut dyn FnMut(),
    mut persist: Option<Persist>,
) -> crate::error::Result<RunInfo> {
    let n = op.n();
    assert_eq!(spec.theta0.len(), n);
    assert_eq!(spec.theta_ref.len(), n);
    let star = match spec.metrics {
        MetricsMode::Full => Some(spec.theta_star.expect("full metrics need θ*")),
        _ => None,
    };
    let (seed, fidelity) = (spec.oracle.seed, spec.oracle.fidelity);
    let sampled = match spec.oracle.mode {
        OracleMode::Sampled { samples } => Some(SampledGame::new(
            op,
            samples,
            seed,
            oracle::algo_stream(spec.kind),
            fidelity,
        )),
        _ => None,
    };
    let ctx = Context {
        op: sampled
            .as_ref()
            .map_or(op, |s| s as &dyn PreferenceOperator),
        theta_ref: spec.theta_ref,
        beta: spec.beta,
    };
    let alpha = spec.step.alpha;
    let mut alg: Box<dyn algo::Algorithm> = match (factory, spec.oracle.mode) {
        (Some(f), _) => f.build(spec)?,
        (None, OracleMode::Pg(p)) => {
            Box::new(ApproxNashMp::new(spec.theta0, alpha, p, seed, fidelity))
        }
        (None, _) => algo::build(spec.kind, spec.theta0, alpha, spec.schedule),
    };
    let mut cur = CurrentPayoff::new(n);
    // A stochastic algorithm's own payoffs are estimates: it never shares the metrics' exact ones.
    let mut alg_cur = spec.oracle.is_stochastic().then(|| {
        let mut c = CurrentPayoff::new(n);
        c.set_in_step(true);
        c
    });
    // Buffers for extra iterates (MWU's average), allocated on first use only.
    let mut extra_g: Vec<f64> = Vec::new();
    let mut extra_scratch: Vec<f64> = Vec::new();
    let kl0 = star.map(|s| metrics::kl(s, spec.theta0));
    let mut seconds = 0.0;
    let mut k = 0u64;
    let mut queries = 0u64;

    let measure = |theta: &[f64], g: Option<&[f64]>, k: u64, is_main: bool| -> Metrics {
        let mut m = match (spec.metrics, g) {
            (MetricsMode::None, _) | (_, None) => Metrics::default(),
            (_, Some(g)) => metrics::cheap(theta, g, spec.theta_ref, spec.beta),
        };
        if let Some(s) = star {
            metrics::add_star(&mut m, theta, s);
            if is_main && spec.kind == AlgoKind::NashMp {
                m.bound = kl0.map(|kl0| metrics::bound(spec.step.alpha, spec.beta, k, kl0));
            }
        }
        m
    };

    let mut log = |alg: &dyn algo::Algorithm,
                   cur: &mut CurrentPayoff,
                   k: u64,
                   queries: u64,
                   seconds: f64|
     -> crate::error::Result<(Metrics, Vec<Metrics>)> {
        let g = (spec.metrics != MetricsMode::None).then(|| cur.get(op, alg.theta()));
        let m = measure(alg.theta(), g, k, true);
        on_row(&Row {
            algo: spec.kind.name(),
            iter: k,
            queries,
            metrics: m,
            seconds,
        })?;
        let mut extra = Vec::new();
        for (label, theta) in alg.extra_iterates() {
            let g = (spec.metrics != MetricsMode::None).then(|| {
                extra_g.resize(n, 0.0);
                extra_scratch.resize(n, 0.0);
                payoff(op, theta, &mut extra_scratch, &mut extra_g);
                &extra_g[..]
            });
            let me = measure(theta, g, k, false);
            on_row(&Row {
                algo: label,
                iter: k,
                queries,
                metrics: me,
                seconds,
            })?;
            extra.push(me);
        }
        Ok((m, extra))
    };

    let (mut last, mut extra_last) = match persist.as_mut().and_then(|p| p.resume.take()) {
        Some(st) => {
            alg.restore(st.algo)?;
            if let (Some(s), Some(pos)) = (&sampled, st.oracle) {
                s.set_position(pos);
            }
            (k, queries, seconds) = (st.k, st.queries, st.seconds);
            (st.last, st.extra_last)
        }
        None => log(alg.as_ref(), &mut cur, 0, 0, 0.0)?,
    };
    let stop = loop {
        if let (Some(t), Some(e)) = (spec.tol, last.exploit) {
            if e <= t {
                break StopReason::Tol;
            }
        }
        if !finite(alg.theta(), &last) {
            break StopReason::NonFinite;
        }
        if k >= spec.iters {
            break StopReason::MaxIters;
        }
        if let Some(p) = persist.as_mut() {
            let every = p.every.is_some_and(|e| k > 0 && k % e == 0);
            let stop = (p.interrupted)();
            if every || stop {
                (p.save)(&RunState {
                    k,
                    queries,
                    seconds,
                    algo: alg.state(),
                    oracle: sampled.as_ref().map(|s| s.position()),
                    last,
                    extra_last: extra_last.clone(),
                })?;
            }
            if stop {
                break StopReason::Interrupted;
            }
        }
        let t = Instant::now();
        match alg_cur.as_mut() {
            Some(own) => {
                alg.step(&ctx, own);
                own.invalidate();
                seconds += t.elapsed().as_secs_f64();
            }
            None => {
                cur.set_in_step(true);
                alg.step(&ctx, &mut cur);
                seconds += t.elapsed().as_secs_f64();
                cur.set_in_step(false);
                seconds += cur.take_charged_secs();
            }
        }
        cur.invalidate();
        k += 1;
        queries = match (&sampled, alg.queries()) {
            (Some(s), _) => s.queries(),
            (None, Some(q)) => q,
            (None, None) => alg.initial_queries() + k * alg.queries_per_iter(),
        };
        if k % spec.log_every.max(1) == 0 || k >= spec.iters {
            (last, extra_last) = log(alg.as_ref(), &mut cur, k, queries, seconds)?;
        }
        tick();
    };
    let extras = alg
        .extra_iterates()
        .into_iter()
        .zip(extra_last)
        .map(|((l, t), m)| (l.to_string(), t.to_vec(), m))
        .collect();
    Ok(RunInfo {
        kind: spec.kind,
        step: spec.step,
        iterations: k,
        queries,
        seconds,
        stop,
        last,
        theta: alg.theta().to_vec(),
        extras,
    })
}

fn finite(theta: &[f64], m: &Metrics) -> bool {
    let metric_ok = [m.exploit, m.kl_star, m.residual]
        .iter()
        .all(|v| v.is_none_or(|x| !x.is_nan()));
    metric_ok
        && crate::kernels::vector::max_by(
            theta.len(),
            |i| if theta[i].is_nan() { 1.0 } else { 0.0 },
        ) == 0.0
}
