//! Writing games in every layout: parallel, streaming (memory bounded by one batch, whatever the
//! file size), atomic (a temporary file renamed into place), byte-identical for any thread count
//! (every byte is a function of its position).
//!
//! [`matrix`] is the one dispatch from a matrix storage ([`MatrixFormat`]) to a file (`.npy`
//! for dense f32/f64, the container otherwise); every writer checks its target with
//! [`super::output::check`] (extension ↔ format, parent folder) before writing a byte.

use super::atomic::AtomicFile;
use super::container::{self, quantise_u16, Elem, GameHeader, Layout, TypeWidth, TILE, U16_ONE};
use super::npy::{self, DType};
use super::output::{self, Format};
use crate::error::{Error, Result};
use crate::storage::{tile_index, TILE_ELEMS};
use rayon::prelude::*;
use std::io::Write;
use std::path::Path;

/// Bytes computed in parallel before each sequential write.
const BATCH_BYTES: usize = 32 << 20;

/// Reports bytes written so far.
pub type Progress<'a> = &'a (dyn Fn(u64) + Sync);

/// The game being written. It must be skew-consistent (`P[j][i] = 1 − P[i][j]`): the packed
/// layout stores only the upper triangle, and `u16` entries below the diagonal are written as
/// `U16_ONE − q_ji` so that `q_ij + q_ji = U16_ONE` holds exactly.
pub trait MatrixSource: Sync {
    /// `out[k] = P[i][j0 + k]`.
    fn row(&self, i: usize, j0: usize, out: &mut [f64]);
    /// `P[i][j]`.
    fn entry(&self, i: usize, j: usize) -> f64;
}

/// A closure `(i, j) → P[i][j]` as a [`MatrixSource`].
pub struct FnSource<F>(pub F);

impl<F: Fn(usize, usize) -> f64 + Sync> MatrixSource for FnSource<F> {
    fn row(&self, i: usize, j0: usize, out: &mut [f64]) {
        for (k, o) in out.iter_mut().enumerate() {
            *o = (self.0)(i, j0 + k);
        }
    }
    fn entry(&self, i: usize, j: usize) -> f64 {
        (self.0)(i, j)
    }
}

pub type EntryFn<'a> = &'a dyn MatrixSource;

/// Row `i`, columns `j0..j0 + out.len()`, as the layout stores it (fixed point made exactly
/// skew-consistent for `u16`).
fn stored_row(src: EntryFn, elem: Elem, i: usize, j0: usize, out: &mut [f64]) {
    src.row(i, j0, out);
    if elem == Elem::U16 {
        for (k, o) in out.iter_mut().enumerate() {
            let j = j0 + k;
            *o = match j.cmp(&i) {
                std::cmp::Ordering::Greater => quantise_u16(*o) as f64 / U16_ONE,
                std::cmp::Ordering::Less => {
                    (U16_ONE - quantise_u16(src.entry(j, i)) as f64) / U16_ONE
                }
                std::cmp::Ordering::Equal => 0.5,
            };
        }
    }
}

fn put(elem: Elem, v: f64, out: &mut [u8]) {
    match elem {
        Elem::F64 => out.copy_from_slice(&v.to_le_bytes()),
        Elem::F32 => out.copy_from_slice(&(v as f32).to_le_bytes()),
        Elem::U16 => out.copy_from_slice(&quantise_u16(v).to_le_bytes()),
    }
}

fn write_rows(
    f: &mut AtomicFile,
    n: usize,
    elem: Elem,
    entry: EntryFn,
    progress: Progress,
) -> Result<()> {
    let es = elem.size();
    let row_bytes = n * es;
    let rows_per_batch = (BATCH_BYTES / row_bytes.max(1)).max(1);
    let sizes: Vec<usize> = (0..n.div_ceil(rows_per_batch))
        .map(|k| rows_per_batch.min(n - k * rows_per_batch) * row_bytes)
        .collect();
    let fill = |k: usize, b: &mut [u8]| {
        let i0 = k * rows_per_batch;
        b.par_chunks_mut(row_bytes).enumerate().for_each_init(
            || vec![0.0f64; n],
            |vals, (r, row)| {
                stored_row(entry, elem, i0 + r, 0, vals);
                for (v, cell) in vals.iter().zip(row.chunks_exact_mut(es)) {
                    put(elem, *v, cell);
                }
            },
        );
    };
    pipelined(f, &sizes, &fill, progress)
}

