//! Parametric (log-linear) policies (docs/math.md §8): `π_θ(y) = μ(y)·exp(θ·φ(y) − A(θ))` over `d`
//! action features `φ ∈ R^{n×d}`, `θ ∈ R^d`.
//!
//! - [`Features`]: the columns `φ_k` (from a `.npy` file, validated, or borrowed from a low-rank
//!   game's own factors, [`Features::of_game`]).
//! - [`LinearClass`]: features, reference `μ` and, for realizable games, the skew matrix `M`
//!   with `P(y, y') = 1/2 + φ(y)ᵀ M φ(y')`. Its moments (`A(θ)`, `m(π_θ) = E_π[φ]`,
//!   `Cov_π(φ)`), log-probabilities and samples are `O(n·d)` parallel passes over fixed chunks
//!   of [`CHUNK`] actions whose partial results are combined in chunk order: the same bytes for
//!   any thread count.
//! - [`algo`]: Nash-MP, OMWU and MMD in the class, from exact directions or from sampled queries
//!   (the natural-gradient estimate of §8).
//! - [`adapter`]: the same algorithms behind the tabular [`crate::algo::Algorithm`] interface,
//!   so that `solve --policy linear` gets the driver's metrics, checkpoints and Ctrl-C.
//! - [`sweep`]: the experiment (`nashmp param-sweep`): queries to reach `exploit ≤ ε` against
//!   `n` at fixed `d`.

pub mod adapter;
pub mod algo;
pub mod cli;
pub mod linalg;
pub mod sweep;

use crate::error::{Error, Result};
use crate::game::PreferenceOperator;
use crate::kernels::vector::CHUNK;
use rayon::prelude::*;
use std::borrow::Cow;
use std::path::Path;

/// Below this many actions the passes run sequentially (same chunks, same result).
const PAR_MIN: usize = 1 << 16;
/// Draws per block of [`LinearClass::draws`]; each block has its own random stream.
pub const DRAWS_PER_BLOCK: usize = 4096;

/// Action features `φ` (`n × d`), stored by column.
#[derive(Clone, Debug)]
pub struct Features<'a> {
    n: usize,
    cols: Vec<Cow<'a, [f64]>>,
}

impl<'a> Features<'a> {
    /// Features from columns (each of length `n`, `d ≥ 1`, finite).
    pub fn from_columns(what: &str, cols: Vec<Cow<'a, [f64]>>) -> Result<Self> {
        let bad = |reason: String| Error::BadVector {
            what: what.to_string(),
            reason,
        };
        let Some(n) = cols.first().map(|c| c.len()) else {
            return Err(bad(
                "no features (d = 0): a log-linear policy needs d ≥ 1".into()
            ));
        };
        if n == 0 {
            return Err(bad("features of no actions (n = 0)".into()));
        }
        for (k, c) in cols.iter().enumerate() {
            if c.len() != n {
                return Err(bad(format!(
                    "feature column {k} has {} entries, column 0 has {n}",
                    c.len()
                )));
            }
            if let Some(i) = c.iter().position(|x| !x.is_finite()) {
                return Err(bad(format!("feature φ[{i}][{k}] = {} is not finite", c[i])));
            }
        }
        Ok(Features { n, cols })
    }

