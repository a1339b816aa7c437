//! `nashmp sweep`: the size-independence experiment (families × sizes × β × algorithms × seeds).

use crate::algo::AlgoKind;
use crate::gen::Family;
use crate::sweep::config::{Oracle, Policy};
use crate::sweep::{self, plots::Formats, Mode, Preset, SweepOptions, SweepPersist};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct SweepArgs {
    /// Grid to start from; the flags below override its lists.
    #[arg(long, value_enum, default_value = "quick")]
    pub preset: Preset,
    /// Comma-separated game families.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub families: Option<Vec<Family>>,
    /// Comma-separated sizes n of the matrix families (and of the structured ones unless
    /// --structured-sizes is given).
    #[arg(long, value_delimiter = ',')]
    pub sizes: Option<Vec<usize>>,
    /// Comma-separated sizes n of the structured families (low-rank, block).
    #[arg(long, value_delimiter = ',')]
    pub structured_sizes: Option<Vec<usize>>,
    /// Comma-separated regularisation strengths β > 0.
    #[arg(long, allow_negative_numbers = true, value_delimiter = ',')]
    pub betas: Option<Vec<f64>>,
    /// Comma-separated algorithms (each with its default step).
    #[arg(long, value_delimiter = ',')]
    pub algos: Option<Vec<AlgoKind>>,
    /// Comma-separated algorithms on games of 10^6 actions or more (default: the preset's; full:
    /// nash-mp only). `--algos` alone sets both.
    #[arg(long, value_delimiter = ',')]
    pub large_algos: Option<Vec<AlgoKind>>,
    /// Comma-separated game seeds.
    #[arg(long, value_delimiter = ',')]
    pub seeds: Option<Vec<u64>>,
    /// Nash-MP iterations per run; every algorithm gets the same query budget (2 × ITERS).
    /// Default: the preset's (full: enough for the bound to reach 1e-9 at each β).
    #[arg(long)]
    pub iters: Option<u64>,
    /// At most this many Nash-MP iterations on games of 10^6 actions or more (full preset: 200;
    /// an explicit --iters lifts the preset's cap).
    #[arg(long)]
    pub large_max_iters: Option<u64>,
    /// Skill spread σ of bradley-terry and mixture games (default 1).
    #[arg(long, allow_negative_numbers = true)]
    pub sigma: Option<f64>,
    /// Noise level ε of cyclic games (default 0: such a game starts at π*, see README).
    #[arg(long, allow_negative_numbers = true)]
    pub noise: Option<f64>,
    /// Rank r of disc, mixture (even) and low-rank games (default 2).
    #[arg(long)]
    pub rank: Option<usize>,
    /// Weight w of the transitive part of mixture games (default 0.5).
    #[arg(long, allow_negative_numbers = true)]
    pub weight: Option<f64>,
    /// Number of types K of block games (default 16).
    #[arg(long)]
    pub types: Option<usize>,
    /// Comma-separated policy classes: `tabular` (default) and/or `linear` (log-linear over the
    /// game's own factors, docs/math.md §8; low-rank games; nash-mp, omwu and mmd).
    #[arg(long = "policy", value_enum, value_delimiter = ',')]
    pub policies: Option<Vec<Policy>>,
    /// Comma-separated oracles: `exact` (default: payoff vectors) and/or `pg` (sampled pairs
    /// with Bernoulli answers: tabular approximate Nash-MP, batch c·n per prox step, up to
    /// --tabular-pg-max-n actions; the linear class's natural-gradient estimate, batch --batch).
    #[arg(long = "oracle", value_enum, value_delimiter = ',')]
    pub oracles: Option<Vec<Oracle>>,
    /// Sampled pairs per direction estimate of --policy linear --oracle pg (default 4096).
    #[arg(long)]
    pub batch: Option<u64>,
    /// Pairs per prox step of tabular --oracle pg, as a multiple c of n (default 256).
    #[arg(long = "tabular-batch-per-n")]
    pub tabular_batch_per_n: Option<f64>,
    /// Largest n that tabular --oracle pg runs at (default 10000: its queries grow with n).
    #[arg(long = "tabular-pg-max-n")]
    pub tabular_pg_max_n: Option<usize>,
    /// Exploitability target ε of the summary's queries-to-ε column, table and figure
    /// (default 1e-3; also read by --replot).
    #[arg(long)]
    pub eps: Option<f64>,
    /// Output folder (created if missing). Plots of an earlier sweep there that this one does
    /// not draw are removed.
    #[arg(long, default_value = "out/sweep")]
    pub out: PathBuf,
    /// Folder of generated games, reused across sweeps.
    #[arg(long, default_value = "games/sweep")]
    pub cache: PathBuf,
    /// Also draw PNG plots (needs the `png` build feature and a TrueType font, see --font).
    #[arg(long)]
    pub png: bool,
    /// TrueType font for PNG text.
    #[arg(
        long,
        default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    )]
    pub font: PathBuf,
    /// Run each configuration alone instead of in lock step (to measure what batching saves).
    #[arg(long, conflicts_with = "compare")]
    pub one_by_one: bool,
    /// Run every game both batched and one by one; write batching.csv with both timings.
    #[arg(long)]
    pub compare: bool,
    /// Solve nothing: rewrite summary.csv, summary.md and the plots of --out from its runs.csv.
    #[arg(long)]
    pub replot: bool,
    /// Save the state of every run in progress (in OUT/checkpoint/) every K iterations.
    /// Completed games are always saved there, and Ctrl-C saves before it stops.
    #[arg(long = "checkpoint-every", value_name = "K", conflicts_with = "replot")]
    pub checkpoint_every: Option<u64>,
    /// Continue from the checkpoint in --out (same command otherwise; refused if the grid, an
    /// argument that affects the results, or a game file changed).
    #[arg(long, conflicts_with = "replot")]
    pub resume: bool,
}

