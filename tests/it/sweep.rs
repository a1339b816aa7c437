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
        "family,n,seed,beta,policy,oracle,algo,alpha,iter,queries,kl_star,kl_star_rev,span_star,exploit,gap,exploit0,residual,bound"
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

/// Arguments of a small low-rank sweep over both policy classes and both oracles.
fn axes_args<'a>(out: &'a str, cache: &'a str) -> Vec<&'a str> {
    vec![
        "sweep",
        "--families",
        "low-rank",
        "--structured-sizes",
        "200,2000",
        "--betas",
        "1",
        "--seeds",
        "0",
        "--algos",
        "nash-mp,omwu",
        "--policy",
        "tabular,linear",
        "--oracle",
        "exact,pg",
        "--iters",
        "20",
        "--batch",
        "2000",
        "--tabular-batch-per-n",
        "100",
        "--out",
        out,
        "--cache",
        cache,
    ]
}

/// The policy and oracle axes: on realizable (low-rank) games the linear class's exact runs
/// are tabular Nash-MP's and OMWU's iterates; the sampled runs count their queries exactly
/// (2·B per Nash-MP iteration, B per OMWU one; tabular pg's B is c·n, so its queries to ε grow
/// with n while the linear class's do not); the summary, its queries-to-ε table and figure are
/// written; the same bytes at one thread.
#[test]
fn policy_and_oracle_axes_run_both_classes_side_by_side() {
    let t = Tmp::new();
    let (out, cache) = (t.path("out"), t.path("cache"));
    ok(&axes_args(s(&out), s(&cache)));
    let (h, runs) = read_csv(&out.join("runs.csv"));
    let c = |name| column(&h, name);
    let (n_, pol, ora, alg, it, q, kl) = (
        c("n"),
        c("policy"),
        c("oracle"),
        c("algo"),
        c("iter"),
        c("queries"),
        c("kl_star"),
    );
    let series = |n: &str, p: &str, o: &str, a: &str| -> Vec<(u64, u64, f64)> {
        runs.iter()
            .filter(|r| r[n_] == n && r[pol] == p && r[ora] == o && r[alg] == a)
            .map(|r| {
                (
                    r[it].parse().unwrap(),
                    r[q].parse().unwrap(),
                    r[kl].parse().unwrap(),
                )
            })
            .collect()
    };
    for n in ["200", "2000"] {
        for a in ["nash-mp", "omwu"] {
            let (tab, lin) = (
                series(n, "tabular", "exact", a),
                series(n, "linear", "exact", a),
            );
            assert!(tab.len() > 15 && tab.len() == lin.len(), "n={n} {a}");
            for (x, y) in tab.iter().zip(&lin) {
                assert_eq!((x.0, x.1), (y.0, y.1));
                assert!(
                    (x.2 - y.2).abs() <= 1e-9 * x.2 + 1e-14,
                    "n={n} {a} iter {}: tabular kl_star {} vs linear {}",
                    x.0,
                    x.2,
                    y.2
                );
            }
        }
        let b_tab = 100 * n.parse::<u64>().unwrap();
        // (class, algorithm, queries of the first iteration's extra g(π_0), per iteration)
        for (p, a, first, per_iter) in [
            ("tabular", "nash-mp", 0, 2 * b_tab),
            ("linear", "nash-mp", 0, 2 * 2000),
            ("linear", "omwu", 2000, 2000),
        ] {
            let s = series(n, p, "pg", a);
            assert!(s.len() > 10, "n={n} {p} {a}");
            for (k, queries, _) in s {
                let want = if k == 0 { 0 } else { first + k * per_iter };
                assert_eq!(queries, want, "n={n} {p} pg {a} at iteration {k}");
            }
        }
        // Tabular pg runs only nash-mp.
        assert!(series(n, "tabular", "pg", "omwu").is_empty());
    }

    let (sh, rows) = read_csv(&out.join("summary.csv"));
    assert_eq!(
        rows.len(),
        2 * 7,
        "2 sizes × 7 (class, oracle, algorithm) cells"
    );
    let reach = column(&sh, "queries_to_exploit_1e-3");
    let find = |n: &str, p: &str, o: &str, a: &str| -> u64 {
        let r = rows
            .iter()
            .find(|r| {
                r[column(&sh, "n")] == n
                    && r[column(&sh, "policy")] == p
                    && r[column(&sh, "oracle")] == o
                    && r[column(&sh, "algo")] == a
            })
            .unwrap_or_else(|| panic!("no summary row n={n} {p} {o} {a}"));
        r[reach]
            .parse()
            .unwrap_or_else(|_| panic!("n={n} {p} {o} {a} did not reach 1e-3: {r:?}"))
    };
    let tab = (
        find("200", "tabular", "pg", "nash-mp"),
        find("2000", "tabular", "pg", "nash-mp"),
    );
    let lin = (
        find("200", "linear", "pg", "nash-mp"),
        find("2000", "linear", "pg", "nash-mp"),
    );
    assert!(
        tab.1 >= 5 * tab.0,
        "tabular pg's queries grow with n: {tab:?}"
    );
    assert!(
        lin.1 <= 3 * lin.0 && lin.0 <= 3 * lin.1,
        "linear pg's do not: {lin:?}"
    );
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("### Queries to `exploit ≤ 1e-3`"), "{md}");
    assert!(md.contains("| nash-mp (linear, pg) |"), "{md}");
    assert!(out.join("plots/queries-low-rank.svg").exists());

    let out1 = t.path("out1");
    let mut one = vec!["--threads", "1"];
    one.extend(axes_args(s(&out1), s(&cache)));
    ok(&one);
    for f in ["runs.csv", "summary.csv", "summary.md"] {
        assert_eq!(
            std::fs::read(out.join(f)).unwrap(),
            std::fs::read(out1.join(f)).unwrap(),
            "{f} differs between 1 and 2 threads"
        );
    }
}

#[test]
fn policy_and_oracle_axes_refuse_what_they_cannot_run() {
    let t = Tmp::new();
    let (out, cache) = (t.path("out"), t.path("cache"));
    let base = ["sweep", "--out", s(&out), "--cache", s(&cache)];
    for (extra, says) in [
        (
            &["--families", "uniform,low-rank", "--policy", "linear"][..],
            "uniform games are stored without factors",
        ),
        (
            &[
                "--families",
                "low-rank",
                "--policy",
                "linear",
                "--algos",
                "egpo",
            ][..],
            "--policy linear --oracle exact runs nash-mp, omwu and mmd; none of them is in --algos",
        ),
        (
            &["--batch", "100"][..],
            "--batch applies to none of the sweep's runs",
        ),
        (
            &[
                "--families",
                "low-rank",
                "--policy",
                "linear",
                "--oracle",
                "pg",
                "--batch",
                "0",
            ][..],
            "--batch must be ≥ 1",
        ),
        (&["--eps", "0"][..], "--eps must be positive"),
    ] {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        fails(&a, &[says]);
    }
    assert!(!out.join("runs.csv").exists());
}
