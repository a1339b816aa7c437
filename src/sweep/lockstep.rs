//! Lock-step execution of several solves on one game, their operator applications gathered into
//! one batched [`PreferenceOperator::apply`] (an `n × k` matrix) per sub-step.
//!
//! Each job (an algorithm run, an equilibrium solve …) runs unchanged on its own thread and sees
//! the game through a [`Lane`]: a `PreferenceOperator` whose `apply` posts its vector to a shared
//! rendezvous and blocks. When every job still running is blocked in `apply`, the last one to
//! arrive performs one batched application for all of them (in lane order) and wakes them. A
//! dense game is then read once per sub-step for all jobs instead of once per job: a Nash-MP run
//! (two applies per iteration) and an MMD run (one) simply take their turns, and the number of
//! passes is the largest number of applies any one job makes, not their sum. A job that ends
//! early (finished, failed, interrupted, or panicked) is retired at once, so the others never
//! wait for it.
//!
//! **Determinism.** A vector's product does not depend on which other vectors share its batch,
//! nor on how many there are: every storage's batched apply gives each column the bits of its
//! single apply (the batched kernels keep the single kernel's lanes and summation order; see
//! `kernels::batch` and `kernels::tile`). So a job run here ends on the bits of the same job run
//! alone, and a sweep resumed from a checkpoint (whose runs restart at different iterations, some
//! already finished) ends on the bits of an uninterrupted one. A batch carries exactly the
//! vectors at hand: no padding, and one vector goes to the single kernel.
//!
//! The batch is gathered into one contiguous `n × k` matrix (the requested vectors, in lane
//! order) and applied with the hub's lock released: the waiting jobs hold no lock while the
//! parallel apply runs, and its workspace is the hub's own buffer, reused across sub-steps.
//!
//! Groups of fewer than [`MIN_BATCH`] jobs still apply vector by vector (no rendezvous
//! overhead for a pair); the bits are the same either way.

use crate::error::Result;
use crate::game::{
    column, Info, MatMut, MatRef, MemBuffer, MemStack, PreferenceOperator, StackReq,
};
use std::sync::{Condvar, Mutex, MutexGuard};

/// Groups of fewer jobs than this apply every vector alone (the same bits as batched).
pub const MIN_BATCH: usize = 3;

/// What happened on the shared operator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatchStats {
    /// Operator calls made: one per batch, one per vector applied alone.
    pub passes: u64,
    /// Vectors applied in total (the passes the jobs would have made alone).
    pub vectors: u64,
    /// Batched passes by the number of vectors they carried (`sizes[k]`: passes of `k`
    /// vectors, the last entry `SIZES - 1` or more); a diagnostic, not saved.
    #[serde(skip)]
    pub sizes: [u32; SIZES],
}

/// Entries of [`BatchStats::sizes`].
pub const SIZES: usize = 17;

impl BatchStats {
    /// Adds another's counts.
    pub fn add(&mut self, o: &BatchStats) {
        self.passes += o.passes;
        self.vectors += o.vectors;
        for (a, b) in self.sizes.iter_mut().zip(&o.sizes) {
            *a += b;
        }
    }

    /// The histogram of batch sizes, e.g. `1:118 3:39 12:38` (sizes that occurred only).
    pub fn sizes_line(&self) -> String {
        let v: Vec<String> = (0..SIZES)
            .filter(|&k| self.sizes[k] > 0)
            .map(|k| format!("{k}:{}", self.sizes[k]))
            .collect();
        v.join(" ")
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Idle,
    Requested,
    Done,
}

/// A lane's request: `len` vectors (one for `apply` of a single column, several for a batch),
/// column-major in `x`, their products in `out`.
struct Slot {
    x: Vec<f64>,
    out: Vec<f64>,
    len: usize,
    state: SlotState,
}

struct State {
    slots: Vec<Slot>,
    /// Jobs still running.
    live: usize,
    /// Jobs blocked in `apply`.
    waiting: usize,
    stats: BatchStats,
    /// The buffers of a batched apply, lent to the job that fires it.
    batch: Batch,
}

/// The gathered vectors, their products (both `n × k`, column-major) and the apply's
/// workspace, kept across sub-steps.
struct Batch {
    x: Vec<f64>,
    out: Vec<f64>,
    lanes: Vec<usize>,
    mem: MemBuffer,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            x: Vec::new(),
            out: Vec::new(),
            lanes: Vec::new(),
            mem: MemBuffer::new(StackReq::EMPTY),
        }
    }
}

