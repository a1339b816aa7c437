//! The parametric experiment (`nashmp param-sweep`): queries to reach `exploit ≤ ε` against
//! `n` at fixed `d`, on low-rank and disc games stored as factors (never dense).

use crate::error::Result;
use crate::gen;
use crate::io::container::{GameHeader, Layout};
use crate::io::write;
use std::path::Path;

/// The realizable families of the experiment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ParamFamily {
    /// `gen`'s low-rank family with `rank` factor pairs (`d = 2·rank`).
    LowRank,
    /// Balduzzi et al.'s disc game with `rank/2` points per action (`d = rank`), written as
    /// factors: `P = 1/2 + (1/r) Σ_k (u_ik v_jk − v_ik u_jk)`.
    Disc,
}

impl ParamFamily {
    pub fn name(self) -> &'static str {
        match self {
            ParamFamily::LowRank => "low-rank",
            ParamFamily::Disc => "disc",
        }
    }
    /// The number of factor pairs stored for a feature dimension `d` (even).
    pub fn pairs(self, d: usize) -> usize {
        d / 2
    }
}

/// Writes a game of the family with `d` features (`d` even) as a low-rank container.
pub fn write_game(path: &Path, family: ParamFamily, n: usize, d: usize, seed: u64) -> Result<()> {
    assert!(d >= 2 && d.is_multiple_of(2), "an even number of features");
    let r = d / 2;
    let mut header = GameHeader::new(n as u64, Layout::LowRank);
    header.family = Some(family.name().into());
    header.seed = Some(seed);
    header.rank = Some(r as u64);
    let none = |_| {};
    match family {
        ParamFamily::LowRank => {
            let p = gen::Params {
                rank: r,
                ..gen::Params::default()
            };
            header.params = serde_json::to_value(p).expect("params serialise");
            write::lowrank(
                path,
                &header,
                &gen::lowrank_weights(r),
                &|k, i| gen::lowrank_factor(seed, k, i),
                &none,
            )
        }
        ParamFamily::Disc => {
            let p = gen::Params {
                rank: d,
                ..gen::Params::default()
            };
            header.params = serde_json::to_value(p).expect("params serialise");
            let w = vec![1.0 / d as f64; r];
            write::lowrank(
                path,
                &header,
                &w,
                &|k, i| gen::disc_point(seed, i as u64, k as u64),
                &none,
            )
        }
    }
}

use super::algo::{DirectionMode, Env, Estimator, ParamAlgo};
use super::{Features, LinearClass};
use crate::algo::{AlgoKind, Schedule, StepSpec};
use crate::error::Error;
use crate::game::PreferenceOperator;
use crate::oracle::{pg::PgParams, Fidelity, OracleSpec};
use crate::run::{MetricsMode, RunSpec, StopReason};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

/// The methods compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Method {
    /// Parametric Nash-MP from sampled pairs (2B queries per iteration).
    ParamNashMp,
    /// Parametric OMWU from sampled pairs (B queries per iteration).
    ParamOmwu,
    /// Parametric Nash-MP whose prox steps are `--inner-steps S` plain score-function
    /// policy-gradient steps of B pairs each (2·S·B queries per iteration; not in the presets).
    ParamNashMpGradient,
    /// Tabular approximate Nash-MP (`--oracle pg --inner-steps 1`), batch `c·n`.
    TabularPg,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::ParamNashMp => "param-nash-mp",
            Method::ParamOmwu => "param-omwu",
            Method::ParamNashMpGradient => "param-nash-mp-gradient",
            Method::TabularPg => "tabular-pg",
        }
    }
}

