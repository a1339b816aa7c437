use crate::algo::{AlgoKind, Schedule, StepSpec};
use crate::game::{self, PreferenceOperator};
use crate::policy;
use crate::run::{session, MetricsMode};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Shared by `solve` and `equilibrium`: the game and its reference.
#[derive(clap::Args, Debug, Clone)]
pub struct GameArgs {
    /// The game: a square float32/float64 .npy matrix, or a nashmp container (.nmp) of any
    /// layout (packed, u16, low-rank, block). Text matrices: `nashmp convert IN.txt OUT.npy`.
    pub game: PathBuf,
    /// Regularisation strength β ≥ 0.
    #[arg(long, allow_negative_numbers = true)]
    pub beta: f64,
    /// Reference policy μ (.npy, 1-D, positive, sums to 1). Default: uniform.
    #[arg(long = "ref", value_name = "REF.npy")]
    pub reference: Option<PathBuf>,
    /// Skew tolerance of the validation (default 1e-9 for float64, 1e-6 for float32).
    #[arg(long = "skew-tol", allow_negative_numbers = true)]
    pub skew_tol: Option<f64>,
}

impl GameArgs {
    pub fn load(&self) -> anyhow::Result<(Box<dyn PreferenceOperator>, Vec<f64>)> {
        crate::algo::params::check_beta(self.beta)?;
        let g = game::open(&self.game, self.skew_tol)?;
        let theta_ref = match &self.reference {
            Some(p) => policy::load_theta(p, g.n())?,
            None => policy::uniform_theta(g.n()),
        };
        Ok((g, theta_ref))
    }
}

#[derive(clap::Args, Debug)]
pub struct SolveArgs {
    #[command(flatten)]
    pub game: GameArgs,
    /// Step size α (multiplies the payoff). Default: each algorithm's (docs/math.md §3).
    #[arg(long, conflicts_with = "eta", allow_negative_numbers = true)]
    pub alpha: Option<f64>,
    /// Step size in the paper's convention, η = α·β.
    #[arg(long, allow_negative_numbers = true)]
    pub eta: Option<f64>,
    /// Comma-separated algorithms.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "nash-mp,mmd,omwu,egpo,nash-md,mwu"
    )]
    pub algo: Vec<AlgoKind>,
    /// Iterations per algorithm.
    #[arg(long, default_value_t = 1000)]
    pub iters: u64,
    /// Stop an algorithm once its exploitability is ≤ T.
    #[arg(long, allow_negative_numbers = true)]
    pub tol: Option<f64>,
    /// Which metrics to log per iteration.
    #[arg(long, value_enum)]
    pub metrics: Option<MetricsMode>,
    /// Nash-MD's step schedule.
    #[arg(long, value_enum, default_value = "constant")]
    pub schedule: ScheduleArg,
    /// Starting policy: `reference` (default), `uniform`, or a .npy policy file.
    #[arg(long, default_value = "reference")]
    pub init: String,
    /// Output folder (created if missing). Result files of an earlier run there that this run
    /// does not write are removed.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    #[command(flatten)]
    pub oracle: super::oracle_args::OracleArgs,
    #[command(flatten)]
    pub policy: crate::param::cli::PolicyArgs,
    /// Save a checkpoint (OUT/checkpoint.nmpck) every K iterations of each algorithm.
    #[arg(long = "checkpoint-every", value_name = "K")]
    pub checkpoint_every: Option<u64>,
    /// Continue from the checkpoint in --out (same command otherwise; refused if the game or
    /// any result-affecting argument changed).
    #[arg(long)]
    pub resume: bool,
    /// Print summary.json (and the files written) on stdout instead of the human-readable
    /// report.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ScheduleArg {
    Constant,
    Decaying,
}

pub fn init_theta(init: &str, theta_ref: &[f64]) -> anyhow::Result<Vec<f64>> {
    Ok(match init {
        "reference" => theta_ref.to_vec(),
        "uniform" => policy::uniform_theta(theta_ref.len()),
        path => policy::load_theta(Path::new(path), theta_ref.len())?,
    })
}

/// Checkpoints and resume as the flags say; SIGINT (Ctrl-C) stops the solve after saving.
fn persist_spec(a: &SolveArgs) -> anyhow::Result<session::PersistSpec> {
    let ck = a.out.join(crate::run::checkpoint::FILE_NAME);
    if a.resume && !ck.exists() {
        super::warn(&format!(
            "--resume: no checkpoint at {}; starting from the beginning",
            ck.display()
        ));
    }
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
        .map_err(|e| anyhow::anyhow!("cannot install the Ctrl-C handler: {e}"))?;
    Ok(session::PersistSpec {
        every: a.checkpoint_every,
        resume: a.resume,
        // A shard set is fingerprinted by its manifest, which holds every shard's SHA-256.
        game: crate::run::fingerprint::game_file(
            &crate::io::shards::manifest_path(&a.game.game).unwrap_or(a.game.game.clone()),
        )?,
        interrupt: Some(interrupt),
    })
}

