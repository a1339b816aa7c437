//! Checkpoints of a sweep: the folder `OUT/checkpoint/`, from which `nashmp sweep … --resume`
//! continues an interrupted sweep and ends on the bytes of an uninterrupted one.
//!
//! **Contents.**
//! - `sweep.txt`: the fingerprint of the grid and of every argument that affects the results
//!   (one `key=value` per line, so a refused resume can name what changed).
//! - `game-NNNN.nmpsw`: game `NNNN` of the sweep, completed: its runs (every logged iterate),
//!   its equilibrium certificates and timings. A resume skips the game.
//! - `game-NNNN/eq-BB.nmpsw`: `π*` at β number `BB` of the game in progress, once solved.
//! - `game-NNNN/run-JJ.nmpsw`: run number `JJ` of the game in progress (a (β, algorithm)
//!   cell): its iterates so far and its algorithm's state ([`RunState`]), saved every
//!   `--checkpoint-every K` iterations, when it is interrupted and when it ends.
//!
//! Every game file carries the fingerprint of its game file
//! ([`crate::run::fingerprint::game_file`]); a resume is refused if the game changed.
//!
//! **Format** (little endian), as `checkpoint.nmpck` of `solve`: the magic `NASHMPSW`, a `u32`
//! version, a `u32` 0, a `u64` length `J ≤` [`MAX_MANIFEST`], `J` bytes of JSON (the manifest),
//! then the blobs the manifest lists, back to back, each a sequence of `u64` words (floats by
//! their bit patterns, so a resumed run continues on the same bits). [`parse`] works on bytes and
//! checks every length against the file before allocating. Every file is written atomically
//! ([`crate::io::atomic`]).

use super::cache::GameSpec;
use super::lockstep::BatchStats;
use super::runner::{EqReport, Record};
use crate::algo::{AlgoKind, AlgoState};
use crate::equilibrium::{EqStop, Equilibrium};
use crate::error::{Error, Result};
use crate::io::atomic::{self, AtomicFile};
use crate::metrics::Metrics;
use crate::run::checkpoint::{metrics_from, metrics_rec, CurRec as StateRec};
use crate::run::RunState;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The checkpoint folder's name inside `--out`.
pub const DIR_NAME: &str = "checkpoint";
const FINGERPRINT_FILE: &str = "sweep.txt";
const MAGIC: &[u8; 8] = b"NASHMPSW";
const VERSION: u32 = 1;
const PREFIX: usize = 24;
/// Largest manifest accepted (sizes, counters, labels and certificates only).
pub const MAX_MANIFEST: u64 = 1 << 20;
/// Words per saved iterate: iteration, queries, a mask of the metrics present, the metrics.
const RECORD_WORDS: usize = 3 + crate::metrics::Metric::COUNT;

/// The manifest with the lengths of the blobs that follow it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<M> {
    /// Words in each blob, in file order.
    blobs: Vec<u64>,
    body: M,
}

/// Writes `body` and `blobs` to `path` atomically.
fn write<M: Serialize>(path: &Path, body: M, blobs: &[Vec<u64>]) -> Result<()> {
    let env = Envelope {
        blobs: blobs.iter().map(|b| b.len() as u64).collect(),
        body,
    };
    let json = serde_json::to_vec(&env).expect("manifest serialises");
    let mut f = AtomicFile::create(path)?;
    let io = |e| Error::io(path, e);
    crate::run::checkpoint::write_prefix(&mut f, path, MAGIC, VERSION, &json)?;
    for b in blobs {
        for chunk in b.chunks(1 << 16) {
            let bytes: Vec<u8> = chunk.iter().flat_map(|x| x.to_le_bytes()).collect();
            f.write_all(&bytes).map_err(io)?;
        }
    }
    f.commit()
}

