//! A corpus of malformed inputs, generated here (no stored files): `.npy` games, nashmp
//! containers, text matrices, reference/initial policies, checkpoints and command-line
//! parameters. Every case must exit with status 2 and a message naming the problem, without a
//! panic, quickly, and — run under an address-space limit far below the sizes the files declare
//! — without allocating memory in proportion to a (lying) declared size.

use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Address-space limit for every case: far below the 2^40-entry shapes of the corpus.
const AS_LIMIT: u64 = 2 << 30;

struct Case {
    name: &'static str,
    args: Vec<String>,
    needles: Vec<&'static str>,
}

fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut b = npy_header(descr, false, shape);
    b.extend_from_slice(data);
    b
}

fn f64s(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn container(json: &str) -> Vec<u8> {
    let mut b = b"\x93NASHMP\x01".to_vec();
    b.extend((json.len() as u32).to_le_bytes());
    b.extend(json.as_bytes());
    b.resize(b.len().div_ceil(4096) * 4096, 0);
    b
}

/// Runs `nashmp args` under the address-space limit when `prlimit` exists.
fn run_limited(args: &[String]) -> (std::process::Output, bool) {
    let bin = env!("CARGO_BIN_EXE_nashmp");
    let limited = Path::new("/usr/bin/prlimit").exists();
    let out = if limited {
        Command::new("/usr/bin/prlimit")
            .arg(format!("--as={AS_LIMIT}"))
            .arg(bin)
            .args(args)
            .output()
    } else {
        Command::new(bin).args(args).output()
    };
    (out.expect("run nashmp"), limited)
}

/// A 3-action game with one entry replaced.
fn game_with(i: usize, j: usize, v: f64) -> Vec<u8> {
    let mut p = cyclic(3);
    p[i * 3 + j] = v;
    npy("<f8", "(3, 3)", &f64s(&p))
}

#[test]
fn malformed_inputs_exit_2_with_a_named_problem() {
    let t = Tmp::new();
    let dir = t.dir.path();
    let out = s(&t.path("out")).to_string();
    let file = |name: &str, bytes: &[u8]| -> String {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        s(&p).to_string()
    };
    let solve = |game: &str, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = ["solve", game, "--beta", "0.1", "--iters", "2", "--out"]
            .iter()
            .map(|x| x.to_string())
            .collect();
        a.push(out.clone());
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    let convert = |input: &str| -> Vec<String> {
        vec![
            "convert".into(),
            input.into(),
            s(&dir.join("converted.npy")).into(),
        ]
    };
    let good = file("good.npy", &npy("<f8", "(3, 3)", &f64s(&cyclic(3))));
    let valid = npy("<f8", "(3, 3)", &f64s(&cyclic(3)));
    let mut cases: Vec<Case> = Vec::new();
    let mut add = |name: &'static str, args: Vec<String>, needles: &[&'static str]| {
        cases.push(Case {
            name,
            args,
            needles: needles.to_vec(),
        })
    };

    // ---- .npy games ----
    add(
        "npy: empty file",
        solve(&file("empty.npy", b""), &[]),
        &["empty.npy", "too short"],
    );
    add(
        "npy: header cut",
        solve(&file("cut.npy", &valid[..40]), &[]),
        &["cut.npy", "header truncated"],
    );
    add(
        "npy: data cut by one element",
        solve(&file("short.npy", &valid[..valid.len() - 8]), &[]),
        &["short.npy", "truncated", "72", "64"],
    );
    let mut long = valid.clone();
    long.extend([0u8; 8]);
    add(
        "npy: trailing bytes",
        solve(&file("long.npy", &long), &[]),
        &["long.npy", "trailing data"],
    );
    add(
        "npy: shape (2^40, 2^40) in a tiny file",
        solve(
            &file(
                "huge.npy",
                &npy("<f4", "(1099511627776, 1099511627776)", &[0; 64]),
            ),
            &[],
        ),
        &["huge.npy", "overflows"],
    );
    add(
        "npy: shape (2^20, 2^20) f8 lying about 8 TiB",
        solve(
            &file("lying.npy", &npy("<f8", "(1048576, 1048576)", &[0; 64])),
            &[],
        ),
        &["lying.npy", "truncated", "8796093022208"],
    );
    add(
        "npy: int32 dtype",
        solve(&file("i4.npy", &npy("<i4", "(3, 3)", &[0; 36])), &[]),
        &["i4.npy", "<i4"],
    );
    add(
        "npy: big-endian float64",
        solve(&file("be.npy", &npy(">f8", "(3, 3)", &[0; 72])), &[]),
        &["be.npy", ">f8"],
    );
    add(
        "npy: 1-D game",
        solve(&file("vec.npy", &npy("<f8", "(9,)", &[0; 72])), &[]),
        &["vec.npy", "square"],
    );
    add(
        "npy: 3×4 game",
        solve(&file("rect.npy", &npy("<f8", "(3, 4)", &[0; 96])), &[]),
        &["rect.npy", "square", "[3, 4]"],
    );
    add(
        "npy: Fortran order",
        solve(
            &file("fortran.npy", &{
                let mut b = npy_header("<f8", true, "(3, 3)");
                b.extend(f64s(&cyclic(3)));
                b
            }),
            &[],
        ),
        &["fortran.npy", "Fortran"],
    );
    let misaligned = {
        // A version-1 header whose data starts at byte 13: not a multiple of 8.
        let d = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 3), }";
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        let mut d = d.to_string();
        while (10 + d.len() + 1) % 8 != 5 {
            d.push(' ');
        }
        d.push('\n');
        b.extend((d.len() as u16).to_le_bytes());
        b.extend(d.as_bytes());
        b.extend(f64s(&cyclic(3)));
        b
    };
    add(
        "npy: misaligned data offset",
        solve(&file("misaligned.npy", &misaligned), &[]),
        &["misaligned.npy", "aligned"],
    );
    add(
        "npy: NaN entry",
        solve(&file("nan.npy", &game_with(0, 1, f64::NAN)), &[]),
        &["nan.npy", "P[0][1]", "not finite"],
    );
    add(
        "npy: +Inf entry",
        solve(&file("inf.npy", &game_with(1, 2, f64::INFINITY)), &[]),
        &["inf.npy", "P[1][2]", "inf"],
    );
    add(
        "npy: entry 1.5",
        solve(&file("big.npy", &game_with(0, 1, 1.5)), &[]),
        &["big.npy", "1.5", "outside [0, 1]"],
    );
    add(
        "npy: entry −0.25",
        solve(&file("neg.npy", &game_with(0, 2, -0.25)), &[]),
        &["neg.npy", "-0.25", "outside [0, 1]"],
    );
    add(
        "npy: broken skew symmetry",
        solve(&file("skew.npy", &game_with(0, 1, 0.75)), &[]),
        &["skew.npy", "skew", "P[0][1]"],
    );
    add(
        "npy: diagonal not 1/2",
        solve(&file("diag.npy", &game_with(2, 2, 0.625)), &[]),
        &["diag.npy", "P[2][2]"],
    );
    add(
        "npy: header not UTF-8",
        solve(
            &file("bin.npy", &{
                let mut b = valid.clone();
                b[20] = 0xff;
                b
            }),
            &[],
        ),
        &["bin.npy", "not valid text"],
    );
    add(
        "npy: header without shape",
        solve(
            &file("noshape.npy", &{
                let d = "{'descr': '<f8', 'fortran_order': False, }          \n";
                let mut b = b"\x93NUMPY\x01\x00".to_vec();
                b.extend((d.len() as u16).to_le_bytes());
                b.extend(d.as_bytes());
                b
            }),
            &[],
        ),
        &["noshape.npy", "no 'shape'"],
    );
    add(
        "npy: header length 65535 in a 64-byte file",
        solve(
            &file("hlen.npy", &{
                let mut b = valid[..64].to_vec();
                b[8] = 0xff;
                b[9] = 0xff;
                b
            }),
            &[],
        ),
        &["hlen.npy", "header truncated", "65535"],
    );
    add(
        "npy: version 3 header length 4 GiB",
        solve(&file("v3.npy", b"\x93NUMPY\x03\x00\xff\xff\xff\xff{}"), &[]),
        &["v3.npy", "exceeds the cap"],
    );
    let d = dir.join("adir.npy");
    std::fs::create_dir(&d).unwrap();
    add("npy: a directory", solve(s(&d), &[]), &["adir.npy"]);
    add(
        "npy: missing file",
        solve(s(&dir.join("missing.npy")), &[]),
        &["missing.npy", "No such file"],
    );

    // ---- nashmp containers ----
    add(
        "container: magic only",
        solve(&file("magic.nmp", b"\x93NASHMP\x01"), &[]),
        &["magic.nmp", "too short"],
    );
    add(
        "container: header length 4 GiB",
        solve(&file("hcap.nmp", b"\x93NASHMP\x01\xff\xff\xff\xff{}"), &[]),
        &["hcap.nmp", "exceeds the cap"],
    );
    add(
        "container: version 9",
        solve(&file("v9.nmp", b"\x93NASHMP\x09\x02\x00\x00\x00{}"), &[]),
        &["v9.nmp", "version 9"],
    );
    add(
        "container: header not JSON",
        solve(&file("garbage.nmp", &container("{\"format\": nope")), &[]),
        &["garbage.nmp", "not a valid nashmp game"],
    );
    add(
        "container: unknown layout",
        solve(
            &file(
                "layout.nmp",
                &container(r#"{"format":"nashmp-game","version":1,"n":3,"layout":"sparse"}"#),
            ),
            &[],
        ),
        &["layout.nmp", "sparse"],
    );
    add(
        "container: low-rank n = 2^40 in a tiny file",
        solve(
            &file(
                "lowrank.nmp",
                &container(
                    r#"{"format":"nashmp-game","version":1,"n":1099511627776,"layout":"low-rank","rank":2}"#,
                ),
            ),
            &[],
        ),
        &["lowrank.nmp"],
    );
    add(
        "container: dense n = 2^40 f32",
        solve(
            &file(
                "dense40.nmp",
                &container(
                    r#"{"format":"nashmp-game","version":1,"n":1099511627776,"layout":"dense","dtype":"f32"}"#,
                ),
            ),
            &[],
        ),
        &["dense40.nmp"],
    );
    let packed = t.path("packed.nmp");
    ok(&[
        "convert",
        &good,
        s(&packed),
        "--layout",
        "packed",
        "--dtype",
        "f32",
    ]);
    let pb = std::fs::read(&packed).unwrap();
    add(
        "container: packed data cut",
        solve(&file("packedcut.nmp", &pb[..pb.len() - 1]), &[]),
        &["packedcut.nmp", "truncated"],
    );

    // ---- text matrices ----
    add(
        "text: empty",
        convert(&file("empty.txt", b"")),
        &["empty.txt", "no numbers"],
    );
    add(
        "text: not a number",
        convert(&file("word.txt", b"0.5 1 0\n0 0.5 x1\n1 0 0.5\n")),
        &["word.txt:2", "\"x1\""],
    );
    add(
        "text: ragged rows",
        convert(&file("ragged.txt", b"0.5 1\n0 0.5 1\n")),
        &["ragged.txt:2", "3 entries"],
    );
    add(
        "text: 2×3",
        convert(&file("rect.txt", b"0.5 1 0\n0 0.5 1\n")),
        &["rect.txt", "square"],
    );
    add(
        "text: NaN",
        convert(&file("nan.txt", b"0.5 NaN\n0 0.5\n")),
        &["nan.txt", "not finite"],
    );
    add(
        "text: value 2",
        convert(&file("two.txt", b"0.5 2\n-1 0.5\n")),
        &["two.txt", "outside [0, 1]"],
    );
    add(
        "text: broken skew symmetry",
        convert(&file("skew.txt", b"0.5 0.3\n0.6 0.5\n")),
        &["skew.txt", "skew"],
    );
    add(
        "text: not UTF-8",
        convert(&file("latin1.txt", b"0.5 0.5\n0.5 \xe90.5\n")),
        &["latin1.txt:2", "not UTF-8"],
    );

    // ---- reference and initial policies ----
    let r = |name: &str, bytes: &[u8]| file(name, bytes);
    add(
        "ref: wrong length",
        solve(
            &good,
            &[
                "--ref",
                &r("len.npy", &npy("<f8", "(2,)", &f64s(&[0.5, 0.5]))),
            ],
        ),
        &["len.npy", "2 entries", "3 actions"],
    );
    add(
        "ref: zero entry",
        solve(
            &good,
            &[
                "--ref",
                &r("zero.npy", &npy("<f8", "(3,)", &f64s(&[0.5, 0.5, 0.0]))),
            ],
        ),
        &["zero.npy", "entry 2 is 0"],
    );
    add(
        "ref: negative entry",
        solve(
            &good,
            &[
                "--ref",
                &r("negref.npy", &npy("<f8", "(3,)", &f64s(&[0.7, 0.5, -0.2]))),
            ],
        ),
        &["negref.npy", "entry 2 is -0.2"],
    );
    add(
        "ref: sums to 1.5",
        solve(
            &good,
            &[
                "--ref",
                &r("sum.npy", &npy("<f8", "(3,)", &f64s(&[0.5, 0.5, 0.5]))),
            ],
        ),
        &["sum.npy", "sum to 1.5"],
    );
    add(
        "ref: NaN",
        solve(
            &good,
            &[
                "--ref",
                &r(
                    "nanref.npy",
                    &npy("<f8", "(3,)", &f64s(&[f64::NAN, 0.5, 0.5])),
                ),
            ],
        ),
        &["nanref.npy", "entry 0 is NaN"],
    );
    add(
        "ref: 2-D",
        solve(&good, &["--ref", &r("mat.npy", &valid)]),
        &["mat.npy", "1-D"],
    );
    add(
        "ref: shape (2^40,) in a tiny file",
        solve(
            &good,
            &[
                "--ref",
                &r("hugeref.npy", &npy("<f8", "(1099511627776,)", &[0; 24])),
            ],
        ),
        &["hugeref.npy", "truncated"],
    );
    add(
        "ref: a directory",
        solve(&good, &["--ref", s(dir)]),
        &["is a directory"],
    );
    add(
        "ref: a character device",
        solve(&good, &["--ref", "/dev/zero"]),
        &["/dev/zero", "not a regular file"],
    );
    add(
        "init: truncated policy",
        solve(
            &good,
            &["--init", &r("init.npy", &npy("<f8", "(3,)", &[0; 16]))],
        ),
        &["init.npy", "truncated"],
    );

    // ---- command-line parameters ----
    add(
        "param: --beta given twice",
        solve(&good, &["--beta", "NaN"]),
        &["cannot be used multiple times"],
    );
    let mut p = solve(&good, &[]);
    p[3] = "NaN".into();
    add("param: β NaN", p, &["β must be finite", "NaN"]);
    let mut p = solve(&good, &[]);
    p[3] = "inf".into();
    add("param: β inf", p, &["β must be finite", "inf"]);
    add(
        "param: α = inf",
        solve(&good, &["--alpha", "inf"]),
        &["α must be positive and finite"],
    );
    add("param: η = NaN", solve(&good, &["--eta", "NaN"]), &["NaN"]);
    add(
        "param: --tol NaN",
        solve(&good, &["--tol", "NaN"]),
        &["--tol"],
    );
    add(
        "param: --checkpoint-every 0",
        solve(&good, &["--checkpoint-every", "0"]),
        &["--checkpoint-every"],
    );
    add(
        "param: --iters -1",
        solve(&good, &["--iters", "-1"]),
        &["'-1'"],
    );
    add(
        "param: --threads 0",
        {
            let mut a = vec!["--threads".to_string(), "0".into()];
            a.extend(solve(&good, &[]));
            a
        },
        &["--threads must be at least 1"],
    );
    add(
        "param: --samples 0",
        solve(&good, &["--oracle", "sampled", "--samples", "0"]),
        &["--samples"],
    );
    add(
        "param: --batch without --oracle pg",
        solve(&good, &["--batch", "4"]),
        &["--batch applies only to --oracle pg"],
    );

    // ---- checkpoints ----
    let ck_out = dir.join("ckout");
    std::fs::create_dir(&ck_out).unwrap();
    std::fs::write(
        ck_out.join("checkpoint.nmpck"),
        b"NASHMPCK\x02\0\0\0\0\0\0\0\xff\xff\xff\xff\xff\xff\xff\xff",
    )
    .unwrap();
    // A checkpoint of the first format (mirror records), written before the blob-file format.
    let old_out = dir.join("oldck");
    std::fs::create_dir(&old_out).unwrap();
    std::fs::write(
        old_out.join("checkpoint.nmpck"),
        b"NASHMPCK\x01\0\0\0\0\0\0\0\x02\0\0\0\0\0\0\0{}",
    )
    .unwrap();
    let resume = |extra: &[&str]| {
        let mut a = solve(&good, &["--resume"]);
        a[7] = s(&ck_out).into();
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    add(
        "checkpoint: manifest length 2^64 − 1",
        resume(&[]),
        &[
            "checkpoint.nmpck",
            "not a valid nashmp checkpoint",
            "manifest length",
        ],
    );
    add(
        "checkpoint: written by an older version",
        {
            let mut a = resume(&[]);
            a[7] = s(&old_out).into();
            a
        },
        &[
            "checkpoint.nmpck",
            "written by an older version of nashmp",
            "without --resume",
        ],
    );
    let ck_dir = dir.join("ckdir");
    std::fs::create_dir_all(ck_dir.join("checkpoint.nmpck")).unwrap();
    add(
        "checkpoint: a directory",
        {
            let mut a = resume(&[]);
            a[7] = s(&ck_dir).into();
            a
        },
        &["checkpoint.nmpck"],
    );

    // ---- unreadable files ----
    let locked = PathBuf::from(file("locked.npy", &valid));
    let mut perms = std::fs::metadata(&locked).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o000);
    std::fs::set_permissions(&locked, perms).unwrap();
    let mut unprivileged = None;
    if std::fs::read(&locked).is_err() {
        add(
            "npy: permission denied",
            solve(s(&locked), &[]),
            &["locked.npy", "ermission denied"],
        );
    } else if Path::new("/usr/bin/setpriv").exists() {
        // Root reads mode-000 files: run this case as `nobody` instead.
        unprivileged = Some(locked.clone());
    } else {
        eprintln!(
            "corpus: skipping the unreadable-file case: running as root (mode 000 does not \
             stop it) and no setpriv to drop privileges"
        );
    }
    let total = cases.len();
    assert!(total >= 30, "only {total} cases");
    let mut failures = Vec::new();
    let mut limited = false;
    for c in &cases {
        let start = Instant::now();
        let (o, lim) = run_limited(&c.args);
        limited = lim;
        let took = start.elapsed();
        let err = String::from_utf8_lossy(&o.stderr);
        let mut problems = Vec::new();
        if o.status.code() != Some(2) {
            problems.push(format!("exit {:?}", o.status));
        }
        if err.contains("panicked") || err.contains("memory allocation") {
            problems.push("panic or allocation failure".into());
        }
        for n in &c.needles {
            if !err.contains(n) {
                problems.push(format!("stderr lacks {n:?}"));
            }
        }
        if took > Duration::from_secs(10) {
            problems.push(format!("took {took:?}"));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {}\n  stderr: {}",
                c.name,
                problems.join("; "),
                err.trim()
            ));
        }
    }
    eprintln!(
        "corpus: {total} malformed inputs{}",
        if limited {
            format!(", each under an address-space limit of {AS_LIMIT} bytes")
        } else {
            " (prlimit not found: no address-space limit)".into()
        }
    );
    if let Some(locked) = unprivileged {
        let o = Command::new("/usr/bin/setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_nashmp"))
            .args(["solve", s(&locked), "--beta", "0.1"])
            .output()
            .expect("setpriv");
        let err = String::from_utf8_lossy(&o.stderr);
        if err.contains("setpriv:") {
            eprintln!("corpus: skipping the unreadable-file case: setpriv failed: {err}");
        } else if o.status.code() != Some(2)
            || !err.contains("locked.npy")
            || !err.contains("Permission denied")
        {
            failures.push(format!("npy: permission denied (as nobody): {err}"));
        } else {
            eprintln!("corpus: unreadable-file case run as nobody via setpriv");
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
