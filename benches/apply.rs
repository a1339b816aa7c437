//! Dense apply against the memory-read limit, measured in one run:
//! `cargo bench --bench apply` (criterion; Throughput::Bytes, so the report is in GB/s).
//!
//! For n = 4096 and 16384 (64 MiB and 1 GiB of float32), over the same memory-mapped bytes:
//! - `plain_sum`: a parallel SIMD sum of every element (the read bandwidth reference);
//! - `nashmp_apply`: `DenseGame::apply` (the kernel every algorithm uses);
//! - `nashmp_apply_scalar`: its portable scalar twin;
//! - `faer_matvec`: faer's parallel matmul on the same mapped matrix, as a peer;
//! - `dense_f32_batch16_*`: the batched apply of 16 vectors against faer's matmul of 16 columns.
//!
//! Games are generated once into `target/bench-games/` (ignored by git).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nashmp::game::{apply_vec, DenseGame, MemBuffer, MemStack, PreferenceOperator};
use nashmp::gen::uniform_entry;
use nashmp::io::{array, npy::DType};
use nashmp::kernels::matvec::plain_sum;
use std::path::PathBuf;

fn game_file(n: usize) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-games");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("uniform-{n}-f32.npy"));
    if !path.exists() {
        array::write_matrix(&path, n, DType::F32, |i, row| {
            (0..n).for_each(|j| row[j] = uniform_entry(1, i, j));
            Ok(())
        })
        .unwrap();
    }
    path
}

fn dense(c: &mut Criterion) {
    for n in [4096usize, 16384] {
        let path = game_file(n);
        let game = DenseGame::open(&path).unwrap();
        let scalar = DenseGame::open(&path).unwrap().with_simd(false);
        let p: &[f32] = game.raw::<f32>();
        let x: Vec<f64> = (0..n).map(|i| 1.0 + (i % 7) as f64).collect();
        let s: f64 = x.iter().sum();
        let x: Vec<f64> = x.iter().map(|v| v / s).collect();
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let mut out = vec![0.0f64; n];
        let mut out32 = vec![0.0f32; n];

        let mut g = c.benchmark_group(format!("dense_f32_n{n}"));
        g.throughput(Throughput::Bytes((n * n * 4) as u64));
        g.sample_size(if n > 8192 { 20 } else { 50 });
        g.bench_function(BenchmarkId::from_parameter("plain_sum"), |b| {
            b.iter(|| std::hint::black_box(plain_sum(p, nashmp::kernels::isa::Isa::best())))
        });
        g.bench_function(BenchmarkId::from_parameter("nashmp_apply"), |b| {
            b.iter(|| apply_vec(&game, &x, &mut out))
        });
        g.bench_function(BenchmarkId::from_parameter("nashmp_apply_scalar"), |b| {
            b.iter(|| apply_vec(&scalar, &x, &mut out))
        });
        g.bench_function(BenchmarkId::from_parameter("faer_matvec"), |b| {
            b.iter(|| {
                let a = faer::MatRef::from_row_major_slice(p, n, n);
                let xr = faer::MatRef::from_column_major_slice(&x32, n, 1);
                let dst = faer::MatMut::from_column_major_slice_mut(&mut out32, n, 1);
                faer::linalg::matmul::matmul(
                    dst,
                    faer::Accum::Replace,
                    a,
                    xr,
                    1.0f32,
                    faer::Par::rayon(0),
                );
            })
        });
        g.finish();

        // Sixteen vectors: the crate's batched kernel (each vector the single apply's bits)
        // against faer's matmul of the same 16 columns.
        let k = 16;
        let xs: Vec<Vec<f64>> = (0..k)
            .map(|v| {
                (0..n)
                    .map(|i| (1 + (i + v) % 5) as f64 / (3.0 * n as f64))
                    .collect()
            })
            .collect();
        let x16: Vec<f32> = xs
            .iter()
            .flat_map(|x| x.iter().map(|&v| v as f32))
            .collect();
        let xm = faer::Mat::<f64>::from_fn(n, k, |i, v| xs[v][i]);
        let mut om = faer::Mat::<f64>::zeros(n, k);
        let mut mem = MemBuffer::new(game.apply_scratch(k));
        let mut out16 = vec![0.0f32; n * k];
        let mut g = c.benchmark_group(format!("dense_f32_batch16_n{n}"));
        g.throughput(Throughput::Bytes((n * n * 4) as u64));
        g.sample_size(10);
        g.bench_function(BenchmarkId::from_parameter("nashmp_apply_batch"), |b| {
            b.iter(|| game.apply(om.as_mut(), xm.as_ref(), MemStack::new(&mut mem)))
        });
        g.bench_function(BenchmarkId::from_parameter("faer_matmul"), |b| {
            b.iter(|| {
                let a = faer::MatRef::from_row_major_slice(p, n, n);
                let xr = faer::MatRef::from_column_major_slice(&x16, n, k);
                let dst = faer::MatMut::from_column_major_slice_mut(&mut out16, n, k);
                faer::linalg::matmul::matmul(
                    dst,
                    faer::Accum::Replace,
                    a,
                    xr,
                    1.0f32,
                    faer::Par::rayon(0),
                );
            })
        });
        g.finish();
    }
}

criterion_group!(benches, dense);
criterion_main!(benches);
