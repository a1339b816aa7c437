//! The size sweep (`nashmp sweep`): families × sizes × β × algorithms × seeds, to test whether
//! Nash-MP's rate depends on the number of actions.
//!
//! For each (family, n, seed) the game is generated into a cache folder (or reused), `π*` is
//! solved at every β with its certificate, and every (β, algorithm) run is made — all runs on one
//! game advance in lock step through one batched operator application per sub-step
//! ([`lockstep`]). Outputs, in one folder: `runs.csv`, `summary.csv`, `summary.md`, `sweep.json`
//! (configuration, equilibrium certificates, timings, batching statistics) and `plots/`.
//!
//! `runs.csv`, `summary.csv` and `summary.md` are byte-identical for any thread count; they may
//! differ in the last bits from a sweep run one by one (`--one-by-one`), whose single-vector
//! kernel sums in a different order from the batched one.

pub mod cache;
pub mod config;
pub mod lockstep;
pub mod plots;
pub mod runner;
pub mod summary;

pub use config::{Preset, SweepConfig};
pub use runner::Mode;

use crate::error::{Error, Result};
use crate::io::atomic::{self, AtomicFile};
use cache::GameSpec;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where a sweep writes and what it draws.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    pub out: PathBuf,
    pub cache: PathBuf,
    pub mode: Mode,
    pub formats: plots::Formats,
    /// Also run every game one by one and write `batching.csv` (timings and differences).
    pub compare: bool,
}

/// What a sweep wrote and measured.
pub struct SweepReport {
    pub files: Vec<PathBuf>,
    pub games: usize,
    pub runs: usize,
    pub wall_seconds: f64,
    /// Seconds spent solving (equilibria and runs), excluding generation and output.
    pub solve_seconds: f64,
    pub stats: lockstep::BatchStats,
    pub summary: Vec<summary::SummaryRow>,
}

/// The games of a sweep, in a fixed order.
pub fn games(cfg: &SweepConfig) -> Vec<GameSpec> {
    let mut v = Vec::new();
    for &family in &cfg.families {
        for &n in cfg.sizes_of(family) {
            for &seed in &cfg.seeds {
                v.push(GameSpec {
                    family,
                    n,
                    seed,
                    params: cfg.params,
                });
            }
        }
    }
    v
}

