//! What a sweep runs: the grid (families × sizes × β × algorithms × seeds), its presets, and the
//! per-β query budget.

use crate::algo::AlgoKind;
use crate::error::{Error, Result};
use crate::gen::{Family, Params};

/// Named grids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// Small games and few iterations: seconds, even in a debug build (the test suite runs it).
    Quick,
    /// `uniform` up to n = 16384, `low-rank` and `block` up to 10^7, β ∈ {0.01, 0.1, 1}, 3 seeds,
    /// at most 400 Nash-MP iterations; Nash-MP, MMD, OMWU and EGPO below 10^6 actions, Nash-MP
    /// alone and at most 200 iterations from 10^6 on (see docs/size-independence.md for its wall
    /// time).
    Full,
}

/// The policy class of a sweep's runs (`--policy`).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// One log-probability per action.
    Tabular,
    /// `π_θ ∝ μ·exp(θ·φ)` over the game's own factors as features (docs/math.md §8; low-rank
    /// games).
    Linear,
}

/// How a sweep's runs query the game (`--oracle`).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Oracle {
    /// Exact payoff vectors `P π` (a query is one payoff vector).
    Exact,
    /// Sampled preference pairs with Bernoulli answers (a query is one pair): tabular
    /// approximate Nash-MP (`solve --oracle pg --inner-steps 1`, batch `c·n`) or the linear
    /// class's natural-gradient estimate (batch B).
    Pg,
}

impl Policy {
    pub fn name(self) -> &'static str {
        match self {
            Policy::Tabular => "tabular",
            Policy::Linear => "linear",
        }
    }
}

impl Oracle {
    pub fn name(self) -> &'static str {
        match self {
            Oracle::Exact => "exact",
            Oracle::Pg => "pg",
        }
    }
}

/// Whether `kind` runs in the class `policy` under `oracle`: tabular exact runs every algorithm,
/// tabular pg is approximate Nash-MP only, the linear class runs nash-mp, omwu and mmd.
pub fn supports(policy: Policy, oracle: Oracle, kind: AlgoKind) -> bool {
    match (policy, oracle) {
        (Policy::Tabular, Oracle::Exact) => true,
        (Policy::Tabular, Oracle::Pg) => kind == AlgoKind::NashMp,
        (Policy::Linear, _) => crate::param::algo::check_kind(kind).is_ok(),
    }
}

/// One run of a game at one β: the class, the oracle and the algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CellKind {
    pub policy: Policy,
    pub oracle: Oracle,
    pub kind: AlgoKind,
}

/// A validated sweep grid.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SweepConfig {
    pub families: Vec<Family>,
    /// Sizes of the matrix families.
    pub sizes: Vec<usize>,
    /// Sizes of the structured families (`low-rank`, `block`).
    pub structured_sizes: Vec<usize>,
    pub betas: Vec<f64>,
    pub algos: Vec<AlgoKind>,
    /// Algorithms on games of at least [`THIN_FROM`] actions (`None`: `algos`): at 10^7 an
    /// iteration takes tenths of a second, so the full preset runs only Nash-MP there.
    pub large_algos: Option<Vec<AlgoKind>>,
    pub seeds: Vec<u64>,
    /// Nash-MP iterations per run (every algorithm gets the same query budget, `2 × iters`);
    /// `None`: [`auto_iters`] per β.
    pub iters: Option<u64>,
    /// At most this many Nash-MP iterations on games of at least [`THIN_FROM`] actions (`None`:
    /// no cap beyond `iters`).
    pub large_max_iters: Option<u64>,
    /// Family parameters (the generator's defaults).
    pub params: Params,
    /// Policy classes run on every game (`[Tabular]` unless asked).
    pub policies: Vec<Policy>,
    /// Oracles every class runs with (`[Exact]` unless asked).
    pub oracles: Vec<Oracle>,
    /// Sampled pairs per direction estimate of `linear` under `pg`.
    pub batch: u64,
    /// Pairs per prox step of `tabular` under `pg`, as a multiple of `n` (its queries grow
    /// with `n`: that is what the comparison shows).
    pub tabular_batch_per_n: f64,
    /// `tabular` under `pg` runs on games of at most this many actions.
    pub tabular_pg_max_n: usize,
    /// The exploitability target of the summary's queries-to-ε column and table.
    pub eps: f64,
}

/// The defaults of the policy and oracle axes (tabular and exact only).
pub const AXES_DEFAULT: (u64, f64, usize, f64) = (4096, 256.0, 10_000, 1e-3);

/// The bound the automatic budget drives Nash-MP's guarantee down to.
pub const AUTO_BOUND_TARGET: f64 = 1e-9;
/// The automatic budget never exceeds this many Nash-MP iterations.
pub const AUTO_MAX_ITERS: u64 = 400;

