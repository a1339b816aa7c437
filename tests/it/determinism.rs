//! Same inputs, same bytes, whatever `--threads` says.

use crate::util::*;

#[test]
fn threads_do_not_change_results() {
    let t = Tmp::new();
    let game = t.path("u.npy");
    // 700 actions: many parallel row tasks, f32 SIMD kernel, every algorithm.
    ok(&[
        "generate",
        "uniform",
        "--n",
        "700",
        "--seed",
        "5",
        "--dtype",
        "f32",
        "--out",
        s(&game),
    ]);
    let outs: Vec<_> = [1, 2]
        .map(|th| {
            let out = t.path(&format!("o{th}"));
            Solve::new(&game)
                .beta("0.05")
                .iters(30)
                .out(&out)
                .threads(th)
                .ok();
            out
        })
        .into();
    let strip = |p: &std::path::Path| metrics_without_seconds(p);
    let (a, b) = (strip(&outs[0]), strip(&outs[1]));
    assert_eq!(a.len(), 7 * 31);
    assert_eq!(a, b, "metrics.csv differs between 1 and 2 threads");
    for f in [
        "nash-mp",
        "mmd",
        "omwu",
        "egpo",
        "nash-md",
        "mwu",
        "mwu-avg",
        "equilibrium",
    ] {
        let name = if f == "equilibrium" {
            "equilibrium.npy".to_string()
        } else {
            format!("{f}.policy.npy")
        };
        assert_eq!(
            std::fs::read(outs[0].join(&name)).unwrap(),
            std::fs::read(outs[1].join(&name)).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn generate_is_thread_independent() {
    let t = Tmp::new();
    let (a, b) = (t.path("a.npy"), t.path("b.npy"));
    ok(&[
        "--threads",
        "1",
        "generate",
        "uniform",
        "--n",
        "300",
        "--seed",
        "9",
        "--out",
        s(&a),
    ]);
    ok(&[
        "--threads",
        "2",
        "generate",
        "uniform",
        "--n",
        "300",
        "--seed",
        "9",
        "--out",
        s(&b),
    ]);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert!(ok(&["info", s(&a)]).contains("valid:  yes"));
}

/// Above the parallel thresholds of the vector reductions (`PAR_MIN` = 2^16 entries in
/// `kernels::vector`) the sums, maxima, spans and log-sum-exps split into chunks: the bytes must
/// still not depend on the thread count. A low-rank game keeps 70 000 actions cheap.
#[test]
fn threads_do_not_change_results_above_the_parallel_thresholds() {
    let t = Tmp::new();
    let game = t.path("lr.nmp");
    ok(&[
        "generate",
        "low-rank",
        "--n",
        "70000",
        "--seed",
        "4",
        "--out",
        s(&game),
    ]);
    let outs: Vec<_> = [1, 2]
        .map(|th| {
            let out = t.path(&format!("o{th}"));
            Solve::new(&game)
                .beta("0.5")
                .iters(4)
                .out(&out)
                .threads(th)
                .ok();
            out
        })
        .into();
    let (a, b) = (
        metrics_without_seconds(&outs[0]),
        metrics_without_seconds(&outs[1]),
    );
    assert_eq!(a.len(), 7 * 5);
    assert_eq!(a, b, "metrics.csv differs between 1 and 2 threads");
    for name in [
        "nash-mp", "mmd", "omwu", "egpo", "nash-md", "mwu", "mwu-avg",
    ]
    .map(|f| format!("{f}.policy.npy"))
    .into_iter()
    .chain(["equilibrium.npy".to_string()])
    {
        let (x, y) = (
            std::fs::read(outs[0].join(&name)).unwrap(),
            std::fs::read(outs[1].join(&name)).unwrap(),
        );
        assert_eq!(x.len(), 128 + 8 * 70000, "{name}");
        assert!(x == y, "{name} differs between 1 and 2 threads");
    }
}
