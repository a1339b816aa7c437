use super::import_pairwise::ColumnArgs;
use crate::error::Error;
use crate::game::{self, PreferenceOperator};
use crate::io::atomic::AtomicFile;
use crate::pairwise::bootstrap::{self, BootstrapParams, Intervals};
use crate::pairwise::estimate::{self, Counts, EstimateParams, Fill};
use crate::pairwise::rank::{self, Ranked};
use crate::pairwise::{log, sidecar};
use std::path::{Path, PathBuf};

/// Largest difference allowed between the game and the estimate recomputed from the log (the
/// float32 rounding of a converted game is far below it).
const MATCH_TOL: f64 = 1e-6;

#[derive(clap::Args, Debug)]
pub struct RankArgs {
    /// The game (a .npy matrix or a .nmp container); item names from GAME.items.txt if present.
    pub game: PathBuf,
    /// Regularisation strength β > 0 of the ranking equilibrium (uniform reference).
    #[arg(long, allow_negative_numbers = true)]
    pub beta: f64,
    /// Bootstrap replicates (needs --log, the judgements the game was imported from).
    #[arg(long, requires = "log")]
    pub bootstrap: Option<usize>,
    /// The judgement log to resample.
    #[arg(long, requires = "bootstrap")]
    pub log: Option<PathBuf>,
    #[command(flatten)]
    pub columns: ColumnArgs,
    /// Bootstrap seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Confidence level of the percentile intervals.
    #[arg(long, default_value_t = 0.95, allow_negative_numbers = true)]
    pub level: f64,
    /// Smoothing used to re-estimate replicates (default: GAME.coverage.json's, else 1).
    #[arg(long, allow_negative_numbers = true)]
    pub smoothing: Option<f64>,
    /// Fill rule used to re-estimate replicates (default: GAME.coverage.json's, else half).
    #[arg(long, value_enum)]
    pub fill: Option<Fill>,
    /// Print only the first K rows of the table (the --out file has every item).
    #[arg(long)]
    pub top: Option<usize>,
    /// Smallest β of the von Neumann path 1, 0.3, 0.1, … .
    #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true)]
    pub vn_floor: f64,
    /// Also write the table as CSV (atomically; the name must end in .csv, its folder is
    /// created if missing).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print a JSON summary (every item with its probability, intervals and von Neumann
    /// probability) on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: RankArgs) -> anyhow::Result<()> {
    for (name, v) in [("--beta", a.beta), ("--vn-floor", a.vn_floor)] {
        if !(v > 0.0 && v.is_finite()) {
            anyhow::bail!("invalid parameter: {name} must be finite and > 0, got {v}");
        }
    }
    if a.vn_floor > 1.0 {
        anyhow::bail!(
            "invalid parameter: --vn-floor {} is above the von Neumann path's start, β = 1; give a value in (0, 1]",
            a.vn_floor
        );
    }
    if a.top == Some(0) {
        anyhow::bail!("invalid parameter: --top must be at least 1 (omit it to print every item)");
    }
    if let Some(out) = &a.out {
        crate::io::output::check(out, crate::io::output::Format::Csv, "the ranking table")?;
    }
    if a.json {
        super::silence();
    }
    let g = game::open(&a.game, None)?;
    let n = g.n();
    let items = sidecar::read_items(&a.game, n)?;
    let point = rank::rank_at(g.as_ref(), a.beta, None)?;
    let vn = rank::von_neumann(g.as_ref(), a.vn_floor)?;
    let intervals = match (a.bootstrap, &a.log) {
        (Some(r), Some(path)) => Some(run_bootstrap(&a, g.as_ref(), &items, r, path, &point)?),
        _ => None,
    };
    say!(
        "game: {} ({}), β = {}, uniform reference",
        a.game.display(),
        super::count(n as u64, "item"),
        a.beta
    );
    say!(
        "equilibrium: exploit0 {} (unregularised), residual {}, {} iterations, {}",
        super::sci(point.exploit0),
        super::sci(point.residual),
        point.iterations,
        super::word(&point.stop)
    );
    if let Some(iv) = &intervals {
        say!(
            "bootstrap: {} replicates, seed {}, {}% percentile intervals",
            iv.replicates,
            a.seed,
            100.0 * iv.level
        );
    }
    print_table(&items, &point, intervals.as_ref(), a.top.unwrap_or(n));
    let last = vn.last().unwrap_or(&point);
    let top: Vec<String> = rank::top(last, 10, 0.99)
        .iter()
        .map(|&i| format!("{} {:.4}", items[i], last.probs[i]))
        .collect();
    say!(
        "von Neumann winner (β path 1 → {}, {} solves, warm-started): exploit0 {}; top: {}",
        last.beta,
        vn.len(),
        super::sci(last.exploit0),
        top.join(", ")
    );
    if let Some(out) = &a.out {
        write_csv(out, &items, &point, intervals.as_ref(), last)?;
        say!("wrote {}", out.display());
    }
    if a.json {
        let iv = intervals.as_ref();
        let rows: Vec<serde_json::Value> = point
            .order
            .iter()
            .enumerate()
            .map(|(pos, &i)| {
                serde_json::json!({
                    "rank": pos + 1,
                    "item": items[i],
                    "probability": point.probs[i],
                    "ci": iv.map(|v| [v.prob[i].0, v.prob[i].1]),
                    "rank_ci": iv.map(|v| [v.rank[i].0, v.rank[i].1]),
                    "von_neumann": last.probs[i],
                })
            })
            .collect();
        super::print_json(&serde_json::json!({
            "game": a.game,
            "beta": a.beta,
            "equilibrium": {
                "exploit0": point.exploit0,
                "residual": point.residual,
                "iterations": point.iterations,
                "stop": point.stop,
            },
            "bootstrap": iv.map(|v| serde_json::json!({
                "replicates": v.replicates, "level": v.level, "seed": a.seed,
            })),
            "items": rows,
            "von_neumann": {
                "beta": last.beta,
                "solves": vn.len(),
                "exploit0": last.exploit0,
            },
            "file": a.out,
        }));
    }
    Ok(())
}

