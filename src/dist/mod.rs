//! Games sharded across MPI ranks (`--features mpi`, launched by `mpirun -np R`).
//!
//! Rank `r` maps only shard `r` of a shard set (`io::shards`) and computes its part of `P x`;
//! the vector is assembled with collectives, so every rank holds the whole, identical product
//! and runs the same driver on identical replicated vectors (prox, log-sum-exp, metrics, `π*`):
//! those are `O(n)` per iteration against the apply's `O(n²/R)`, and replicating them needs no
//! communication beyond the apply's (docs/scale-out.md measures both).
//!
//! - **Dense** (row shards): rank `r` computes its rows with the unsharded per-row kernel, then
//!   `MPI_Allgatherv` assembles `P x`: bit-identical to one process for every split.
//! - **Packed** (tile-row shards): rank `r` computes a partial vector over rows `A_r·256..n`
//!   (its own rows and the mirrored contributions to later rows, `game::sharded`); an
//!   `MPI_Alltoallv` hands each rank the partials of its rows from the ranks before it, which it
//!   adds in rank order (a fixed order, not `MPI_Allreduce`'s, so the bits do not depend on the
//!   MPI library's reduction algorithm), then `MPI_Allgatherv` assembles `P x`. The bits equal
//!   the single-process apply of the same shard set and differ from the unsharded game's by
//!   reassociation only (`game::sharded::packed_reassociation_bound`).
//!
//! Faults: opening is collective. Every rank reads the manifest, compares its SHA-256 with rank
//! 0's, checks that the job has as many ranks as the manifest has shards, maps and verifies its
//! own shard (length, SHA-256, entries); then the ranks agree ([`agree`]): if any failed, every
//! rank returns the same [`Error::Distributed`] naming the first failing rank and its file, and
//! the binary exits 2 on every rank. Errors after that (mid-run) abort the job.

mod game;

pub use game::{CommStats, DistGame};

use crate::error::{Error, Result};
use crate::io::shards::{self, ShardSet};
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use std::path::Path;
use std::sync::OnceLock;

/// `(rank, size)` of a job with more than one rank; unset otherwise.
static CONTEXT: OnceLock<(usize, usize)> = OnceLock::new();

/// Whether this process was started by an MPI launcher (`mpirun`, `srun`, `mpiexec`).
pub fn launched() -> bool {
    [
        "OMPI_COMM_WORLD_SIZE",
        "PMIX_RANK",
        "PMI_RANK",
        "PMI_SIZE",
        "MPI_LOCALNRANKS",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some())
}

/// Records the job's rank and size (called once, after `MPI_Init`).
pub fn set_context(rank: usize, size: usize) {
    if size > 1 {
        let _ = CONTEXT.set((rank, size));
    }
}

/// `(rank, size)` when running distributed (more than one rank).
pub fn context() -> Option<(usize, usize)> {
    CONTEXT.get().copied()
}

/// Whether this process writes the output files (rank 0, or a single process).
pub fn is_writer() -> bool {
    context().is_none_or(|(r, _)| r == 0)
}

pub(crate) fn world() -> SimpleCommunicator {
    SimpleCommunicator::world()
}

/// Every rank learns whether any rank failed: `Ok` everywhere if none did, otherwise the same
/// [`Error::Distributed`] everywhere, naming the first failing rank (and how many failed).
pub fn agree<T>(local: Result<T>) -> Result<T> {
    let w = world();
    let rank = w.rank() as usize;
    let msg = match &local {
        Ok(_) => String::new(),
        Err(e) => format!("rank {rank}: {}", chain(e)),
    };
    let failed = i32::from(local.is_err());
    let mut all = vec![0i32; w.size() as usize];
    w.all_gather_into(&failed, &mut all[..]);
    if all.iter().all(|&f| f == 0) {
        return local;
    }
    let len = msg.len() as i32;
    let mut lens = vec![0i32; all.len()];
    w.all_gather_into(&len, &mut lens[..]);
    let displs: Vec<i32> = lens
        .iter()
        .scan(0, |acc, &l| {
            let d = *acc;
            *acc += l;
            Some(d)
        })
        .collect();
    let mut buf = vec![0u8; lens.iter().map(|&l| l as usize).sum()];
    {
        let mut part = mpi::datatype::PartitionMut::new(&mut buf[..], &lens[..], &displs[..]);
        w.all_gather_varcount_into(msg.as_bytes(), &mut part);
    }
    let first = all.iter().position(|&f| f != 0).expect("one failed");
    let (d, l) = (displs[first] as usize, lens[first] as usize);
    let mut text = String::from_utf8_lossy(&buf[d..d + l]).into_owned();
    let others = all.iter().filter(|&&f| f != 0).count() - 1;
    if others > 0 {
        text.push_str(&format!(
            " (and {others} other rank{} failed too)",
            if others == 1 { "" } else { "s" }
        ));
    }
    Err(Error::Distributed(text))
}

