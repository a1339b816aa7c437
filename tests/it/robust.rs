//! Interruptions: SIGKILL mid-write leaves the previous outputs; a solve killed after a
//! checkpoint and resumed ends on the bits of an uninterrupted one; SIGINT saves and exits 130;
//! a resume is refused when the game or the arguments changed; a full disk leaves no partial file.

use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_nashmp"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nashmp")
}

/// Polls `cond` every millisecond for up to a minute.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `dir/.NAME.PID.tmp` of a running writer, once it holds at least `min_bytes`.
fn temp_of(dir: &Path, name: &str, min_bytes: u64) -> Option<PathBuf> {
    std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        let f = e.file_name().into_string().ok()?;
        let ok = f.starts_with(&format!(".{name}.")) && f.ends_with(".tmp");
        (ok && e.metadata().ok()?.len() >= min_bytes).then(|| e.path())
    })
}

fn temps(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|f| f.ends_with(".tmp"))
        .collect()
}

/// `metrics.csv` without its `seconds` column.
fn metrics_sans_seconds(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("metrics.csv"))
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n")
        .collect()
}

/// Same rows (but for `seconds`) and the same policy files, bit for bit.
fn assert_same_results(a: &Path, b: &Path) {
    assert_eq!(metrics_sans_seconds(a), metrics_sans_seconds(b));
    let mut policies = 0;
    for e in std::fs::read_dir(a).unwrap().flatten() {
        let name = e.file_name().into_string().unwrap();
        if name.ends_with(".npy") {
            let (x, y) = (
                std::fs::read(e.path()).unwrap(),
                std::fs::read(b.join(&name)),
            );
            assert!(y.as_ref().is_ok_and(|y| *y == x), "{name} differs");
            policies += 1;
        }
    }
    assert!(policies > 0);
    assert!(
        !b.join("checkpoint.nmpck").exists(),
        "checkpoint removed after completion"
    );
}

fn game(t: &Tmp, n: usize, noise: &str) -> String {
    let p = t.path(&format!("g{n}_{noise}.npy"));
    ok(&[
        "generate",
        "cyclic",
        "--n",
        &n.to_string(),
        "--noise",
        noise,
        "--out",
        s(&p),
    ]);
    s(&p).to_string()
}

/// Kills a solve with SIGKILL once its checkpoint holds `ck_bytes` (its rows so far grow it,
/// so this picks a point well inside the solve), resumes it, and compares with an
/// uninterrupted run.
fn kill_and_resume(t: &Tmp, tag: &str, ck_bytes: u64, args: &[&str]) {
    let full = t.path(&format!("full-{tag}"));
    let part = t.path(&format!("part-{tag}"));
    let with_out = |out: &Path, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = args.iter().map(|x| x.to_string()).collect();
        a.extend(["--out".into(), s(out).into()]);
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    ok(&refs(&with_out(&full, &[])));
    let a = with_out(&part, &["--checkpoint-every", "7"]);
    let mut child = spawn(&refs(&a));
    let ck = part.join("checkpoint.nmpck");
    wait_until("a checkpoint", || {
        std::fs::metadata(&ck).is_ok_and(|m| m.len() >= ck_bytes)
    });
    let finished = child.try_wait().unwrap().is_some();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !finished,
        "{tag}: the run ended before it could be killed; lengthen it"
    );
    assert!(ck.exists(), "{tag}: a checkpoint survives SIGKILL");
    ok(&refs(&with_out(
        &part,
        &["--checkpoint-every", "7", "--resume"],
    )));
    assert_same_results(&full, &part);
    assert!(
        temps(&part).is_empty(),
        "{tag}: stale temporaries: {:?}",
        temps(&part)
    );
}

#[test]
fn sigkill_then_resume_matches_an_uninterrupted_solve() {
    let t = Tmp::new();
    let g = game(&t, 31, "0.1");
    kill_and_resume(
        &t,
        "exact",
        100_000,
        &[
            "solve",
            &g,
            "--beta",
            "0.05",
            "--iters",
            "400",
            "--schedule",
            "decaying",
            "--algo",
            "nash-mp,mmd,omwu,egpo,nash-md,mwu",
        ],
    );
}

