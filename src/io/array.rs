//! Reading and writing `.npy` arrays: vectors (policies, references) in memory, matrices
//! streamed row by row.

use super::atomic::AtomicFile;
use super::npy::{self, DType, HeaderError};
use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

/// Parses and checks the header of a mapped `.npy` file against its length.
pub fn checked_header(path: &Path, bytes: &[u8]) -> Result<npy::Header> {
    let h = npy::parse_header(bytes).map_err(|e| match e {
        HeaderError::Invalid(reason) => Error::NpyHeader {
            path: path.into(),
            reason,
        },
        HeaderError::DType { descr, hint } => Error::NpyDtype {
            path: path.into(),
            descr,
            hint,
        },
    })?;
    if h.fortran_order && h.shape.len() > 1 && h.shape.iter().all(|&d| d > 1) {
        return Err(Error::FortranOrder { path: path.into() });
    }
    let expected = h.data_bytes().ok_or_else(|| Error::NpyHeader {
        path: path.into(),
        reason: format!("shape {:?} overflows", h.shape),
    })?;
    let found = (bytes.len() - h.data_offset) as u64;
    if found > expected {
        return Err(Error::TrailingData {
            path: path.into(),
            expected,
            found,
        });
    }
    if found != expected {
        return Err(Error::Truncated {
            path: path.into(),
            expected,
            found,
        });
    }
    if h.data_offset % h.dtype.size() != 0 {
        return Err(Error::Misaligned {
            path: path.into(),
            offset: h.data_offset as u64,
            align: h.dtype.size(),
        });
    }
    Ok(h)
}

/// Reads a 1-D float `.npy` into `f64`.
pub fn read_vector(path: &Path) -> Result<Vec<f64>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        // Directories, pipes and devices (`/dev/zero` would be read forever).
        let what = if meta.is_dir() {
            "a directory"
        } else {
            "not a regular file"
        };
        return Err(Error::io(path, std::io::Error::other(format!("is {what}"))));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_vector(path, &bytes)
}

/// Parses the bytes of a 1-D float `.npy`; `path` names it in errors.
pub fn parse_vector(path: &Path, bytes: &[u8]) -> Result<Vec<f64>> {
    let h = checked_header(path, bytes)?;
    if h.shape.len() != 1 {
        return Err(Error::BadVector {
            what: path.display().to_string(),
            reason: format!("expected a 1-D array, found shape {:?}", h.shape),
        });
    }
    let data = &bytes[h.data_offset..];
    Ok(match h.dtype {
        DType::F64 => data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        DType::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
    })
}

/// Writes a float64 vector atomically.
pub fn write_vector(path: &Path, v: &[f64]) -> Result<()> {
    super::output::check(path, super::output::Format::Npy, "a float64 vector")?;
    let mut f = AtomicFile::create(path)?;
    let io = |e| Error::io(path, e);
    f.write_all(&npy::header_bytes(DType::F64, &[v.len() as u64]))
        .map_err(io)?;
    for x in v {
        f.write_all(&x.to_le_bytes()).map_err(io)?;
    }
    f.commit()
}

/// Writes an `n × n` matrix atomically, asking `row(i, buf)` for each row in turn.
pub fn write_matrix(
    path: &Path,
    n: usize,
    dtype: DType,
    mut row: impl FnMut(usize, &mut [f64]) -> Result<()>,
) -> Result<()> {
    super::output::check(path, super::output::Format::Npy, "a dense float matrix")?;
    let mut f = AtomicFile::create(path)?;
    let io = |e| Error::io(path, e);
    f.write_all(&npy::header_bytes(dtype, &[n as u64, n as u64]))
        .map_err(io)?;
    let mut buf = vec![0.0f64; n];
    let mut bytes = Vec::with_capacity(n * dtype.size());
    for i in 0..n {
        row(i, &mut buf)?;
        bytes.clear();
        match dtype {
            DType::F64 => buf.iter().for_each(|x| bytes.extend(x.to_le_bytes())),
            DType::F32 => buf
                .iter()
                .for_each(|x| bytes.extend((*x as f32).to_le_bytes())),
        }
        f.write_all(&bytes).map_err(io)?;
    }
    f.commit()
}
