//! Pairwise judgements through the binary: synthetic logs from a known game, import, rank,
//! bootstrap; and malformed logs.

use crate::util::*;
use std::path::Path;

/// A Bradley–Terry game with fixed skills evenly spaced from 1.5 down to −1.5:
/// `P[i][j] = σ(s_i − s_j)`, item 0 strongest.
fn bradley_terry(n: usize) -> Vec<f64> {
    let s: Vec<f64> = (0..n)
        .map(|i| 1.5 - 3.0 * i as f64 / (n - 1) as f64)
        .collect();
    let mut p = vec![0.5; n * n];
    for i in 0..n {
        for j in 0..n {
            if i != j {
                p[i * n + j] = 1.0 / (1.0 + (s[j] - s[i]).exp());
            }
        }
    }
    p
}

/// One row of `rank --out`: (item index, probability, ci_low, ci_high), for the default names
/// `itemNN` (whose byte order is the index order).
fn read_rank(path: &Path) -> Vec<(usize, f64, Option<f64>, Option<f64>)> {
    let (header, rows) = read_csv(path);
    assert_eq!(
        header,
        [
            "rank",
            "item",
            "probability",
            "ci_low",
            "ci_high",
            "rank_low",
            "rank_high",
            "von_neumann"
        ]
    );
    let mut out: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r[1].trim_start_matches("item").parse().unwrap(),
                r[2].parse().unwrap(),
                r[3].parse().ok(),
                r[4].parse().ok(),
            )
        })
        .collect();
    out.sort_by_key(|r| r.0);
    out
}

/// Draws `m` judgements from `game` and imports them; returns the paths of the log and of the
/// imported game.
fn synth_and_import(t: &Tmp, game: &Path, m: u64, seed: u64, tag: &str) -> (String, String) {
    let log = t.path(&format!("{tag}.csv"));
    let imported = t.path(&format!("{tag}.npy"));
    let (m, seed) = (m.to_string(), seed.to_string());
    ok(&[
        "generate-judgements",
        s(game),
        "--count",
        &m,
        "--seed",
        &seed,
        "--out",
        s(&log),
    ]);
    ok(&["import-pairwise", s(&log), "--out", s(&imported)]);
    (s(&log).to_string(), s(&imported).to_string())
}

const N: usize = 20;
const BETA: &str = "0.1";

/// The true equilibrium of the 20-item game at β = 0.1.
fn truth(t: &Tmp) -> (std::path::PathBuf, Vec<f64>) {
    let game = t.path("bt.npy");
    write_f64_matrix(&game, N, &bradley_terry(N));
    let star = t.path("star.npy");
    ok(&["equilibrium", s(&game), "--beta", BETA, "--out", s(&star)]);
    (game, read_f64_vector(&star))
}

/// From 20,000 judgements (about 105 per pair), the 95% bootstrap interval (R = 100) contains
/// the true equilibrium probability for at least 18 of the 20 items (19 expected; the allowance
/// is for the percentile method's small-sample miss rate and the smoothing's bias).
#[test]
fn recovery_within_bootstrap_intervals() {
    let t = Tmp::new();
    let (game, star) = truth(&t);
    let (log, imported) = synth_and_import(&t, &game, 20_000, 1, "m20k");
    let out = t.path("rank.csv");
    ok(&[
        "rank",
        &imported,
        "--beta",
        BETA,
        "--bootstrap",
        "100",
        "--log",
        &log,
        "--seed",
        "3",
        "--out",
        s(&out),
    ]);
    let rows = read_rank(&out);
    assert_eq!(rows.len(), N);
    let inside = rows
        .iter()
        .filter(|(i, _, lo, hi)| lo.unwrap() <= star[*i] && star[*i] <= hi.unwrap())
        .count();
    assert!(
        inside >= 18,
        "only {inside} of {N} intervals contain π*: {rows:?} vs {star:?}"
    );
}

