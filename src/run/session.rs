//! A whole solve: the equilibrium (when the metrics need it), then each algorithm in turn, with
//! every output written atomically.

use super::checkpoint::{self, Checkpoint, Fingerprint};
use super::fingerprint::Hasher;
use super::{csv_out::MetricsCsv, MetricsMode, Observer, Row, RunInfo, RunSpec};
use super::{RunState, StopReason};
use crate::algo::{AlgoKind, Schedule, Step, StepSpec};
use crate::equilibrium::{self, Equilibrium, EquilibriumParams};
use crate::error::{Error, Result};
use crate::game::PreferenceOperator;
use crate::io::{array, atomic};
use crate::metrics::Metrics;
use crate::oracle::OracleSpec;
use crate::policy;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The parameters of a solve, as given: each has a default ([`SolveParams::default`]: Nash-MP at
/// β = 0.1 for 1000 iterations with full metrics, exact payoffs, no checkpoints) except the
/// reference policy. [`SolveParams::check`] validates them once into a [`SolveConfig`].
#[derive(Clone, Debug)]
pub struct SolveParams {
    pub algos: Vec<AlgoKind>,
    pub beta: f64,
    pub step: StepSpec,
    pub schedule: Schedule,
    pub iters: u64,
    /// Stop an algorithm once its exploitability is at most this.
    pub tol: Option<f64>,
    pub metrics: MetricsMode,
    /// `θ_μ = log μ`, normalised (required).
    pub theta_ref: Vec<f64>,
    /// `θ_0` (`None`: `θ_μ`).
    pub theta0: Option<Vec<f64>>,
    /// How the algorithms see the game.
    pub oracle: OracleSpec,
    /// Checkpoints, resume and interruption.
    pub persist: PersistSpec,
    /// What the user asked for, recorded in `summary.json` as given.
    pub record: serde_json::Value,
}

impl Default for SolveParams {
    fn default() -> Self {
        SolveParams {
            algos: vec![AlgoKind::NashMp],
            beta: 0.1,
            step: StepSpec::Default,
            schedule: Schedule::Constant,
            iters: 1000,
            tol: None,
            metrics: MetricsMode::Full,
            theta_ref: Vec::new(),
            theta0: None,
            oracle: OracleSpec::exact(),
            persist: PersistSpec::default(),
            record: serde_json::Value::Null,
        }
    }
}

impl SolveParams {
    /// Validates every parameter and resolves each algorithm's step.
    pub fn check(self) -> Result<SolveConfig> {
        let (beta, metrics) = (self.beta, self.metrics);
        crate::algo::params::check_beta(beta)?;
        if self.algos.is_empty() {
            return Err(Error::Param("no algorithm selected".into()));
        }
        if metrics == MetricsMode::Full && beta == 0.0 {
            return Err(Error::Param(
                "--metrics full needs π*, which is unique only for β > 0; use --metrics cheap"
                    .into(),
            ));
        }
        if let Some(t) = self.tol {
            if t.is_nan() || t < 0.0 {
                return Err(Error::Param(format!("--tol must be ≥ 0, got {t}")));
            }
            if metrics == MetricsMode::None {
                return Err(Error::Param(
                    "--tol stops on the exploitability, which --metrics none does not compute"
                        .into(),
                ));
            }
        }
        if self.theta_ref.is_empty() {
            return Err(Error::Param("the reference policy is empty".into()));
        }
        let theta0 = self.theta0.unwrap_or_else(|| self.theta_ref.clone());
        if theta0.len() != self.theta_ref.len() {
            return Err(Error::Param(format!(
                "the starting policy has {} actions, the reference {}",
                theta0.len(),
                self.theta_ref.len()
            )));
        }
        let mut algos = Vec::new();
        let mut warnings = Vec::new();
        for &k in &self.algos {
            let (s, w) = self.step.resolve(k, beta)?;
            warnings.extend(w);
            algos.push((k, s));
        }
        for &(kind, _) in &algos {
            self.oracle.check_algo(kind)?;
        }
        if self.persist.every == Some(0) {
            return Err(Error::Param("--checkpoint-every must be at least 1".into()));
        }
        Ok(SolveConfig {
            algos,
            beta,
            schedule: self.schedule,
            iters: self.iters,
            tol: self.tol,
            metrics,
            theta_ref: self.theta_ref,
            theta0,
            oracle: self.oracle,
            record: self.record,
            warnings,
            persist: self.persist,
            policy: None,
        })
    }
}

/// Everything a solve needs, validated ([`SolveParams::check`]); it cannot be made invalid.
#[derive(Clone, Debug)]
pub struct SolveConfig {
    algos: Vec<(AlgoKind, Step)>,
    beta: f64,
    schedule: Schedule,
    iters: u64,
    tol: Option<f64>,
    metrics: MetricsMode,
    theta_ref: Vec<f64>,
    theta0: Vec<f64>,
    oracle: OracleSpec,
    record: serde_json::Value,
    warnings: Vec<String>,
    persist: PersistSpec,
    /// Another policy class than the tabular one (`--policy linear`).
    policy: Option<Arc<dyn super::AlgoFactory>>,
}

/// Checkpoints, resume and interruption of a solve that writes to an output folder.
#[derive(Clone, Debug, Default)]
pub struct PersistSpec {
    /// Save `OUT/checkpoint.nmpck` after every `K` iterations of each run.
    pub every: Option<u64>,
    /// Continue from `OUT/checkpoint.nmpck` (start afresh if there is none).
    pub resume: bool,
    /// The game file's fingerprint ([`super::fingerprint::game_file`]); a resume is refused
    /// if it changed.
    pub game: String,
    /// When set (e.g. by a SIGINT handler), the solve saves a checkpoint and its results so far
    /// and returns [`Error::Interrupted`].
    pub interrupt: Option<Arc<AtomicBool>>,
}

impl PersistSpec {
    /// Whether the interrupt flag is set.
    fn interrupted(&self) -> bool {
        self.interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    }
}

impl SolveConfig {
    /// Validates the parameters of a solve (the positional form of [`SolveParams::check`],
    /// kept for existing callers).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        algos: &[AlgoKind],
        beta: f64,
        step: StepSpec,
        schedule: Schedule,
        iters: u64,
        tol: Option<f64>,
        metrics: MetricsMode,
        theta_ref: Vec<f64>,
        theta0: Vec<f64>,
    ) -> Result<Self> {
        SolveParams {
            algos: algos.to_vec(),
            beta,
            step,
            schedule,
            iters,
            tol,
            metrics,
            theta_ref,
            theta0: Some(theta0),
            ..SolveParams::default()
        }
        .check()
    }

    /// Checkpoints every `K ≥ 1` iterations, resumes, or stops on an interrupt as `p` says.
    pub fn with_persist(mut self, p: PersistSpec) -> Result<Self> {
        if p.every == Some(0) {
            return Err(Error::Param("--checkpoint-every must be at least 1".into()));
        }
        self.persist = p;
        Ok(self)
    }

    /// Runs every algorithm on sampled preference queries as `oracle` says, after checking that
    /// the mode applies to each of them.
    pub fn with_oracle(mut self, oracle: OracleSpec) -> Result<Self> {
        for &(kind, _) in &self.algos {
            oracle.check_algo(kind)?;
        }
        self.oracle = oracle;
        Ok(self)
    }

    /// Records `record` (what the user asked for) in `summary.json`.
    pub fn with_record(mut self, record: serde_json::Value) -> Self {
        self.record = record;
        self
    }

    /// The algorithms with their resolved steps, in order.
    pub fn algos(&self) -> &[(AlgoKind, Step)] {
        &self.algos
    }
    pub fn beta(&self) -> f64 {
        self.beta
    }
    pub fn schedule(&self) -> Schedule {
        self.schedule
    }
    pub fn iters(&self) -> u64 {
        self.iters
    }
    pub fn tol(&self) -> Option<f64> {
        self.tol
    }
    pub fn metrics(&self) -> MetricsMode {
        self.metrics
    }
    pub fn oracle(&self) -> OracleSpec {
        self.oracle
    }
    pub fn persist(&self) -> &PersistSpec {
        &self.persist
    }
    /// Warnings produced while validating (e.g. `nash-mp` with `α > 2`).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Every parameter that affects the results, in a canonical text (floats in their exact
    /// shortest form, the reference and starting policies by a hash of their bits).
    pub fn fingerprint(&self) -> String {
        let algos: Vec<String> = self
            .algos
            .iter()
            .map(|(k, s)| format!("{}(alpha={:?})", k.name(), s.alpha))
            .collect();
        format!(
            "algos=[{}] beta={:?} schedule={:?} iters={} tol={:?} metrics={:?} oracle={} \
             ref={:016x} init={:016x}",
            algos.join(","),
            self.beta,
            self.schedule,
            self.iters,
            self.tol,
            self.metrics,
            serde_json::to_string(&self.oracle).expect("oracle serialises"),
            Hasher::default().f64s(&self.theta_ref).finish(),
            Hasher::default().f64s(&self.theta0).finish(),
        ) + &self
            .policy
            .as_ref()
            .map_or(String::new(), |p| format!(" policy={}", p.fingerprint()))
    }

    /// Runs every algorithm in the policy class `policy` with `oracle` (the class has checked
    /// both); the config's own oracle must still be exact.
    pub fn with_policy(mut self, policy: Arc<dyn super::AlgoFactory>, oracle: OracleSpec) -> Self {
        self.policy = Some(policy);
        self.oracle = oracle;
        self
    }
}