/// Writes batches of the given sizes in order, computing batch `k + 1` (in parallel) while
/// batch `k` is being written.
fn pipelined(
    f: &mut AtomicFile,
    sizes: &[usize],
    fill: &(dyn Fn(usize, &mut [u8]) + Sync),
    progress: Progress,
) -> Result<()> {
    let max = sizes.iter().copied().max().unwrap_or(0);
    let (mut cur, mut next) = (vec![0u8; max], vec![0u8; max]);
    if let Some(&first) = sizes.first() {
        fill(0, &mut cur[..first]);
    }
    let mut done = 0u64;
    for k in 0..sizes.len() {
        let head = &cur[..sizes[k]];
        let (written, ()) = rayon::join(
            || f.write_all(head),
            || {
                if let Some(&size) = sizes.get(k + 1) {
                    fill(k + 1, &mut next[..size]);
                }
            },
        );
        written.map_err(|e| Error::io(f.path(), e))?;
        done += sizes[k] as u64;
        progress(done);
        std::mem::swap(&mut cur, &mut next);
    }
    Ok(())
}

/// A post-write check of the complete temporary file (its path is passed) before it is renamed
/// into place; see [`AtomicFile::commit_checked`].
pub type Verify<'a> = &'a dyn Fn(&Path) -> Result<()>;

fn no_check(_: &Path) -> Result<()> {
    Ok(())
}

/// How a matrix game is stored: its layout ([`Layout::Dense`] or [`Layout::Packed`]) and entry
/// type. Dense f32/f64 games are `.npy` files (numpy reads them), the others containers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatrixFormat {
    layout: Layout,
    elem: Elem,
}

impl MatrixFormat {
    /// The sweep's and `generate`'s default: a dense float32 `.npy`.
    pub const DENSE_F32: MatrixFormat = MatrixFormat {
        layout: Layout::Dense,
        elem: Elem::F32,
    };

    /// Checks that `layout` is a matrix layout that can store `elem`.
    pub fn new(layout: Layout, elem: Elem) -> Result<Self> {
        match (layout, elem) {
            (Layout::Packed, Elem::F64) => Err(Error::Param(
                "the packed layout computes in f32 and stores f32 or u16; for float64 precision \
                 use --layout dense --dtype f64"
                    .into(),
            )),
            (Layout::Dense | Layout::Packed, _) => Ok(MatrixFormat { layout, elem }),
            (l, _) => Err(Error::Param(format!("{l:?} is not a matrix layout"))),
        }
    }

    pub fn layout(self) -> Layout {
        self.layout
    }

    pub fn elem(self) -> Elem {
        self.elem
    }

    /// The `.npy` dtype, for the formats numpy reads.
    pub fn npy_dtype(self) -> Option<DType> {
        match (self.layout, self.elem) {
            (Layout::Dense, Elem::F32) => Some(DType::F32),
            (Layout::Dense, Elem::F64) => Some(DType::F64),
            _ => None,
        }
    }

    /// The file format, and so the extension, of a game stored this way.
    pub fn file_format(self) -> Format {
        if self.npy_dtype().is_some() {
            Format::Npy
        } else {
            Format::Container
        }
    }

    /// `"a packed u16 game"`.
    pub fn describe(self) -> String {
        let layout = match self.layout {
            Layout::Packed => "packed",
            _ => "dense",
        };
        format!("a {layout} {} game", self.elem.name())
    }

    /// Checks `path` for a game stored this way (extension, parent folder).
    pub fn check_target(self, path: &Path) -> Result<()> {
        output::check(path, self.file_format(), &self.describe())
    }

    /// The game's data bytes (without the header) at `n` actions.
    pub fn data_bytes(self, n: u64) -> Result<u64> {
        self.header(&GameHeader::new(n, Layout::Dense))
            .expected_data_bytes()
            .map_err(Error::Param)
    }