/// The error `max_i |π̂_i − π*_i|` shrinks with the number of judgements, and stays within a
/// tolerance derived from the counts. With `m` judgements per pair and smoothing `k = 1`, an
/// estimated entry has standard error at most `0.5/√m` and bias at most `k/(m + 2k)`; the
/// payoff `g_i = Σ_j P_ij π_j` averages the independent errors, so it is off by about
/// `e = 0.5·‖π*‖₂/√m + k/(m + 2k)`; and `π* ∝ exp(g/β)` turns that into a relative error of
/// about `e/β` in the probabilities. The bound is `max π* · e/β`.
#[test]
fn error_shrinks_with_count() {
    let t = Tmp::new();
    let (game, star) = truth(&t);
    let pairs = (N * (N - 1) / 2) as f64;
    let pi_max = star.iter().cloned().fold(0.0, f64::max);
    let pi_norm = star.iter().map(|p| p * p).sum::<f64>().sqrt();
    let mut errors = Vec::new();
    for m in [2_000u64, 50_000] {
        let (_, imported) = synth_and_import(&t, &game, m, 7, &format!("m{m}"));
        let out = t.path(&format!("rank{m}.csv"));
        ok(&["rank", &imported, "--beta", BETA, "--out", s(&out)]);
        let err = read_rank(&out)
            .iter()
            .map(|(i, p, _, _)| (p - star[*i]).abs())
            .fold(0.0, f64::max);
        let per_pair = m as f64 / pairs;
        let e = 0.5 * pi_norm / per_pair.sqrt() + 1.0 / (per_pair + 2.0);
        let bound = pi_max * e / 0.1;
        assert!(err <= bound, "M = {m}: error {err} above {bound}");
        errors.push(err);
    }
    assert!(
        errors[1] < errors[0] / 2.0,
        "25x more judgements should at least halve the error: {errors:?}"
    );
}

#[test]
fn bootstrap_is_thread_independent() {
    let t = Tmp::new();
    let game = t.path("bt8.npy");
    write_f64_matrix(&game, 8, &bradley_terry(8));
    let (log, imported) = synth_and_import(&t, &game, 3_000, 2, "small");
    let run = |threads: &str| {
        let out = t.path(&format!("rank{threads}.csv"));
        let stdout = ok(&[
            "rank",
            &imported,
            "--beta",
            "0.2",
            "--bootstrap",
            "40",
            "--log",
            &log,
            "--threads",
            threads,
            "--out",
            s(&out),
        ]);
        let stdout: Vec<String> = stdout
            .lines()
            .filter(|l| !l.starts_with("wrote"))
            .map(String::from)
            .collect();
        (stdout.join("\n"), std::fs::read(&out).unwrap())
    };
    let (a, b) = (run("1"), run("2"));
    assert!(
        a.0.contains("95% interval") && a.0.contains("von Neumann winner"),
        "{}",
        a.0
    );
    assert_eq!(a, b);
}

#[test]
fn import_writes_items_and_coverage() {
    let t = Tmp::new();
    let log = t.path("arena.csv");
    std::fs::write(
        &log,
        "id,model_a,model_b,winner\n\
         1,zeta,alpha,model_a\n\
         2,alpha,zeta,tie (bothbad)\n\
         3,beta,alpha,model_b\n\
         4,zeta,beta,zeta\n",
    )
    .unwrap();
    let game = t.path("arena.npy");
    let args = [
        "import-pairwise",
        s(&log),
        "--out",
        s(&game),
        "--left",
        "model_a",
        "--right",
        "model_b",
        "--smoothing",
        "0.5",
        "--fill",
        "bt",
    ];
    let stdout = ok(&args);
    assert!(stdout.contains("3 of 3 pairs observed"), "{stdout}");
    let items = std::fs::read_to_string(t.path("arena.items.txt")).unwrap();
    assert_eq!(items, "alpha\nbeta\nzeta\n");
    let cov: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("arena.coverage.json")).unwrap())
            .unwrap();
    assert_eq!(cov["judgements"], 4);
    assert_eq!(cov["fill"], "bt");
    assert_eq!(cov["per_pair_max"], 2);
    // alpha vs zeta: zeta won once, one tie → w(alpha, zeta) = 0.5 of 2; k = 0.5.
    let b = std::fs::read(&game).unwrap();
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    let p: Vec<f64> = b[10 + hlen..]
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(p[2], (0.5 + 0.5) / (2.0 + 1.0));
    assert_eq!(p[6], 1.0 - p[2]);
    let info = ok(&["info", s(&game)]);
    assert!(info.contains("coverage: 3 items, 4 judgements"), "{info}");
    let ranked = ok(&["rank", s(&game), "--beta", "0.5"]);
    assert!(
        ranked.contains("zeta") && ranked.contains("alpha"),
        "{ranked}"
    );
}

