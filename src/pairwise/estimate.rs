//! From judgement counts to a preference matrix `P`, and the log's coverage.
//!
//! For a pair compared `n_ij > 0` times, of which `i` won `w_ij` (ties count ½ to each side),
//! `P[i][j] = (w_ij + k) / (n_ij + 2k)`: the posterior mean under a Beta(k, k) prior (add-k
//! smoothing; `k = 0` gives the raw win rate). It is computed once per pair `i < j` and
//! `P[j][i] = 1 − P[i][j]`, `P[i][i] = ½`, so the matrix is skew-consistent by construction.
//!
//! A pair never compared is filled by [`Fill`]: ½ (no information), or the Bradley–Terry
//! probability `s_i / (s_i + s_j)` of strengths fitted to the whole log (see [`bradley_terry`]).

use super::log::{Judgement, Outcome};
use crate::error::{Error, Result};

/// How pairs that were never compared are filled.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Fill {
    /// `P[i][j] = ½`.
    Half,
    /// `P[i][j] = s_i / (s_i + s_j)` from a Bradley–Terry fit.
    Bt,
}

/// The estimator's settings, checked on construction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EstimateParams {
    smoothing: f64,
    fill: Fill,
}

impl EstimateParams {
    /// `smoothing` is the pseudo-count `k ≥ 0` added to each side of an observed pair.
    pub fn new(smoothing: f64, fill: Fill) -> Result<Self> {
        if !(smoothing.is_finite() && smoothing >= 0.0) {
            return Err(Error::Param(format!(
                "--smoothing must be finite and ≥ 0, got {smoothing}"
            )));
        }
        Ok(EstimateParams { smoothing, fill })
    }

    pub fn smoothing(&self) -> f64 {
        self.smoothing
    }

    pub fn fill(&self) -> Fill {
        self.fill
    }
}

/// Win and comparison counts per ordered pair, row-major `n × n`.
#[derive(Clone, Debug, PartialEq)]
pub struct Counts {
    n: usize,
    /// `wins[i*n + j]`: wins of `i` over `j`, ties counting ½.
    wins: Vec<f64>,
    /// `games[i*n + j] = games[j*n + i]`: comparisons of the pair.
    games: Vec<u64>,
}

impl Counts {
    /// Counts every judgement.
    ///
    /// # Panics
    /// If a judgement names an item `≥ n`.
    pub fn new(n: usize, judgements: &[Judgement]) -> Self {
        Self::from_judgements(n, judgements.iter())
    }

    /// Counts the given judgements (e.g. a bootstrap resample, with repeats).
    ///
    /// # Panics
    /// If a judgement names an item `≥ n`.
    pub fn from_judgements<'a>(n: usize, judgements: impl Iterator<Item = &'a Judgement>) -> Self {
        let mut c = Counts {
            n,
            wins: vec![0.0; n * n],
            games: vec![0; n * n],
        };
        for j in judgements {
            let (a, b) = (j.left, j.right);
            c.games[a * n + b] += 1;
            c.games[b * n + a] += 1;
            let (wa, wb) = match j.outcome {
                Outcome::Left => (1.0, 0.0),
                Outcome::Right => (0.0, 1.0),
                Outcome::Tie => (0.5, 0.5),
            };
            c.wins[a * n + b] += wa;
            c.wins[b * n + a] += wb;
        }
        c
    }

    pub fn n(&self) -> usize {
        self.n
    }

    /// Comparisons of `i` with `j`.
    pub fn games(&self, i: usize, j: usize) -> u64 {
        self.games[i * self.n + j]
    }

    /// Wins of `i` over `j` (ties ½).
    pub fn wins(&self, i: usize, j: usize) -> f64 {
        self.wins[i * self.n + j]
    }
}

