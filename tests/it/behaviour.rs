//! The behaviours docs/math.md §3 records on the 101-action cyclic game, through the binary, and
//! Nash-MP's first step checked against its closed form.
#![allow(clippy::needless_range_loop)]

use crate::util::*;

fn column(rows: &[Vec<String>], algo: &str, col: usize) -> Vec<f64> {
    rows.iter()
        .filter(|r| r[0] == algo)
        .map(|r| r[col].parse().unwrap())
        .collect()
}

/// Columns of `metrics.csv`, from the metric table.
const KL: usize = nashmp::run::csv_out::LEAD.len() + nashmp::metrics::Metric::KlStar as usize;
const BOUND: usize = nashmp::run::csv_out::LEAD.len() + nashmp::metrics::Metric::Bound as usize;

fn cyclic_setup(t: &Tmp) -> (String, String) {
    let n = 101;
    let game = t.path("cyclic101.npy");
    write_f64_matrix(&game, n, &cyclic(n));
    let r = t.path("ref.npy");
    write_f64_vector(&r, &nonuniform(n));
    (s(&game).into(), s(&r).into())
}

#[test]
fn cyclic_101_nash_mp_converges_under_its_bound() {
    let t = Tmp::new();
    let (game, r) = cyclic_setup(&t);
    let out = t.path("nmp");
    ok(&[
        "solve",
        &game,
        "--beta",
        "0.01",
        "--ref",
        &r,
        "--algo",
        "nash-mp",
        "--alpha",
        "2",
        "--iters",
        "400",
        "--out",
        s(&out),
    ]);
    let (_, rows) = read_csv(&out.join("metrics.csv"));
    let kl = column(&rows, "nash-mp", KL);
    let bound = column(&rows, "nash-mp", BOUND);
    assert_eq!(kl.len(), 401);
    assert!(kl[0] > 1e-3, "start away from π*: {}", kl[0]);
    for (k, (a, b)) in kl.iter().zip(&bound).enumerate() {
        assert!(
            *a <= *b * (1.0 + 1e-9) + 1e-15,
            "iteration {k}: kl_star {a} > bound {b}"
        );
    }
    assert!(kl[400] <= 1e-8, "kl_star after 400 iterations: {}", kl[400]);
}

#[test]
fn cyclic_101_baselines_behave_as_recorded() {
    let t = Tmp::new();
    let (game, r) = cyclic_setup(&t);
    // MMD at α = 16β is still far after 800 iterations.
    let out = t.path("mmd");
    ok(&[
        "solve",
        &game,
        "--beta",
        "0.01",
        "--ref",
        &r,
        "--algo",
        "mmd",
        "--alpha",
        "0.16",
        "--iters",
        "800",
        "--out",
        s(&out),
    ]);
    let (_, rows) = read_csv(&out.join("metrics.csv"));
    let kl = column(&rows, "mmd", KL);
    assert!(kl[800] > 1e-3, "mmd reached {}", kl[800]);
    // Constant-step Nash-MD stalls at a biased point.
    let out = t.path("nmd");
    ok(&[
        "solve",
        &game,
        "--beta",
        "0.01",
        "--ref",
        &r,
        "--algo",
        "nash-md",
        "--iters",
        "800",
        "--out",
        s(&out),
    ]);
    let (_, rows) = read_csv(&out.join("metrics.csv"));
    let kl = column(&rows, "nash-md", KL);
    assert!(
        kl.iter().all(|&v| v > 1e-6),
        "nash-md min {}",
        kl.iter().cloned().fold(1.0, f64::min)
    );
    // Nash-MP at α = 4 breaks the Mirror Prox condition: it warns (and, as recorded, does not
    // converge).
    let out = t.path("nmp4");
    let o = nashmp(&[
        "solve",
        &game,
        "--beta",
        "0.01",
        "--ref",
        &r,
        "--algo",
        "nash-mp",
        "--alpha",
        "4",
        "--iters",
        "400",
        "--out",
        s(&out),
    ]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("warning: nash-mp with α = 4 > 2"));
    let (_, rows) = read_csv(&out.join("metrics.csv"));
    assert!(column(&rows, "nash-mp", KL)[400] > 1e-6);
}

