//! `nashmp generate`: a synthetic game on disk, in any layout.

use super::storage_args::{matrix_format, ElemArg, LayoutArg};
use crate::gen::{self, Family, Params};
use crate::io::container::Elem;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// Game family (see README: formulas and parameters).
    #[arg(value_enum)]
    pub family: Family,
    /// Number of actions.
    #[arg(long)]
    pub n: usize,
    /// Seed: every entry is a pure function of (seed, i, j), so the same seed gives the same
    /// bytes whatever --threads says.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Layout of matrix families (default dense; structured families are always written as
    /// factors).
    #[arg(long, value_enum)]
    pub layout: Option<LayoutArg>,
    /// Entry type of matrix families (default f32).
    #[arg(long, value_enum)]
    pub dtype: Option<ElemArg>,
    /// Skill spread σ ≥ 0 (bradley-terry, mixture; default 1).
    #[arg(long, allow_negative_numbers = true)]
    pub sigma: Option<f64>,
    /// Noise level ε in [0, 1] (cyclic; default 0).
    #[arg(long, allow_negative_numbers = true)]
    pub noise: Option<f64>,
    /// Rank r (disc, mixture: even; low-rank; default 2).
    #[arg(long)]
    pub rank: Option<usize>,
    /// Weight w in [0, 1] of the transitive part (mixture; default 0.5).
    #[arg(long, allow_negative_numbers = true)]
    pub weight: Option<f64>,
    /// Number of types K (block; default 16).
    #[arg(long)]
    pub types: Option<usize>,
    /// Output file: `.npy` for dense f32/f64, `.nmp` (a nashmp container) for packed, u16,
    /// low-rank and block games; its folder is created if missing.
    #[arg(long)]
    pub out: PathBuf,
}

/// The options each family reads (the others are refused, not silently ignored).
pub(crate) fn options_of(family: Family) -> &'static [&'static str] {
    match family {
        Family::Uniform => &[],
        Family::BradleyTerry => &["--sigma"],
        Family::Cyclic => &["--noise"],
        Family::Disc => &["--rank"],
        Family::Mixture => &["--weight", "--sigma", "--rank"],
        Family::LowRank => &["--rank"],
        Family::Block => &["--types"],
    }
}

impl GenerateArgs {
    /// The family's parameters; a family option the family does not read is an error.
    fn params(&self) -> anyhow::Result<Params> {
        let name = gen::family_name(self.family);
        let allowed = options_of(self.family);
        let given = [
            ("--sigma", self.sigma.is_some()),
            ("--noise", self.noise.is_some()),
            ("--rank", self.rank.is_some()),
            ("--weight", self.weight.is_some()),
            ("--types", self.types.is_some()),
        ];
        for (flag, set) in given {
            if set && !allowed.contains(&flag) {
                anyhow::bail!(
                    "invalid parameter: {flag} does not apply to {name} games (its options: {})",
                    if allowed.is_empty() {
                        "none".to_string()
                    } else {
                        allowed.join(", ")
                    }
                );
            }
        }
        if self.family.is_structured() {
            for (flag, set) in [
                ("--layout", self.layout.is_some()),
                ("--dtype", self.dtype.is_some()),
            ] {
                if set {
                    anyhow::bail!(
                        "invalid parameter: {flag} does not apply to {name} games (always \
                         written as their factors, in float64)"
                    );
                }
            }
        }
        let d = Params::default();
        let p = Params {
            sigma: self.sigma.unwrap_or(d.sigma),
            noise: self.noise.unwrap_or(d.noise),
            rank: self.rank.unwrap_or(d.rank),
            weight: self.weight.unwrap_or(d.weight),
            types: self.types.unwrap_or(d.types),
        };
        p.check(self.family)
            .map_err(|e| anyhow::anyhow!("invalid parameter: {name}: {e}"))?;
        Ok(p)
    }
}

pub fn run(a: GenerateArgs) -> anyhow::Result<()> {
    if a.n == 0 {
        anyhow::bail!("invalid parameter: --n must be at least 1");
    }
    let params = a.params()?;
    let format = matrix_format(
        a.layout.unwrap_or(LayoutArg::Dense),
        a.dtype.map_or(Elem::F32, Elem::from),
    )?;
    gen::file::check_target(&a.out, a.family, format)?;
    let t = std::time::Instant::now();
    let total = gen::file::data_bytes(a.family, a.n, params, format)?;
    let bar = super::progress::bytes(total);
    let bytes = gen::file::write_game(&a.out, a.family, a.n, a.seed, params, format, &|d| {
        bar.set_position(d)
    })?;
    bar.finish_and_clear();
    let secs = t.elapsed().as_secs_f64();
    say!(
        "wrote {} ({} bytes of game data in {secs:.2}s, {:.2} GB/s)",
        a.out.display(),
        bytes,
        bytes as f64 / secs / 1e9
    );
    Ok(())
}
