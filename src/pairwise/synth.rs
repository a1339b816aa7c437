//! Synthetic judgement logs drawn from a known game, to test that the estimator recovers it.
//!
//! Each row picks an ordered pair `(i, j)`, `i ≠ j`, uniformly, and the left item `i` wins with
//! probability `P[i][j]` (no ties). One xoshiro256++ stream seeded with `seed` draws the rows in
//! order, so a seed always gives the same file.

use crate::error::{Error, Result};
use crate::game::PreferenceOperator;
use crate::io::atomic::AtomicFile;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::path::Path;

/// Writes `count` judgements drawn from `op` to `out` as CSV `left,right,winner` (the winner
/// column names the winning item), atomically. `items` names the actions.
///
/// # Panics
/// If `items.len() != op.n()`.
pub fn write_log(
    op: &dyn PreferenceOperator,
    items: &[String],
    count: u64,
    seed: u64,
    out: &Path,
) -> Result<()> {
    let n = op.n();
    assert_eq!(items.len(), n, "one name per action");
    if n < 2 {
        return Err(Error::Param(format!(
            "a judgement log needs at least 2 items, the game has {n}"
        )));
    }
    let io = |e: csv::Error| Error::io(out, std::io::Error::other(e));
    let mut w = csv::Writer::from_writer(AtomicFile::create(out)?);
    w.write_record(["left", "right", "winner"]).map_err(io)?;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    for _ in 0..count {
        let i = rng.random_range(0..n);
        let j = rng.random_range(0..n - 1);
        let j = if j >= i { j + 1 } else { j };
        let winner = if rng.random::<f64>() < op.entry(i, j) {
            i
        } else {
            j
        };
        w.write_record([&items[i], &items[j], &items[winner]])
            .map_err(io)?;
    }
    let f = w.into_inner().map_err(|e| Error::io(out, e.into_error()))?;
    f.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::DenseGame;
    use crate::pairwise::log::{self, Columns, Outcome};

    #[test]
    fn draws_follow_the_game() {
        // Item 0 always beats 1; 2 vs the others is a coin flip.
        let p = vec![0.5, 1.0, 0.5, 0.0, 0.5, 0.5, 0.5, 0.5, 0.5];
        let g = DenseGame::from_vec("t", 3, p);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("log.csv");
        let names: Vec<String> = ["a", "b", "c"].map(String::from).into();
        write_log(&g, &names, 3000, 9, &out).unwrap();
        let first = std::fs::read(&out).unwrap();
        write_log(&g, &names, 3000, 9, &out).unwrap();
        assert_eq!(first, std::fs::read(&out).unwrap(), "same seed, same bytes");
        let parsed = log::read(&out, &Columns::default()).unwrap();
        assert_eq!(parsed.judgements.len(), 3000);
        let (mut ab, mut c_wins, mut c_games) = (0, 0, 0);
        for j in &parsed.judgements {
            assert_ne!(j.outcome, Outcome::Tie);
            let winner = if j.outcome == Outcome::Left {
                j.left
            } else {
                j.right
            };
            if j.left + j.right == 1 {
                assert_eq!(winner, 0);
                ab += 1;
            } else {
                c_games += 1;
                c_wins += usize::from(winner == 2);
            }
        }
        assert!((900..1100).contains(&ab), "{ab}");
        let rate = c_wins as f64 / c_games as f64;
        assert!((rate - 0.5).abs() < 0.05, "{rate}");
    }
}
