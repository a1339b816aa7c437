use crate::io::output::{self, Format};
use crate::io::{array, npy::DType};
use crate::pairwise::estimate::{self, Counts, Coverage, EstimateParams, Fill};
use crate::pairwise::{log, sidecar};
use std::path::PathBuf;

/// Which CSV columns hold a judgement (shared by `import-pairwise` and `rank`).
#[derive(clap::Args, Debug, Clone)]
pub struct ColumnArgs {
    /// Column of the left item's name (default `left`, or `model_a` in an arena log whose
    /// header has `model_a,model_b,winner`).
    #[arg(long)]
    pub left: Option<String>,
    /// Column of the right item's name (default `right`, or `model_b` in an arena log).
    #[arg(long)]
    pub right: Option<String>,
    /// Column of the winner: an item name, left/right, model_a/model_b, or tie… (default
    /// `winner`).
    #[arg(long)]
    pub winner: Option<String>,
}

impl ColumnArgs {
    /// The columns given, else those `recorded` at import (GAME.coverage.json), else the
    /// defaults (with arena columns detected from the header).
    pub fn columns(&self, recorded: Option<&log::Columns>) -> log::Columns {
        let d = recorded.cloned().unwrap_or_default();
        log::Columns {
            left: self.left.clone().unwrap_or(d.left),
            right: self.right.clone().unwrap_or(d.right),
            winner: self.winner.clone().unwrap_or(d.winner),
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct ImportPairwiseArgs {
    /// The judgement log (CSV with a header row).
    pub log: PathBuf,
    /// Output game (a float64 .npy; its folder is created if missing); GAME.items.txt and
    /// GAME.coverage.json are written beside it.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub columns: ColumnArgs,
    /// Pseudo-count k of the Beta(k, k) prior: P[i][j] = (w_ij + k) / (n_ij + 2k).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub smoothing: f64,
    /// How pairs never compared are filled: 1/2, or a Bradley–Terry fit.
    #[arg(long, value_enum, default_value = "half")]
    pub fill: Fill,
}

pub fn run(a: ImportPairwiseArgs) -> anyhow::Result<()> {
    output::check(
        &a.out,
        Format::Npy,
        "the estimated game (a dense float64 matrix)",
    )?;
    let params = EstimateParams::new(a.smoothing, a.fill)?;
    let parsed = log::read(&a.log, &a.columns.columns(None))?;
    let n = parsed.items.len();
    let counts = Counts::new(n, &parsed.judgements);
    let p = estimate::estimate(&counts, params);
    let mut coverage = Coverage::new(&counts, params);
    coverage.columns = Some(parsed.columns.clone());
    say!(
        "read {} of {} from {}",
        super::count(parsed.judgements.len() as u64, "judgement"),
        super::count(n as u64, "item"),
        a.log.display()
    );
    if parsed.columns != log::Columns::default() {
        let c = &parsed.columns;
        say!(
            "columns: {}, {}, {} (recorded in {})",
            c.left,
            c.right,
            c.winner,
            sidecar::coverage_path(&a.out).display()
        );
    }
    say!("{}", coverage.summary());
    sidecar::write_items(&a.out, &parsed.items)?;
    sidecar::write_coverage(&a.out, &coverage)?;
    array::write_matrix(&a.out, n, DType::F64, |i, row| {
        row.copy_from_slice(&p[i * n..(i + 1) * n]);
        Ok(())
    })?;
    say!(
        "wrote {} ({n}x{n} float64), {}, {}",
        a.out.display(),
        sidecar::items_path(&a.out).display(),
        sidecar::coverage_path(&a.out).display()
    );
    Ok(())
}