pub fn run(a: SolveArgs) -> anyhow::Result<()> {
    super::check_tol("--skew-tol", a.game.skew_tol)?;
    if a.json {
        super::silence();
    }
    crate::io::output::check_dir(&a.out, "--out")?;
    let (g, theta_ref) = a.game.load()?;
    let theta0 = init_theta(&a.init, &theta_ref)?;
    let step = match (a.alpha, a.eta) {
        (Some(x), _) => StepSpec::Alpha(x),
        (_, Some(e)) => StepSpec::Eta(e),
        _ => StepSpec::Default,
    };
    let metrics = a.metrics.unwrap_or(if a.game.beta > 0.0 {
        MetricsMode::Full
    } else {
        MetricsMode::Cheap
    });
    let schedule = match a.schedule {
        ScheduleArg::Constant => Schedule::Constant,
        ScheduleArg::Decaying => Schedule::Decaying,
    };
    let mut oracle_args = a.oracle.clone();
    if a.policy.is_linear() && !a.policy.is_gradient() && oracle_args.inner_steps.is_none() {
        // One natural-gradient estimate per prox step: --batch B alone is enough.
        oracle_args.inner_steps = oracle_args.batch.map(|_| 1);
    }
    let oracle = oracle_args.spec()?;
    let policy = a.policy.build(g.as_ref(), &theta_ref)?;
    let cfg = session::SolveConfig::new(
        &a.algo,
        a.game.beta,
        step,
        schedule,
        a.iters,
        a.tol,
        metrics,
        theta_ref,
        theta0,
    )?;
    let cfg = match policy {
        Some(p) => {
            p.check(&a.algo, &oracle)?;
            cfg.with_policy(p, oracle)
        }
        None => cfg.with_oracle(oracle)?,
    }
    .with_persist(persist_spec(&a)?)?;
    for w in cfg.warnings() {
        super::warn(w);
    }
    let cfg = cfg.with_record(serde_json::json!({
        "game": a.game.game,
        "reference": a.game.reference,
        "init": a.init,
        "alpha": a.alpha,
        "eta": a.eta,
        "algo": a.algo.iter().map(|k| k.name()).collect::<Vec<_>>(),
    }));
    let bar = super::progress::items(a.iters * a.algo.len() as u64, "iterations");
    let report = session::solve(g.as_ref(), &cfg, Some(&a.out), &mut |_| {}, &mut || {
        bar.inc(1)
    })?;
    bar.finish_and_clear();
    say!("game: {}", g.info().description);
    if let Some((eq, secs)) = &report.equilibrium {
        say!(
            "equilibrium: residual {}, exploit {} after {} iterations ({}, {secs:.2}s)",
            super::sci(eq.residual),
            super::sci(eq.exploit),
            eq.iterations,
            super::word(&eq.stop)
        );
    }
    say!(
        "{:<8} {:>8} {:>8} {:>11} {:>11} {:>11}  stop",
        "algo",
        "iters",
        "queries",
        "kl_star",
        "exploit",
        "s/iter"
    );
    for r in &report.runs {
        let f = |v: Option<f64>| v.map(super::sci).unwrap_or_else(|| "-".into());
        say!(
            "{:<8} {:>8} {:>8} {:>11} {:>11} {:>11.3e}  {}",
            r.kind.name(),
            r.iterations,
            r.queries,
            f(r.last.kl_star),
            f(r.last.exploit),
            r.seconds / r.iterations.max(1) as f64,
            super::word(&r.stop)
        );
    }
    if let Some(m) = crate::run::memory::snapshot() {
        say!(
            "memory: peak RSS {} (now: anonymous {}, file-backed {})",
            crate::run::memory::mib(m.peak_rss),
            crate::run::memory::mib(m.rss_anon),
            crate::run::memory::mib(m.rss_file)
        );
    }
    let mut written = vec!["metrics.csv".to_string(), "summary.json".to_string()];
    for r in &report.runs {
        written.push(format!("{}.policy.npy", r.kind.name()));
        written.extend(r.extras.iter().map(|(l, _, _)| format!("{l}.policy.npy")));
    }
    if report.equilibrium.is_some() {
        written.push("equilibrium.npy".into());
    }
    remove_stale(&a.out, &written)?;
    say!("wrote {}/{{{}}}", a.out.display(), written.join(","));
    if a.json {
        let p = a.out.join("summary.json");
        let text = std::fs::read_to_string(&p).map_err(|e| crate::Error::io(&p, e))?;
        let mut v: serde_json::Value = serde_json::from_str(&text)?;
        v["files"] = serde_json::json!(written);
        super::print_json(&v);
    }
    Ok(())
}

/// Removes the outputs an earlier solve left in `dir` that this one did not write (policies of
/// algorithms not run now, `equilibrium.npy` without `--metrics full`), so that every result
/// file in the folder belongs to the latest run.
fn remove_stale(dir: &Path, written: &[String]) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| crate::Error::io(dir, e))?;
    let mut stale: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|f| f.ends_with(".policy.npy") || f == "equilibrium.npy")
        .filter(|f| !written.contains(f))
        .collect();
    stale.sort();
    for f in &stale {
        let p = dir.join(f);
        std::fs::remove_file(&p).map_err(|e| crate::Error::io(&p, e))?;
    }
    if !stale.is_empty() {
        super::warn(&format!(
            "removed {} from an earlier run in {} (not written by this one)",
            stale.join(", "),
            dir.display()
        ));
    }
    Ok(())
}