/// `nashmp param-sweep`.
#[derive(clap::Args, Debug, Clone)]
pub struct ParamSweepArgs {
    /// `quick` (n ≤ 10^5, one β, two seeds: a smoke run) or `full` (n = 10^3 … 10^8, the
    /// experiment of docs/parametric.md). Individual flags override the preset.
    #[arg(long, default_value = "quick")]
    pub preset: String,
    /// Output folder: runs.csv, summary.md, queries_vs_n.svg.
    #[arg(long, default_value = "param-sweep")]
    pub out: PathBuf,
    /// Folder for the generated games (factors, 8·d·n bytes each; reused across runs).
    #[arg(long, default_value = "param-sweep/games")]
    pub cache: PathBuf,
    /// Comma-separated sizes.
    #[arg(long, value_delimiter = ',')]
    pub sizes: Option<Vec<usize>>,
    /// Comma-separated β.
    #[arg(long, value_delimiter = ',')]
    pub betas: Option<Vec<f64>>,
    /// Query seeds per configuration.
    #[arg(long)]
    pub seeds: Option<u64>,
    /// Target exploitability ε, one value or one per β.
    #[arg(long, value_delimiter = ',')]
    pub eps: Option<Vec<f64>>,
    /// Features per action (even: factor pairs).
    #[arg(long)]
    pub d: Option<usize>,
    /// Sampled pairs per direction estimate of the parametric methods, for β = 0.1 and 1
    /// (comma-separated, one per β).
    #[arg(long, value_delimiter = ',')]
    pub batch: Option<Vec<u64>>,
    /// Tabular pg: pairs per prox step as a multiple of n, one per β.
    #[arg(long = "tabular-batch-per-n", value_delimiter = ',')]
    pub tabular_batch_per_n: Option<Vec<f64>>,
    /// Largest n the tabular baseline runs at.
    #[arg(long = "tabular-max-n")]
    pub tabular_max_n: Option<usize>,
    /// Iteration cap per run (a run that does not reach ε by then is reported as such).
    #[arg(long = "max-iters")]
    pub max_iters: Option<u64>,
    /// Comma-separated methods.
    #[arg(long, value_delimiter = ',', value_enum)]
    pub methods: Option<Vec<Method>>,
    /// Plain policy-gradient steps per prox step of param-nash-mp-gradient (default 1).
    #[arg(long = "inner-steps")]
    pub inner_steps: Option<u64>,
    /// Comma-separated families.
    #[arg(long, value_delimiter = ',', value_enum)]
    pub families: Option<Vec<ParamFamily>>,
    /// From this n on, run only --large-seeds seeds (the machine's time budget).
    #[arg(long = "large-n")]
    pub large_n: Option<usize>,
    /// Seeds per configuration from --large-n on.
    #[arg(long = "large-seeds")]
    pub large_seeds: Option<u64>,
}

/// A validated experiment.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SweepConfig {
    pub families: Vec<ParamFamily>,
    pub sizes: Vec<usize>,
    pub betas: Vec<f64>,
    pub seeds: u64,
    /// Per β.
    pub eps: Vec<f64>,
    pub d: usize,
    /// Per β.
    pub batch: Vec<u64>,
    /// Per β.
    pub tabular_batch_per_n: Vec<f64>,
    pub tabular_max_n: usize,
    pub max_iters: u64,
    #[serde(skip)]
    pub methods: Vec<Method>,
    /// Inner steps of param-nash-mp-gradient.
    pub inner_steps: u64,
    /// From this n on, only `large_seeds` seeds.
    pub large_n: usize,
    pub large_seeds: u64,
}

/// The reference of the disc games, `μ ∝ exp(θ_μ·φ)`: the disc game's equilibrium is close to
/// uniform, so its runs start from a reference tilted towards one side of the disc
/// (`θ_μ = 1.5` on the `u` coordinates, the first `d/2` columns, 0 on the `v` ones), which the equilibrium pulls back.
pub fn disc_reference(d: usize) -> Vec<f64> {
    (0..d).map(|k| if k < d / 2 { 1.5 } else { 0.0 }).collect()
}

