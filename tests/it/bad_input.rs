//! Bad inputs through the binary: exit status 2, a message naming the problem, no panic.

use crate::util::*;

fn game_args(p: &str) -> Vec<&str> {
    vec!["solve", p, "--beta", "0.1", "--iters", "2"]
}

#[test]
fn missing_file() {
    fails(
        &game_args("/nonexistent/game.npy"),
        &["/nonexistent/game.npy", "No such file"],
    );
}

#[test]
fn truncated_npy() {
    let t = Tmp::new();
    let p = t.path("g.npy");
    write_f64_matrix(&p, 5, &cyclic(5));
    let b = std::fs::read(&p).unwrap();
    std::fs::write(&p, &b[..b.len() - 8]).unwrap();
    fails(&game_args(s(&p)), &["g.npy", "truncated", "200", "192"]);
    std::fs::write(&p, &b[..20]).unwrap();
    fails(&game_args(s(&p)), &["g.npy", "header"]);
    std::fs::write(&p, b"").unwrap();
    fails(&game_args(s(&p)), &["g.npy", "too short"]);
}

#[test]
fn int32_dtype() {
    let t = Tmp::new();
    let p = t.path("g.npy");
    let mut b = npy_header("<i4", false, "(3, 3)");
    b.extend([0u8; 36]);
    std::fs::write(&p, b).unwrap();
    fails(&game_args(s(&p)), &["g.npy", "<i4", "float32"]);
}

#[test]
fn non_square() {
    let t = Tmp::new();
    let p = t.path("g.npy");
    let mut b = npy_header("<f8", false, "(3, 4)");
    b.extend([0u8; 96]);
    std::fs::write(&p, b).unwrap();
    fails(&game_args(s(&p)), &["g.npy", "square", "[3, 4]"]);
    let p1 = t.path("v.npy");
    write_f64_vector(&p1, &[0.5, 0.5]);
    fails(&game_args(s(&p1)), &["v.npy", "square"]);
}

#[test]
fn fortran_order() {
    let t = Tmp::new();
    let p = t.path("g.npy");
    let mut b = npy_header("<f8", true, "(3, 3)");
    cyclic(3).iter().for_each(|x| b.extend(x.to_le_bytes()));
    std::fs::write(&p, b).unwrap();
    fails(&game_args(s(&p)), &["g.npy", "Fortran"]);
}

#[test]
fn nan_entry() {
    let t = Tmp::new();
    let p = t.path("g.npy");
    let mut m = cyclic(5);
    m[2 * 5 + 3] = f64::NAN;
    write_f64_matrix(&p, 5, &m);
    fails(
        &game_args(s(&p)),
        &["g.npy", "P[2][3]", "NaN", "not finite"],
    );
    fails(&["info", s(&p)], &["P[2][3]"]);
}

#[test]
fn out_of_range_entry() {
    let t = Tmp::new();
    let p = t.path("g.npy");
    let mut m = cyclic(5);
    m[1] = 1.5;
    m[5] = -0.5;
    write_f64_matrix(&p, 5, &m);
    fails(&game_args(s(&p)), &["P[0][1] = 1.5", "outside [0, 1]"]);
}

#[test]
fn not_skew_symmetric() {
    let t = Tmp::new();
    let p = t.path("g.npy");
    let mut m = cyclic(5);
    m[3 * 5 + 1] = 0.25; // P[3][1] = 0.25 while P[1][3] = 1
    write_f64_matrix(&p, 5, &m);
    fails(
        &game_args(s(&p)),
        &["P[1][3] + P[3][1]", "1 + 0.25 = 1.25", "skew"],
    );
    // A looser tolerance accepts it; f32 files get a looser default.
    let t2 = t.path("h.npy");
    let mut m2 = cyclic(5);
    m2[3 * 5 + 1] = 1e-8; // off by 1e-8: beyond the float64 default, within 1e-7
    write_f64_matrix(&t2, 5, &m2);
    fails(&["info", s(&t2)], &["skew"]);
    assert!(ok(&["info", s(&t2), "--tol", "1e-7"]).contains("valid:  yes"));
    let t3 = t.path("k.npy");
    write_f32_matrix(&t3, 5, &m2);
    assert!(ok(&["info", s(&t3)]).contains("valid:  yes"));
}

