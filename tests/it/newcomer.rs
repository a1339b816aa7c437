//! What a new user trips on (issue 16), through the binary: conversions that must succeed,
//! the README's pandas check, output folders and extensions, stale outputs, flags, help and
//! wording, validation gaps, arena logs.

use crate::util::*;
use std::path::Path;

/// Runs `nashmp` and returns (exit code, stdout, stderr).
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let o = nashmp(args);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

/// The entries of a square `.npy` game written by nashmp (f32 or f64), as f64.
fn read_matrix(path: &Path) -> (usize, Vec<f64>, bool) {
    let b = std::fs::read(path).unwrap();
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
    let f32 = header.contains("'<f4'");
    assert!(f32 || header.contains("'<f8'"), "{header}");
    let data = &b[10 + hlen..];
    let v: Vec<f64> = if f32 {
        data.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect()
    } else {
        data.chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    let n = (v.len() as f64).sqrt() as usize;
    assert_eq!(n * n, v.len());
    (n, v, f32)
}

/// Files in `dir` whose names start with `.` (atomic-write temporaries).
fn hidden(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|f| f.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

/// Item 1: every f32 family widens to f64 (exactly skew-consistent, so valid at the f64
/// tolerance) and narrows back (the upper triangle bit for bit, the lower within one f32
/// rounding); the default conversion keeps the input's entry type (same bytes); packed and u16
/// games widen too.
#[test]
fn every_f32_family_widens_to_f64_and_back() {
    let t = Tmp::new();
    for (family, extra) in [
        ("uniform", vec![]),
        ("bradley-terry", vec!["--sigma", "2"]),
        ("cyclic", vec!["--noise", "0.1"]),
        ("disc", vec!["--rank", "4"]),
        ("mixture", vec![]),
    ] {
        let g32 = t.path(&format!("{family}.npy"));
        let mut args = vec!["generate", family, "--n", "301", "--seed", "3"];
        args.extend(&extra);
        args.extend(["--out", s(&g32)]);
        ok(&args);
        let g64 = t.path(&format!("{family}-64.npy"));
        let out = ok(&["convert", s(&g32), s(&g64), "--dtype", "f64"]);
        assert!(out.contains("dense f64"), "{out}");
        assert!(ok(&["info", s(&g64)]).contains("valid:  yes"));
        let (n, p64, is32) = read_matrix(&g64);
        assert!(!is32);
        let (_, p32, _) = read_matrix(&g32);
        for i in 0..n {
            assert_eq!(p64[i * n + i], 0.5);
            for j in i + 1..n {
                assert_eq!(
                    p64[i * n + j],
                    p32[i * n + j],
                    "{family}: upper ({i},{j}) kept"
                );
                let sum = p64[i * n + j] + p64[j * n + i];
                assert!(
                    (sum - 1.0).abs() <= 2.3e-16,
                    "{family}: ({i},{j}) sum {sum}"
                );
            }
        }
        let back = t.path(&format!("{family}-back.npy"));
        ok(&["convert", s(&g64), s(&back), "--dtype", "f32"]);
        assert!(ok(&["info", s(&back)]).contains("valid:  yes"));
        let (_, pb, is32) = read_matrix(&back);
        assert!(is32);
        for i in 0..n {
            for j in 0..n {
                let (a, b) = (pb[i * n + j], p32[i * n + j]);
                if j >= i {
                    assert_eq!(a, b, "{family}: ({i},{j}) round trip");
                } else {
                    assert!((a - b).abs() <= 6e-8, "{family}: ({i},{j}) {a} vs {b}");
                }
            }
        }
        // Without --dtype the input's entry type is kept: the same bytes.
        let same = t.path(&format!("{family}-same.npy"));
        ok(&["convert", s(&g32), s(&same)]);
        assert_eq!(std::fs::read(&same).unwrap(), std::fs::read(&g32).unwrap());
    }
    for (name, extra) in [
        ("p32.nmp", ["--layout", "packed", "--dtype", "f32"]),
        ("p16.nmp", ["--layout", "packed", "--dtype", "u16"]),
        ("d16.nmp", ["--layout", "dense", "--dtype", "u16"]),
    ] {
        let g = t.path(name);
        let mut args = vec!["generate", "mixture", "--n", "300", "--out", s(&g)];
        args.extend(extra);
        ok(&args);
        let wide = t.path(&format!("{name}.npy"));
        ok(&["convert", s(&g), s(&wide), "--dtype", "f64"]);
        assert!(ok(&["info", s(&wide)]).contains("valid:  yes"), "{name}");
    }
    assert!(hidden(t.dir.path()).is_empty(), "temporaries left");
}

/// Item 2: the README's pandas check, in Rust, on a float64 mixture game whose bound falls far
/// below the float floor of `kl_star` (~1e-16): the naive check fails there, the README's holds.
#[test]
fn readme_bound_check_holds_past_the_float_floor() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let snippet = r#"nmp = m[(m.algo == "nash-mp") & (m.bound >= 1e-11)]"#;
    assert!(readme.contains(snippet), "README snippet changed");
    assert!(readme.contains("assert (nmp.kl_star <= nmp.bound * (1 + 1e-9)).all()"));

    let t = Tmp::new();
    let g = t.path("mix.npy");
    ok(&[
        "generate",
        "mixture",
        "--n",
        "50",
        "--dtype",
        "f64",
        "--out",
        s(&g),
    ]);
    let out = t.path("out");
    ok(&[
        "solve",
        s(&g),
        "--beta",
        "0.1",
        "--algo",
        "nash-mp",
        "--iters",
        "400",
        "--out",
        s(&out),
    ]);
    let (h, rows) = read_csv(&out.join("metrics.csv"));
    let col = |name: &str| h.iter().position(|c| c == name).unwrap();
    let (algo, kl, bound) = (col("algo"), col("kl_star"), col("bound"));
    let (mut naive_fails, mut checked) = (0, 0);
    for r in rows.iter().filter(|r| r[algo] == "nash-mp") {
        let (k, b): (f64, f64) = (r[kl].parse().unwrap(), r[bound].parse().unwrap());
        if k > b * (1.0 + 1e-9) {
            naive_fails += 1;
        }
        if b >= 1e-11 {
            checked += 1;
            assert!(
                k <= b * (1.0 + 1e-9),
                "iter {}: kl {k} > bound {b}",
                r[col("iter")]
            );
        }
    }
    assert!(naive_fails > 0, "the game must reach the float floor");
    assert!(checked >= 50, "only {checked} rows above 1e-11");
}

/// Item 3: a missing output folder is created by every writer; a parent that is a file is an
/// error naming it, raised before any work (import-pairwise prints no report).
#[test]
fn every_writer_creates_a_missing_output_folder() {
    let t = Tmp::new();
    let d = |p: &str| s(&t.path(p)).to_string();
    ok(&[
        "generate",
        "bradley-terry",
        "--n",
        "6",
        "--out",
        &d("a/b/g.npy"),
    ]);
    assert!(t.path("a/b/g.npy").exists());
    ok(&[
        "convert",
        &d("a/b/g.npy"),
        &d("c/g64.npy"),
        "--dtype",
        "f64",
    ]);
    ok(&[
        "equilibrium",
        &d("a/b/g.npy"),
        "--beta",
        "0.1",
        "--out",
        &d("e/pi.npy"),
    ]);
    assert_eq!(read_f64_vector(&t.path("e/pi.npy")).len(), 6);
    ok(&[
        "generate-judgements",
        &d("a/b/g.npy"),
        "--count",
        "200",
        "--out",
        &d("j/log.csv"),
    ]);
    ok(&["import-pairwise", &d("j/log.csv"), "--out", &d("i/g.npy")]);
    assert!(t.path("i/g.items.txt").exists());
    ok(&[
        "rank",
        &d("i/g.npy"),
        "--beta",
        "0.1",
        "--out",
        &d("r/rank.csv"),
    ]);
    assert!(t.path("r/rank.csv").exists());

    std::fs::write(t.path("file"), b"x").unwrap();
    for args in [
        vec!["generate", "uniform", "--n", "4", "--out", "FILE/g.npy"],
        vec!["convert", "GAME", "FILE/g.npy"],
        vec![
            "equilibrium",
            "GAME",
            "--beta",
            "0.1",
            "--out",
            "FILE/pi.npy",
        ],
        vec!["import-pairwise", "LOG", "--out", "FILE/g.npy"],
        vec![
            "generate-judgements",
            "GAME",
            "--count",
            "5",
            "--out",
            "FILE/l.csv",
        ],
        vec!["rank", "GAME", "--beta", "0.1", "--out", "FILE/r.csv"],
    ] {
        let file = d("file");
        let (game, log) = (d("a/b/g.npy"), d("j/log.csv"));
        let args: Vec<String> = args
            .iter()
            .map(|a| {
                a.replace("FILE", &file)
                    .replace("GAME", &game)
                    .replace("LOG", &log)
            })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = run(&args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(
            err.contains(&format!("{file}/: exists but is not a folder")),
            "{args:?}: {err}"
        );
        let root = s(t.dir.path());
        assert!(
            !err.replace(root, "").contains(".tmp"),
            "names a temporary: {err}"
        );
        assert!(
            out.is_empty(),
            "{args:?} printed a report before failing: {out}"
        );
    }
    // solve --out naming a file says it must be a folder.
    fails(
        &[
            "solve",
            &d("a/b/g.npy"),
            "--beta",
            "0.1",
            "--out",
            &d("file"),
        ],
        &["--out names a folder", "existing file"],
    );
}

/// Item 4: one extension rule for every writer: a mismatch is refused, naming the right name,
/// and nothing is written.
#[test]
fn every_writer_refuses_a_mismatched_extension() {
    let t = Tmp::new();
    let g = t.path("g.npy");
    ok(&["generate", "cyclic", "--n", "5", "--out", s(&g)]);
    let log = t.path("log.csv");
    ok(&[
        "generate-judgements",
        s(&g),
        "--count",
        "50",
        "--out",
        s(&log),
    ]);
    let p = |n: &str| s(&t.path(n)).to_string();
    let cases: Vec<(Vec<String>, &str, &str)> = vec![
        (
            vec![
                "generate".into(),
                "low-rank".into(),
                "--n".into(),
                "8".into(),
                "--out".into(),
                p("x.npy"),
            ],
            "x.npy",
            "x.nmp",
        ),
        (
            vec![
                "generate".into(),
                "uniform".into(),
                "--n".into(),
                "8".into(),
                "--out".into(),
                p("x.txt"),
            ],
            "x.txt",
            "x.npy",
        ),
        (
            vec![
                "generate".into(),
                "uniform".into(),
                "--n".into(),
                "8".into(),
                "--dtype".into(),
                "u16".into(),
                "--out".into(),
                p("u.npy"),
            ],
            "u.npy",
            "u.nmp",
        ),
        (
            vec![
                "generate".into(),
                "uniform".into(),
                "--n".into(),
                "8".into(),
                "--out".into(),
                p("d.nmp"),
            ],
            "d.nmp",
            "d.npy",
        ),
        (
            vec!["convert".into(), p("g.npy"), p("c.txt")],
            "c.txt",
            "c.npy",
        ),
        (
            vec![
                "convert".into(),
                p("g.npy"),
                p("c.npy"),
                "--layout".into(),
                "packed".into(),
            ],
            "c.npy",
            "c.nmp",
        ),
        (
            vec![
                "import-pairwise".into(),
                p("log.csv"),
                "--out".into(),
                p("i.nmp"),
            ],
            "i.nmp",
            "i.npy",
        ),
        (
            vec![
                "equilibrium".into(),
                p("g.npy"),
                "--beta".into(),
                "0.1".into(),
                "--out".into(),
                p("pi.csv"),
            ],
            "pi.csv",
            "pi.npy",
        ),
        (
            vec![
                "generate-judgements".into(),
                p("g.npy"),
                "--count".into(),
                "5".into(),
                "--out".into(),
                p("l.npy"),
            ],
            "l.npy",
            "l.csv",
        ),
        (
            vec![
                "rank".into(),
                p("g.npy"),
                "--beta".into(),
                "0.1".into(),
                "--out".into(),
                p("r.npy"),
            ],
            "r.npy",
            "r.csv",
        ),
    ];
    for (args, bad, good) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = run(&args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(
            err.contains(&format!("name it {}", p(good))),
            "{args:?}: {err}"
        );
        assert!(!t.path(bad).exists(), "{args:?} wrote {bad}");
        assert!(out.is_empty(), "{args:?} did work first: {out}");
    }
    assert!(!t.path("i.items.txt").exists() && !t.path("i.coverage.json").exists());
    assert!(hidden(t.dir.path()).is_empty());
}

/// Item 5: a reused `solve --out` folder and a reused sweep folder keep only what the latest
/// run wrote; the solve prints the files it wrote.
#[test]
fn reused_output_folders_hold_no_stale_results() {
    let t = Tmp::new();
    let g = t.path("g.npy");
    ok(&[
        "generate",
        "cyclic",
        "--n",
        "7",
        "--noise",
        "0.2",
        "--out",
        s(&g),
    ]);
    let out = t.path("out");
    ok(&[
        "solve",
        s(&g),
        "--beta",
        "0.1",
        "--iters",
        "5",
        "--out",
        s(&out),
    ]);
    for f in [
        "mmd", "omwu", "mwu", "mwu-avg", "egpo", "nash-md", "nash-mp",
    ] {
        assert!(out.join(format!("{f}.policy.npy")).exists(), "{f}");
    }
    assert!(out.join("equilibrium.npy").exists());
    let o = nashmp(&[
        "solve",
        s(&g),
        "--beta",
        "0.1",
        "--iters",
        "5",
        "--algo",
        "nash-mp",
        "--metrics",
        "cheap",
        "--out",
        s(&out),
    ]);
    assert!(o.status.success());
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(
        stdout.contains("{metrics.csv,summary.json,nash-mp.policy.npy}"),
        "{stdout}"
    );
    assert!(
        stderr.contains("removed") && stderr.contains("equilibrium.npy"),
        "{stderr}"
    );
    let mut left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["metrics.csv", "nash-mp.policy.npy", "summary.json"]);

    let sweep = t.path("sweep");
    let cache = t.path("cache");
    let grid = |betas: &str| {
        ok(&[
            "sweep",
            "--families",
            "uniform",
            "--sizes",
            "8",
            "--betas",
            betas,
            "--algos",
            "nash-mp",
            "--seeds",
            "0",
            "--iters",
            "5",
            "--out",
            s(&sweep),
            "--cache",
            s(&cache),
        ])
    };
    grid("0.5,1");
    assert!(sweep.join("plots/kl-uniform-beta0.5.svg").exists());
    grid("1");
    assert!(
        !sweep.join("plots/kl-uniform-beta0.5.svg").exists(),
        "stale plot kept"
    );
    assert!(sweep.join("plots/kl-uniform-beta1.svg").exists());
}

/// Item 7: one meaning per flag; negative values reach validation (no "use -- -1" tip);
/// inapplicable generator options are refused; old spellings work with a warning.
#[test]
fn flags_mean_one_thing_and_negative_values_are_validated() {
    let t = Tmp::new();
    let g = t.path("g.npy");
    ok(&["generate", "cyclic", "--n", "5", "--out", s(&g)]);
    let u = s(&t.path("u.npy")).to_string();
    fails(
        &[
            "generate", "uniform", "--n", "5", "--sigma", "3", "--out", &u,
        ],
        &["--sigma does not apply to uniform games"],
    );
    fails(
        &[
            "generate", "block", "--n", "5", "--dtype", "f32", "--out", &u,
        ],
        &["--dtype does not apply to block games"],
    );
    for (args, needle) in [
        (
            vec![
                "generate",
                "bradley-terry",
                "--n",
                "5",
                "--sigma",
                "-1",
                "--out",
                &u,
            ],
            "--sigma must be finite and ≥ 0, got -1",
        ),
        (
            vec![
                "generate", "cyclic", "--n", "5", "--noise", "-0.5", "--out", &u,
            ],
            "--noise must be in [0, 1], got -0.5",
        ),
        (
            vec!["solve", s(&g), "--beta", "0.1", "--tol", "-1"],
            "--tol must be ≥ 0, got -1",
        ),
        (
            vec!["info", s(&g), "--skew-tol", "-1"],
            "--skew-tol must be finite and > 0, got -1",
        ),
        (
            vec![
                "equilibrium",
                s(&g),
                "--beta",
                "0.1",
                "--residual",
                "-1",
                "--out",
                &u,
            ],
            "--residual must be finite and > 0",
        ),
    ] {
        let err = fails(&args, &[needle]);
        assert!(!err.contains("-- -"), "clap's tip: {err}");
    }
    assert!(!t.path("u.npy").exists());
    // Deprecated spellings still work, with a warning naming the new one.
    for (args, new) in [
        (vec!["info", s(&g), "--tol", "1e-6"], "--skew-tol"),
        (vec!["convert", s(&g), &u, "--tol", "1e-6"], "--skew-tol"),
        (
            vec!["bench", s(&g), "--reps", "1", "--batch", "2"],
            "--vectors",
        ),
    ] {
        let (code, _, err) = run(&args);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        assert!(
            err.contains("deprecated") && err.contains(new),
            "{args:?}: {err}"
        );
    }
}

/// Item 8: help names what is accepted; a text matrix given where a game is read says how to
/// import it.
#[test]
fn help_and_hints_say_what_to_do() {
    let help = ok(&["solve", "--help"]);
    assert!(
        help.contains(".nmp") && help.contains("nashmp convert"),
        "{help}"
    );
    let help = ok(&["generate", "--help"]);
    let seed = help.split("--seed").nth(1).unwrap_or("");
    assert!(
        seed.lines().next().unwrap_or("").trim().len() > 10,
        "--seed has no help: {help}"
    );
    let help = ok(&["convert", "--help"]);
    assert!(
        help.contains("upper triangle"),
        "--layout has no help: {help}"
    );
    let help = ok(&["--help"]);
    assert!(!help.contains("Results do not depend on it"), "{help}");
    let help = ok(&["generate-judgements", "--help"]);
    assert!(help.contains("Seed of the one stream"), "{help}");

    let t = Tmp::new();
    let txt = t.path("m.txt");
    std::fs::write(&txt, "0.5 1 0\n0 0.5 1\n1 0 0.5\n").unwrap();
    let want = format!("nashmp convert {} {}", s(&txt), s(&t.path("m.npy")));
    fails(&["info", s(&txt)], &["looks like a text matrix", &want]);
    fails(&["solve", s(&txt), "--beta", "0.1"], &[&want]);
}

/// Item 9: the words of summary.json, not Rust's enum names; one number format.
#[test]
fn output_uses_the_words_of_summary_json() {
    let t = Tmp::new();
    let g = t.path("g.npy");
    ok(&[
        "generate",
        "mixture",
        "--n",
        "20",
        "--dtype",
        "f64",
        "--out",
        s(&g),
    ]);
    let out = ok(&[
        "solve",
        s(&g),
        "--beta",
        "0.1",
        "--algo",
        "nash-mp",
        "--iters",
        "400",
        "--out",
        s(&t.path("o")),
    ]);
    assert!(out.contains("max-iters"), "{out}");
    for leak in ["MaxIters", "Stalled", "Converged", "0.000e0"] {
        assert!(!out.contains(leak), "{leak}: {out}");
    }
    let eq = ok(&[
        "equilibrium",
        s(&g),
        "--beta",
        "0.1",
        "--out",
        s(&t.path("pi.npy")),
    ]);
    assert!(eq.contains("converged") || eq.contains("stalled"), "{eq}");
    assert!(!eq.contains("Converged") && !eq.contains("Stalled"), "{eq}");
    let err = fails(
        &[
            "generate",
            "disc",
            "--n",
            "5",
            "--rank",
            "3",
            "--out",
            s(&t.path("d.npy")),
        ],
        &["disc:"],
    );
    assert!(!err.contains("Disc"), "{err}");
    let one = ok(&[
        "generate-judgements",
        s(&g),
        "--count",
        "1",
        "--out",
        s(&t.path("l.csv")),
    ]);
    assert!(one.contains("(1 judgement of 20 items"), "{one}");
    // The skew tolerance in scientific notation.
    let bad = t.path("bad.npy");
    let mut p = cyclic(3);
    p[1] = 0.9;
    write_f64_matrix(&bad, 3, &p);
    fails(&["info", s(&bad)], &["tol = 1e-9"]);
}

/// Items 11 and 12: validation gaps; arena logs import without column flags, and `rank
/// --bootstrap` reads the columns recorded at import.
#[test]
fn validation_gaps_and_arena_logs() {
    let t = Tmp::new();
    let g = t.path("g.npy");
    ok(&["generate", "bradley-terry", "--n", "4", "--out", s(&g)]);
    fails(
        &["rank", s(&g), "--beta", "0.1", "--vn-floor", "2"],
        &["--vn-floor 2", "β = 1"],
    );
    fails(
        &["rank", s(&g), "--beta", "0.1", "--top", "0"],
        &["--top must be at least 1"],
    );
    fails(
        &[
            "generate-judgements",
            s(&g),
            "--count",
            "0",
            "--out",
            s(&t.path("l.csv")),
        ],
        &["--count must be at least 1"],
    );
    assert!(!t.path("l.csv").exists());

    let arena = t.path("arena.csv");
    let mut text = String::from("question_id,model_a,model_b,winner,judge\n");
    let models = ["alpaca", "bard", "claude", "dolly"];
    for k in 0..120 {
        let (a, b) = (models[k % 4], models[(k / 4 + 1 + k % 4) % 4]);
        if a == b {
            continue;
        }
        let w = ["model_a", "model_b", "tie", "model_a"][k % 4];
        text.push_str(&format!("{k},{a},{b},{w},x\n"));
    }
    std::fs::write(&arena, text).unwrap();
    let ga = t.path("arena.npy");
    let out = ok(&["import-pairwise", s(&arena), "--out", s(&ga)]);
    assert!(out.contains("columns: model_a, model_b, winner"), "{out}");
    let cov = std::fs::read_to_string(t.path("arena.coverage.json")).unwrap();
    assert!(cov.contains("\"model_a\""), "{cov}");
    let ranked = ok(&[
        "rank",
        s(&ga),
        "--beta",
        "0.1",
        "--bootstrap",
        "5",
        "--log",
        s(&arena),
    ]);
    assert!(ranked.contains("bootstrap: 5 replicates"), "{ranked}");
    // Explicit columns still win.
    fails(
        &[
            "import-pairwise",
            s(&arena),
            "--out",
            s(&ga),
            "--left",
            "nope",
        ],
        &["missing column(s) nope"],
    );
}

/// Item 10: `bench` frames every row per matrix entry, so games of different `n` compare and a
/// batch row's ratio to its game's single apply is the summary line's speed-up.
#[test]
fn bench_rows_compare_per_entry_and_agree_with_the_summary() {
    let t = Tmp::new();
    let (a, b) = (t.path("a.npy"), t.path("b.npy"));
    ok(&["generate", "uniform", "--n", "64", "--out", s(&a)]);
    ok(&["generate", "uniform", "--n", "96", "--out", s(&b)]);
    let out = ok(&["bench", s(&a), s(&b), "--reps", "3", "--vectors", "4"]);
    assert!(out.contains("vs first apply (per entry)"), "{out}");
    let ratio = |prefix: &str| -> f64 {
        let line = out.lines().find(|l| l.starts_with(prefix)).unwrap();
        line.split_whitespace()
            .last()
            .unwrap()
            .trim_end_matches('×')
            .parse()
            .unwrap()
    };
    for (g, name) in [(&a, "a.npy"), (&b, "b.npy")] {
        let single = ratio(&format!("apply {}", s(g)));
        let batch = ratio(&format!("batch4 {}", s(g)));
        let line = out
            .lines()
            .find(|l| l.starts_with("batch of 4 on") && l.contains(name))
            .unwrap();
        let summary: f64 = line
            .split(": ")
            .nth(1)
            .unwrap()
            .split('×')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        // Printed with 3 and 2 decimals: agreement to rounding.
        let rel = (batch / single - summary).abs() / summary;
        assert!(
            rel < 0.02,
            "{name}: row {batch}/{single} vs summary {summary}\n{out}"
        );
    }
}

/// The texts of an SVG's `<text>` elements.
fn svg_texts(path: &Path) -> Vec<String> {
    let svg = std::fs::read_to_string(path).unwrap();
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = t.split_once('>')?.1;
            Some(body.split("</text>").next()?.trim().to_string())
        })
        .collect()
}

