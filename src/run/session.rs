//! A whole solve: the equilibrium (when the metrics need it), then each algorithm in turn, with
//! every output written atomically.

use super::checkpoint::{self, Checkpoint, Fingerprint};
use super::fingerprint::Hasher;
use super::{csv_out::MetricsCsv, MetricsMode, Persist, Row, RunInfo, RunSpec};
use crate::algo::{AlgoKind, Schedule, Step, StepSpec};
use crate::equilibrium::{self, Equilibrium, EquilibriumParams};
use crate::error::{Error, Result};
use crate::game::PreferenceOperator;
use crate::io::{array, atomic};
use crate::metrics::Metrics;
use crate::oracle::OracleSpec;
use crate::policy;
use serde::Serialize;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Everything a solve needs, validated by [`SolveConfig::new`].
#[derive(Clone, Debug)]
pub struct SolveConfig {
    pub algos: Vec<(AlgoKind, Step)>,
    pub beta: f64,
    pub schedule: Schedule,
    pub iters: u64,
    pub tol: Option<f64>,
    pub metrics: MetricsMode,
    pub theta_ref: Vec<f64>,
    pub theta0: Vec<f64>,
    /// How the algorithms see the game (default: exactly); set with [`SolveConfig::with_oracle`].
    pub oracle: OracleSpec,
    /// What the user asked for, recorded in `summary.json`.
    pub record: serde_json::Value,
    /// Warnings produced while validating (e.g. `nash-mp` with `α > 2`).
    pub warnings: Vec<String>,
    /// Checkpoints, resume and interruption; set with [`SolveConfig::with_persist`].
    pub persist: PersistSpec,
    /// Another policy class than the tabular one (`--policy linear`); set with
    /// [`SolveConfig::with_policy`].
    pub policy: Option<Arc<dyn super::AlgoFactory>>,
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

impl SolveConfig {
    /// Validates the parameters of a solve.
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
        crate::algo::params::check_beta(beta)?;
        if algos.is_empty() {
            return Err(Error::Param("no algorithm selected".into()));
        }
        if metrics == MetricsMode::Full && beta == 0.0 {
            return Err(Error::Param(
                "--metrics full needs π*, which is unique only for β > 0; use --metrics cheap"
                    .into(),
            ));
        }
        if let Some(t) = tol {
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
        let mut resolved = Vec::new();
        let mut warnings = Vec::new();
        for &k in algos {
            let (s, w) = step.resolve(k, beta)?;
            warnings.extend(w);
            resolved.push((k, s));
        }
        Ok(SolveConfig {
            algos: resolved,
            beta,
            schedule,
            iters,
            tol,
            metrics,
            theta_ref,
            theta0,
            oracle: OracleSpec::exact(),
            record: serde_json::Value::Null,
            warnings,
            persist: PersistSpec::default(),
            policy: None,
        })
    }

