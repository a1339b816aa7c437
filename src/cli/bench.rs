//! `nashmp bench GAME`: the apply kernel against the memory-read limit, interleaved.
//!
//! Each repetition runs every contender once, in turn, so that the machine's drifting bandwidth
//! hits them all alike; the medians and their ratios come from the same run.

use crate::game::{DenseGame, PreferenceOperator};
use crate::io::npy::DType;
use crate::kernels::matvec::plain_sum;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// The game (.npy).
    pub game: PathBuf,
    /// Repetitions of each contender.
    #[arg(long, default_value_t = 30)]
    pub reps: usize,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

pub fn run(a: BenchArgs) -> anyhow::Result<()> {
    if a.reps == 0 {
        anyhow::bail!("--reps must be at least 1");
    }
    let g = DenseGame::open(&a.game)?;
    let n = g.n();
    let bytes = g.data_bytes() as f64;
    let x: Vec<f64> = vec![1.0 / n as f64; n];
    let mut out = vec![0.0; n];
    let scalar = DenseGame::open(&a.game)?.with_simd(false);
    let sum = |simd| match g.dtype() {
        DType::F32 => plain_sum::<f32>(g.raw::<f32>(), simd),
        DType::F64 => plain_sum::<f64>(g.raw::<f64>(), simd),
    };
    let names = ["plain_sum", "apply", "apply_scalar"];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    // One warm-up round pages the file in.
    std::hint::black_box(sum(true));
    g.apply(&x, &mut out);
    for _ in 0..a.reps {
        for (k, t) in times.iter_mut().enumerate() {
            let s = Instant::now();
            match k {
                0 => {
                    std::hint::black_box(sum(true));
                }
                1 => g.apply(&x, &mut out),
                _ => scalar.apply(&x, &mut out),
            }
            t.push(s.elapsed().as_secs_f64());
        }
    }
    println!(
        "{}  threads={}  reps={}",
        g.describe(),
        rayon::current_num_threads(),
        a.reps
    );
    let med: Vec<f64> = times.iter_mut().map(|t| median(t)).collect();
    for (name, m) in names.iter().zip(&med) {
        println!(
            "{name:<14} median {:>9.3} ms  {:>7.2} GB/s  ({:.3} of plain_sum)",
            m * 1e3,
            bytes / m / 1e9,
            med[0] / m
        );
    }
    Ok(())
}
