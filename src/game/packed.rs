//! Packed games: only the tiles on and above the diagonal are stored; `P[j][i] = 1 − P[i][j]`
//! gives the rest. Half the bytes of the dense layout, and one pass over them per apply.
//!
//! Storage (see `kernels::tile` for the order inside a tile): `nt = ⌈n/256⌉` tiles per side,
//! tile rows `I = 0..nt` each holding the tiles `J = I..nt` in order. Diagonal tiles are stored
//! whole; entries outside `n` are zero padding.
//!
//! Apply: tile row `I` computes `y_I = Σ_{J≥I} P_IJ x_J` and, for `J > I`, the mirrored
//! contribution to rows `J`: `P_JI x_I = (Σ x_I)·1 − P_IJᵀ x_I`, from the same tile while it is
//! in registers. Tile rows are cut into a fixed number of groups (independent of the thread
//! count), each with its own column accumulator; accumulators are combined in group order, so
//! results are bit-identical for any number of threads.

use super::PreferenceOperator;
use crate::error::{Error, Result};
use crate::io::container::{Elem, TILE, U16_ONE};
use crate::io::mmap::Mapped;
use crate::kernels::matvec::simd_available;
use crate::kernels::tile::{tile_index, TileElem, TILE_ELEMS};
use rayon::prelude::*;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Most groups of tile rows (each with an `n`-long accumulator).
const MAX_GROUPS: usize = 16;

/// Ordinal of tile `(I, J)`, `I ≤ J`, among the stored tiles.
pub fn tile_ordinal(nt: usize, ti: usize, tj: usize) -> usize {
    ti * nt - ti * ti.saturating_sub(1) / 2 + (tj - ti)
}

/// Number of stored tiles for `nt` tiles per side.
pub fn stored_tiles(nt: usize) -> usize {
    nt * (nt + 1) / 2
}

/// Contiguous ranges of tile rows with about equal numbers of tiles (a function of `nt` only).
fn groups(nt: usize) -> Vec<Range<usize>> {
    let g = nt.clamp(1, MAX_GROUPS);
    let total = stored_tiles(nt);
    let mut out = Vec::with_capacity(g);
    let (mut start, mut done) = (0usize, 0usize);
    for k in 1..=g {
        let target = total * k / g;
        let mut end = start;
        while end < nt && (done < target || end == start) {
            done += nt - end;
            end += 1;
        }
        if end > start {
            out.push(start..end);
        }
        start = end;
    }
    if start < nt {
        out.push(start..nt);
    }
    out
}

/// A packed preference matrix mapped from a container file.
pub struct PackedGame {
    n: usize,
    nt: usize,
    elem: Elem,
    map: Mapped,
    offset: usize,
    path: PathBuf,
    simd: bool,
    groups: Vec<Range<usize>>,
    /// Per group: its column accumulator (reused across applies).
    scratch: Mutex<Vec<Vec<f64>>>,
}

impl PackedGame {
    /// A packed game over a checked mapping.
    pub(crate) fn mapped(path: &Path, map: Mapped, offset: usize, n: usize, elem: Elem) -> Self {
        map.advise_sequential();
        let nt = n.div_ceil(TILE);
        let groups = groups(nt);
        let scratch = groups
            .iter()
            .map(|g| vec![0.0; (nt - g.start) * TILE])
            .collect();
        PackedGame {
            n,
            nt,
            elem,
            map,
            offset,
            path: path.into(),
            simd: true,
            groups,
            scratch: Mutex::new(scratch),
        }
    }

    /// Uses the portable scalar kernel instead of SIMD.
    pub fn with_simd(mut self, simd: bool) -> Self {
        self.simd = simd;
        self
    }

    fn tiles<T: TileElem>(&self) -> &[T] {
        bytemuck::cast_slice(&self.map.bytes()[self.offset..])
    }

    fn tile<T: TileElem>(&self, ti: usize, tj: usize) -> &[T] {
        let k = tile_ordinal(self.nt, ti, tj);
        &self.tiles::<T>()[k * TILE_ELEMS..(k + 1) * TILE_ELEMS]
    }

    fn raw_entry<T: TileElem>(&self, i: usize, j: usize) -> f64 {
        let (ti, tj) = (i / TILE, j / TILE);
        if ti <= tj {
            self.tile::<T>(ti, tj)[tile_index(i % TILE, j % TILE)].to_f64() * self.scale()
        } else {
            1.0 - self.raw_entry::<T>(j, i)
        }
    }

    fn scale(&self) -> f64 {
        match self.elem {
            Elem::U16 => 1.0 / U16_ONE,
            _ => 1.0,
        }
    }

