use crate::game;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// The game: a .npy matrix or a nashmp container (.nmp) of any layout.
    pub game: PathBuf,
    /// Skew tolerance |P[i][j] + P[j][i] − 1| (default 1e-9 for float64/u16, 1e-6 for float32).
    #[arg(long = "skew-tol", allow_negative_numbers = true)]
    pub skew_tol: Option<f64>,
    /// Deprecated spelling of --skew-tol.
    #[arg(
        long,
        hide = true,
        conflicts_with = "skew_tol",
        allow_negative_numbers = true
    )]
    pub tol: Option<f64>,
    /// Print a JSON summary on stdout instead of the human-readable report.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: InfoArgs) -> anyhow::Result<()> {
    if a.tol.is_some() {
        super::deprecated("info --tol", "--skew-tol");
    }
    let skew_tol = a.skew_tol.or(a.tol);
    if a.json {
        super::silence();
    }
    super::check_tol("--skew-tol", skew_tol)?;
    let g = game::open_unchecked(&a.game)?;
    let coverage = crate::pairwise::sidecar::read_coverage(&a.game)?;
    say!("game:   {}", a.game.display());
    say!("n:      {}", g.n());
    say!("layout: {}", g.info().layout);
    say!("bytes:  {}", g.info().stored_bytes);
    if let Some(c) = &coverage {
        say!("{}", c.summary());
    }
    let valid = g.validate(skew_tol);
    if a.json {
        super::print_json(&serde_json::json!({
            "game": a.game,
            "n": g.n(),
            "layout": g.info().layout,
            "bytes": g.info().stored_bytes,
            "coverage": coverage,
            "valid": valid.is_ok(),
            "error": valid.as_ref().err().map(|e| e.to_string()),
        }));
    }
    match valid {
        Ok(()) => {
            say!("valid:  yes");
            Ok(())
        }
        Err(e) => {
            say!("valid:  no");
            Err(e.into())
        }
    }
}
