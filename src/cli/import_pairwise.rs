use crate::io::output::{self, Format};
use crate::io::{array, npy::DType};
use crate::pairwise::estimate::{self, Counts, Coverage, EstimateParams, Fill};
use crate::pairwise::{log, sidecar};
use std::path::PathBuf;

/// Which CSV columns hold a judgement (shared by `import-pairwise` and `rank`).
#[derive(clap::Args, Debug, Clone)]
pub struct ColumnArgs {
    /// Column of the left item's name.
    #[arg(long, default_value = "left")]
    pub left: String,
    /// Column of the right item's name.
    #[arg(long, default_value = "right")]
    pub right: String,
    /// Column of the winner: an item name, left/right, model_a/model_b, or tie….
    #[arg(long, default_value = "winner")]
    pub winner: String,
}

impl ColumnArgs {
    pub fn columns(&self) -> log::Columns {
        log::Columns {
            left: self.left.clone(),
            right: self.right.clone(),
            winner: self.winner.clone(),
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
    let parsed = log::read(&a.log, &a.columns.columns())?;
    let n = parsed.items.len();
    let counts = Counts::new(n, &parsed.judgements);
    let p = estimate::estimate(&counts, params);
    let coverage = Coverage::new(&counts, params);
    println!(
        "read {} judgements of {n} items from {}",
        parsed.judgements.len(),
        a.log.display()
    );
    println!("{}", coverage.summary());
    sidecar::write_items(&a.out, &parsed.items)?;
    sidecar::write_coverage(&a.out, &coverage)?;
    array::write_matrix(&a.out, n, DType::F64, |i, row| {
        row.copy_from_slice(&p[i * n..(i + 1) * n]);
        Ok(())
    })?;
    println!(
        "wrote {} ({n}x{n} float64), {}, {}",
        a.out.display(),
        sidecar::items_path(&a.out).display(),
        sidecar::coverage_path(&a.out).display()
    );
    Ok(())
}