/// Item 6: sweep plots label every size on the log-n axis, keep rate axes at or above zero,
/// fit their titles, draw exact zeros at the floor; a noise-free cyclic family says why its KL
/// plots are empty (plot, summary, stdout), and the sweep passes `--noise`.
#[test]
fn sweep_plots_label_sizes_and_explain_cyclic_starts() {
    let t = Tmp::new();
    let (out, cache) = (t.path("sw"), t.path("cache"));
    let sweep = |extra: &[&str]| {
        let mut a = vec![
            "sweep",
            "--families",
            "cyclic",
            "--betas",
            "0.5",
            "--algos",
            "nash-mp,omwu",
            "--seeds",
            "0",
            "--iters",
            "30",
            "--out",
            s(&out),
            "--cache",
            s(&cache),
        ];
        a.extend(extra);
        ok(&a)
    };
    let stdout = sweep(&["--sizes", "9"]);
    assert!(stdout.contains("every run starts at π*"), "{stdout}");
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.contains("Every run starts at π*") && md.contains("--noise"),
        "{md}"
    );
    let kl = svg_texts(&out.join("plots/kl-cyclic-beta0.5.svg")).join("|");
    assert!(kl.contains("nothing to contract"), "{kl}");

    let stdout = sweep(&["--sizes", "32,128,256", "--noise", "0.3"]);
    assert!(!stdout.contains("every run starts at π*"), "{stdout}");
    let rate = out.join("plots/rate-cyclic.svg");
    let texts = svg_texts(&rate);
    for n in ["32", "128", "256"] {
        assert!(
            texts.iter().any(|x| x == n),
            "n = {n} unlabelled: {texts:?}"
        );
    }
    let ticks: Vec<f64> = texts.iter().filter_map(|x| x.parse().ok()).collect();
    assert!(
        ticks.iter().all(|&v| v >= 0.0),
        "a rate tick below zero: {ticks:?}"
    );
    // The figure is at least as wide as its title needs.
    let svg = std::fs::read_to_string(&rate).unwrap();
    let width: u32 = svg
        .split("width=\"")
        .nth(1)
        .and_then(|w| w.split('"').next())
        .and_then(|w| w.parse().ok())
        .unwrap();
    let title = texts.iter().map(|x| x.chars().count()).max().unwrap() as u32;
    assert!(
        width >= 11 * title,
        "width {width} for a title of {title} characters"
    );
    let ex = svg_texts(&out.join("plots/exploit-cyclic-beta0.5.svg")).join("|");
    assert!(ex.contains("0 drawn at 1e-16"), "{ex}");
    // Family options the grid's families do not read are refused.
    fails(
        &[
            "sweep",
            "--families",
            "uniform",
            "--sizes",
            "8",
            "--noise",
            "0.1",
            "--out",
            s(&out),
            "--cache",
            s(&cache),
        ],
        &["--noise applies to none of the sweep's families"],
    );
}

