//! The command line: clap definitions, each subcommand turned once into validated values and
//! handed to the library.

/// `println!` unless the report is silenced (`--quiet`, or `--json`, which prints JSON instead).
macro_rules! say {
    ($($t:tt)*) => {
        if !$crate::cli::silent() {
            println!($($t)*)
        }
    };
}

/// `eprintln!` for progress lines (not warnings or errors), unless the report is silenced.
macro_rules! esay {
    ($($t:tt)*) => {
        if !$crate::cli::silent() {
            eprintln!($($t)*)
        }
    };
}

/// `print!` unless the report is silenced.
macro_rules! say_part {
    ($($t:tt)*) => {
        if !$crate::cli::silent() {
            print!($($t)*)
        }
    };
}

mod bench;
mod convert;
mod demo;
#[cfg(feature = "mpi")]
mod dist;
mod equilibrium;
mod generate;
mod generate_judgements;
mod import_pairwise;
mod info;
mod oracle_args;
mod progress;
mod rank;
mod solve;
mod storage_args;
mod sweep;

use clap::{Parser, Subcommand};
use std::sync::atomic::{AtomicBool, Ordering};

static SILENT: AtomicBool = AtomicBool::new(false);

/// Whether the human-readable report (stdout) and progress bars are silenced.
pub(crate) fn silent() -> bool {
    SILENT.load(Ordering::Relaxed)
}

/// Silences the human-readable report: `--quiet`, or a `--json` command before it prints JSON.
pub(crate) fn silence() {
    SILENT.store(true, Ordering::Relaxed);
}

/// Prints `value` as the command's JSON report on stdout (`--json`).
pub(crate) fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("a JSON value serialises")
    );
}

/// Nash learning from human feedback at scale: Nash Mirror Prox and its baselines on
/// memory-mapped preference games, with certified metrics.
#[derive(Parser, Debug)]
#[command(name = "nashmp", version, about, long_about = None)]
pub struct Cli {
    /// Worker threads (default: all cores). Output files and printed results do not depend on
    /// it (timings, and so `bench`, do).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// Print nothing on stdout and no progress bar (errors and warnings still go to stderr);
    /// for scripts.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
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
    if cli.quiet {
        silence();
    }
    if let Some(t) = cli.threads {
        if t == 0 {
            anyhow::bail!("--threads must be at least 1");
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()
            .map_err(|e| anyhow::anyhow!("cannot start {t} threads: {e}"))?;
    }
    // Under mpirun: this process is one rank of a job (solve, equilibrium, bench distributed).
    #[cfg(feature = "mpi")]
    if let Some(session) = dist::Session::start()? {
        return session.run(cli);
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

/// An enum's name as `summary.json` spells it (`max-iters`, `stalled`).
pub(crate) fn word<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// `1 item`, `3 items`, `2 families`.
pub(crate) fn count(n: impl Into<u64>, word: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {word}")
    } else if let Some(stem) = word.strip_suffix('y') {
        format!("{n} {stem}ies")
    } else {
        format!("{n} {word}s")
    }
}

/// A number in the tables' format: `0` for an exact zero, else 4 significant digits
/// (`1.831e-16`).
pub(crate) fn sci(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else {
        format!("{x:.3e}")
    }
}

/// Warns that `old` is a deprecated spelling of `new` (kept working for one release).
pub(crate) fn deprecated(old: &str, new: &str) {
    warn(&format!(
        "{old} is deprecated and will be removed; use {new}"
    ));
}

/// A tolerance flag, if given, must be finite and positive.
pub(crate) fn check_tol(flag: &str, tol: Option<f64>) -> anyhow::Result<()> {
    match tol {
        Some(t) if !(t.is_finite() && t > 0.0) => {
            anyhow::bail!("invalid parameter: {flag} must be finite and > 0, got {t}")
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod cli_definition_tests {
    /// clap's own consistency checks (conflicting names, defaults outside their value sets,
    /// requirements on missing arguments) over every subcommand.
    #[test]
    fn cli_definition_passes_clap_debug_assert() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
