//! Lock-step execution of several solves on one game, their operator applications gathered into
//! one [`PreferenceOperator::apply_batch`] call per sub-step.
//!
//! Each job (an algorithm run, an equilibrium solve …) runs unchanged on its own thread and sees
//! the game through a [`Lane`]: a `PreferenceOperator` whose `apply` posts its vector to a shared
//! rendezvous and blocks. When every job still running is blocked in `apply`, the last one to
//! arrive performs one batched application for all of them (in lane order; fewer than
//! [`MIN_BATCH`] vectors are applied singly, which is cheaper) and wakes them. A dense
//! game is then read once per sub-step for all jobs instead of once per job: a Nash-MP run (two
//! applies per iteration) and an MMD run (one) simply take their turns, and the number of passes
//! is the largest number of applies any one job makes, not their sum.
//!
//! Determinism: a job blocks only in `apply`, so which vectors share a batch depends on the jobs'
//! own sequences of applies, never on timing or on the thread count. A vector's product is
//! computed by the batched kernel (whose per-vector result does not depend on its companions) or,
//! in batches smaller than [`MIN_BATCH`], by the single kernel. The batched kernel sums in a
//! different order from the single one, so a job run here agrees with the same job run alone to
//! summation-order rounding (the storage precision, e.g. `~1e-7` relative for `f32`), not to the
//! bit.

use crate::error::Result;
use crate::game::PreferenceOperator;
use std::sync::{Condvar, Mutex, MutexGuard};

/// Fewer vectors than this are applied one by one: on dense `f32` storage the batched kernel
/// costs about 2.1 single applies for any batch of up to 8 (it is compute-bound where the single
/// apply is memory-bound), so it pays from 3 vectors on. Measured with
/// `nashmp bench GAME --batch K` at n = 16384: 0.93× the throughput of K single applies for
/// K = 2, 1.84× for 4, 3.6× for 8, 4.9× for 16.
pub const MIN_BATCH: usize = 3;

/// What happened on the shared operator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct BatchStats {
    /// Operator calls made: one per batch, one per vector applied alone.
    pub passes: u64,
    /// Vectors applied in total (the passes the jobs would have made alone).
    pub vectors: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Idle,
    Requested,
    Done,
}

struct Slot {
    x: Vec<f64>,
    out: Vec<f64>,
    state: SlotState,
}

struct State {
    slots: Vec<Slot>,
    /// Jobs still running.
    live: usize,
    /// Jobs blocked in `apply`.
    waiting: usize,
    stats: BatchStats,
}

/// The rendezvous shared by the lanes of one [`run_lockstep`] call.
struct Hub<'a> {
    op: &'a dyn PreferenceOperator,
    state: Mutex<State>,
    cv: Condvar,
}

impl Hub<'_> {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A job that panicked leaves consistent state behind (its guard retires it), so a poisoned
        // lock is still usable; the panic itself resurfaces when the scope joins.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies every requested vector in one batch if all running jobs are waiting.
    fn fire_if_ready(&self, st: &mut State) {
        if st.waiting == 0 || st.waiting < st.live {
            return;
        }
        let mut count = 0u64;
        {
            let (mut xs, mut outs) = (Vec::new(), Vec::new());
            for s in st.slots.iter_mut() {
                if s.state == SlotState::Requested {
                    xs.push(&s.x[..]);
                    outs.push(&mut s.out[..]);
                }
            }
            if xs.len() >= MIN_BATCH {
                self.op.apply_batch(&xs, &mut outs);
                st.stats.passes += 1;
            } else {
                for (x, o) in xs.iter().zip(outs.iter_mut()) {
                    self.op.apply(x, o);
                }
                st.stats.passes += xs.len() as u64;
            }
        }
        for s in st.slots.iter_mut() {
            if s.state == SlotState::Requested {
                s.state = SlotState::Done;
                count += 1;
            }
        }
        st.stats.vectors += count;
        st.waiting = 0;
        self.cv.notify_all();
    }

    fn apply(&self, lane: usize, x: &[f64], out: &mut [f64]) {
        let mut st = self.lock();
        {
            let slot = &mut st.slots[lane];
            slot.x.clear();
            slot.x.extend_from_slice(x);
            slot.out.resize(x.len(), 0.0);
            slot.state = SlotState::Requested;
        }
        st.waiting += 1;
        self.fire_if_ready(&mut st);
        while st.slots[lane].state != SlotState::Done {
            st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        let slot = &mut st.slots[lane];
        out.copy_from_slice(&slot.out);
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
        self.fire_if_ready(&mut st);
    }
}

/// One job's view of the shared game.
pub struct Lane<'h, 'a> {
    hub: &'h Hub<'a>,
    id: usize,
}

impl PreferenceOperator for Lane<'_, '_> {
    fn n(&self) -> usize {
        self.hub.op.n()
    }
    fn apply(&self, x: &[f64], out: &mut [f64]) {
        assert_eq!(x.len(), self.n());
        assert_eq!(out.len(), self.n());
        self.hub.apply(self.id, x, out);
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
    fn layout(&self) -> String {
        self.hub.op.layout()
    }
    fn stored_bytes(&self) -> u64 {
        self.hub.op.stored_bytes()
    }
    fn describe(&self) -> String {
        self.hub.op.describe()
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
        state: Mutex::new(State {
            slots: (0..k)
                .map(|_| Slot {
                    x: Vec::new(),
                    out: Vec::new(),
                    state: SlotState::Idle,
                })
                .collect(),
            live: k,
            waiting: 0,
            stats: BatchStats::default(),
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
                    job(&Lane { hub, id })
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
                            op.apply(&x(j, r), &mut out);
                            out
                        })
                        .collect::<Vec<_>>()
                }) as Job<'_, _>
            })
            .collect();
        let (res, stats) = run_lockstep(&game, jobs);
        assert_eq!(stats.vectors, 2 + 4 + 6);
        // Sub-steps 1–2: three vectors in one pass; 3–4: two, applied singly; 5–6: one.
        assert_eq!(stats.passes, 2 + 4 + 2);
        for (j, outs) in res.iter().enumerate() {
            for (r, got) in outs.iter().enumerate() {
                let mut want = vec![0.0; n];
                game.apply(&x(j, r), &mut want);
                for (a, b) in got.iter().zip(&want) {
                    assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0));
                }
            }
        }
    }
}