    /// Number of actions.
    pub fn n(&self) -> usize {
        self.n
    }
    /// Number of features.
    pub fn d(&self) -> usize {
        self.cols.len()
    }
    /// Column `k`.
    pub fn col(&self, k: usize) -> &[f64] {
        &self.cols[k]
    }
    /// `φ(i)·θ`.
    #[inline]
    pub fn dot(&self, i: usize, theta: &[f64]) -> f64 {
        let mut s = 0.0;
        for (c, t) in self.cols.iter().zip(theta) {
            s += c[i] * t;
        }
        s
    }
    /// An owned copy (`'static`).
    pub fn into_owned(self) -> Features<'static> {
        Features {
            n: self.n,
            cols: self
                .cols
                .into_iter()
                .map(|c| Cow::Owned(c.into_owned()))
                .collect(),
        }
    }

    /// The features of a `.npy` file of shape `(n, d)` (float32 or float64, C order), checked
    /// against a game of `n` actions: `d ≥ 1`, every entry finite.
    pub fn load_npy(path: &Path, n: usize) -> Result<Features<'static>> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if !meta.is_file() {
            return Err(Error::io(
                path,
                std::io::Error::other("is not a regular file"),
            ));
        }
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::parse_npy(path, &bytes, n)
    }

    /// As [`Features::load_npy`], from the file's bytes.
    pub fn parse_npy(path: &Path, bytes: &[u8], n: usize) -> Result<Features<'static>> {
        use crate::io::npy::DType;
        let h = crate::io::array::checked_header(path, bytes)?;
        let what = path.display().to_string();
        let bad = |reason: String| Error::BadVector {
            what: what.clone(),
            reason,
        };
        let (rows, d) = match h.shape[..] {
            [r, d] => (r as usize, d as usize),
            _ => {
                return Err(bad(format!(
                    "features must be a 2-D array of shape (n, d), found shape {:?}",
                    h.shape
                )))
            }
        };
        if d == 0 {
            return Err(bad(format!(
                "features have shape ({rows}, 0): a log-linear policy needs d ≥ 1"
            )));
        }
        if rows != n {
            return Err(bad(format!(
                "features have {rows} rows but the game has {n} actions (features of a different game?)"
            )));
        }
        if d > n {
            return Err(bad(format!(
                "d = {d} features for n = {n} actions: the class would be over-parametrised (need d ≤ n)"
            )));
        }
        let data = &bytes[h.data_offset..];
        let value = |idx: usize| -> f64 {
            match h.dtype {
                DType::F64 => f64::from_le_bytes(data[8 * idx..8 * idx + 8].try_into().unwrap()),
                DType::F32 => {
                    f32::from_le_bytes(data[4 * idx..4 * idx + 4].try_into().unwrap()) as f64
                }
            }
        };
        let mut cols = vec![vec![0.0; n]; d];
        for i in 0..n {
            for (k, c) in cols.iter_mut().enumerate() {
                let v = value(i * d + k);
                if !v.is_finite() {
                    return Err(bad(format!("feature φ[{i}][{k}] = {v} is not finite")));
                }
                c[i] = v;
            }
        }
        Features::from_columns(&what, cols.into_iter().map(Cow::Owned).collect())
    }

    /// A low-rank game's own factors `φ = (a_1..a_r, b_1..b_r)` and `M = [[0, W], [−W, 0]]`,
    /// borrowed; `Err` if the game is not stored as factors.
    pub fn of_game(op: &'a dyn PreferenceOperator, what: &str) -> Result<(Self, Vec<f64>)> {
        let info = op.info();
        let layout = info.layout;
        let crate::game::Factors { cols, m } = info.structure.factors().ok_or_else(|| {
            Error::Param(format!(
                "--features game needs a game stored as factors (low-rank or disc written by \
                 `nashmp generate low-rank`/`param-sweep`); {what} is {layout}"
            ))
        })?;
        let f = Features::from_columns(what, cols.into_iter().map(Cow::Borrowed).collect())?;
        Ok((f, m))
    }
}

/// `A(θ)`, `m(π_θ)` and (optionally) `Cov_π(φ)` of one policy, and the per-chunk log-weights
/// the sampler needs.
#[derive(Clone, Debug, PartialEq)]
pub struct Moments {
    /// `log Σ_y exp(s(y))` with `s(y) = log μ(y) + θ·φ(y)`: the log-normaliser `A(θ)`.
    pub log_z: f64,
    /// `m(π) = E_π[φ]`.
    pub mean: Vec<f64>,
    /// `Cov_π(φ)`, `d × d` row-major, when asked for.
    pub cov: Option<Vec<f64>>,
    /// `log Σ_{y ∈ chunk c} exp(s(y))` per chunk of [`CHUNK`] actions.
    pub chunk_log_w: Vec<f64>,
    /// `max_y s(y)` (the rejection sampler's envelope).
    pub max_score: f64,
}

