//! Algorithm names, step sizes and their validation (docs/math.md §2–3).

use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// The algorithms of docs/math.md §3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum AlgoKind {
    #[serde(rename = "nash-mp")]
    NashMp,
    #[serde(rename = "mmd")]
    Mmd,
    #[serde(rename = "omwu")]
    Omwu,
    #[serde(rename = "egpo")]
    Egpo,
    #[serde(rename = "nash-md")]
    NashMd,
    #[serde(rename = "mwu")]
    Mwu,
}

/// What the builder, the driver, the sweep and the parameter checks know of an algorithm: one
/// row of [`AlgoKind::TABLE`] per algorithm.
#[derive(Clone, Copy, Debug)]
pub struct AlgoInfo {
    pub kind: AlgoKind,
    /// Its name on the command line and in every output.
    pub name: &'static str,
    /// The id of its stream of sampled preference queries (`--oracle sampled`, see
    /// [`crate::oracle::stream`]). **Frozen**: never renumber or reuse one, or the same seed
    /// gives other draws and saved runs stop resuming. A new algorithm takes a new id.
    pub stream: u64,
    /// Operator applications per iteration.
    pub queries_per_iter: u64,
    /// Operator applications before the first iteration's own (OMWU's `g(π_0)`).
    pub initial_queries: u64,
    /// The default step `α` at `β` (docs/math.md §3).
    pub default_alpha: fn(f64) -> f64,
    /// Whether Nash-MP's guarantee `(1+αβ)^{−k}·KL(π*‖π_0)` (the `bound` column) applies.
    pub has_bound: bool,
    /// Builds it from `θ_0` with step `α` (and Nash-MD's schedule).
    pub(crate) build: fn(&[f64], f64, Schedule) -> Box<dyn super::Algorithm>,
}

impl AlgoKind {
    /// One row per algorithm. The order is that of `--algo` lists and `demo`; nothing else
    /// depends on it (the stream ids are in the rows).
    pub const TABLE: [AlgoInfo; 6] = [
        AlgoInfo {
            kind: AlgoKind::NashMp,
            name: "nash-mp",
            stream: 0,
            queries_per_iter: 2,
            initial_queries: 0,
            default_alpha: |_| 2.0,
            has_bound: true,
            build: |t, a, _| Box::new(super::nash_mp::NashMp::new(t, a)),
        },
        AlgoInfo {
            kind: AlgoKind::Mmd,
            name: "mmd",
            stream: 1,
            queries_per_iter: 1,
            initial_queries: 0,
            default_alpha: |beta| 4.0 * beta,
            has_bound: false,
            build: |t, a, _| Box::new(super::mmd::Mmd::new(t, a)),
        },
        AlgoInfo {
            kind: AlgoKind::Omwu,
            name: "omwu",
            stream: 2,
            queries_per_iter: 1,
            initial_queries: 1,
            default_alpha: |_| 1.0,
            has_bound: false,
            build: |t, a, _| Box::new(super::omwu::Omwu::new(t, a)),
        },
        AlgoInfo {
            kind: AlgoKind::Egpo,
            name: "egpo",
            stream: 3,
            queries_per_iter: 2,
            initial_queries: 0,
            default_alpha: |beta| 1f64.min(1.0 / (2.0 * beta)),
            has_bound: false,
            build: |t, a, _| Box::new(super::egpo::Egpo::new(t, a)),
        },
        AlgoInfo {
            kind: AlgoKind::NashMd,
            name: "nash-md",
            stream: 4,
            queries_per_iter: 1,
            initial_queries: 0,
            default_alpha: |beta| (4.0 * beta).min(1.0 / (2.0 * beta)),
            has_bound: false,
            build: |t, a, s| Box::new(super::nash_md::NashMd::new(t, a, s)),
        },
        AlgoInfo {
            kind: AlgoKind::Mwu,
            name: "mwu",
            stream: 5,
            queries_per_iter: 1,
            initial_queries: 0,
            default_alpha: |_| 0.1,
            has_bound: false,
            build: |t, a, _| Box::new(super::mwu::Mwu::new(t, a, t.len())),
        },
    ];

    /// Every algorithm, in the order of [`AlgoKind::TABLE`].
    pub const ALL: [AlgoKind; 6] = {
        let mut all = [AlgoKind::NashMp; 6];
        let mut i = 0;
        while i < all.len() {
            all[i] = AlgoKind::TABLE[i].kind;
            i += 1;
        }
        all
    };

    /// This algorithm's row of [`AlgoKind::TABLE`].
    pub fn info(self) -> &'static AlgoInfo {
        Self::TABLE
            .iter()
            .find(|r| r.kind == self)
            .expect("every algorithm has a row in AlgoKind::TABLE")
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The default `α` of docs/math.md §3 for this `β`.
    pub fn default_alpha(self, beta: f64) -> f64 {
        (self.info().default_alpha)(beta)
    }

