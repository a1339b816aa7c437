//! Checkpoints of a solve: `OUT/checkpoint.nmpck`, written atomically, holding everything
//! needed to finish the solve as if it had never stopped.
//!
//! **Contents.** The fingerprints of the arguments and of the game file, the `metrics.csv` text
//! so far, `π*` with its certificate (so it is not recomputed), every completed run (final
//! iterates, metrics, stop reason) and the state of the run in progress ([`RunState`]: the
//! algorithm's vectors and counters, the sampled oracle's stream position, the query count).
//!
//! **Format** (little endian): the magic `NASHMPCK`, a `u32` version, a `u32` 0, a `u64` length
//! `J ≤` [`MAX_MANIFEST`], `J` bytes of JSON (the manifest), then the blobs the manifest lists,
//! back to back: `f64` vectors as raw little-endian words, the metrics text as UTF-8. Every
//! float in the manifest is stored as its bit pattern, so a resumed run continues on the same
//! bits (NaN and infinities included). [`Checkpoint::parse`] works on bytes, checks every length
//! against the file before allocating, and rejects anything inconsistent.

use super::{Metrics, RunInfo, RunState, StopReason};
use crate::algo::{AlgoKind, AlgoState, Step};
use crate::equilibrium::{EqStop, Equilibrium};
use crate::error::{Error, Result};
use crate::io::atomic::AtomicFile;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The checkpoint's name in the output folder.
pub const FILE_NAME: &str = "checkpoint.nmpck";
const MAGIC: &[u8; 8] = b"NASHMPCK";
const VERSION: u32 = 1;
const PREFIX: usize = 24;
/// Largest manifest accepted (the manifest is small: sizes, counters, labels).
pub const MAX_MANIFEST: u64 = 1 << 20;

/// What a checkpoint belongs to: a resume is refused unless both match.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Every argument that affects the results, in a canonical form.
    pub args: String,
    /// See [`super::fingerprint::game_file`].
    pub game: String,
}

/// A solve's saved progress.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub fingerprint: Fingerprint,
    /// `metrics.csv` so far, header included.
    pub csv: String,
    /// `π*`, its certificate and the seconds it took.
    pub equilibrium: Option<(Equilibrium, f64)>,
    /// The completed runs, in order.
    pub done: Vec<RunInfo>,
    /// The run in progress (the next algorithm after `done`).
    pub current: Option<RunState>,
}

/// A metrics row by its bits (shared with the sweep's checkpoints).
pub(crate) type MetricsRec = [Option<u64>; crate::metrics::Metric::COUNT];

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    fingerprint: Fingerprint,
    /// Byte length of each blob, in file order.
    blobs: Vec<u64>,
    csv: usize,
    equilibrium: Option<EqRec>,
    done: Vec<DoneRec>,
    current: Option<CurRec>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EqRec {
    theta: usize,
    iterations: u64,
    queries: u64,
    residual: u64,
    exploit: u64,
    exploit0: u64,
    stop: EqStop,
    seconds: u64,
    #[serde(default)]
    memory: usize,
    #[serde(default)]
    rejected: u64,
    #[serde(default)]
    fallback: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DoneRec {
    algo: String,
    alpha: u64,
    eta: u64,
    iterations: u64,
    queries: u64,
    seconds: u64,
    stop: StopReason,
    last: MetricsRec,
    theta: usize,
    extras: Vec<(String, usize, MetricsRec)>,
}

/// A run's saved state ([`RunState`]) in a manifest: floats by their bits, vectors by blob
/// index (shared with the sweep's checkpoints).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CurRec {
    pub k: u64,
    pub queries: u64,
    pub seconds: u64,
    pub vectors: Vec<usize>,
    pub counters: Vec<u64>,
    pub oracle: Option<(u64, u64)>,
    pub last: MetricsRec,
    pub extra_last: Vec<MetricsRec>,
}

pub(crate) fn metrics_rec(m: &Metrics) -> MetricsRec {
    m.values().map(|v| v.map(f64::to_bits))
}

pub(crate) fn metrics_from(r: &MetricsRec) -> Metrics {
    Metrics::from_values(r.map(|x| x.map(f64::from_bits)))
}

/// Collects blobs while a manifest is built.
#[derive(Default)]
struct Blobs<'a> {
    list: Vec<Blob<'a>>,
}

