//! `solve --policy linear`: the log-linear class of docs/math.md §8 through the real binary —
//! equal to tabular Nash-MP on a realizable game, the same bytes for any --threads, SIGINT
//! saves and resumes on the bits of an uninterrupted run, and bad features exit 2 naming the
//! file, the index and the value.

use crate::util::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn lowrank(t: &Tmp, n: usize) -> String {
    let p = t.path(&format!("lr{n}.nmp"));
    ok(&[
        "generate",
        "low-rank",
        "--n",
        &n.to_string(),
        "--rank",
        "2",
        "--seed",
        "3",
        "--out",
        s(&p),
    ]);
    s(&p).to_string()
}

fn solve(g: &str, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = ["solve", g, "--beta", "0.1", "--out", s(out)]
        .iter()
        .map(|x| x.to_string())
        .collect();
    a.extend(extra.iter().map(|x| x.to_string()));
    a
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn metrics_sans_seconds(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("metrics.csv"))
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n")
        .collect()
}

#[test]
fn linear_policy_equals_tabular_nash_mp_on_a_realizable_game() {
    let t = Tmp::new();
    let g = lowrank(&t, 2000);
    let (lin, tab) = (t.path("lin"), t.path("tab"));
    let common = ["--algo", "nash-mp,omwu,mmd", "--iters", "40"];
    let mut a = common.to_vec();
    a.extend(["--policy", "linear", "--features", "game"]);
    ok(&refs(&solve(&g, &lin, &a)));
    ok(&refs(&solve(&g, &tab, &common)));
    for algo in ["nash-mp", "omwu", "mmd"] {
        let p = read_f64_vector(&lin.join(format!("{algo}.policy.npy")));
        let q = read_f64_vector(&tab.join(format!("{algo}.policy.npy")));
        let worst = p
            .iter()
            .zip(&q)
            .map(|(x, y)| (x.ln() - y.ln()).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-12, "{algo}: {worst}");
    }
    // Full metrics against the full game's π*: kl_star falls under Nash-MP's bound.
    let (head, rows) = read_csv(&lin.join("metrics.csv"));
    let kl = head.iter().position(|h| h == "kl_star").unwrap();
    let bound = head.iter().position(|h| h == "bound").unwrap();
    let last = rows.iter().rfind(|r| r[0] == "nash-mp").unwrap();
    let (k, b): (f64, f64) = (last[kl].parse().unwrap(), last[bound].parse().unwrap());
    assert!(k <= b && k < 1e-3, "kl_star {k} vs bound {b}");
    let summary = std::fs::read_to_string(lin.join("summary.json")).unwrap();
    assert!(summary.contains("\"realizable\": true"), "{summary}");
}

#[test]
fn sampled_linear_policy_does_not_depend_on_threads() {
    let t = Tmp::new();
    let g = lowrank(&t, 70_000);
    let run = |threads: &str| {
        let out = t.path(&format!("t{threads}"));
        let mut a = vec!["--threads".to_string(), threads.to_string()];
        a.extend(solve(
            &g,
            &out,
            &[
                "--algo",
                "nash-mp,omwu",
                "--iters",
                "8",
                "--policy",
                "linear",
                "--features",
                "game",
                "--oracle",
                "pg",
                "--batch",
                "9000",
                "--seed",
                "5",
                "--metrics",
                "cheap",
            ],
        ));
        ok(&refs(&a));
        out
    };
    let (one, two) = (run("1"), run("2"));
    assert_eq!(metrics_sans_seconds(&one), metrics_sans_seconds(&two));
    for algo in ["nash-mp", "omwu"] {
        let f = format!("{algo}.policy.npy");
        assert_eq!(
            std::fs::read(one.join(&f)).unwrap(),
            std::fs::read(two.join(&f)).unwrap()
        );
    }
    // Queries counted exactly: 2B per Nash-MP iteration, B per OMWU iteration plus B at start.
    let (_, rows) = read_csv(&one.join("metrics.csv"));
    let q = |algo: &str| rows.iter().rfind(|r| r[0] == algo).unwrap()[2].clone();
    assert_eq!(q("nash-mp"), (8 * 2 * 9000).to_string());
    assert_eq!(q("omwu"), (9 * 9000).to_string());
}