/// The result of a solve.
pub struct SolveReport {
    pub equilibrium: Option<(Equilibrium, f64)>,
    pub runs: Vec<RunInfo>,
    pub wall_seconds: f64,
}

#[derive(Serialize)]
struct RunSummary<'a> {
    algo: &'a str,
    alpha: f64,
    eta: f64,
    stop: StopReason,
    iterations: u64,
    queries: u64,
    seconds: f64,
    #[serde(rename = "final")]
    last: Metrics,
    extras: Vec<ExtraSummary<'a>>,
}

#[derive(Serialize)]
struct ExtraSummary<'a> {
    label: &'a str,
    #[serde(rename = "final")]
    last: Metrics,
}

/// Runs a solve; writes `metrics.csv`, `<algo>.policy.npy`, `equilibrium.npy` and
/// `summary.json` into `out` if given, and passes every row to `on_row`. In four steps: pick up
/// a checkpoint ([`resume`]), compute `π*` unless saved ([`equilibrium`]), run the algorithms
/// not yet done ([`run_all`]), write the outputs ([`write_outputs`]).
pub fn solve(
    op: &dyn PreferenceOperator,
    cfg: &SolveConfig,
    out: Option<&Path>,
    on_row: &mut dyn FnMut(&Row),
    tick: &mut dyn FnMut(),
) -> Result<SolveReport> {
    let wall = Instant::now();
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let ck_path = out.map(|d| d.join(checkpoint::FILE_NAME));
    let fingerprint = Fingerprint {
        args: cfg.fingerprint(),
        game: cfg.persist.game.clone(),
    };
    let saved = resume(op, cfg, ck_path.as_deref(), &fingerprint)?;
    let equilibrium = equilibrium(op, cfg, saved.equilibrium)?;
    let persist = &cfg.persist;
    let keep_text = persist.every.is_some() || persist.interrupt.is_some();
    let csv = match (out, saved.csv) {
        (Some(dir), Some(text)) => Some(MetricsCsv::resume(&dir.join("metrics.csv"), &text)?),
        (Some(dir), None) if keep_text => {
            Some(MetricsCsv::create(&dir.join("metrics.csv"))?.retain_text())
        }
        (Some(dir), None) => Some(MetricsCsv::create(&dir.join("metrics.csv"))?),
        (None, _) => None,
    };
    let mut obs = SolveObserver {
        csv,
        ck_path: ck_path.as_deref(),
        fingerprint,
        equilibrium: &equilibrium,
        done: saved.done,
        interrupt: persist.interrupt.as_deref(),
        every: persist.every,
        on_row,
        tick,
    };
    run_all(op, cfg, &equilibrium, &mut obs, saved.current)?;
    let (csv, runs) = (obs.csv, obs.done);
    let wall_seconds = wall.elapsed().as_secs_f64();
    if let Some(dir) = out {
        write_outputs(op, cfg, dir, csv, &runs, &equilibrium, wall_seconds)?;
    }
    Ok(SolveReport {
        equilibrium,
        runs,
        wall_seconds,
    })
}