/// Resamples the log; first checks that it is the log the game was imported from.
fn run_bootstrap(
    a: &RankArgs,
    g: &dyn PreferenceOperator,
    items: &[String],
    replicates: usize,
    log_path: &Path,
    point: &Ranked,
) -> anyhow::Result<Intervals> {
    let params = BootstrapParams::new(replicates, a.seed, a.level)?;
    let recorded = sidecar::read_coverage(&a.game)?;
    let estimator = EstimateParams::new(
        a.smoothing
            .or(recorded.as_ref().map(|c| c.smoothing))
            .unwrap_or(1.0),
        a.fill
            .or(recorded.as_ref().map(|c| c.fill))
            .unwrap_or(Fill::Half),
    )?;
    let cols = a
        .columns
        .columns(recorded.as_ref().and_then(|c| c.columns.as_ref()));
    let parsed = log::read(log_path, &cols)?;
    let mismatch = |reason: String| Error::LogMismatch {
        log: log_path.into(),
        game: a.game.clone(),
        reason,
    };
    if parsed.items != items {
        let k = parsed
            .items
            .iter()
            .zip(items)
            .take_while(|(x, y)| x == y)
            .count();
        let at = |v: &[String]| v.get(k).map_or("(none)", String::as_str).to_string();
        return Err(mismatch(format!(
            "the log has {} items and the game {}; in sorted order they first differ at index {k}: {:?} in the log, {:?} in the game",
            parsed.items.len(),
            items.len(),
            at(&parsed.items),
            at(items),
        ))
        .into());
    }
    let n = items.len();
    let p = estimate::estimate(&Counts::new(n, &parsed.judgements), estimator);
    for i in 0..n {
        for j in 0..n {
            let (from_log, in_game) = (p[i * n + j], g.entry(i, j));
            if (from_log - in_game).abs() > MATCH_TOL {
                return Err(mismatch(format!(
                    "P[{i}][{j}] is {in_game} in the game but {from_log} from the log with smoothing {} and fill {}; pass the log, --smoothing and --fill used by import-pairwise",
                    estimator.smoothing(),
                    super::word(&estimator.fill())
                ))
                .into());
            }
        }
    }
    Ok(bootstrap::run(
        n,
        &parsed.judgements,
        estimator,
        point.beta,
        &point.theta,
        params,
    )?)
}

fn print_table(items: &[String], point: &Ranked, iv: Option<&Intervals>, rows: usize) {
    let w = items
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    match iv {
        Some(iv) => say!(
            "{:>4}  {:<w$}  {:>11}  {:>21}  {:>7}",
            "rank",
            "item",
            "probability",
            format!("{}% interval", 100.0 * iv.level),
            "rank CI"
        ),
        None => say!("{:>4}  {:<w$}  {:>11}", "rank", "item", "probability"),
    }
    for (pos, &i) in point.order.iter().take(rows).enumerate() {
        let head = format!("{:>4}  {:<w$}  {:>11.6}", pos + 1, items[i], point.probs[i]);
        match iv {
            Some(iv) => {
                let ((lo, hi), (best, worst)) = (iv.prob[i], iv.rank[i]);
                say!(
                    "{head}  [{lo:>8.6}, {hi:>8.6}]  {:>7}",
                    format!("{best}-{worst}")
                );
            }
            None => say!("{head}"),
        }
    }
    if rows < items.len() {
        say!("… {} more (see --out)", items.len() - rows);
    }
}

/// One row per item in rank order: `rank,item,probability,ci_low,ci_high,rank_low,rank_high,
/// von_neumann` (interval columns empty without a bootstrap).
fn write_csv(
    path: &Path,
    items: &[String],
    point: &Ranked,
    iv: Option<&Intervals>,
    vn: &Ranked,
) -> crate::Result<()> {
    let io = |e: csv::Error| Error::io(path, std::io::Error::other(e));
    let mut w = csv::Writer::from_writer(AtomicFile::create(path)?);
    w.write_record([
        "rank",
        "item",
        "probability",
        "ci_low",
        "ci_high",
        "rank_low",
        "rank_high",
        "von_neumann",
    ])
    .map_err(io)?;
    for (pos, &i) in point.order.iter().enumerate() {
        let (ci, rk) = match iv {
            Some(iv) => (
                [num(iv.prob[i].0), num(iv.prob[i].1)],
                [iv.rank[i].0.to_string(), iv.rank[i].1.to_string()],
            ),
            None => Default::default(),
        };
        w.write_record([
            &(pos + 1).to_string(),
            &items[i],
            &num(point.probs[i]),
            &ci[0],
            &ci[1],
            &rk[0],
            &rk[1],
            &num(vn.probs[i]),
        ])
        .map_err(io)?;
    }
    w.into_inner()
        .map_err(|e| Error::io(path, e.into_error()))?
        .commit()
}

/// A probability as the shortest text that reads back to the same `f64`, in scientific
/// notation below 1e-4 (so that 1e-300 is not written with 300 zeros).
fn num(x: f64) -> String {
    if x != 0.0 && x.abs() < 1e-4 {
        format!("{x:e}")
    } else {
        x.to_string()
    }
}
