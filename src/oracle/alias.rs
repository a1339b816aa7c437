//! Walker's alias method (Vose's construction): draw from a discrete distribution over `n`
//! actions in `O(1)` after an `O(n)` build.
//!
//! The table is built in `f64` from log-probabilities: weights are `exp(θ_i − max θ)`, so the
//! largest is 1 and nothing underflows that matters (an action whose weight underflows to 0 has
//! probability below `1e-308` relative to the largest and is never drawn).

use rand::Rng;

/// An alias table over `n` actions. Rebuild it in place with [`AliasTable::rebuild`] when the
/// policy changes; nothing else needs to change.
#[derive(Clone, Debug, Default)]
pub struct AliasTable {
    /// Probability of keeping column `i` (else take `alias[i]`).
    keep: Vec<f64>,
    alias: Vec<usize>,
    /// Build scratch: columns below and above the mean weight.
    small: Vec<usize>,
    large: Vec<usize>,
}

impl AliasTable {
    /// The table of `π ∝ exp(θ)`.
    ///
    /// # Panics
    /// If `theta` is empty or has no finite maximum (a bug: policies are normalised).
    pub fn from_log(theta: &[f64]) -> Self {
        let mut t = AliasTable::default();
        t.rebuild(theta);
        t
    }

    /// Rebuilds the table for `π ∝ exp(θ)`, reusing its memory.
    ///
    /// # Panics
    /// If `theta` is empty or has no finite maximum.
    pub fn rebuild(&mut self, theta: &[f64]) {
        let max = theta.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert!(max.is_finite(), "alias table of a non-normalisable policy");
        self.build(theta.len(), |i| (theta[i] - max).exp());
    }

    /// Rebuilds the table for `π ∝ w` (weights `≥ 0`, finite, not all 0), reusing its memory.
    ///
    /// # Panics
    /// If the weights are empty, negative, not finite or all 0.
    pub fn rebuild_weights(&mut self, w: &[f64]) {
        let max = w.iter().copied().fold(0.0, f64::max);
        assert!(
            max > 0.0 && max.is_finite() && w.iter().all(|x| *x >= 0.0),
            "alias table of invalid weights"
        );
        self.build(w.len(), |i| w[i] / max);
    }

    /// Vose's construction from weights in `[0, 1]` (the largest is 1).
    fn build(&mut self, n: usize, weight: impl Fn(usize) -> f64) {
        assert!(n > 0, "alias table over no actions");
        self.keep.clear();
        self.keep.extend((0..n).map(weight));
        let total: f64 = self.keep.iter().sum();
        let scale = n as f64 / total;
        self.alias.clear();
        self.alias.extend(0..n);
        self.small.clear();
        self.large.clear();
        for (i, w) in self.keep.iter_mut().enumerate() {
            *w *= scale;
            if *w < 1.0 {
                self.small.push(i);
            } else {
                self.large.push(i);
            }
        }
        // Each small column is topped up to 1 by a large one, whose excess shrinks accordingly.
        while let (Some(&s), Some(&l)) = (self.small.last(), self.large.last()) {
            self.small.pop();
            self.alias[s] = l;
            self.keep[l] -= 1.0 - self.keep[s];
            if self.keep[l] < 1.0 {
                self.large.pop();
                self.small.push(l);
            }
        }
        // Leftovers are 1 up to rounding.
        for &i in self.small.iter().chain(&self.large) {
            self.keep[i] = 1.0;
        }
    }

    /// Number of actions.
    pub fn len(&self) -> usize {
        self.keep.len()
    }

    /// Whether the table is empty (never after a build).
    pub fn is_empty(&self) -> bool {
        self.keep.is_empty()
    }

    /// One draw: a column uniformly (multiply-high of 64 random bits, no modulo bias beyond
    /// `n/2^64`), then a biased coin between the column and its alias.
    pub fn sample(&self, rng: &mut impl Rng) -> usize {
        let n = self.keep.len() as u128;
        let i = ((rng.next_u64() as u128 * n) >> 64) as usize;
        if super::unit(rng) < self.keep[i] {
            i
        } else {
            self.alias[i]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::stream;

    /// The probability each action receives from the table, read off its columns.
    fn implied(t: &AliasTable) -> Vec<f64> {
        let n = t.len();
        let mut p = vec![0.0; n];
        for i in 0..n {
            p[i] += t.keep[i] / n as f64;
            p[t.alias[i]] += (1.0 - t.keep[i]) / n as f64;
        }
        p
    }

    #[test]
    fn table_is_exact_and_survives_tiny_logs() {
        // exp(-1000) underflows; normalising by the maximum keeps the ratios.
        let theta = [
            -1000.0,
            -1000.0 + 0.5f64.ln(),
            -3000.0,
            -1000.0 + 0.25f64.ln(),
        ];
        let t = AliasTable::from_log(&theta);
        let p = implied(&t);
        let want = [4.0 / 7.0, 2.0 / 7.0, 0.0, 1.0 / 7.0];
        // θ near −1000 carries an ulp of 1.1e-13, hence the tolerance.
        for (a, b) in p.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{p:?}");
        }
        let mut rng = stream(1, &[]);
        assert!((0..10_000).all(|_| t.sample(&mut rng) != 2));
    }

    #[test]
    fn frequencies_match() {
        // 6 actions, 600k draws: each count is Binomial(N, p); 5 standard deviations.
        let p = [0.05, 0.1, 0.15, 0.2, 0.2, 0.3];
        let theta: Vec<f64> = p.iter().map(|x: &f64| x.ln()).collect();
        let mut t = AliasTable::from_log(&[0.0; 3]);
        t.rebuild(&theta);
        let mut rng = stream(7, &[1, 2]);
        let draws = 600_000;
        let mut c = [0usize; 6];
        for _ in 0..draws {
            c[t.sample(&mut rng)] += 1;
        }
        for (ci, pi) in c.iter().zip(p) {
            let sd = (draws as f64 * pi * (1.0 - pi)).sqrt();
            assert!((*ci as f64 - draws as f64 * pi).abs() < 5.0 * sd, "{c:?}");
        }
    }
}