enum Blob<'a> {
    F64(&'a [f64]),
    Text(&'a str),
}

impl<'a> Blobs<'a> {
    fn add(&mut self, b: Blob<'a>) -> usize {
        self.list.push(b);
        self.list.len() - 1
    }
    fn vec(&mut self, v: &'a [f64]) -> usize {
        self.add(Blob::F64(v))
    }
    fn lens(&self) -> Vec<u64> {
        self.list
            .iter()
            .map(|b| match b {
                Blob::F64(v) => 8 * v.len() as u64,
                Blob::Text(t) => t.len() as u64,
            })
            .collect()
    }
}

/// Writes the 24-byte prefix shared by nashmp's checkpoint files (see [`manifest_end`]) and
/// the manifest `json`.
pub(crate) fn write_prefix(
    f: &mut AtomicFile,
    path: &Path,
    magic: &[u8; 8],
    version: u32,
    json: &[u8],
) -> Result<()> {
    let io = |e| Error::io(path, e);
    f.write_all(magic).map_err(io)?;
    f.write_all(&version.to_le_bytes()).map_err(io)?;
    f.write_all(&0u32.to_le_bytes()).map_err(io)?;
    f.write_all(&(json.len() as u64).to_le_bytes())
        .map_err(io)?;
    f.write_all(json).map_err(io)
}

/// Checks the 24-byte prefix shared by nashmp's checkpoint files (an 8-byte `magic`, a `u32`
/// `version`, a `u32` 0, a `u64` manifest length at most `cap` and within the file) and returns
/// where the manifest, which starts at byte 24, ends.
pub(crate) fn manifest_end(
    bytes: &[u8],
    magic: &[u8; 8],
    version: u32,
    cap: u64,
) -> std::result::Result<usize, String> {
    if bytes.len() < PREFIX || &bytes[..8] != magic {
        return Err(format!(
            "missing the {} magic",
            String::from_utf8_lossy(magic)
        ));
    }
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
    if u32_at(8) != version || u32_at(12) != 0 {
        return Err(format!("unsupported version {}", u32_at(8)));
    }
    let jlen = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
    let rest = (bytes.len() - PREFIX) as u64;
    if jlen > cap || jlen > rest {
        return Err(format!(
            "manifest length {jlen} exceeds the file ({rest} bytes after the prefix) or the cap {cap}"
        ));
    }
    Ok(PREFIX + jlen as usize)
}

impl Checkpoint {
    /// Writes the checkpoint atomically to `path`.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut blobs = Blobs::default();
        let csv = blobs.add(Blob::Text(&self.csv));
        let equilibrium = self.equilibrium.as_ref().map(|(e, secs)| EqRec {
            theta: blobs.vec(&e.theta),
            iterations: e.iterations,
            queries: e.queries,
            residual: e.residual.to_bits(),
            exploit: e.exploit.to_bits(),
            exploit0: e.exploit0.to_bits(),
            stop: e.stop,
            seconds: secs.to_bits(),
            memory: e.memory,
            rejected: e.rejected,
            fallback: e.fallback,
        });
        let done = self
            .done
            .iter()
            .map(|r| DoneRec {
                algo: r.kind.name().to_string(),
                alpha: r.step.alpha.to_bits(),
                eta: r.step.eta.to_bits(),
                iterations: r.iterations,
                queries: r.queries,
                seconds: r.seconds.to_bits(),
                stop: r.stop,
                last: metrics_rec(&r.last),
                theta: blobs.vec(&r.theta),
                extras: r
                    .extras
                    .iter()
                    .map(|(l, t, m)| (l.clone(), blobs.vec(t), metrics_rec(m)))
                    .collect(),
            })
            .collect();
        let current = self.current.as_ref().map(|s| CurRec {
            k: s.k,
            queries: s.queries,
            seconds: s.seconds.to_bits(),
            vectors: s.algo.vectors.iter().map(|v| blobs.vec(v)).collect(),
            counters: s.algo.counters.clone(),
            oracle: s.oracle,
            last: metrics_rec(&s.last),
            extra_last: s.extra_last.iter().map(metrics_rec).collect(),
        });
        let manifest = Manifest {
            fingerprint: self.fingerprint.clone(),
            blobs: blobs.lens(),
            csv,
            equilibrium,
            done,
            current,
        };
        let json = serde_json::to_vec(&manifest).expect("manifest serialises");
        let mut f = AtomicFile::create(path)?;
        let io = |e| Error::io(path, e);
        write_prefix(&mut f, path, MAGIC, VERSION, &json)?;
        for b in &blobs.list {
            match b {
                Blob::F64(v) => {
                    for chunk in v.chunks(1 << 16) {
                        let bytes: Vec<u8> = chunk.iter().flat_map(|x| x.to_le_bytes()).collect();
                        f.write_all(&bytes).map_err(io)?;
                    }
                }
                Blob::Text(t) => f.write_all(t.as_bytes()).map_err(io)?,
            }
        }
        f.commit()
    }

    /// Reads the checkpoint at `path` for a game of `n` actions.
    pub fn read(path: &Path, n: usize) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&bytes, n).map_err(|reason| Error::Checkpoint {
            path: path.into(),
            reason,
        })
    }

    /// Parses a checkpoint of a game with `n` actions; every vector must have length `n`.
    pub fn parse(bytes: &[u8], n: usize) -> std::result::Result<Self, String> {
        let body = manifest_end(bytes, MAGIC, VERSION, MAX_MANIFEST)?;
        let m: Manifest =
            serde_json::from_slice(&bytes[PREFIX..body]).map_err(|e| format!("manifest: {e}"))?;
        // Blob offsets, checked against the file before anything is allocated.
        let mut offsets = Vec::with_capacity(m.blobs.len().min(1 << 16));
        let mut at = body as u64;
        for (i, &len) in m.blobs.iter().enumerate() {
            let end = at
                .checked_add(len)
                .filter(|&e| e <= bytes.len() as u64)
                .ok_or_else(|| format!("blob {i} ({len} bytes) runs past the end of the file"))?;
            offsets.push((at as usize, end as usize));
            at = end;
        }
        if at != bytes.len() as u64 {
            return Err(format!(
                "{} bytes after the last blob",
                bytes.len() as u64 - at
            ));
        }
        // Each blob is read at most once, so a lying manifest cannot multiply the file's size.
        let used: Vec<std::cell::Cell<bool>> = offsets.iter().map(|_| Default::default()).collect();
        let blob = |i: usize| {
            let &(a, b) = offsets
                .get(i)
                .ok_or_else(|| format!("blob {i} does not exist"))?;
            if used[i].replace(true) {
                return Err(format!("blob {i} is referenced twice"));
            }
            Ok(&bytes[a..b])
        };
        let vec = |i: usize| -> std::result::Result<Vec<f64>, String> {
            let b = blob(i)?;
            if b.len() as u64 != 8 * n as u64 {
                return Err(format!(
                    "vector blob {i} has {} bytes, expected {} for {n} actions",
                    b.len(),
                    8 * n as u64
                ));
            }
            Ok(b.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect())
        };
        let csv = std::str::from_utf8(blob(m.csv)?)
            .map_err(|e| format!("metrics text: {e}"))?
            .to_string();
        let equilibrium = match &m.equilibrium {
            Some(e) => Some((
                Equilibrium {
                    theta: vec(e.theta)?,
                    iterations: e.iterations,
                    queries: e.queries,
                    residual: f64::from_bits(e.residual),
                    exploit: f64::from_bits(e.exploit),
                    exploit0: f64::from_bits(e.exploit0),
                    stop: e.stop,
                    memory: e.memory,
                    rejected: e.rejected,
                    fallback: e.fallback,
                },
                f64::from_bits(e.seconds),
            )),
            None => None,
        };
        let mut done = Vec::with_capacity(m.done.len().min(64));
        for d in &m.done {
            let kind: AlgoKind = d.algo.parse().map_err(|e: Error| e.to_string())?;
            let mut extras = Vec::new();
            for (label, t, last) in &d.extras {
                if label.is_empty()
                    || !label
                        .bytes()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                {
                    return Err(format!("iterate label {label:?} is not a plain name"));
                }
                extras.push((label.clone(), vec(*t)?, metrics_from(last)));
            }
            done.push(RunInfo {
                kind,
                step: Step {
                    alpha: f64::from_bits(d.alpha),
                    eta: f64::from_bits(d.eta),
                },
                iterations: d.iterations,
                queries: d.queries,
                seconds: f64::from_bits(d.seconds),
                stop: d.stop,
                last: metrics_from(&d.last),
                theta: vec(d.theta)?,
                extras,
            });
        }
        let current = match &m.current {
            Some(c) => Some(RunState {
                k: c.k,
                queries: c.queries,
                seconds: f64::from_bits(c.seconds),
                algo: AlgoState {
                    vectors: c
                        .vectors
                        .iter()
                        .map(|&i| vec(i))
                        .collect::<Result<_, _>>()?,
                    counters: c.counters.clone(),
                },
                oracle: c.oracle,
                last: metrics_from(&c.last),
                extra_last: c.extra_last.iter().map(metrics_from).collect(),
            }),
            None => None,
        };
        Ok(Checkpoint {
            fingerprint: m.fingerprint,
            csv,
            equilibrium,
            done,
            current,
        })
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
