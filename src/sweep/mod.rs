//! The size sweep (`nashmp sweep`): families × sizes × β × policy classes × oracles ×
//! algorithms × seeds, to test whether Nash-MP's rate, and the queries it needs to reach
//! `exploit ≤ ε`, depend on the number of actions.
//!
//! For each (family, n, seed) the game is generated into a cache folder (or reused), `π*` is
//! solved at every β with its certificate, and every (β, algorithm) run is made — all runs on one
//! game advance in lock step through one batched operator application per sub-step
//! ([`lockstep`]). Outputs, in one folder: `runs.csv`, `summary.csv`, `summary.md`, `sweep.json`
//! (configuration, equilibrium certificates, timings, batching statistics) and `plots/`.
//!
//! `runs.csv`, `summary.csv` and `summary.md` are byte-identical for any thread count, whether
//! or not the sweep was interrupted and resumed, and to a sweep run one by one (`--one-by-one`):
//! every batched product is the bits of its single apply, so how the lock step groups vectors
//! into passes (including OMWU's prefetch, [`lookahead`]) never shows in the results.
//!
//! **Interruptions.** Every completed game, and the runs of the game in progress (every
//! [`SweepPersist::every`] iterations, and when the interrupt flag is raised, e.g. by Ctrl-C), are
//! saved in `OUT/checkpoint/` ([`checkpoint`]); [`SweepPersist::resume`] continues from there.
//! On an interrupt the sweep saves and returns [`Error::Interrupted`]; the folder is removed
//! once the sweep completes. The timings in `sweep.json` and `batching.csv` of a resumed sweep
//! cover only what ran after the resume.

pub mod cache;
pub mod checkpoint;
pub mod config;
pub mod lockstep;
pub mod lookahead;
pub mod plots;
pub mod record;
pub mod runner;
pub mod summary;

pub use config::{Preset, SweepConfig};
pub use runner::Mode;

use crate::error::{Error, Result};
use crate::io::atomic::{self, AtomicFile};
use cache::GameSpec;
use checkpoint::{GameCheckpoint, SavedGame, SweepCheckpoint};
use runner::{GameEnd, GamePersist};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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
    pub persist: SweepPersist,
}

/// Checkpoints, resume and interruption of a sweep (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct SweepPersist {
    /// Save the state of every run in progress after every `K`-th iteration.
    pub every: Option<u64>,
    /// Continue from `OUT/checkpoint/` (start afresh if there is none).
    pub resume: bool,
    /// When set (e.g. by a SIGINT handler), the sweep saves and returns [`Error::Interrupted`].
    pub interrupt: Option<Arc<AtomicBool>>,
}