#[test]
fn sigkill_then_resume_matches_with_sampled_queries() {
    let t = Tmp::new();
    let g = game(&t, 31, "0.1");
    kill_and_resume(
        &t,
        "sampled",
        80_000,
        &[
            "solve",
            &g,
            "--beta",
            "0.05",
            "--iters",
            "600",
            "--algo",
            "nash-mp,omwu,mwu",
            "--oracle",
            "sampled",
            "--samples",
            "3",
            "--seed",
            "7",
        ],
    );
    kill_and_resume(
        &t,
        "pg",
        20_000,
        &[
            "solve",
            &g,
            "--beta",
            "0.05",
            "--iters",
            "500",
            "--algo",
            "nash-mp",
            "--oracle",
            "pg",
            "--inner-steps",
            "2",
            "--batch",
            "64",
            "--seed",
            "7",
        ],
    );
}

#[test]
fn sigint_saves_exits_130_and_resumes() {
    signal_saves_exits_130_and_resumes("-INT");
}

/// SIGTERM (what batch schedulers send before SIGKILL) is handled like Ctrl-C.
#[test]
fn sigterm_saves_exits_130_and_resumes() {
    signal_saves_exits_130_and_resumes("-TERM");
}

fn signal_saves_exits_130_and_resumes(signal: &str) {
    let t = Tmp::new();
    let g = game(&t, 31, "0.1");
    let args = |out: &Path, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "solve",
            &g,
            "--beta",
            "0.05",
            "--iters",
            "3000",
            "--algo",
            "nash-mp,omwu,mwu",
            "--out",
            s(out),
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    let (full, part) = (t.path("full"), t.path("part"));
    ok(&refs(&args(&full, &[])));
    let child = spawn(&refs(&args(&part, &[])));
    wait_until("the metrics being written", || {
        temp_of(&part, "metrics.csv", 20_000).is_some()
    });
    let st = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill(1)");
    assert!(st.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{signal}: stderr: {err}");
    assert!(
        err.contains("interrupted") && err.contains("--resume"),
        "{err}"
    );
    let rows = std::fs::read_to_string(part.join("metrics.csv"))
        .unwrap()
        .lines()
        .count();
    assert!(
        rows > 100 && rows < 3 * 3001 + 1,
        "partial metrics.csv flushed ({rows} lines)"
    );
    let summary = std::fs::read_to_string(part.join("summary.json")).unwrap();
    assert!(summary.contains("\"interrupted\""), "{summary}");
    assert!(part.join("checkpoint.nmpck").exists());

    // Changed arguments or game: refused, naming what changed.
    fails(
        &refs(&args(&part, &["--resume", "--tol", "1e-3"])),
        &["cannot resume", "arguments changed", "tol=Some(0.001)"],
    );
    let other = game(&t, 31, "0.2");
    std::fs::copy(&other, &g).unwrap();
    fails(
        &refs(&args(&part, &["--resume"])),
        &["cannot resume", "game file changed"],
    );
    assert_eq!(game(&t, 31, "0.1"), g, "the original game, regenerated");

    ok(&refs(&args(&part, &["--resume"])));
    assert_same_results(&full, &part);
}

#[test]
fn sigkill_mid_write_leaves_the_previous_file() {
    let t = Tmp::new();
    let dir = t.dir.path();
    // generate: a 64 MB game killed mid-write over a small previous version.
    let target = t.path("g.npy");
    ok(&["generate", "cyclic", "--n", "5", "--out", s(&target)]);
    let before = std::fs::read(&target).unwrap();
    let mut child = spawn(&[
        "generate",
        "bradley-terry",
        "--n",
        "4000",
        "--out",
        s(&target),
    ]);
    wait_until("generate writing", || {
        temp_of(dir, "g.npy", 1 << 20).is_some()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        std::fs::read(&target).unwrap(),
        before,
        "generate: previous version intact"
    );
    assert!(
        temp_of(dir, "g.npy", 0).is_some(),
        "SIGKILL leaves the temporary"
    );
    ok(&["generate", "cyclic", "--n", "7", "--out", s(&target)]);
    assert!(
        temp_of(dir, "g.npy", 0).is_none(),
        "the rerun removes the dead temporary"
    );

    // convert: killed mid-write, the target is absent.
    let big = t.path("big.npy");
    ok(&["generate", "bradley-terry", "--n", "2500", "--out", s(&big)]);
    let conv = t.path("conv.npy");
    let mut child = spawn(&["convert", s(&big), s(&conv), "--dtype", "f64"]);
    wait_until("convert writing", || {
        temp_of(dir, "conv.npy", 1 << 20).is_some()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!conv.exists(), "convert: no partial target");

    // solve: killed mid-run, the previous outputs stay whole.
    let g = game(&t, 31, "0.1");
    let out = t.path("out");
    ok(&[
        "solve",
        &g,
        "--beta",
        "0.05",
        "--iters",
        "5",
        "--out",
        s(&out),
    ]);
    let snapshot = |f: &str| std::fs::read(out.join(f)).unwrap();
    let (m, sm, p) = (
        snapshot("metrics.csv"),
        snapshot("summary.json"),
        snapshot("nash-mp.policy.npy"),
    );
    let mut child = spawn(&[
        "solve",
        &g,
        "--beta",
        "0.05",
        "--iters",
        "5000",
        "--out",
        s(&out),
    ]);
    wait_until("solve writing", || {
        temp_of(&out, "metrics.csv", 10_000).is_some()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(snapshot("metrics.csv"), m);
    assert_eq!(snapshot("summary.json"), sm);
    assert_eq!(snapshot("nash-mp.policy.npy"), p);
    ok(&[
        "solve",
        &g,
        "--beta",
        "0.05",
        "--iters",
        "5",
        "--out",
        s(&out),
    ]);
    assert!(
        temps(&out).is_empty(),
        "stale temporaries: {:?}",
        temps(&out)
    );
}

/// Mounts a 1 MiB tmpfs at `dir`, or says why it cannot.
fn small_tmpfs(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).unwrap();
    let o = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs", s(dir)])
        .output()
        .map_err(|e| format!("cannot run mount: {e}"))?;
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).trim().to_string());
    }
    Ok(())
}

struct Unmount(PathBuf);
impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn full_disk_gives_a_clear_error_and_no_partial_file() {
    let t = Tmp::new();
    let g = game(&t, 31, "0.1");
    let mnt = t.path("small");
    if let Err(why) = small_tmpfs(&mnt) {
        eprintln!("full_disk: skipped: cannot mount a tmpfs here ({why})");
        return;
    }
    let _guard = Unmount(mnt.clone());
    // generate: 4 MB into 1 MiB.
    let target = mnt.join("g.npy");
    fails(
        &[
            "generate",
            "bradley-terry",
            "--n",
            "1000",
            "--out",
            s(&target),
        ],
        &["g.npy", "No space left on device"],
    );
    assert!(!target.exists());
    assert!(
        temps(&mnt).is_empty(),
        "no temporary left: {:?}",
        temps(&mnt)
    );
    // solve: a filler leaves ~12 KiB, less than metrics.csv needs.
    std::fs::write(mnt.join("filler"), vec![1u8; (1 << 20) - (12 << 10)]).unwrap();
    let out = mnt.join("out");
    fails(
        &[
            "solve",
            &g,
            "--beta",
            "0.05",
            "--iters",
            "300",
            "--out",
            s(&out),
        ],
        &["No space left on device"],
    );
    assert!(!out.join("metrics.csv").exists() && !out.join("summary.json").exists());
    assert!(
        temps(&out).is_empty(),
        "no temporary left: {:?}",
        temps(&out)
    );
}

#[test]
fn sigkill_mid_sweep_leaves_the_previous_outputs() {
    let t = Tmp::new();
    let out = t.path("sweep");
    let cache = t.path("cache");
    let args = |seeds: &'static str| -> Vec<String> {
        [
            "sweep",
            "--preset",
            "quick",
            "--seeds",
            seeds,
            "--out",
            s(&out),
            "--cache",
            s(&cache),
        ]
        .iter()
        .map(|a| a.to_string())
        .collect()
    };
    ok(&refs(&args("0")));
    let files = ["runs.csv", "summary.csv", "summary.md", "sweep.json"];
    let before: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(out.join(f)).unwrap())
        .collect();
    // A different sweep into the same folder, killed while runs.csv is being written. Its
    // temporary exists from the sweep's start to its end, but its rows sit in the writer's
    // buffer until the commit: waiting for bytes on disk raced the sweep's completion.
    let mut child = spawn(&refs(&args("5,6")));
    wait_until("the sweep writing runs.csv", || {
        temp_of(&out, "runs.csv", 0).is_some()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    for (f, b) in files.iter().zip(&before) {
        assert_eq!(
            &std::fs::read(out.join(f)).unwrap(),
            b,
            "{f} changed by a killed sweep"
        );
    }
    // The same sweep again completes over the leftovers.
    ok(&refs(&args("5,6")));
    assert_ne!(std::fs::read(out.join("runs.csv")).unwrap(), before[0]);
}

/// The sweep of the resume tests: two uniform (dense `f32`, the batched kernel) and two
/// low-rank games, six runs each, with `extra` flags.
fn sweep_args(out: &Path, cache: &Path, betas: &str, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "sweep",
        "--families",
        "uniform,low-rank",
        "--sizes",
        "64",
        "--structured-sizes",
        "500",
        "--betas",
        betas,
        "--algos",
        "nash-mp,mmd,omwu",
        "--seeds",
        "0,1",
        "--iters",
        "100",
        "--out",
        s(out),
        "--cache",
        s(cache),
    ]
    .iter()
    .map(|x| x.to_string())
    .collect();
    a.extend(extra.iter().map(|x| x.to_string()));
    a
}

