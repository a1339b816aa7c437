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
}

pub fn run(a: InfoArgs) -> anyhow::Result<()> {
    if a.tol.is_some() {
        super::deprecated("info --tol", "--skew-tol");
    }
    let skew_tol = a.skew_tol.or(a.tol);
    super::check_tol("--skew-tol", skew_tol)?;
    let g = game::open_unchecked(&a.game)?;
    println!("game:   {}", a.game.display());
    println!("n:      {}", g.n());
    println!("layout: {}", g.layout());
    println!("bytes:  {}", g.stored_bytes());
    if let Some(c) = crate::pairwise::sidecar::read_coverage(&a.game)? {
        println!("{}", c.summary());
    }
    match g.validate(skew_tol) {
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