/// Splits a checkpoint file into its manifest and its blobs (as byte slices of whole words).
pub fn parse<M: DeserializeOwned>(bytes: &[u8]) -> std::result::Result<(M, Vec<&[u8]>), String> {
    let body = crate::run::checkpoint::manifest_end(bytes, MAGIC, VERSION, MAX_MANIFEST)?;
    let env: Envelope<M> =
        serde_json::from_slice(&bytes[PREFIX..body]).map_err(|e| format!("manifest: {e}"))?;
    let mut blobs = Vec::with_capacity(env.blobs.len().min(1 << 16));
    let mut at = body as u64;
    for (i, &words) in env.blobs.iter().enumerate() {
        let end = words
            .checked_mul(8)
            .and_then(|b| at.checked_add(b))
            .filter(|&e| e <= bytes.len() as u64)
            .ok_or_else(|| format!("blob {i} ({words} words) runs past the end of the file"))?;
        blobs.push(&bytes[at as usize..end as usize]);
        at = end;
    }
    if at != bytes.len() as u64 {
        return Err(format!(
            "{} bytes after the last blob",
            bytes.len() as u64 - at
        ));
    }
    Ok((env.body, blobs))
}

/// Reads blobs out of a parsed file, each at most once (so a lying manifest cannot multiply the
/// file's size).
struct Blobs<'a> {
    list: Vec<Option<&'a [u8]>>,
}

impl<'a> Blobs<'a> {
    fn new(list: Vec<&'a [u8]>) -> Self {
        Blobs {
            list: list.into_iter().map(Some).collect(),
        }
    }
    fn take(&mut self, i: usize) -> std::result::Result<&'a [u8], String> {
        self.list
            .get_mut(i)
            .ok_or_else(|| format!("blob {i} does not exist"))?
            .take()
            .ok_or_else(|| format!("blob {i} is referenced twice"))
    }
    /// A vector of exactly `n` floats.
    fn vector(&mut self, i: usize, n: usize) -> std::result::Result<Vec<f64>, String> {
        let b = self.take(i)?;
        if b.len() as u64 != 8 * n as u64 {
            return Err(format!(
                "vector blob {i} has {} bytes, expected {} for {n} actions",
                b.len(),
                8 * n as u64
            ));
        }
        Ok(words(b).map(f64::from_bits).collect())
    }
    fn records(&mut self, i: usize) -> std::result::Result<Vec<Record>, String> {
        let b = self.take(i)?;
        if b.len() % (8 * RECORD_WORDS) != 0 {
            return Err(format!(
                "record blob {i} has {} bytes, not a multiple of {}",
                b.len(),
                8 * RECORD_WORDS
            ));
        }
        let w: Vec<u64> = words(b).collect();
        Ok(w.chunks_exact(RECORD_WORDS)
            .map(|r| {
                let vals =
                    std::array::from_fn(|m| (r[2] >> m & 1 == 1).then(|| f64::from_bits(r[3 + m])));
                Record {
                    iter: r[0],
                    queries: r[1],
                    m: Metrics::from_values(vals),
                }
            })
            .collect())
    }
}

fn words(b: &[u8]) -> impl Iterator<Item = u64> + '_ {
    b.chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
}

fn records_blob(records: &[Record]) -> Vec<u64> {
    let mut w = Vec::with_capacity(records.len() * RECORD_WORDS);
    for r in records {
        let vals = r.m.values();
        let mask = vals
            .iter()
            .enumerate()
            .fold(0u64, |m, (i, v)| m | (v.is_some() as u64) << i);
        w.extend([r.iter, r.queries, mask]);
        w.extend(vals.iter().map(|v| v.map_or(0, f64::to_bits)));
    }
    w
}

/// A label that can go into `runs.csv` unquoted.
fn check_label(label: &str) -> std::result::Result<(), String> {
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

/// An equilibrium certificate, every float by its bits.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CertRec {
    beta: u64,
    iterations: u64,
    queries: u64,
    residual: u64,
    exploit: u64,
    exploit0: u64,
    stop: EqStop,
    memory: usize,
    rejected: u64,
    fallback: bool,
}

