//! Layouts and batching at n = 16384, in one run: `cargo bench --bench layouts`.
//!
//! Throughput is counted in *dense-equivalent* bytes (n² f32), so the GB/s figures compare the
//! work done, and their ratios are the speed-ups:
//! - `layouts_n16384`: plain sum over the dense file (the read limit), dense f32 apply, packed f32
//!   apply, packed u16 apply;
//! - `batch_n16384`: eight single dense applies against one batched apply of eight vectors.
//!
//! Games are generated once into `target/bench-games/` (ignored by git).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use nashmp::game::{self, apply_vec, MemBuffer, MemStack, PreferenceOperator};
use nashmp::gen::{DenseFamily, Family, Params};
use nashmp::io::container::{Elem, GameHeader, Layout, TILE};
use nashmp::io::{npy::DType, write};
use nashmp::kernels::matvec::plain_sum;
use std::path::PathBuf;

const N: usize = 16384;

fn games() -> [PathBuf; 3] {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-games");
    std::fs::create_dir_all(&dir).unwrap();
    let fam = DenseFamily::new(Family::Uniform, N, 1, Params::default());
    let none = |_| {};
    let dense = dir.join(format!("uniform-{N}-f32.npy"));
    if !dense.exists() {
        write::dense_npy(&dense, N, DType::F32, &fam, &none).unwrap();
    }
    let mut out = [dense, PathBuf::new(), PathBuf::new()];
    for (k, elem) in [(1, Elem::F32), (2, Elem::U16)] {
        let p = dir.join(format!("uniform-{N}-packed-{}.nmp", elem.name()));
        if !p.exists() {
            let mut h = GameHeader::new(N as u64, Layout::Packed);
            h.dtype = Some(elem);
            h.tile = Some(TILE as u64);
            write::matrix_container(&p, &h, &fam, &none).unwrap();
        }
        out[k] = p;
    }
    out
}

fn bench(c: &mut Criterion) {
    let [dense_p, packed_p, u16_p] = games();
    let dense = game::DenseGame::open(&dense_p).unwrap();
    let packed = game::open(&packed_p, None).unwrap();
    let quant = game::open(&u16_p, None).unwrap();
    let x: Vec<f64> = (0..N)
        .map(|i| (1 + i % 7) as f64 / (4.0 * N as f64))
        .collect();
    let mut out = vec![0.0; N];
    let bytes = (N * N * 4) as u64;

    let mut g = c.benchmark_group("layouts_n16384");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(20);
    let raw = dense.raw::<f32>();
    g.bench_function("plain_sum", |b| {
        b.iter(|| std::hint::black_box(plain_sum(raw, nashmp::kernels::isa::Isa::best())))
    });
    g.bench_function("dense_f32", |b| b.iter(|| apply_vec(&dense, &x, &mut out)));
    g.bench_function("packed_f32", |b| {
        b.iter(|| apply_vec(&*packed, &x, &mut out))
    });
    g.bench_function("packed_u16", |b| {
        b.iter(|| apply_vec(&*quant, &x, &mut out))
    });
    g.finish();

    let xs: Vec<Vec<f64>> = (0..8)
        .map(|v| {
            (0..N)
                .map(|i| (1 + (i + v) % 5) as f64 / (3.0 * N as f64))
                .collect()
        })
        .collect();
    let mut outs = vec![vec![0.0; N]; 8];
    let mut g = c.benchmark_group("batch_n16384");
    g.throughput(Throughput::Bytes(8 * bytes));
    g.sample_size(10);
    g.bench_function("eight_single_applies", |b| {
        b.iter(|| {
            for (x, o) in xs.iter().zip(outs.iter_mut()) {
                apply_vec(&dense, x, o);
            }
        })
    });
    let xm = faer::Mat::<f64>::from_fn(N, 8, |i, v| xs[v][i]);
    let mut om = faer::Mat::<f64>::zeros(N, 8);
    let mut mem = MemBuffer::new(dense.apply_scratch(8));
    g.bench_function("one_batch_of_eight", |b| {
        b.iter(|| dense.apply(om.as_mut(), xm.as_ref(), MemStack::new(&mut mem)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
