//! The distributed operator: this rank's shard plus the collectives that assemble `P x`.

use super::world;
use crate::error::Result;
use crate::game::sharded::{combine_in_order, DenseShard, PackedShard, Shard};
use crate::game::{
    check_shapes, column, columns_mut, DenseGame, Info, MatMut, MatRef, MemStack,
    PreferenceOperator, StackReq, Structure,
};
use crate::io::container::{Elem, Layout, TILE};
use crate::io::shards::ShardSet;
use mpi::datatype::{Partition, PartitionMut};
use mpi::traits::*;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

/// Where an apply's time went, summed over applies (this rank's view).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CommStats {
    pub applies: u64,
    /// Seconds computing this rank's rows (partials).
    pub compute: f64,
    /// Seconds waiting for the slowest rank (a barrier; only when measuring).
    pub wait: f64,
    /// Seconds in the collectives that move and add the vectors.
    pub comm: f64,
}

/// Rank `rank`'s part of a sharded game; `apply` is collective (every rank must call it, in
/// the same order, with the same `x`).
pub struct DistGame {
    n: usize,
    elem: Elem,
    layout: Layout,
    rank: usize,
    size: usize,
    shard: Shard,
    /// Rows owned by each rank.
    rows: Vec<Range<usize>>,
    manifest: PathBuf,
    stored_bytes: u64,
    shard_bytes: u64,
    /// Measure waiting separately (a barrier before the collectives).
    measure: bool,
    /// Locked only to add an apply's times, after it.
    stats: Mutex<CommStats>,
}

fn counts(v: impl Iterator<Item = usize>) -> Vec<i32> {
    v.map(|c| i32::try_from(c).expect("counts fit in 32 bits (n < 2^31)"))
        .collect()
}

impl DistGame {
    /// Maps and verifies shard `rank` (length, SHA-256) and validates its entries (range, and
    /// the skew condition where both entries are in this shard; see `validate`).
    pub fn open(set: &ShardSet, rank: usize, tol: Option<f64>) -> Result<Self> {
        let m = &set.manifest;
        let shard = Shard::open(set, rank)?;
        let tol = tol.unwrap_or(DenseGame::default_tol(m.dtype));
        let n = m.n();
        let rows: Vec<Range<usize>> = match m.layout {
            Layout::Dense => m.ranges(),
            _ => m
                .ranges()
                .iter()
                .map(|r| r.start * TILE..(r.end * TILE).min(n))
                .collect(),
        };
        match &shard {
            Shard::Dense(d) => d.validate_local(tol)?,
            Shard::Packed(p) => p.validate(tol)?,
        }
        Ok(DistGame {
            n,
            elem: m.dtype,
            layout: m.layout,
            rank,
            size: set.len(),
            shard,
            rows,
            manifest: set.manifest_path.clone(),
            stored_bytes: m.shards.iter().map(|s| s.bytes).sum(),
            shard_bytes: m.shards[rank].bytes,
            measure: false,
            stats: Mutex::new(CommStats::default()),
        })
    }

    /// Times the wait for the slowest rank apart from the communication (adds a barrier).
    pub fn measure(&mut self, on: bool) {
        self.measure = on;
    }

