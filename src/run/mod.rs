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

/// Where a run stands after logging iterate `k`: enough to continue it bit for bit (and saved
/// as such in checkpoints).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunState {
    pub k: u64,
    pub queries: u64,
    #[serde(with = "crate::io::blobfile::bits")]
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

/// The outcome of a run (saved as such in checkpoints).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunInfo {
    pub kind: AlgoKind,
    pub step: Step,
    pub iterations: u64,
    pub queries: u64,
    #[serde(with = "crate::io::blobfile::bits")]
    pub seconds: f64,
    pub stop: StopReason,
    pub last: Metrics,
    #[serde(with = "crate::io::blobfile::f64s")]
    pub theta: Vec<f64>,
    /// Extra iterates (label, θ, last metrics), e.g. MWU's average.
    #[serde(with = "extras_blobs")]
    pub extras: Vec<(String, Vec<f64>, Metrics)>,
}

/// [`RunInfo::extras`] with each `θ` in a blob.
mod extras_blobs {
    use crate::io::blobfile::{F64s, F64sRef};
    use crate::metrics::Metrics;
    use serde::{Deserialize, Deserializer, Serializer};

    /// An extra iterate: label, θ, last metrics.
    type Extra = (String, Vec<f64>, Metrics);

    pub fn serialize<S: Serializer>(v: &[Extra], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|(l, t, m)| (l, F64sRef(t), m)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Extra>, D::Error> {
        let v = Vec::<(String, F64s, Metrics)>::deserialize(d)?;
        Ok(v.into_iter().map(|(l, t, m)| (l, t.0, m)).collect())
    }
}

/// What a run reports to, and asks of, whoever drives it: every logged row, a tick after every
/// iteration, whether to stop, and where to save its state. One object owns what the run's
/// outputs need (a CSV file, a series, a checkpoint), so no callbacks share state.
pub trait Observer {
    /// A logged iterate (the algorithm's, then its extra iterates').
    fn row(&mut self, r: &Row) -> crate::error::Result<()>;
    /// One iteration done.
    fn tick(&mut self) {}
    /// Whether the user asked to stop; checked after every iteration. When it turns true the
    /// run saves its state ([`Observer::save`]) and ends with [`StopReason::Interrupted`].
    fn interrupted(&self) -> bool {
        false
    }
    /// Save the state after every `K`-th iteration.
    fn save_every(&self) -> Option<u64> {
        None
    }
    /// Stores a state (a checkpoint); also called once when the run is interrupted.
    fn save(&mut self, _state: &RunState) -> crate::error::Result<()> {
        Ok(())
    }
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

/// The callbacks of [`run_persistent`] as an [`Observer`].
struct Callbacks<'a, 'p> {
    on_row: &'a mut dyn FnMut(&Row) -> crate::error::Result<()>,
    tick: &'a mut dyn FnMut(),
    persist: Option<Persist<'p>>,
}

impl Observer for Callbacks<'_, '_> {
    fn row(&mut self, r: &Row) -> crate::error::Result<()> {
        (self.on_row)(r)
    }
    fn tick(&mut self) {
        (self.tick)()
    }
    fn interrupted(&self) -> bool {
        self.persist.as_ref().is_some_and(|p| (p.interrupted)())
    }
    fn save_every(&self) -> Option<u64> {
        self.persist.as_ref().and_then(|p| p.every)
    }
    fn save(&mut self, state: &RunState) -> crate::error::Result<()> {
        match self.persist.as_mut() {
            Some(p) => (p.save)(state),
            None => Ok(()),
        }
    }
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
    mut persist: Option<Persist>,
) -> crate::error::Result<RunInfo> {
    let resume = persist.as_mut().and_then(|p| p.resume.take());
    let mut obs = Callbacks {
        on_row,
        tick,
        persist,
    };
    run_observed(op, spec, resume, &mut obs)
}

/// Measures and logs iterates: the metrics of docs/math.md §5 against the exact operator.
struct Meter<'a> {
    op: &'a dyn PreferenceOperator,
    spec: &'a RunSpec<'a>,
    star: Option<&'a [f64]>,
    /// `KL(π*‖π_0)`, for the bound.
    kl0: Option<f64>,
    /// `g(π_k)` of the current iterate, shared with a deterministic algorithm's step.
    cur: CurrentPayoff,
    /// Buffers for extra iterates (MWU's average), allocated on first use only.
    extra_g: Vec<f64>,
    extra_scratch: Vec<f64>,
}

impl<'a> Meter<'a> {
    fn new(op: &'a dyn PreferenceOperator, spec: &'a RunSpec<'a>) -> Self {
        let star = match spec.metrics {
            MetricsMode::Full => Some(spec.theta_star.expect("full metrics need θ*")),
            _ => None,
        };
        Meter {
            op,
            spec,
            star,
            kl0: star.map(|s| metrics::kl(s, spec.theta0)),
            cur: CurrentPayoff::new(op.n()),
            extra_g: Vec::new(),
            extra_scratch: Vec::new(),
        }
    }

