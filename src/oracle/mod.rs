//! Sampled preference queries (docs/math.md §6): nobody sees `P`, one asks "is `i` better than `j`?"
//! and gets a Bernoulli(`P[i][j]`) answer.
//!
//! - [`Oracle`] answers queries from any [`PreferenceOperator`] (through its single-entry lookup)
//!   and counts them exactly.
//! - [`alias::AliasTable`] draws actions from a policy in `O(1)` after an `O(n)` build.
//! - [`estimate`] estimates payoff vectors `g(π)` from `m` opponents per action (`--oracle sampled`).
//! - [`pg`] is approximate Nash-MP: each proximal step solved by stochastic natural policy-gradient
//!   steps from batches of sampled pairs (`--oracle pg`).
//!
//! Random streams are tied to fixed work chunks, never to threads: every chunk draws from its own
//! xoshiro generator seeded from `(seed, algorithm, call, step, chunk)`, and chunk results are
//! combined in chunk order, so results are identical for any thread count.

pub mod alias;
pub mod estimate;
pub mod pg;

use crate::algo::AlgoKind;
use crate::error::{Error, Result};
use crate::game::PreferenceOperator;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::sync::atomic::{AtomicU64, Ordering};

/// How the algorithms see the game.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "lowercase", tag = "oracle")]
pub enum OracleMode {
    /// `g(π) = P π` exactly: the deterministic algorithms.
    Exact,
    /// Every payoff vector estimated from `samples` opponents per action (`n·samples` queries).
    Sampled { samples: u64 },
    /// Approximate Nash-MP: each proximal step by stochastic policy-gradient steps.
    Pg(pg::PgParams),
}

/// Whether sampled answers are random or replaced by their expectation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fidelity {
    /// Bernoulli answers and sampled opponents: the real thing.
    #[default]
    Sampled,
    /// Every estimator returns its expectation (`m, B → ∞`), computed with the exact operator,
    /// while queries are counted as if sampled. A noise-free twin of the stochastic code path,
    /// for checking it against the deterministic algorithms.
    Expected,
}

/// A validated oracle setting.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct OracleSpec {
    #[serde(flatten)]
    pub mode: OracleMode,
    /// Seed of every random stream (ignored by [`OracleMode::Exact`]).
    pub seed: u64,
    #[serde(skip)]
    pub fidelity: Fidelity,
}

impl Default for OracleSpec {
    fn default() -> Self {
        OracleSpec::exact()
    }
}

impl OracleSpec {
    /// The deterministic algorithms.
    pub fn exact() -> Self {
        OracleSpec {
            mode: OracleMode::Exact,
            seed: 0,
            fidelity: Fidelity::Sampled,
        }
    }

    /// Payoff vectors estimated from `samples ≥ 1` opponents per action.
    pub fn sampled(samples: u64, seed: u64) -> Result<Self> {
        if samples == 0 {
            return Err(Error::Param(
                "--samples must be at least 1 (opponents drawn per action and payoff estimate)"
                    .into(),
            ));
        }
        Ok(OracleSpec {
            mode: OracleMode::Sampled { samples },
            seed,
            fidelity: Fidelity::Sampled,
        })
    }

    /// Approximate Nash-MP with checked parameters.
    pub fn pg(params: pg::PgParams, seed: u64) -> Result<Self> {
        params.check()?;
        Ok(OracleSpec {
            mode: OracleMode::Pg(params),
            seed,
            fidelity: Fidelity::Sampled,
        })
    }

    /// The same setting with every estimator replaced by its expectation.
    pub fn expected(self) -> Self {
        OracleSpec {
            fidelity: Fidelity::Expected,
            ..self
        }
    }

    /// Whether the algorithms see sampled answers instead of `P π`.
    pub fn is_stochastic(&self) -> bool {
        self.mode != OracleMode::Exact
    }

    /// Checks that this mode applies to `kind`.
    pub fn check_algo(&self, kind: AlgoKind) -> Result<()> {
        match self.mode {
            OracleMode::Pg(_) if kind != AlgoKind::NashMp => Err(Error::Param(format!(
                "--oracle pg is approximate Nash-MP and cannot run {kind}; give --algo nash-mp \
                 (every algorithm accepts --oracle sampled)"
            ))),
            _ => Ok(()),
        }
    }
}

/// Answers preference queries from a game and counts them.
pub struct Oracle<'a> {
    op: &'a dyn PreferenceOperator,
    queries: AtomicU64,
}

impl<'a> Oracle<'a> {
    pub fn new(op: &'a dyn PreferenceOperator) -> Self {
        Oracle {
            op,
            queries: AtomicU64::new(0),
        }
    }

    /// The game behind the oracle.
    pub fn game(&self) -> &'a dyn PreferenceOperator {
        self.op
    }

    /// A handle that asks queries on one chunk of work and adds its count when dropped.
    pub fn asker(&self) -> Asker<'_, 'a> {
        Asker {
            oracle: self,
            count: 0,
        }
    }

    /// Counts `k` queries whose answers were replaced by their expectation ([`Fidelity::Expected`]).
    pub fn charge(&self, k: u64) {
        self.queries.fetch_add(k, Ordering::Relaxed);
    }

    /// Queries answered so far.
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }
}

/// Asks queries for one chunk of work; its count joins the oracle's when it is dropped.
pub struct Asker<'o, 'a> {
    oracle: &'o Oracle<'a>,
    count: u64,
}

impl Asker<'_, '_> {
    /// One query: `1.0` if `i` is preferred to `j`, which happens with probability `P[i][j]`,
    /// else `0.0`.
    ///
    /// # Panics
    /// If `i` or `j` is out of range.
    pub fn query(&mut self, i: usize, j: usize, rng: &mut impl Rng) -> f64 {
        self.count += 1;
        let p = self.oracle.op.entry(i, j);
        if unit(rng) < p {
            1.0
        } else {
            0.0
        }
    }
}

impl Drop for Asker<'_, '_> {
    fn drop(&mut self) {
        self.oracle.charge(self.count);
    }
}

/// A uniform draw in `[0, 1)` with 53 random bits.
pub fn unit(rng: &mut impl Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// The generator of one chunk of work, determined by `seed` and the chunk's coordinates (e.g.
/// algorithm, call, step, chunk index), never by the thread that runs it.
pub fn stream(seed: u64, coords: &[u64]) -> Xoshiro256PlusPlus {
    let mut h = mix(seed ^ 0x6A09_E667_F3BC_C908);
    for &c in coords {
        h = mix(h ^ c.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    }
    Xoshiro256PlusPlus::seed_from_u64(h)
}

/// The SplitMix64 finaliser: a bijection of `u64` with good avalanche.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// An algorithm's stream among those of one seed: its frozen id in [`AlgoKind::TABLE`].
pub(crate) fn algo_stream(kind: AlgoKind) -> u64 {
    kind.info().stream
}

#[cfg(test)]
mod tests;
