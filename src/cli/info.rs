use crate::game;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// The game (.npy or nashmp container).
    pub game: PathBuf,
    /// Skew tolerance |P[i][j] + P[j][i] − 1| (default 1e-9 for float64/u16, 1e-6 for float32).
    #[arg(long)]
    pub tol: Option<f64>,
}

pub fn run(a: InfoArgs) -> anyhow::Result<()> {
    let g = game::open_unchecked(&a.game)?;
    println!("game:   {}", a.game.display());
    println!("n:      {}", g.n());
    println!("layout: {}", g.layout());
    println!("bytes:  {}", g.stored_bytes());
    if let Some(c) = crate::pairwise::sidecar::read_coverage(&a.game)? {
        println!("{}", c.summary());
    }
    match g.validate(a.tol) {
        Ok(()) => {
            println!("valid:  yes");
            Ok(())
        }
        Err(e) => {
            println!("valid:  no");
            Err(e.into())
        }
    }
}
