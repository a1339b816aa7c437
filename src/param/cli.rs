//! `solve --policy linear --features F.npy|game`: the log-linear policy class of docs/math.md §8.

use super::adapter::LinearPolicy;
use super::{Features, LinearClass};
use crate::error::{Error, Result};
use crate::game::PreferenceOperator;
use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

/// The policy class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PolicyKind {
    /// One log-probability per action.
    Tabular,
    /// π_θ(y) ∝ μ(y)·exp(θ·φ(y)) over the d features of --features (docs/math.md §8).
    Linear,
}

#[derive(clap::Args, Debug, Clone)]
pub struct PolicyArgs {
    /// Policy class: `tabular` (default) or `linear` (log-linear over --features; runs
    /// nash-mp, omwu and mmd, exactly or from --oracle pg --batch B sampled pairs).
    #[arg(long, value_enum, default_value = "tabular")]
    pub policy: PolicyKind,
    /// Features of --policy linear: an (n, d) float32/float64 .npy file, or `game` for a
    /// low-rank (or disc) game's own factors.
    #[arg(long, value_name = "F.npy|game")]
    pub features: Option<String>,
    /// How --policy linear --oracle pg solves a prox step: `natural` (default: one
    /// natural-gradient estimate from --batch B pairs, then the closed-form prox) or `gradient`
    /// (--inner-steps S plain score-function policy-gradient steps of B pairs each, initial
    /// step --inner-lr γ, default 1; nash-mp and mmd).
    #[arg(long, value_enum)]
    pub estimator: Option<EstimatorKind>,
}

/// `--estimator`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EstimatorKind {
    /// One natural-gradient estimate per prox step, then the closed-form prox.
    Natural,
    /// --inner-steps S plain policy-gradient steps per prox step.
    Gradient,
}

impl PolicyArgs {
    /// Whether `--policy linear` was asked for.
    pub fn is_linear(&self) -> bool {
        self.policy == PolicyKind::Linear
    }

    /// Whether `--estimator gradient` was asked for.
    pub fn is_gradient(&self) -> bool {
        self.estimator == Some(EstimatorKind::Gradient)
    }

    /// The class `--policy linear` asks for (`None` for tabular), checked against the game.
    pub fn build(
        &self,
        op: &dyn PreferenceOperator,
        theta_ref: &[f64],
    ) -> Result<Option<Arc<LinearPolicy>>> {
        if self.policy == PolicyKind::Tabular {
            if self.features.is_some() {
                return Err(Error::Param(
                    "--features applies only to --policy linear".into(),
                ));
            }
            if self.estimator.is_some() {
                return Err(Error::Param(
                    "--estimator applies only to --policy linear".into(),
                ));
            }
            return Ok(None);
        }
        let Some(src) = &self.features else {
            return Err(Error::Param(
                "--policy linear needs --features F.npy (shape (n, d)) or --features game".into(),
            ));
        };
        let n = op.n();
        let (feats, skew) = if src == "game" {
            let (f, m) = Features::of_game(op, "the game's factors")?;
            (f.into_owned(), Some(m))
        } else {
            (Features::load_npy(Path::new(src), n)?, None)
        };
        let uniform = theta_ref.iter().all(|t| *t == theta_ref[0]);
        let log_mu = (!uniform).then(|| Cow::Owned(theta_ref.to_vec()));
        let class = LinearClass::new(feats, log_mu, skew);
        Ok(Some(Arc::new(LinearPolicy {
            class: Arc::new(class),
            source: src.clone(),
            gradient: self.is_gradient(),
        })))
    }
}
