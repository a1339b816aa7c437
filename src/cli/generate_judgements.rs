use crate::game;
use crate::io::output::{self, Format};
use crate::pairwise::{sidecar, synth};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct GenerateJudgementsArgs {
    /// The game to draw from (a .npy matrix or a .nmp container); item names from
    /// GAME.items.txt if present, else item0, item1, ….
    pub game: PathBuf,
    /// Number of judgements.
    #[arg(long)]
    pub count: u64,
    /// Seed of the one stream the judgements are drawn from (same seed, same log).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output CSV `left,right,winner` (written atomically; its folder is created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(a: GenerateJudgementsArgs) -> anyhow::Result<()> {
    output::check(&a.out, Format::Csv, "a judgement log")?;
    if a.count == 0 {
        anyhow::bail!(
            "invalid parameter: --count must be at least 1 (import-pairwise needs a judgement)"
        );
    }
    let g = game::open(&a.game, None)?;
    let items = sidecar::read_items(&a.game, g.n())?;
    synth::write_log(g.as_ref(), &items, a.count, a.seed, &a.out)?;
    say!(
        "wrote {} ({} of {}, seed {})",
        a.out.display(),
        super::count(a.count, "judgement"),
        super::count(g.n() as u64, "item"),
        a.seed
    );
    Ok(())
}