impl CertRec {
    fn new(beta: f64, e: &Equilibrium) -> Self {
        CertRec {
            beta: beta.to_bits(),
            iterations: e.iterations,
            queries: e.queries,
            residual: e.residual.to_bits(),
            exploit: e.exploit.to_bits(),
            exploit0: e.exploit0.to_bits(),
            stop: e.stop,
            memory: e.memory,
            rejected: e.rejected,
            fallback: e.fallback,
        }
    }
    fn equilibrium(&self, theta: Vec<f64>) -> Equilibrium {
        Equilibrium {
            theta,
            iterations: self.iterations,
            queries: self.queries,
            residual: f64::from_bits(self.residual),
            exploit: f64::from_bits(self.exploit),
            exploit0: f64::from_bits(self.exploit0),
            stop: self.stop,
            memory: self.memory,
            rejected: self.rejected,
            fallback: self.fallback,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EqFile {
    /// The game file's fingerprint.
    game: String,
    cert: CertRec,
    theta: usize,
}

/// One iterate series (an algorithm's, or an extra iterate's) and where its records are.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeriesRec {
    label: String,
    records: usize,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunFile {
    game: String,
    beta: u64,
    algo: String,
    /// Where the run stands, unless it has ended.
    state: Option<StateRec>,
    series: Vec<SeriesRec>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunRec {
    beta: u64,
    algo: String,
    alpha: u64,
    kl0: u64,
    records: usize,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GameFile {
    game: String,
    /// `family n seed`, a check that the game is the one at this position of the grid.
    spec: String,
    file: PathBuf,
    generated: bool,
    generate_seconds: u64,
    solve_seconds: u64,
    stats: BatchStats,
    compare: Option<String>,
    equilibria: Vec<CertRec>,
    runs: Vec<RunRec>,
}

/// A saved run of the game in progress.
#[derive(Debug)]
pub struct SavedRun {
    /// Where it stands (`None`: it has ended).
    pub state: Option<RunState>,
    /// Its logged iterates so far, by label, in the order the labels first appeared.
    pub series: Vec<(String, Vec<Record>)>,
}

/// A completed game, as the sweep's outputs need it.
pub struct SavedGame {
    pub file: PathBuf,
    pub generated: bool,
    pub generate_seconds: f64,
    pub solve_seconds: f64,
    pub stats: BatchStats,
    pub compare: Option<String>,
    /// The certificates (loaded from a checkpoint, their `theta` is empty).
    pub equilibria: Vec<EqReport>,
    pub runs: Vec<super::runner::RunResult>,
}

fn spec_label(s: &GameSpec) -> String {
    format!("{} n={} seed={}", s.family_name(), s.n, s.seed)
}

/// The checkpoint folder of one sweep.
#[derive(Clone, Debug)]
pub struct SweepCheckpoint {
    pub dir: PathBuf,
}

/// Reads a checkpoint file whole, with a clear error.
fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

fn bad(path: &Path) -> impl Fn(String) -> Error + '_ {
    move |reason| Error::Checkpoint {
        path: path.into(),
        reason,
    }
}

impl SweepCheckpoint {
    pub fn new(out: &Path) -> Self {
        SweepCheckpoint {
            dir: out.join(DIR_NAME),
        }
    }

    /// Whether a checkpoint was written here.
    pub fn exists(&self) -> bool {
        self.dir.join(FINGERPRINT_FILE).exists()
    }

    /// Removes the folder (a stale checkpoint, or one whose sweep has completed); refuses if it
    /// holds anything a sweep does not write there.
    pub fn remove(&self) -> Result<()> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(&self.dir, e)),
        };
        for e in entries {
            let name = e.map_err(|e| Error::io(&self.dir, e))?.file_name();
            let name = name.to_string_lossy();
            let ours = name == FINGERPRINT_FILE
                || name.starts_with("game-")
                || (name.starts_with('.') && name.ends_with(".tmp"));
            if !ours {
                return Err(Error::Param(format!(
                    "{} holds {name:?}, which a sweep does not write: it is not a sweep checkpoint; \
                     move it away or choose another --out",
                    self.dir.display()
                )));
            }
        }
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&self.dir, e)),
            _ => Ok(()),
        }
    }

    /// Starts a fresh checkpoint for a sweep with fingerprint `fp`.
    pub fn start(&self, fp: &str) -> Result<()> {
        self.remove()?;
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        atomic::write_all(&self.dir.join(FINGERPRINT_FILE), fp.as_bytes())
    }

    /// Refuses to continue unless the saved fingerprint is `fp`; the error names the lines
    /// that differ.
    pub fn check(&self, fp: &str) -> Result<()> {
        let path = self.dir.join(FINGERPRINT_FILE);
        let bytes = read_bytes(&path)?;
        if bytes.len() as u64 > MAX_MANIFEST {
            return Err(bad(&path)(format!(
                "{} bytes, more than the cap",
                bytes.len()
            )));
        }
        let saved = String::from_utf8_lossy(&bytes);
        if saved == fp {
            return Ok(());
        }
        let (then, now) = diff_lines(&saved, fp);
        Err(Error::ResumeMismatch {
            path,
            what: "sweep arguments",
            saved: then,
            now,
        })
    }

    fn game_file(&self, i: usize) -> PathBuf {
        self.dir.join(format!("game-{i:04}.nmpsw"))
    }

    /// The folder of the runs of game `i` while it is in progress.
    pub fn game_dir(&self, i: usize) -> PathBuf {
        self.dir.join(format!("game-{i:04}"))
    }

    /// Saves completed game `i` (and drops the files of its runs in progress).
    pub fn save_game(&self, i: usize, game_fp: &str, g: &SavedGame, spec: &GameSpec) -> Result<()> {
        let mut blobs = Vec::new();
        let runs = g
            .runs
            .iter()
            .map(|r| {
                blobs.push(records_blob(&r.records));
                RunRec {
                    beta: r.beta.to_bits(),
                    algo: r.algo.clone(),
                    alpha: r.alpha.to_bits(),
                    kl0: r.kl0.to_bits(),
                    records: blobs.len() - 1,
                }
            })
            .collect();
        let body = GameFile {
            game: game_fp.into(),
            spec: spec_label(spec),
            file: g.file.clone(),
            generated: g.generated,
            generate_seconds: g.generate_seconds.to_bits(),
            solve_seconds: g.solve_seconds.to_bits(),
            stats: g.stats,
            compare: g.compare.clone(),
            equilibria: g
                .equilibria
                .iter()
                .map(|e| CertRec::new(e.beta, &e.certificate))
                .collect(),
            runs,
        };
        write(&self.game_file(i), body, &blobs)?;
        let d = self.game_dir(i);
        match std::fs::remove_dir_all(&d) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&d, e)),
            _ => Ok(()),
        }
    }

    /// Completed game `i`, if saved; refused if its game file's fingerprint is not `game_fp`.
    pub fn load_game(&self, i: usize, game_fp: &str, spec: &GameSpec) -> Result<Option<SavedGame>> {
        let path = self.game_file(i);
        if !path.exists() {
            return Ok(None);
        }
        let bytes = read_bytes(&path)?;
        let (m, blobs): (GameFile, _) = parse(&bytes).map_err(bad(&path))?;
        check_game(&path, &m.game, game_fp)?;
        if m.spec != spec_label(spec) {
            return Err(bad(&path)(format!(
                "it holds game {:?}, expected {:?}",
                m.spec,
                spec_label(spec)
            )));
        }
        let mut blobs = Blobs::new(blobs);
        let mut runs = Vec::with_capacity(m.runs.len().min(1 << 12));
        for r in &m.runs {
            check_label(&r.algo).map_err(bad(&path))?;
            runs.push(super::runner::RunResult {
                game: *spec,
                beta: f64::from_bits(r.beta),
                algo: r.algo.clone(),
                alpha: f64::from_bits(r.alpha),
                kl0: f64::from_bits(r.kl0),
                records: blobs.records(r.records).map_err(bad(&path))?,
            });
        }
        Ok(Some(SavedGame {
            file: m.file,
            generated: m.generated,
            generate_seconds: f64::from_bits(m.generate_seconds),
            solve_seconds: f64::from_bits(m.solve_seconds),
            stats: m.stats,
            compare: m.compare,
            equilibria: m
                .equilibria
                .iter()
                .map(|c| EqReport {
                    beta: f64::from_bits(c.beta),
                    certificate: c.equilibrium(Vec::new()),
                })
                .collect(),
            runs,
        }))
    }
}

