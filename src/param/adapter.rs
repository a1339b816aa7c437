//! The parametric algorithms behind the tabular [`Algorithm`] interface, so that `solve
//! --policy linear` runs through the same driver: metrics against the full game (from the
//! full log-probabilities `log π_θ`, materialised after every step in `O(n·d)`), `metrics.csv`,
//! checkpoints, resume and Ctrl-C.
//!
//! The checkpointed state is `θ` (and OMWU's last direction), each stored in the first `d`
//! entries of an `n`-vector (the checkpoint format's vectors have the game's length), and the
//! counters `[directions estimated, queries]`.

use super::algo::{check_kind, DirectionMode, Env, Estimator, ParamAlgo};
use super::{LinearClass, Moments};
use crate::algo::{AlgoKind, AlgoState, Algorithm, Context, CurrentPayoff};
use crate::error::{Error, Result};
use crate::oracle::OracleMode;
use crate::run::fingerprint::Hasher;
use crate::run::{AlgoFactory, RunSpec};
use std::sync::Arc;

/// `--policy linear`: the class and where its features came from.
#[derive(Debug)]
pub struct LinearPolicy {
    pub class: Arc<LinearClass<'static>>,
    /// `game` or the features file, for the records.
    pub source: String,
    /// `--estimator gradient`: prox steps by `--inner-steps` plain policy-gradient steps.
    pub gradient: bool,
}

impl LinearPolicy {
    /// Checks the algorithms and the oracle mode against the class.
    pub fn check(&self, kinds: &[AlgoKind], oracle: &crate::oracle::OracleSpec) -> Result<()> {
        for &k in kinds {
            check_kind(k)?;
        }
        match oracle.mode {
            OracleMode::Sampled { .. } => Err(Error::Param(
                "--policy linear estimates directions from --oracle pg --batch B sampled pairs; \
                 --oracle sampled (n·M queries per payoff vector) is tabular"
                    .into(),
            )),
            _ if !self.gradient => self.natural_check(oracle),
            OracleMode::Exact => Err(Error::Param(
                "--estimator gradient estimates from sampled pairs: give --oracle pg --batch B \
                 --inner-steps S"
                    .into(),
            )),
            OracleMode::Pg(_) => {
                for &k in kinds {
                    if !matches!(k, AlgoKind::NashMp | AlgoKind::Mmd) {
                        return Err(Error::Param(format!(
                            "--estimator gradient runs nash-mp and mmd (whose prox steps it \
                             solves); {k} reuses a direction across steps and needs \
                             --estimator natural"
                        )));
                    }
                }
                Ok(())
            }
        }
    }
}

impl LinearPolicy {
    fn natural_check(&self, oracle: &crate::oracle::OracleSpec) -> Result<()> {
        match oracle.mode {
            OracleMode::Pg(p) if p.inner_steps != 1 => Err(Error::Param(format!(
                "--policy linear uses one natural-gradient estimate per prox step (--inner-steps 1), \
                 got --inner-steps {}; --estimator gradient takes S plain policy-gradient steps",
                p.inner_steps
            ))),
            OracleMode::Pg(p) if p.inner_lr.is_some() => Err(Error::Param(
                "--inner-lr does not apply to --estimator natural (its prox is closed-form); \
                 --estimator gradient takes it"
                    .into(),
            )),
            _ => Ok(()),
        }
    }

    /// The estimator the flags ask for.
    fn estimator(&self, oracle: &crate::oracle::OracleSpec) -> Estimator {
        match (self.gradient, oracle.mode) {
            (true, OracleMode::Pg(p)) => Estimator::Gradient {
                steps: p.inner_steps,
                lr: p.inner_lr.unwrap_or(1.0),
            },
            _ => Estimator::Natural,
        }
    }
}

impl AlgoFactory for LinearPolicy {
    fn build(&self, spec: &RunSpec) -> Result<Box<dyn Algorithm>> {
        let class = &self.class;
        if spec.theta0 != spec.theta_ref {
            return Err(Error::Param(
                "--policy linear starts at π_0 = μ (θ = 0): give --init reference".into(),
            ));
        }
        let mode = match spec.oracle.mode {
            OracleMode::Exact => DirectionMode::Exact,
            OracleMode::Pg(p) => DirectionMode::Sampled {
                batch: p.batch,
                seed: spec.oracle.seed,
                fidelity: spec.oracle.fidelity,
            },
            OracleMode::Sampled { .. } => {
                return Err(Error::Param(
                    "--policy linear cannot use --oracle sampled".into(),
                ))
            }
        };
        let alg = ParamAlgo::new(spec.kind, spec.step.alpha, class.d(), mode)?
            .with_estimator(self.estimator(&spec.oracle))?;
        Ok(Box::new(LinearAlgorithm::new(class.clone(), alg)))
    }