    /// Checkpoints every `K ≥ 1` iterations, resumes, or stops on an interrupt as `p` says.
    pub fn with_persist(mut self, p: PersistSpec) -> Result<Self> {
        if p.every == Some(0) {
            return Err(Error::Param("--checkpoint-every must be at least 1".into()));
        }
        self.persist = p;
        Ok(self)
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

    /// Runs every algorithm in the policy class `policy` (which checks the algorithms and the
    /// oracle itself); call before [`SolveConfig::with_oracle`].
    pub fn with_policy(mut self, policy: Arc<dyn super::AlgoFactory>) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Runs every algorithm on sampled preference queries as `oracle` says, after checking that
    /// the mode applies to each of them.
    pub fn with_oracle(mut self, oracle: OracleSpec) -> Result<Self> {
        for &(kind, _) in &self.algos {
            if self.policy.is_none() {
                oracle.check_algo(kind)?;
            }
        }
        self.oracle = oracle;
        Ok(self)
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
    stop: super::StopReason,
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
/// `summary.json` into `out` if given, and passes every row to `on_row`.
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
    let persist = &cfg.persist;
    let ck_path = out.map(|d| d.join(checkpoint::FILE_NAME));
    let fingerprint = Fingerprint {
        args: cfg.fingerprint(),
        game: persist.game.clone(),
    };
    let saved = match &ck_path {
        Some(p) if persist.resume && p.exists() => {
            let c = Checkpoint::read(p, op.n())?;
            c.check(p, &fingerprint)?;
            Some(c)
        }
        None if persist.resume => {
            return Err(Error::Param("--resume needs an output folder".into()))
        }
        _ => None,
    };
    let (csv_text, equilibrium, mut runs, mut current) = match saved {
        Some(c) => (Some(c.csv), c.equilibrium, c.done, c.current),
        None => (None, None, Vec::new(), None),
    };
    if runs.len() > cfg.algos.len() || runs.iter().zip(&cfg.algos).any(|(r, (k, _))| r.kind != *k) {
        return Err(Error::Checkpoint {
            path: ck_path.unwrap_or_default(),
            reason: "its completed runs do not match the algorithms asked for".into(),
        });
    }
    let equilibrium = match equilibrium {
        Some(e) => Some(e),
        None if cfg.metrics == MetricsMode::Full => {
            let t = Instant::now();
            let stop = || {
                persist
                    .interrupt
                    .as_ref()
                    .is_some_and(|f| f.load(Ordering::Relaxed))
            };
            let params = EquilibriumParams::new(cfg.beta);
            let eq = equilibrium::solve_interruptible(op, &cfg.theta_ref, params, &stop)?
                .ok_or_else(|| Error::InterruptedEarly("the π* solve".into()))?;
            Some((eq, t.elapsed().as_secs_f64()))
        }
        None => None,
    };
    let keep_text = persist.every.is_some() || persist.interrupt.is_some();
    let csv = match (out, csv_text) {
        (Some(dir), Some(text)) => Some(MetricsCsv::resume(&dir.join("metrics.csv"), &text)?),
        (Some(dir), None) if keep_text => {
            Some(MetricsCsv::create(&dir.join("metrics.csv"))?.retain_text())
        }
        (Some(dir), None) => Some(MetricsCsv::create(&dir.join("metrics.csv"))?),
        (None, _) => None,
    };
    let csv = RefCell::new(csv);
    let interrupted = || {
        persist
            .interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    };
    for &(kind, step) in &cfg.algos[runs.len()..] {
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
        let done = &runs;
        let mut save = |st: &super::RunState| -> Result<()> {
            let (Some(path), Some(text)) = (
                &ck_path,
                csv.borrow()
                    .as_ref()
                    .and_then(|c| c.text().map(String::from)),
            ) else {
                return Ok(());
            };
            Checkpoint {
                fingerprint: fingerprint.clone(),
                csv: text,
                equilibrium: equilibrium.clone(),
                done: done.clone(),
                current: Some(st.clone()),
            }
            .write(path)
        };
        let info = super::run_persistent_with(
            op,
            &spec,
            cfg.policy.as_deref(),
            &mut |r| {
                on_row(r);
                match csv.borrow_mut().as_mut() {
                    Some(c) => c.write(r),
                    None => Ok(()),
                }
            },
            tick,
            Some(Persist {
                resume: current.take(),
                every: persist.every,
                interrupted: &interrupted,
                save: &mut save,
            }),
        )?;
        let stop = info.stop;
        runs.push(info);
        if stop == super::StopReason::Interrupted {
            break;
        }
    }
    let csv = csv.into_inner();
    let wall_seconds = wall.elapsed().as_secs_f64();
    if let Some(dir) = out {
        if let Some(c) = csv {
            c.commit()?;
        }
        for r in &runs {
            write_policy(dir, r.kind.name(), &r.theta)?;
            for (label, theta, _) in &r.extras {
                write_policy(dir, label, theta)?;
            }
        }
        if let Some((eq, _)) = &equilibrium {
            array::write_vector(&dir.join("equilibrium.npy"), &policy::probs(&eq.theta))?;
        }
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
            "game": { "n": op.n(), "storage": op.describe() },
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
            .is_some_and(|r| r.stop == super::StopReason::Interrupted)
        {
            return Err(Error::Interrupted(dir.to_path_buf()));
        }
        if let Some(p) = &ck_path {
            match std::fs::remove_file(p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(p, e)),
                _ => {}
            }
        }
    }
    Ok(SolveReport {
        equilibrium,
        runs,
        wall_seconds,
    })
}

fn write_policy(dir: &Path, label: &str, theta: &[f64]) -> Result<PathBuf> {
    let p = dir.join(format!("{label}.policy.npy"));
    array::write_vector(&p, &policy::probs(theta))?;
    Ok(p)
}