/// Where the game in progress saves its equilibria and runs.
#[derive(Clone, Debug)]
pub struct GameCheckpoint {
    pub dir: PathBuf,
    /// The game file's fingerprint.
    pub game: String,
    pub n: usize,
}

impl GameCheckpoint {
    fn eq_file(&self, b: usize) -> PathBuf {
        self.dir.join(format!("eq-{b:02}.nmpsw"))
    }
    fn run_file(&self, j: usize) -> PathBuf {
        self.dir.join(format!("run-{j:02}.nmpsw"))
    }

    pub fn create_dir(&self) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))
    }

    pub fn save_eq(&self, b: usize, beta: f64, e: &Equilibrium) -> Result<()> {
        let body = EqFile {
            game: self.game.clone(),
            cert: CertRec::new(beta, e),
            theta: 0,
        };
        write(
            &self.eq_file(b),
            body,
            &[e.theta.iter().map(|x| x.to_bits()).collect()],
        )
    }

    /// `π*` number `b` (at `beta`), if saved.
    pub fn load_eq(&self, b: usize, beta: f64) -> Result<Option<Equilibrium>> {
        let path = self.eq_file(b);
        if !path.exists() {
            return Ok(None);
        }
        let bytes = read_bytes(&path)?;
        let (m, blobs): (EqFile, _) = parse(&bytes).map_err(bad(&path))?;
        check_game(&path, &m.game, &self.game)?;
        if m.cert.beta != beta.to_bits() {
            return Err(bad(&path)(format!(
                "it holds β = {}, expected {beta}",
                f64::from_bits(m.cert.beta)
            )));
        }
        let theta = Blobs::new(blobs)
            .vector(m.theta, self.n)
            .map_err(bad(&path))?;
        Ok(Some(m.cert.equilibrium(theta)))
    }

    /// Saves run `j` (`kind` at `beta`): its state (`None` once ended) and its series.
    pub fn save_run(
        &self,
        j: usize,
        beta: f64,
        kind: AlgoKind,
        state: Option<&RunState>,
        series: &[(String, Vec<Record>)],
    ) -> Result<()> {
        let mut blobs: Vec<Vec<u64>> = Vec::new();
        let mut blob = |b: Vec<u64>| {
            blobs.push(b);
            blobs.len() - 1
        };
        let state = state.map(|s| StateRec {
            k: s.k,
            queries: s.queries,
            seconds: s.seconds.to_bits(),
            vectors: s
                .algo
                .vectors
                .iter()
                .map(|v| blob(v.iter().map(|x| x.to_bits()).collect()))
                .collect(),
            counters: s.algo.counters.clone(),
            oracle: s.oracle,
            last: metrics_rec(&s.last),
            extra_last: s.extra_last.iter().map(metrics_rec).collect(),
        });
        let series = series
            .iter()
            .map(|(label, recs)| SeriesRec {
                label: label.clone(),
                records: blob(records_blob(recs)),
            })
            .collect();
        let body = RunFile {
            game: self.game.clone(),
            beta: beta.to_bits(),
            algo: kind.name().into(),
            state,
            series,
        };
        write(&self.run_file(j), body, &blobs)
    }

    /// Run `j` (`kind` at `beta`), if saved.
    pub fn load_run(&self, j: usize, beta: f64, kind: AlgoKind) -> Result<Option<SavedRun>> {
        let path = self.run_file(j);
        if !path.exists() {
            return Ok(None);
        }
        let bytes = read_bytes(&path)?;
        let (m, blobs): (RunFile, _) = parse(&bytes).map_err(bad(&path))?;
        check_game(&path, &m.game, &self.game)?;
        if m.beta != beta.to_bits() || m.algo != kind.name() {
            return Err(bad(&path)(format!(
                "it holds {} at β = {}, expected {kind} at β = {beta}",
                m.algo,
                f64::from_bits(m.beta)
            )));
        }
        let mut blobs = Blobs::new(blobs);
        let state = match &m.state {
            Some(s) => Some(RunState {
                k: s.k,
                queries: s.queries,
                seconds: f64::from_bits(s.seconds),
                algo: AlgoState {
                    vectors: s
                        .vectors
                        .iter()
                        .map(|&i| blobs.vector(i, self.n))
                        .collect::<std::result::Result<_, _>>()
                        .map_err(bad(&path))?,
                    counters: s.counters.clone(),
                },
                oracle: s.oracle,
                last: metrics_from(&s.last),
                extra_last: s.extra_last.iter().map(metrics_from).collect(),
            }),
            None => None,
        };
        let mut series = Vec::with_capacity(m.series.len().min(64));
        for s in &m.series {
            check_label(&s.label).map_err(bad(&path))?;
            series.push((
                s.label.clone(),
                blobs.records(s.records).map_err(bad(&path))?,
            ));
        }
        Ok(Some(SavedRun { state, series }))
    }
}

