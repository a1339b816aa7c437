//! Small dense linear algebra for `d × d` systems (`d` is the feature count, a handful):
//! the pseudo-inverse solve of a symmetric positive semi-definite matrix by cyclic Jacobi
//! rotations. Deterministic and sequential.

/// Eigenvalues and eigenvectors (columns of `v`, row-major `d × d`) of the symmetric `a`.
pub fn sym_eigen(a: &[f64], d: usize) -> (Vec<f64>, Vec<f64>) {
    assert_eq!(a.len(), d * d);
    let mut m = a.to_vec();
    let mut v = vec![0.0; d * d];
    for i in 0..d {
        v[i * d + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..d)
            .flat_map(|i| (0..d).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * d + j] * m[i * d + j])
            .sum();
        let diag: f64 = (0..d).map(|i| m[i * d + i] * m[i * d + i]).sum();
        if off <= 1e-32 * diag.max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                let apq = m[p * d + q];
                if apq == 0.0 {
                    continue;
                }
                let (app, aqq) = (m[p * d + p], m[q * d + q]);
                let tau = (aqq - app) / (2.0 * apq);
                let t = tau.signum() / (tau.abs() + (1.0 + tau * tau).sqrt());
                let t = if tau == 0.0 { 1.0 } else { t };
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = t * c;
                for k in 0..d {
                    let (mkp, mkq) = (m[k * d + p], m[k * d + q]);
                    m[k * d + p] = c * mkp - s * mkq;
                    m[k * d + q] = s * mkp + c * mkq;
                }
                for k in 0..d {
                    let (mpk, mqk) = (m[p * d + k], m[q * d + k]);
                    m[p * d + k] = c * mpk - s * mqk;
                    m[q * d + k] = s * mpk + c * mqk;
                }
                for k in 0..d {
                    let (vkp, vkq) = (v[k * d + p], v[k * d + q]);
                    v[k * d + p] = c * vkp - s * vkq;
                    v[k * d + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..d).map(|i| m[i * d + i]).collect(), v)
}

/// `x = A⁺ b` for a symmetric positive semi-definite `A`: eigenvalues below `rel · λ_max` are
/// treated as 0 (their directions are those along which `φ·x` is constant on the policy's
/// support, which no policy in the class can tell apart). Also returns the rank kept and the
/// condition number of the kept part.
pub fn psd_solve(a: &[f64], b: &[f64], d: usize, rel: f64) -> (Vec<f64>, usize, f64) {
    let (lam, v) = sym_eigen(a, d);
    let top = lam.iter().copied().fold(0.0, f64::max);
    let mut x = vec![0.0; d];
    let mut rank = 0;
    let mut low = f64::INFINITY;
    for j in 0..d {
        if lam[j] > rel * top && lam[j] > 0.0 {
            rank += 1;
            low = low.min(lam[j]);
            let proj: f64 = (0..d).map(|k| v[k * d + j] * b[k]).sum::<f64>() / lam[j];
            for k in 0..d {
                x[k] += proj * v[k * d + j];
            }
        }
    }
    (x, rank, if rank > 0 { top / low } else { f64::INFINITY })
}

/// The projector onto the range of the symmetric PSD `a` (same threshold as [`psd_solve`]),
/// row-major `d × d`.
pub fn range_projector(a: &[f64], d: usize, rel: f64) -> Vec<f64> {
    let (lam, v) = sym_eigen(a, d);
    let top = lam.iter().copied().fold(0.0, f64::max);
    let mut p = vec![0.0; d * d];
    for j in 0..d {
        if lam[j] > rel * top && lam[j] > 0.0 {
            for r in 0..d {
                for c in 0..d {
                    p[r * d + c] += v[r * d + j] * v[c * d + j];
                }
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_and_drops_the_null_space() {
        // A = diag(4, 1, 0) rotated; b in range: exact solution, null part dropped.
        let (c, s) = (0.6f64, 0.8f64);
        let r = [c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0];
        let lam = [4.0, 1.0, 0.0];
        let mut a = [0.0; 9];
        for i in 0..3 {
            for j in 0..3 {
                a[i * 3 + j] = (0..3).map(|k| r[i * 3 + k] * lam[k] * r[j * 3 + k]).sum();
            }
        }
        let x0 = [1.0, -2.0, 0.0]; // in coordinates: along the kept eigenvectors only
        let want: Vec<f64> = (0..3)
            .map(|i| (0..3).map(|k| r[i * 3 + k] * x0[k]).sum())
            .collect();
        let b: Vec<f64> = (0..3)
            .map(|i| (0..3).map(|j| a[i * 3 + j] * want[j]).sum())
            .collect();
        let (x, rank, cond) = psd_solve(&a, &b, 3, 1e-10);
        assert_eq!(rank, 2);
        assert!((cond - 4.0).abs() < 1e-12);
        for i in 0..3 {
            assert!((x[i] - want[i]).abs() < 1e-13, "{x:?} vs {want:?}");
        }
        let p = range_projector(&a, 3, 1e-10);
        assert!((p[8]).abs() < 1e-14 && (p[0] + p[4] - 2.0).abs() < 1e-13);
    }
}