impl ParamSweepArgs {
    pub fn config(&self) -> Result<SweepConfig> {
        let mut c = match self.preset.as_str() {
            "quick" => SweepConfig {
                families: vec![ParamFamily::LowRank, ParamFamily::Disc],
                sizes: vec![1000, 10_000, 100_000],
                betas: vec![1.0],
                seeds: 2,
                eps: vec![1e-4],
                d: 4,
                batch: vec![4096],
                tabular_batch_per_n: vec![1024.0],
                tabular_max_n: 1000,
                max_iters: 60,
                methods: vec![Method::ParamNashMp, Method::ParamOmwu, Method::TabularPg],
                inner_steps: 1,
                large_n: usize::MAX,
                large_seeds: 1,
            },
            "full" => SweepConfig {
                families: vec![ParamFamily::LowRank, ParamFamily::Disc],
                sizes: vec![1000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000],
                betas: vec![0.1, 1.0],
                seeds: 3,
                eps: vec![1e-3, 1e-4],
                d: 4,
                batch: vec![4096, 4096],
                tabular_batch_per_n: vec![256.0, 1024.0],
                tabular_max_n: 10_000,
                max_iters: 100,
                methods: vec![Method::ParamNashMp, Method::ParamOmwu, Method::TabularPg],
                inner_steps: 1,
                large_n: 100_000_000,
                large_seeds: 1,
            },
            p => {
                return Err(Error::Param(format!(
                    "unknown --preset {p:?}; expected quick or full"
                )))
            }
        };
        if let Some(v) = &self.sizes {
            c.sizes = v.clone();
        }
        if let Some(v) = &self.betas {
            c.betas = v.clone();
        }
        if let Some(v) = self.seeds {
            c.seeds = v;
        }
        if let Some(v) = &self.eps {
            c.eps = v.clone();
        }
        if let Some(v) = self.d {
            c.d = v;
        }
        if let Some(v) = &self.batch {
            c.batch = v.clone();
        }
        if let Some(v) = &self.tabular_batch_per_n {
            c.tabular_batch_per_n = v.clone();
        }
        if let Some(v) = self.tabular_max_n {
            c.tabular_max_n = v;
        }
        if let Some(v) = self.max_iters {
            c.max_iters = v;
        }
        if let Some(v) = &self.methods {
            c.methods = v.clone();
        }
        if let Some(v) = self.inner_steps {
            if !c.methods.contains(&Method::ParamNashMpGradient) {
                return Err(Error::Param(
                    "--inner-steps applies to --methods param-nash-mp-gradient only".into(),
                ));
            }
            c.inner_steps = v;
        }
        if let Some(v) = &self.families {
            c.families = v.clone();
        }
        if let Some(v) = self.large_n {
            c.large_n = v;
        }
        if let Some(v) = self.large_seeds {
            c.large_seeds = v;
        }
        c.check()?;
        Ok(c)
    }
}

impl SweepConfig {
    fn check(&self) -> Result<()> {
        let p = |m: String| Err(Error::Param(m));
        if self.d < 2 || !self.d.is_multiple_of(2) {
            return p(format!(
                "--d must be even and ≥ 2 (factor pairs), got {}",
                self.d
            ));
        }
        if self.sizes.is_empty() || self.sizes.iter().any(|&n| n < self.d) {
            return p(format!("--sizes must be ≥ d = {}", self.d));
        }
        for &b in &self.betas {
            if !(b.is_finite() && b > 0.0) {
                return p(format!("--betas must be positive, got {b}"));
            }
        }
        if self.batch.len() != self.betas.len() && self.batch.len() != 1 {
            return p("--batch takes one value, or one per β".into());
        }
        if self.batch.contains(&0) {
            return p("--batch must be ≥ 1".into());
        }
        if self.tabular_batch_per_n.len() != self.betas.len() && self.tabular_batch_per_n.len() != 1
        {
            return p("--tabular-batch-per-n takes one value, or one per β".into());
        }
        if self.eps.len() != self.betas.len() && self.eps.len() != 1 {
            return p("--eps takes one value, or one per β".into());
        }
        if let Some(e) = self.eps.iter().find(|e| !(e.is_finite() && **e > 0.0)) {
            return p(format!("--eps must be positive, got {e}"));
        }
        if self.seeds == 0 || self.max_iters == 0 {
            return p("--seeds and --max-iters must be ≥ 1".into());
        }
        if self.inner_steps == 0 {
            return p("--inner-steps must be ≥ 1".into());
        }
        Ok(())
    }

    fn per_beta<T: Copy>(v: &[T], b: usize) -> T {
        v[if v.len() == 1 { 0 } else { b }]
    }
}

/// One run's outcome.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RunRow {
    pub family: &'static str,
    pub n: usize,
    pub d: usize,
    pub beta: f64,
    pub method: &'static str,
    pub seed: u64,
    pub batch: u64,
    /// Iterations and queries when `exploit ≤ ε` was first seen (or at the cap).
    pub iters: u64,
    pub queries: u64,
    pub reached: bool,
    pub exploit0: f64,
    pub exploit: f64,
    pub seconds: f64,
}

