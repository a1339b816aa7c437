//! Checkpoints of a solve: `OUT/checkpoint.nmpck`, written atomically, holding everything
//! needed to finish the solve as if it had never stopped.
//!
//! **Contents.** The fingerprints of the arguments and of the game file, the `metrics.csv` text
//! so far, `π*` with its certificate (so it is not recomputed), every completed run (final
//! iterates, metrics, stop reason) and the state of the run in progress ([`RunState`]: the
//! algorithm's vectors and counters, the sampled oracle's stream position, the query count).
//!
//! **Format**: a [`crate::io::blobfile`] with the magic `NASHMPCK` (version 2): the
//! [`Checkpoint`] serialises itself, its vectors as raw little-endian blobs, its floats by their
//! bits (so a resumed run continues on the same bits, NaN and infinities included), the metrics
//! text as a UTF-8 blob. [`Checkpoint::parse`] works on bytes, checks every length against the
//! file before allocating, and rejects anything inconsistent, including a checkpoint written by
//! an older version.

use super::{RunInfo, RunState};
use crate::equilibrium::Equilibrium;
use crate::error::{Error, Result};
use crate::io::blobfile::{self, Format};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The checkpoint's name in the output folder.
pub const FILE_NAME: &str = "checkpoint.nmpck";
/// Largest manifest accepted (the manifest is small: sizes, counters, labels).
pub const MAX_MANIFEST: u64 = 1 << 20;
/// The file format (version 1 wrote hand-made mirror records; it is refused as older).
pub const FORMAT: Format = Format {
    magic: b"NASHMPCK",
    version: 2,
    max_manifest: MAX_MANIFEST,
};

/// What a checkpoint belongs to: a resume is refused unless both match.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fingerprint {
    /// Every argument that affects the results, in a canonical form.
    pub args: String,
    /// See [`super::fingerprint::game_file`].
    pub game: String,
}

/// A solve's saved progress.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub fingerprint: Fingerprint,
    /// `metrics.csv` so far, header included.
    #[serde(with = "blobfile::text")]
    pub csv: String,
    /// `π*`, its certificate and the seconds it took.
    #[serde(with = "timed")]
    pub equilibrium: Option<(Equilibrium, f64)>,
    /// The completed runs, in order.
    pub done: Vec<RunInfo>,
    /// The run in progress (the next algorithm after `done`).
    pub current: Option<RunState>,
}