/// `runs.csv`, `summary.csv` and `summary.md` byte for byte; the checkpoint gone.
fn assert_same_sweep(full: &Path, part: &Path) {
    for f in ["runs.csv", "summary.csv", "summary.md"] {
        let (a, b) = (std::fs::read(full.join(f)), std::fs::read(part.join(f)));
        assert!(
            a.as_ref().unwrap() == b.as_ref().unwrap(),
            "{f} differs from the uninterrupted sweep's"
        );
    }
    assert!(
        !part.join("checkpoint").exists(),
        "checkpoint removed after completion"
    );
    assert!(
        temps(part).is_empty(),
        "stale temporaries: {:?}",
        temps(part)
    );
}

#[test]
fn sigkill_mid_sweep_then_resume_matches_an_uninterrupted_sweep() {
    let t = Tmp::new();
    let (full, part, cache) = (t.path("full"), t.path("part"), t.path("cache"));
    ok(&refs(&sweep_args(&full, &cache, "0.2,1", &[])));
    let every = ["--checkpoint-every", "10"];
    let mut child = spawn(&refs(&sweep_args(&part, &cache, "0.2,1", &every)));
    // Inside the second (uniform) game: its last run has saved a state.
    let run = part.join("checkpoint/game-0001/run-05.nmpsw");
    wait_until("a run's checkpoint in the second game", || run.exists());
    let finished = child.try_wait().unwrap().is_some();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!finished, "the sweep ended before it could be killed");
    assert!(part.join("checkpoint/game-0000.nmpsw").exists());
    assert!(!part.join("runs.csv").exists(), "no output before the end");
    let resume = [&every[..], &["--resume"]].concat();
    let o = nashmp(&refs(&sweep_args(&part, &cache, "0.2,1", &resume)));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("[1/4] uniform n=64 seed=0: 6 runs, done before the interruption"),
        "{err}"
    );
    assert_same_sweep(&full, &part);
}