#[test]
fn sigint_saves_and_resume_ends_on_the_same_bits() {
    let t = Tmp::new();
    let g = lowrank(&t, 3000);
    let extra = [
        "--algo",
        "nash-mp,omwu",
        "--iters",
        "1500",
        "--policy",
        "linear",
        "--features",
        "game",
        "--oracle",
        "pg",
        "--batch",
        "64",
        "--seed",
        "2",
        "--metrics",
        "cheap",
    ];
    let (full, part) = (t.path("full"), t.path("part"));
    ok(&refs(&solve(&g, &full, &extra)));
    let mut with_ck = extra.to_vec();
    with_ck.extend(["--checkpoint-every", "50"]);
    let child = Command::new(env!("CARGO_BIN_EXE_nashmp"))
        .args(refs(&solve(&g, &part, &with_ck)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    // Wait until the run is under way: its first checkpoint is written.
    while !part.join("checkpoint.nmpck").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the run never got going"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "stderr: {err}");
    assert!(part.join("checkpoint.nmpck").exists());
    // Another batch is another run: refused.
    let mut changed = extra.to_vec();
    changed[11] = "65";
    let mut a = changed.clone();
    a.extend(["--checkpoint-every", "50", "--resume"]);
    fails(&refs(&solve(&g, &part, &a)), &["cannot resume"]);
    let mut a = with_ck.clone();
    a.push("--resume");
    ok(&refs(&solve(&g, &part, &a)));
    assert_eq!(metrics_sans_seconds(&full), metrics_sans_seconds(&part));
    for algo in ["nash-mp", "omwu"] {
        let f = format!("{algo}.policy.npy");
        assert_eq!(
            std::fs::read(full.join(&f)).unwrap(),
            std::fs::read(part.join(&f)).unwrap()
        );
    }
}

#[test]
fn bad_features_exit_2_naming_file_index_and_value() {
    let t = Tmp::new();
    let g = lowrank(&t, 50);
    let out = t.path("o");
    let write = |name: &str, shape: &str, vals: &[f64]| {
        let p = t.path(name);
        let mut b = npy_header("<f8", false, shape);
        vals.iter().for_each(|x| b.extend(x.to_le_bytes()));
        std::fs::write(&p, b).unwrap();
        s(&p).to_string()
    };
    let lin = |f: &str| -> Vec<String> {
        solve(
            &g,
            &out,
            &[
                "--algo",
                "nash-mp",
                "--iters",
                "3",
                "--policy",
                "linear",
                "--features",
                f,
            ],
        )
    };
    let mut nan = vec![0.5; 100];
    nan[2 * 17 + 1] = f64::NAN;
    let f = write("nan.npy", "(50, 2)", &nan);
    fails(&refs(&lin(&f)), &["nan.npy", "φ[17][1]", "NaN"]);
    let f = write("d0.npy", "(50, 0)", &[]);
    fails(&refs(&lin(&f)), &["d0.npy", "d ≥ 1"]);
    let f = write("rows.npy", "(49, 2)", &[0.1; 98]);
    fails(&refs(&lin(&f)), &["rows.npy", "49 rows", "50 actions"]);
    let f = write("flat.npy", "(50,)", &[0.1; 50]);
    fails(&refs(&lin(&f)), &["flat.npy", "(n, d)"]);
    fails(&refs(&lin(s(&t.path("missing.npy")))), &["missing.npy"]);
    // --features game needs factors; a dense game has none.
    let dense = t.path("c.npy");
    ok(&["generate", "cyclic", "--n", "21", "--out", s(&dense)]);
    let a = solve(
        s(&dense),
        &out,
        &[
            "--algo",
            "nash-mp",
            "--policy",
            "linear",
            "--features",
            "game",
        ],
    );
    fails(&refs(&a), &["--features game", "factors"]);
    // Missing features, tabular-only algorithms, tabular-only oracles.
    fails(
        &refs(&solve(
            &g,
            &out,
            &["--algo", "nash-mp", "--policy", "linear"],
        )),
        &["--features"],
    );
    let a = solve(
        &g,
        &out,
        &["--algo", "egpo", "--policy", "linear", "--features", "game"],
    );
    fails(&refs(&a), &["egpo"]);
    let a = solve(
        &g,
        &out,
        &[
            "--algo",
            "nash-mp",
            "--policy",
            "linear",
            "--features",
            "game",
            "--oracle",
            "sampled",
            "--samples",
            "2",
        ],
    );
    fails(&refs(&a), &["--oracle sampled"]);
    // A good user feature file runs (the projected algorithm, realizable: false).
    let good: Vec<f64> = (0..100).map(|i| ((i * 37 % 11) as f64) / 11.0).collect();
    let f = write("good.npy", "(50, 2)", &good);
    ok(&refs(&lin(&f)));
    let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
    assert!(summary.contains("\"realizable\": false"), "{summary}");
}

/// `--estimator gradient --inner-steps S`: the plain policy gradient, for comparison with the
/// natural estimator. It learns (final exploitability well below the start's), counts
/// `2·S·B` queries per Nash-MP iteration and `S·B` per MMD one, records its estimator, gives
/// the same bytes for any --threads, and its misuses are errors naming the flag.
#[test]
fn gradient_estimator_counts_its_queries_and_learns() {
    let t = Tmp::new();
    let g = lowrank(&t, 3000);
    let flags = [
        "--algo",
        "nash-mp,mmd",
        "--iters",
        "12",
        "--policy",
        "linear",
        "--features",
        "game",
        "--oracle",
        "pg",
        "--batch",
        "3000",
        "--estimator",
        "gradient",
        "--inner-steps",
        "3",
        "--seed",
        "2",
    ];
    let run = |threads: &str| {
        let out = t.path(&format!("g{threads}"));
        let mut a = vec!["--threads".to_string(), threads.to_string()];
        a.extend(solve(&g, &out, &flags));
        ok(&refs(&a));
        out
    };
    let (one, two) = (run("1"), run("2"));
    assert_eq!(metrics_sans_seconds(&one), metrics_sans_seconds(&two));
    let (head, rows) = read_csv(&one.join("metrics.csv"));
    let col = |name: &str| head.iter().position(|h| h == name).unwrap();
    let (q, ex) = (col("queries"), col("exploit"));
    // (MMD's default step at β = 0.1 is short: after 12 iterations it is at a third of its
    // start with either estimator; Nash-MP is two orders of magnitude down.)
    for (algo, per, cut) in [("nash-mp", 2 * 3 * 3000, 0.02), ("mmd", 3 * 3000, 0.5)] {
        let first = rows.iter().find(|r| r[0] == algo).unwrap();
        let last = rows.iter().rfind(|r| r[0] == algo).unwrap();
        assert_eq!(last[q], (12 * per).to_string(), "{algo}");
        let (e0, e): (f64, f64) = (first[ex].parse().unwrap(), last[ex].parse().unwrap());
        assert!(e < cut * e0, "{algo}: exploit {e} from {e0}");
    }
    let summary = std::fs::read_to_string(one.join("summary.json")).unwrap();
    assert!(summary.contains("\"estimator\": \"gradient\""), "{summary}");
    // Misuses.
    let out = t.path("bad");
    let with = |extra: &[&str]| {
        let mut a: Vec<&str> = flags.to_vec();
        a.extend(extra);
        solve(&g, &out, &a)
    };
    let mut omwu = with(&[]);
    let i = omwu.iter().position(|x| x == "nash-mp,mmd").unwrap();
    omwu[i] = "omwu".into();
    fails(&refs(&omwu), &["--estimator gradient", "omwu"]);
    fails(&refs(&with(&["--inner-lr", "-1"])), &["--inner-lr"]);
    let tab = solve(&g, &out, &["--algo", "nash-mp", "--estimator", "gradient"]);
    fails(&refs(&tab), &["--estimator", "--policy linear"]);
    let nat = solve(
        &g,
        &out,
        &[
            "--algo",
            "nash-mp",
            "--policy",
            "linear",
            "--features",
            "game",
            "--oracle",
            "pg",
            "--batch",
            "10",
            "--inner-steps",
            "3",
        ],
    );
    fails(&refs(&nat), &["--inner-steps 3", "--estimator gradient"]);
}

/// `nashmp param-sweep`: every method counts its queries exactly (2·B per Nash-MP iteration,
/// 2·S·B with the plain gradient, B per OMWU iteration plus B for its first direction, 2·⌈c·n⌉
/// for tabular pg), the parametric runs reach ε, tabular pg stops at --tabular-max-n, the
/// report is written,
/// and the same bytes come out at one thread (but for the timings).
#[test]
fn param_sweep_counts_queries_and_writes_its_report() {
    let t = Tmp::new();
    let run = |out: &Path, threads: &str| {
        ok(&[
            "--threads",
            threads,
            "param-sweep",
            "--sizes",
            "500,5000",
            "--betas",
            "1",
            "--seeds",
            "2",
            "--eps",
            "1e-4",
            "--d",
            "4",
            "--batch",
            "2000",
            "--methods",
            "param-nash-mp,param-omwu,param-nash-mp-gradient,tabular-pg",
            "--inner-steps",
            "3",
            "--tabular-batch-per-n",
            "64",
            "--tabular-max-n",
            "500",
            "--families",
            "low-rank",
            "--max-iters",
            "60",
            "--out",
            s(out),
            "--cache",
            s(&t.path("cache")),
        ]);
    };
    let out = t.path("out");
    run(&out, "2");
    let (h, rows) = read_csv(&out.join("runs.csv"));
    let c = |name: &str| h.iter().position(|x| x == name).unwrap();
    let (n_, method, iters, queries, reached) =
        (c("n"), c("method"), c("iters"), c("queries"), c("reached"));
    // 2 sizes × 2 seeds × 3 parametric methods + 2 seeds of tabular pg at n = 500.
    assert_eq!(rows.len(), 2 * 2 * 3 + 2, "{rows:?}");
    for r in &rows {
        let k: u64 = r[iters].parse().unwrap();
        let q: u64 = r[queries].parse().unwrap();
        let want = match r[method].as_str() {
            "param-nash-mp" => 2 * 2000 * k,
            "param-nash-mp-gradient" => 2 * 3 * 2000 * k,
            "param-omwu" => 2000 * (k + 1),
            "tabular-pg" => {
                assert_eq!(r[n_], "500", "tabular pg above --tabular-max-n");
                2 * 64 * 500 * k
            }
            m => panic!("unexpected method {m}"),
        };
        assert_eq!(q, want, "{r:?}");
        // Tabular pg's batch of 64·n pairs stalls above 1e-4 (its noise floor); the linear
        // class's 2000 pairs reach it.
        let parametric = r[method] != "tabular-pg";
        assert_eq!(r[reached] == "true", parametric, "{r:?}");
    }
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("param-nash-mp-gradient"), "{md}");
    assert!(out.join("queries_vs_n.svg").exists());
    let out1 = t.path("out1");
    run(&out1, "1");
    let strip = |p: &Path| -> Vec<String> {
        let (h, rows) = read_csv(&p.join("runs.csv"));
        let sec = h.iter().position(|x| x == "seconds").unwrap();
        rows.into_iter()
            .map(|mut r| {
                r.remove(sec);
                r.join(",")
            })
            .collect()
    };
    assert_eq!(
        strip(&out),
        strip(&out1),
        "runs differ between 1 and 2 threads"
    );
    fails(
        &[
            "param-sweep",
            "--inner-steps",
            "2",
            "--out",
            s(&t.path("x")),
        ],
        &["--inner-steps applies to --methods param-nash-mp-gradient only"],
    );
}
