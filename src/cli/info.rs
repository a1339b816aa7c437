use crate::game::{DenseGame, PreferenceOperator};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// The game (.npy).
    pub game: PathBuf,
    /// Skew tolerance |P[i][j] + P[j][i] − 1| (default 1e-9 for float64, 1e-6 for float32).
    #[arg(long)]
    pub tol: Option<f64>,
}

pub fn run(a: InfoArgs) -> anyhow::Result<()> {
    let g = DenseGame::open(&a.game)?;
    println!("game:   {}", a.game.display());
    println!("n:      {}", g.n());
    println!("layout: dense");
    println!("dtype:  {}", g.dtype().name());
    println!("bytes:  {}", g.data_bytes());
    if let Some(c) = crate::pairwise::sidecar::read_coverage(&a.game)? {
        println!("{}", c.summary());
    }
    let tol = a.tol.unwrap_or(DenseGame::default_tol(g.dtype()));
    match g.validate(Some(tol)) {
        Ok(()) => {
            println!("valid:  yes (finite, in [0,1], |P + Pᵀ − 1| ≤ {tol:e})");
            Ok(())
        }
        Err(e) => {
            println!("valid:  no");
            Err(e.into())
        }
    }
}
