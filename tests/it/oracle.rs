//! Sampled preference queries through the binary: approximate Nash-MP on a 1000-action mixture
//! game, thread-count independence, and bad parameters.

use crate::util::*;

/// `P = ½·sigmoid(s_i − s_j) + ½·cyclic` with skills `s_i = 3·U[0,1)` (a fixed hash of `i`).
fn mixture(n: usize) -> Vec<f64> {
    let skill = |i: usize| {
        let mut z = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        3.0 * ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let s: Vec<f64> = (0..n).map(skill).collect();
    let c = cyclic_any(n);
    let mut p = vec![0.5; n * n];
    for i in 0..n {
        for j in i + 1..n {
            let v = 0.5 / (1.0 + (s[j] - s[i]).exp()) + 0.5 * c[i * n + j];
            p[i * n + j] = v;
            p[j * n + i] = 1.0 - v;
        }
    }
    p
}

/// The cyclic tournament for any `n` (ties at the opposite action when `n` is even).
fn cyclic_any(n: usize) -> Vec<f64> {
    let mut p = vec![0.5; n * n];
    for i in 0..n {
        for j in 0..n {
            let d = (j + n - i) % n;
            if d != 0 && !(n.is_multiple_of(2) && d == n / 2) {
                p[i * n + j] = if d <= (n - 1) / 2 { 1.0 } else { 0.0 };
            }
        }
    }
    p
}

fn last_kl(out: &std::path::Path) -> f64 {
    let (header, rows) = read_csv(&out.join("metrics.csv"));
    let col = header.iter().position(|h| h == "kl_star").unwrap();
    rows.last().unwrap()[col].parse().unwrap()
}

#[test]
fn pg_on_a_1000_action_mixture_reaches_1e_2_and_improves_with_the_batch() {
    let t = Tmp::new();
    let n = 1000;
    let game = t.path("mix.npy");
    write_f32_matrix(&game, n, &mixture(n));
    // Both runs at once: each spends most of its time on π* in a debug build.
    let runs: Vec<_> = [2500u64, 25_000]
        .iter()
        .map(|b| {
            let out = t.path(&format!("b{b}"));
            let args: Vec<String> = [
                "solve",
                s(&game),
                "--beta",
                "0.1",
                "--algo",
                "nash-mp",
                "--oracle",
                "pg",
                "--inner-steps",
                "10",
                "--batch",
                &b.to_string(),
                "--seed",
                "3",
                "--iters",
                "24",
                "--out",
                s(&out),
            ]
            .iter()
            .map(|a| a.to_string())
            .collect();
            (
                out,
                std::thread::spawn(move || {
                    nashmp(&args.iter().map(String::as_str).collect::<Vec<_>>())
                }),
            )
        })
        .collect();
    let mut kl = Vec::new();
    for (out, h) in runs {
        let o = h.join().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        kl.push(last_kl(&out));
    }
    assert!(kl[1] < 1e-2, "B = 25000: kl_star = {}", kl[1]);
    // The noise floor scales like n/(S·B): ten times the batch, well under half the error.
    assert!(kl[1] < 0.5 * kl[0], "kl_star by batch: {kl:?}");
    // Queries are the real oracle calls: 24 iterations × 2 prox steps × S·B.
    let (header, rows) = read_csv(&t.path("b25000").join("metrics.csv"));
    let q = header.iter().position(|h| h == "queries").unwrap();
    assert_eq!(rows.last().unwrap()[q], (24 * 2 * 10 * 25_000).to_string());
}

#[test]
fn stochastic_modes_do_not_depend_on_threads() {
    // 600 actions: 3 chunks of sampled payoffs, 3 chunks of 9000 pairs. The cheap metrics use
    // the exact operator on the sampled iterates, which is what has to agree.
    let t = Tmp::new();
    let game = t.path("u.npy");
    ok(&[
        "generate",
        "uniform",
        "--n",
        "700",
        "--seed",
        "2",
        "--out",
        s(&game),
    ]);
    let modes: [&[&str]; 2] = [
        &[
            "--algo",
            "nash-mp,omwu,mwu",
            "--oracle",
            "sampled",
            "--samples",
            "3",
        ],
        &[
            "--algo",
            "nash-mp",
            "--oracle",
            "pg",
            "--inner-steps",
            "3",
            "--batch",
            "9000",
        ],
    ];
    for mode in modes {
        let mut outs = Vec::new();
        for th in ["1", "2"] {
            let out = t.path(&format!("{}-{th}", mode[3]));
            let mut args = vec![
                "--threads",
                th,
                "solve",
                s(&game),
                "--beta",
                "0.05",
                "--metrics",
                "cheap",
                "--iters",
                "6",
                "--seed",
                "11",
                "--out",
                s(&out),
            ];
            args.extend_from_slice(mode);
            ok(&args);
            outs.push(out);
        }
        let strip = |p: &std::path::Path| -> Vec<String> {
            let (_, rows) = read_csv(&p.join("metrics.csv"));
            rows.iter().map(|r| r[..r.len() - 1].join(",")).collect()
        };
        let (a, b) = (strip(&outs[0]), strip(&outs[1]));
        assert!(a.len() >= 7);
        assert_eq!(
            a, b,
            "{mode:?}: metrics.csv differs between 1 and 2 threads"
        );
        assert_eq!(
            std::fs::read(outs[0].join("nash-mp.policy.npy")).unwrap(),
            std::fs::read(outs[1].join("nash-mp.policy.npy")).unwrap()
        );
    }
}

#[test]
fn bad_oracle_parameters() {
    let t = Tmp::new();
    let game = t.path("g.npy");
    write_f64_matrix(&game, 5, &cyclic(5));
    let g = s(&game);
    let base = [
        "solve", g, "--beta", "0.1", "--iters", "2", "--algo", "nash-mp",
    ];
    let case = |extra: &[&str], needles: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        fails(&args, needles);
    };
    case(
        &["--oracle", "sampled", "--samples", "0"],
        &["--samples", "at least 1"],
    );
    case(&["--oracle", "sampled"], &["--samples"]);
    case(&["--samples", "5"], &["--samples", "--oracle sampled"]);
    case(&["--seed", "5"], &["--seed", "--oracle exact"]);
    let pg = ["--oracle", "pg", "--inner-steps", "3", "--batch", "10"];
    case(&pg[..4], &["--inner-steps", "--batch"]);
    let with = |k: &str, v: &str| {
        let mut a = pg.to_vec();
        a.extend_from_slice(&[k, v]);
        a.iter().map(|x| x.to_string()).collect::<Vec<_>>()
    };
    for (k, v, needle) in [
        ("--inner-lr", "0", "--inner-lr"),
        ("--inner-lr", "-1", "--inner-lr"),
        ("--inner-lr", "inf", "--inner-lr"),
        ("--samples", "4", "--samples"),
    ] {
        let a = with(k, v);
        case(&a.iter().map(String::as_str).collect::<Vec<_>>(), &[needle]);
    }
    let mut zero = pg.to_vec();
    zero[3] = "0";
    case(&zero, &["--inner-steps", "at least 1"]);
    zero[3] = "3";
    zero[5] = "0";
    case(&zero, &["--batch", "at least 1"]);
    case(
        &["--oracle", "sampled", "--samples", "2", "--batch", "3"],
        &["--batch", "pg"],
    );
    // pg is approximate Nash-MP only.
    fails(
        &[
            "solve",
            g,
            "--beta",
            "0.1",
            "--algo",
            "nash-mp,mmd",
            "--oracle",
            "pg",
            "--inner-steps",
            "2",
            "--batch",
            "2",
        ],
        &["--oracle pg", "mmd", "--algo nash-mp"],
    );
}