/// Runs the sweep, calling `progress` with one line per game.
pub fn run(
    cfg: &SweepConfig,
    opt: &SweepOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<SweepReport> {
    cfg.validate()?;
    let wall = Instant::now();
    std::fs::create_dir_all(&opt.out).map_err(|e| Error::io(&opt.out, e))?;
    let runs_path = opt.out.join("runs.csv");
    let mut runs_csv = AtomicFile::create(&runs_path)?;
    writeln!(runs_csv, "{}", summary::RUNS_HEADER).map_err(|e| Error::io(&runs_path, e))?;
    let specs = games(cfg);
    let mut all = Vec::new();
    let mut per_game = Vec::new();
    let mut stats = lockstep::BatchStats::default();
    let mut solve_seconds = 0.0;
    let mut compare_rows = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let t = Instant::now();
        let (path, fresh) = spec.ensure(&opt.cache)?;
        let gen_s = t.elapsed().as_secs_f64();
        let op = crate::game::open(&path, None)?;
        let o = runner::run_game(op.as_ref(), *spec, cfg, opt.mode)?;
        if opt.compare {
            let single = runner::run_game(op.as_ref(), *spec, cfg, Mode::OneByOne)?;
            compare_rows.push(format!(
                "{},{},{},{},{},{},{:.4},{:.4},{:.3},{:e}",
                spec.family_name(),
                spec.n,
                spec.seed,
                o.runs.len(),
                o.stats.vectors,
                o.stats.passes,
                o.seconds,
                single.seconds,
                single.seconds / o.seconds,
                max_rel_diff(&o.runs, &single.runs),
            ));
        }
        for r in &o.runs {
            summary::write_runs(&mut runs_csv, r)?;
        }
        progress(&format!(
            "[{}/{}] {} n={} seed={}: {} {:.1}s, solved {} runs in {:.1}s ({} operator vectors in {} passes)",
            i + 1,
            specs.len(),
            spec.family_name(),
            spec.n,
            spec.seed,
            if fresh { "generated in" } else { "cached, opened in" },
            gen_s,
            o.runs.len(),
            o.seconds,
            o.stats.vectors,
            o.stats.passes,
        ));
        stats.passes += o.stats.passes;
        stats.vectors += o.stats.vectors;
        solve_seconds += o.seconds;
        per_game.push(serde_json::json!({
            "game": spec,
            "file": path,
            "generated": fresh,
            "generate_seconds": gen_s,
            "solve_seconds": o.seconds,
            "batching": o.stats,
            "equilibria": o.equilibria,
        }));
        all.extend(o.runs);
    }
    runs_csv.commit()?;
    let rows = summary::summarise(&all);
    let sum_csv = opt.out.join("summary.csv");
    summary::write_summary_csv(&sum_csv, &rows)?;
    let sum_md = opt.out.join("summary.md");
    atomic::write_all(&sum_md, summary::summary_markdown(&rows).as_bytes())?;
    let mut files = vec![runs_path, sum_csv, sum_md];
    if opt.compare {
        let p = opt.out.join("batching.csv");
        let text = format!("{BATCHING_HEADER}\n{}\n", compare_rows.join("\n"));
        atomic::write_all(&p, text.as_bytes())?;
        files.push(p);
    }
    files.extend(plots::draw_all(
        &opt.out.join("plots"),
        &all,
        &rows,
        opt.formats,
    )?);
    let wall_seconds = wall.elapsed().as_secs_f64();
    let record = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "config": cfg,
        "mode": match opt.mode { Mode::Batched => "batched", Mode::OneByOne => "one-by-one" },
        "threads": rayon::current_num_threads(),
        "games": per_game,
        "batching": stats,
        "solve_seconds": solve_seconds,
        "wall_seconds": wall_seconds,
        "memory": crate::run::memory::snapshot(),
    });
    let json = opt.out.join("sweep.json");
    let text = serde_json::to_string_pretty(&record).expect("sweep record serialises");
    atomic::write_all(&json, text.as_bytes())?;
    files.push(json);
    Ok(SweepReport {
        files,
        games: specs.len(),
        runs: all.len(),
        wall_seconds,
        solve_seconds,
        stats,
        summary: rows,
    })
}

/// Re-summarises and re-draws a finished sweep from its `runs.csv` (no solving); returns the
/// files written.
pub fn replot(out: &Path, formats: plots::Formats) -> Result<Vec<PathBuf>> {
    let runs = summary::read_runs(&out.join("runs.csv"), crate::gen::Params::default())?;
    let rows = summary::summarise(&runs);
    let sum_csv = out.join("summary.csv");
    summary::write_summary_csv(&sum_csv, &rows)?;
    let sum_md = out.join("summary.md");
    atomic::write_all(&sum_md, summary::summary_markdown(&rows).as_bytes())?;
    let mut files = vec![sum_csv, sum_md];
    files.extend(plots::draw_all(&out.join("plots"), &runs, &rows, formats)?);
    Ok(files)
}

const BATCHING_HEADER: &str = "family,n,seed,runs,vectors,passes,batched_seconds,one_by_one_seconds,one_by_one_over_batched,max_rel_diff_kl_star";

/// The largest relative difference of `kl_star` between two executions of the same runs, over
/// iterates where both are at least `1e-9` (below, the storage precision dominates).
fn max_rel_diff(a: &[runner::RunResult], b: &[runner::RunResult]) -> f64 {
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.records.iter().zip(&y.records))
        .filter_map(|(x, y)| match (x.m.kl_star, y.m.kl_star) {
            (Some(p), Some(q)) if p >= 1e-9 && q >= 1e-9 => Some((p - q).abs() / q),
            _ => None,
        })
        .fold(0.0, f64::max)
}

/// Checks that `path` is a folder we may write into (exists as a folder or can be created).
pub fn check_out_dir(path: &Path) -> Result<()> {
    if path.exists() && !path.is_dir() {
        return Err(Error::Param(format!(
            "{} exists and is not a folder",
            path.display()
        )));
    }
    Ok(())
}