/// The estimated `P`, row-major `n × n`.
pub fn estimate(counts: &Counts, params: EstimateParams) -> Vec<f64> {
    let n = counts.n;
    let k = params.smoothing;
    let strengths = match params.fill {
        Fill::Bt => Some(bradley_terry(counts)),
        Fill::Half => None,
    };
    let mut p = vec![0.5; n * n];
    for i in 0..n {
        for j in i + 1..n {
            let m = counts.games(i, j);
            let pij = if m > 0 {
                (counts.wins(i, j) + k) / (m as f64 + 2.0 * k)
            } else {
                match &strengths {
                    Some(s) => s[i] / (s[i] + s[j]),
                    None => 0.5,
                }
            };
            p[i * n + j] = pij;
            p[j * n + i] = 1.0 - pij;
        }
    }
    p
}

/// Iteration cap of the Bradley–Terry fit.
const BT_MAX_ITERS: usize = 10_000;
/// The fit stops once no strength changes by more than this factor (relative).
const BT_TOL: f64 = 1e-10;

/// Bradley–Terry strengths `s_i > 0` fitted to the raw counts by Hunter's (2004) MM algorithm,
/// `s_i ← W_i / Σ_j n_ij / (s_i + s_j)`, with one virtual game per item against a fixed
/// opponent of strength 1 that it wins half of. The virtual games fix the scale and keep every
/// strength finite and positive even when an item never wins, never loses, or the comparison
/// graph is disconnected (a weak prior pulling strengths toward 1). Stops when no strength moves
/// by more than 1e-10 relative, or after 10,000 iterations.
pub fn bradley_terry(counts: &Counts) -> Vec<f64> {
    let n = counts.n;
    let total_wins: Vec<f64> = (0..n)
        .map(|i| 0.5 + (0..n).map(|j| counts.wins(i, j)).sum::<f64>())
        .collect();
    let mut s = vec![1.0; n];
    let mut next = vec![0.0; n];
    for _ in 0..BT_MAX_ITERS {
        for i in 0..n {
            let denom = 1.0 / (s[i] + 1.0)
                + (0..n)
                    .filter(|&j| j != i)
                    .map(|j| counts.games(i, j) as f64 / (s[i] + s[j]))
                    .sum::<f64>();
            next[i] = total_wins[i] / denom;
        }
        let moved = s
            .iter()
            .zip(&next)
            .map(|(a, b)| ((b - a) / a).abs())
            .fold(0.0, f64::max);
        std::mem::swap(&mut s, &mut next);
        if moved <= BT_TOL {
            break;
        }
    }
    s
}

/// How much of the game the log observed.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Coverage {
    pub items: usize,
    pub judgements: u64,
    /// Unordered pairs `n(n−1)/2`.
    pub pairs: u64,
    /// Pairs compared at least once.
    pub observed_pairs: u64,
    pub observed_fraction: f64,
    /// Judgements per observed pair (0 when no pair is observed).
    pub per_pair_min: u64,
    pub per_pair_median: f64,
    pub per_pair_max: u64,
    pub smoothing: f64,
    pub fill: Fill,
    /// The log's columns the game was imported from (so that `rank --bootstrap` reads the log
    /// the same way); absent in files written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<super::log::Columns>,
}

impl Coverage {
    /// The coverage of `counts`, recording the estimator's settings.
    pub fn new(counts: &Counts, params: EstimateParams) -> Self {
        let n = counts.n;
        let mut per_pair: Vec<u64> = (0..n)
            .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
            .map(|(i, j)| counts.games(i, j))
            .filter(|&m| m > 0)
            .collect();
        per_pair.sort_unstable();
        let pairs = (n as u64) * (n as u64).saturating_sub(1) / 2;
        let observed = per_pair.len() as u64;
        let median = match per_pair.len() {
            0 => 0.0,
            l if l % 2 == 1 => per_pair[l / 2] as f64,
            l => (per_pair[l / 2 - 1] + per_pair[l / 2]) as f64 / 2.0,
        };
        Coverage {
            items: n,
            judgements: per_pair.iter().sum(),
            pairs,
            observed_pairs: observed,
            observed_fraction: if pairs == 0 {
                0.0
            } else {
                observed as f64 / pairs as f64
            },
            per_pair_min: per_pair.first().copied().unwrap_or(0),
            per_pair_median: median,
            per_pair_max: per_pair.last().copied().unwrap_or(0),
            smoothing: params.smoothing,
            fill: params.fill,
            columns: None,
        }
    }