#[test]
fn malformed_logs() {
    let t = Tmp::new();
    let game = t.path("g.npy");
    let cases: &[(&str, &str, &[&str])] = &[
        ("", "empty.csv", &["empty.csv:1:", "empty file"]),
        (
            "left,right,winner\n",
            "header.csv",
            &["header.csv:1:", "no judgements"],
        ),
        (
            "left,winner,other\na,a,x\n",
            "cols.csv",
            &[
                "cols.csv:1:",
                "missing column(s) right",
                "left, winner, other",
            ],
        ),
        (
            "left,right,winner\na,b,a\nb,c,draw\n",
            "label.csv",
            &["label.csv:3:", "unknown winner label \"draw\""],
        ),
        (
            "left,right,winner\na,b,a\nb,c,b\nc,c,tie\n",
            "self.csv",
            &["self.csv:4:", "self-comparison", "\"c\""],
        ),
        (
            "left,right,winner\na,b,c\nb,c,b\n",
            "other.csv",
            &["other.csv:2:", "\"c\" is an item not in this row"],
        ),
        (
            "left,right,winner\na,b,a\na,b\n",
            "ragged.csv",
            &["ragged.csv:3:"],
        ),
    ];
    for (text, name, needles) in cases {
        let log = t.path(name);
        std::fs::write(&log, text).unwrap();
        fails(&["import-pairwise", s(&log), "--out", s(&game)], needles);
    }
    assert!(!game.exists(), "a failed import writes nothing");
    fails(
        &["import-pairwise", s(&t.path("none.csv")), "--out", s(&game)],
        &["none.csv", "No such file"],
    );
    let log = t.path("ok.csv");
    std::fs::write(&log, "left,right,winner\na,b,a\n").unwrap();
    fails(
        &[
            "import-pairwise",
            s(&log),
            "--out",
            s(&game),
            "--smoothing",
            "-1",
        ],
        &["--smoothing"],
    );
}

#[test]
fn rank_rejects_a_log_that_is_not_the_games() {
    let t = Tmp::new();
    let game = t.path("bt4.npy");
    write_f64_matrix(&game, 4, &bradley_terry(4));
    let (log, imported) = synth_and_import(&t, &game, 200, 1, "a");
    let (other, _) = synth_and_import(&t, &game, 200, 2, "b");
    let base = [
        "rank",
        imported.as_str(),
        "--beta",
        "0.1",
        "--bootstrap",
        "10",
        "--log",
    ];
    fails(
        &[&base[..], &[other.as_str()]].concat(),
        &["does not match", "P["],
    );
    fails(
        &[&base[..], &[log.as_str(), "--smoothing", "3"]].concat(),
        &["does not match", "smoothing 3"],
    );
    let three = t.path("three.csv");
    std::fs::write(
        &three,
        "left,right,winner\nitem0,item1,item0\nitem1,item2,tie\n",
    )
    .unwrap();
    fails(
        &[&base[..], &[s(&three)]].concat(),
        &["does not match", "3 items"],
    );
    fails(
        &[
            "rank",
            imported.as_str(),
            "--beta",
            "0.1",
            "--bootstrap",
            "10",
        ],
        &["--log"],
    );
    fails(&["rank", imported.as_str(), "--beta", "0"], &["--beta"]);
    ok(&[&base[..], &[log.as_str()]].concat());
}
