//! Algorithm names, step sizes and their validation (docs/math.md §2–3).

use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// The algorithms of docs/math.md §3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
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

impl AlgoKind {
    pub const ALL: [AlgoKind; 6] = [
        AlgoKind::NashMp,
        AlgoKind::Mmd,
        AlgoKind::Omwu,
        AlgoKind::Egpo,
        AlgoKind::NashMd,
        AlgoKind::Mwu,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AlgoKind::NashMp => "nash-mp",
            AlgoKind::Mmd => "mmd",
            AlgoKind::Omwu => "omwu",
            AlgoKind::Egpo => "egpo",
            AlgoKind::NashMd => "nash-md",
            AlgoKind::Mwu => "mwu",
        }
    }

    /// The default `α` of docs/math.md §3 for this `β`.
    pub fn default_alpha(self, beta: f64) -> f64 {
        match self {
            AlgoKind::NashMp => 2.0,
            AlgoKind::Omwu => 1.0,
            AlgoKind::Egpo => 1f64.min(1.0 / (2.0 * beta)),
            AlgoKind::Mmd => 4.0 * beta,
            AlgoKind::NashMd => (4.0 * beta).min(1.0 / (2.0 * beta)),
            AlgoKind::Mwu => 0.1,
        }
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
                Error::Param(format!(
                    "unknown algorithm {s:?}; expected one of nash-mp, mmd, omwu, egpo, nash-md, mwu"
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
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Step {
    pub alpha: f64,
    /// `η = α·β`.
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
