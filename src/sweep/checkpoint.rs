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
//! **Format**: a [`crate::io::blobfile`] with the magic `NASHMPSW` (version 2), as
//! `checkpoint.nmpck` of `solve`: each file's record serialises itself, vectors and iterate
//! series as raw little-endian blobs, floats by their bit patterns (so a resumed run continues on
//! the same bits). Parsing works on bytes and checks every length against the file before
//! allocating; a file written by an older version is refused as such. Every file is written
//! atomically ([`crate::io::atomic`]).

use super::cache::GameSpec;
use super::lockstep::BatchStats;
use super::record::{records, EqReport, Record, RunResult};
use crate::algo::AlgoKind;
use crate::equilibrium::Equilibrium;
use crate::error::{Error, Result};
use crate::io::atomic;
use crate::io::blobfile::{self, Format};
use crate::run::checkpoint::{check_label, check_len};
use crate::run::RunState;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The checkpoint folder's name inside `--out`.
pub const DIR_NAME: &str = "checkpoint";
const FINGERPRINT_FILE: &str = "sweep.txt";
/// Largest manifest accepted (sizes, counters, labels and certificates only).
pub const MAX_MANIFEST: u64 = 1 << 20;
/// The file format (version 1 wrote hand-made mirror records; it is refused as older).
pub const FORMAT: Format = Format {
    magic: b"NASHMPSW",
    version: 2,
    max_manifest: MAX_MANIFEST,
};

/// `eq-BB.nmpsw`: one `π*` of the game in progress.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EqFile {
    /// The game file's fingerprint.
    game: String,
    #[serde(with = "blobfile::bits")]
    beta: f64,
    equilibrium: Equilibrium,
}

/// `run-JJ.nmpsw`: one run of the game in progress.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunFile {
    game: String,
    #[serde(with = "blobfile::bits")]
    beta: f64,
    algo: AlgoKind,
    /// Where the run stands, unless it has ended.
    state: Option<RunState>,
    /// Its logged iterates by label, each series a blob.
    #[serde(with = "series")]
    series: Vec<(String, Vec<Record>)>,
}

/// `game-NNNN.nmpsw`: a completed game (`flatten` rules out `deny_unknown_fields` here).
#[derive(Serialize, Deserialize)]
struct GameFile {
    game: String,
    /// `family n seed`, a check that the game is the one at this position of the grid.
    spec: String,
    #[serde(flatten)]
    saved: SavedGame,
}

/// `Vec<(label, records)>`, each series a blob.
mod series {
    use super::records;
    use crate::sweep::record::Record;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[(String, Vec<Record>)], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|(l, r)| (l, records::Ref(r))))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(String, Vec<Record>)>, D::Error> {
        let v = Vec::<(String, records::Owned)>::deserialize(d)?;
        Ok(v.into_iter().map(|(l, r)| (l, r.0)).collect())
    }
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
#[derive(Serialize, Deserialize)]
pub struct SavedGame {
    pub file: PathBuf,
    pub generated: bool,
    #[serde(with = "blobfile::bits")]
    pub generate_seconds: f64,
    #[serde(with = "blobfile::bits")]
    pub solve_seconds: f64,
    pub stats: BatchStats,
    pub compare: Option<String>,
    /// The certificates (their `theta` is not kept: it is empty).
    pub equilibria: Vec<EqReport>,
    pub runs: Vec<RunResult>,
}

fn spec_label(s: &GameSpec) -> String {
    format!("{} n={} seed={}", s.family_name(), s.n, s.seed)
}

