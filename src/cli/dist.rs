//! `mpirun -np R nashmp solve|equilibrium|bench …`: the same commands on a shard set of `R`
//! shards, one per rank (`--features mpi`; the library side is `crate::dist`).
//!
//! Every rank runs the same command on identical replicated vectors. Only rank 0 writes to
//! `--out`: the other ranks write their (identical) outputs to a private temporary folder that
//! is removed at the end, and their stdout is silenced. With `--resume`, rank 0 reads the
//! checkpoint and broadcasts it, so the other ranks resume from the same state (and `--out`
//! need not be on a shared file system).
//!
//! Errors: a failure the ranks agreed on (opening the game, preparing the outputs) is printed
//! once, by rank 0, and every rank exits with status 2. Any other error on one rank (mid-run)
//! is printed with its rank and ends the whole job (`MPI_Abort`, status 2): the other ranks
//! may be waiting for it in a collective.
//!
//! Ctrl-C: mpirun forwards SIGINT to every rank; each stops at its next iteration and saves,
//! and the first to return ends the job (`MPI_Abort`, non-zero), within seconds (measured: 2 s).
//! The stops are not coordinated, so rank 0 may be ended before its save: `--resume` then
//! continues from its previous checkpoint, which is as good (the state is replicated).

use super::bench::BenchArgs;
use super::oracle_args::OracleKind;
use super::{Cli, Command};
use crate::dist;
use crate::error::Error;
use crate::game::apply_vec;
use mpi::environment::Universe;
use mpi::traits::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

static STARTED: AtomicBool = AtomicBool::new(false);

/// An MPI job this process is part of.
pub struct Session {
    universe: Universe,
    rank: usize,
    size: usize,
    tmp: Option<PathBuf>,
}

impl Session {
    /// Initialises MPI when the process was started by an MPI launcher (once per process).
    pub fn start() -> anyhow::Result<Option<Session>> {
        if !dist::launched() || STARTED.swap(true, Ordering::SeqCst) {
            return Ok(None);
        }
        let (universe, _) = mpi::initialize_with_threading(mpi::Threading::Funneled)
            .ok_or_else(|| anyhow::anyhow!("MPI was already initialised"))?;
        let w = universe.world();
        let (rank, size) = (w.rank() as usize, w.size() as usize);
        dist::set_context(rank, size);
        Ok(Some(Session {
            universe,
            rank,
            size,
            tmp: None,
        }))
    }

    /// Runs the command as this rank's part of the job.
    pub fn run(mut self, mut cli: Cli) -> anyhow::Result<()> {
        cli.threads = None; // the pool is built already
        if self.size == 1 {
            let r = super::run(cli);
            drop(self.universe);
            return r;
        }
        if self.rank != 0 {
            silence_stdout();
        }
        let quiet = cli.quiet;
        let prepared = dist::agree(self.prepare(&mut cli.command));
        let result = match prepared {
            Err(e) => Err(e.into()),
            Ok(()) => match cli.command {
                Command::Bench(a) => bench(&a, self.rank, self.size),
                command => super::run(Cli {
                    threads: None,
                    quiet,
                    command,
                }),
            },
        };
        self.finish(result)
    }

    /// Points the outputs of ranks other than 0 at a private folder; hands rank 0's
    /// checkpoint to every rank on `--resume`. Collective.
    fn prepare(&mut self, command: &mut Command) -> crate::Result<()> {
        let private = || -> crate::Result<PathBuf> {
            remove_stale_private_dirs();
            let d = std::env::temp_dir().join(format!(
                "nashmp-rank{}-{}",
                self.rank,
                std::process::id()
            ));
            std::fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
            Ok(d)
        };
        match command {
            Command::Solve(a) => {
                // Every rank runs the same collective checks even if one of them failed.
                let mut local = Ok(());
                if a.oracle.oracle != OracleKind::Exact {
                    local = Err(Error::Param(
                        "--oracle sampled|pg draws single entries of the matrix, which live on \
                         other ranks; under mpirun only --oracle exact runs"
                            .into(),
                    ));
                }
                let ck = a.out.join(crate::run::checkpoint::FILE_NAME);
                let mine = if self.rank == 0 && a.resume && ck.exists() {
                    match std::fs::read(&ck) {
                        Ok(b) => Some(b),
                        Err(e) => {
                            local = local.and(Err(Error::io(&ck, e)));
                            None
                        }
                    }
                } else {
                    None
                };
                let saved = dist::broadcast_bytes(mine);
                if self.rank != 0 {
                    let d = private()?;
                    if let Some(b) = saved {
                        let p = d.join(crate::run::checkpoint::FILE_NAME);
                        std::fs::write(&p, b).map_err(|e| Error::io(&p, e))?;
                    }
                    a.out = d.clone();
                    self.tmp = Some(d);
                }
                local
            }
            Command::Equilibrium(a) => {
                if self.rank != 0 {
                    let d = private()?;
                    a.out = d.join("equilibrium.npy");
                    self.tmp = Some(d);
                }
                Ok(())
            }
            Command::Bench(_) => Ok(()),
            _ => Err(Error::Param(format!(
                "under mpirun -np {} only solve, equilibrium and bench run distributed; \
                 run this command as a single process",
                self.size
            ))),
        }
    }