#[test]
fn bad_reference() {
    let t = Tmp::new();
    let p = t.path("g.npy");
    write_f64_matrix(&p, 3, &cyclic(3));
    let r = t.path("r.npy");
    write_f64_vector(&r, &[0.5, 0.5, 0.0]);
    fails(
        &["solve", s(&p), "--beta", "0.1", "--ref", s(&r)],
        &["r.npy", "entry 2 is 0", "positive"],
    );
    write_f64_vector(&r, &[0.5, 0.7, -0.2]);
    fails(
        &["solve", s(&p), "--beta", "0.1", "--ref", s(&r)],
        &["r.npy", "entry 2 is -0.2"],
    );
    write_f64_vector(&r, &[0.5, 0.5]);
    fails(
        &["solve", s(&p), "--beta", "0.1", "--ref", s(&r)],
        &["r.npy", "2 entries", "3 actions"],
    );
    write_f64_vector(&r, &[0.5, 0.6, 0.2]);
    fails(
        &[
            "equilibrium",
            s(&p),
            "--beta",
            "0.1",
            "--ref",
            s(&r),
            "--out",
            s(&t.path("x.npy")),
        ],
        &["sum to 1.3"],
    );
    assert!(!t.path("x.npy").exists());
}

#[test]
fn bad_parameters() {
    let t = Tmp::new();
    let p = t.path("g.npy");
    write_f64_matrix(&p, 3, &cyclic(3));
    let g = s(&p);
    let solve = Solve::new(&p);
    solve
        .clone()
        .beta("-0.1")
        .fails(&["β must be finite and ≥ 0", "-0.1"]);
    let at = |beta: &str, algo: &str, alpha: &str| {
        solve.clone().beta(beta).algo(algo).arg("--alpha", alpha)
    };
    at("0.1", "nash-mp", "0").fails(&["α must be positive", "α = 0"]);
    at("0.1", "nash-mp", "-1").fails(&["α must be positive"]);
    at("0.5", "egpo", "2").fails(&["egpo needs α·β < 1"]);
    at("0.5", "nash-md", "3").fails(&["nash-md needs α·β ≤ 1"]);
    fails(
        &["solve", g, "--beta", "0.1", "--alpha", "1", "--eta", "0.1"],
        &["cannot be used with"],
    );
    fails(
        &["solve", g, "--beta", "0.1", "--algo", "sgd"],
        &["unknown algorithm \"sgd\""],
    );
    fails(
        &["solve", g, "--beta", "0", "--metrics", "full"],
        &["β > 0"],
    );
    fails(
        &["solve", g, "--beta", "0", "--algo", "mmd"],
        &["mmd", "give --alpha"],
    );
    fails(
        &[
            "solve",
            g,
            "--beta",
            "0.1",
            "--metrics",
            "none",
            "--tol",
            "1e-3",
        ],
        &["--tol"],
    );
    fails(
        &["solve", g, "--beta", "0.1", "--init", "/nope.npy"],
        &["/nope.npy"],
    );
    // β = 0 runs with the certificates that need no π*.
    let out = t.path("o");
    ok(&[
        "solve",
        g,
        "--beta",
        "0",
        "--algo",
        "nash-mp,mwu",
        "--iters",
        "3",
        "--out",
        s(&out),
    ]);
    let (_, rows) = read_csv(&out.join("metrics.csv"));
    assert!(rows
        .iter()
        .all(|r| r[3].is_empty() && !r[6].is_empty() && r[9].is_empty()));
}

#[test]
fn bad_text_matrix() {
    let t = Tmp::new();
    let p = t.path("m.txt");
    std::fs::write(&p, "0.5 0.3\n0.7 abc\n").unwrap();
    fails(
        &["convert", s(&p), s(&t.path("m.npy"))],
        &["m.txt:2", "\"abc\""],
    );
    std::fs::write(&p, "0.5 0.3\n0.6 0.5\n").unwrap();
    fails(
        &["convert", s(&p), s(&t.path("m.npy"))],
        &["skew", "P[0][1]"],
    );
    assert!(!t.path("m.npy").exists(), "no output on failure");
    let d = t.path("dir.npy");
    std::fs::create_dir(&d).unwrap();
    fails(&game_args(s(&d)), &["dir.npy"]);
}
