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

use super::{check_shapes, Info, MatMut, MatRef, MemStack, PreferenceOperator, StackReq};
use crate::error::{Error, Result};
use crate::io::container::{Elem, TILE, U16_ONE};
use crate::io::mmap::Mapped;
use crate::kernels::batch::MAX_BATCH;
use crate::kernels::isa::{Isa, SIMD_ALIGN};
use crate::kernels::tile::{tile_index, TileElem, TILE_ELEMS};
use rayon::prelude::*;
use std::ops::Range;
use std::path::{Path, PathBuf};

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

/// One group's share of an apply's workspace.
struct GroupScratch<'a> {
    y: &'a mut [f64],
    col: &'a mut [f64],
    yt: &'a mut [f32],
    zt: &'a mut [f32],
}

/// A packed preference matrix mapped from a container file.
pub struct PackedGame {
    n: usize,
    nt: usize,
    elem: Elem,
    map: Mapped,
    offset: usize,
    path: PathBuf,
    isa: Isa,
    groups: Vec<Range<usize>>,
}

impl PackedGame {
    /// A packed game over a checked mapping.
    pub(crate) fn mapped(path: &Path, map: Mapped, offset: usize, n: usize, elem: Elem) -> Self {
        map.advise_sequential();
        let nt = n.div_ceil(TILE);
        let groups = groups(nt);
        PackedGame {
            n,
            nt,
            elem,
            map,
            offset,
            path: path.into(),
            isa: Isa::best(),
            groups,
        }
    }

    /// Uses the portable scalar kernel instead of SIMD (the same bits).
    pub fn with_simd(self, simd: bool) -> Self {
        self.with_isa(if simd { Isa::best() } else { Isa::Scalar })
    }