/// A parametric run until `exploit ≤ eps` (checked after every iteration, from the moments:
/// the realizable game's exact exploitability).
#[allow(clippy::too_many_arguments)]
pub fn run_param(
    class: &LinearClass,
    op: &dyn PreferenceOperator,
    (kind, estimator): (AlgoKind, Estimator),
    beta: f64,
    batch: u64,
    seed: u64,
    eps: f64,
    max_iters: u64,
) -> (u64, u64, bool, f64, f64) {
    let mode = DirectionMode::Sampled {
        batch,
        seed,
        fidelity: Fidelity::Sampled,
    };
    let mut a = ParamAlgo::new(kind, kind.default_alpha(beta), class.d(), mode)
        .and_then(|a| a.with_estimator(estimator))
        .expect("a parametric method with a checked estimator");
    let env = Env { class, op, beta };
    let mut mom = class.moments(&a.theta, true);
    let e0 = class.exploit_realizable(&a.theta, &mom, beta);
    let mut e = e0;
    let mut k = 0;
    while k < max_iters && e > eps {
        mom = a.step(&env, Some(mom));
        k += 1;
        e = class.exploit_realizable(&a.theta, &mom, beta);
    }
    (k, a.queries, e <= eps, e0, e)
}

/// Runs the experiment; writes `runs.csv`, `summary.md`, `queries_vs_n.svg` into `cfg.out`.
pub fn run_sweep(
    cfg: &SweepConfig,
    out: &Path,
    cache: &Path,
    on_row: &mut dyn FnMut(&RunRow),
) -> Result<Vec<RunRow>> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    std::fs::create_dir_all(cache).map_err(|e| Error::io(cache, e))?;
    let mut rows = Vec::new();
    let d = cfg.d;
    for &family in &cfg.families {
        for &n in &cfg.sizes {
            let path = cache.join(format!("{}-n{n}-d{d}-s1.nmp", family.name()));
            if !path.exists() {
                write_game(&path, family, n, d, 1)?;
            }
            let op = crate::game::open(&path, None)?;
            let (f, m) = Features::of_game(op.as_ref(), &path.display().to_string())?;
            let mut class = LinearClass::new(f, None, Some(m));
            if family == ParamFamily::Disc {
                class = class.with_reference_params(disc_reference(d));
            }
            for (bi, &beta) in cfg.betas.iter().enumerate() {
                for &method in &cfg.methods {
                    if method == Method::TabularPg && n > cfg.tabular_max_n {
                        continue;
                    }
                    let seeds = if n >= cfg.large_n {
                        cfg.large_seeds.min(cfg.seeds)
                    } else {
                        cfg.seeds
                    };
                    for seed in 0..seeds {
                        let t = Instant::now();
                        let (batch, (iters, queries, reached, e0, e)) = match method {
                            Method::ParamNashMp
                            | Method::ParamOmwu
                            | Method::ParamNashMpGradient => {
                                let (kind, estimator) = match method {
                                    Method::ParamOmwu => (AlgoKind::Omwu, Estimator::Natural),
                                    Method::ParamNashMpGradient => (
                                        AlgoKind::NashMp,
                                        Estimator::Gradient {
                                            steps: cfg.inner_steps,
                                            lr: 1.0,
                                        },
                                    ),
                                    _ => (AlgoKind::NashMp, Estimator::Natural),
                                };
                                let b = SweepConfig::per_beta(&cfg.batch, bi);
                                let r = run_param(
                                    &class,
                                    op.as_ref(),
                                    (kind, estimator),
                                    beta,
                                    b,
                                    seed,
                                    SweepConfig::per_beta(&cfg.eps, bi),
                                    cfg.max_iters,
                                );
                                (b, r)
                            }
                            Method::TabularPg => {
                                let c = SweepConfig::per_beta(&cfg.tabular_batch_per_n, bi);
                                let b = ((c * n as f64).ceil() as u64).max(1);
                                let eps = SweepConfig::per_beta(&cfg.eps, bi);
                                (
                                    b,
                                    run_tabular(&class, op.as_ref(), beta, b, seed, eps, cfg)?,
                                )
                            }
                        };
                        let row = RunRow {
                            family: family.name(),
                            n,
                            d,
                            beta,
                            method: method.name(),
                            seed,
                            batch,
                            iters,
                            queries,
                            reached,
                            exploit0: e0,
                            exploit: e,
                            seconds: t.elapsed().as_secs_f64(),
                        };
                        on_row(&row);
                        rows.push(row);
                    }
                }
            }
        }
    }
    write_outputs(cfg, out, &rows)?;
    Ok(rows)
}