    /// Time spent so far, and resets the counters.
    pub fn take_stats(&self) -> CommStats {
        std::mem::take(&mut *self.stats.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Bytes of this rank's shard.
    pub fn shard_bytes(&self) -> u64 {
        self.shard_bytes
    }

    /// Doubles moved per rank per apply (sent + received), at most.
    pub fn words_per_apply(&self) -> u64 {
        let own = self.rows[self.rank].len() as u64;
        let gather = self.n as u64 - own;
        match self.layout {
            Layout::Dense => own + gather,
            _ => {
                let send = (self.n - self.rows[self.rank].start) as u64 - own;
                let recv = own * self.rank as u64;
                send + recv + own + gather
            }
        }
    }

    fn gather(&self, own: &[f64], out: &mut [f64]) {
        let c = counts(self.rows.iter().map(|r| r.len()));
        let d = counts(self.rows.iter().map(|r| r.start));
        let mut part = PartitionMut::new(out, &c[..], &d[..]);
        world().all_gather_varcount_into(own, &mut part);
    }

    fn wait(&self) -> f64 {
        if !self.measure {
            return 0.0;
        }
        let t = Instant::now();
        world().barrier();
        t.elapsed().as_secs_f64()
    }

    fn apply_dense(
        &self,
        d: &DenseShard,
        x: &[f64],
        out: &mut [f64],
        stack: &mut MemStack,
    ) -> (f64, f64, f64) {
        let (mut own, stack) = stack.make_with(d.rows().len(), |_| 0.0f64);
        let t0 = Instant::now();
        d.apply_rows(x, &mut own, stack);
        let compute = t0.elapsed().as_secs_f64();
        let wait = self.wait();
        let t1 = Instant::now();
        self.gather(&own, out);
        (compute, wait, t1.elapsed().as_secs_f64())
    }

    fn apply_packed(
        &self,
        p: &PackedShard,
        x: &[f64],
        out: &mut [f64],
        stack: &mut MemStack,
    ) -> (f64, f64, f64) {
        let (r, size) = (self.rank, self.size);
        let own = self.rows[r].len();
        let (mut partial, stack) = stack.make_with(p.partial_len(), |_| 0.0f64);
        let (mut recv, stack) = stack.make_with((r + 1) * own, |_| 0.0f64);
        let t0 = Instant::now();
        p.partial(x, &mut partial, stack);
        let compute = t0.elapsed().as_secs_f64();
        let wait = self.wait();
        let t1 = Instant::now();
        // Partial rows of rank q ≥ r go to rank q; rank r receives its rows from ranks s ≤ r.
        let base = self.rows[r].start;
        let sc = counts((0..size).map(|q| if q >= r { self.rows[q].len() } else { 0 }));
        let sd = counts((0..size).map(|q| if q >= r { self.rows[q].start - base } else { 0 }));
        let rc = counts((0..size).map(|q| if q <= r { own } else { 0 }));
        let rd = counts((0..size).map(|q| if q <= r { q * own } else { 0 }));
        {
            let send = Partition::new(&partial[..], &sc[..], &sd[..]);
            let mut got = PartitionMut::new(&mut recv[..], &rc[..], &rd[..]);
            world().all_to_all_varcount_into(&send, &mut got);
        }
        let segs: Vec<&[f64]> = recv.chunks(own.max(1)).take(r + 1).collect();
        let mine = &mut partial[..own];
        combine_in_order(&segs, mine);
        self.gather(mine, out);
        (compute, wait, t1.elapsed().as_secs_f64())
    }
}

impl PreferenceOperator for DistGame {
    fn n(&self) -> usize {
        self.n
    }

    /// Collective: every rank calls it with the same `rhs` and gets the same `out`; column by
    /// column, one set of collectives each.
    fn apply(&self, out: MatMut<'_, f64>, rhs: MatRef<'_, f64>, stack: &mut MemStack) {
        check_shapes(self.n, &out, &rhs);
        for (v, out) in columns_mut(out).enumerate() {
            let x = column(rhs, v);
            let (compute, wait, comm) = match &self.shard {
                Shard::Dense(d) => self.apply_dense(d, x, out, stack),
                Shard::Packed(p) => self.apply_packed(p, x, out, stack),
            };
            let mut st = self.stats.lock().unwrap_or_else(|e| e.into_inner());
            st.applies += 1;
            st.compute += compute;
            st.wait += wait;
            st.comm += comm;
        }
    }

    fn apply_scratch(&self, _k: usize) -> StackReq {
        let own = self.rows[self.rank].len();
        match &self.shard {
            Shard::Dense(d) => {
                StackReq::all_of(&[StackReq::new::<f64>(own), d.apply_rows_scratch()])
            }
            Shard::Packed(p) => StackReq::all_of(&[
                StackReq::new::<f64>(p.partial_len()),
                StackReq::new::<f64>((self.rank + 1) * own),
                p.partial_scratch(),
            ]),
        }
    }

    /// Only entries held by this rank's shard (dense: its rows; packed: its tile rows' upper
    /// tiles and their mirror images).
    ///
    /// # Panics
    /// If `(i, j)` is not held by this rank (sampled queries do not run distributed).
    fn entry(&self, i: usize, j: usize) -> f64 {
        match &self.shard {
            Shard::Dense(d) => {
                assert!(
                    d.rows().contains(&i),
                    "row {i} is not on rank {}",
                    self.rank
                );
                d.entry(i, j)
            }
            Shard::Packed(p) => {
                let (lo, hi) = if i / TILE <= j / TILE { (i, j) } else { (j, i) };
                assert!(
                    p.tile_rows().contains(&(lo / TILE)),
                    "entry ({i}, {j}) is not on rank {}",
                    self.rank
                );
                let v = p.stored_entry(lo, hi);
                if lo == i {
                    v
                } else {
                    1.0 - v
                }
            }
        }
    }

    fn precision(&self) -> f64 {
        match self.elem {
            Elem::F32 => 1e-7,
            Elem::F64 => 1e-15,
            Elem::U16 => 8e-6,
        }
    }

    /// This rank's part of the check: every entry of its shard is finite and in `[0, 1]`; the
    /// skew condition is checked where both entries are in the shard (dense: the diagonal
    /// block; packed: the diagonal tiles, i.e. every pair the layout stores twice). Across dense
    /// shards the pairs `P[i][j]`, `P[j][i]` are on different ranks: their consistency rests
    /// on the shards' checksums, written by `generate`/`convert` from a validated game (the
    /// single-process engine checks them all when it opens the set).
    fn validate(&self, tol: Option<f64>) -> Result<()> {
        let tol = tol.unwrap_or(DenseGame::default_tol(self.elem));
        match &self.shard {
            Shard::Dense(d) => d.validate_local(tol),
            Shard::Packed(p) => p.validate(tol),
        }
    }

    /// `stored_bytes`: the whole game (all ranks) read by one apply.
    fn info(&self) -> Info<'_> {
        let layout = format!(
            "{} {}",
            if self.layout == Layout::Dense {
                "dense"
            } else {
                "packed"
            },
            self.elem.name()
        );
        Info {
            description: format!(
                "{layout} {}x{} ({} bytes) in {} shards on {} MPI ranks from {}",
                self.n,
                self.n,
                self.stored_bytes,
                self.size,
                self.size,
                self.manifest.display()
            ),
            layout,
            stored_bytes: self.stored_bytes,
            structure: Structure::None,
        }
    }
}