#[test]
fn sigint_mid_sweep_saves_exits_130_refuses_changes_and_resumes() {
    let t = Tmp::new();
    let (full, part, cache) = (t.path("full"), t.path("part"), t.path("cache"));
    ok(&refs(&sweep_args(&full, &cache, "0.2,1", &[])));
    // No --checkpoint-every: completed games and, on SIGINT, the runs in progress are saved.
    let child = spawn(&refs(&sweep_args(&part, &cache, "0.2,1", &[])));
    wait_until("the first game saved", || {
        part.join("checkpoint/game-0000.nmpsw").exists()
    });
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill(1)");
    assert!(st.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "stderr: {err}");
    assert!(
        err.contains("interrupted") && err.contains("--resume") && !err.contains("panicked"),
        "{err}"
    );
    let ck = part.join("checkpoint");
    assert!(ck.join("sweep.txt").exists() && ck.join("game-0000.nmpsw").exists());
    assert!(!part.join("runs.csv").exists(), "no partial runs.csv");

    // A changed grid or game file: refused, naming what changed.
    fails(
        &refs(&sweep_args(&part, &cache, "0.5,1", &["--resume"])),
        &[
            "cannot resume",
            "sweep arguments changed",
            "then: betas=[0.2, 1.0]",
            "now: betas=[0.5, 1.0]",
        ],
    );
    let mut games: Vec<PathBuf> = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("uniform-n64"))
        .collect();
    games.sort();
    assert_eq!(games.len(), 2, "{games:?}");
    let original = std::fs::read(&games[0]).unwrap();
    std::fs::copy(&games[1], &games[0]).unwrap();
    fails(
        &refs(&sweep_args(&part, &cache, "0.2,1", &["--resume"])),
        &["cannot resume", "game file changed"],
    );
    std::fs::write(&games[0], original).unwrap();

    ok(&refs(&sweep_args(&part, &cache, "0.2,1", &["--resume"])));
    assert_same_sweep(&full, &part);
}