    fn finish(self, result: anyhow::Result<()>) -> anyhow::Result<()> {
        if let Some(d) = &self.tmp {
            let _ = std::fs::remove_dir_all(d);
        }
        let _ = std::io::stdout().flush();
        match result {
            Ok(()) => {
                drop(self.universe);
                Ok(())
            }
            Err(e) if matches!(e.downcast_ref::<Error>(), Some(Error::Distributed(_))) => {
                // Every rank has this error: rank 0 reports it, the others leave quietly, after
                // it has (mpirun ends the job at the first non-zero exit).
                if self.rank == 0 {
                    eprintln!("error: {e:#}");
                    let _ = std::io::stderr().flush();
                }
                dist::world_barrier();
                drop(self.universe);
                std::process::exit(2)
            }
            Err(e) => {
                eprintln!("error: rank {} of {}: {e:#}", self.rank, self.size);
                let _ = std::io::stderr().flush();
                dist::abort(2)
            }
        }
    }
}

/// Removes the private folders of ranks whose process is gone (a rank killed outright, or
/// ended by another rank's `MPI_Abort`, cannot remove its own). Linux: no `/proc/PID`.
fn remove_stale_private_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("nashmp-rank")) else {
            continue;
        };
        let pid = rest.rsplit('-').next().and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// Ranks other than 0 print nothing on stdout (rank 0 prints the command's report).
fn silence_stdout() {
    use std::os::fd::AsRawFd;
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = std::io::stdout().flush();
        // SAFETY: dup2 on two valid descriptors (ours, open; and stdout) replaces fd 1 with
        // /dev/null; Rust's stdout handle keeps writing to fd 1 and never closes it.
        unsafe {
            libc::dup2(null.as_raw_fd(), 1);
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The largest value over the ranks.
fn max_over_ranks(v: f64) -> f64 {
    let mut out = 0.0f64;
    dist::world_all_reduce_max(v, &mut out);
    out
}

/// `nashmp bench` under mpirun: the distributed apply, interleaved over the games, with the
/// time split into this rank's compute, the wait for the slowest rank, and the collectives.
fn bench(a: &BenchArgs, rank: usize, size: usize) -> anyhow::Result<()> {
    if a.reps == 0 {
        return Err(
            dist::agree::<()>(Err(Error::Param("--reps must be at least 1".into())))
                .unwrap_err()
                .into(),
        );
    }
    let mut games = Vec::new();
    for p in &a.games {
        let mut g = dist::open_dist(p, None)?;
        g.measure(true);
        games.push(g);
    }
    let xs: Vec<Vec<f64>> = games
        .iter()
        .map(|g| {
            let n = crate::game::PreferenceOperator::n(g);
            (0..n)
                .map(|i| (1 + i % 7) as f64 / (4.0 * n as f64))
                .collect()
        })
        .collect();
    let mut outs: Vec<Vec<f64>> = xs.iter().map(|x| vec![0.0; x.len()]).collect();
    use crate::game::PreferenceOperator;
    for ((g, x), o) in games.iter().zip(&xs).zip(outs.iter_mut()) {
        apply_vec(g, x, o); // warm-up: pages the shard in
        g.take_stats();
    }
    let mut times = vec![Vec::with_capacity(a.reps); games.len()];
    for _ in 0..a.reps {
        for (k, g) in games.iter().enumerate() {
            dist::world_barrier();
            let t = Instant::now();
            apply_vec(g, &xs[k], &mut outs[k]);
            times[k].push(t.elapsed().as_secs_f64());
        }
    }
    if rank == 0 {
        println!(
            "mpi ranks={size}  threads/rank={}  reps={}  (medians of interleaved runs; compute, \
             wait and comm are means, max over ranks)",
            rayon::current_num_threads(),
            a.reps
        );
    }
    for ((g, path), t) in games.iter().zip(&a.games).zip(times.iter_mut()) {
        let st = g.take_stats();
        let per = |v: f64| v / st.applies.max(1) as f64;
        let med = max_over_ranks(median(t));
        let compute = max_over_ranks(per(st.compute));
        let wait = max_over_ranks(per(st.wait));
        let comm = max_over_ranks(per(st.comm));
        let words = g.words_per_apply() as f64;
        let words = max_over_ranks(words);
        let shard = max_over_ranks(g.shard_bytes() as f64);
        if rank == 0 {
            println!(
                "apply {} ({}, n={}): {:.3} ms; compute {:.3} ms ({:.2} GB/s per rank over a {:.0} MB shard), \
                 wait {:.3} ms, comm {:.3} ms ({:.1} % of the apply, {:.2} MB moved per rank)",
                path.display(),
                g.info().layout,
                g.n(),
                med * 1e3,
                compute * 1e3,
                shard / compute / 1e9,
                shard / 1e6,
                wait * 1e3,
                comm * 1e3,
                100.0 * comm / med,
                words * 8.0 / 1e6
            );
        }
    }
    Ok(())
}
