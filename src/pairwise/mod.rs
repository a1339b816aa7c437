//! From pairwise judgement logs (arena-style "A vs B, annotator preferred A") to a preference
//! game, its equilibrium ranking with bootstrap intervals, and its von Neumann winner.
//!
//! - [`log`]: parse a CSV log; items are indexed by name in byte order.
//! - [`estimate`]: counts → `P` (add-k smoothing, a fill rule for unobserved pairs), coverage.
//! - [`rank`]: the equilibrium at β, items by probability, the von Neumann winner by a β path.
//! - [`bootstrap`]: percentile intervals of each item's probability and rank, thread-count
//!   independent.
//! - [`synth`]: draw a log from a known game.
//! - [`sidecar`]: `GAME.items.txt` and `GAME.coverage.json` next to an imported game.
//!
//! ```
//! use nashmp::game::DenseGame;
//! use nashmp::pairwise::{estimate::{estimate, Counts, EstimateParams, Fill}, log, rank};
//! use std::path::Path;
//! let csv = b"left,right,winner\nA,B,A\nB,C,B\nC,A,tie\nA,B,left\n";
//! let parsed = log::parse(Path::new("log.csv"), csv, &log::Columns::default()).unwrap();
//! let n = parsed.items.len();
//! let p = estimate(&Counts::new(n, &parsed.judgements), EstimateParams::new(1.0, Fill::Half).unwrap());
//! assert_eq!(p[1], (2.0 + 1.0) / (2.0 + 2.0)); // A beat B twice: (w + k) / (n + 2k)
//! let ranked = rank::rank_at(&DenseGame::from_vec("log", n, p), 0.1, None).unwrap();
//! assert_eq!(parsed.items[ranked.order[0]], "A");
//! ```

#![forbid(unsafe_code)]

pub mod bootstrap;
pub mod estimate;
pub mod log;
pub mod rank;
pub mod sidecar;
pub mod synth;