/// What a solve continues from: the contents of its checkpoint, or nothing.
#[derive(Default)]
struct Resumed {
    csv: Option<String>,
    equilibrium: Option<(Equilibrium, f64)>,
    done: Vec<RunInfo>,
    current: Option<RunState>,
}

/// Reads the checkpoint at `ck_path` if the solve resumes and one is there, refusing it unless
/// it belongs to these arguments and this game.
fn resume(
    op: &dyn PreferenceOperator,
    cfg: &SolveConfig,
    ck_path: Option<&Path>,
    fingerprint: &Fingerprint,
) -> Result<Resumed> {
    let resume = cfg.persist.resume;
    let c = match ck_path {
        Some(p) if resume && p.exists() => {
            let c = Checkpoint::read(p, op.n())?;
            c.check(p, fingerprint)?;
            c
        }
        None if resume => return Err(Error::Param("--resume needs an output folder".into())),
        _ => return Ok(Resumed::default()),
    };
    let matches = c.done.len() <= cfg.algos.len()
        && c.done
            .iter()
            .zip(&cfg.algos)
            .all(|(r, (k, _))| r.kind == *k);
    if !matches {
        return Err(Error::Checkpoint {
            path: ck_path.map(Path::to_path_buf).unwrap_or_default(),
            reason: "its completed runs do not match the algorithms asked for".into(),
        });
    }
    Ok(Resumed {
        csv: Some(c.csv),
        equilibrium: c.equilibrium,
        done: c.done,
        current: c.current,
    })
}