#[test]
fn sweep_resume_without_a_checkpoint_starts_afresh_with_a_warning() {
    let t = Tmp::new();
    let (out, cache) = (t.path("out"), t.path("cache"));
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a = sweep_args(&out, &cache, "1", extra);
        let at = a.iter().position(|x| x == "100").unwrap();
        a[at] = "5".into();
        a
    };
    let o = nashmp(&refs(&args(&["--resume", "--checkpoint-every", "2"])));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("warning: --resume: no checkpoint")
            && err.contains("starting from the beginning"),
        "{err}"
    );
    assert!(out.join("runs.csv").exists() && !out.join("checkpoint").exists());
    fails(
        &refs(&args(&["--checkpoint-every", "0"])),
        &["--checkpoint-every must be at least 1"],
    );
}

/// A sweep over both policy classes and both oracles (low-rank games; cells per game: tabular
/// exact nash-mp and omwu, tabular pg nash-mp, linear exact nash-mp and omwu, linear pg
/// nash-mp and omwu), with `extra` flags.
fn axes_sweep_args(out: &Path, cache: &Path, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "sweep",
        "--families",
        "low-rank",
        "--structured-sizes",
        "300,3000",
        "--betas",
        "0.5",
        "--algos",
        "nash-mp,omwu",
        "--seeds",
        "0",
        "--policy",
        "tabular,linear",
        "--oracle",
        "exact,pg",
        "--batch",
        "4000",
        "--tabular-batch-per-n",
        "10",
        "--iters",
        "60",
        "--out",
        s(out),
        "--cache",
        s(cache),
    ]
    .iter()
    .map(|x| x.to_string())
    .collect();
    a.extend(extra.iter().map(|x| x.to_string()));
    a
}

/// Killed while a parametric sampled run is in progress (its θ, counters and query stream
/// saved), a sweep over the policy and oracle axes resumes to the bytes of an uninterrupted one.
#[test]
fn sigkill_mid_parametric_sampled_run_then_resume_matches() {
    let t = Tmp::new();
    let (full, part, cache) = (t.path("full"), t.path("part"), t.path("cache"));
    ok(&refs(&axes_sweep_args(&full, &cache, &[])));
    let every = ["--checkpoint-every", "10"];
    let mut child = spawn(&refs(&axes_sweep_args(&part, &cache, &every)));
    // The second game's linear pg nash-mp run (cell 5) has saved a state mid-run.
    let run = part.join("checkpoint/game-0001/run-05.nmpsw");
    wait_until("a linear pg run's checkpoint in the second game", || {
        run.exists()
    });
    let finished = child.try_wait().unwrap().is_some();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!finished, "the sweep ended before it could be killed");
    let resume = [&every[..], &["--resume"]].concat();
    let o = nashmp(&refs(&axes_sweep_args(&part, &cache, &resume)));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_same_sweep(&full, &part);
}
