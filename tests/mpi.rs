//! Sharded games under `mpirun` (needs `--features mpi` and an MPI installation; the CI runs
//! `cargo test --features mpi --test mpi`). Every test runs the real binary under
//! `mpirun --allow-run-as-root --oversubscribe -np R` and compares its output files with a
//! single-process run, byte for byte (dense) or within the reassociation bound (packed).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_nashmp");

struct Tmp(tempfile::TempDir);

impl Tmp {
    fn new() -> Self {
        Tmp(tempfile::tempdir().expect("temp dir"))
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn mpirun_cmd(np: usize) -> Command {
    let mut c = Command::new("mpirun");
    c.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        // Ranks give up the core while they wait (the machine has fewer cores than ranks).
        .env("OMPI_MCA_mpi_yield_when_idle", "1")
        .args(["--allow-run-as-root", "--oversubscribe", "-np"])
        .arg(np.to_string());
    c
}

fn check(o: Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// `nashmp ARGS` as one process.
fn one(args: &[&str]) -> String {
    check(
        Command::new(BIN).args(args).output().unwrap(),
        &format!("nashmp {args:?}"),
    )
}

/// `mpirun -np R nashmp ARGS`.
fn mpi(np: usize, args: &[&str]) -> String {
    check(
        mpirun_cmd(np).arg(BIN).args(args).output().unwrap(),
        &format!("mpirun -np {np} nashmp {args:?}"),
    )
}

/// Runs a failing job; asserts it ends non-zero within 30 s with one message holding every
/// needle, and no panic.
fn mpi_fails(mut cmd: Command, needles: &[&str]) -> String {
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the job did not end within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success(), "the job succeeded: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
    assert_eq!(err.matches("error:").count(), 1, "one message: {err}");
    err
}

/// `metrics.csv` without its `seconds` column.
fn metrics(out: &Path) -> Vec<String> {
    let txt = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let mut lines = txt.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let sec = header.iter().position(|c| *c == "seconds").unwrap();
    lines
        .map(|l| {
            let mut c: Vec<&str> = l.split(',').collect();
            c.remove(sec);
            c.join(",")
        })
        .collect()
}

fn read_f64s(path: &Path) -> Vec<f64> {
    let b = std::fs::read(path).unwrap();
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    b[10 + hlen..]
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

const POLICIES: [&str; 4] = [
    "nash-mp.policy.npy",
    "mmd.policy.npy",
    "omwu.policy.npy",
    "equilibrium.npy",
];

fn assert_same_outputs(a: &Path, b: &Path, what: &str) {
    assert_eq!(metrics(a), metrics(b), "{what}: metrics.csv");
    for f in POLICIES {
        if !a.join(f).exists() {
            assert!(!b.join(f).exists(), "{what}: {f}");
            continue;
        }
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{what}: {f}"
        );
    }
}

fn solve_args<'a>(game: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "solve",
        game,
        "--beta",
        "0.1",
        "--iters",
        "20",
        "--algo",
        "nash-mp,mmd,omwu",
        "--out",
        out,
    ];
    a.extend_from_slice(extra);
    a
}

/// A dense f32 game of 1000 actions (uneven splits: 333 + 333 + 334) at 1, 2 and 3 ranks:
/// metrics.csv (all but `seconds`), every policy and π* equal the single process's bytes.
#[test]
fn dense_f32_matches_one_process_bit_for_bit() {
    let t = Tmp::new();
    let whole = t.path("u.npy");
    let gen = ["generate", "uniform", "--n", "1000", "--seed", "3"];
    one(&[&gen[..], &["--out", s(&whole)]].concat());
    let base = t.path("base");
    one(&solve_args(s(&whole), s(&base), &[]));
    for r in [1usize, 2, 3] {
        let dir = t.path(&format!("u{r}"));
        let rs = r.to_string();
        one(&[&gen[..], &["--shards", &rs, "--out", s(&dir)]].concat());
        let out = t.path(&format!("o{r}"));
        let text = mpi(r, &solve_args(s(&dir), s(&out), &[]));
        assert_same_outputs(&base, &out, &format!("-np {r}"));
        assert_eq!(
            text.matches("nash-mp ").count(),
            1,
            "rank 0 alone prints: {text}"
        );
        if r == 2 {
            let o1 = t.path("o2-threads1");
            mpi(2, &solve_args(s(&dir), s(&o1), &["--threads", "1"]));
            assert_same_outputs(&base, &o1, "-np 2 --threads 1");
        }
        if r == 3 {
            // The equilibrium command too.
            let (a, b) = (t.path("pi-one.npy"), t.path("pi-mpi.npy"));
            let eq = ["equilibrium", "--beta", "0.05", "--out"];
            one(&[&eq[..], &[s(&a), s(&whole)]].concat());
            mpi(3, &[&eq[..], &[s(&b), s(&dir)]].concat());
            assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        }
    }
}

/// A packed u16 game of 1100 actions (5 tile rows) on 2 ranks: the same bits as the
/// single-process engine on the same shard set, at every repeat and thread count; within
/// 1e-12 (relative) of the unsharded game, whose sums run in another order.
#[test]
fn packed_u16_is_repeatable_and_within_the_bound() {
    let t = Tmp::new();
    let gen = [
        "generate",
        "bradley-terry",
        "--n",
        "1100",
        "--layout",
        "packed",
        "--dtype",
        "u16",
    ];
    let whole = t.path("b.nmp");
    let dir = t.path("b2");
    one(&[&gen[..], &["--out", s(&whole)]].concat());
    one(&[&gen[..], &["--shards", "2", "--out", s(&dir)]].concat());
    // Cheap metrics (no π*): π* is solved to the precision floor of u16 entries (8e-6), and
    // where two summation orders stop that solve can differ by about that much.
    let cheap = ["--metrics", "cheap"];
    let base = t.path("base");
    one(&solve_args(s(&dir), s(&base), &cheap));
    let unsharded = t.path("unsharded");
    one(&solve_args(s(&whole), s(&unsharded), &cheap));
    let runs: [&[&str]; 3] = [&[], &[], &["--threads", "1"]];
    for (k, extra) in runs.iter().enumerate() {
        let out = t.path(&format!("o{k}"));
        mpi(
            2,
            &solve_args(s(&dir), s(&out), &[&cheap[..], extra].concat()),
        );
        assert_same_outputs(&base, &out, &format!("packed -np 2 run {k} {extra:?}"));
    }
    for f in &POLICIES[..3] {
        let (a, b) = (read_f64s(&base.join(f)), read_f64s(&unsharded.join(f)));
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| ((x - y) / y).abs())
            .fold(0.0, f64::max);
        assert!(worst <= 1e-12, "{f}: relative difference {worst:e}");
    }
}

