//! Ranking items by their β-regularised equilibrium probability (uniform reference), and the
//! von Neumann winner approached along a decreasing β path.

use crate::equilibrium::{self, EqStop, EquilibriumParams};
use crate::error::Result;
use crate::game::PreferenceOperator;
use crate::policy;

/// Fixed-point residual the ranking solves aim for: far below any difference a ranking or a
/// printed probability shows, and reachable in `f64` down to β = 1e-4.
pub const TARGET_RESIDUAL: f64 = 1e-10;

/// The equilibrium at one β and the items ordered by it.
#[derive(Clone, Debug)]
pub struct Ranked {
    pub beta: f64,
    /// `θ* = log π*`.
    pub theta: Vec<f64>,
    /// `π*`.
    pub probs: Vec<f64>,
    /// Item indices by decreasing probability (ties by index).
    pub order: Vec<usize>,
    /// Unregularised exploitability `max_i (Pπ*)_i − ½`.
    pub exploit0: f64,
    pub residual: f64,
    pub iterations: u64,
    pub stop: EqStop,
}

/// Solves for `π*` at `beta > 0` with the uniform reference, starting from `start` (default:
/// uniform).
pub fn rank_at(op: &dyn PreferenceOperator, beta: f64, start: Option<&[f64]>) -> Result<Ranked> {
    let theta_ref = policy::uniform_theta(op.n());
    let mut params = EquilibriumParams::new(beta);
    params.target_residual = TARGET_RESIDUAL;
    let eq = equilibrium::solve_from(op, &theta_ref, start.unwrap_or(&theta_ref), params)?;
    Ok(Ranked {
        beta,
        order: order(&eq.theta),
        probs: policy::probs(&eq.theta),
        exploit0: eq.exploit0,
        residual: eq.residual,
        iterations: eq.iterations,
        stop: eq.stop,
        theta: eq.theta,
    })
}

/// Indices sorted by decreasing `theta` (log-probability), ties by index.
pub fn order(theta: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..theta.len()).collect();
    idx.sort_by(|&a, &b| theta[b].total_cmp(&theta[a]).then(a.cmp(&b)));
    idx
}

/// The 1-based rank of each item given an [`order`].
pub fn ranks_of(order: &[usize]) -> Vec<usize> {
    let mut r = vec![0; order.len()];
    for (pos, &i) in order.iter().enumerate() {
        r[i] = pos + 1;
    }
    r
}

/// `1, 0.3, 0.1, 0.03, …` down to `floor`, which ends the path (a floor above 1 gives just
/// `[floor]`).
pub fn beta_path(floor: f64) -> Vec<f64> {
    // Divisions by exact powers of ten give the correctly rounded 0.03, 0.001, …; the values
    // reach 0 (ending the path) long before the exponent overflows.
    (0..)
        .flat_map(|k| [1.0 / 10f64.powi(k), 3.0 / 10f64.powi(k + 1)])
        .take_while(|&b| b > floor && b > 0.0)
        .chain(std::iter::once(floor))
        .collect()
}

/// The von Neumann winner approximation: the equilibria along [`beta_path`], each solve
/// started from the previous solution. The last one is the approximation.
pub fn von_neumann(op: &dyn PreferenceOperator, floor: f64) -> Result<Vec<Ranked>> {
    let mut steps: Vec<Ranked> = Vec::new();
    for beta in beta_path(floor) {
        let start = steps.last().map(|r| r.theta.as_slice());
        let r = rank_at(op, beta, start)?;
        steps.push(r);
    }
    Ok(steps)
}

/// The leading items of `r` in order: at most `max`, stopping once they carry `mass` of the
/// probability.
pub fn top(r: &Ranked, max: usize, mass: f64) -> Vec<usize> {
    let mut out = Vec::new();
    let mut sum = 0.0;
    for &i in r.order.iter().take(max) {
        out.push(i);
        sum += r.probs[i];
        if sum >= mass {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::DenseGame;

    #[test]
    fn path_and_order() {
        assert_eq!(beta_path(1e-3), [1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 1e-3]);
        assert_eq!(beta_path(0.05), [1.0, 0.3, 0.1, 0.05]);
        assert_eq!(beta_path(2.0), [2.0]);
        let o = order(&[-2.0, -1.0, -1.0, -3.0]);
        assert_eq!(o, [1, 2, 0, 3]);
        assert_eq!(ranks_of(&o), [3, 1, 2, 4]);
    }

    #[test]
    fn von_neumann_of_a_condorcet_game_is_its_winner() {
        // Item 2 beats everyone; 0 beats 1.
        let p = vec![0.5, 0.7, 0.4, 0.3, 0.5, 0.2, 0.6, 0.8, 0.5];
        let g = DenseGame::from_vec("t", 3, p);
        let steps = von_neumann(&g, 1e-3).unwrap();
        let last = steps.last().unwrap();
        assert_eq!(last.beta, 1e-3);
        assert_eq!(last.order, [2, 0, 1]);
        assert!(last.probs[2] > 0.999, "{:?}", last.probs);
        assert!(last.exploit0 < 1e-3, "{}", last.exploit0);
        assert_eq!(top(last, 10, 0.99), [2]);
    }
}
