//! Synthetic game families. Every entry, skill, point and type is a pure function of
//! `(seed, index)` (a SplitMix64 hash), so a file is byte-identical whatever the thread count,
//! and can be written in any order, streaming.
//!
//! | family | `P[i][j]` for `i < j` (then `P[j][i] = 1 − P[i][j]`, `P[i][i] = ½`) |
//! |---|---|
//! | `uniform` | `U[0,1]` |
//! | `bradley-terry` | `sigmoid(s_i − s_j)`, skills `s_i ~ N(0, σ²)` (`--sigma`, default 1): transitive |
//! | `cyclic` | `1` if `j − i mod n ∈ [1, ⌊(n−1)/2⌋]`, `0` if beyond, `½` opposite (even n); blended with `uniform` noise: `(1−ε)·cyc + ε·U` (`--noise ε`, default 0) |
//! | `disc` | `½ + (1/r) Σ_{k<r/2} (u_ik v_jk − v_ik u_jk)`, points `(u, v)` uniform in the unit disc (`--rank r`, even, default 2): Balduzzi et al.'s disc game, strongly intransitive |
//! | `mixture` | `w·bradley-terry + (1−w)·disc` (`--weight w`, default 0.5; `--sigma`, `--rank`) |
//! | `low-rank` | `½ + Σ_k w_k (a_ik b_jk − b_ik a_jk)`: factor 0 is a skill term (`a_0 = s ~ U[−1,1]`, `b_0 = 1`), factors `1..r` are random (`a, b ~ U[−1,1]`); `w_0 = 1/8`, `w_k = 1/(8(r−1))` (`w_0 = 1/4` when `r = 1`), so `Σ_k |w_k|·2·max|a_k|·max|b_k| ≤ ½` and `P ∈ [0,1]`; written as factors |
//! | `block` | `Q[t(i)][t(j)]`, `t(i)` uniform in `0..K` (`--types K`), `Q` a `uniform` `K × K` game; written as factors |

use crate::kernels::vector;

pub mod file;

/// A uniform draw in `[0, 1)` determined by `(seed, a, b)` (SplitMix64 finaliser, 53 bits).
pub fn unit(seed: u64, a: u64, b: u64) -> f64 {
    let mut z =
        seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// Streams of per-action randomness, kept apart from the pairwise one.
const TAG_SKILL: u64 = 0xA5A5_0001;
const TAG_DISC: u64 = 0xA5A5_0002;
const TAG_LOWRANK: u64 = 0xA5A5_0003;
const TAG_TYPE: u64 = 0xA5A5_0004;
const TAG_Q: u64 = 0xA5A5_0005;

/// A standard normal draw for `(seed, tag, i)` (Box–Muller).
fn normal(seed: u64, tag: u64, i: u64) -> f64 {
    let u1 = 1.0 - unit(seed ^ tag, i, 0); // (0, 1]
    let u2 = unit(seed ^ tag, i, 1);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A point uniform in the unit disc for `(seed, i, k)`.
pub fn disc_point(seed: u64, i: u64, k: u64) -> (f64, f64) {
    let r = unit(seed ^ TAG_DISC, i, 2 * k).sqrt();
    let a = std::f64::consts::TAU * unit(seed ^ TAG_DISC, i, 2 * k + 1);
    (r * a.cos(), r * a.sin())
}

/// The generalised rock-paper-scissors tournament on `n` actions.
pub fn cyclic_entry(n: usize, i: usize, j: usize) -> f64 {
    let d = (j + n - i) % n;
    let half = (n - 1) / 2;
    if d == 0 || (n.is_multiple_of(2) && d == n / 2) {
        0.5
    } else if d <= half {
        1.0
    } else {
        0.0
    }
}

/// `P[i][j] ~ U[0,1]` for `i < j`, mirrored.
pub fn uniform_entry(seed: u64, i: usize, j: usize) -> f64 {
    canonical(i, j, |a, b| unit(seed, a as u64, b as u64))
}

/// Completes an upper-triangle rule `f(i, j)`, `i < j`, to a skew-consistent matrix.
#[inline]
pub fn canonical(i: usize, j: usize, f: impl Fn(usize, usize) -> f64) -> f64 {
    match i.cmp(&j) {
        std::cmp::Ordering::Less => f(i, j),
        std::cmp::Ordering::Greater => 1.0 - f(j, i),
        std::cmp::Ordering::Equal => 0.5,
    }
}

/// The families of `nashmp generate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    Uniform,
    BradleyTerry,
    Cyclic,
    Disc,
    Mixture,
    LowRank,
    Block,
}

impl Family {
    /// Written as factors (low-rank, block) rather than a matrix.
    pub fn is_structured(self) -> bool {
        matches!(self, Family::LowRank | Family::Block)
    }
}

/// A family's CLI name (`bradley-terry`, `low-rank` …).
pub fn family_name(f: Family) -> String {
    serde_json::to_value(f)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Family parameters (each family reads the ones it needs).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Params {
    pub sigma: f64,
    pub noise: f64,
    pub rank: usize,
    pub weight: f64,
    pub types: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            sigma: 1.0,
            noise: 0.0,
            rank: 2,
            weight: 0.5,
            types: 16,
        }
    }
}