#[test]
fn one_nash_mp_step_matches_the_closed_form() {
    // P, μ, π_0 and the step chosen so that every quantity is distinct.
    let p = [0.5, 0.8, 0.3, 0.2, 0.5, 0.6, 0.7, 0.4, 0.5];
    let mu: [f64; 3] = [0.5, 0.25, 0.25];
    let pi0 = [0.2, 0.3, 0.5];
    let (alpha, beta) = (1.0f64, 0.5f64);
    let matvec = |x: &[f64]| -> Vec<f64> {
        (0..3)
            .map(|i| (0..3).map(|j| p[i * 3 + j] * x[j]).sum())
            .collect()
    };
    // θ½ = prox(θ_0, g(π_0)): π½ ∝ (π_0 μ^{αβ} e^{α g})^{1/(1+αβ)}, likewise π_1 with g(π½).
    let prox = |center: &[f64], g: &[f64]| -> Vec<f64> {
        let w: Vec<f64> = (0..3)
            .map(|i| {
                (center[i] * mu[i].powf(alpha * beta) * (alpha * g[i]).exp())
                    .powf(1.0 / (1.0 + alpha * beta))
            })
            .collect();
        let z: f64 = w.iter().sum();
        w.iter().map(|v| v / z).collect()
    };
    let g0 = matvec(&pi0);
    assert!((g0[0] - (0.5 * 0.2 + 0.8 * 0.3 + 0.3 * 0.5)).abs() < 1e-15);
    let half = prox(&pi0, &g0);
    let pi1 = prox(&pi0, &matvec(&half));
    // The library's step, from the same start.
    use nashmp::algo::{self, AlgoKind, Context, CurrentPayoff, Schedule};
    let game = nashmp::game::DenseGame::from_vec("p", 3, p.to_vec());
    let theta_ref: Vec<f64> = mu.iter().map(|v: &f64| v.ln()).collect();
    let theta0: Vec<f64> = pi0.iter().map(|v: &f64| v.ln()).collect();
    let ctx = Context::new(&game, &theta_ref, beta);
    let mut theta_half = vec![0.0; 3];
    algo::prox(&ctx, alpha, &theta0, &g0, &mut theta_half);
    for i in 0..3 {
        assert!((theta_half[i].exp() - half[i]).abs() < 1e-15, "θ½[{i}]");
    }
    let mut a = algo::build(AlgoKind::NashMp, &theta0, alpha, Schedule::Constant);
    a.step(&ctx, &mut CurrentPayoff::new(3));
    for i in 0..3 {
        assert!((a.theta()[i].exp() - pi1[i]).abs() < 1e-15, "θ_1[{i}]");
    }
    // The same step through the binary.
    let t = Tmp::new();
    let (gp, rp, ip, out) = (
        t.path("g.npy"),
        t.path("mu.npy"),
        t.path("pi0.npy"),
        t.path("o"),
    );
    write_f64_matrix(&gp, 3, &p);
    write_f64_vector(&rp, &mu);
    write_f64_vector(&ip, &pi0);
    ok(&[
        "solve",
        s(&gp),
        "--beta",
        "0.5",
        "--alpha",
        "1",
        "--ref",
        s(&rp),
        "--init",
        s(&ip),
        "--algo",
        "nash-mp",
        "--iters",
        "1",
        "--out",
        s(&out),
    ]);
    let got = read_f64_vector(&out.join("nash-mp.policy.npy"));
    for i in 0..3 {
        assert!(
            (got[i] - pi1[i]).abs() < 1e-15,
            "binary π_1[{i}] = {} vs {}",
            got[i],
            pi1[i]
        );
    }
    // The closed form evaluated independently (Python, float64), as literal anchors.
    let (half_py, pi1_py) = (
        [0.2839558067838281, 0.29532594007634644, 0.42071825313982547],
        [0.28637028497037537, 0.28854007638590284, 0.4250896386437216],
    );
    for i in 0..3 {
        assert!((half[i] - half_py[i]).abs() < 1e-14 && (pi1[i] - pi1_py[i]).abs() < 1e-14);
    }
}