    /// `base` (n, family, seed, params) with this storage's layout, dtype and tile.
    fn header(self, base: &GameHeader) -> GameHeader {
        let mut h = base.clone();
        h.layout = self.layout;
        h.dtype = Some(self.elem);
        if self.layout == Layout::Packed {
            h.tile = Some(TILE as u64);
        }
        h
    }
}

/// Writes the matrix game `entry` of `base.n` actions stored as `format` (the header's family,
/// seed and params are kept in a container; `.npy` has no room for them). `verify` reads the
/// complete file before it is renamed into place: if it fails, nothing is left at `path`.
/// Returns the number of data bytes.
pub fn matrix(
    path: &Path,
    base: &GameHeader,
    format: MatrixFormat,
    entry: EntryFn,
    progress: Progress,
    verify: Option<Verify>,
) -> Result<u64> {
    format.check_target(path)?;
    let header = format.header(base);
    let n = usize::try_from(header.n).map_err(|_| Error::Param("n too large".into()))?;
    let verify = verify.unwrap_or(&no_check);
    match format.npy_dtype() {
        Some(d) => write_npy(path, n, d, entry, progress, verify)?,
        None => write_container(path, &header, entry, progress, verify)?,
    }
    format.data_bytes(header.n)
}

/// A dense `f32`/`f64` game as `.npy` (what numpy reads).
pub fn dense_npy(
    path: &Path,
    n: usize,
    dtype: DType,
    entry: EntryFn,
    progress: Progress,
) -> Result<()> {
    output::check(path, Format::Npy, "a dense float game")?;
    write_npy(path, n, dtype, entry, progress, &no_check)
}

fn write_npy(
    path: &Path,
    n: usize,
    dtype: DType,
    entry: EntryFn,
    progress: Progress,
    verify: Verify,
) -> Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(&npy::header_bytes(dtype, &[n as u64, n as u64]))
        .map_err(|e| Error::io(path, e))?;
    let elem = match dtype {
        DType::F32 => Elem::F32,
        DType::F64 => Elem::F64,
    };
    write_rows(&mut f, n, elem, entry, progress)?;
    f.commit_checked(verify)
}

/// A game in the container: `header` says the layout (dense or packed) and element type.
pub fn matrix_container(
    path: &Path,
    header: &GameHeader,
    entry: EntryFn,
    progress: Progress,
) -> Result<()> {
    output::check(path, Format::Container, "a nashmp game container")?;
    write_container(path, header, entry, progress, &no_check)
}

fn write_container(
    path: &Path,
    header: &GameHeader,
    entry: EntryFn,
    progress: Progress,
    verify: Verify,
) -> Result<()> {
    let n = usize::try_from(header.n).map_err(|_| Error::Param("n too large".into()))?;
    let elem = header
        .dtype
        .ok_or_else(|| Error::Param("dtype missing".into()))?;
    let mut f = AtomicFile::create(path)?;
    f.write_all(&container::header_bytes(header))
        .map_err(|e| Error::io(path, e))?;
    match header.layout {
        Layout::Dense => write_rows(&mut f, n, elem, entry, progress)?,
        Layout::Packed => write_tiles(&mut f, n, elem, entry, progress)?,
        l => return Err(Error::Param(format!("layout {l:?} is not a matrix layout"))),
    }
    f.commit_checked(verify)
}