impl SweepArgs {
    /// The validated grid these flags ask for: the preset's, with every list and parameter
    /// given overriding it (the CLI and the Python package both build it here).
    pub fn config(&self) -> crate::Result<sweep::SweepConfig> {
        let mut cfg = self.preset.config();
        if let Some(v) = self.families.clone() {
            cfg.families = v;
        }
        if let Some(v) = self.sizes.clone() {
            cfg.structured_sizes = self.structured_sizes.clone().unwrap_or_else(|| v.clone());
            cfg.sizes = v;
        }
        if let Some(v) = self.structured_sizes.clone() {
            cfg.structured_sizes = v;
        }
        if let Some(v) = self.betas.clone() {
            cfg.betas = v;
        }
        if let Some(v) = self.algos.clone() {
            cfg.algos = v;
            cfg.large_algos = None;
        }
        if let Some(v) = self.large_algos.clone() {
            cfg.large_algos = Some(v);
        }
        if let Some(v) = self.seeds.clone() {
            cfg.seeds = v;
        }
        if self.iters.is_some() {
            cfg.iters = self.iters;
            cfg.large_max_iters = None;
        }
        if self.large_max_iters.is_some() {
            cfg.large_max_iters = self.large_max_iters;
        }
        for (flag, set) in [
            ("--sigma", self.sigma.is_some()),
            ("--noise", self.noise.is_some()),
            ("--rank", self.rank.is_some()),
            ("--weight", self.weight.is_some()),
            ("--types", self.types.is_some()),
        ] {
            let read = cfg
                .families
                .iter()
                .any(|&f| super::generate::options_of(f).contains(&flag));
            if set && !read {
                return Err(crate::Error::Param(format!(
                    "{flag} applies to none of the sweep's families"
                )));
            }
        }
        if let Some(v) = self.sigma {
            cfg.params.sigma = v;
        }
        if let Some(v) = self.noise {
            cfg.params.noise = v;
        }
        if let Some(v) = self.rank {
            cfg.params.rank = v;
        }
        if let Some(v) = self.weight {
            cfg.params.weight = v;
        }
        if let Some(v) = self.types {
            cfg.params.types = v;
        }
        if let Some(v) = self.policies.clone() {
            cfg.policies = v;
        }
        if let Some(v) = self.oracles.clone() {
            cfg.oracles = v;
        }
        let sampled = cfg.oracles.contains(&Oracle::Pg);
        let linear = cfg.policies.contains(&Policy::Linear);
        let tabular = cfg.policies.contains(&Policy::Tabular);
        for (flag, set, read) in [
            ("--batch", self.batch.is_some(), sampled && linear),
            (
                "--tabular-batch-per-n",
                self.tabular_batch_per_n.is_some(),
                sampled && tabular,
            ),
            (
                "--tabular-pg-max-n",
                self.tabular_pg_max_n.is_some(),
                sampled && tabular,
            ),
        ] {
            if set && !read {
                return Err(crate::Error::Param(format!(
                    "{flag} applies to none of the sweep's runs (see --policy and --oracle)"
                )));
            }
        }
        if let Some(v) = self.batch {
            cfg.batch = v;
        }
        if let Some(v) = self.tabular_batch_per_n {
            cfg.tabular_batch_per_n = v;
        }
        if let Some(v) = self.tabular_pg_max_n {
            cfg.tabular_pg_max_n = v;
        }
        if let Some(v) = self.eps {
            cfg.eps = v;
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

pub fn run(a: SweepArgs) -> anyhow::Result<()> {
    let cfg = a.config()?;
    sweep::check_out_dir(&a.out)?;
    if a.png || cfg!(feature = "png") {
        sweep::plots::load_font(&a.font)?;
    }
    let formats = Formats {
        svg: true,
        png: a.png,
    };
    if a.replot {
        say!("rewrote from {}:", a.out.join("runs.csv").display());
        let files = sweep::replot(&a.out, formats, cfg.eps)?;
        for f in &files {
            say!("  {}", f.display());
        }
        return remove_stale_plots(&a.out, &files);
    }
    let ck = sweep::checkpoint::SweepCheckpoint::new(&a.out);
    if a.resume && !ck.exists() {
        super::warn(&format!(
            "--resume: no checkpoint in {}; starting from the beginning",
            ck.dir.display()
        ));
    } else if !a.resume && ck.exists() {
        super::warn(&format!(
            "starting over: discarding the checkpoint of an earlier sweep in {} (pass --resume to continue it)",
            ck.dir.display()
        ));
    }
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
        .map_err(|e| anyhow::anyhow!("cannot install the Ctrl-C handler: {e}"))?;
    let opt = SweepOptions {
        out: a.out.clone(),
        cache: a.cache.clone(),
        mode: if a.one_by_one {
            Mode::OneByOne
        } else {
            Mode::Batched
        },
        formats,
        compare: a.compare,
        persist: SweepPersist {
            every: a.checkpoint_every,
            resume: a.resume,
            interrupt: Some(interrupt),
        },
    };
    let n_games = sweep::games(&cfg).len();
    esay!(
        "sweep: {} ({}), β ∈ {:?}, {}; games cached in {}",
        super::count(n_games as u64, "game"),
        super::count(cfg.families.len() as u64, "family"),
        cfg.betas,
        super::count(cfg.algos.len() as u64, "algorithm"),
        a.cache.display()
    );
    let report = sweep::run(&cfg, &opt, &mut |line| esay!("{line}"))?;
    let nash: Vec<_> = report
        .summary
        .iter()
        .filter(|r| r.algo == "nash-mp" && r.oracle == Oracle::Exact)
        .collect();
    let worst = nash
        .iter()
        .filter_map(|r| r.worst_ratio)
        .fold(f64::NAN, f64::max);
    say!(
        "{}, {} in {:.1}s ({:.1}s solving; {} operator vectors in {} passes)",
        super::count(report.games as u64, "game"),
        super::count(report.runs as u64, "run"),
        report.wall_seconds,
        report.solve_seconds,
        report.stats.vectors,
        report.stats.passes
    );
    if !nash.is_empty() {
        if worst.is_finite() {
            say!("nash-mp: worst kl_star / bound over all runs = {worst:.6}");
        } else {
            say!("nash-mp: no iterate with a bound ≥ 1e-11 to compare kl_star with");
        }
    }
    let mut families: Vec<&str> = report.summary.iter().map(|r| r.family.as_str()).collect();
    families.dedup();
    for f in families {
        let rows = report.summary.iter().filter(|r| r.family == f);
        if rows.clone().all(|r| r.final_kl_star == Some(0.0)) {
            say!(
                "{f}: every run starts at π* (KL(π*‖π_0) = 0), so there is nothing to contract \
                 and no rate; a noise-free cyclic game's π* is the uniform reference: give --noise"
            );
        }
    }
    say!("wrote into {}:", a.out.display());
    for f in &report.files {
        say!("  {}", f.display());
    }
    remove_stale_plots(&a.out, &report.files)?;
    let batching = a.out.join("batching.csv");
    if !report.files.contains(&batching) {
        remove_stale(&[batching])?;
    }
    Ok(())
}

/// Removes the plots an earlier sweep left in `OUT/plots/` that this one did not draw (another
/// grid's families or β), so that every figure there belongs to the latest results.
fn remove_stale_plots(out: &Path, written: &[PathBuf]) -> anyhow::Result<()> {
    let dir = out.join("plots");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    let mut stale: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "svg" || e == "png"))
        .filter(|p| !written.contains(p))
        .collect();
    stale.sort();
    remove_stale(&stale)
}

fn remove_stale(stale: &[PathBuf]) -> anyhow::Result<()> {
    let mut removed = Vec::new();
    for p in stale {
        match std::fs::remove_file(p) {
            Ok(()) => removed.push(p.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(crate::Error::io(p, e).into()),
        }
    }
    if !removed.is_empty() {
        super::warn(&format!(
            "removed {} from an earlier sweep (not written by this one)",
            removed.join(", ")
        ));
    }
    Ok(())
}
