//! Synthetic game families, entry by entry: every entry is a pure function of `(seed, i, j)`,
//! so files are identical whatever the thread count and can be streamed row by row.

/// The generalised rock-paper-scissors tournament: `i` beats the next `⌊(n−1)/2⌋` actions
/// cyclically (`P[i][j] = 1`), loses to the previous ones (`0`); ties (even `n`, the action
/// opposite) and the diagonal are `1/2`.
pub fn cyclic_entry(n: usize, i: usize, j: usize) -> f64 {
    let d = (j + n - i) % n;
    let half = (n - 1) / 2;
    if d == 0 || (n % 2 == 0 && d == n / 2) {
        0.5
    } else if d <= half {
        1.0
    } else {
        0.0
    }
}

/// `P[i][j] ~ U[0,1]` for `i < j`, `P[j][i] = 1 − P[i][j]`, diagonal `1/2`.
pub fn uniform_entry(seed: u64, i: usize, j: usize) -> f64 {
    if i == j {
        return 0.5;
    }
    let (a, b) = if i < j { (i, j) } else { (j, i) };
    let u = unit(seed, a as u64, b as u64);
    if i < j {
        u
    } else {
        1.0 - u
    }
}

/// A uniform draw in `[0, 1)` determined by `(seed, a, b)` (SplitMix64 finaliser, 53 bits).
pub fn unit(seed: u64, a: u64, b: u64) -> f64 {
    let mut z =
        seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// A game family the `generate` command writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Family {
    Cyclic,
    Uniform,
}

impl Family {
    pub fn entry(self, n: usize, seed: u64, i: usize, j: usize) -> f64 {
        match self {
            Family::Cyclic => cyclic_entry(n, i, j),
            Family::Uniform => uniform_entry(seed, i, j),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_skew_consistent() {
        for n in [1usize, 2, 5, 8, 101] {
            for i in 0..n {
                for j in 0..n {
                    for f in [Family::Cyclic, Family::Uniform] {
                        let s = f.entry(n, 3, i, j) + f.entry(n, 3, j, i);
                        assert_eq!(s, 1.0, "{f:?} n={n} ({i},{j})");
                    }
                }
            }
        }
        // 101 actions: 0 beats 1..=50 and loses to 51..=100.
        assert_eq!(cyclic_entry(101, 0, 50), 1.0);
        assert_eq!(cyclic_entry(101, 0, 51), 0.0);
        assert_eq!(cyclic_entry(101, 100, 0), 1.0);
    }
}