/// Every setting that affects a sweep's results, one `key=value` per line (floats in their
/// shortest exact form), so that a refused resume names what changed.
pub fn fingerprint(cfg: &SweepConfig, mode: Mode) -> String {
    let names = |v: &[crate::algo::AlgoKind]| -> Vec<&str> { v.iter().map(|k| k.name()).collect() };
    let families: Vec<String> = cfg
        .families
        .iter()
        .map(|&f| cache::family_name(f))
        .collect();
    format!(
        "families={families:?}\nsizes={:?}\nstructured_sizes={:?}\nbetas={:?}\nalgos={:?}\n\
         large_algos={:?}\nseeds={:?}\niters={:?}\nlarge_max_iters={:?}\nparams={}\nmode={mode:?}\n\
         policies={:?}\noracles={:?}\nbatch={}\ntabular_batch_per_n={:?}\ntabular_pg_max_n={}\n",
        cfg.sizes,
        cfg.structured_sizes,
        cfg.betas,
        names(&cfg.algos),
        cfg.large_algos.as_deref().map(names),
        cfg.seeds,
        cfg.iters,
        cfg.large_max_iters,
        serde_json::to_string(&cfg.params).expect("params serialise"),
        cfg.policies,
        cfg.oracles,
        cfg.batch,
        cfg.tabular_batch_per_n,
        cfg.tabular_pg_max_n,
    )
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
// Over 80 lines: the sweep's script, in order (outputs opened, checkpoint checked, each game
// generated, run or picked up, its rows appended, then summary, plots and record); each step is
// a call, and splitting the sequence would only pass its open files around.
pub fn run(
    cfg: &SweepConfig,
    opt: &SweepOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<SweepReport> {
    cfg.validate()?;
    let persist = &opt.persist;
    if persist.every == Some(0) {
        return Err(Error::Param("--checkpoint-every must be at least 1".into()));
    }
    let wall = Instant::now();
    std::fs::create_dir_all(&opt.out).map_err(|e| Error::io(&opt.out, e))?;
    let ck = SweepCheckpoint::new(&opt.out);
    let fp = fingerprint(cfg, opt.mode);
    let resuming = persist.resume && ck.exists();
    if resuming {
        ck.check(&fp)?;
    } else {
        ck.start(&fp)?;
    }
    let interrupt = persist.interrupt.as_deref();
    let interrupted = || interrupt.is_some_and(|f| f.load(Ordering::Relaxed));
    let runs_path = opt.out.join("runs.csv");
    let mut runs_csv = AtomicFile::create(&runs_path)?;
    writeln!(runs_csv, "{}", summary::runs_header()).map_err(|e| Error::io(&runs_path, e))?;
    let specs = games(cfg);
    let mut all = Vec::new();
    let mut per_game = Vec::new();
    let mut stats = lockstep::BatchStats::default();
    let mut solve_seconds = 0.0;
    let mut compare_rows = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        if interrupted() {
            return Err(Error::Interrupted(ck.dir.clone()));
        }
        let t = Instant::now();
        let (path, fresh) = spec.ensure(&opt.cache)?;
        let gen_s = t.elapsed().as_secs_f64();
        let game_fp = crate::run::fingerprint::game_file(&path)?;
        let (g, resumed) = match ck.load_game(i, &game_fp, spec)? {
            Some(g) => (g, true),
            None => (
                solve_game(&path, *spec, cfg, opt, &ck, i, &game_fp)?
                    .ok_or_else(|| Error::Interrupted(ck.dir.clone()))?,
                false,
            ),
        };
        let g = if resumed {
            g
        } else {
            let g = SavedGame {
                generated: fresh,
                generate_seconds: gen_s,
                ..g
            };
            ck.save_game(i, &game_fp, &g, spec)?;
            g
        };
        if let Some(row) = &g.compare {
            compare_rows.push(row.clone());
        }
        for r in &g.runs {
            summary::write_runs(&mut runs_csv, r)?;
        }
        let head = format!(
            "[{}/{}] {} n={} seed={}:",
            i + 1,
            specs.len(),
            spec.family_name(),
            spec.n,
            spec.seed
        );
        if resumed {
            progress(&format!(
                "{head} {} runs, done before the interruption (from {})",
                g.runs.len(),
                ck.dir.display()
            ));
        } else {
            progress(&format!(
                "{head} {} {:.1}s, solved {} runs in {:.1}s ({} operator vectors in {} passes)",
                if fresh {
                    "generated in"
                } else {
                    "cached, opened in"
                },
                gen_s,
                g.runs.len(),
                g.solve_seconds,
                g.stats.vectors,
                g.stats.passes,
            ));
        }
        stats.passes += g.stats.passes;
        stats.vectors += g.stats.vectors;
        solve_seconds += g.solve_seconds;
        per_game.push(serde_json::json!({
            "game": spec,
            "file": g.file,
            "generated": g.generated,
            "generate_seconds": g.generate_seconds,
            "solve_seconds": g.solve_seconds,
            "batching": g.stats,
            "equilibria": g.equilibria,
            "resumed": resumed,
        }));
        all.extend(g.runs);
    }
    runs_csv.commit()?;
    let rows = summary::summarise(&all, cfg.eps);
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
        "checkpoint": { "every": persist.every, "resumed": resuming },
        "memory": crate::run::memory::snapshot(),
    });
    let json = opt.out.join("sweep.json");
    let text = serde_json::to_string_pretty(&record).expect("sweep record serialises");
    atomic::write_all(&json, text.as_bytes())?;
    files.push(json);
    ck.remove()?;
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

/// Solves game `i` (file `path`), saving into and continuing from `ck`; `None` if interrupted.
fn solve_game(
    path: &Path,
    spec: GameSpec,
    cfg: &SweepConfig,
    opt: &SweepOptions,
    ck: &SweepCheckpoint,
    i: usize,
    game_fp: &str,
) -> Result<Option<SavedGame>> {
    let op = crate::game::open(path, None)?;
    let gck = GameCheckpoint {
        dir: ck.game_dir(i),
        game: game_fp.to_string(),
        n: op.n(),
    };
    let interrupt = opt.persist.interrupt.as_deref();
    let persist = GamePersist {
        ck: Some(&gck),
        every: opt.persist.every,
        interrupt,
    };
    let o = match runner::run_game(op.as_ref(), spec, cfg, opt.mode, persist)? {
        GameEnd::Done(o) => o,
        GameEnd::Interrupted => return Ok(None),
    };
    let compare = if opt.compare {
        let timing = GamePersist {
            interrupt,
            ..GamePersist::default()
        };
        let single = match runner::run_game(op.as_ref(), spec, cfg, Mode::OneByOne, timing)? {
            GameEnd::Done(s) => s,
            GameEnd::Interrupted => return Ok(None),
        };
        Some(format!(
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
        ))
    } else {
        None
    };
    Ok(Some(SavedGame {
        file: path.to_path_buf(),
        generated: false,
        generate_seconds: 0.0,
        solve_seconds: o.seconds,
        stats: o.stats,
        compare,
        equilibria: o.equilibria,
        runs: o.runs,
    }))
}

/// Re-summarises and re-draws a finished sweep from its `runs.csv` (no solving), with the
/// exploitability target `eps`; returns the files written.
pub fn replot(out: &Path, formats: plots::Formats, eps: f64) -> Result<Vec<PathBuf>> {
    let runs = summary::read_runs(&out.join("runs.csv"), crate::gen::Params::default())?;
    let rows = summary::summarise(&runs, eps);
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
