//! Interleaved timing of `kernels::exp::exp_slice` against `f64::exp` on one core:
//! `cargo run --release --example exp_speed`.
use std::time::Instant;

fn main() {
    let n = 1 << 22;
    let x: Vec<f64> = (0..n)
        .map(|i| -30.0 + 30.0 * (i as f64 / n as f64))
        .collect();
    let mut out = vec![0.0; n];
    let (mut fast, mut libm) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..15 {
        let t = Instant::now();
        nashmp::kernels::exp::exp_slice(&x, &mut out);
        fast = fast.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        for (o, v) in out.iter_mut().zip(&x) {
            *o = v.exp();
        }
        libm = libm.min(t.elapsed().as_secs_f64());
    }
    println!(
        "n = {n}: exp_slice {:.2} ns/entry, f64::exp {:.2} ns/entry, ratio {:.2}",
        fast / n as f64 * 1e9,
        libm / n as f64 * 1e9,
        libm / fast
    );
}