/// One chunk's partial sums, relative to its own maximum score.
struct Part {
    max: f64,
    w: f64,
    /// `Σ w φ` (d) then the upper triangle of `Σ w φφᵀ` (if asked), row by row.
    sums: Vec<f64>,
}

/// A log-linear policy class.
#[derive(Clone, Debug)]
pub struct LinearClass<'a> {
    feats: Features<'a>,
    /// `log μ` (normalised); `None`: uniform.
    log_mu: Option<Cow<'a, [f64]>>,
    /// `M` (`d × d`, row-major, skew) when the game is realizable in these features.
    skew: Option<Vec<f64>>,
    /// A reference inside the class, `μ ∝ exp(θ_μ·φ)` (with `log_mu = None`); `None`: uniform.
    theta_mu: Option<Vec<f64>>,
    /// `log Σ_y exp(s_0(y))` of the reference's unnormalised scores: `log n` for uniform `μ`,
    /// `0` for a given `log μ`.
    offset: f64,
}

impl<'a> LinearClass<'a> {
    /// The class over `feats` with reference `log_mu` (`None`: uniform) and, for a realizable
    /// game, its skew matrix `M`.
    ///
    /// # Panics
    /// If `log_mu` or `skew` do not fit `feats` (a bug).
    pub fn new(
        feats: Features<'a>,
        log_mu: Option<Cow<'a, [f64]>>,
        skew: Option<Vec<f64>>,
    ) -> Self {
        let d = feats.d();
        assert!(log_mu.as_ref().is_none_or(|m| m.len() == feats.n()));
        assert!(skew.as_ref().is_none_or(|m| m.len() == d * d));
        let offset = if log_mu.is_none() {
            (feats.n() as f64).ln()
        } else {
            0.0
        };
        LinearClass {
            feats,
            log_mu,
            skew,
            theta_mu: None,
            offset,
        }
    }

    /// The same class with the reference `μ ∝ exp(θ_μ·φ)` (a reference policy inside the class,
    /// stored as `d` numbers, e.g. a "fine-tuned" start away from the equilibrium); `π_θ` is
    /// then `∝ exp((θ_μ + θ)·φ)` and `π_0 = μ`.
    ///
    /// # Panics
    /// If the class already has a reference or `theta_mu` has the wrong length.
    pub fn with_reference_params(mut self, theta_mu: Vec<f64>) -> Self {
        assert!(self.log_mu.is_none() && theta_mu.len() == self.d());
        self.theta_mu = Some(theta_mu);
        let zero = vec![0.0; self.d()];
        self.offset = 0.0;
        self.offset = self.moments(&zero, false).log_z;
        self
    }

