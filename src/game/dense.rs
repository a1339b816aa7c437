//! Dense games: a row-major `f32`, `f64` or `u16` (fixed point) matrix, memory-mapped from a
//! `.npy` file or a nashmp container and used in place (never copied to the heap), or held in
//! memory for built-in and test games.

use super::validate;
use super::{check_shapes, Info, MatMut, MatRef, MemStack, PreferenceOperator, StackReq};
use crate::error::{Error, Result};
use crate::io::container::Elem;
use crate::io::{array, mmap::Mapped, npy::DType};
use crate::kernels::batch::{matvec_batch_in, matvec_batch_scratch, BatchElem};
use crate::kernels::isa::Isa;
use crate::kernels::matvec::Element;
use std::path::{Path, PathBuf};

/// Where the matrix bytes live: a mapped file, our own heap, or memory owned by someone else
/// (a numpy array of the Python bindings), used in place.
pub enum Storage {
    Mapped { map: Mapped, offset: usize },
    Owned(Vec<f64>),
    Borrowed(Box<dyn ElementBytes>),
}

/// Matrix bytes owned outside the game (e.g. by a numpy array) and kept alive by it: see
/// [`DenseGame::borrowed`].
pub trait ElementBytes: Send + Sync {
    /// The `n × n` row-major elements, as bytes; the same slice on every call.
    fn bytes(&self) -> &[u8];
}

/// A dense preference matrix.
pub struct DenseGame {
    n: usize,
    elem: Elem,
    storage: Storage,
    path: PathBuf,
    isa: Isa,
}

impl DenseGame {
    /// Maps a `.npy` file; checks the header, the length and the alignment (not the entries:
    /// see [`DenseGame::validate`]).
    pub fn open(path: &Path) -> Result<Self> {
        let map = Mapped::open(path)?;
        let h = array::checked_header(path, map.bytes())?;
        if h.shape.len() != 2 || h.shape[0] != h.shape[1] || h.shape[0] == 0 {
            return Err(Error::NotSquare {
                path: path.into(),
                shape: h.shape,
            });
        }
        let n = usize::try_from(h.shape[0]).map_err(|_| Error::NpyHeader {
            path: path.into(),
            reason: "shape does not fit in memory addresses".into(),
        })?;
        let elem = match h.dtype {
            DType::F32 => Elem::F32,
            DType::F64 => Elem::F64,
        };
        Ok(Self::mapped(path, map, h.data_offset, n, elem))
    }

    /// A dense game over an already checked mapping (`n × n` entries of `elem` at `offset`).
    pub(crate) fn mapped(path: &Path, map: Mapped, offset: usize, n: usize, elem: Elem) -> Self {
        map.advise_sequential();
        DenseGame {
            n,
            elem,
            storage: Storage::Mapped { map, offset },
            path: path.into(),
            isa: Isa::best(),
        }
    }

    /// An in-memory `f64` game (row-major `n × n`), named `name` in messages. Not validated.
    ///
    /// # Panics
    /// If `data.len() != n * n`.
    pub fn from_vec(name: &str, n: usize, data: Vec<f64>) -> Self {
        assert_eq!(data.len(), n * n);
        DenseGame {
            n,
            elem: Elem::F64,
            storage: Storage::Owned(data),
            path: name.into(),
            isa: Isa::best(),
        }
    }

    /// A game over `n × n` row-major entries of `elem` (`f32` or `f64`) held by `owner`, used
    /// in place without a copy, named `name` in messages. Checks the length and the alignment,
    /// not the entries (see [`DenseGame::validate`]).
    pub fn borrowed(
        name: &str,
        n: usize,
        elem: Elem,
        owner: Box<dyn ElementBytes>,
    ) -> Result<Self> {
        let bytes = owner.bytes();
        let expected = n
            .checked_mul(n)
            .and_then(|e| e.checked_mul(elem.size()))
            .ok_or_else(|| Error::Param(format!("{name}: n = {n} is too large")))?;
        if n == 0 {
            return Err(Error::NotSquare {
                path: name.into(),
                shape: vec![0, 0],
            });
        }
        if bytes.len() != expected {
            return Err(Error::Truncated {
                path: name.into(),
                expected: expected as u64,
                found: bytes.len() as u64,
            });
        }
        let align = elem.size();
        if !(bytes.as_ptr() as usize).is_multiple_of(align) {
            return Err(Error::Misaligned {
                path: name.into(),
                offset: (bytes.as_ptr() as usize % align) as u64,
                align,
            });
        }
        Ok(DenseGame {
            n,
            elem,
            storage: Storage::Borrowed(owner),
            path: name.into(),
            isa: Isa::best(),
        })
    }

    /// Uses the portable scalar kernel instead of SIMD (for tests and benchmarks); the results
    /// are the same bits.
    pub fn with_simd(self, simd: bool) -> Self {
        self.with_isa(if simd { Isa::best() } else { Isa::Scalar })
    }

    /// Runs the kernels of `isa` (the same bits on every instruction set).
    pub fn with_isa(mut self, isa: Isa) -> Self {
        self.isa = isa;
        self
    }