impl Params {
    /// Checks the parameters `family` uses.
    pub fn check(&self, family: Family) -> Result<(), String> {
        let p = self;
        match family {
            Family::BradleyTerry | Family::Mixture if !(p.sigma.is_finite() && p.sigma >= 0.0) => {
                Err(format!("--sigma must be finite and ≥ 0, got {}", p.sigma))
            }
            Family::Cyclic if !(0.0..=1.0).contains(&p.noise) => {
                Err(format!("--noise must be in [0, 1], got {}", p.noise))
            }
            Family::Disc | Family::Mixture if p.rank == 0 || !p.rank.is_multiple_of(2) => Err(
                format!("--rank of a disc game must be even and ≥ 2, got {}", p.rank),
            ),
            Family::LowRank if p.rank == 0 => Err("--rank must be ≥ 1".into()),
            Family::Mixture if !(0.0..=1.0).contains(&p.weight) => {
                Err(format!("--weight must be in [0, 1], got {}", p.weight))
            }
            Family::Block if p.types == 0 || p.types > u32::MAX as usize => {
                Err(format!("--types must be in 1..=2^32−1, got {}", p.types))
            }
            _ => Ok(()),
        }
    }
}

/// A dense family, with its per-action values precomputed: `entry(i, j)` in `O(1)` (`O(r)`).
pub struct DenseFamily {
    family: Family,
    n: usize,
    seed: u64,
    params: Params,
    skills: Vec<f64>,
    points: Vec<(f64, f64)>,
}

impl DenseFamily {
    /// # Panics
    /// If `family` is structured (use [`lowrank_factors`], [`block_factors`]).
    pub fn new(family: Family, n: usize, seed: u64, params: Params) -> Self {
        assert!(!family.is_structured());
        let skills = if matches!(family, Family::BradleyTerry | Family::Mixture) {
            let mut s = vec![0.0; n];
            vector::fill(&mut s, |i| params.sigma * normal(seed, TAG_SKILL, i as u64));
            s
        } else {
            Vec::new()
        };
        let points = if matches!(family, Family::Disc | Family::Mixture) {
            let m = params.rank / 2;
            (0..n * m)
                .map(|q| disc_point(seed, (q / m) as u64, (q % m) as u64))
                .collect()
        } else {
            Vec::new()
        };
        DenseFamily {
            family,
            n,
            seed,
            params,
            skills,
            points,
        }
    }

    fn disc(&self, i: usize, j: usize) -> f64 {
        let m = self.params.rank / 2;
        let (pi, pj) = (
            &self.points[i * m..(i + 1) * m],
            &self.points[j * m..(j + 1) * m],
        );
        let s: f64 = pi.iter().zip(pj).map(|(a, b)| a.0 * b.1 - a.1 * b.0).sum();
        0.5 + s / self.params.rank as f64
    }

    fn bt(&self, i: usize, j: usize) -> f64 {
        1.0 / (1.0 + (self.skills[j] - self.skills[i]).exp())
    }

    fn cyc(&self, a: usize, b: usize) -> f64 {
        let (c, e) = (cyclic_entry(self.n, a, b), self.params.noise);
        if e == 0.0 {
            c
        } else {
            (1.0 - e) * c + e * unit(self.seed, a as u64, b as u64)
        }
    }

    fn mix(&self, a: usize, b: usize) -> f64 {
        let w = self.params.weight;
        w * self.bt(a, b) + (1.0 - w) * self.disc(a, b)
    }

    /// `P[i][j]`, skew-consistent by construction.
    pub fn entry(&self, i: usize, j: usize) -> f64 {
        let mut v = [0.0];
        self.row(i, j, &mut v);
        v[0]
    }

