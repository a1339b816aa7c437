//! The streaming validity check of a dense preference matrix.
//!
//! The matrix is cut into `T × T` tiles; task `I` reads the tile row `(I, J)` for `J ≥ I`
//! together with the mirrored tiles `(J, I)`, so each byte is read once, cache-friendly, and
//! the skew condition is checked without strided passes. Tasks report their first violation in
//! row-major order and the minimum is kept: the answer does not depend on the thread count.

use crate::error::Error;
use crate::kernels::matvec::Element;
use rayon::prelude::*;
use std::path::Path;

const TILE: usize = 64;

/// What is wrong at `(i, j)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Violation {
    NotFinite {
        i: usize,
        j: usize,
        v: f64,
    },
    OutOfRange {
        i: usize,
        j: usize,
        v: f64,
    },
    Skew {
        i: usize,
        j: usize,
        pij: f64,
        pji: f64,
    },
}

impl Violation {
    fn pos(&self) -> (usize, usize) {
        match *self {
            Violation::NotFinite { i, j, .. }
            | Violation::OutOfRange { i, j, .. }
            | Violation::Skew { i, j, .. } => (i, j),
        }
    }

    pub fn into_error(self, path: &Path, tol: f64) -> Error {
        let path = path.to_path_buf();
        match self {
            Violation::NotFinite { i, j, v } => Error::NotFinite {
                path,
                i,
                j,
                value: v,
            },
            Violation::OutOfRange { i, j, v } => Error::OutOfRange {
                path,
                i,
                j,
                value: v,
            },
            Violation::Skew { i, j, pij, pji } => Error::NotSkewSymmetric {
                path,
                i,
                j,
                pij,
                pji,
                sum: pij + pji,
                tol,
            },
        }
    }
}

fn check_entry(i: usize, j: usize, v: f64) -> Option<Violation> {
    if !v.is_finite() {
        Some(Violation::NotFinite { i, j, v })
    } else if !(0.0..=1.0).contains(&v) {
        Some(Violation::OutOfRange { i, j, v })
    } else {
        None
    }
}

fn keep_first(a: Option<Violation>, b: Option<Violation>) -> Option<Violation> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if y.pos() < x.pos() { y } else { x }),
        (x, None) => x,
        (None, y) => y,
    }
}

/// The first violation in row-major order, if any.
pub fn first_violation<T: Element>(p: &[T], n: usize, tol: f64) -> Option<Violation> {
    let tiles = n.div_ceil(TILE);
    (0..tiles)
        .into_par_iter()
        .map(|ti| {
            let mut first: Option<Violation> = None;
            let (i0, i1) = (ti * TILE, ((ti + 1) * TILE).min(n));
            for tj in ti..tiles {
                let (j0, j1) = (tj * TILE, ((tj + 1) * TILE).min(n));
                for i in i0..i1 {
                    let jstart = if ti == tj { i } else { j0 };
                    for j in jstart..j1 {
                        let pij = p[i * n + j].to_f64();
                        let pji = p[j * n + i].to_f64();
                        let v = check_entry(i, j, pij);
                        let w = if i != j { check_entry(j, i, pji) } else { None };
                        let skew = (v.is_none() && w.is_none() && (pij + pji - 1.0).abs() > tol)
                            .then_some(Violation::Skew { i, j, pij, pji });
                        first = keep_first(first, keep_first(v, keep_first(w, skew)));
                    }
                }
            }
            first
        })
        .reduce(|| None, keep_first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cyclic(n: usize) -> Vec<f64> {
        let mut p = vec![0.5; n * n];
        for i in 0..n {
            for j in 0..n {
                let d = (j + n - i) % n;
                if d != 0 {
                    p[i * n + j] = if d <= (n - 1) / 2 { 1.0 } else { 0.0 };
                }
            }
        }
        p
    }

    #[test]
    fn accepts_valid_and_finds_first_violation() {
        let n = 151;
        let mut p = cyclic(n);
        assert_eq!(first_violation(&p, n, 1e-9), None);
        p[100 * n + 7] = 0.3; // breaks skew at (7, 100) and (100, 7): (7, 100) comes first
        p[120 * n + 130] = f64::NAN;
        p[140 * n + 3] = 1.5;
        let v = first_violation(&p, n, 1e-9).unwrap();
        assert!(matches!(v, Violation::Skew { i: 7, j: 100, .. }), "{v:?}");
        p[2 * n + 149] = -0.1;
        let v = first_violation(&p, n, 1e-9).unwrap();
        assert!(
            matches!(v, Violation::OutOfRange { i: 2, j: 149, .. }),
            "{v:?}"
        );
        let mut q = cyclic(n);
        q[5 * n + 5] = 0.6;
        assert!(matches!(
            first_violation(&q, n, 1e-9),
            Some(Violation::Skew { i: 5, j: 5, .. })
        ));
    }
}
