//! Reference and starting policies: loading, checking, converting to log space.

use crate::error::{Error, Result};
use std::path::Path;

/// `log` of the uniform policy over `n` actions.
pub fn uniform_theta(n: usize) -> Vec<f64> {
    vec![-(n as f64).ln(); n]
}

/// Checks a probability vector (length `n`, finite, every entry `> 0`, summing to 1 within
/// `1e-6`) and returns its normalised logarithm. `what` names it in errors.
pub fn theta_from_probs(what: &str, p: &[f64], n: usize) -> Result<Vec<f64>> {
    let bad = |reason: String| Error::BadVector {
        what: what.to_string(),
        reason,
    };
    if p.len() != n {
        return Err(bad(format!(
            "has {} entries but the game has {n} actions",
            p.len()
        )));
    }
    if let Some((i, v)) = p
        .iter()
        .enumerate()
        .find(|(_, v)| !v.is_finite() || **v <= 0.0)
    {
        return Err(bad(format!(
            "entry {i} is {v}; every entry must be positive and finite (full support)"
        )));
    }
    let s: f64 = p.iter().sum();
    if (s - 1.0).abs() > 1e-6 {
        return Err(bad(format!("entries sum to {s}, not 1")));
    }
    let mut theta: Vec<f64> = p.iter().map(|v| v.ln()).collect();
    crate::kernels::vector::normalise(&mut theta);
    Ok(theta)
}

/// Loads a policy `.npy` (1-D float) and returns its log.
pub fn load_theta(path: &Path, n: usize) -> Result<Vec<f64>> {
    let p = crate::io::array::read_vector(path)?;
    theta_from_probs(&path.display().to_string(), &p, n)
}

/// Probabilities `exp(θ)`.
pub fn probs(theta: &[f64]) -> Vec<f64> {
    theta.iter().map(|t| t.exp()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks() {
        assert!(theta_from_probs("r", &[0.5, 0.5], 2).is_ok());
        let e = theta_from_probs("r", &[1.0, 0.0], 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("entry 1 is 0"), "{e}");
        assert!(theta_from_probs("r", &[0.5, 0.5], 3).is_err());
        assert!(theta_from_probs("r", &[0.5, 0.6], 2).is_err());
        assert!(theta_from_probs("r", &[f64::NAN, 0.5], 2).is_err());
    }
}
