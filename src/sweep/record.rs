//! What a sweep records of its runs: the logged iterates of each run and the equilibrium
//! certificates. A leaf module: the runner produces these records, the checkpoints save them
//! (they serialise themselves, see [`crate::io::blobfile`]) and the summaries read them.

use super::cache::GameSpec;
use super::config::{Oracle, Policy};
use crate::equilibrium::Equilibrium;
use crate::io::blobfile;
use crate::metrics::{Metric, Metrics};
use serde::{Deserialize, Serialize};

/// One logged iterate.
#[derive(Clone, Copy, Debug)]
pub struct Record {
    pub iter: u64,
    pub queries: u64,
    pub m: Metrics,
}

/// One algorithm (or extra iterate, e.g. `mwu-avg`) on one game at one β.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunResult {
    /// Not saved: a checkpoint's game file names its game once for all its runs.
    #[serde(skip, default = "unset_game")]
    pub game: GameSpec,
    #[serde(with = "blobfile::bits")]
    pub beta: f64,
    /// The policy class and the oracle of the run.
    pub policy: Policy,
    pub oracle: Oracle,
    /// `nash-mp`, `mmd` …, or an extra iterate's label.
    pub algo: String,
    #[serde(with = "blobfile::bits")]
    pub alpha: f64,
    /// `KL(π*‖π_0)`.
    #[serde(with = "blobfile::bits")]
    pub kl0: f64,
    #[serde(with = "records")]
    pub records: Vec<Record>,
}

impl RunResult {
    /// The run's name in tables and plots (see [`label`]).
    pub fn label(&self) -> String {
        label(&self.algo, self.policy, self.oracle)
    }
}

/// `nash-mp` for the tabular class with exact payoffs (the sweep's default), else with the
/// class and oracle: `nash-mp (linear)`, `nash-mp (tabular, pg)`, `omwu (linear, pg)`.
pub fn label(algo: &str, policy: Policy, oracle: Oracle) -> String {
    match (policy, oracle) {
        (Policy::Tabular, Oracle::Exact) => algo.to_string(),
        (p, Oracle::Exact) => format!("{algo} ({})", p.name()),
        (p, o) => format!("{algo} ({}, {})", p.name(), o.name()),
    }
}

/// The game of a [`RunResult`] just read from a checkpoint, until its reader sets it.
fn unset_game() -> GameSpec {
    GameSpec {
        family: crate::gen::Family::Uniform,
        n: 0,
        seed: 0,
        params: crate::gen::Params::default(),
    }
}

/// How the equilibrium solve of one β went.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EqReport {
    #[serde(with = "blobfile::bits")]
    pub beta: f64,
    pub certificate: Equilibrium,
}

/// Words per saved iterate: iteration, queries, a mask of the metrics present, the metrics
/// (in the order of [`Metric::ALL`], by their bits; 0 where absent).
const RECORD_WORDS: usize = 3 + Metric::COUNT;

/// A `Vec<Record>` as one blob of [`RECORD_WORDS`]-word records:
/// `#[serde(with = "crate::sweep::record::records")]`.
pub mod records {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[Record], s: S) -> Result<S::Ok, S::Error> {
        let mut w = Vec::with_capacity(v.len() * RECORD_WORDS);
        for r in v {
            let vals = r.m.values();
            let mask = vals
                .iter()
                .enumerate()
                .fold(0u64, |m, (i, v)| m | (v.is_some() as u64) << i);
            w.extend([r.iter, r.queries, mask]);
            w.extend(vals.iter().map(|v| v.map_or(0, f64::to_bits)));
        }
        blobfile::words::serialize(&w, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Record>, D::Error> {
        blobfile::words::deserialize_with(d, |w| {
            if w.len() % RECORD_WORDS != 0 {
                return Err(format!(
                    "{} words of records, not a multiple of {RECORD_WORDS}",
                    w.len()
                ));
            }
            Ok(w.chunks_exact(RECORD_WORDS)
                .map(|r| Record {
                    iter: r[0],
                    queries: r[1],
                    m: Metrics::from_values(std::array::from_fn(|m| {
                        (r[2] >> m & 1 == 1).then(|| f64::from_bits(r[3 + m]))
                    })),
                })
                .collect())
        })
    }

    /// A borrowed series as a blob, for use inside other records.
    pub struct Ref<'a>(pub &'a [Record]);

    impl Serialize for Ref<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            serialize(self.0, s)
        }
    }

    /// An owned series read from a blob.
    pub struct Owned(pub Vec<Record>);

    impl<'de> Deserialize<'de> for Owned {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            deserialize(d).map(Owned)
        }
    }
}
