//! Dense games: a row-major `f32` or `f64` matrix, memory-mapped from a `.npy` file and used in
//! place (never copied to the heap), or held in memory for built-in and test games.

use super::validate;
use super::PreferenceOperator;
use crate::error::{Error, Result};
use crate::io::{array, mmap::Mapped, npy::DType};
use crate::kernels::matvec::{self, Element};
use std::path::{Path, PathBuf};

/// Where the matrix bytes live.
pub enum Storage {
    Mapped { map: Mapped, offset: usize },
    Owned(Vec<f64>),
}

/// A dense preference matrix.
pub struct DenseGame {
    n: usize,
    dtype: DType,
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
        if h.shape.len() != 2 || h.shape[0] != h.shape[1] {
            return Err(Error::NotSquare {
                path: path.into(),
                shape: h.shape,
            });
        }
        let n = usize::try_from(h.shape[0]).map_err(|_| Error::NpyHeader {
            path: path.into(),
            reason: "shape does not fit in memory addresses".into(),
        })?;
        if n == 0 {
            return Err(Error::NotSquare {
                path: path.into(),
                shape: h.shape,
            });
        }
        map.advise_sequential();
        Ok(DenseGame {
            n,
            dtype: h.dtype,
            storage: Storage::Mapped {
                map,
                offset: h.data_offset,
            },
            path: path.into(),
            simd: true,
        })
    }

    /// An in-memory `f64` game (row-major `n × n`), named `name` in messages. Not validated.
    ///
    /// # Panics
    /// If `data.len() != n * n`.
    pub fn from_vec(name: &str, n: usize, data: Vec<f64>) -> Self {
        assert_eq!(data.len(), n * n);
        DenseGame {
            n,
            dtype: DType::F64,
            storage: Storage::Owned(data),
            path: name.into(),
            simd: true,
        }
    }

    /// Uses the portable scalar kernel instead of SIMD (for tests and benchmarks).
    pub fn with_simd(mut self, simd: bool) -> Self {
        self.simd = simd;
        self
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size of the matrix data in bytes.
    pub fn data_bytes(&self) -> u64 {
        (self.n as u64) * (self.n as u64) * self.dtype.size() as u64
    }

    /// The matrix elements in row-major order.
    ///
    /// # Panics
    /// If `T` is not this game's dtype.
    pub fn raw<T: Element>(&self) -> &[T] {
        assert_eq!(std::mem::size_of::<T>(), self.dtype.size(), "dtype");
        self.slice()
    }

    fn slice<T: Element>(&self) -> &[T] {
        match &self.storage {
            Storage::Mapped { map, offset } => bytemuck::cast_slice(&map.bytes()[*offset..]),
            Storage::Owned(v) => bytemuck::cast_slice(v.as_slice()),
        }
    }

    /// The default skew tolerance for a dtype.
    pub fn default_tol(dtype: DType) -> f64 {
        match dtype {
            DType::F32 => 1e-6,
            DType::F64 => 1e-9,
        }
    }

    /// Checks every entry in one parallel streaming pass: finite, in `[0, 1]`,
    /// `|P[i][j] + P[j][i] − 1| ≤ tol`. The error names the first offending entry in row-major
    /// order.
    pub fn validate(&self, tol: Option<f64>) -> Result<()> {
        let tol = tol.unwrap_or(Self::default_tol(self.dtype));
        let found = match self.dtype {
            DType::F32 => validate::first_violation(self.slice::<f32>(), self.n, tol),
            DType::F64 => validate::first_violation(self.slice::<f64>(), self.n, tol),
        };
        match found {
            None => Ok(()),
            Some(v) => Err(v.into_error(&self.path, tol)),
        }
    }
}

impl PreferenceOperator for DenseGame {
    fn n(&self) -> usize {
        self.n
    }

    fn apply(&self, x: &[f64], out: &mut [f64]) {
        match self.dtype {
            DType::F32 => matvec::matvec(self.slice::<f32>(), x, out, self.simd),
            DType::F64 => matvec::matvec(self.slice::<f64>(), x, out, self.simd),
        }
    }

    fn entry(&self, i: usize, j: usize) -> f64 {
        assert!(
            i < self.n && j < self.n,
            "entry ({i}, {j}) of an {0}x{0} game",
            self.n
        );
        match self.dtype {
            DType::F32 => self.slice::<f32>()[i * self.n + j] as f64,
            DType::F64 => self.slice::<f64>()[i * self.n + j],
        }
    }

    fn precision(&self) -> f64 {
        match self.dtype {
            DType::F32 => 1e-7,
            DType::F64 => 1e-15,
        }
    }

    fn describe(&self) -> String {
        format!(
            "dense {} {}x{} ({} bytes) from {}",
            self.dtype.name(),
            self.n,
            self.n,
            self.data_bytes(),
            self.path.display()
        )
    }
}