/// Every fault ends the job non-zero within 30 s, with one message naming the rank and file.
#[test]
fn faults_end_every_rank_with_one_message() {
    let t = Tmp::new();
    let dir = t.path("g");
    let gen = ["generate", "cyclic", "--n", "400", "--dtype", "f32"];
    one(&[&gen[..], &["--shards", "2", "--out", s(&dir)]].concat());
    let out = t.path("out");
    let job = |np: usize, game: &Path| {
        let mut c = mpirun_cmd(np);
        c.arg(BIN)
            .args(solve_args(s(game), s(&out), &["--metrics", "cheap"]));
        c
    };
    // A corrupt shard.
    let shard = dir.join("shard-0001-of-0002.bin");
    let good = std::fs::read(&shard).unwrap();
    let mut bad = good.clone();
    bad[4321] ^= 0x40;
    std::fs::write(&shard, &bad).unwrap();
    mpi_fails(
        job(2, &dir),
        &["rank 1:", "shard-0001-of-0002.bin", "corrupt", "SHA-256"],
    );
    // A shard that cannot be opened.
    std::fs::remove_file(&shard).unwrap();
    mpi_fails(
        job(2, &dir),
        &["rank 1:", "shard-0001-of-0002.bin", "No such file"],
    );
    std::fs::write(&shard, &good).unwrap();
    // A rank count other than the manifest's.
    mpi_fails(
        job(3, &dir),
        &["manifest.json", "lists 2 shards but the job has 3 ranks"],
    );
    // Rank 1 sees another manifest than rank 0 (two program blocks, one game each).
    let other = t.path("other");
    std::fs::create_dir(&other).unwrap();
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        std::fs::copy(e.path(), other.join(e.file_name())).unwrap();
    }
    let m = other.join("manifest.json");
    let text = std::fs::read_to_string(&m).unwrap();
    std::fs::write(&m, text.replace("\"seed\": 0", "\"seed\": 1")).unwrap();
    let mut c = mpirun_cmd(1);
    c.arg(BIN)
        .args(solve_args(s(&dir), s(&out), &[]))
        .args([":", "-np", "1", BIN])
        .args(solve_args(s(&other), s(&out), &[]));
    mpi_fails(c, &["rank 1:", "differs from rank 0's"]);
    // An unsharded game.
    let whole = t.path("g.npy");
    one(&[&gen[..], &["--out", s(&whole)]].concat());
    mpi_fails(job(2, &whole), &["rank 0:", "must be a shard set"]);
    assert!(!out.join("metrics.csv").exists(), "no output on failure");
}

fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn wait_for(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

/// A rank killed after a checkpoint ends the job non-zero; `--resume` continues it to the
/// bits of an uninterrupted run.
#[test]
fn a_killed_rank_ends_the_job_and_resume_gives_the_same_bits() {
    let t = Tmp::new();
    let dir = t.path("g");
    one(&[
        "generate",
        "uniform",
        "--n",
        "600",
        "--seed",
        "8",
        "--shards",
        "2",
        "--out",
        s(&dir),
    ]);
    let args = |out: &Path, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "solve",
            s(&dir),
            "--beta",
            "0.05",
            "--iters",
            "1000",
            "--metrics",
            "cheap",
            "--algo",
            "nash-mp,mmd,omwu",
            "--threads",
            "1",
            "--out",
            s(out),
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    let full = t.path("full");
    let a = args(&full, &[]);
    one(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let part = t.path("part");
    let a = args(&part, &["--checkpoint-every", "100"]);
    let mut job = mpirun_cmd(2)
        .arg(BIN)
        .args(&a)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ck = part.join("checkpoint.nmpck");
    let start = Instant::now();
    // Well inside the solve: the checkpoint of a later run (it holds the rows so far).
    while !std::fs::metadata(&ck).is_ok_and(|m| m.len() > 100_000) {
        assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint");
        assert!(
            job.try_wait().unwrap().is_none(),
            "the job ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let ranks: Vec<u32> = children(job.id())
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c.contains("nashmp"))
        })
        .collect();
    assert_eq!(ranks.len(), 2, "two rank processes under mpirun");
    let st = Command::new("kill")
        .args(["-KILL", &ranks[1].to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let st = wait_for(&mut job, Duration::from_secs(30)).expect("the job ends within 30 s");
    assert!(!st.success(), "a killed rank ends the job non-zero");
    assert!(ck.exists(), "the checkpoint survives");
    let resumed = args(&part, &["--checkpoint-every", "100", "--resume"]);
    mpi(2, &resumed.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(metrics(&full), metrics(&part), "metrics.csv after resume");
    for f in ["nash-mp.policy.npy", "mmd.policy.npy", "omwu.policy.npy"] {
        assert_eq!(
            std::fs::read(full.join(f)).unwrap(),
            std::fs::read(part.join(f)).unwrap(),
            "{f} after resume"
        );
    }
    assert!(!ck.exists(), "the checkpoint is removed at the end");
}
