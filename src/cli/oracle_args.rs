//! `solve`'s flags for sampled preference queries (docs/math.md §6), turned once into an
//! [`OracleSpec`].

use crate::error::{Error, Result};
use crate::oracle::{pg::PgParams, OracleSpec};

/// How the algorithms see the game.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OracleKind {
    /// Exact payoff vectors g(π) = Pπ.
    Exact,
    /// Each payoff vector estimated from --samples opponents per action (n·M queries).
    Sampled,
    /// Approximate Nash-MP: each prox step by --inner-steps policy-gradient steps on --batch
    /// sampled pairs (S·B queries per prox step).
    Pg,
}

#[derive(clap::Args, Debug, Clone)]
pub struct OracleArgs {
    /// Preference queries: `exact` (default), `sampled` (Bernoulli answers, --samples M
    /// opponents per action) or `pg` (approximate Nash-MP from --batch B sampled pairs per
    /// policy-gradient step, --inner-steps S per prox step).
    #[arg(long, value_enum, default_value = "exact")]
    pub oracle: OracleKind,
    /// Opponents sampled per action and payoff estimate (--oracle sampled).
    #[arg(long, value_name = "M")]
    pub samples: Option<u64>,
    /// Policy-gradient steps per prox step (--oracle pg).
    #[arg(long = "inner-steps", value_name = "S")]
    pub inner_steps: Option<u64>,
    /// Sampled pairs per policy-gradient step (--oracle pg).
    #[arg(long, value_name = "B")]
    pub batch: Option<u64>,
    /// Initial natural-gradient step γ of the inner solver, decaying as γ/(1+γ(1+αβ)s)
    /// (--oracle pg). Default 1/(1+αβ): the inner iterates average the S batches' targets.
    #[arg(long = "inner-lr", value_name = "γ", allow_negative_numbers = true)]
    pub inner_lr: Option<f64>,
    /// Seed of the sampled queries (--oracle sampled|pg; default 0).
    #[arg(long)]
    pub seed: Option<u64>,
}

impl OracleArgs {
    /// Checks the flags against the mode and the values themselves.
    pub fn spec(&self) -> Result<OracleSpec> {
        let given = |flag: &str, set: bool, mode: &str| -> Result<()> {
            if set {
                return Err(Error::Param(format!(
                    "{flag} applies only to --oracle {mode}, not --oracle {}",
                    self.mode_name()
                )));
            }
            Ok(())
        };
        let seed = self.seed.unwrap_or(0);
        match self.oracle {
            OracleKind::Exact => {
                given("--samples", self.samples.is_some(), "sampled")?;
                given("--inner-steps", self.inner_steps.is_some(), "pg")?;
                given("--batch", self.batch.is_some(), "pg")?;
                given("--inner-lr", self.inner_lr.is_some(), "pg")?;
                given("--seed", self.seed.is_some(), "sampled or pg")?;
                Ok(OracleSpec::exact())
            }
            OracleKind::Sampled => {
                given("--inner-steps", self.inner_steps.is_some(), "pg")?;
                given("--batch", self.batch.is_some(), "pg")?;
                given("--inner-lr", self.inner_lr.is_some(), "pg")?;
                let m = self
                    .samples
                    .ok_or_else(|| Error::Param("--oracle sampled needs --samples M".into()))?;
                OracleSpec::sampled(m, seed)
            }
            OracleKind::Pg => {
                given("--samples", self.samples.is_some(), "sampled")?;
                let (Some(inner_steps), Some(batch)) = (self.inner_steps, self.batch) else {
                    return Err(Error::Param(
                        "--oracle pg needs --inner-steps S and --batch B".into(),
                    ));
                };
                OracleSpec::pg(
                    PgParams {
                        inner_steps,
                        batch,
                        inner_lr: self.inner_lr,
                    },
                    seed,
                )
            }
        }
    }

    fn mode_name(&self) -> &'static str {
        match self.oracle {
            OracleKind::Exact => "exact",
            OracleKind::Sampled => "sampled",
            OracleKind::Pg => "pg",
        }
    }
}