/// The error and its causes on one line.
fn chain(e: &Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// Broadcasts rank 0's bytes (`None`: nothing) to every rank.
pub fn broadcast_bytes(mine: Option<Vec<u8>>) -> Option<Vec<u8>> {
    let w = world();
    let root = w.process_at_rank(0);
    let mut len: u64 = mine.as_ref().map_or(u64::MAX, |b| b.len() as u64);
    root.broadcast_into(&mut len);
    if len == u64::MAX {
        return None;
    }
    let mut buf = mine.unwrap_or_else(|| vec![0u8; len as usize]);
    buf.resize(len as usize, 0);
    // Broadcast in pieces below 2 GiB (MPI counts are 32-bit).
    for chunk in buf.chunks_mut(1 << 30) {
        root.broadcast_into(chunk);
    }
    Some(buf)
}

/// Ends the whole job with `code` (a mid-run error on one rank: the others may be waiting in a
/// collective and would never return).
pub fn abort(code: i32) -> ! {
    world().abort(code)
}

/// Opens the game at `path` as this rank's part of a distributed operator, collectively, when
/// running distributed; `None` on a single process.
pub fn open(
    path: &Path,
    tol: Option<f64>,
) -> Result<Option<Box<dyn crate::game::PreferenceOperator>>> {
    if context().is_none() {
        return Ok(None);
    }
    Ok(Some(Box::new(open_dist(path, tol)?)))
}

/// Opens this rank's shard of the set at `path`, collectively (see the module docs).
///
/// # Panics
/// If not running distributed ([`context`] is `None`).
pub fn open_dist(path: &Path, tol: Option<f64>) -> Result<DistGame> {
    let (rank, size) = context().expect("running distributed");
    let w = world();
    // 1. The manifest (every rank its own copy: shards may live on each host's local disk).
    let set = match shards::manifest_path(path) {
        Some(m) => ShardSet::open(&m),
        None => Err(Error::Param(format!(
            "{}: under mpirun -np {size} the game must be a shard set of {size} shards \
             (nashmp convert {} DIR --shards {size}, or nashmp generate … --shards {size} --out DIR)",
            path.display(),
            path.display()
        ))),
    };
    // 2. Every rank's manifest must be rank 0's, byte for byte.
    let digest = |s: &ShardSet| -> Result<[u8; 32]> {
        let bytes = std::fs::read(&s.manifest_path).map_err(|e| Error::io(&s.manifest_path, e))?;
        let hex = shards::sha256_hex(&bytes);
        let mut d = [0u8; 32];
        for (k, b) in d.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * k..2 * k + 2], 16).expect("hex");
        }
        Ok(d)
    };
    let mine = set.as_ref().ok().map(digest).transpose();
    let mut root_digest = match (&mine, rank) {
        (Ok(Some(d)), 0) => *d,
        _ => [0u8; 32],
    };
    w.process_at_rank(0).broadcast_into(&mut root_digest[..]);
    let opened = (|| {
        let set = set?;
        let d = mine?.expect("set opened");
        if rank != 0 && root_digest != [0u8; 32] && d != root_digest {
            return Err(Error::Container {
                path: set.manifest_path.clone(),
                reason:
                    "this manifest differs from rank 0's (each rank must see the same shard set)"
                        .into(),
            });
        }
        // 3. One shard per rank.
        if set.len() != size {
            return Err(Error::Container {
                path: set.manifest_path.clone(),
                reason: format!(
                    "the manifest lists {} shards but the job has {size} ranks (run mpirun -np {})",
                    set.len(),
                    set.len()
                ),
            });
        }
        // 4. This rank's shard: length, SHA-256, entries.
        DistGame::open(&set, rank, tol)
    })();
    agree(opened)
}

/// `out = max over ranks of v`.
pub fn world_all_reduce_max(v: f64, out: &mut f64) {
    world().all_reduce_into(&v, out, mpi::collective::SystemOperation::max());
}

/// Waits for every rank.
pub fn world_barrier() {
    world().barrier();
}