fn write_tiles(
    f: &mut AtomicFile,
    n: usize,
    elem: Elem,
    entry: EntryFn,
    progress: Progress,
) -> Result<()> {
    let es = elem.size();
    let tile_bytes = TILE_ELEMS * es;
    let nt = n.div_ceil(TILE);
    let per_batch = (BATCH_BYTES / tile_bytes).max(1);
    // Batches: runs of at most `per_batch` tiles within one tile row, in file order.
    let mut batches = Vec::new();
    for ti in 0..nt {
        let mut tj0 = ti;
        while tj0 < nt {
            let count = per_batch.min(nt - tj0);
            batches.push((ti, tj0, count));
            tj0 += count;
        }
    }
    let sizes: Vec<usize> = batches.iter().map(|b| b.2 * tile_bytes).collect();
    let fill = |k: usize, b: &mut [u8]| {
        let (ti, tj0, _) = batches[k];
        b.par_chunks_mut(tile_bytes).enumerate().for_each_init(
            || vec![0.0f64; TILE],
            |vals, (q, tile)| {
                let tj = tj0 + q;
                let cols = TILE.min(n - tj * TILE);
                for r in 0..TILE {
                    let i = ti * TILE + r;
                    if i < n {
                        stored_row(entry, elem, i, tj * TILE, &mut vals[..cols]);
                        vals[cols..].fill(0.0);
                    } else {
                        vals.fill(0.0);
                    }
                    for (c, v) in vals.iter().enumerate() {
                        let at = tile_index(r, c) * es;
                        put(elem, *v, &mut tile[at..at + es]);
                    }
                }
            },
        );
    };
    pipelined(f, &sizes, &fill, progress)
}

/// A low-rank game: weights `w`, and `factor(k, i) = (a_k[i], b_k[i])`.
pub fn lowrank(
    path: &Path,
    header: &GameHeader,
    w: &[f64],
    factor: &(dyn Fn(usize, usize) -> (f64, f64) + Sync),
    progress: Progress,
) -> Result<()> {
    output::check(path, Format::Container, "a low-rank game")?;
    let n = header.n as usize;
    let mut f = AtomicFile::create(path)?;
    let io = |e| Error::io(path, e);
    f.write_all(&container::header_bytes(header)).map_err(io)?;
    f.write_all(bytemuck::cast_slice(w)).map_err(io)?;
    let mut done = 0u64;
    for which in 0..2 {
        for k in 0..w.len() {
            let chunk = BATCH_BYTES / 8;
            let mut i0 = 0;
            while i0 < n {
                let len = chunk.min(n - i0);
                let v: Vec<f64> = (i0..i0 + len)
                    .into_par_iter()
                    .map(|i| {
                        let (a, b) = factor(k, i);
                        if which == 0 {
                            a
                        } else {
                            b
                        }
                    })
                    .collect();
                f.write_all(bytemuck::cast_slice(&v)).map_err(io)?;
                done += (len * 8) as u64;
                progress(done);
                i0 += len;
            }
        }
    }
    f.commit()
}

/// A block game: `Q` (`K × K`, row-major) and `t(i)`.
pub fn block(
    path: &Path,
    header: &GameHeader,
    q: &[f64],
    type_of: &(dyn Fn(usize) -> u32 + Sync),
    progress: Progress,
) -> Result<()> {
    output::check(path, Format::Container, "a block game")?;
    let n = header.n as usize;
    let width = header
        .type_width
        .ok_or_else(|| Error::Param("type_width missing".into()))?;
    let ws = width.size();
    let mut f = AtomicFile::create(path)?;
    let io = |e| Error::io(path, e);
    f.write_all(&container::header_bytes(header)).map_err(io)?;
    f.write_all(bytemuck::cast_slice(q)).map_err(io)?;
    let chunk = BATCH_BYTES / ws;
    let mut done = 0u64;
    let mut i0 = 0;
    let mut buf = vec![0u8; chunk.min(n) * ws];
    while i0 < n {
        let len = chunk.min(n - i0);
        let b = &mut buf[..len * ws];
        b.par_chunks_mut(ws).enumerate().for_each(|(k, cell)| {
            let t = type_of(i0 + k);
            match width {
                TypeWidth::U8 => cell[0] = t as u8,
                TypeWidth::U16 => cell.copy_from_slice(&(t as u16).to_le_bytes()),
                TypeWidth::U32 => cell.copy_from_slice(&t.to_le_bytes()),
            }
        });
        f.write_all(b).map_err(io)?;
        done += b.len() as u64;
        progress(done);
        i0 += len;
    }
    let pad = (n * ws).div_ceil(8) * 8 - n * ws;
    f.write_all(&vec![0u8; pad]).map_err(io)?;
    f.commit()
}