/// `π*` with the seconds it took: `saved` if the checkpoint had it, else solved when the
/// metrics need it (interruptible).
fn equilibrium(
    op: &dyn PreferenceOperator,
    cfg: &SolveConfig,
    saved: Option<(Equilibrium, f64)>,
) -> Result<Option<(Equilibrium, f64)>> {
    if saved.is_some() || cfg.metrics != MetricsMode::Full {
        return Ok(saved);
    }
    let t = Instant::now();
    let stop = || cfg.persist.interrupted();
    let params = EquilibriumParams::new(cfg.beta);
    let eq = equilibrium::solve_interruptible(op, &cfg.theta_ref, params, &stop)?
        .ok_or_else(|| Error::InterruptedEarly("the π* solve".into()))?;
    Ok(Some((eq, t.elapsed().as_secs_f64())))
}

/// Owns what a solve's runs write: `metrics.csv`, the checkpoint, and the completed runs.
struct SolveObserver<'a> {
    csv: Option<MetricsCsv>,
    ck_path: Option<&'a Path>,
    fingerprint: Fingerprint,
    equilibrium: &'a Option<(Equilibrium, f64)>,
    /// The completed runs, in order.
    done: Vec<RunInfo>,
    interrupt: Option<&'a AtomicBool>,
    every: Option<u64>,
    on_row: &'a mut dyn FnMut(&Row),
    tick: &'a mut dyn FnMut(),
}

impl Observer for SolveObserver<'_> {
    fn row(&mut self, r: &Row) -> Result<()> {
        (self.on_row)(r);
        match self.csv.as_mut() {
            Some(c) => c.write(r),
            None => Ok(()),
        }
    }
    fn tick(&mut self) {
        (self.tick)()
    }
    fn interrupted(&self) -> bool {
        self.interrupt.is_some_and(|f| f.load(Ordering::Relaxed))
    }
    fn save_every(&self) -> Option<u64> {
        self.every
    }
    /// A checkpoint: everything so far and `state`, the run in progress.
    fn save(&mut self, state: &RunState) -> Result<()> {
        let (Some(path), Some(text)) = (self.ck_path, self.csv.as_ref().and_then(|c| c.text()))
        else {
            return Ok(());
        };
        Checkpoint {
            fingerprint: self.fingerprint.clone(),
            csv: text.to_string(),
            equilibrium: self.equilibrium.clone(),
            done: self.done.clone(),
            current: Some(state.clone()),
        }
        .write(path)
    }
}

/// Runs the algorithms not yet in `obs.done`, the first of them from `current` if saved,
/// until all are done or one is interrupted.
fn run_all(
    op: &dyn PreferenceOperator,
    cfg: &SolveConfig,
    equilibrium: &Option<(Equilibrium, f64)>,
    obs: &mut SolveObserver,
    mut current: Option<RunState>,
) -> Result<()> {
    for &(kind, step) in &cfg.algos[obs.done.len()..] {
        let spec = RunSpec {
            kind,
            beta: cfg.beta,
            step,
            schedule: cfg.schedule,
            iters: cfg.iters,
            tol: cfg.tol,
            metrics: cfg.metrics,
            theta_ref: &cfg.theta_ref,
            theta0: &cfg.theta0,
            theta_star: equilibrium.as_ref().map(|(e, _)| &e.theta[..]),
            oracle: cfg.oracle,
            log_every: 1,
        };
        let info = super::run_observed_with(op, &spec, cfg.policy.as_deref(), current.take(), obs)?;
        let stop = info.stop;
        obs.done.push(info);
        if stop == StopReason::Interrupted {
            break;
        }
    }
    Ok(())
}

