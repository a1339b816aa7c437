//! The metrics of docs/math.md §5: distances to `π*` and certificates that need no `π*`.

use crate::kernels::vector::{logsumexp_by, span_by, sum_by};

/// One iterate's metrics; `None` where a metric does not apply or was not computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Metrics {
    pub kl_star: Option<f64>,
    pub kl_star_rev: Option<f64>,
    pub span_star: Option<f64>,
    pub exploit: Option<f64>,
    pub gap: Option<f64>,
    pub exploit0: Option<f64>,
    pub residual: Option<f64>,
    pub bound: Option<f64>,
}

impl Metrics {
    /// The values in column order: `kl_star, kl_star_rev, span_star, exploit, gap, exploit0,
    /// residual, bound` (the order of `metrics.csv`).
    pub fn values(&self) -> [Option<f64>; 8] {
        [
            self.kl_star,
            self.kl_star_rev,
            self.span_star,
            self.exploit,
            self.gap,
            self.exploit0,
            self.residual,
            self.bound,
        ]
    }

    /// The inverse of [`Metrics::values`].
    pub fn from_values(v: [Option<f64>; 8]) -> Self {
        Metrics {
            kl_star: v[0],
            kl_star_rev: v[1],
            span_star: v[2],
            exploit: v[3],
            gap: v[4],
            exploit0: v[5],
            residual: v[6],
            bound: v[7],
        }
    }
}

/// `KL(π_a ‖ π_b) = Σ π_a (θ_a − θ_b)` for normalised log-policies.
pub fn kl(theta_a: &[f64], theta_b: &[f64]) -> f64 {
    sum_by(theta_a.len(), |i| {
        let p = theta_a[i].exp();
        if p == 0.0 {
            0.0
        } else {
            p * (theta_a[i] - theta_b[i])
        }
    })
    .max(0.0)
}

/// `max_i (θ_a − θ_b)_i − min_i (θ_a − θ_b)_i`.
pub fn span_diff(theta_a: &[f64], theta_b: &[f64]) -> f64 {
    span_by(theta_a.len(), |i| theta_a[i] - theta_b[i])
}

/// The one-sided exploitability of the β-regularised game,
/// `β·logsumexp(θ_μ + g/β) + β·KL(π‖μ) − 1/2` (for `β = 0`: `max g − 1/2`).
pub fn exploit(theta: &[f64], g: &[f64], theta_ref: &[f64], beta: f64) -> f64 {
    if beta == 0.0 {
        return exploit0(g);
    }
    let best = beta * logsumexp_by(g.len(), |i| theta_ref[i] + g[i] / beta);
    (best + beta * kl(theta, theta_ref) - 0.5).max(0.0)
}

/// The unregularised exploitability `max_i g_i − 1/2`.
pub fn exploit0(g: &[f64]) -> f64 {
    crate::kernels::vector::max_by(g.len(), |i| g[i]) - 0.5
}

/// The fixed-point residual `span(θ − θ_μ − g/β)` (`β > 0`).
pub fn residual(theta: &[f64], g: &[f64], theta_ref: &[f64], beta: f64) -> f64 {
    span_by(theta.len(), |i| theta[i] - theta_ref[i] - g[i] / beta)
}

/// Metrics that need no `π*` (`g = g(π)`).
pub fn cheap(theta: &[f64], g: &[f64], theta_ref: &[f64], beta: f64) -> Metrics {
    let e = exploit(theta, g, theta_ref, beta);
    Metrics {
        exploit: Some(e),
        gap: Some(2.0 * e),
        exploit0: Some(exploit0(g)),
        residual: (beta > 0.0).then(|| residual(theta, g, theta_ref, beta)),
        ..Metrics::default()
    }
}

/// Adds the metrics against `θ*` to `m`.
pub fn add_star(m: &mut Metrics, theta: &[f64], theta_star: &[f64]) {
    m.kl_star = Some(kl(theta_star, theta));
    m.kl_star_rev = Some(kl(theta, theta_star));
    m.span_star = Some(span_diff(theta, theta_star));
}

/// Nash-MP's guarantee `(1 + αβ)^{−k} · KL(π*‖π_0)` (docs/math.md §4).
pub fn bound(alpha: f64, beta: f64, k: u64, kl0: f64) -> f64 {
    kl0 * (-(k as f64) * (alpha * beta).ln_1p()).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_forms() {
        let a = [0.25f64.ln(), 0.75f64.ln()];
        let b = [0.5f64.ln(), 0.5f64.ln()];
        let want = 0.25 * (0.5f64).ln() + 0.75 * (1.5f64).ln();
        assert!((kl(&a, &b) - want).abs() < 1e-15);
        assert_eq!(kl(&a, &a), 0.0);
        assert!((span_diff(&a, &b) - (1.5f64.ln() - 0.5f64.ln())).abs() < 1e-15);
        assert!((bound(2.0, 0.5, 3, 1.0) - 0.125).abs() < 1e-15);
        // Rock-paper-scissors: uniform is the equilibrium for any β and its exploit is 0.
        let u = [(1.0f64 / 3.0).ln(); 3];
        let g = [0.5; 3];
        assert!(exploit(&u, &g, &u, 0.1).abs() < 1e-15);
        assert!(residual(&u, &g, &u, 0.1).abs() < 1e-15);
        // A pure strategy against a game where action 0 always wins: exploit0 = 1/2.
        assert!((exploit0(&[1.0, 0.5, 0.0]) - 0.5).abs() < 1e-15);
    }
}
