//! Every layout of the same game gives the same `Pπ`: packed f32 ≡ dense f32 up to summation
//! order, u16 (packed or dense) within its stated bound; generation is thread-independent.

use crate::util::*;
use nashmp::game::{self, apply_vec, PreferenceOperator};
use nashmp::gen::{DenseFamily, Family, Params};
use nashmp::io::container::{Elem, GameHeader, Layout, TILE, U16_ERROR};
use nashmp::io::{npy::DType, write};
use proptest::prelude::*;
use std::path::Path;

fn write_all_layouts(
    dir: &Path,
    n: usize,
    seed: u64,
) -> Vec<(String, Box<dyn PreferenceOperator>)> {
    let fam = DenseFamily::new(Family::Mixture, n, seed, Params::default());
    let entry = &fam;
    let none = |_| {};
    let mut out = Vec::new();
    for (name, dtype) in [("d64.npy", DType::F64), ("d32.npy", DType::F32)] {
        let p = dir.join(name);
        write::dense_npy(&p, n, dtype, entry, &none).unwrap();
        out.push((name.to_string(), game::open(&p, None).unwrap()));
    }
    for (name, layout, elem) in [
        ("p32.nmp", Layout::Packed, Elem::F32),
        ("p16.nmp", Layout::Packed, Elem::U16),
        ("d16.nmp", Layout::Dense, Elem::U16),
    ] {
        let mut h = GameHeader::new(n as u64, layout);
        h.dtype = Some(elem);
        if layout == Layout::Packed {
            h.tile = Some(TILE as u64);
        }
        let p = dir.join(name);
        write::matrix_container(&p, &h, entry, &none).unwrap();
        out.push((name.to_string(), game::open(&p, None).unwrap()));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    #[test]
    fn layouts_agree(n in 1usize..700, seed in 0u64..1000, xs in 0u64..1000) {
        let t = Tmp::new();
        let games = write_all_layouts(t.dir.path(), n, seed);
        // A random probability vector.
        let w: Vec<f64> = (0..n).map(|i| 0.05 + nashmp::gen::unit(xs, i as u64, 9)).collect();
        let s: f64 = w.iter().sum();
        let x: Vec<f64> = w.iter().map(|v| v / s).collect();
        let mut want = vec![0.0; n];
        apply_vec(&*games[0].1, &x, &mut want);
        for (name, g) in &games[1..] {
            let mut got = vec![0.0; n];
            apply_vec(&**g, &x, &mut got);
            // f32: entries and x rounded to f32 (2·6e-8 relative), f32 sums within tiles/blocks.
            // u16: each entry within U16_ERROR, so |Δ(Pπ)_i| ≤ U16_ERROR·Σπ = U16_ERROR.
            let tol = if name.contains("16") { U16_ERROR + 1e-6 } else { 1e-6 };
            for i in 0..n {
                prop_assert!((got[i] - want[i]).abs() <= tol, "{} n={} i={}: {} vs {}", name, n, i, got[i], want[i]);
            }
            for (i, j) in [(0, n - 1), (n - 1, 0), (n / 2, n / 3), (n - 1, n - 1)] {
                let tol_e = if name.contains("16") { U16_ERROR } else { 1e-7 };
                prop_assert!((g.entry(i, j) - games[0].1.entry(i, j)).abs() <= tol_e);
            }
        }
        // Packed f32 against dense f32: the same f32 entries (the mirrored ones computed as
        // 1 − p in f64 rather than rounded), summed in f32 in a different order: the gap is a few
        // f32 roundings of (Pπ)_i ≤ 1, far below 1e-6.
        let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
        apply_vec(&*games[1].1, &x, &mut a);
        apply_vec(&*games[2].1, &x, &mut b);
        for i in 0..n {
            prop_assert!((a[i] - b[i]).abs() <= 1e-6, "n={} i={}: {} vs {}", n, i, a[i], b[i]);
        }
    }
}

#[test]
fn packed_scalar_twin_matches_simd() {
    let t = Tmp::new();
    let n = 600;
    let games = write_all_layouts(t.dir.path(), n, 4);
    let x = vec![1.0 / n as f64; n];
    for name in ["p32.nmp", "p16.nmp"] {
        let p = t.path(name);
        let simd = game::open(&p, None).unwrap();
        let scalar = game::packed_scalar(&p).unwrap();
        let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
        apply_vec(&*simd, &x, &mut a);
        apply_vec(&scalar, &x, &mut b);
        for i in 0..n {
            assert!((a[i] - b[i]).abs() <= 1e-6, "{name} {i}");
        }
    }
    drop(games);
}

#[test]
fn generate_is_byte_identical_across_threads_for_every_family() {
    let t = Tmp::new();
    let cases: &[(&str, &[&str])] = &[
        ("uniform", &["--layout", "packed", "--dtype", "u16"]),
        ("bradley-terry", &["--dtype", "f64"]),
        ("cyclic", &["--noise", "0.1", "--layout", "packed"]),
        ("disc", &["--rank", "4"]),
        ("mixture", &["--layout", "dense", "--dtype", "u16"]),
        ("low-rank", &["--rank", "3"]),
        ("block", &["--types", "7"]),
    ];
    for (family, extra) in cases {
        let mut files = Vec::new();
        for th in ["1", "2"] {
            let ext = if extra.contains(&"packed")
                || extra.contains(&"u16")
                || family.contains('-') && *family != "bradley-terry"
                || *family == "block"
            {
                "nmp"
            } else {
                "npy"
            };
            let out = t.path(&format!("{family}-{th}.{ext}"));
            let mut args = vec![
                "--threads",
                th,
                "generate",
                family,
                "--n",
                "300",
                "--seed",
                "11",
                "--out",
                s(&out),
            ];
            args.extend_from_slice(extra);
            ok(&args);
            files.push(std::fs::read(&out).unwrap());
            let info = ok(&["info", s(&out)]);
            assert!(info.contains("valid:  yes"), "{family}: {info}");
        }
        assert_eq!(files[0], files[1], "{family}: --threads 1 and 2 differ");
    }
}

#[test]
fn solve_accepts_every_layout_with_thread_independent_results() {
    let t = Tmp::new();
    for (name, extra) in [
        ("p.nmp", vec!["--layout", "packed"]),
        ("lr.nmp", vec![]),
        ("b.nmp", vec![]),
    ] {
        let family = match name {
            "lr.nmp" => "low-rank",
            "b.nmp" => "block",
            _ => "disc",
        };
        let g = t.path(name);
        let mut args = vec![
            "generate",
            family,
            "--n",
            "900",
            "--seed",
            "2",
            "--out",
            s(&g),
        ];
        args.extend(extra);
        ok(&args);
        let mut outs = Vec::new();
        for th in ["1", "2"] {
            let o = t.path(&format!("{name}-o{th}"));
            ok(&[
                "--threads",
                th,
                "solve",
                s(&g),
                "--beta",
                "0.1",
                "--iters",
                "20",
                "--algo",
                "nash-mp,omwu",
                "--out",
                s(&o),
            ]);
            let (_, rows) = read_csv(&o.join("metrics.csv"));
            let rows: Vec<String> = rows.iter().map(|r| r[..r.len() - 1].join(",")).collect();
            outs.push((rows, std::fs::read(o.join("nash-mp.policy.npy")).unwrap()));
        }
        assert_eq!(outs[0], outs[1], "{name}");
    }
}

/// Every layout's batched apply runs on a stack of exactly its declared `apply_scratch(k)`
/// (a fresh buffer of that size: an undersized declaration panics), and column `v` of the
/// batch is the bits of the single apply of vector `v`, for batch sizes around the 16-column
/// pass and with a column stride larger than `n`.
#[test]
fn declared_scratch_suffices_and_columns_are_single_applies() {
    use nashmp::game::{MemBuffer, MemStack};
    let t = Tmp::new();
    let n = 300;
    let mut games = write_all_layouts(t.dir.path(), n, 7);
    for (name, args) in [
        ("lr.nmp", &["low-rank", "--rank", "3"][..]),
        ("lr9.nmp", &["low-rank", "--rank", "9"][..]),
        ("b.nmp", &["block", "--types", "5"][..]),
    ] {
        let p = t.path(name);
        let mut a = vec!["generate", "-q", "--n", "300", "--out", s(&p)];
        a.extend_from_slice(args);
        ok(&a);
        games.push((name.to_string(), game::open(&p, None).unwrap()));
    }
    for (dir, layout, r) in [
        ("packed-shards", "packed", "2"),
        ("dense-shards", "dense", "3"),
    ] {
        let p = t.path(dir);
        ok(&[
            "generate",
            "-q",
            "mixture",
            "--n",
            "300",
            "--layout",
            layout,
            "--shards",
            r,
            "--out",
            s(&p),
        ]);
        games.push((dir.into(), game::open(&p, None).unwrap()));
    }
    for (name, g) in &games {
        for k in [1usize, 2, 3, 16, 17] {
            // Column stride n + 5: the batch is a view into a wider buffer.
            let ld = n + 5;
            let x: Vec<f64> = (0..ld * k)
                .map(|e| (1 + (e % ld) % 7 + e / ld) as f64 / (5.0 * n as f64))
                .collect();
            let xm = nashmp::game::MatRef::from_column_major_slice_with_stride(&x, n, k, ld);
            let mut o = vec![f64::NAN; ld * k];
            let om =
                nashmp::game::MatMut::from_column_major_slice_with_stride_mut(&mut o, n, k, ld);
            let mut mem = MemBuffer::new(g.apply_scratch(k));
            g.apply(om, xm, MemStack::new(&mut mem));
            for v in 0..k {
                let mut single = vec![0.0; n];
                apply_vec(&**g, &x[v * ld..v * ld + n], &mut single);
                let got: Vec<u64> = o[v * ld..v * ld + n].iter().map(|y| y.to_bits()).collect();
                let want: Vec<u64> = single.iter().map(|y| y.to_bits()).collect();
                assert_eq!(got, want, "{name}: k = {k}, column {v}");
                assert!(
                    single.iter().all(|y| y.is_finite()),
                    "{name}: k = {k}, column {v}"
                );
            }
        }
    }
}
