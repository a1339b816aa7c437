//! The command line: clap definitions, each subcommand turned once into validated values and
//! handed to the library.

mod bench;
mod convert;
mod demo;
mod equilibrium;
mod generate;
mod generate_judgements;
mod import_pairwise;
mod info;
mod oracle_args;
mod progress;
mod rank;
mod solve;
mod sweep;

use clap::{Parser, Subcommand};

/// Nash learning from human feedback at scale: Nash Mirror Prox and its baselines on
/// memory-mapped preference games, with certified metrics.
#[derive(Parser, Debug)]
#[command(name = "nashmp", version, about, long_about = None)]
pub struct Cli {
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run Nash-MP and the baselines on a game; write metrics.csv, policies, summary.json.
    Solve(solve::SolveArgs),
    /// Compute the β-regularised equilibrium π* with its certificate.
    Equilibrium(equilibrium::EquilibriumArgs),
    /// Print a game's size, dtype and validation result.
    Info(info::InfoArgs),
    /// Convert a game (text, .npy, nashmp container) to another layout or entry type.
    Convert(convert::ConvertArgs),
    /// Write a synthetic game to disk, reproducibly, in any layout.
    Generate(generate::GenerateArgs),
    /// Time the apply kernel against a plain sum over the same bytes (interleaved).
    Bench(bench::BenchArgs),
    /// Solve the small built-in game with every algorithm and print what each reaches.
    Demo(demo::DemoArgs),
    /// Estimate a game from a CSV log of pairwise judgements (writes GAME.items.txt, GAME.coverage.json).
    ImportPairwise(import_pairwise::ImportPairwiseArgs),
    /// Rank items by equilibrium probability, with bootstrap intervals and the von Neumann winner.
    Rank(rank::RankArgs),
    /// Draw a synthetic judgement log from a known game.
    GenerateJudgements(generate_judgements::GenerateJudgementsArgs),
    /// Families × sizes × β × algorithms × seeds: runs.csv, summary.csv/.md and plots.
    Sweep(sweep::SweepArgs),
    /// Parametric (log-linear) Nash-MP from sampled queries: queries to reach exploit ≤ ε
    /// against n at fixed d (docs/parametric.md).
    ParamSweep(crate::param::sweep::ParamSweepArgs),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(t) = cli.threads {
        if t == 0 {
            anyhow::bail!("--threads must be at least 1");
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()
            .map_err(|e| anyhow::anyhow!("cannot start {t} threads: {e}"))?;
    }
    match cli.command {
        Command::Solve(a) => solve::run(a),
        Command::Equilibrium(a) => equilibrium::run(a),
        Command::Info(a) => info::run(a),
        Command::Convert(a) => convert::run(a),
        Command::Generate(a) => generate::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Bench(a) => bench::run(a),
        Command::ImportPairwise(a) => import_pairwise::run(a),
        Command::Rank(a) => rank::run(a),
        Command::GenerateJudgements(a) => generate_judgements::run(a),
        Command::Sweep(a) => sweep::run(a),
        Command::ParamSweep(a) => crate::param::sweep::run(a),
    }
}

/// Prints a warning on stderr.
pub(crate) fn warn(msg: &str) {
    eprintln!("warning: {msg}");
}
