//! The soccer goldens (independent float64 solve and Gambit's logit QRE) through the binary.

use crate::util::*;

fn case_args(t: &Tmp, case: &serde_json::Value, i: usize) -> (String, Option<String>) {
    let beta = case["beta"].as_f64().unwrap().to_string();
    let reference = match &case["reference"] {
        serde_json::Value::Array(v) => {
            let r: Vec<f64> = v.iter().map(|x| x.as_f64().unwrap()).collect();
            let p = t.path(&format!("ref{i}.npy"));
            write_f64_vector(&p, &r);
            Some(s(&p).to_string())
        }
        _ => None,
    };
    (beta, reference)
}

fn golden(case: &serde_json::Value) -> Vec<f64> {
    case["equilibrium"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn equilibrium_command_reproduces_goldens() {
    let t = Tmp::new();
    let game = t.path("soccer.npy");
    ok(&["convert", s(&soccer()), s(&game)]);
    let g = goldens();
    let cases = g["cases"].as_array().unwrap();
    assert!(cases.iter().any(|c| c["reference"].is_array()));
    for (i, case) in cases.iter().enumerate() {
        let (beta, reference) = case_args(&t, case, i);
        let out = t.path(&format!("pi{i}.npy"));
        let mut args = vec!["equilibrium", s(&game), "--beta", &beta, "--out", s(&out)];
        if let Some(r) = &reference {
            args.extend(["--ref", r]);
        }
        let stdout = ok(&args);
        assert!(stdout.contains("residual"), "{stdout}");
        let pi = read_f64_vector(&out);
        let want = golden(case);
        assert_eq!(pi.len(), want.len());
        for (k, (a, b)) in pi.iter().zip(&want).enumerate() {
            assert!(
                (a - b).abs() <= 1e-9,
                "β = {beta}, ref {reference:?}: π*[{k}] = {a}, golden {b}"
            );
        }
    }
}

#[test]
fn solve_reaches_goldens_and_writes_its_outputs() {
    let t = Tmp::new();
    let game = t.path("soccer.npy");
    ok(&["convert", s(&soccer()), s(&game)]);
    let g = goldens();
    let case = &g["cases"].as_array().unwrap()[4]; // β = 0.1, non-uniform reference
    let (beta, reference) = case_args(&t, case, 4);
    let out = t.path("out");
    ok(&[
        "solve",
        s(&game),
        "--beta",
        &beta,
        "--ref",
        reference.as_deref().unwrap(),
        "--iters",
        "600",
        "--out",
        s(&out),
    ]);
    let want = golden(case);
    for file in ["equilibrium.npy", "nash-mp.policy.npy"] {
        let pi = read_f64_vector(&out.join(file));
        for (a, b) in pi.iter().zip(&want) {
            assert!((a - b).abs() <= 1e-9, "{file}: {a} vs golden {b}");
        }
    }
    for algo in ["mmd", "omwu", "egpo", "nash-md", "mwu", "mwu-avg"] {
        let pi = read_f64_vector(&out.join(format!("{algo}.policy.npy")));
        assert!((pi.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{algo}");
    }
    let (header, rows) = read_csv(&out.join("metrics.csv"));
    assert_eq!(
        header.join(","),
        "algo,iter,queries,kl_star,kl_star_rev,span_star,exploit,gap,exploit0,residual,bound,seconds"
    );
    // nash-mp: 601 rows (iteration 0 = the start), 2 queries per iteration, bound only for it.
    let nmp: Vec<_> = rows.iter().filter(|r| r[0] == "nash-mp").collect();
    assert_eq!(nmp.len(), 601);
    assert_eq!(nmp[0][1], "0");
    assert_eq!(nmp[600][2], "1200");
    assert!(rows
        .iter()
        .filter(|r| r[0] != "nash-mp")
        .all(|r| r[10].is_empty()));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let runs = summary["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 6);
    let r0 = &runs[0];
    assert_eq!(r0["algo"], "nash-mp");
    assert_eq!(r0["alpha"], 2.0);
    assert!((r0["eta"].as_f64().unwrap() - 0.2).abs() < 1e-15);
    assert_eq!(r0["stop"], "max-iters");
    assert!(summary["version"].is_string());
    assert!(
        summary["equilibrium"]["certificate"]["residual"]
            .as_f64()
            .unwrap()
            < 1e-11
    );
}

#[test]
fn text_conversion_is_exact() {
    let t = Tmp::new();
    let game = t.path("soccer.npy");
    ok(&["convert", s(&soccer()), s(&game)]);
    let info = ok(&["info", s(&game)]);
    assert!(
        info.contains("n:      10") && info.contains("dense f64") && info.contains("valid:  yes"),
        "{info}"
    );
    let txt = std::fs::read_to_string(soccer()).unwrap();
    let first: f64 = txt.split_whitespace().nth(1).unwrap().parse().unwrap();
    let b = std::fs::read(&game).unwrap();
    let off = 10 + u16::from_le_bytes([b[8], b[9]]) as usize;
    assert_eq!(off % 64, 0);
    let v = f64::from_le_bytes(b[off + 8..off + 16].try_into().unwrap());
    assert_eq!(v, first);
}