/// The rendezvous shared by the lanes of one [`run_lockstep`] call.
struct Hub<'a> {
    op: &'a dyn PreferenceOperator,
    /// Apply the whole batch in one call (else vector by vector).
    batched: bool,
    state: Mutex<State>,
    cv: Condvar,
}

impl Hub<'_> {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A job that panicked leaves consistent state behind (its guard retires it), so a poisoned
        // lock is still usable; the panic itself resurfaces when the scope joins.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies every requested vector in one batch if all running jobs are waiting. The lock is
    /// released during the apply: every other running job is then blocked waiting for its
    /// product, so nothing else changes the state meanwhile (a job that panics in the apply
    /// withdraws its request when it retires, and the others' requests, still pending, fire
    /// again).
    fn fire_if_ready<'s>(&'s self, mut st: MutexGuard<'s, State>) -> MutexGuard<'s, State> {
        if st.waiting == 0 || st.waiting < st.live {
            return st;
        }
        let n = self.op.n();
        let mut b = std::mem::take(&mut st.batch);
        b.lanes.clear();
        b.lanes.extend(
            st.slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.state == SlotState::Requested)
                .map(|(i, _)| i),
        );
        let k: usize = b.lanes.iter().map(|&l| st.slots[l].len).sum();
        b.x.clear();
        for &lane in &b.lanes {
            b.x.extend_from_slice(&st.slots[lane].x);
        }
        b.out.resize(n * k, 0.0);
        drop(st);
        let req = if self.batched {
            self.op.apply_scratch(k)
        } else {
            self.op.apply_scratch(1)
        };
        if !MemStack::new(&mut b.mem).can_hold(req) {
            b.mem = MemBuffer::new(req);
        }
        let stack = MemStack::new(&mut b.mem);
        let passes = if self.batched {
            let x = MatRef::from_column_major_slice(&b.x, n, k);
            let out = MatMut::from_column_major_slice_mut(&mut b.out, n, k);
            self.op.apply(out, x, stack);
            1
        } else {
            for (x, o) in b.x.chunks(n.max(1)).zip(b.out.chunks_mut(n.max(1))) {
                self.op.apply(
                    crate::game::as_batch_mut(o),
                    crate::game::as_batch(x),
                    stack,
                );
            }
            k as u64
        };
        let mut st = self.lock();
        let mut at = 0;
        for &lane in &b.lanes {
            let slot = &mut st.slots[lane];
            let m = slot.len * n;
            slot.out.clear();
            slot.out.extend_from_slice(&b.out[at..at + m]);
            at += m;
            slot.state = SlotState::Done;
        }
        st.batch = b;
        st.stats.passes += passes;
        st.stats.vectors += k as u64;
        if self.batched {
            st.stats.sizes[k.min(SIZES - 1)] += 1;
        } else {
            st.stats.sizes[1] += k as u32;
        }
        st.waiting = 0;
        self.cv.notify_all();
        st
    }

    /// Posts `rhs` (one lane's columns) to the next pass and waits for their products.
    fn apply(&self, lane: usize, mut out: MatMut<'_, f64>, rhs: MatRef<'_, f64>) {
        let mut st = self.lock();
        {
            let slot = &mut st.slots[lane];
            slot.x.clear();
            for v in 0..rhs.ncols() {
                slot.x.extend_from_slice(column(rhs, v));
            }
            slot.len = rhs.ncols();
            slot.state = SlotState::Requested;
        }
        st.waiting += 1;
        st = self.fire_if_ready(st);
        while st.slots[lane].state != SlotState::Done {
            st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        let slot = &mut st.slots[lane];
        let n = rhs.nrows();
        for (v, o) in crate::game::columns_mut(out.as_mut()).enumerate() {
            o.copy_from_slice(&slot.out[v * n..(v + 1) * n]);
        }
        slot.state = SlotState::Idle;
    }

    /// A job ended (normally, with an error, or by a panic — possibly inside a batched apply it
    /// was making, which leaves its own request pending: withdraw it).
    fn retire(&self, lane: usize) {
        let mut st = self.lock();
        if st.slots[lane].state == SlotState::Requested {
            st.slots[lane].state = SlotState::Idle;
            st.waiting -= 1;
        }
        st.live -= 1;
        drop(self.fire_if_ready(st));
    }
}

/// One job's view of the shared game.
///
/// An apply of several columns posts them all to one pass and keeps their products: a later
/// single-column apply of the same bits is answered from there, without a pass. A job that
/// knows a vector it will need before it needs it (see [`super::lookahead`]) prefetches it with
/// the vector it needs now, and the two share a pass instead of taking one each. Any other
/// single vector drops what is kept.
pub struct Lane<'h, 'a> {
    hub: &'h Hub<'a>,
    id: usize,
    /// Inputs and products of the last multi-column apply not asked for again yet.
    kept: Mutex<Vec<(Vec<f64>, Vec<f64>)>>,
}

