//! Dense games: a row-major `f32`, `f64` or `u16` (fixed point) matrix, memory-mapped from a
//! `.npy` file or a nashmp container and used in place (never copied to the heap), or held in
//! memory for built-in and test games.

use super::validate;
use super::PreferenceOperator;
use crate::error::{Error, Result};
use crate::io::container::Elem;
use crate::io::{array, mmap::Mapped, npy::DType};
use crate::kernels::batch::{matvec_batch, MAX_BATCH};
use crate::kernels::matvec::{self, Element};
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
    simd: bool,
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
            simd: true,
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
            simd: true,
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
            simd: true,
        })
    }

    /// Uses the portable scalar kernel instead of SIMD (for tests and benchmarks).
    pub fn with_simd(mut self, simd: bool) -> Self {
        self.simd = simd;
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

    fn apply(&self, x: &[f64], out: &mut [f64]) {
        match self.elem {
            Elem::F32 => matvec::matvec(self.slice::<f32>(), x, out, self.simd),
            Elem::F64 => matvec::matvec(self.slice::<f64>(), x, out, self.simd),
            Elem::U16 => matvec::matvec(self.slice::<u16>(), x, out, self.simd),
        }
    }

    /// One pass over the matrix for all vectors (`f32`, `u16`); `f64` games apply one by one.
    fn apply_batch(&self, xs: &[&[f64]], outs: &mut [&mut [f64]]) {
        for (xc, oc) in xs.chunks(MAX_BATCH).zip(outs.chunks_mut(MAX_BATCH)) {
            match self.elem {
                Elem::F32 => matvec_batch(self.slice::<f32>(), xc, oc, self.simd),
                Elem::U16 => matvec_batch(self.slice::<u16>(), xc, oc, self.simd),
                Elem::F64 => {
                    for (x, o) in xc.iter().zip(oc.iter_mut()) {
                        self.apply(x, o);
                    }
                }
            }
        }
    }

    /// [`matvec_batch`] interleaves 8 lanes for up to 8 vectors, 16 beyond (summing in a
    /// different order); `f64` games apply one by one.
    fn batch_lanes(&self, k: usize) -> usize {
        match self.elem {
            Elem::F64 => 1,
            Elem::F32 | Elem::U16 if k <= 8 => 8,
            Elem::F32 | Elem::U16 => MAX_BATCH,
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

    fn layout(&self) -> String {
        format!("dense {}", self.elem.name())
    }

    fn stored_bytes(&self) -> u64 {
        (self.n as u64) * (self.n as u64) * self.elem.size() as u64
    }

    fn describe(&self) -> String {
        format!(
            "dense {} {}x{} ({} bytes) from {}",
            self.elem.name(),
            self.n,
            self.n,
            self.stored_bytes(),
            self.path.display()
        )
    }
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
        g.apply(&[0.2, 0.3, 0.5], &mut out);
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
