//! `nashmp demo`: the built-in 31-action cyclic game with a non-uniform reference, β = 0.01.

use crate::algo::{AlgoKind, Schedule, StepSpec};
use crate::error::Result;
use crate::game::{DenseGame, PreferenceOperator};
use crate::io::array::checked_header;
use crate::run::{session, MetricsMode};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The built-in game (`data/demo.npy`): generalised rock-paper-scissors on 31 actions.
pub const DEMO_GAME: &[u8] = include_bytes!("../../data/demo.npy");
/// Its reference policy (`data/demo_ref.npy`).
pub const DEMO_REF: &[u8] = include_bytes!("../../data/demo_ref.npy");
pub const DEMO_BETA: f64 = 0.01;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Also write the full outputs (metrics.csv, policies, summary.json) here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn f64_data(name: &str, bytes: &[u8]) -> Result<Vec<f64>> {
    let h = checked_header(Path::new(name), bytes)?;
    Ok(bytes[h.data_offset..]
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect())
}

/// The built-in game and the log of its reference.
pub fn demo_game() -> Result<(DenseGame, Vec<f64>)> {
    let p = f64_data("data/demo.npy", DEMO_GAME)?;
    let n = (p.len() as f64).sqrt() as usize;
    let g = DenseGame::from_vec("built-in demo game", n, p);
    g.validate(None)?;
    let r = f64_data("data/demo_ref.npy", DEMO_REF)?;
    Ok((g, crate::policy::theta_from_probs("demo reference", &r, n)?))
}

pub fn run(a: DemoArgs) -> anyhow::Result<()> {
    let (g, theta_ref) = demo_game()?;
    let budgets = [50u64, 100, 200, 400, 800];
    let cfg = session::SolveConfig::new(
        &AlgoKind::ALL,
        DEMO_BETA,
        StepSpec::Default,
        Schedule::Constant,
        800,
        None,
        MetricsMode::Full,
        theta_ref.clone(),
        theta_ref,
    )?;
    // (algo, budget) -> (kl_star, exploit, bound) of the last iterate within the budget.
    let mut table: BTreeMap<(String, u64), (f64, f64, Option<f64>)> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut under_bound = true;
    let report = session::solve(
        &g,
        &cfg,
        a.out.as_deref(),
        &mut |r| {
            if let (Some(kl), Some(b)) = (r.metrics.kl_star, r.metrics.bound) {
                under_bound &= kl <= b * (1.0 + 1e-9) + 1e-15;
            }
            if !order.iter().any(|o| o == r.algo) {
                order.push(r.algo.to_string());
            }
            for &b in &budgets {
                if r.queries <= b {
                    let m = &r.metrics;
                    table.insert(
                        (r.algo.to_string(), b),
                        (
                            m.kl_star.unwrap_or(f64::NAN),
                            m.exploit.unwrap_or(f64::NAN),
                            m.bound,
                        ),
                    );
                }
            }
        },
        &mut || {},
    )?;
    let (eq, _) = report.equilibrium.as_ref().expect("full metrics");
    say!("nashmp demo: generalised rock-paper-scissors, n = {}, β = {DEMO_BETA}, non-uniform reference", g.n());
    say!(
        "π* certified: fixed-point residual {:.1e}, exploitability {:.1e}\n",
        eq.residual,
        eq.exploit
    );
    say!("KL(π*‖π) after a budget of operator queries (lower is better; 'bound' is Nash-MP's guarantee):\n");
    say_part!("{:<9}", "queries");
    for b in budgets {
        say_part!("{b:>11}");
    }
    say!();
    let cell = |algo: &str, b: u64| table.get(&(algo.to_string(), b));
    for algo in &order {
        print_row(algo, &budgets, |b| cell(algo, b).map(|v| v.0));
        if algo == "nash-mp" {
            print_row("  bound", &budgets, |b| cell(algo, b).and_then(|v| v.2));
        }
    }
    say!("\nexploitability (β-regularised) at the same budgets:\n");
    for algo in &order {
        print_row(algo, &budgets, |b| cell(algo, b).map(|v| v.1));
    }
    say!(
        "\nNash-MP stayed under its guarantee at every one of its iterations: {}",
        if under_bound { "yes" } else { "NO" }
    );
    say!("One-step methods with α = O(β) (mmd, nash-md) crawl; MWU's last iterate does not converge.");
    if let Some(o) = &a.out {
        say!("full outputs in {}", o.display());
    }
    Ok(())
}

/// One table row: a label, then a value per budget (`NaN` where there is none).
fn print_row(label: &str, budgets: &[u64], value: impl Fn(u64) -> Option<f64>) {
    say_part!("{label:<9}");
    for &b in budgets {
        say_part!("{:>11.2e}", value(b).unwrap_or(f64::NAN));
    }
    say!();
}
