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
    let mut outs = Vec::new();
    for th in ["1", "2"] {
        let out = t.path(&format!("o{th}"));
        ok(&[
            "--threads",
            th,
            "solve",
            s(&game),
            "--beta",
            "0.05",
            "--iters",
            "30",
            "--out",
            s(&out),
        ]);
        outs.push(out);
    }
    let strip = |p: &std::path::Path| -> Vec<String> {
        let (_, rows) = read_csv(&p.join("metrics.csv"));
        rows.iter().map(|r| r[..r.len() - 1].join(",")).collect()
    };
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