impl Lane<'_, '_> {
    /// The kept product of `x`, if any (taken: each is answered once).
    fn take_kept(&self, x: &[f64], out: &mut [f64]) -> bool {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let same = |v: &[f64]| v.iter().zip(x).all(|(a, b)| a.to_bits() == b.to_bits());
        match kept.iter().position(|(v, _)| v.len() == x.len() && same(v)) {
            Some(i) => {
                out.copy_from_slice(&kept.swap_remove(i).1);
                true
            }
            None => {
                kept.clear();
                false
            }
        }
    }
}

/// Posts the columns to the hub and waits for their products: the batching is the hub's, so
/// a lane needs no workspace of its own.
impl PreferenceOperator for Lane<'_, '_> {
    fn n(&self) -> usize {
        self.hub.op.n()
    }
    fn apply(&self, mut out: MatMut<'_, f64>, rhs: MatRef<'_, f64>, _stack: &mut MemStack) {
        crate::game::check_shapes(self.n(), &out, &rhs);
        match rhs.ncols() {
            0 => {}
            1 => {
                let o = crate::game::columns_mut(out.as_mut())
                    .next()
                    .expect("one column");
                if !self.take_kept(column(rhs, 0), o) {
                    self.hub.apply(self.id, out, rhs);
                }
            }
            k => {
                self.hub.apply(self.id, out.as_mut(), rhs);
                let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
                kept.clear();
                let out = out.as_ref();
                kept.extend((0..k).map(|v| (column(rhs, v).to_vec(), column(out, v).to_vec())));
            }
        }
    }
    fn apply_scratch(&self, _k: usize) -> StackReq {
        StackReq::EMPTY
    }
    fn entry(&self, i: usize, j: usize) -> f64 {
        self.hub.op.entry(i, j)
    }
    fn precision(&self) -> f64 {
        self.hub.op.precision()
    }
    fn validate(&self, tol: Option<f64>) -> Result<()> {
        self.hub.op.validate(tol)
    }
    /// The game's, except that a block game's classes and a low-rank game's features are
    /// not passed on: an algorithm would compute its payoffs from them instead of posting its
    /// products to the hub ([`crate::algo::Context::classes`]), and lock step is about the
    /// posting. (The sweep takes a game's features from the game itself.)
    fn info(&self) -> Info<'_> {
        Info {
            structure: crate::game::Structure::None,
            ..self.hub.op.info()
        }
    }
}

/// Retires a lane when its job ends, however it ends (so the others never wait for it).
struct Retire<'h, 'a>(&'h Hub<'a>, usize);

impl Drop for Retire<'_, '_> {
    fn drop(&mut self) {
        self.0.retire(self.1);
    }
}

/// A job: given its view of the game, produce a result.
pub type Job<'s, T> = Box<dyn FnOnce(&dyn PreferenceOperator) -> T + Send + 's>;