    pub fn elem(&self) -> Elem {
        self.elem
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The matrix elements in row-major order (storage units).
    ///
    /// # Panics
    /// If `T` is not this game's element type.
    pub fn raw<T: Element>(&self) -> &[T] {
        assert_eq!(std::mem::size_of::<T>(), self.elem.size(), "dtype");
        self.slice()
    }

    fn slice<T: Element>(&self) -> &[T] {
        match &self.storage {
            Storage::Mapped { map, offset } => bytemuck::cast_slice(&map.bytes()[*offset..]),
            Storage::Owned(v) => bytemuck::cast_slice(v.as_slice()),
            Storage::Borrowed(b) => bytemuck::cast_slice(b.bytes()),
        }
    }

    /// The default skew tolerance for an element type.
    pub fn default_tol(elem: Elem) -> f64 {
        match elem {
            Elem::F32 => 1e-6,
            Elem::F64 => 1e-9,
            Elem::U16 => 1e-9,
        }
    }
}

impl PreferenceOperator for DenseGame {
    fn n(&self) -> usize {
        self.n
    }

    /// One vector: the single kernel; several: one pass over the matrix for up to 16 vectors
    /// at a time, every vector's product the bits of its single apply ([`matvec_batch_in`]).
    fn apply(&self, out: MatMut<'_, f64>, rhs: MatRef<'_, f64>, stack: &mut MemStack) {
        check_shapes(self.n, &out, &rhs);
        match self.elem {
            Elem::F32 => apply_dense(self.slice::<f32>(), out, rhs, self.isa, stack),
            Elem::U16 => apply_dense(self.slice::<u16>(), out, rhs, self.isa, stack),
            Elem::F64 => apply_dense(self.slice::<f64>(), out, rhs, self.isa, stack),
        }
    }

    fn apply_scratch(&self, k: usize) -> StackReq {
        match self.elem {
            Elem::F32 => matvec_batch_scratch::<f32>(self.n, k),
            Elem::U16 => matvec_batch_scratch::<u16>(self.n, k),
            Elem::F64 => matvec_batch_scratch::<f64>(self.n, k),
        }
    }

    fn entry(&self, i: usize, j: usize) -> f64 {
        assert!(
            i < self.n && j < self.n,
            "entry ({i}, {j}) of an {0}x{0} game",
            self.n
        );
        let k = i * self.n + j;
        match self.elem {
            Elem::F32 => self.slice::<f32>()[k].to_f64(),
            Elem::F64 => self.slice::<f64>()[k],
            Elem::U16 => self.slice::<u16>()[k].to_f64(),
        }
    }

    fn precision(&self) -> f64 {
        match self.elem {
            Elem::F32 => 1e-7,
            Elem::F64 => 1e-15,
            Elem::U16 => 8e-6,
        }
    }

    /// Checks every entry in one parallel streaming pass: finite, in `[0, 1]`,
    /// `|P[i][j] + P[j][i] − 1| ≤ tol`. The error names the first offending entry in row-major
    /// order.
    fn validate(&self, tol: Option<f64>) -> Result<()> {
        let tol = tol.unwrap_or(Self::default_tol(self.elem));
        let found = match self.elem {
            Elem::F32 => validate::first_violation(self.slice::<f32>(), self.n, tol),
            Elem::F64 => validate::first_violation(self.slice::<f64>(), self.n, tol),
            Elem::U16 => validate::first_violation(self.slice::<u16>(), self.n, tol),
        };
        match found {
            None => Ok(()),
            Some(v) => Err(v.into_error(&self.path, tol)),
        }
    }

    fn info(&self) -> Info<'_> {
        let stored_bytes = (self.n as u64) * (self.n as u64) * self.elem.size() as u64;
        let layout = format!("dense {}", self.elem.name());
        Info::matrix_file(layout, self.n, stored_bytes, &self.path)
    }
}

/// `out = P rhs` for a row-major `p`, [`MAX_BATCH`] columns per pass over the matrix.
pub(crate) fn apply_dense<T: BatchElem>(
    p: &[T],
    out: MatMut<'_, f64>,
    rhs: MatRef<'_, f64>,
    isa: Isa,
    stack: &mut MemStack,
) {
    super::for_column_groups(out, rhs, |xs, os| matvec_batch_in(p, xs, os, isa, stack));
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Floats(Vec<f32>);
    impl ElementBytes for Floats {
        fn bytes(&self) -> &[u8] {
            bytemuck::cast_slice(&self.0)
        }
    }

    #[test]
    fn borrowed_bytes_apply_in_place_and_are_checked() {
        let p = [0.5f32, 1.0, 0.0, 0.0, 0.5, 1.0, 1.0, 0.0, 0.5];
        let g = DenseGame::borrowed("rps", 3, Elem::F32, Box::new(Floats(p.to_vec()))).unwrap();
        let mut out = [0.0; 3];
        crate::game::apply_vec(&g, &[0.2, 0.3, 0.5], &mut out);
        for (o, e) in out.iter().zip([0.4, 0.65, 0.45]) {
            assert!((o - e).abs() < 1e-7, "{o} vs {e}");
        }
        assert!(g.validate(None).is_ok());
        let short = DenseGame::borrowed("short", 3, Elem::F32, Box::new(Floats(vec![0.5; 8])));
        assert!(matches!(
            short,
            Err(Error::Truncated {
                expected: 36,
                found: 32,
                ..
            })
        ));
        let bad = vec![0.5f32, 0.2, 0.2, 0.5];
        let g = DenseGame::borrowed("bad", 2, Elem::F32, Box::new(Floats(bad))).unwrap();
        assert!(matches!(
            g.validate(None),
            Err(Error::NotSkewSymmetric { i: 0, j: 1, .. })
        ));
    }
}
