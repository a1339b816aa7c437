//! Helpers: a temp dir per test, running the binary, writing and reading `.npy` files.

use std::path::{Path, PathBuf};
use std::process::Output;

pub struct Tmp {
    pub dir: tempfile::TempDir,
}

impl Tmp {
    pub fn new() -> Self {
        Tmp {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Runs `nashmp` with `args`.
pub fn nashmp(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_nashmp"))
        .args(args)
        .output()
        .expect("run nashmp")
}

/// Runs `nashmp` and asserts success, returning stdout.
pub fn ok(args: &[&str]) -> String {
    let o = nashmp(args);
    assert!(
        o.status.success(),
        "nashmp {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Runs `nashmp`, asserts exit status 2, no panic, and that stderr contains every needle.
pub fn fails(args: &[&str], needles: &[&str]) -> String {
    let o = nashmp(args);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(
        o.status.code(),
        Some(2),
        "nashmp {args:?}: expected exit 2, stderr: {err}"
    );
    assert!(!err.contains("panicked"), "panic: {err}");
    for n in needles {
        assert!(
            err.contains(n),
            "nashmp {args:?}: stderr lacks {n:?}: {err}"
        );
    }
    err
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A `.npy` header, written independently of the crate's writer.
pub fn npy_header(descr: &str, fortran: bool, shape: &str) -> Vec<u8> {
    let mut d = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    );
    let total = (10 + d.len() + 1).div_ceil(64) * 64;
    while 10 + d.len() + 1 < total {
        d.push(' ');
    }
    d.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(d.len() as u16).to_le_bytes());
    b.extend_from_slice(d.as_bytes());
    b
}

pub fn write_f64_matrix(path: &Path, n: usize, p: &[f64]) {
    let mut b = npy_header("<f8", false, &format!("({n}, {n})"));
    p.iter().for_each(|x| b.extend(x.to_le_bytes()));
    std::fs::write(path, b).unwrap();
}

pub fn write_f32_matrix(path: &Path, n: usize, p: &[f64]) {
    let mut b = npy_header("<f4", false, &format!("({n}, {n})"));
    p.iter().for_each(|x| b.extend((*x as f32).to_le_bytes()));
    std::fs::write(path, b).unwrap();
}

pub fn write_f64_vector(path: &Path, v: &[f64]) {
    let mut b = npy_header("<f8", false, &format!("({},)", v.len()));
    v.iter().for_each(|x| b.extend(x.to_le_bytes()));
    std::fs::write(path, b).unwrap();
}

/// Reads a 1-D float64 `.npy` written by nashmp.
pub fn read_f64_vector(path: &Path) -> Vec<f64> {
    let b = std::fs::read(path).unwrap();
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
    assert!(header.contains("'<f8'"), "{header}");
    b[10 + hlen..]
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// The generalised rock-paper-scissors game on `n` (odd) actions.
pub fn cyclic(n: usize) -> Vec<f64> {
    let mut p = vec![0.5; n * n];
    for i in 0..n {
        for j in 0..n {
            let d = (j + n - i) % n;
            if d != 0 {
                p[i * n + j] = if d <= (n - 1) / 2 { 1.0 } else { 0.0 };
            }
        }
    }
    p
}

/// A fixed non-uniform policy with full support: `μ_i ∝ i + 1`.
pub fn nonuniform(n: usize) -> Vec<f64> {
    let w: Vec<f64> = (0..n).map(|i| (i + 1) as f64).collect();
    let s: f64 = w.iter().sum();
    w.iter().map(|x| x / s).collect()
}

pub fn soccer() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/soccer.txt")
}

pub fn goldens() -> serde_json::Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/soccer.golden.json");
    serde_json::from_str(&std::fs::read_to_string(p).expect("goldens")).unwrap()
}

/// Parses `metrics.csv` into (header, rows of cells).
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let txt = std::fs::read_to_string(path).unwrap();
    let mut lines = txt.lines();
    let header = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    (header, rows)
}

/// A `nashmp solve` command line, built flag by flag:
/// `Solve::new(&game).beta("0.1").iters(30).out(&dir).threads(2).ok()`.
#[derive(Clone, Debug)]
pub struct Solve {
    /// Flags before the subcommand (`--threads N`).
    global: Vec<String>,
    args: Vec<String>,
}

impl Solve {
    pub fn new(game: &Path) -> Self {
        Solve {
            global: Vec::new(),
            args: vec!["solve".into(), s(game).into()],
        }
    }
    /// `--flag value`.
    pub fn arg(mut self, flag: &str, value: &str) -> Self {
        self.args.extend([flag.to_string(), value.to_string()]);
        self
    }
    pub fn beta(self, b: &str) -> Self {
        self.arg("--beta", b)
    }
    pub fn iters(self, k: u64) -> Self {
        self.arg("--iters", &k.to_string())
    }
    pub fn algo(self, a: &str) -> Self {
        self.arg("--algo", a)
    }
    pub fn out(self, dir: &Path) -> Self {
        self.arg("--out", s(dir))
    }
    pub fn threads(mut self, n: usize) -> Self {
        self.global = vec!["--threads".into(), n.to_string()];
        self
    }
    /// The whole command line.
    pub fn args(&self) -> Vec<&str> {
        self.global
            .iter()
            .chain(&self.args)
            .map(String::as_str)
            .collect()
    }
    /// Runs it and asserts success, returning stdout.
    pub fn ok(&self) -> String {
        ok(&self.args())
    }
    /// Runs it and asserts exit status 2 with every needle in stderr.
    pub fn fails(&self, needles: &[&str]) -> String {
        fails(&self.args(), needles)
    }
}

/// `metrics.csv` of `dir` without its `seconds` column (the only one that may differ between
/// runs of the same command).
pub fn metrics_without_seconds(dir: &Path) -> Vec<String> {
    let (h, rows) = read_csv(&dir.join("metrics.csv"));
    assert_eq!(h.last().map(String::as_str), Some("seconds"));
    rows.iter().map(|r| r[..r.len() - 1].join(",")).collect()
}