    /// The metrics of `θ` (iterate `k`; `is_main`: the algorithm's own, not an extra one).
    fn measure(
        spec: &RunSpec,
        star: Option<&[f64]>,
        kl0: Option<f64>,
        (theta, g): (&[f64], Option<&[f64]>),
        k: u64,
        is_main: bool,
    ) -> Metrics {
        let mut m = match (spec.metrics, g) {
            (MetricsMode::None, _) | (_, None) => Metrics::default(),
            (_, Some(g)) => metrics::cheap(theta, g, spec.theta_ref, spec.beta),
        };
        if let Some(s) = star {
            metrics::add_star(&mut m, theta, s);
            if is_main && spec.kind.info().has_bound {
                m.bound = kl0.map(|kl0| metrics::bound(spec.step.alpha, spec.beta, k, kl0));
            }
        }
        m
    }

    /// Measures iterate `k` and its extra iterates and passes their rows to `obs`.
    fn log(
        &mut self,
        alg: &dyn algo::Algorithm,
        k: u64,
        queries: u64,
        seconds: f64,
        obs: &mut dyn Observer,
    ) -> crate::error::Result<(Metrics, Vec<Metrics>)> {
        let (spec, star, kl0) = (self.spec, self.star, self.kl0);
        let full = spec.metrics != MetricsMode::None;
        let g = full.then(|| self.cur.get(self.op, alg.theta()));
        let m = Self::measure(spec, star, kl0, (alg.theta(), g), k, true);
        obs.row(&Row {
            algo: spec.kind.name(),
            iter: k,
            queries,
            metrics: m,
            seconds,
        })?;
        let mut extra = Vec::new();
        for (label, theta) in alg.extra_iterates() {
            let g = full.then(|| {
                let n = self.op.n();
                self.extra_g.resize(n, 0.0);
                self.extra_scratch.resize(n, 0.0);
                payoff(self.op, theta, &mut self.extra_scratch, &mut self.extra_g);
                &self.extra_g[..]
            });
            let me = Self::measure(spec, star, kl0, (theta, g), k, false);
            obs.row(&Row {
                algo: label,
                iter: k,
                queries,
                metrics: me,
                seconds,
            })?;
            extra.push(me);
        }
        Ok((m, extra))
    }
}

/// Why the run stops before iterating past `k`, if it does.
fn stop_reason(spec: &RunSpec, theta: &[f64], last: &Metrics, k: u64) -> Option<StopReason> {
    if let (Some(t), Some(e)) = (spec.tol, last.exploit) {
        if e <= t {
            return Some(StopReason::Tol);
        }
    }
    if !finite(theta, last) {
        return Some(StopReason::NonFinite);
    }
    (k >= spec.iters).then_some(StopReason::MaxIters)
}

/// One step of `alg`; returns the seconds to charge to it. A stochastic algorithm (`own`
/// payoffs) never shares the metrics' exact `g(π_k)`.
fn advance(
    alg: &mut dyn algo::Algorithm,
    ctx: &Context,
    cur: &mut CurrentPayoff,
    own: Option<&mut CurrentPayoff>,
) -> f64 {
    let t = Instant::now();
    let mut seconds = 0.0;
    match own {
        Some(own) => {
            alg.step(ctx, own);
            own.invalidate();
            seconds += t.elapsed().as_secs_f64();
        }
        None => {
            cur.set_in_step(true);
            alg.step(ctx, cur);
            seconds += t.elapsed().as_secs_f64();
            cur.set_in_step(false);
            seconds += cur.take_charged_secs();
        }
    }
    cur.invalidate();
    seconds
}

/// The game as a sampled oracle sees it, under `--oracle sampled`.
fn sampled_game<'a>(op: &'a dyn PreferenceOperator, spec: &RunSpec) -> Option<SampledGame<'a>> {
    match spec.oracle.mode {
        OracleMode::Sampled { samples } => Some(SampledGame::new(
            op,
            samples,
            spec.oracle.seed,
            oracle::algo_stream(spec.kind),
            spec.oracle.fidelity,
        )),
        _ => None,
    }
}