/// Nash-MP iterations (at its default α = 2) for the bound `(1+2β)^{−K}·KL(π*‖μ)` to fall below
/// [`AUTO_BOUND_TARGET`] from the worst case `KL(π*‖μ) = 1/(2β)`, at most [`AUTO_MAX_ITERS`].
pub fn auto_iters(beta: f64) -> u64 {
    let k = ((1.0 / (2.0 * beta * AUTO_BOUND_TARGET)).ln() / (2.0 * beta).ln_1p()).ceil();
    (k as u64).clamp(1, AUTO_MAX_ITERS)
}

impl Preset {
    pub fn config(self) -> SweepConfig {
        match self {
            Preset::Quick => SweepConfig {
                families: vec![Family::Uniform, Family::LowRank],
                sizes: vec![32, 128],
                structured_sizes: vec![100, 2000],
                betas: vec![0.2, 1.0],
                algos: vec![AlgoKind::NashMp, AlgoKind::Mmd, AlgoKind::Omwu],
                large_algos: None,
                seeds: vec![0, 1],
                iters: Some(25),
                large_max_iters: None,
                params: Params::default(),
                policies: vec![Policy::Tabular],
                oracles: vec![Oracle::Exact],
                batch: AXES_DEFAULT.0,
                tabular_batch_per_n: AXES_DEFAULT.1,
                tabular_pg_max_n: AXES_DEFAULT.2,
                eps: AXES_DEFAULT.3,
            },
            Preset::Full => SweepConfig {
                families: vec![Family::Uniform, Family::LowRank, Family::Block],
                sizes: vec![256, 1024, 4096, 16384],
                structured_sizes: vec![1000, 10_000, 100_000, 1_000_000, 10_000_000],
                betas: vec![0.01, 0.1, 1.0],
                algos: vec![
                    AlgoKind::NashMp,
                    AlgoKind::Mmd,
                    AlgoKind::Omwu,
                    AlgoKind::Egpo,
                ],
                large_algos: Some(vec![AlgoKind::NashMp]),
                seeds: vec![0, 1, 2],
                iters: None,
                large_max_iters: Some(200),
                params: Params::default(),
                policies: vec![Policy::Tabular],
                oracles: vec![Oracle::Exact],
                batch: AXES_DEFAULT.0,
                tabular_batch_per_n: AXES_DEFAULT.1,
                tabular_pg_max_n: AXES_DEFAULT.2,
                eps: AXES_DEFAULT.3,
            },
        }
    }
}

/// From this many actions on, a sweep measures every [`SweepConfig::log_every`]-th iterate
/// only: the metrics cost about as much as an iteration, and at n = 10^7 an iteration takes
/// tenths of a second.
pub const THIN_FROM: usize = 1_000_000;
/// Logged iterates per run at least, when thinned.
pub const THIN_POINTS: u64 = 100;

impl SweepConfig {
    /// The logging stride of a run of `iters` iterations on `n` actions: 1 below
    /// [`THIN_FROM`], else about `iters /` [`THIN_POINTS`].
    pub fn log_every(&self, n: usize, iters: u64) -> u64 {
        if n < THIN_FROM {
            1
        } else {
            (iters / THIN_POINTS).max(1)
        }
    }

    /// Checks the grid: non-empty lists, sizes ≥ 2, β > 0 and finite (π* must be unique), family
    /// parameters valid, and every algorithm's default step allowed at every β.
    pub fn validate(&self) -> Result<()> {
        let empty = |what: &str| Error::Param(format!("--{what} must not be empty"));
        if self.families.is_empty() {
            return Err(empty("families"));
        }
        if self.betas.is_empty() {
            return Err(empty("betas"));
        }
        if self.algos.is_empty() {
            return Err(empty("algos"));
        }
        if self.seeds.is_empty() {
            return Err(empty("seeds"));
        }
        for f in &self.families {
            self.params
                .check(*f)
                .map_err(|e| Error::Param(format!("{}: {e}", super::cache::family_name(*f))))?;
            if self.sizes_of(*f).is_empty() {
                return Err(Error::Param(format!(
                    "no sizes for {}: give --sizes (or --structured-sizes)",
                    super::cache::family_name(*f)
                )));
            }
        }
        for &n in self.sizes.iter().chain(&self.structured_sizes) {
            if n < 2 {
                return Err(Error::Param(format!("sizes must be ≥ 2, got {n}")));
            }
        }
        for &b in &self.betas {
            if !(b.is_finite() && b > 0.0) {
                return Err(Error::Param(format!(
                    "a sweep measures distances to the unique π*, which needs β > 0; got β = {b}"
                )));
            }
            for &a in self.algos.iter().chain(self.large_algos.iter().flatten()) {
                a.check_alpha(a.default_alpha(b), b)?;
            }
        }
        if self.iters == Some(0) {
            return Err(Error::Param("--iters must be ≥ 1".into()));
        }
        self.validate_axes()
    }