    fn apply_typed<T: TileElem>(&self, x: &[f64], out: &mut [f64]) {
        let (n, nt) = (self.n, self.nt);
        let npad = nt * TILE;
        let simd = self.simd && simd_available();
        let scale = self.scale();
        let mut xs = vec![0.0f32; npad];
        xs[..n].iter_mut().zip(x).for_each(|(a, &b)| *a = b as f32);
        // Σ x over each tile row, in f64 (the `1 − P` of the mirrored tiles).
        let block_sum: Vec<f64> = (0..nt)
            .map(|t| x[t * TILE..((t + 1) * TILE).min(n)].iter().sum())
            .collect();
        let mut scratch = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        let ys: Vec<Vec<f64>> = self
            .groups
            .par_iter()
            .zip(scratch.par_iter_mut())
            .map(|(g, col)| {
                col.iter_mut().for_each(|v| *v = 0.0);
                let mut y = vec![0.0f64; g.len() * TILE];
                let (mut yt, mut zt) = ([0.0f32; TILE], [0.0f32; TILE]);
                for ti in g.clone() {
                    let xi = &xs[ti * TILE..(ti + 1) * TILE];
                    let yrow = &mut y[(ti - g.start) * TILE..(ti - g.start + 1) * TILE];
                    for tj in ti..nt {
                        let xj = &xs[tj * TILE..(tj + 1) * TILE];
                        yt.fill(0.0);
                        let t = self.tile::<T>(ti, tj);
                        if tj == ti {
                            T::tile(t, xi, xj, &mut yt, None, simd);
                        } else {
                            zt.fill(0.0);
                            T::tile(t, xi, xj, &mut yt, Some(&mut zt), simd);
                            let c0 = (tj - g.start) * TILE;
                            for (c, z) in zt.iter().enumerate() {
                                col[c0 + c] += block_sum[ti] - *z as f64 * scale;
                            }
                        }
                        for (a, b) in yrow.iter_mut().zip(&yt) {
                            *a += *b as f64 * scale;
                        }
                    }
                }
                y
            })
            .collect();
        let (groups, scratch) = (&self.groups, &*scratch);
        out.par_chunks_mut(TILE).enumerate().for_each(|(t, o)| {
            let gi = groups.partition_point(|g| g.end <= t);
            let g = &groups[gi];
            let yrow = &ys[gi][(t - g.start) * TILE..];
            for (k, v) in o.iter_mut().enumerate() {
                let mut s = yrow[k];
                for (h, col) in groups.iter().zip(scratch.iter()).take(gi + 1) {
                    s += col[(t - h.start) * TILE + k];
                }
                *v = s;
            }
        });
    }

    fn validate_typed<T: TileElem>(&self, tol: f64) -> Result<()> {
        let (n, nt, scale) = (self.n, self.nt, self.scale());
        // Every stored entry inside n×n: finite and in [0, 1]; diagonal tiles also skew.
        let bad = (0..stored_tiles(nt))
            .into_par_iter()
            .map(|k| {
                let (ti, tj) = tile_of_ordinal(nt, k);
                let t = self.tile::<T>(ti, tj);
                let mut first: Option<(usize, usize, f64, Option<f64>)> = None;
                for r in 0..TILE.min(n - ti * TILE) {
                    for c in 0..TILE.min(n - tj * TILE) {
                        let (i, j) = (ti * TILE + r, tj * TILE + c);
                        let v = t[tile_index(r, c)].to_f64() * scale;
                        let found = if !v.is_finite() || !(0.0..=1.0).contains(&v) {
                            Some((i, j, v, None))
                        } else if ti == tj && r <= c {
                            let w = t[tile_index(c, r)].to_f64() * scale;
                            ((v + w - 1.0).abs() > tol).then_some((i, j, v, Some(w)))
                        } else {
                            None
                        };
                        if found.is_some() {
                            first = first.or(found);
                        }
                    }
                }
                first
            })
            .find_first(|f| f.is_some())
            .flatten();
        match bad {
            None => Ok(()),
            Some((i, j, v, None)) if !v.is_finite() => Err(Error::NotFinite {
                path: self.path.clone(),
                i,
                j,
                value: v,
            }),
            Some((i, j, v, None)) => Err(Error::OutOfRange {
                path: self.path.clone(),
                i,
                j,
                value: v,
            }),
            Some((i, j, pij, Some(pji))) => Err(Error::NotSkewSymmetric {
                path: self.path.clone(),
                i,
                j,
                pij,
                pji,
                sum: pij + pji,
                tol,
            }),
        }
    }
}

/// The tile `(I, J)` with the given ordinal.
pub fn tile_of_ordinal(nt: usize, k: usize) -> (usize, usize) {
    let mut ti = 0;
    let mut start = 0;
    while start + (nt - ti) <= k {
        start += nt - ti;
        ti += 1;
    }
    (ti, ti + (k - start))
}

impl PreferenceOperator for PackedGame {
    fn n(&self) -> usize {
        self.n
    }

    fn apply(&self, x: &[f64], out: &mut [f64]) {
        assert_eq!(x.len(), self.n);
        assert_eq!(out.len(), self.n);
        match self.elem {
            Elem::F32 => self.apply_typed::<f32>(x, out),
            Elem::F64 => self.apply_typed::<f64>(x, out),
            Elem::U16 => self.apply_typed::<u16>(x, out),
        }
    }

    fn entry(&self, i: usize, j: usize) -> f64 {
        assert!(
            i < self.n && j < self.n,
            "entry ({i}, {j}) of an {0}x{0} game",
            self.n
        );
        match self.elem {
            Elem::F32 => self.raw_entry::<f32>(i, j),
            Elem::F64 => self.raw_entry::<f64>(i, j),
            Elem::U16 => self.raw_entry::<u16>(i, j),
        }
    }

    fn validate(&self, tol: Option<f64>) -> Result<()> {
        let tol = tol.unwrap_or(super::DenseGame::default_tol(self.elem));
        match self.elem {
            Elem::F32 => self.validate_typed::<f32>(tol),
            Elem::F64 => self.validate_typed::<f64>(tol),
            Elem::U16 => self.validate_typed::<u16>(tol),
        }
    }

    fn precision(&self) -> f64 {
        match self.elem {
            Elem::F32 => 1e-7,
            Elem::F64 => 1e-15,
            Elem::U16 => 8e-6,
        }
    }

    fn layout(&self) -> String {
        format!("packed {}", self.elem.name())
    }

    fn stored_bytes(&self) -> u64 {
        (stored_tiles(self.nt) * TILE_ELEMS * self.elem.size()) as u64
    }

    fn describe(&self) -> String {
        format!(
            "packed {} {}x{} ({} bytes) from {}",
            self.elem.name(),
            self.n,
            self.n,
            self.stored_bytes(),
            self.path.display()
        )
    }
}