/// Commits `metrics.csv` and writes the policies, `π*` and `summary.json` into `dir`; then
/// either reports the interruption or removes the checkpoint.
fn write_outputs(
    op: &dyn PreferenceOperator,
    cfg: &SolveConfig,
    dir: &Path,
    csv: Option<MetricsCsv>,
    runs: &[RunInfo],
    equilibrium: &Option<(Equilibrium, f64)>,
    wall_seconds: f64,
) -> Result<()> {
    if let Some(c) = csv {
        c.commit()?;
    }
    for r in runs {
        write_policy(dir, r.kind.name(), &r.theta)?;
        for (label, theta, _) in &r.extras {
            write_policy(dir, label, theta)?;
        }
    }
    if let Some((eq, _)) = equilibrium {
        array::write_vector(&dir.join("equilibrium.npy"), &policy::probs(&eq.theta))?;
    }
    let persist = &cfg.persist;
    let summary = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "params": cfg.record,
        "beta": cfg.beta,
        "metrics": cfg.metrics,
        "schedule": cfg.schedule,
        "iters": cfg.iters,
        "tol": cfg.tol,
        "oracle": cfg.oracle,
        "threads": rayon::current_num_threads(),
        "game": { "n": op.n(), "storage": op.info().description },
        "equilibrium": equilibrium.as_ref().map(|(e, s)| serde_json::json!({
            "certificate": e, "seconds": s, "file": "equilibrium.npy"
        })),
        "runs": runs.iter().map(|r| RunSummary {
            algo: r.kind.name(),
            alpha: r.step.alpha,
            eta: r.step.eta,
            stop: r.stop,
            iterations: r.iterations,
            queries: r.queries,
            seconds: r.seconds,
            last: r.last,
            extras: r.extras.iter().map(|(l, _, m)| ExtraSummary { label: l, last: *m }).collect(),
        }).collect::<Vec<_>>(),
        "warnings": cfg.warnings,
        "checkpoint": { "every": persist.every, "resumed": persist.resume },
        "memory": super::memory::snapshot(),
        "wall_seconds": wall_seconds,
    });
    let mut summary = summary;
    if let Some(p) = &cfg.policy {
        summary["policy"] = p.record();
    }
    let text = serde_json::to_string_pretty(&summary).expect("summary serialises");
    atomic::write_all(&dir.join("summary.json"), text.as_bytes())?;
    if runs
        .last()
        .is_some_and(|r| r.stop == StopReason::Interrupted)
    {
        return Err(Error::Interrupted(dir.to_path_buf()));
    }
    let p = dir.join(checkpoint::FILE_NAME);
    match std::fs::remove_file(&p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&p, e)),
        _ => Ok(()),
    }
}

fn write_policy(dir: &Path, label: &str, theta: &[f64]) -> Result<PathBuf> {
    let p = dir.join(format!("{label}.policy.npy"));
    array::write_vector(&p, &policy::probs(theta))?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mu() -> Vec<f64> {
        vec![(1.0f64 / 3.0).ln(); 3]
    }

    #[test]
    fn params_have_defaults_and_are_checked_once() {
        let cfg = SolveParams {
            theta_ref: mu(),
            ..SolveParams::default()
        }
        .check()
        .unwrap();
        assert_eq!(cfg.algos().len(), 1);
        assert_eq!(cfg.algos()[0].0, AlgoKind::NashMp);
        assert_eq!(cfg.algos()[0].1.alpha, 2.0);
        assert_eq!(cfg.beta(), 0.1);
        // The positional constructor is the same check.
        let old = SolveConfig::new(
            &[AlgoKind::NashMp],
            0.1,
            StepSpec::Default,
            Schedule::Constant,
            1000,
            None,
            MetricsMode::Full,
            mu(),
            mu(),
        )
        .unwrap();
        assert_eq!(old.fingerprint(), cfg.fingerprint());
        let bad = |p: SolveParams, needle: &str| {
            let e = p.check().unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        };
        let base = || SolveParams {
            theta_ref: mu(),
            ..SolveParams::default()
        };
        bad(SolveParams::default(), "reference policy is empty");
        bad(
            SolveParams {
                algos: vec![],
                ..base()
            },
            "no algorithm",
        );
        bad(
            SolveParams {
                tol: Some(0.1),
                metrics: MetricsMode::None,
                ..base()
            },
            "--metrics none",
        );
        bad(
            SolveParams {
                theta0: Some(vec![0.0; 2]),
                ..base()
            },
            "2 actions, the reference 3",
        );
        bad(
            SolveParams {
                persist: PersistSpec {
                    every: Some(0),
                    ..PersistSpec::default()
                },
                ..base()
            },
            "--checkpoint-every",
        );
        bad(
            SolveParams {
                algos: vec![AlgoKind::Egpo],
                step: StepSpec::Alpha(20.0),
                ..base()
            },
            "egpo needs",
        );
    }
}