/// The checkpoint folder of one sweep.
#[derive(Clone, Debug)]
pub struct SweepCheckpoint {
    pub dir: PathBuf,
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
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
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
        #[derive(Serialize)]
        struct View<'a> {
            game: &'a str,
            spec: String,
            #[serde(flatten)]
            saved: &'a SavedGame,
        }
        let view = View {
            game: game_fp,
            spec: spec_label(spec),
            saved: g,
        };
        blobfile::write(&self.game_file(i), &FORMAT, &view)?;
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
        let m: GameFile = blobfile::read(&path, &FORMAT)?;
        check_game(&path, &m.game, game_fp)?;
        if m.spec != spec_label(spec) {
            return Err(bad(&path)(format!(
                "it holds game {:?}, expected {:?}",
                m.spec,
                spec_label(spec)
            )));
        }
        let mut g = m.saved;
        for r in &mut g.runs {
            check_label(&r.algo).map_err(bad(&path))?;
            r.game = *spec;
        }
        Ok(Some(g))
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
        #[derive(Serialize)]
        struct View<'a> {
            game: &'a str,
            #[serde(with = "blobfile::bits")]
            beta: f64,
            equilibrium: &'a Equilibrium,
        }
        let view = View {
            game: &self.game,
            beta,
            equilibrium: e,
        };
        blobfile::write(&self.eq_file(b), &FORMAT, &view)
    }

    /// `π*` number `b` (at `beta`), if saved.
    pub fn load_eq(&self, b: usize, beta: f64) -> Result<Option<Equilibrium>> {
        let path = self.eq_file(b);
        if !path.exists() {
            return Ok(None);
        }
        let m: EqFile = blobfile::read(&path, &FORMAT)?;
        check_game(&path, &m.game, &self.game)?;
        if m.beta.to_bits() != beta.to_bits() {
            return Err(bad(&path)(format!(
                "it holds β = {}, expected {beta}",
                m.beta
            )));
        }
        check_len("π*", &m.equilibrium.theta, self.n).map_err(bad(&path))?;
        Ok(Some(m.equilibrium))
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
        #[derive(Serialize)]
        struct View<'a> {
            game: &'a str,
            #[serde(with = "blobfile::bits")]
            beta: f64,
            algo: AlgoKind,
            state: Option<&'a RunState>,
            #[serde(with = "series")]
            series: &'a [(String, Vec<Record>)],
        }
        let view = View {
            game: &self.game,
            beta,
            algo: kind,
            state,
            series,
        };
        blobfile::write(&self.run_file(j), &FORMAT, &view)
    }

    /// Run `j` (`kind` at `beta`), if saved.
    pub fn load_run(&self, j: usize, beta: f64, kind: AlgoKind) -> Result<Option<SavedRun>> {
        let path = self.run_file(j);
        if !path.exists() {
            return Ok(None);
        }
        let m: RunFile = blobfile::read(&path, &FORMAT)?;
        check_game(&path, &m.game, &self.game)?;
        if m.beta.to_bits() != beta.to_bits() || m.algo != kind {
            return Err(bad(&path)(format!(
                "it holds {} at β = {}, expected {kind} at β = {beta}",
                m.algo, m.beta
            )));
        }
        if let Some(s) = &m.state {
            s.check_len(self.n).map_err(bad(&path))?;
        }
        for (label, _) in &m.series {
            check_label(label).map_err(bad(&path))?;
        }
        Ok(Some(SavedRun {
            state: m.state,
            series: m.series,
        }))
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
    use crate::algo::AlgoState;
    use crate::equilibrium::EqStop;
    use crate::gen::{Family, Params};
    use crate::metrics::Metrics;

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
                ..BatchStats::default()
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
            runs: vec![RunResult {
                game: spec(),
                beta: 0.2,
                policy: crate::sweep::config::Policy::Tabular,
                oracle: crate::sweep::config::Oracle::Exact,
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
            assert!(
                blobfile::parse::<RunFile>(&bytes[..cut], &FORMAT).is_err(),
                "cut {cut}"
            );
        }
        let mut old = bytes.clone();
        old[8..12].copy_from_slice(&1u32.to_le_bytes());
        std::fs::write(g.run_file(0), old).unwrap();
        let e = g.load_run(0, 0.2, AlgoKind::Mwu).unwrap_err().to_string();
        assert!(e.contains("written by an older version"), "{e}");
    }
}