fn check_game(path: &Path, saved: &str, now: &str) -> Result<()> {
    if saved == now {
        return Ok(());
    }
    Err(Error::ResumeMismatch {
        path: path.into(),
        what: "game file",
        saved: saved.into(),
        now: now.into(),
    })
}

/// The lines of `a` and of `b` that the other lacks, each side joined by `; `.
fn diff_lines(a: &str, b: &str) -> (String, String) {
    let only = |x: &str, y: &str| {
        let ys: Vec<&str> = y.lines().collect();
        let v: Vec<&str> = x.lines().filter(|l| !ys.contains(l)).collect();
        if v.is_empty() {
            "(nothing else)".to_string()
        } else {
            v.join("; ")
        }
    };
    (only(a, b), only(b, a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::{Family, Params};

    fn spec() -> GameSpec {
        GameSpec {
            family: Family::Uniform,
            n: 3,
            seed: 1,
            params: Params::default(),
        }
    }

    fn recs() -> Vec<Record> {
        vec![
            Record {
                iter: 0,
                queries: 0,
                m: Metrics {
                    kl_star: Some(f64::NAN),
                    bound: Some(-0.0),
                    ..Metrics::default()
                },
            },
            Record {
                iter: 1,
                queries: u64::MAX,
                m: Metrics {
                    exploit: Some(f64::INFINITY),
                    ..Metrics::default()
                },
            },
        ]
    }

    fn sample_state() -> RunState {
        RunState {
            k: 5,
            queries: 10,
            seconds: 0.25,
            algo: AlgoState {
                vectors: vec![vec![-1.5, 0.0, f64::MIN_POSITIVE]],
                counters: vec![7],
            },
            oracle: None,
            last: Metrics {
                gap: Some(1e-300),
                ..Metrics::default()
            },
            extra_last: vec![Metrics::default()],
        }
    }

    #[test]
    fn run_and_eq_round_trip_bit_exact() {
        let d = tempfile::tempdir().unwrap();
        let g = GameCheckpoint {
            dir: d.path().to_path_buf(),
            game: "fp".into(),
            n: 3,
        };
        let series = vec![("mwu".to_string(), recs()), ("mwu-avg".to_string(), recs())];
        let st = sample_state();
        g.save_run(4, 0.2, AlgoKind::Mwu, Some(&st), &series)
            .unwrap();
        let r = g.load_run(4, 0.2, AlgoKind::Mwu).unwrap().unwrap();
        assert_eq!(format!("{:?}", r.state), format!("{:?}", Some(st)));
        assert_eq!(format!("{:?}", r.series), format!("{series:?}"));
        assert!(g.load_run(3, 0.2, AlgoKind::Mwu).unwrap().is_none());
        let e = g.load_run(4, 1.0, AlgoKind::Mwu).unwrap_err().to_string();
        assert!(e.contains("expected mwu at β = 1"), "{e}");
        let other = GameCheckpoint {
            game: "changed".into(),
            ..g.clone()
        };
        let e = other
            .load_run(4, 0.2, AlgoKind::Mwu)
            .unwrap_err()
            .to_string();
        assert!(e.contains("game file changed"), "{e}");

        let eq = Equilibrium {
            theta: vec![0.1, -0.2, 0.3],
            iterations: 9,
            queries: 18,
            residual: 1e-13,
            exploit: 2e-13,
            exploit0: 0.5,
            stop: EqStop::Converged,
            memory: 16,
            rejected: 3,
            fallback: true,
        };
        g.save_eq(1, 0.2, &eq).unwrap();
        let back = g.load_eq(1, 0.2).unwrap().unwrap();
        assert_eq!(format!("{back:?}"), format!("{eq:?}"));
        let short = GameCheckpoint { n: 4, ..g.clone() };
        assert!(short.load_eq(1, 0.2).is_err());
    }

    #[test]
    fn game_round_trip_and_fingerprint_diff() {
        let d = tempfile::tempdir().unwrap();
        let ck = SweepCheckpoint::new(d.path());
        ck.start("a=1\nb=2\n").unwrap();
        ck.check("a=1\nb=2\n").unwrap();
        let e = ck.check("a=1\nb=3\n").unwrap_err().to_string();
        assert!(e.contains("then: b=2; now: b=3"), "{e}");
        let g = SavedGame {
            file: "g.npy".into(),
            generated: true,
            generate_seconds: 0.5,
            solve_seconds: 1.5,
            stats: BatchStats {
                passes: 3,
                vectors: 9,
            },
            compare: Some("x".into()),
            equilibria: vec![EqReport {
                beta: 0.2,
                certificate: Equilibrium {
                    theta: Vec::new(),
                    iterations: 1,
                    queries: 2,
                    residual: 0.0,
                    exploit: 0.0,
                    exploit0: 0.0,
                    stop: EqStop::Stalled,
                    memory: 0,
                    rejected: 0,
                    fallback: false,
                },
            }],
            runs: vec![super::super::runner::RunResult {
                game: spec(),
                beta: 0.2,
                algo: "nash-mp".into(),
                alpha: 2.0,
                kl0: 0.125,
                records: recs(),
            }],
        };
        ck.save_game(2, "fp", &g, &spec()).unwrap();
        let back = ck.load_game(2, "fp", &spec()).unwrap().unwrap();
        assert_eq!(format!("{:?}", back.runs), format!("{:?}", g.runs));
        assert_eq!(back.compare, g.compare);
        assert!(ck.load_game(2, "other", &spec()).is_err());
        let mut s2 = spec();
        s2.seed = 2;
        assert!(ck.load_game(2, "fp", &s2).is_err());
        ck.remove().unwrap();
        assert!(!ck.exists());
        std::fs::create_dir_all(&ck.dir).unwrap();
        std::fs::write(ck.dir.join("notes.txt"), "mine").unwrap();
        let e = ck.start("a=1\n").unwrap_err().to_string();
        assert!(e.contains("not a sweep checkpoint"), "{e}");
        assert!(ck.dir.join("notes.txt").exists());
    }

    proptest::proptest! {
        #[test]
        fn mutated_files_never_panic(
            muts in proptest::collection::vec((0usize..4096, proptest::prelude::any::<u8>()), 1..6),
        ) {
            let d = tempfile::tempdir().unwrap();
            let g = GameCheckpoint { dir: d.path().to_path_buf(), game: "fp".into(), n: 3 };
            g.save_run(0, 0.2, AlgoKind::Mwu, Some(&sample_state()), &[("mwu".into(), recs())]).unwrap();
            let p = g.run_file(0);
            let mut b = std::fs::read(&p).unwrap();
            for (i, v) in muts {
                let i = i % b.len();
                b[i] = v;
            }
            std::fs::write(&p, b).unwrap();
            let _ = g.load_run(0, 0.2, AlgoKind::Mwu);
        }
    }

    #[test]
    fn truncations_are_errors() {
        let d = tempfile::tempdir().unwrap();
        let g = GameCheckpoint {
            dir: d.path().to_path_buf(),
            game: "fp".into(),
            n: 3,
        };
        g.save_run(
            0,
            0.2,
            AlgoKind::Mwu,
            Some(&sample_state()),
            &[("mwu".into(), recs())],
        )
        .unwrap();
        let bytes = std::fs::read(g.run_file(0)).unwrap();
        for cut in 0..bytes.len() {
            assert!(parse::<RunFile>(&bytes[..cut]).is_err(), "cut {cut}");
        }
    }
}