/// `Option<(Equilibrium, seconds)>`, the seconds by their bits.
mod timed {
    use crate::equilibrium::Equilibrium;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Secs(#[serde(with = "crate::io::blobfile::bits")] f64);

    pub fn serialize<S: Serializer>(
        v: &Option<(Equilibrium, f64)>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        v.as_ref().map(|(e, t)| (e, Secs(*t))).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<(Equilibrium, f64)>, D::Error> {
        let v = Option::<(Equilibrium, Secs)>::deserialize(d)?;
        Ok(v.map(|(e, t)| (e, t.0)))
    }
}

/// A label that can go into a CSV file unquoted (an extra iterate's, e.g. `mwu-avg`).
pub(crate) fn check_label(label: &str) -> std::result::Result<(), String> {
    let plain = !label.is_empty()
        && label
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
    if plain {
        Ok(())
    } else {
        Err(format!("iterate label {label:?} is not a plain name"))
    }
}

/// Checks that `v`, the vector `what`, has `n` entries.
pub(crate) fn check_len(what: &str, v: &[f64], n: usize) -> std::result::Result<(), String> {
    if v.len() == n {
        Ok(())
    } else {
        Err(format!(
            "{what} has {} bytes, expected {} for {n} actions",
            8 * v.len() as u64,
            8 * n as u64
        ))
    }
}

impl RunState {
    /// Checks that every saved vector has `n` entries.
    pub(crate) fn check_len(&self, n: usize) -> std::result::Result<(), String> {
        for (i, v) in self.algo.vectors.iter().enumerate() {
            check_len(&format!("saved state vector {i}"), v, n)?;
        }
        Ok(())
    }
}

impl Checkpoint {
    /// Writes the checkpoint atomically to `path`.
    pub fn write(&self, path: &Path) -> Result<()> {
        blobfile::write(path, &FORMAT, self)
    }

    /// Reads the checkpoint at `path` for a game of `n` actions.
    pub fn read(path: &Path, n: usize) -> Result<Self> {
        let c: Checkpoint = blobfile::read(path, &FORMAT)?;
        c.validate(n).map_err(|reason| Error::Checkpoint {
            path: path.into(),
            reason,
        })?;
        Ok(c)
    }

    /// Parses a checkpoint of a game with `n` actions; every vector must have length `n`.
    pub fn parse(bytes: &[u8], n: usize) -> std::result::Result<Self, String> {
        let c: Checkpoint = blobfile::parse(bytes, &FORMAT)?;
        c.validate(n)?;
        Ok(c)
    }

    /// Every vector has `n` entries; every label is a plain name.
    fn validate(&self, n: usize) -> std::result::Result<(), String> {
        if let Some((e, _)) = &self.equilibrium {
            check_len("π*", &e.theta, n)?;
        }
        for r in &self.done {
            check_len(&format!("{}'s final iterate", r.kind), &r.theta, n)?;
            for (label, theta, _) in &r.extras {
                check_label(label)?;
                check_len(label, theta, n)?;
            }
        }
        if let Some(c) = &self.current {
            c.check_len(n)?;
        }
        Ok(())
    }

    /// Refuses to continue from this checkpoint unless `now` matches its fingerprint.
    pub fn check(&self, path: &Path, now: &Fingerprint) -> Result<()> {
        let mismatch = |what, saved: &str, now: &str| Error::ResumeMismatch {
            path: PathBuf::from(path),
            what,
            saved: saved.into(),
            now: now.into(),
        };
        if self.fingerprint.game != now.game {
            return Err(mismatch("game file", &self.fingerprint.game, &now.game));
        }
        if self.fingerprint.args != now.args {
            return Err(mismatch("arguments", &self.fingerprint.args, &now.args));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algo::{AlgoKind, AlgoState, Step};
    use crate::metrics::Metrics;
    use crate::run::StopReason;

    fn sample(n: usize) -> Checkpoint {
        let m = Metrics {
            exploit: Some(f64::NAN),
            kl_star: Some(-0.0),
            bound: Some(f64::INFINITY),
            ..Metrics::default()
        };
        Checkpoint {
            fingerprint: Fingerprint {
                args: "a".into(),
                game: "g".into(),
            },
            csv: "algo,iter\nmwu,0\n".into(),
            equilibrium: None,
            done: vec![RunInfo {
                kind: AlgoKind::Mwu,
                step: Step {
                    alpha: 0.1,
                    eta: 0.01,
                },
                iterations: 3,
                queries: 3,
                seconds: 0.5,
                stop: StopReason::MaxIters,
                last: m,
                theta: vec![-1.5; n],
                extras: vec![("mwu-avg".into(), vec![1e-300; n], m)],
            }],
            current: Some(RunState {
                k: 7,
                queries: 14,
                seconds: 1.0,
                algo: AlgoState {
                    vectors: vec![vec![f64::MIN_POSITIVE; n]],
                    counters: vec![3, u64::MAX],
                },
                oracle: Some((1, 2)),
                last: m,
                extra_last: vec![],
            }),
        }
    }

    #[test]
    fn round_trip_is_bit_exact() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(FILE_NAME);
        let c = sample(5);
        c.write(&p).unwrap();
        let r = Checkpoint::read(&p, 5).unwrap();
        assert_eq!(r.csv, c.csv);
        // Debug output shows every bit that matters (NaN ≠ NaN defeats `==`).
        assert_eq!(format!("{:?}", r.current), format!("{:?}", c.current));
        assert_eq!(format!("{:?}", r.done), format!("{:?}", c.done));
        assert!(r.current.unwrap().last.exploit.unwrap().is_nan());
        let e = Checkpoint::read(&p, 4).unwrap_err().to_string();
        assert!(e.contains("expected 32 for 4 actions"), "{e}");
        // A version-1 checkpoint is refused as older.
        let mut old = std::fs::read(&p).unwrap();
        old[8..12].copy_from_slice(&1u32.to_le_bytes());
        let e = Checkpoint::parse(&old, 5).unwrap_err();
        assert!(e.contains("written by an older version"), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn mutated_checkpoints_never_panic(
            muts in proptest::collection::vec((0usize..4096, proptest::prelude::any::<u8>()), 1..6),
            n in 0usize..6,
        ) {
            let d = tempfile::tempdir().unwrap();
            let p = d.path().join(FILE_NAME);
            sample(3).write(&p).unwrap();
            let mut b = std::fs::read(&p).unwrap();
            for (i, v) in muts {
                let i = i % b.len();
                b[i] = v;
            }
            let _ = Checkpoint::parse(&b, n);
        }
    }

    #[test]
    fn truncations_and_flips_are_errors() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(FILE_NAME);
        sample(3).write(&p).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        for cut in 0..bytes.len() {
            assert!(Checkpoint::parse(&bytes[..cut], 3).is_err(), "cut {cut}");
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x55;
            let _ = Checkpoint::parse(&b, 3);
        }
    }
}