#[test]
fn eta_and_alpha_are_the_same_step() {
    let t = Tmp::new();
    let game = t.path("g.npy");
    write_f64_matrix(&game, 11, &cyclic(11));
    let (a, b) = (t.path("a"), t.path("b"));
    ok(&[
        "solve",
        s(&game),
        "--beta",
        "0.1",
        "--algo",
        "nash-mp",
        "--alpha",
        "1.5",
        "--iters",
        "5",
        "--out",
        s(&a),
    ]);
    ok(&[
        "solve",
        s(&game),
        "--beta",
        "0.1",
        "--algo",
        "nash-mp",
        "--eta",
        "0.15",
        "--iters",
        "5",
        "--out",
        s(&b),
    ]);
    let (x, y) = (
        read_f64_vector(&a.join("nash-mp.policy.npy")),
        read_f64_vector(&b.join("nash-mp.policy.npy")),
    );
    for (u, v) in x.iter().zip(&y) {
        assert!((u - v).abs() < 1e-15);
    }
}

#[test]
fn tol_stops_on_exploitability_and_metrics_none_spends_no_queries() {
    let t = Tmp::new();
    let game = t.path("g.npy");
    write_f64_matrix(&game, 11, &cyclic(11));
    let r = t.path("r.npy");
    write_f64_vector(&r, &nonuniform(11));
    let out = t.path("o");
    ok(&[
        "solve",
        s(&game),
        "--beta",
        "0.1",
        "--ref",
        s(&r),
        "--algo",
        "nash-mp",
        "--tol",
        "1e-6",
        "--iters",
        "10000",
        "--out",
        s(&out),
    ]);
    let (header, rows) = read_csv(&out.join("metrics.csv"));
    let e = header.iter().position(|h| h == "exploit").unwrap();
    let last: f64 = rows.last().unwrap()[e].parse().unwrap();
    let before: f64 = rows[rows.len() - 2][e].parse().unwrap();
    assert!(last <= 1e-6 && before > 1e-6, "{before} {last}");
    assert!(std::fs::read_to_string(out.join("summary.json"))
        .unwrap()
        .contains("\"tol\""));
    let out2 = t.path("o2");
    ok(&[
        "solve",
        s(&game),
        "--beta",
        "0.1",
        "--algo",
        "nash-mp,omwu",
        "--metrics",
        "none",
        "--iters",
        "7",
        "--out",
        s(&out2),
    ]);
    let (_, rows) = read_csv(&out2.join("metrics.csv"));
    assert!(rows.iter().all(|r| r[3..11].iter().all(|c| c.is_empty())));
    let q: Vec<&str> = rows
        .iter()
        .filter(|r| r[0] == "omwu")
        .map(|r| r[2].as_str())
        .collect();
    assert_eq!(
        q,
        ["0", "2", "3", "4", "5", "6", "7", "8"],
        "omwu pays g(π_0) once"
    );
    // The same final policy with or without metrics.
    let out3 = t.path("o3");
    ok(&[
        "solve",
        s(&game),
        "--beta",
        "0.1",
        "--algo",
        "nash-mp,omwu",
        "--iters",
        "7",
        "--out",
        s(&out3),
    ]);
    for a in ["nash-mp", "omwu"] {
        let f = format!("{a}.policy.npy");
        assert_eq!(
            std::fs::read(out2.join(&f)).unwrap(),
            std::fs::read(out3.join(&f)).unwrap()
        );
    }
}