/// The tabular baseline through the ordinary driver (`ApproxNashMp`, `--tol ε`).
fn run_tabular(
    class: &LinearClass,
    op: &dyn PreferenceOperator,
    beta: f64,
    batch: u64,
    seed: u64,
    eps: f64,
    cfg: &SweepConfig,
) -> Result<(u64, u64, bool, f64, f64)> {
    let n = class.n();
    let mut tr = vec![0.0; n];
    let zero = vec![0.0; class.d()];
    let mom = class.moments(&zero, false);
    class.log_probs(&zero, mom.log_z, &mut tr);
    let (step, _) = StepSpec::Default.resolve(AlgoKind::NashMp, beta)?;
    let spec = RunSpec {
        kind: AlgoKind::NashMp,
        beta,
        step,
        schedule: Schedule::Constant,
        iters: cfg.max_iters,
        tol: Some(eps),
        metrics: MetricsMode::Cheap,
        theta_ref: &tr,
        theta0: &tr,
        theta_star: None,
        oracle: OracleSpec::pg(
            PgParams {
                inner_steps: 1,
                batch,
                inner_lr: None,
            },
            seed,
        )?,
        log_every: 1,
    };
    let mut e0 = f64::NAN;
    let info = crate::run::run(
        op,
        &spec,
        &mut |r| {
            if r.iter == 0 {
                e0 = r.metrics.exploit.unwrap_or(f64::NAN);
            }
            Ok(())
        },
        &mut || {},
    )?;
    let e = info.last.exploit.unwrap_or(f64::NAN);
    Ok((
        info.iterations,
        info.queries,
        info.stop == StopReason::Tol,
        e0,
        e,
    ))
}

