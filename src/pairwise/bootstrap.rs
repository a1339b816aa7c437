//! Nonparametric bootstrap of the equilibrium ranking: resample the judgements with
//! replacement, re-estimate `P`, re-solve, and take percentile intervals.
//!
//! Replicate `r` draws from its own xoshiro256++ stream: the generator seeded with `seed`,
//! advanced by `r` jumps of 2^128 steps. Replicates run in parallel and are collected in
//! replicate order, so the intervals are the same bytes for any thread count.

use super::estimate::{estimate, Counts, EstimateParams};
use super::log::Judgement;
use super::rank::{self, ranks_of};
use crate::error::{Error, Result};
use crate::game::DenseGame;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

/// Bootstrap settings, checked on construction.
#[derive(Clone, Copy, Debug)]
pub struct BootstrapParams {
    replicates: usize,
    seed: u64,
    level: f64,
}

impl BootstrapParams {
    /// `replicates ≥ 2`, `0 < level < 1` (e.g. 0.95).
    pub fn new(replicates: usize, seed: u64, level: f64) -> Result<Self> {
        if replicates < 2 {
            return Err(Error::Param(format!(
                "--bootstrap needs at least 2 replicates, got {replicates}"
            )));
        }
        if !(level > 0.0 && level < 1.0) {
            return Err(Error::Param(format!(
                "--level must be in (0, 1), got {level}"
            )));
        }
        Ok(BootstrapParams {
            replicates,
            seed,
            level,
        })
    }

    pub fn level(&self) -> f64 {
        self.level
    }
}

/// Percentile intervals per item.
#[derive(Clone, Debug, PartialEq)]
pub struct Intervals {
    pub replicates: usize,
    pub level: f64,
    /// `(low, high)` of each item's equilibrium probability.
    pub prob: Vec<(f64, f64)>,
    /// `(best, worst)` 1-based rank of each item: the same percentiles of its rank, widened to
    /// whole ranks (floor of the low end, ceiling of the high end).
    pub rank: Vec<(usize, usize)>,
}

/// Runs the bootstrap at `beta`. Each replicate's solve starts from `start` (the point
/// estimate's `θ`, which only saves iterations).
pub fn run(
    n: usize,
    judgements: &[Judgement],
    estimator: EstimateParams,
    beta: f64,
    start: &[f64],
    params: BootstrapParams,
) -> Result<Intervals> {
    let mut base = Xoshiro256PlusPlus::seed_from_u64(params.seed);
    let streams: Vec<Xoshiro256PlusPlus> = (0..params.replicates)
        .map(|_| {
            let s = base.clone();
            base.jump();
            s
        })
        .collect();
    let m = judgements.len();
    // Per replicate: each item's probability and rank.
    let replicates: Vec<(Vec<f64>, Vec<usize>)> = streams
        .into_par_iter()
        .map(|mut rng| {
            let sample = (0..m).map(|_| &judgements[rng.random_range(0..m)]);
            let p = estimate(&Counts::from_judgements(n, sample), estimator);
            let game = DenseGame::from_vec("bootstrap replicate", n, p);
            rank::rank_at(&game, beta, Some(start)).map(|r| (r.probs, ranks_of(&r.order)))
        })
        .collect::<Result<_>>()?;
    let (lo_q, hi_q) = ((1.0 - params.level) / 2.0, (1.0 + params.level) / 2.0);
    let mut prob = Vec::with_capacity(n);
    let mut rank = Vec::with_capacity(n);
    for i in 0..n {
        let mut v: Vec<f64> = replicates.iter().map(|(p, _)| p[i]).collect();
        v.sort_by(f64::total_cmp);
        prob.push((quantile(&v, lo_q), quantile(&v, hi_q)));
        let mut r: Vec<f64> = replicates.iter().map(|(_, r)| r[i] as f64).collect();
        r.sort_by(f64::total_cmp);
        rank.push((
            quantile(&r, lo_q).floor() as usize,
            quantile(&r, hi_q).ceil() as usize,
        ));
    }
    Ok(Intervals {
        replicates: params.replicates,
        level: params.level,
        prob,
        rank,
    })
}

/// The `q`-quantile of sorted values, linearly interpolated between order statistics
/// (`(len − 1)·q`, numpy's default and R's type 7).
///
/// # Panics
/// If `sorted` is empty.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pairwise::estimate::Fill;
    use crate::pairwise::log::Outcome;

    #[test]
    fn quantiles() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&v, 1.0), 5.0);
        assert_eq!(quantile(&v, 0.125), 1.5);
        assert_eq!(quantile(&[7.0], 0.9), 7.0);
    }

    #[test]
    fn thread_count_does_not_change_intervals() {
        let mut log = Vec::new();
        for k in 0..60usize {
            let (a, b) = (k % 4, (k / 4 + 1 + k % 4) % 4);
            if a != b {
                let outcome = if k % 3 == 0 {
                    Outcome::Right
                } else {
                    Outcome::Left
                };
                log.push(Judgement {
                    left: a,
                    right: b,
                    outcome,
                });
            }
        }
        let est = EstimateParams::new(1.0, Fill::Bt).unwrap();
        let params = BootstrapParams::new(20, 5, 0.9).unwrap();
        let start = crate::policy::uniform_theta(4);
        let go = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| run(4, &log, est, 0.2, &start, params).unwrap())
        };
        let (a, b) = (go(1), go(2));
        assert_eq!(a, b);
        for (i, &(lo, hi)) in a.prob.iter().enumerate() {
            assert!(0.0 < lo && lo <= hi && hi < 1.0, "item {i}: {lo} {hi}");
            let (best, worst) = a.rank[i];
            assert!(1 <= best && best <= worst && worst <= 4);
        }
        assert!(BootstrapParams::new(1, 0, 0.95).is_err());
        assert!(BootstrapParams::new(10, 0, 1.0).is_err());
    }
}