    /// Checks the policy and oracle axes: each (class, oracle) pair runs at least one of the
    /// algorithms, the linear class has features (the game's factors: low-rank games only), and
    /// the batch sizes and ε are valid.
    fn validate_axes(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Param(m));
        if self.policies.is_empty() || self.oracles.is_empty() {
            return bad("--policy and --oracle must not be empty".into());
        }
        for &p in &self.policies {
            for &o in &self.oracles {
                let all = self.algos.iter().chain(self.large_algos.iter().flatten());
                if !all.clone().any(|&k| supports(p, o, k)) {
                    let runs = match (p, o) {
                        (Policy::Tabular, Oracle::Pg) => "nash-mp",
                        _ => "nash-mp, omwu and mmd",
                    };
                    return bad(format!(
                        "--policy {} --oracle {} runs {runs}; none of them is in --algos",
                        p.name(),
                        o.name()
                    ));
                }
            }
        }
        if self.policies.contains(&Policy::Linear) {
            if let Some(f) = self.families.iter().find(|&&f| f != Family::LowRank) {
                return bad(format!(
                    "--policy linear takes the game's own factors as features, and {} games are \
                     stored without factors: sweep low-rank games (or run `nashmp param-sweep`, \
                     which also writes disc games as factors)",
                    super::cache::family_name(*f)
                ));
            }
        }
        if self.batch == 0 {
            return bad("--batch must be ≥ 1 (sampled pairs per direction estimate)".into());
        }
        let c = self.tabular_batch_per_n;
        if !(c.is_finite() && c > 0.0) {
            return bad(format!("--tabular-batch-per-n must be positive, got {c}"));
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return bad(format!("--eps must be positive, got {}", self.eps));
        }
        Ok(())
    }

    /// The runs of a game of `n` actions at one β, in a fixed order: class, oracle, algorithm
    /// (each combination that [`supports`] allows; tabular pg up to `tabular_pg_max_n`).
    pub fn cells_at(&self, n: usize) -> Vec<CellKind> {
        let mut v = Vec::new();
        for &policy in &self.policies {
            for &oracle in &self.oracles {
                if (policy, oracle) == (Policy::Tabular, Oracle::Pg) && n > self.tabular_pg_max_n {
                    continue;
                }
                for &kind in self.algos_at(n) {
                    if supports(policy, oracle, kind) {
                        v.push(CellKind {
                            policy,
                            oracle,
                            kind,
                        });
                    }
                }
            }
        }
        v
    }

    /// The pairs per prox step (or direction estimate) of a sampled run on `n` actions.
    pub fn pg_batch(&self, policy: Policy, n: usize) -> u64 {
        match policy {
            Policy::Linear => self.batch,
            Policy::Tabular => ((self.tabular_batch_per_n * n as f64).ceil() as u64).max(1),
        }
    }

    /// The sizes a family is run at.
    pub fn sizes_of(&self, f: Family) -> &[usize] {
        if f.is_structured() {
            &self.structured_sizes
        } else {
            &self.sizes
        }
    }

    /// The algorithms run on games of `n` actions.
    pub fn algos_at(&self, n: usize) -> &[AlgoKind] {
        match &self.large_algos {
            Some(v) if n >= THIN_FROM => v,
            _ => &self.algos,
        }
    }

    /// Nash-MP iterations at `beta` on `n` actions.
    pub fn iters_at(&self, beta: f64, n: usize) -> u64 {
        let k = self.iters.unwrap_or_else(|| auto_iters(beta));
        match self.large_max_iters {
            Some(cap) if n >= THIN_FROM => k.min(cap),
            _ => k,
        }
    }

    /// Iterations of `algo` at `beta` on `n` actions: the same query budget as Nash-MP's.
    pub fn algo_iters(&self, algo: AlgoKind, beta: f64, n: usize) -> u64 {
        let budget = 2 * self.iters_at(beta, n);
        // OMWU's first iteration also pays for g(π_0).
        let a = algo.info();
        budget.saturating_sub(a.initial_queries) / a.queries_per_iter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_validate_and_budgets_match() {
        for p in [Preset::Quick, Preset::Full] {
            p.config().validate().unwrap();
        }
        let c = Preset::Full.config();
        // β = 1: (1/3)^K · 1/2 ≤ 1e-9 needs K = 19.
        assert_eq!(auto_iters(1.0), 19);
        assert_eq!(c.algo_iters(AlgoKind::Mmd, 1.0, 1000), 38);
        assert_eq!(c.algo_iters(AlgoKind::Omwu, 1.0, 1000), 37);
        // From 10^6 actions the full preset caps Nash-MP at 200 iterations.
        assert_eq!(c.iters_at(0.01, 1000), 400);
        assert_eq!(c.iters_at(0.01, 10_000_000), 200);
        assert_eq!(c.iters_at(1.0, 10_000_000), 19);
        let mut bad = c.clone();
        bad.betas = vec![0.0];
        assert!(bad.validate().is_err());
    }
}
