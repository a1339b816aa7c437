use super::solve::GameArgs;
use crate::equilibrium::{self, EquilibriumParams};
use crate::io::array;
use crate::io::output::{self, Format};
use crate::policy;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct EquilibriumArgs {
    #[command(flatten)]
    pub game: GameArgs,
    /// Output: π* as a float64 .npy vector (its folder is created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Target fixed-point residual.
    #[arg(long, allow_negative_numbers = true, default_value_t = 1e-12)]
    pub residual: f64,
    /// Map evaluations (Nash-MP iterations) at most.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_iters: u64,
    /// Anderson history length of the accelerated solve (0: plain Nash-MP at α = 2). Capped
    /// where the history would exceed 2.5 GiB.
    #[arg(long, default_value_t = crate::equilibrium::MAX_MEMORY)]
    pub anderson: usize,
    /// Print a JSON summary on stdout instead of the human-readable report.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: EquilibriumArgs) -> anyhow::Result<()> {
    output::check(&a.out, Format::Npy, "π* (a float64 vector)")?;
    if !(a.residual.is_finite() && a.residual > 0.0) {
        anyhow::bail!(
            "invalid parameter: --residual must be finite and > 0, got {}",
            a.residual
        );
    }
    if a.json {
        super::silence();
    }
    let (g, theta_ref) = a.game.load()?;
    let mut p = EquilibriumParams::new(a.game.beta);
    p.target_residual = a.residual;
    p.max_iters = a.max_iters;
    p.memory = a.anderson;
    let t = std::time::Instant::now();
    let eq = equilibrium::solve(g.as_ref(), &theta_ref, p)?;
    let secs = t.elapsed().as_secs_f64();
    array::write_vector(&a.out, &policy::probs(&eq.theta))?;
    say!(
        "equilibrium: residual {}, exploit {}, exploit0 {}, {} iterations, {} queries, {}, \
         Anderson memory {} ({} rejected{}), {:.3}s",
        super::sci(eq.residual),
        super::sci(eq.exploit),
        super::sci(eq.exploit0),
        eq.iterations,
        eq.queries,
        super::word(&eq.stop),
        eq.memory,
        super::count(eq.rejected, "step"),
        if eq.fallback {
            ", then plain Nash-MP"
        } else {
            ""
        },
        secs
    );
    say!("wrote {}", a.out.display());
    if a.json {
        super::print_json(&serde_json::json!({
            "game": a.game.game,
            "beta": a.game.beta,
            "certificate": eq,
            "seconds": secs,
            "file": a.out,
        }));
    }
    Ok(())
}