/// Least-squares slope of `log y` against `log x`.
pub fn loglog_slope(pts: &[(f64, f64)]) -> Option<f64> {
    if pts.len() < 2 {
        return None;
    }
    let k = pts.len() as f64;
    let (lx, ly): (Vec<f64>, Vec<f64>) = pts.iter().map(|(x, y)| (x.ln(), y.ln())).unzip();
    let (mx, my) = (lx.iter().sum::<f64>() / k, ly.iter().sum::<f64>() / k);
    let sxx: f64 = lx.iter().map(|x| (x - mx) * (x - mx)).sum();
    let sxy: f64 = lx.iter().zip(&ly).map(|(x, y)| (x - mx) * (y - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

type Key = (&'static str, u64, &'static str);

fn groups(rows: &[RunRow]) -> Vec<(Key, Vec<&RunRow>)> {
    let mut keys: Vec<Key> = Vec::new();
    for r in rows {
        let k = (r.family, r.beta.to_bits(), r.method);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.into_iter()
        .map(|k| {
            let v = rows
                .iter()
                .filter(|r| (r.family, r.beta.to_bits(), r.method) == k)
                .collect();
            (k, v)
        })
        .collect()
}

/// Per group: the slope per seed over the sizes every seed reached, `(mean, sd, min, max, k)`.
fn slopes(rs: &[&RunRow]) -> Option<(f64, f64, f64, f64, usize)> {
    let seeds: Vec<u64> = {
        let mut s: Vec<u64> = rs.iter().map(|r| r.seed).collect();
        s.sort();
        s.dedup();
        s
    };
    let per: Vec<f64> = seeds
        .iter()
        .filter_map(|&s| {
            let pts: Vec<(f64, f64)> = rs
                .iter()
                .filter(|r| r.seed == s && r.reached && r.queries > 0)
                .map(|r| (r.n as f64, r.queries as f64))
                .collect();
            loglog_slope(&pts)
        })
        .collect();
    if per.is_empty() {
        return None;
    }
    let k = per.len() as f64;
    let mean = per.iter().sum::<f64>() / k;
    let sd = if per.len() > 1 {
        (per.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (k - 1.0)).sqrt()
    } else {
        0.0
    };
    let min = per.iter().copied().fold(f64::INFINITY, f64::min);
    let max = per.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((mean, sd, min, max, per.len()))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let k = v.len();
    if k % 2 == 1 {
        v[k / 2]
    } else {
        0.5 * (v[k / 2 - 1] + v[k / 2])
    }
}

fn write_outputs(cfg: &SweepConfig, out: &Path, rows: &[RunRow]) -> Result<()> {
    let mut csv = String::from(
        "family,n,d,beta,method,seed,batch,iters,queries,reached,exploit0,exploit,seconds\n",
    );
    for r in rows {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{},{:.6e},{:.6e},{:.3}",
            r.family,
            r.n,
            r.d,
            r.beta,
            r.method,
            r.seed,
            r.batch,
            r.iters,
            r.queries,
            r.reached,
            r.exploit0,
            r.exploit,
            r.seconds
        );
    }
    crate::io::atomic::write_all(&out.join("runs.csv"), csv.as_bytes())?;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Parametric sweep: queries to reach exploit ≤ ε\n\nd = {}, seeds = {}, iteration cap {}, ε = {:?} for β = {:?}.\n",
        cfg.d, cfg.seeds, cfg.max_iters, cfg.eps, cfg.betas
    );
    let _ = writeln!(md, "## Fitted slopes of log(queries to ε) against log n\n");
    let _ = writeln!(
        md,
        "| family | β | method | slope (mean ± sd over seeds) | min … max | seeds | n range |\n|---|---|---|---|---|---|---|"
    );
    let gs = groups(rows);
    for ((fam, b, m), rs) in &gs {
        let range = {
            let ns: Vec<usize> = rs.iter().filter(|r| r.reached).map(|r| r.n).collect();
            match (ns.iter().min(), ns.iter().max()) {
                (Some(a), Some(b)) => format!("{a} … {b}"),
                _ => "—".into(),
            }
        };
        let s = match slopes(rs) {
            Some((mean, sd, lo, hi, k)) => {
                format!("{mean:.3} ± {sd:.3} | {lo:.3} … {hi:.3} | {k}")
            }
            None => "— | — | 0".into(),
        };
        let _ = writeln!(
            md,
            "| {fam} | {} | {m} | {s} | {range} |",
            f64::from_bits(*b)
        );
    }
    let _ = writeln!(
        md,
        "\n## Queries to ε (median over the seeds that reached it; `reached` = seeds that reached ε / seeds run)\n"
    );
    for ((fam, b, m), rs) in &gs {
        let _ = writeln!(
            md,
            "### {fam}, β = {}, {m}\n\n| n | batch | median queries | median iters | median s | reached |\n|---|---|---|---|---|---|",
            f64::from_bits(*b)
        );
        let mut ns: Vec<usize> = rs.iter().map(|r| r.n).collect();
        ns.dedup();
        for n in ns {
            let at: Vec<&&RunRow> = rs.iter().filter(|r| r.n == n).collect();
            let ok: Vec<&&RunRow> = at.iter().copied().filter(|r| r.reached).collect();
            let q = if ok.is_empty() {
                "—".into()
            } else {
                format!(
                    "{:.0}",
                    median(ok.iter().map(|r| r.queries as f64).collect())
                )
            };
            let it = median(at.iter().map(|r| r.iters as f64).collect());
            let sec = median(at.iter().map(|r| r.seconds).collect());
            let _ = writeln!(
                md,
                "| {n} | {} | {q} | {it:.0} | {sec:.2} | {}/{} |",
                at[0].batch,
                ok.len(),
                at.len()
            );
        }
        let _ = writeln!(md);
    }
    crate::io::atomic::write_all(&out.join("summary.md"), md.as_bytes())?;
    plot(out, cfg, &gs)?;
    Ok(())
}

fn plot(out: &Path, cfg: &SweepConfig, gs: &[(Key, Vec<&RunRow>)]) -> Result<()> {
    use plotters::prelude::*;
    let path = out.join("queries_vs_n.svg");
    let fail = |m: String| Error::Param(format!("drawing {}: {m}", path.display()));
    let pts: Vec<(f64, f64)> = gs
        .iter()
        .flat_map(|(_, rs)| rs.iter())
        .filter(|r| r.reached && r.queries > 0)
        .map(|r| (r.n as f64, r.queries as f64))
        .collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 620)).into_drawing_area();
        let e = |x: DrawingAreaErrorKind<std::io::Error>| x.to_string();
        root.fill(&WHITE).map_err(|x| fail(e(x)))?;
        if pts.is_empty() {
            root.titled("no run reached ε", ("sans-serif", 18))
                .map_err(|x| fail(e(x)))?;
        } else {
            let (x0, x1) = pts
                .iter()
                .fold((f64::INFINITY, 0.0f64), |a, p| (a.0.min(p.0), a.1.max(p.0)));
            let (y0, y1) = pts
                .iter()
                .fold((f64::INFINITY, 0.0f64), |a, p| (a.0.min(p.1), a.1.max(p.1)));
            let mut chart = ChartBuilder::on(&root)
                .caption(
                    format!(
                        "queries to reach exploit ≤ ε (d = {}, ε = {:?} for β = {:?})",
                        cfg.d, cfg.eps, cfg.betas
                    ),
                    ("sans-serif", 20),
                )
                .margin(10)
                .x_label_area_size(45)
                .y_label_area_size(80)
                .build_cartesian_2d(
                    (x0 / 2.0..x1 * 2.0).log_scale(),
                    (y0 / 3.0..y1 * 3.0).log_scale(),
                )
                .map_err(|x| fail(e(x)))?;
            chart
                .configure_mesh()
                .x_desc("n (actions)")
                .y_desc("queries (median over seeds)")
                .x_label_formatter(&|v| format!("{v:.0e}"))
                .y_label_formatter(&|v| format!("{v:.0e}"))
                .draw()
                .map_err(|x| fail(e(x)))?;
            for (i, ((fam, b, m), rs)) in gs.iter().enumerate() {
                let c = Palette99::pick(i).to_rgba();
                let mut ns: Vec<usize> = rs.iter().map(|r| r.n).collect();
                ns.dedup();
                let line: Vec<(f64, f64)> = ns
                    .iter()
                    .filter_map(|&n| {
                        let q: Vec<f64> = rs
                            .iter()
                            .filter(|r| r.n == n && r.reached)
                            .map(|r| r.queries as f64)
                            .collect();
                        (!q.is_empty()).then(|| (n as f64, median(q)))
                    })
                    .collect();
                let label = format!("{fam} β={} {m}", f64::from_bits(*b));
                chart
                    .draw_series(LineSeries::new(line.clone(), c.stroke_width(2)))
                    .map_err(|x| fail(e(x)))?
                    .label(label)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                    });
                chart
                    .draw_series(
                        rs.iter()
                            .filter(|r| r.reached && r.queries > 0)
                            .map(|r| Circle::new((r.n as f64, r.queries as f64), 3, c.filled())),
                    )
                    .map_err(|x| fail(e(x)))?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .draw()
                .map_err(|x| fail(e(x)))?;
        }
        root.present().map_err(|x| fail(e(x)))?;
    }
    crate::io::atomic::write_all(&path, svg.as_bytes())
}