/// `--quiet` prints nothing on stdout; `--json` prints one JSON document (and nothing else).
#[test]
fn quiet_and_json_for_scripts() {
    let t = Tmp::new();
    let g = t.path("g.npy");
    let gs = s(&g).to_string();
    let out = s(&t.path("o")).to_string();
    for args in [
        vec!["--quiet", "generate", "mixture", "--n", "12", "--out", &gs],
        vec!["info", &gs, "-q"],
        vec![
            "solve", &gs, "--beta", "0.1", "--iters", "5", "--out", &out, "--quiet",
        ],
    ] {
        let (code, stdout, _) = run(&args);
        assert_eq!(code, Some(0), "{args:?}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
    }
    let json = |args: &[&str]| -> serde_json::Value {
        let stdout = ok(args);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))
    };
    let v = json(&["info", &gs, "--json"]);
    assert_eq!(v["n"], 12);
    assert_eq!(v["valid"], true);
    assert_eq!(v["layout"], "dense f32");
    let v = json(&[
        "solve",
        &gs,
        "--beta",
        "0.1",
        "--iters",
        "5",
        "--algo",
        "nash-mp,mmd",
        "--out",
        &out,
        "--json",
    ]);
    assert_eq!(v["runs"].as_array().unwrap().len(), 2);
    assert_eq!(v["runs"][0]["stop"], "max-iters");
    let files: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(files.contains(&"mmd.policy.npy") && files.contains(&"equilibrium.npy"));
    let pi = s(&t.path("pi.npy")).to_string();
    let v = json(&["equilibrium", &gs, "--beta", "0.1", "--out", &pi, "--json"]);
    assert!(v["certificate"]["residual"].as_f64().unwrap() < 1e-6, "{v}");
    let v = json(&["rank", &gs, "--beta", "0.1", "--json"]);
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 12);
    let total: f64 = items
        .iter()
        .map(|i| i["probability"].as_f64().unwrap())
        .sum();
    assert!((total - 1.0).abs() < 1e-9, "{total}");
    assert_eq!(items[0]["rank"], 1);
}
