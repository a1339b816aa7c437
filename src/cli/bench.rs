//! `nashmp bench GAME [GAME…]`: apply kernels against the memory-read limit, interleaved.
//!
//! Each repetition runs every contender once, in turn, so that the machine's drifting bandwidth
//! hits them all alike; medians and ratios come from the same run. The plain sum reads the first
//! game's file as `f32` words: the bandwidth any kernel over those bytes is bounded by.

use crate::game::{self, PreferenceOperator};
use crate::game::{apply_vec, MemBuffer, MemStack};
use crate::io::mmap::Mapped;
use crate::kernels::matvec::plain_sum;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Games (.npy matrices or nashmp containers, .nmp) to compare.
    #[arg(required = true)]
    pub games: Vec<PathBuf>,
    /// Repetitions of each contender.
    #[arg(long, default_value_t = 20)]
    pub reps: usize,
    /// Also time a batched apply of K vectors (1..=16) against K single applies.
    #[arg(long, value_name = "K")]
    pub vectors: Option<usize>,
    /// Deprecated spelling of --vectors (`solve --batch` is the policy-gradient batch).
    #[arg(long, hide = true, conflicts_with = "vectors")]
    pub batch: Option<usize>,
    /// Also time the scalar twins (dense games).
    #[arg(long)]
    pub scalar: bool,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// (label, bytes read per call, matrix entries processed per call — `k·n²` for a batch of `k`
/// vectors —, the call).
type Contender<'a> = (String, u64, f64, Box<dyn FnMut() + 'a>);

pub fn run(mut a: BenchArgs) -> anyhow::Result<()> {
    if a.batch.is_some() {
        super::deprecated("bench --batch", "--vectors");
        a.vectors = a.batch;
    }
    if a.reps == 0 {
        anyhow::bail!("--reps must be at least 1");
    }
    if a.vectors.is_some_and(|k| k == 0 || k > 16) {
        anyhow::bail!("invalid parameter: --vectors must be in 1..=16");
    }
    let games: Vec<Box<dyn PreferenceOperator>> = a
        .games
        .iter()
        .map(|p| game::open(p, None))
        .collect::<Result<_, _>>()?;
    let file = Mapped::open(&a.games[0])?;
    let words: &[f32] = bytemuck::cast_slice(&file.bytes()[..file.bytes().len() / 4 * 4]);
    let mut contenders: Vec<Contender> = Vec::new();
    contenders.push((
        format!("plain_sum {}", a.games[0].display()),
        (words.len() * 4) as u64,
        words.len() as f64,
        Box::new(move || {
            std::hint::black_box(plain_sum(words, crate::kernels::isa::Isa::best()));
        }),
    ));
    for (g, path) in games.iter().zip(&a.games) {
        let n = g.n();
        let x: Vec<f64> = (0..n)
            .map(|i| (1 + i % 7) as f64 / (4.0 * n as f64))
            .collect();
        let mut out = vec![0.0; n];
        let label = format!("apply {} ({})", path.display(), g.info().layout);
        let bytes = g.info().stored_bytes;
        let gref = g.as_ref();
        let nn = (n as f64) * (n as f64);
        let mut mem = MemBuffer::new(gref.apply_scratch(1));
        contenders.push((
            label,
            bytes,
            nn,
            Box::new(move || {
                gref.apply(
                    game::as_batch_mut(&mut out),
                    game::as_batch(&x),
                    MemStack::new(&mut mem),
                )
            }),
        ));
        if let Some(k) = a.vectors {
            let xs =
                faer::Mat::<f64>::from_fn(n, k, |i, v| (1 + (i + v) % 5) as f64 / (3.0 * n as f64));
            let mut outs = faer::Mat::<f64>::zeros(n, k);
            let mut mem = MemBuffer::new(gref.apply_scratch(k));
            contenders.push((
                format!("batch{k} {}", path.display()),
                bytes,
                k as f64 * nn,
                Box::new(move || gref.apply(outs.as_mut(), xs.as_ref(), MemStack::new(&mut mem))),
            ));
        }
    }
    if a.scalar {
        for path in &a.games {
            if let Ok(d) = game::DenseGame::open(path) {
                let d = d.with_simd(false);
                let n = d.n();
                let x = vec![1.0 / n as f64; n];
                let mut out = vec![0.0; n];
                let bytes = d.info().stored_bytes;
                contenders.push((
                    format!("scalar {}", path.display()),
                    bytes,
                    (n as f64) * (n as f64),
                    Box::new(move || apply_vec(&d, &x, &mut out)),
                ));
            }
        }
    }
    for c in contenders.iter_mut() {
        (c.3)(); // warm-up: pages the files in
    }
    let mut times = vec![Vec::with_capacity(a.reps); contenders.len()];
    for _ in 0..a.reps {
        for (c, t) in contenders.iter_mut().zip(times.iter_mut()) {
            let s = Instant::now();
            (c.3)();
            t.push(s.elapsed().as_secs_f64());
        }
    }
    say!(
        "threads={}  reps={}  (medians of interleaved runs)",
        rayon::current_num_threads(),
        a.reps
    );
    let med: Vec<f64> = times.iter_mut().map(|t| median(t)).collect();
    // Every row is framed the same way: entries processed per second (a batch of k vectors
    // processes k·n² entries per pass), relative to the first game's single apply, so that
    // games of different n compare per entry and a batch row's ratio is its speed-up.
    let rate = |c: &Contender, m: f64| c.2 / m;
    let first_apply = contenders.get(1).map_or(f64::NAN, |c| rate(c, med[1]));
    say!(
        "{:<60} {:>13} {:>13} {:>15}  vs first apply (per entry)",
        "contender",
        "median",
        "bytes read",
        "matrix entries"
    );
    for (c, m) in contenders.iter().zip(&med) {
        say!(
            "{:<60} {:>10.3} ms {:>8.2} GB/s {:>10.3} G/s  {:>6.3}×",
            c.0,
            m * 1e3,
            c.1 as f64 / m / 1e9,
            rate(c, *m) / 1e9,
            rate(c, *m) / first_apply
        );
    }
    if let Some(k) = a.vectors {
        for (gi, path) in a.games.iter().enumerate() {
            let (single, batch) = (med[1 + 2 * gi], med[2 + 2 * gi]);
            say!(
                "batch of {k} on {}: {:.2}× the throughput of {k} single applies",
                path.display(),
                k as f64 * single / batch
            );
        }
    }
    Ok(())
}