    /// Runs the kernels of `isa` (the same bits on every instruction set).
    pub fn with_isa(mut self, isa: Isa) -> Self {
        self.isa = isa;
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

    /// The workspace of one pass of [`PackedGame::apply_typed`] over `k ≤ MAX_BATCH` vectors.
    fn pass_scratch(&self, k: usize) -> StackReq {
        let (nt, npad) = (self.nt, self.nt * TILE);
        let sums: usize = self
            .groups
            .iter()
            .map(|g| g.len() * TILE + (nt - g.start) * TILE)
            .sum();
        let g = self.groups.len();
        StackReq::all_of(&[
            StackReq::new_aligned::<f32>(k * npad, SIMD_ALIGN),
            StackReq::new::<f64>(k * nt),
            StackReq::new::<f64>(k * sums),
            StackReq::new_aligned::<f32>(2 * k * TILE * g, SIMD_ALIGN),
            StackReq::new::<GroupScratch<'static>>(g),
        ])
    }

    /// `outs[v] = P xs[v]` in one pass over the tiles: each tile is read from memory once and
    /// serves every vector (its row blocks stay in L1 across them). Each vector's sums are the
    /// same operations in the same order whatever `k`, so its product is the bits of its single
    /// apply. The workspace ([`PackedGame::pass_scratch`]) comes from `stack`.
    fn apply_typed<T: TileElem>(
        &self,
        xs: &[&[f64]],
        outs: &mut [&mut [f64]],
        stack: &mut MemStack,
    ) {
        let (n, nt, k) = (self.n, self.nt, xs.len());
        let npad = nt * TILE;
        let isa = self.isa;
        let scale = self.scale();
        let (mut xf, stack) = stack.make_aligned_with(k * npad, SIMD_ALIGN, |_| 0.0f32);
        for (v, x) in xf.chunks_mut(npad).zip(xs) {
            v[..n]
                .iter_mut()
                .zip(x.iter())
                .for_each(|(a, &b)| *a = b as f32);
        }
        let xf = &*xf;
        // Σ x over each tile row, in f64 (the `1 − P` of the mirrored tiles): [v × nt + tile row].
        let (mut block_sum, stack) = stack.make_with(k * nt, |_| 0.0f64);
        for (bs, x) in block_sum.chunks_mut(nt).zip(xs) {
            for (t, b) in bs.iter_mut().enumerate() {
                *b = x[t * TILE..((t + 1) * TILE).min(n)].iter().sum();
            }
        }
        let block_sum = &*block_sum;
        // Per group: (row results, column accumulators, tile outputs), vector v at v × their
        // length.
        let sums: usize = self
            .groups
            .iter()
            .map(|g| g.len() * TILE + (nt - g.start) * TILE)
            .sum();
        let (mut sum_buf, stack) = stack.make_with(k * sums, |_| 0.0f64);
        let (mut tile_buf, stack) =
            stack.make_aligned_with(2 * k * TILE * self.groups.len(), SIMD_ALIGN, |_| 0.0f32);
        let mut sum_rest = &mut sum_buf[..];
        let mut tile_rest = &mut tile_buf[..];
        let (mut parts, _) = stack.collect(self.groups.iter().map(|g| {
            let (ylen, clen) = (g.len() * TILE, (nt - g.start) * TILE);
            let (y, rest) = std::mem::take(&mut sum_rest).split_at_mut(k * ylen);
            let (col, rest) = rest.split_at_mut(k * clen);
            sum_rest = rest;
            let (yt, rest) = std::mem::take(&mut tile_rest).split_at_mut(k * TILE);
            let (zt, rest) = rest.split_at_mut(k * TILE);
            tile_rest = rest;
            GroupScratch { y, col, yt, zt }
        }));
        assert_eq!(parts.len(), self.groups.len(), "scratch too small");
        self.groups
            .par_iter()
            .zip(parts.par_iter_mut())
            .for_each(|(g, part)| {
                let GroupScratch { y, col, yt, zt } = part;
                let clen = (nt - g.start) * TILE;
                let ylen = g.len() * TILE;
                for ti in g.clone() {
                    let xi: [&[f32]; MAX_BATCH] = std::array::from_fn(|v| {
                        if v < k {
                            &xf[v * npad + ti * TILE..v * npad + (ti + 1) * TILE]
                        } else {
                            &[]
                        }
                    });
                    let y0 = (ti - g.start) * TILE;
                    for tj in ti..nt {
                        let xj: [&[f32]; MAX_BATCH] = std::array::from_fn(|v| {
                            if v < k {
                                &xf[v * npad + tj * TILE..v * npad + (tj + 1) * TILE]
                            } else {
                                &[]
                            }
                        });
                        yt.fill(0.0);
                        let t = self.tile::<T>(ti, tj);
                        if tj == ti {
                            T::tile_batch(t, &xi[..k], &xj[..k], yt, None, isa);
                        } else {
                            zt.fill(0.0);
                            T::tile_batch(t, &xi[..k], &xj[..k], yt, Some(&mut **zt), isa);
                            let c0 = (tj - g.start) * TILE;
                            for v in 0..k {
                                let cv = &mut col[v * clen + c0..v * clen + c0 + TILE];
                                let bs = block_sum[v * nt + ti];
                                for (c, z) in cv.iter_mut().zip(&zt[v * TILE..(v + 1) * TILE]) {
                                    *c += bs - *z as f64 * scale;
                                }
                            }
                        }
                        for v in 0..k {
                            let yrow = &mut y[v * ylen + y0..v * ylen + y0 + TILE];
                            for (a, b) in yrow.iter_mut().zip(&yt[v * TILE..(v + 1) * TILE]) {
                                *a += *b as f64 * scale;
                            }
                        }
                    }
                }
            });
        let groups = &self.groups;
        let parts = &*parts;
        for (v, out) in outs.iter_mut().enumerate() {
            out.par_chunks_mut(TILE).enumerate().for_each(|(t, o)| {
                let gi = groups.partition_point(|g| g.end <= t);
                let g = &groups[gi];
                let ylen = g.len() * TILE;
                let yrow = &parts[gi].y[v * ylen + (t - g.start) * TILE..];
                for (kk, val) in o.iter_mut().enumerate() {
                    let mut s = yrow[kk];
                    for (h, p) in groups.iter().zip(parts.iter()).take(gi + 1) {
                        let clen = (nt - h.start) * TILE;
                        s += p.col[v * clen + (t - h.start) * TILE + kk];
                    }
                    *val = s;
                }
            });
        }
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

    /// One pass over the tiles for up to [`MAX_BATCH`] columns (more: several passes); every
    /// column's product is the bits of its single apply.
    fn apply(&self, out: MatMut<'_, f64>, rhs: MatRef<'_, f64>, stack: &mut MemStack) {
        check_shapes(self.n, &out, &rhs);
        super::for_column_groups(out, rhs, |xs, os| match self.elem {
            Elem::F32 => self.apply_typed::<f32>(xs, os, stack),
            Elem::F64 => self.apply_typed::<f64>(xs, os, stack),
            Elem::U16 => self.apply_typed::<u16>(xs, os, stack),
        });
    }

    fn apply_scratch(&self, k: usize) -> StackReq {
        self.pass_scratch(k.min(MAX_BATCH))
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

    fn info(&self) -> Info<'_> {
        let stored_bytes = (stored_tiles(self.nt) * TILE_ELEMS * self.elem.size()) as u64;
        let layout = format!("packed {}", self.elem.name());
        Info::matrix_file(layout, self.n, stored_bytes, &self.path)
    }
}