/// The algorithm of `spec` at `θ_0` (Nash-MP with approximate prox steps under `--oracle pg`),
/// or `factory`'s when one is given.
fn build_algo(
    spec: &RunSpec,
    factory: Option<&dyn AlgoFactory>,
) -> crate::error::Result<Box<dyn algo::Algorithm>> {
    let (alpha, seed, fidelity) = (spec.step.alpha, spec.oracle.seed, spec.oracle.fidelity);
    if let Some(f) = factory {
        return f.build(spec);
    }
    Ok(match spec.oracle.mode {
        OracleMode::Pg(p) => Box::new(ApproxNashMp::new(spec.theta0, alpha, p, seed, fidelity)),
        _ => algo::build(spec.kind, spec.theta0, alpha, spec.schedule),
    })
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

/// As [`run_persistent`], reporting to `obs`: continues from `resume` if given, saves its state
/// when `obs` asks, stops when `obs.interrupted()`.
///
/// # Panics
/// As [`run`].
pub fn run_observed(
    op: &dyn PreferenceOperator,
    spec: &RunSpec,
    resume: Option<RunState>,
    obs: &mut dyn Observer,
) -> crate::error::Result<RunInfo> {
    run_observed_with(op, spec, None, resume, obs)
}

/// As [`run_observed`], with the algorithm built by `factory` when one is given.
///
/// # Panics
/// As [`run`].
pub fn run_observed_with(
    op: &dyn PreferenceOperator,
    spec: &RunSpec,
    factory: Option<&dyn AlgoFactory>,
    resume: Option<RunState>,
    obs: &mut dyn Observer,
) -> crate::error::Result<RunInfo> {
    let n = op.n();
    assert_eq!(spec.theta0.len(), n);
    assert_eq!(spec.theta_ref.len(), n);
    let sampled = sampled_game(op, spec);
    let ctx = Context::new(
        sampled
            .as_ref()
            .map_or(op, |s| s as &dyn PreferenceOperator),
        spec.theta_ref,
        spec.beta,
    );
    let mut alg = build_algo(spec, factory)?;
    let mut meter = Meter::new(op, spec);
    let mut alg_cur = spec.oracle.is_stochastic().then(|| {
        let mut c = CurrentPayoff::new(n);
        c.set_in_step(true);
        c
    });
    let (mut k, mut queries, mut seconds) = (0u64, 0u64, 0.0);
    let (mut last, mut extra_last) = match resume {
        Some(st) => {
            alg.restore(st.algo)?;
            if let (Some(s), Some(pos)) = (&sampled, st.oracle) {
                s.set_position(pos);
            }
            (k, queries, seconds) = (st.k, st.queries, st.seconds);
            (st.last, st.extra_last)
        }
        None => meter.log(alg.as_ref(), 0, 0, 0.0, obs)?,
    };
    let stop = loop {
        if let Some(stop) = stop_reason(spec, alg.theta(), &last, k) {
            break stop;
        }
        let every = obs
            .save_every()
            .is_some_and(|e| k > 0 && k.is_multiple_of(e));
        let interrupted = obs.interrupted();
        if every || interrupted {
            obs.save(&RunState {
                k,
                queries,
                seconds,
                algo: alg.state(),
                oracle: sampled.as_ref().map(|s| s.position()),
                last,
                extra_last: extra_last.clone(),
            })?;
        }
        if interrupted {
            break StopReason::Interrupted;
        }
        seconds += advance(alg.as_mut(), &ctx, &mut meter.cur, alg_cur.as_mut());
        k += 1;
        queries = match (&sampled, alg.queries()) {
            (Some(s), _) => s.queries(),
            (None, Some(q)) => q,
            (None, None) => alg.initial_queries() + k * alg.queries_per_iter(),
        };
        if k.is_multiple_of(spec.log_every.max(1)) || k >= spec.iters {
            (last, extra_last) = meter.log(alg.as_ref(), k, queries, seconds, obs)?;
        }
        obs.tick();
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