    fn fingerprint(&self) -> String {
        let c = &self.class;
        let mut h = Hasher::default();
        for k in 0..c.d() {
            h.f64s(c.features().col(k));
        }
        if let Some(m) = c.skew() {
            h.f64s(m);
        }
        let est = if self.gradient {
            ",estimator=gradient"
        } else {
            ""
        };
        format!("linear(d={},features={:016x}{est})", c.d(), h.finish())
    }

    fn record(&self) -> serde_json::Value {
        serde_json::json!({
            "class": "linear",
            "d": self.class.d(),
            "features": self.source,
            "realizable": self.class.skew().is_some(),
            "estimator": if self.gradient { "gradient" } else { "natural" },
        })
    }
}

/// A [`ParamAlgo`] seen as a tabular algorithm.
pub struct LinearAlgorithm {
    class: Arc<LinearClass<'static>>,
    alg: ParamAlgo,
    log_probs: Vec<f64>,
    moments: Option<Moments>,
}

impl LinearAlgorithm {
    pub fn new(class: Arc<LinearClass<'static>>, alg: ParamAlgo) -> Self {
        let mut a = LinearAlgorithm {
            log_probs: vec![0.0; class.n()],
            class,
            alg,
            moments: None,
        };
        a.refresh(None);
        a
    }

    /// The parameters `θ`.
    pub fn params(&self) -> &[f64] {
        &self.alg.theta
    }

    fn refresh(&mut self, mom: Option<Moments>) {
        let mom = mom.unwrap_or_else(|| self.class.moments(&self.alg.theta, false));
        self.class
            .log_probs(&self.alg.theta, mom.log_z, &mut self.log_probs);
        self.moments = Some(mom);
    }
}

fn padded(v: &[f64], n: usize) -> Vec<f64> {
    let mut p = vec![0.0; n];
    p[..v.len()].copy_from_slice(v);
    p
}

impl Algorithm for LinearAlgorithm {
    fn kind(&self) -> AlgoKind {
        self.alg.kind
    }
    fn theta(&self) -> &[f64] {
        &self.log_probs
    }
    fn step(&mut self, ctx: &Context, _cur: &mut CurrentPayoff) {
        let env = Env {
            class: &self.class,
            op: ctx.op,
            beta: ctx.beta,
        };
        let mom = self.alg.step(&env, self.moments.take());
        self.refresh(Some(mom));
    }
    fn queries_per_iter(&self) -> u64 {
        self.alg.queries_per_iter()
    }
    fn queries(&self) -> Option<u64> {
        Some(self.alg.queries)
    }
    fn state(&self) -> AlgoState {
        let n = self.class.n();
        let mut vectors = vec![padded(&self.alg.theta, n)];
        if let Some(v) = &self.alg.v_prev {
            vectors.push(padded(v, n));
        }
        AlgoState {
            vectors,
            counters: vec![self.alg.calls, self.alg.queries],
        }
    }
    fn restore(&mut self, s: AlgoState) -> Result<()> {
        let (n, d) = (self.class.n(), self.class.d());
        let ok = (1..=2).contains(&s.vectors.len())
            && s.vectors
                .iter()
                .all(|v| v.len() == n && v[d..].iter().all(|x| *x == 0.0))
            && s.counters.len() == 2
            && (s.vectors.len() == 1 || self.alg.kind == AlgoKind::Omwu);
        if !ok {
            return Err(Error::Param(format!(
                "saved state does not fit a linear policy with d = {d} over n = {n} actions"
            )));
        }
        self.alg.theta = s.vectors[0][..d].to_vec();
        self.alg.v_prev = s.vectors.get(1).map(|v| v[..d].to_vec());
        (self.alg.calls, self.alg.queries) = (s.counters[0], s.counters[1]);
        self.refresh(None);
        Ok(())
    }
}
