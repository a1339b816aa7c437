//! Numerical extremes: β = 1e-6, steps at their bounds, policies whose small probabilities
//! underflow `f64` in linear space, and a million actions: `metrics.csv` never holds NaN or
//! Inf, and the certificates keep their meaning (non-negative, decreasing, under the bound).

use crate::util::*;
use std::path::Path;

/// Every metric cell of `metrics.csv`, checked finite; returns `(header, rows)`.
fn finite_metrics(out: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let (h, rows) = read_csv(&out.join("metrics.csv"));
    assert!(!rows.is_empty());
    for r in &rows {
        for (name, cell) in h.iter().zip(r).skip(3) {
            if !cell.is_empty() {
                let v: f64 = cell.parse().unwrap_or(f64::NAN);
                assert!(
                    v.is_finite(),
                    "{}: {name} = {cell:?} in {r:?}",
                    out.display()
                );
            }
        }
    }
    (h, rows)
}

fn col(h: &[String], name: &str) -> usize {
    h.iter().position(|c| c == name).unwrap()
}

/// Certificates that must hold whatever the numbers: KL ≥ 0, exploitability ≥ 0, and for
/// `nash-mp` the theory bound above the KL; the exploitability falls from start to end.
fn meaningful(h: &[String], rows: &[Vec<String>]) {
    let get = |r: &Vec<String>, c: &str| r[col(h, c)].parse::<f64>().ok();
    for r in rows {
        for c in ["kl_star", "exploit", "exploit0"] {
            if let Some(v) = get(r, c) {
                assert!(v >= -1e-12, "{c} = {v} < 0 in {r:?}");
            }
        }
        if let (Some(kl), Some(b)) = (get(r, "kl_star"), get(r, "bound")) {
            assert!(
                kl <= b * (1.0 + 1e-9) + 1e-12,
                "KL {kl} above the bound {b}: {r:?}"
            );
        }
    }
    for algo in rows
        .iter()
        .map(|r| r[0].clone())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let mine: Vec<_> = rows.iter().filter(|r| r[0] == algo).collect();
        let (first, last) = (
            get(mine[0], "exploit"),
            get(mine[mine.len() - 1], "exploit"),
        );
        if let (Some(f), Some(l)) = (first, last) {
            assert!(l <= f + 1e-12, "{algo}: exploit rose from {f} to {l}");
        }
    }
}

fn policy_zeros(path: &Path) -> usize {
    read_f64_vector(path).iter().filter(|&&p| p == 0.0).count()
}

#[test]
fn beta_1e_minus_6_every_algorithm() {
    let t = Tmp::new();
    let g = t.path("bt.npy");
    ok(&[
        "generate",
        "bradley-terry",
        "--n",
        "40",
        "--sigma",
        "20",
        "--out",
        s(&g),
    ]);
    // `--metrics cheap`: at β = 1e-6 the π* solve runs to its cap of 10^6 iterations (see
    // README), far too long for a test.
    let out = t.path("o");
    let o = s(&out);
    ok(&[
        "solve",
        s(&g),
        "--beta",
        "1e-6",
        "--iters",
        "300",
        "--metrics",
        "cheap",
        "--out",
        o,
    ]);
    let (h, rows) = finite_metrics(&out);
    meaningful(&h, &rows);
    // Nash-MP's iterate reaches the equilibrium: no pure strategy gains anything against it.
    let last = rows.iter().rev().find(|r| r[0] == "nash-mp").unwrap();
    assert!(
        last[col(&h, "exploit0")].parse::<f64>().unwrap() < 1e-9,
        "{last:?}"
    );
}

#[test]
fn steps_at_their_bounds() {
    let t = Tmp::new();
    let g = t.path("c.npy");
    ok(&[
        "generate",
        "cyclic",
        "--n",
        "41",
        "--noise",
        "0.2",
        "--out",
        s(&g),
    ]);
    for (algo, alpha) in [("nash-mp", "2"), ("egpo", "1.999999999"), ("nash-md", "2")] {
        let out = t.path(algo);
        ok(&[
            "solve",
            s(&g),
            "--beta",
            "0.5",
            "--algo",
            algo,
            "--alpha",
            alpha,
            "--iters",
            "200",
            "--out",
            s(&out),
        ]);
        let (h, rows) = finite_metrics(&out);
        meaningful(&h, &rows);
    }
}

#[test]
fn probabilities_that_underflow_in_linear_space() {
    let t = Tmp::new();
    let g = t.path("bt.npy");
    ok(&[
        "generate",
        "bradley-terry",
        "--n",
        "40",
        "--sigma",
        "20",
        "--out",
        s(&g),
    ]);
    // MWU with a large step drives 39 of 40 probabilities below f64's smallest subnormal.
    let out = t.path("mwu");
    ok(&[
        "solve",
        s(&g),
        "--beta",
        "1e-6",
        "--algo",
        "mwu",
        "--alpha",
        "50",
        "--iters",
        "300",
        "--metrics",
        "cheap",
        "--out",
        s(&out),
    ]);
    let (h, rows) = finite_metrics(&out);
    meaningful(&h, &rows);
    assert!(
        policy_zeros(&out.join("mwu.policy.npy")) > 30,
        "probabilities underflowed"
    );
    // A reference with entries at the smallest subnormal (log ≈ −744.4).
    let n = 40;
    let mut mu = vec![5e-324; n];
    mu[0] = 1.0 - (n - 1) as f64 * 5e-324;
    let r = t.path("ref.npy");
    write_f64_vector(&r, &mu);
    let out = t.path("tiny-ref");
    ok(&[
        "solve",
        s(&g),
        "--beta",
        "1e-3",
        "--ref",
        s(&r),
        "--iters",
        "200",
        "--out",
        s(&out),
    ]);
    let (h, rows) = finite_metrics(&out);
    meaningful(&h, &rows);
    assert!(
        policy_zeros(&out.join("equilibrium.npy")) > 0,
        "π* underflows too"
    );
}

#[test]
fn a_million_actions_structured() {
    let t = Tmp::new();
    for (family, extra) in [("block", ["--types", "16"]), ("low-rank", ["--rank", "2"])] {
        let g = t.path(&format!("{family}.nmp"));
        ok(&[
            "generate",
            family,
            "--n",
            "1000000",
            extra[0],
            extra[1],
            "--out",
            s(&g),
        ]);
        let out = t.path(family);
        ok(&[
            "solve",
            s(&g),
            "--beta",
            "1e-6",
            "--algo",
            "nash-mp",
            "--metrics",
            "cheap",
            "--iters",
            "2",
            "--out",
            s(&out),
        ]);
        let (h, rows) = finite_metrics(&out);
        meaningful(&h, &rows);
        assert_eq!(
            read_f64_vector(&out.join("nash-mp.policy.npy")).len(),
            1_000_000
        );
    }
}
