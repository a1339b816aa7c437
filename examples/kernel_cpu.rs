//! Thread CPU time (not wall time) of the apply kernels on one thread, per instruction set:
//! on a shared machine, wall-clock medians penalise the longer (batched) calls, which are
//! preempted more often; CPU time does not. `cargo run --release --example kernel_cpu -- GAME...`
use nashmp::game::{DenseGame, MemBuffer, MemStack, PreferenceOperator};
use nashmp::kernels::isa::Isa;

fn cpu_now() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to write to.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

fn main() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    for path in std::env::args().skip(1) {
        let p = std::path::Path::new(&path);
        for isa in Isa::available().into_iter().skip(1) {
            let g: Box<dyn PreferenceOperator> = match DenseGame::open(p) {
                Ok(d) => Box::new(d.with_isa(isa)),
                Err(_) => Box::new(nashmp::game::packed_scalar(p).unwrap().with_isa(isa)),
            };
            let n = g.n();
            let xs = faer::Mat::<f64>::from_fn(n, 16, |i, v| {
                (1 + (i + v) % 5) as f64 / (3.0 * n as f64)
            });
            let mut line = format!("{path} {}:", isa.name());
            let mut single = 0.0;
            for k in [1usize, 2, 4, 8, 16] {
                let x = xs.as_ref().subcols(0, k);
                let mut outs = faer::Mat::<f64>::zeros(n, k);
                let mut mem = MemBuffer::new(g.apply_scratch(k));
                let mut best = f64::INFINITY;
                pool.install(|| {
                    for _ in 0..5 {
                        let t = cpu_now();
                        g.apply(outs.as_mut(), x, MemStack::new(&mut mem));
                        best = best.min(cpu_now() - t);
                    }
                });
                if k == 1 {
                    single = best;
                }
                line += &format!(
                    "  k={k} {:.2} ms ({:.2}x thr)",
                    best * 1e3,
                    k as f64 * single / best
                );
            }
            println!("{line}");
        }
    }
}