    /// Two human-readable lines.
    pub fn summary(&self) -> String {
        format!(
            "coverage: {} items, {} judgements, {} of {} pairs observed ({:.1}%)\n\
             per observed pair: min {}, median {}, max {} judgements (smoothing k = {}, unobserved pairs filled with {})",
            self.items,
            self.judgements,
            self.observed_pairs,
            self.pairs,
            100.0 * self.observed_fraction,
            self.per_pair_min,
            self.per_pair_median,
            self.per_pair_max,
            self.smoothing,
            match self.fill {
                Fill::Half => "1/2",
                Fill::Bt => "a Bradley-Terry fit",
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Outcome::*;

    fn j(left: usize, right: usize, outcome: Outcome) -> Judgement {
        Judgement {
            left,
            right,
            outcome,
        }
    }

    #[test]
    fn smoothing_closed_form_and_skew() {
        // 0 vs 1: 0 wins twice, loses once, one tie → w01 = 2.5 of 4. 2 never plays.
        let log = [j(0, 1, Left), j(1, 0, Right), j(1, 0, Left), j(0, 1, Tie)];
        let c = Counts::new(3, &log);
        for k in [0.0, 1.0, 2.5] {
            let p = estimate(&c, EstimateParams::new(k, Fill::Half).unwrap());
            assert_eq!(p[1], (2.5 + k) / (4.0 + 2.0 * k));
            assert_eq!(p[3], 1.0 - p[1]);
            assert_eq!([p[2], p[6], p[5], p[7]], [0.5; 4]);
            for i in 0..3 {
                assert_eq!(p[i * 3 + i], 0.5);
                for jj in 0..3 {
                    assert!((p[i * 3 + jj] + p[jj * 3 + i] - 1.0).abs() <= f64::EPSILON);
                }
            }
        }
        assert!(EstimateParams::new(-1.0, Fill::Half).is_err());
        assert!(EstimateParams::new(f64::NAN, Fill::Half).is_err());
    }

    #[test]
    fn coverage_stats() {
        let log = [j(0, 1, Left), j(1, 0, Left), j(2, 1, Tie)];
        let c = Coverage::new(
            &Counts::new(4, &log),
            EstimateParams::new(1.0, Fill::Half).unwrap(),
        );
        assert_eq!((c.pairs, c.observed_pairs, c.judgements), (6, 2, 3));
        assert_eq!(
            (c.per_pair_min, c.per_pair_median, c.per_pair_max),
            (1, 1.5, 2)
        );
        assert!((c.observed_fraction - 1.0 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn bt_fill_recovers_a_transitive_order() {
        // A chain 0 > 1 > 2 > 3 > 4 observed only between neighbours, 3 wins of 4 each.
        let mut log = Vec::new();
        for i in 0..4 {
            log.extend([j(i, i + 1, Left); 3]);
            log.push(j(i + 1, i, Left));
        }
        let c = Counts::new(5, &log);
        let s = bradley_terry(&c);
        assert!(s.windows(2).all(|w| w[0] > w[1]), "{s:?}");
        let p = estimate(&c, EstimateParams::new(1.0, Fill::Bt).unwrap());
        // Observed pairs keep the smoothed rate; unobserved ones follow the order.
        assert_eq!(p[1], (3.0 + 1.0) / (4.0 + 2.0));
        for a in 0..5 {
            for b in a + 2..5 {
                assert!(p[a * 5 + b] > 0.5, "P[{a}][{b}] = {}", p[a * 5 + b]);
                assert_eq!(p[b * 5 + a], 1.0 - p[a * 5 + b]);
            }
        }
        assert!(
            p[4] > p[2],
            "farther apart, more decisive: {} vs {}",
            p[4],
            p[2]
        );
        // A log where item 0 always wins still gives finite strengths.
        let c = Counts::new(2, &[j(0, 1, Left); 10]);
        assert!(bradley_terry(&c).iter().all(|x| x.is_finite() && *x > 0.0));
    }
}
