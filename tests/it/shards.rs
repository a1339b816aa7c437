//! Shard sets without MPI: sharded generation is the unsharded data, byte for byte; the
//! single-process engine opens a manifest; bad shards are refused with their file named.

use crate::util::{fails, ok, read_csv, read_f64_vector, s, Tmp};
use nashmp::io::shards::{sha256_hex, Manifest};
use std::path::Path;

fn manifest(dir: &Path) -> Manifest {
    let p = dir.join("manifest.json");
    Manifest::parse(&p, &std::fs::read(&p).unwrap()).unwrap()
}

/// The shards' bytes concatenated in order.
fn concatenated(dir: &Path) -> Vec<u8> {
    let m = manifest(dir);
    let mut all = Vec::new();
    for sh in &m.shards {
        let b = std::fs::read(dir.join(&sh.file)).unwrap();
        assert_eq!(b.len() as u64, sh.bytes);
        assert_eq!(sha256_hex(&b), sh.sha256, "{}", sh.file);
        all.extend(b);
    }
    all
}

/// The matrix data of an unsharded file: its last `len` bytes (after the header).
fn data_of(file: &Path, len: usize) -> Vec<u8> {
    let b = std::fs::read(file).unwrap();
    b[b.len() - len..].to_vec()
}

#[test]
fn sharded_generation_has_the_unsharded_sha256() {
    let t = Tmp::new();
    // Two families, two layouts, two shard counts (uneven splits: 1000 = 333 + 333 + 334;
    // packed 1100 actions = 5 tile rows, split by tile count).
    let cases: [(&str, &[&str], &str); 2] = [
        ("uniform", &["--n", "1000", "--dtype", "f32"], "npy"),
        (
            "bradley-terry",
            &["--n", "1100", "--layout", "packed", "--dtype", "u16"],
            "nmp",
        ),
    ];
    for (family, args, ext) in cases {
        let whole = t.path(&format!("{family}.{ext}"));
        let mut a = vec!["generate", family, "--seed", "5", "--out", s(&whole)];
        a.extend_from_slice(args);
        ok(&a);
        for r in ["2", "3"] {
            let dir = t.path(&format!("{family}-{r}"));
            let mut a = vec![
                "generate",
                family,
                "--seed",
                "5",
                "--shards",
                r,
                "--out",
                s(&dir),
            ];
            a.extend_from_slice(args);
            ok(&a);
            let shards = concatenated(&dir);
            assert_eq!(manifest(&dir).shards.len().to_string(), r);
            let data = data_of(&whole, shards.len());
            assert_eq!(
                sha256_hex(&shards),
                sha256_hex(&data),
                "{family} --shards {r}"
            );
            // Splitting the unsharded file gives the same shard files.
            let conv = t.path(&format!("{family}-{r}-conv"));
            let (layout, dtype) = if ext == "npy" {
                ("dense", "f32")
            } else {
                ("packed", "u16")
            };
            ok(&[
                "convert",
                s(&whole),
                s(&conv),
                "--shards",
                r,
                "--layout",
                layout,
                "--dtype",
                dtype,
            ]);
            let (m1, m2) = (manifest(&dir), manifest(&conv));
            for (a, b) in m1.shards.iter().zip(&m2.shards) {
                assert_eq!((a.start, a.end, &a.sha256), (b.start, b.end, &b.sha256));
            }
        }
    }
    // The packed split balances tiles: 5 tile rows hold 5+4+3+2+1 = 15 tiles.
    let m = manifest(&t.path("bradley-terry-3"));
    let ranges: Vec<_> = m.shards.iter().map(|s| (s.start, s.end)).collect();
    assert_eq!(ranges, vec![(0, 1), (1, 2), (2, 5)]);
}

fn solve(game: &Path, out: &Path) {
    ok(&[
        "solve",
        s(game),
        "--beta",
        "0.1",
        "--iters",
        "25",
        "--algo",
        "nash-mp,omwu",
        "--out",
        s(out),
    ]);
}

/// `metrics.csv` without its `seconds` column.
fn metrics(out: &Path) -> Vec<Vec<String>> {
    let (h, rows) = read_csv(&out.join("metrics.csv"));
    let sec = h.iter().position(|c| c == "seconds").unwrap();
    rows.into_iter()
        .map(|mut r| {
            r.remove(sec);
            r
        })
        .collect()
}