/// Runs `jobs` on `op` in lock step (one thread each), returning their results in order and the
/// batching statistics.
///
/// # Panics
/// If a job panics (after the other jobs have finished).
pub fn run_lockstep<T: Send>(
    op: &dyn PreferenceOperator,
    jobs: Vec<Job<'_, T>>,
) -> (Vec<T>, BatchStats) {
    let k = jobs.len();
    let hub = Hub {
        op,
        batched: k >= MIN_BATCH,
        state: Mutex::new(State {
            slots: (0..k)
                .map(|_| Slot {
                    x: Vec::new(),
                    out: Vec::new(),
                    len: 0,
                    state: SlotState::Idle,
                })
                .collect(),
            live: k,
            waiting: 0,
            stats: BatchStats::default(),
            batch: Batch::default(),
        }),
        cv: Condvar::new(),
    };
    let results = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .into_iter()
            .enumerate()
            .map(|(id, job)| {
                let hub = &hub;
                s.spawn(move || {
                    let _retire = Retire(hub, id);
                    job(&Lane {
                        hub,
                        id,
                        kept: Mutex::new(Vec::new()),
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let stats = hub.lock().stats;
    (results, stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::apply_vec;
    use crate::game::DenseGame;

    /// Jobs with different numbers of applies share batches; each gets exactly `P x`.
    #[test]
    fn batches_uneven_jobs_and_matches_single_applies() {
        let n = 37;
        let p: Vec<f64> = (0..n * n)
            .map(|k| crate::gen::uniform_entry(3, k / n, k % n))
            .collect();
        let game = DenseGame::from_vec("u", n, p);
        let x = |seed: usize, r: usize| -> Vec<f64> {
            (0..n)
                .map(|i| ((i * 7 + seed * 3 + r) % 11) as f64)
                .collect()
        };
        let jobs: Vec<Job<'_, Vec<Vec<f64>>>> = (0..3)
            .map(|j| {
                Box::new(move |op: &dyn PreferenceOperator| {
                    (0..(j + 1) * 2)
                        .map(|r| {
                            let mut out = vec![0.0; n];
                            apply_vec(op, &x(j, r), &mut out);
                            out
                        })
                        .collect::<Vec<_>>()
                }) as Job<'_, _>
            })
            .collect();
        let (res, stats) = run_lockstep(&game, jobs);
        assert_eq!(stats.vectors, 2 + 4 + 6);
        // Three jobs: every sub-step is one batched pass (three vectors, then two, then one).
        assert_eq!(stats.passes, 6);
        for (j, outs) in res.iter().enumerate() {
            for (r, got) in outs.iter().enumerate() {
                let mut want = vec![0.0; n];
                apply_vec(&game, &x(j, r), &mut want);
                for (a, b) in got.iter().zip(&want) {
                    assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0));
                }
            }
        }
    }

    /// A dense `f32` game of `n` actions, in a file (the batched kernel's storage).
    fn f32_game(dir: &std::path::Path, n: usize) -> Box<dyn PreferenceOperator> {
        let p = dir.join("g.npy");
        let mut b = crate::io::npy::header_bytes(crate::io::npy::DType::F32, &[n as u64, n as u64]);
        for k in 0..n * n {
            b.extend((crate::gen::uniform_entry(5, k / n, k % n) as f32).to_le_bytes());
        }
        std::fs::write(&p, b).unwrap();
        crate::game::open(&p, None).unwrap()
    }

    /// A lane's multi-column apply shares one pass; a later single apply of one of its vectors
    /// is answered from the kept products (the bits of a single apply), any other vector takes
    /// a pass.
    #[test]
    fn prefetched_products_are_answered_without_a_pass() {
        let d = tempfile::tempdir().unwrap();
        let g = f32_game(d.path(), 61);
        let n = g.n();
        let single = |x: &[f64]| -> Vec<u64> {
            let mut o = vec![0.0; n];
            apply_vec(g.as_ref(), x, &mut o);
            o.iter().map(|v| v.to_bits()).collect()
        };
        let bits = |o: &[f64]| -> Vec<u64> { o.iter().map(|v| v.to_bits()).collect() };
        let (a, b, c) = (vector(n, 1, 0), vector(n, 2, 0), vector(n, 3, 0));
        let jobs: Vec<Job<'_, Vec<Vec<u64>>>> = (0..3)
            .map(|j| {
                let (a, b, c) = (&a, &b, &c);
                Box::new(move |op: &dyn PreferenceOperator| {
                    let mut got = Vec::new();
                    let (mut o1, mut o2) = (vec![0.0; n], vec![0.0; n]);
                    if j == 0 {
                        // Prefetch a and b in one pass, then ask for b, a and c.
                        crate::game::apply_cols(op, &[a, b], &mut [&mut o1[..], &mut o2[..]]);
                        got.push(bits(&o1));
                        for x in [b, a, c] {
                            apply_vec(op, x, &mut o1);
                            got.push(bits(&o1));
                        }
                    } else {
                        for _ in 0..2 {
                            apply_vec(op, c, &mut o1);
                            got.push(bits(&o1));
                        }
                    }
                    got
                }) as Job<'_, _>
            })
            .collect();
        let (res, stats) = run_lockstep(g.as_ref(), jobs);
        assert_eq!(res[0], vec![single(&a), single(&b), single(&a), single(&c)]);
        assert_eq!(res[1], vec![single(&c), single(&c)]);
        // Pass 1: a, b and the others' c; pass 2: job 0's c and the others' second c.
        assert_eq!(stats.passes, 2);
        assert_eq!(stats.vectors, 4 + 3);
        assert_eq!(stats.sizes[4], 1);
        assert_eq!(stats.sizes[3], 1);
    }

    /// The low-rank batch reads the factors once for all vectors; each vector's product is the
    /// bits of its single apply.
    #[test]
    fn low_rank_batch_equals_single_applies_to_the_bit() {
        let d = tempfile::tempdir().unwrap();
        let spec = super::super::cache::GameSpec {
            family: crate::gen::Family::LowRank,
            n: 70_000, // several chunks and the parallel path
            seed: 3,
            params: crate::gen::Params::default(),
        };
        let (path, _) = spec.ensure(d.path()).unwrap();
        let g = crate::game::open(&path, None).unwrap();
        let n = g.n();
        let xs: Vec<Vec<f64>> = (0..5).map(|v| vector(n, v, 1)).collect();
        let xr: Vec<&[f64]> = xs.iter().map(|v| &v[..]).collect();
        let mut outs = vec![vec![0.0; n]; 5];
        let mut or: Vec<&mut [f64]> = outs.iter_mut().map(|v| &mut v[..]).collect();
        crate::game::apply_cols(&*g, &xr, &mut or);
        for (x, o) in xs.iter().zip(&outs) {
            let mut single = vec![0.0; n];
            apply_vec(&*g, x, &mut single);
            assert!(single
                .iter()
                .zip(o)
                .all(|(p, q)| p.to_bits() == q.to_bits()));
        }
        // And the product is P x (an entry-wise check on a few rows).
        for i in [0, 12_345, n - 1] {
            let want: f64 = (0..n).map(|j| g.entry(i, j) * xs[2][j]).sum();
            assert!(
                (outs[2][i] - want).abs() < 1e-9 * want.abs().max(1.0),
                "row {i}"
            );
        }
    }

    fn vector(n: usize, seed: usize, r: usize) -> Vec<f64> {
        (0..n)
            .map(|i| ((i * 7 + seed * 13 + r * 3) % 17) as f64 / 17.0 + 0.01)
            .collect()
    }

    /// `k` jobs; job `j` makes `applies(j)` applies and returns their products' bits.
    fn products(
        op: &dyn PreferenceOperator,
        k: usize,
        applies: impl Fn(usize) -> usize + Sync,
    ) -> Vec<Vec<Vec<u64>>> {
        let n = op.n();
        let applies = &applies;
        let jobs: Vec<Job<'_, Vec<Vec<u64>>>> = (0..k)
            .map(|j| {
                Box::new(move |op: &dyn PreferenceOperator| {
                    (0..applies(j))
                        .map(|r| {
                            let mut out = vec![0.0; n];
                            apply_vec(op, &vector(n, j, r), &mut out);
                            out.iter().map(|x| x.to_bits()).collect()
                        })
                        .collect::<Vec<_>>()
                }) as Job<'_, _>
            })
            .collect();
        run_lockstep(op, jobs).0
    }

    /// A packed game of `n` actions in `elem` storage, in a file.
    fn packed_game(
        dir: &std::path::Path,
        n: usize,
        elem: crate::io::container::Elem,
    ) -> Box<dyn PreferenceOperator> {
        use crate::io::container::{GameHeader, Layout, TILE};
        let fam = crate::gen::DenseFamily::new(
            crate::gen::Family::Mixture,
            n,
            5,
            crate::gen::Params::default(),
        );
        let mut h = GameHeader::new(n as u64, Layout::Packed);
        h.dtype = Some(elem);
        h.tile = Some(TILE as u64);
        let p = dir.join(format!("p{n}-{}.nmp", elem.name()));
        crate::io::write::matrix_container(&p, &h, &fam, &|_| {}).unwrap();
        crate::game::open(&p, None).unwrap()
    }

    /// What a resumed sweep relies on: a job's products are the same bits whichever of the
    /// group's other jobs share its batches (all of them, or none), and the bits of the same
    /// applies made alone, without lock step — on dense and packed storage, with no padding.
    #[test]
    fn products_do_not_depend_on_the_batch() {
        use crate::io::container::Elem;
        let d = tempfile::tempdir().unwrap();
        let games = [
            f32_game(d.path(), 77),
            packed_game(d.path(), 300, Elem::F32),
            packed_game(d.path(), 300, Elem::U16),
        ];
        for g in &games {
            for k in [12, 5, 17] {
                let all = products(g.as_ref(), k, |j| 3 + j % 4);
                for alone in [0, k - 1] {
                    let one = products(g.as_ref(), k, |j| if j == alone { 3 + j % 4 } else { 0 });
                    assert_eq!(one[alone], all[alone], "k = {k}, job {alone}");
                    // A group of one applies alone (the single kernel).
                    let single = products(g.as_ref(), 1, |_| 3 + alone % 4);
                    let n = g.n();
                    let want: Vec<Vec<u64>> = (0..3 + alone % 4)
                        .map(|r| {
                            let mut out = vec![0.0; n];
                            apply_vec(g.as_ref(), &vector(n, alone, r), &mut out);
                            out.iter().map(|x| x.to_bits()).collect()
                        })
                        .collect();
                    assert_eq!(single[0].len(), want.len());
                    assert_eq!(all[alone], want, "{} k = {k}, job {alone}", g.info().layout);
                }
            }
        }
    }
}
