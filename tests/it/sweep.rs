//! `nashmp sweep`: the quick preset end to end, its guarantees, determinism and bad flags.

use crate::util::*;

fn column(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
}

#[test]
fn quick_preset_writes_everything_and_nash_mp_stays_under_its_bound() {
    let t = Tmp::new();
    let (out, cache) = (t.path("out"), t.path("cache"));
    let stdout = ok(&[
        "sweep",
        "--preset",
        "quick",
        "--out",
        s(&out),
        "--cache",
        s(&cache),
    ]);
    for f in ["runs.csv", "summary.csv", "summary.md", "sweep.json"] {
        assert!(out.join(f).exists(), "{f} missing");
        assert!(
            stdout.contains(f),
            "stdout does not say where {f} is: {stdout}"
        );
    }
    assert!(out.join("plots/kl-uniform-beta0.2.svg").exists());
    assert!(out.join("plots/rate-low-rank.svg").exists());
    assert!(out.join("plots/exploit-low-rank-beta1.svg").exists());

    let (h, rows) = read_csv(&out.join("summary.csv"));
    for c in [
        "family",
        "n",
        "beta",
        "algo",
        "queries_to_1e-3",
        "queries_to_1e-6",
        "rate_fit",
        "rate_min",
        "rate_max",
        "rate_theory",
        "worst_ratio_to_bound",
    ] {
        column(&h, c);
    }
    // 2 families × 2 sizes × 2 β × 3 algorithms.
    assert_eq!(rows.len(), 24);
    let (algo, worst, theory, rate) = (
        column(&h, "algo"),
        column(&h, "worst_ratio_to_bound"),
        column(&h, "rate_theory"),
        column(&h, "rate_fit"),
    );
    let nash: Vec<_> = rows.iter().filter(|r| r[algo] == "nash-mp").collect();
    assert_eq!(nash.len(), 8);
    for r in nash {
        let w: f64 = r[worst].parse().unwrap();
        assert!(w <= 1.0 + 1e-9, "kl_star above the bound: {r:?}");
        let (fit, th): (f64, f64) = (r[rate].parse().unwrap(), r[theory].parse().unwrap());
        assert!(fit > 0.0 && fit < 1.0 && th < 1.0, "{r:?}");
    }

    // The game cache is reused, and results are identical with one thread.
    let out1 = t.path("out1");
    let again = ok(&[
        "--threads",
        "1",
        "sweep",
        "--out",
        s(&out1),
        "--cache",
        s(&cache),
    ]);
    assert!(!again.is_empty());
    for f in ["runs.csv", "summary.csv", "summary.md"] {
        assert_eq!(
            std::fs::read(out.join(f)).unwrap(),
            std::fs::read(out1.join(f)).unwrap(),
            "{f} differs between 1 and 2 threads"
        );
    }
    let (rh, runs) = read_csv(&out.join("runs.csv"));
    assert_eq!(
        rh.join(","),
        "family,n,seed,beta,algo,alpha,iter,queries,kl_star,kl_star_rev,span_star,exploit,gap,exploit0,residual,bound"
    );
    assert!(runs.len() > 1000);

    // --replot rebuilds the same summary from runs.csv alone.
    let re = t.path("re");
    std::fs::create_dir(&re).unwrap();
    std::fs::copy(out.join("runs.csv"), re.join("runs.csv")).unwrap();
    ok(&["sweep", "--replot", "--out", s(&re)]);
    assert_eq!(
        std::fs::read(out.join("summary.csv")).unwrap(),
        std::fs::read(re.join("summary.csv")).unwrap()
    );
    assert!(re.join("plots/rate-uniform.svg").exists());
}

#[test]
fn batched_matches_one_by_one_to_rounding() {
    let t = Tmp::new();
    let out = t.path("out");
    ok(&[
        "sweep",
        "--families",
        "uniform",
        "--sizes",
        "100",
        "--seeds",
        "3",
        "--betas",
        "0.1",
        "--algos",
        "nash-mp,omwu,mwu",
        "--iters",
        "20",
        "--compare",
        "--out",
        s(&out),
        "--cache",
        s(&t.path("cache")),
    ]);
    let (h, rows) = read_csv(&out.join("batching.csv"));
    assert_eq!(rows.len(), 1);
    let d: f64 = rows[0][column(&h, "max_rel_diff_kl_star")].parse().unwrap();
    // The f32 matrix products agree to ~1e-7; the distances they lead to, to well under 1e-4.
    assert!(d < 1e-4, "batched and single runs differ by {d}");
    // The runs shared passes (π* alone is solved vector by vector: one β, one lane).
    let (v, b): (u64, u64) = (
        rows[0][column(&h, "vectors")].parse().unwrap(),
        rows[0][column(&h, "passes")].parse().unwrap(),
    );
    assert!(b < v, "{b} passes for {v} vectors");
}

/// Batched (OMWU prefetching its next product, several vectors per pass) and one by one give
/// byte-identical results: every batched product is the bits of its single apply.
#[test]
fn batched_equals_one_by_one_to_the_byte() {
    let t = Tmp::new();
    let cache = t.path("cache");
    let run = |tag: &str, extra: &[&str]| {
        let out = t.path(tag);
        let mut args = vec![
            "sweep",
            "--families",
            "uniform,mixture",
            "--sizes",
            "150",
            "--seeds",
            "1",
            "--betas",
            "0.05,0.5",
            "--algos",
            "nash-mp,omwu,mmd,egpo,mwu",
            "--iters",
            "15",
            "--out",
            s(&out),
            "--cache",
            s(&cache),
        ];
        args.extend_from_slice(extra);
        ok(&args);
        out
    };
    let (a, b) = (run("batched", &[]), run("single", &["--one-by-one"]));
    for f in ["runs.csv", "summary.csv", "summary.md"] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f} differs between batched and one by one"
        );
    }
}

#[test]
fn bad_sweep_flags_are_errors() {
    let t = Tmp::new();
    let out = t.path("o");
    fails(&["sweep", "--betas", "0", "--out", s(&out)], &["β > 0"]);
    fails(
        &["sweep", "--sizes", "1", "--out", s(&out)],
        &["sizes must be ≥ 2"],
    );
    fails(&["sweep", "--algos", "nope", "--out", s(&out)], &["nope"]);
    fails(&["sweep", "--iters", "0", "--out", s(&out)], &["--iters"]);
}