#[test]
fn a_sharded_game_solves_like_the_unsharded_one() {
    let t = Tmp::new();
    let whole = t.path("u.npy");
    ok(&[
        "generate",
        "uniform",
        "--n",
        "1000",
        "--seed",
        "2",
        "--out",
        s(&whole),
    ]);
    solve(&whole, &t.path("o"));
    for r in ["1", "3", "4"] {
        let dir = t.path(&format!("u{r}"));
        ok(&[
            "generate",
            "uniform",
            "--n",
            "1000",
            "--seed",
            "2",
            "--shards",
            r,
            "--out",
            s(&dir),
        ]);
        let out = t.path(&format!("o{r}"));
        solve(&dir, &out);
        assert_eq!(metrics(&out), metrics(&t.path("o")), "dense --shards {r}");
        for f in ["nash-mp.policy.npy", "omwu.policy.npy", "equilibrium.npy"] {
            assert_eq!(
                std::fs::read(out.join(f)).unwrap(),
                std::fs::read(t.path("o").join(f)).unwrap(),
                "{f} --shards {r}"
            );
        }
    }
    // Packed: one shard sums as the unsharded game (same bits); more shards add the same
    // terms in another order (within 1e-12 after the whole solve).
    let whole = t.path("b.nmp");
    let g = [
        "generate",
        "bradley-terry",
        "--n",
        "900",
        "--layout",
        "packed",
        "--dtype",
        "u16",
    ];
    ok(&[&g[..], &["--out", s(&whole)]].concat());
    solve(&whole, &t.path("po"));
    let base = read_f64_vector(&t.path("po").join("nash-mp.policy.npy"));
    for r in ["1", "2", "4"] {
        let dir = t.path(&format!("b{r}"));
        ok(&[&g[..], &["--shards", r, "--out", s(&dir)]].concat());
        let out = t.path(&format!("po{r}"));
        solve(&dir, &out);
        let pi = read_f64_vector(&out.join("nash-mp.policy.npy"));
        let worst = pi
            .iter()
            .zip(&base)
            .map(|(a, b)| ((a - b) / b).abs())
            .fold(0.0, f64::max);
        if r == "1" {
            assert_eq!(metrics(&out), metrics(&t.path("po")));
            assert_eq!(worst, 0.0);
        } else {
            assert!(
                worst <= 1e-12,
                "packed --shards {r}: relative difference {worst:e}"
            );
        }
    }
}

#[test]
fn bad_shards_are_refused_naming_the_file() {
    let t = Tmp::new();
    let dir = t.path("g");
    ok(&[
        "generate",
        "cyclic",
        "--n",
        "300",
        "--shards",
        "3",
        "--out",
        s(&dir),
    ]);
    let shard = dir.join("shard-0001-of-0003.bin");
    let good = std::fs::read(&shard).unwrap();
    // A flipped byte: the checksum names the shard.
    let mut bad = good.clone();
    bad[100] ^= 1;
    std::fs::write(&shard, &bad).unwrap();
    fails(
        &["info", s(&dir)],
        &["shard-0001-of-0003.bin", "corrupt", "SHA-256"],
    );
    // A truncated shard.
    std::fs::write(&shard, &good[..good.len() - 4]).unwrap();
    fails(&["info", s(&dir)], &["shard-0001-of-0003.bin", "truncated"]);
    // A missing shard.
    std::fs::remove_file(&shard).unwrap();
    fails(&["info", s(&dir)], &["shard-0001-of-0003.bin"]);
    std::fs::write(&shard, &good).unwrap();
    ok(&["info", s(&dir)]);
    // A manifest whose ranges do not cover the game.
    let mp = dir.join("manifest.json");
    let text = std::fs::read_to_string(&mp).unwrap();
    std::fs::write(&mp, text.replace("\"end\": 300", "\"end\": 299")).unwrap();
    fails(
        &["info", s(&dir)],
        &[
            "manifest.json",
            "shard 2",
            "declares 120000 bytes, its range needs 118800",
        ],
    );
    // More shards than rows.
    fails(
        &[
            "generate",
            "uniform",
            "--n",
            "3",
            "--shards",
            "4",
            "--out",
            s(&t.path("x")),
        ],
        &["--shards 4", "3 rows"],
    );
}
