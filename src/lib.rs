//! # nashmp
//!
//! Nash learning from human feedback at scale. A preference game is a matrix
//! `P[i][j] = P(i ≻ j)` with `P + Pᵀ = 1`; its β-regularised Nash equilibrium `π*` is found by
//! **Nash Mirror Prox** (Tiapkin et al., 2025), whose last iterate converges linearly,
//! `KL(π*‖π_K) ≤ (1+αβ)^{−K} KL(π*‖π_0)`, at a rate independent of the number of actions.
//!
//! The main types:
//! - [`game::PreferenceOperator`]: what algorithms see of a game (`P x`); [`game::DenseGame`]
//!   maps a `.npy` file and uses it in place.
//! - [`algo`]: Nash-MP and the baselines (MMD, OMWU, EGPO, Nash-MD, MWU), sharing [`algo::prox`].
//! - [`equilibrium::solve`]: `π*` with its certificate; [`metrics`]: KL, exploitability, residual, bound.
//! - [`oracle`]: sampled preference queries (Bernoulli answers, alias-table sampling) and
//!   approximate Nash-MP by stochastic policy gradient.
//! - [`run::session::solve`]: the whole pipeline the `nashmp solve` command runs.
//! - [`sweep`]: the size-independence experiment, with lock-step batched runs.
//! - [`pairwise`]: judgement logs → games, equilibrium rankings with bootstrap intervals.
//!
//! ```
//! use nashmp::{algo::{AlgoKind, Schedule, StepSpec}, game::DenseGame, policy, run::{session, MetricsMode}};
//! // Rock-paper-scissors: the equilibrium is uniform for every β.
//! let p = vec![0.5, 1.0, 0.0, 0.0, 0.5, 1.0, 1.0, 0.0, 0.5];
//! let game = DenseGame::from_vec("rps", 3, p);
//! let mu = policy::theta_from_probs("ref", &[0.2, 0.3, 0.5], 3).unwrap();
//! let cfg = session::SolveConfig::new(&[AlgoKind::NashMp], 0.1, StepSpec::Default,
//!     Schedule::Constant, 200, None, MetricsMode::Full, mu.clone(), mu).unwrap();
//! let report = session::solve(&game, &cfg, None, &mut |_| {}, &mut || {}).unwrap();
//! assert!(report.runs[0].last.kl_star.unwrap() < 1e-12);
//! ```

pub mod algo;
pub mod cli;
#[cfg(feature = "mpi")]
pub mod dist;
pub mod equilibrium;
pub mod error;
pub mod game;
pub mod gen;
pub mod io;
pub mod kernels;
pub mod metrics;
pub mod oracle;
pub mod pairwise;
pub mod param;
pub mod policy;
pub mod run;
pub mod storage;
pub mod sweep;

pub use error::{Error, Result};