    pub fn features(&self) -> &Features<'a> {
        &self.feats
    }
    pub fn n(&self) -> usize {
        self.feats.n()
    }
    pub fn d(&self) -> usize {
        self.feats.d()
    }
    /// `M` when the game is realizable.
    pub fn skew(&self) -> Option<&[f64]> {
        self.skew.as_deref()
    }

    /// An owned copy.
    pub fn into_owned(self) -> LinearClass<'static> {
        LinearClass {
            feats: self.feats.into_owned(),
            log_mu: self.log_mu.map(|m| Cow::Owned(m.into_owned())),
            skew: self.skew,
            theta_mu: self.theta_mu,
            offset: self.offset,
        }
    }

    /// `s(y) = log μ(y) + θ·φ(y)` (for uniform `μ`, without the constant `−log n`).
    #[inline]
    pub fn score(&self, theta: &[f64], i: usize) -> f64 {
        match (&self.log_mu, &self.theta_mu) {
            (Some(m), _) => m[i] + self.feats.dot(i, theta),
            (None, Some(t0)) => {
                let mut s = 0.0;
                for k in 0..t0.len() {
                    s += self.feats.cols[k][i] * (t0[k] + theta[k]);
                }
                s
            }
            (None, None) => self.feats.dot(i, theta),
        }
    }

    /// `θ_μ` of a reference inside the class.
    pub fn reference_params(&self) -> Option<&[f64]> {
        self.theta_mu.as_deref()
    }

    /// The normaliser's offset: the log-normaliser of the reference's scores (`log n` for
    /// uniform `μ`, whose scores omit `−log n`; 0 for a given normalised `log μ`).
    fn mu_offset(&self) -> f64 {
        self.offset
    }

    /// The scores `s(y)` of the actions `lo..hi` into `out`, column by column.
    fn scores_into(&self, theta: &[f64], lo: usize, out: &mut [f64]) {
        let hi = lo + out.len();
        match (&self.log_mu, &self.theta_mu) {
            (Some(m), _) => out.copy_from_slice(&m[lo..hi]),
            _ => out.iter_mut().for_each(|o| *o = 0.0),
        }
        for (k, col) in self.feats.cols.iter().enumerate() {
            let t = theta[k] + self.theta_mu.as_ref().map_or(0.0, |t0| t0[k]);
            if t != 0.0 {
                for (o, c) in out.iter_mut().zip(&col[lo..hi]) {
                    *o += t * c;
                }
            }
        }
    }

    /// `A(θ)`, `m(π_θ)` and, if `cov`, `Cov_π(φ)`: one pass over fixed chunks (scores column
    /// by column, a vectorised `exp`, then the weighted sums), chunks combined in order.
    pub fn moments(&self, theta: &[f64], cov: bool) -> Moments {
        let d = self.d();
        assert_eq!(theta.len(), d);
        let width = d + if cov { d * (d + 1) / 2 } else { 0 };
        let n = self.n();
        let part = |c: usize| -> Part {
            let (lo, hi) = (c * CHUNK, ((c + 1) * CHUNK).min(n));
            let mut s = vec![0.0; hi - lo];
            self.scores_into(theta, lo, &mut s);
            let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            s.iter_mut().for_each(|x| *x -= max);
            let mut e = vec![0.0; hi - lo];
            crate::kernels::exp::exp_slice(&s, &mut e);
            let w: f64 = e.iter().sum();
            let mut sums = vec![0.0; width];
            for (k, sk) in sums.iter_mut().take(d).enumerate() {
                let col = &self.feats.cols[k][lo..hi];
                *sk = e.iter().zip(col).map(|(a, b)| a * b).sum();
            }
            if cov {
                let mut at = d;
                for a in 0..d {
                    let ca = &self.feats.cols[a][lo..hi];
                    // s ← e·φ_a, reused for every b ≥ a.
                    for ((x, ei), fa) in s.iter_mut().zip(&e).zip(ca) {
                        *x = ei * fa;
                    }
                    for b in a..d {
                        let cb = &self.feats.cols[b][lo..hi];
                        sums[at] = s.iter().zip(cb).map(|(x, y)| x * y).sum();
                        at += 1;
                    }
                }
            }
            Part { max, w, sums }
        };
        let chunks = n.div_ceil(CHUNK);
        let parts: Vec<Part> = if n < PAR_MIN {
            (0..chunks).map(part).collect()
        } else {
            (0..chunks).into_par_iter().map(part).collect()
        };
        let top = parts
            .iter()
            .map(|p| p.max)
            .fold(f64::NEG_INFINITY, f64::max);
        let mut w = 0.0;
        let mut sums = vec![0.0; width];
        for p in &parts {
            let scale = (p.max - top).exp();
            w += scale * p.w;
            for (t, v) in sums.iter_mut().zip(&p.sums) {
                *t += scale * v;
            }
        }
        let off = self.mu_offset();
        let log_z = top + w.ln() - off;
        let mean: Vec<f64> = sums[..d].iter().map(|s| s / w).collect();
        let cov = cov.then(|| {
            let mut c = vec![0.0; d * d];
            let mut at = d;
            for a in 0..d {
                for b in a..d {
                    let v = sums[at] / w - mean[a] * mean[b];
                    at += 1;
                    c[a * d + b] = v;
                    c[b * d + a] = v;
                }
            }
            c
        });
        let chunk_log_w = parts.iter().map(|p| p.max + p.w.ln() - off).collect();
        Moments {
            log_z,
            mean,
            cov,
            chunk_log_w,
            max_score: top,
        }
    }

    /// `A(θ)` alone.
    pub fn log_partition(&self, theta: &[f64]) -> f64 {
        self.moments(theta, false).log_z
    }

    /// `out[y] = log π_θ(y) = s(y) − A(θ)` (full log-probabilities, for the tabular metrics).
    pub fn log_probs(&self, theta: &[f64], log_z: f64, out: &mut [f64]) {
        assert_eq!(out.len(), self.n());
        let c = log_z + self.mu_offset();
        crate::kernels::vector::fill(out, |i| self.score(theta, i) - c);
    }

    /// `(Cov_π(φ, g), E_π[g])` for a payoff vector `g` (length `n`): the exact right-hand side
    /// of the in-class projection (docs/math.md §8, non-realizable games).
    pub fn cov_with(&self, theta: &[f64], mom: &Moments, g: &[f64]) -> Vec<f64> {
        let d = self.d();
        let n = self.n();
        assert_eq!(g.len(), n);
        let c = mom.log_z + self.mu_offset();
        let sums = crate::kernels::vector::sums_by(n, d + 1, |i, acc| {
            let p = (self.score(theta, i) - c).exp();
            acc[0] += p * g[i];
            for k in 0..d {
                acc[1 + k] += p * g[i] * self.feats.cols[k][i];
            }
        });
        (0..d)
            .map(|k| sums[1 + k] - mom.mean[k] * sums[0])
            .collect()
    }

    /// Draws one action per uniform `u ∈ [0, 1)` by inversion of `π_θ`'s CDF (actions in index
    /// order), returned in the order of `uniforms`: `O(n·d)` for the chunks that hold a draw,
    /// in parallel over fixed chunks, so the draws do not depend on the thread count.
    pub fn sample(&self, theta: &[f64], mom: &Moments, uniforms: &[f64]) -> Vec<usize> {
        let n = self.n();
        let mut order: Vec<(f64, usize)> = uniforms
            .iter()
            .copied()
            .enumerate()
            .map(|(i, u)| (u, i))
            .collect();
        order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        // Chunk probabilities and their cumulative sums, in chunk order.
        let probs: Vec<f64> = mom
            .chunk_log_w
            .iter()
            .map(|lw| (lw - mom.log_z).exp())
            .collect();
        let total: f64 = probs.iter().sum();
        let last_positive = probs.iter().rposition(|p| *p > 0.0).unwrap_or(0);
        // Group the sorted draws by chunk: (chunk, start of its cumulative mass, draws).
        let mut groups: Vec<(usize, f64, usize, usize)> = Vec::new();
        let (mut c, mut cum) = (0usize, 0.0f64);
        let mut at = 0;
        while at < order.len() {
            let target = order[at].0 * total;
            while c < last_positive && cum + probs[c] <= target {
                cum += probs[c];
                c += 1;
            }
            let start = at;
            while at < order.len() && (c == last_positive || order[at].0 * total < cum + probs[c]) {
                at += 1;
            }
            groups.push((c, cum, start, at));
        }
        let off = self.mu_offset();
        let locate = |&(c, base, s, e): &(usize, f64, usize, usize)| -> Vec<usize> {
            let (lo, hi) = (c * CHUNK, ((c + 1) * CHUNK).min(n));
            let lw = mom.chunk_log_w[c] + off;
            // Weights relative to the chunk's mass: exp(s_i − log w_c) sums to 1.
            let mut out = Vec::with_capacity(e - s);
            let mut i = lo;
            let mut acc = 0.0;
            let mut last_pos = lo;
            for &(u, _) in &order[s..e] {
                let target = (u * total - base) / probs[c].max(f64::MIN_POSITIVE);
                loop {
                    if i >= hi {
                        break;
                    }
                    let p = (self.score(theta, i) - lw).exp();
                    if p > 0.0 {
                        last_pos = i;
                    }
                    if p > 0.0 && acc + p > target {
                        break;
                    }
                    acc += p;
                    i += 1;
                }
                out.push(if i >= hi { last_pos } else { i });
            }
            out
        };
        let found: Vec<Vec<usize>> = if groups.len() < 4 {
            groups.iter().map(locate).collect()
        } else {
            groups.par_iter().map(locate).collect()
        };
        let mut res = vec![0usize; uniforms.len()];
        for (g, ys) in groups.iter().zip(found) {
            for (k, y) in ys.into_iter().enumerate() {
                res[order[g.2 + k].1] = y;
            }
        }
        res
    }

    /// `count` independent draws from `π_θ`, in fixed blocks of [`DRAWS_PER_BLOCK`], block `b`
    /// from the stream `stream(seed, [coords.., b])`. When `μ` is uniform or inside the class,
    /// by rejection from uniform proposals under the envelope `exp(max s)` (expected
    /// `exp(max s − log Σ exp s)·n` proposals per draw, `O(d)` each: free of `n`); otherwise,
    /// or when that expectation exceeds `n/8` proposals per block of draws, by inversion
    /// ([`LinearClass::sample`], `O(n·d)`).
    pub fn draws(
        &self,
        theta: &[f64],
        mom: &Moments,
        count: usize,
        seed: u64,
        coords: &[u64],
    ) -> Vec<usize> {
        let n = self.n();
        let blocks = count.div_ceil(DRAWS_PER_BLOCK);
        let rng_of = |b: usize| {
            let mut c = coords.to_vec();
            c.push(b as u64);
            crate::oracle::stream(seed, &c)
        };
        // Acceptance probability of a uniform proposal.
        let accept = (mom.log_z + self.mu_offset() - (n as f64).ln() - mom.max_score).exp();
        let rejection = self.log_mu.is_none()
            && accept > 0.0
            && (DRAWS_PER_BLOCK as f64 / accept) < (n as f64 / 8.0).max(4096.0);
        if !rejection {
            let u: Vec<f64> = (0..blocks)
                .flat_map(|b| {
                    let len = DRAWS_PER_BLOCK.min(count - b * DRAWS_PER_BLOCK);
                    let mut rng = rng_of(b);
                    (0..len)
                        .map(move |_| crate::oracle::unit(&mut rng))
                        .collect::<Vec<_>>()
                })
                .collect();
            return self.sample(theta, mom, &u);
        }
        let block = |b: usize| -> Vec<usize> {
            let len = DRAWS_PER_BLOCK.min(count - b * DRAWS_PER_BLOCK);
            let mut rng = rng_of(b);
            let mut out = Vec::with_capacity(len);
            while out.len() < len {
                let y = ((crate::oracle::unit(&mut rng) * n as f64) as usize).min(n - 1);
                let a = (self.score(theta, y) - mom.max_score).exp();
                if crate::oracle::unit(&mut rng) < a {
                    out.push(y);
                }
            }
            out
        };
        let parts: Vec<Vec<usize>> = if blocks < 2 {
            (0..blocks).map(block).collect()
        } else {
            (0..blocks).into_par_iter().map(block).collect()
        };
        parts.into_iter().flatten().collect()
    }

    /// `v = M m` for a realizable class.
    ///
    /// # Panics
    /// If the class has no `M`.
    pub fn skew_times(&self, m: &[f64]) -> Vec<f64> {
        let d = self.d();
        let s = self.skew.as_ref().expect("realizable class");
        (0..d)
            .map(|a| (0..d).map(|b| s[a * d + b] * m[b]).sum())
            .collect()
    }

    /// The one-sided exploitability of `π_θ` in a realizable game, from moments alone:
    /// `β[A(M m/β) − A(θ) + θ·m]` (docs/math.md §5 with `g = 1/2 + φ M m`, §8).
    pub fn exploit_realizable(&self, theta: &[f64], mom: &Moments, beta: f64) -> f64 {
        let v = self.skew_times(&mom.mean);
        let br: Vec<f64> = v.iter().map(|x| x / beta).collect();
        let a_br = self.log_partition(&br);
        let tm: f64 = theta.iter().zip(&mom.mean).map(|(t, m)| t * m).sum();
        beta * (a_br - mom.log_z + tm)
    }
}

#[cfg(test)]
mod tests;