    /// `out[k] = P[i][j0 + k]`: one family dispatch per row segment.
    pub fn row(&self, i: usize, j0: usize, out: &mut [f64]) {
        let seed = self.seed;
        match self.family {
            Family::Uniform => fill_row(i, j0, out, |a, b| unit(seed, a as u64, b as u64)),
            Family::BradleyTerry => fill_row(i, j0, out, |a, b| self.bt(a, b)),
            Family::Cyclic => fill_row(i, j0, out, |a, b| self.cyc(a, b)),
            Family::Disc => fill_row(i, j0, out, |a, b| self.disc(a, b)),
            Family::Mixture => fill_row(i, j0, out, |a, b| self.mix(a, b)),
            Family::LowRank | Family::Block => unreachable!("structured families have factors"),
        }
    }
}

#[inline(always)]
fn fill_row(i: usize, j0: usize, out: &mut [f64], f: impl Fn(usize, usize) -> f64) {
    for (k, o) in out.iter_mut().enumerate() {
        *o = canonical(i, j0 + k, &f);
    }
}

impl crate::io::write::MatrixSource for DenseFamily {
    fn row(&self, i: usize, j0: usize, out: &mut [f64]) {
        DenseFamily::row(self, i, j0, out)
    }
    fn entry(&self, i: usize, j: usize) -> f64 {
        DenseFamily::entry(self, i, j)
    }
}

/// Factor `k` of the low-rank family at action `i`: `(a_k[i], b_k[i])`. Factor 0 is the skill
/// term `(s_i, 1)`.
pub fn lowrank_factor(seed: u64, k: usize, i: usize) -> (f64, f64) {
    let s = seed ^ TAG_LOWRANK;
    let a = 2.0 * unit(s, i as u64, 2 * k as u64) - 1.0;
    if k == 0 {
        (a, 1.0)
    } else {
        (a, 2.0 * unit(s, i as u64, 2 * k as u64 + 1) - 1.0)
    }
}

/// The low-rank family's weights: `1/8` for the skill term and `1/(8(r−1))` for the others
/// (`1/4` when the skill term is alone), so that `P ∈ [0, 1]`.
pub fn lowrank_weights(rank: usize) -> Vec<f64> {
    if rank == 1 {
        return vec![0.25];
    }
    let mut w = vec![1.0 / (8.0 * (rank - 1) as f64); rank];
    w[0] = 0.125;
    w
}

/// The block family's `Q` (a uniform `K × K` game).
pub fn block_q(seed: u64, k: usize) -> Vec<f64> {
    let mut q = vec![0.0; k * k];
    for a in 0..k {
        for b in 0..k {
            q[a * k + b] = uniform_entry(seed ^ TAG_Q, a, b);
        }
    }
    q
}

/// The type of action `i` in the block family.
pub fn block_type(seed: u64, k: usize, i: usize) -> u32 {
    ((unit(seed ^ TAG_TYPE, i as u64, 0) * k as f64) as usize).min(k - 1) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_valid_preference_matrices() {
        let p = Params {
            noise: 0.2,
            rank: 4,
            ..Params::default()
        };
        for f in [
            Family::Uniform,
            Family::BradleyTerry,
            Family::Cyclic,
            Family::Disc,
            Family::Mixture,
        ] {
            for n in [1usize, 2, 5, 40] {
                let g = DenseFamily::new(f, n, 7, p);
                for i in 0..n {
                    for j in 0..n {
                        let v = g.entry(i, j);
                        assert!((0.0..=1.0).contains(&v), "{f:?} ({i},{j}) = {v}");
                        assert_eq!(v + g.entry(j, i), 1.0, "{f:?} n={n} ({i},{j})");
                    }
                }
            }
        }
        // 101 actions: 0 beats 1..=50 and loses to 51..=100.
        assert_eq!(cyclic_entry(101, 0, 50), 1.0);
        assert_eq!(cyclic_entry(101, 0, 51), 0.0);
        assert_eq!(cyclic_entry(101, 100, 0), 1.0);
    }

    #[test]
    fn bradley_terry_is_transitive_and_disc_is_not() {
        let bt = DenseFamily::new(Family::BradleyTerry, 30, 1, Params::default());
        for i in 0..30 {
            for j in 0..30 {
                for k in 0..30 {
                    if bt.entry(i, j) > 0.5 && bt.entry(j, k) > 0.5 {
                        assert!(bt.entry(i, k) > 0.5);
                    }
                }
            }
        }
        let d = DenseFamily::new(Family::Disc, 30, 1, Params::default());
        let cycle = (0..30).any(|i| {
            (0..30).any(|j| {
                (0..30).any(|k| d.entry(i, j) > 0.5 && d.entry(j, k) > 0.5 && d.entry(k, i) > 0.5)
            })
        });
        assert!(cycle, "a disc game has intransitive cycles");
    }
}