    /// Checks `α` for this algorithm at this `β`; returns a warning for allowed-but-unsafe values.
    pub fn check_alpha(self, alpha: f64, beta: f64) -> Result<Option<String>> {
        let name = self.name();
        if !alpha.is_finite() || alpha <= 0.0 {
            return Err(Error::Param(format!(
                "{name}: the step α must be positive and finite, got α = {alpha}{}",
                if beta == 0.0 && matches!(self, AlgoKind::Mmd | AlgoKind::NashMd) {
                    " (its default α is proportional to β, and β = 0: give --alpha)"
                } else {
                    ""
                }
            )));
        }
        let ab = alpha * beta;
        match self {
            AlgoKind::Egpo if ab >= 1.0 => Err(Error::Param(format!(
                "egpo needs α·β < 1, got α·β = {alpha}·{beta} = {ab}"
            ))),
            AlgoKind::NashMd if ab > 1.0 => Err(Error::Param(format!(
                "nash-md needs α·β ≤ 1, got α·β = {alpha}·{beta} = {ab}"
            ))),
            AlgoKind::NashMp if alpha > 2.0 => Ok(Some(format!(
                "nash-mp with α = {alpha} > 2 breaks the Mirror Prox condition α·L ≤ 1 (L = 1/2): \
                 the linear rate is not guaranteed"
            ))),
            _ => Ok(None),
        }
    }
}

impl fmt::Display for AlgoKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for AlgoKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        AlgoKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = AlgoKind::ALL.iter().map(|k| k.name()).collect();
                Error::Param(format!(
                    "unknown algorithm {s:?}; expected one of {}",
                    names.join(", ")
                ))
            })
    }
}

/// How the user gave the step size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StepSpec {
    /// Each algorithm's default.
    Default,
    /// `--alpha A`.
    Alpha(f64),
    /// `--eta E`, the paper's convention: `α = η / β`.
    Eta(f64),
}

/// A resolved, validated step for one algorithm.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    #[serde(with = "crate::io::blobfile::bits")]
    pub alpha: f64,
    /// `η = α·β`.
    #[serde(with = "crate::io::blobfile::bits")]
    pub eta: f64,
}

impl StepSpec {
    /// Resolves the step of `kind` at `beta`, returning it with an optional warning.
    pub fn resolve(self, kind: AlgoKind, beta: f64) -> Result<(Step, Option<String>)> {
        check_beta(beta)?;
        let alpha = match self {
            StepSpec::Default => kind.default_alpha(beta),
            StepSpec::Alpha(a) => a,
            StepSpec::Eta(e) => {
                if beta == 0.0 {
                    return Err(Error::Param(
                        "--eta means α = η/β and needs β > 0; give --alpha instead".into(),
                    ));
                }
                e / beta
            }
        };
        let warn = kind.check_alpha(alpha, beta)?;
        Ok((
            Step {
                alpha,
                eta: alpha * beta,
            },
            warn,
        ))
    }
}

/// `β` must be finite and `≥ 0`.
pub fn check_beta(beta: f64) -> Result<()> {
    if !beta.is_finite() || beta < 0.0 {
        return Err(Error::Param(format!(
            "β must be finite and ≥ 0, got β = {beta}"
        )));
    }
    Ok(())
}

/// Nash-MD's step schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// `α_k = α`.
    #[default]
    Constant,
    /// `α_k = α / (1 + α β k)`.
    Decaying,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stream ids are those every earlier release used (the position in the original
    /// `ALL`): frozen, so sampled runs keep their bytes and saved runs keep resuming.
    #[test]
    fn stream_ids_are_frozen_and_do_not_depend_on_position() {
        let frozen = [
            (AlgoKind::NashMp, 0),
            (AlgoKind::Mmd, 1),
            (AlgoKind::Omwu, 2),
            (AlgoKind::Egpo, 3),
            (AlgoKind::NashMd, 4),
            (AlgoKind::Mwu, 5),
        ];
        for (k, id) in frozen {
            assert_eq!(k.info().stream, id, "{k}");
            assert_eq!(crate::oracle::algo_stream(k), id, "{k}");
        }
        // In a table of another order (as if a variant had been inserted at the front) the
        // positions move but every algorithm keeps its stream, because the id is in its row.
        let mut shuffled = AlgoKind::TABLE;
        shuffled.rotate_right(1);
        for (pos, row) in shuffled.iter().enumerate() {
            assert_ne!(pos as u64, row.stream);
            assert_eq!(row.stream, crate::oracle::algo_stream(row.kind));
        }
        let mut ids: Vec<u64> = AlgoKind::TABLE.iter().map(|r| r.stream).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(
            ids.len(),
            AlgoKind::TABLE.len(),
            "stream ids must be distinct"
        );
    }

    #[test]
    fn table_rows_match_their_algorithms() {
        for row in AlgoKind::TABLE {
            assert_eq!(row.kind.info().name, row.name);
            assert_eq!(row.name.parse::<AlgoKind>().unwrap(), row.kind);
            let a = (row.build)(&[0.5f64.ln(); 2], 0.1, Schedule::Constant);
            assert_eq!(a.kind(), row.kind);
            assert_eq!(a.queries_per_iter(), row.queries_per_iter);
            assert_eq!(a.initial_queries(), row.initial_queries);
        }
    }
}