/// `nashmp param-sweep`.
pub fn run(a: ParamSweepArgs) -> anyhow::Result<()> {
    let cfg = a.config()?;
    let wall = Instant::now();
    println!(
        "{:<9} {:>10} {:>4} {:<14} {:>4} {:>7} {:>6} {:>12} {:>9} {:>8}",
        "family", "n", "β", "method", "seed", "batch", "iters", "queries", "exploit", "s"
    );
    let rows = run_sweep(&cfg, &a.out, &a.cache, &mut |r| {
        println!(
            "{:<9} {:>10} {:>4} {:<14} {:>4} {:>7} {:>6} {:>12} {:>9.2e} {:>8.2}{}",
            r.family,
            r.n,
            r.beta,
            r.method,
            r.seed,
            r.batch,
            r.iters,
            r.queries,
            r.exploit,
            r.seconds,
            if r.reached { "" } else { "  (not reached)" }
        )
    })?;
    println!(
        "{} runs in {:.1}s; wrote {}/{{runs.csv,summary.md,queries_vs_n.svg}}",
        rows.len(),
        wall.elapsed().as_secs_f64(),
        a.out.display()
    );
    if let Some(m) = crate::run::memory::snapshot() {
        println!("memory: peak RSS {}", crate::run::memory::mib(m.peak_rss));
    }
    Ok(())
}
