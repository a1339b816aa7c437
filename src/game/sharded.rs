//! Games stored as shard sets (`io::shards`): the per-shard kernels that an MPI rank runs on its
//! own shard, and the single-process operators that open every shard of a set.
//!
//! **Dense.** A shard holds rows `a..b`; it computes `(P x)_i` for its rows with the same
//! per-row kernel as [`super::DenseGame`] (`Element::dot_rows`: each row's sum depends only on
//! the row and `x`, never on which rows share a call), so a sharded apply is bit-identical to
//! the unsharded one for every split.
//!
//! **Packed.** A shard holds tile rows `A..B`: it computes `y_I = Σ_{J≥I} P_IJ x_J` for its own
//! tile rows and the mirrored contributions `P_JI x_I` to every later tile row `J`, as the
//! unsharded kernel does, into a *partial* vector over rows `A·256..n`. The product is the sum
//! of the partials, block by block, in shard order (`p_0 + p_1 + … + p_q` for the rows of shard
//! `q`). Every term is the same `f64` number as in the unsharded apply (the tile kernels see
//! the same tiles and the same `x`); only the order in which they are added depends on the
//! split, so an `R`-shard result differs from the unsharded one by reassociation alone:
//! `|Δ(P x)_i| ≤ 4·nt·2⁻⁵³·Σ_j |x_j|` ([`packed_reassociation_bound`]). For one shard the order
//! is the unsharded one and the bits are equal.

use super::packed::{stored_tiles, tile_of_ordinal, tile_ordinal};
use super::{
    check_shapes, column, columns_mut, DenseGame, Info, MatMut, MatRef, MemStack,
    PreferenceOperator, StackReq, Structure,
};
use crate::error::{Error, Result};
use crate::io::container::{Elem, Layout, TILE, U16_ONE};
use crate::io::mmap::Mapped;
use crate::io::shards::ShardSet;
use crate::kernels::isa::{Isa, SIMD_ALIGN};
use crate::kernels::matvec::{Element, PAR_MIN_ELEMS};
use crate::kernels::tile::{tile_index, TileElem, TILE_ELEMS};
use rayon::prelude::*;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Rows per dot-product call and per parallel task (as `kernels::matvec`; the result does not
/// depend on them).
const ROWS: usize = 4;
const TASK_ROWS: usize = 128;
/// Most groups of tile rows inside one packed shard (as `game::packed`).
const MAX_GROUPS: usize = 16;

/// `|Δ(P x)_i|` allowed between a packed apply split into shards and the unsharded one: both
/// add the same `≤ 2·nt` non-negative `f64` terms, whose sum is at most `Σ_j |x_j|` (up to the
/// `f32` rounding of the tile sums), in different orders; each order is within
/// `(m−1)·2⁻⁵³·Σ|terms|` of the exact sum.
pub fn packed_reassociation_bound(n: usize, x: &[f64]) -> f64 {
    let nt = n.div_ceil(TILE) as f64;
    4.0 * nt * f64::EPSILON / 2.0 * x.iter().map(|v| v.abs()).sum::<f64>() * 1.01
}

/// One dense shard: rows `rows` of an `n × n` matrix, mapped.
pub struct DenseShard {
    n: usize,
    elem: Elem,
    rows: Range<usize>,
    map: Mapped,
    path: PathBuf,
    simd: bool,
}

impl DenseShard {
    pub fn new(path: &Path, map: Mapped, n: usize, elem: Elem, rows: Range<usize>) -> Self {
        map.advise_sequential();
        DenseShard {
            n,
            elem,
            rows,
            map,
            path: path.into(),
            simd: true,
        }
    }

    pub fn rows(&self) -> Range<usize> {
        self.rows.clone()
    }

    fn slice<T: Element>(&self) -> &[T] {
        bytemuck::cast_slice(self.map.bytes())
    }

    /// `out[k] = (P x)_{rows.start + k}`.
    ///
    /// # Panics
    /// If `x.len() != n` or `out.len()` is not the number of rows.
    pub fn apply_rows(&self, x: &[f64], out: &mut [f64], stack: &mut MemStack) {
        assert_eq!(x.len(), self.n);
        assert_eq!(out.len(), self.rows.len());
        match self.elem {
            Elem::F32 => rows_matvec(self.slice::<f32>(), x, out, self.simd, stack),
            Elem::F64 => rows_matvec(self.slice::<f64>(), x, out, self.simd, stack),
            Elem::U16 => rows_matvec(self.slice::<u16>(), x, out, self.simd, stack),
        }
    }

    /// The workspace of [`DenseShard::apply_rows`]: the converted vector.
    pub fn apply_rows_scratch(&self) -> StackReq {
        match self.elem {
            Elem::F64 => StackReq::new::<f64>(self.n),
            Elem::F32 | Elem::U16 => StackReq::new_aligned::<f32>(self.n, SIMD_ALIGN),
        }
    }

    /// `P[i][j]` for a row `i` of this shard.
    pub fn entry(&self, i: usize, j: usize) -> f64 {
        let k = (i - self.rows.start) * self.n + j;
        match self.elem {
            Elem::F32 => Element::to_f64(self.slice::<f32>()[k]),
            Elem::F64 => self.slice::<f64>()[k],
            Elem::U16 => Element::to_f64(self.slice::<u16>()[k]),
        }
    }

    /// Checks every entry of the shard (finite, in `[0, 1]`) and the skew condition against
    /// `mirror(j, i)` = `P[j][i]` where it is known (`None`: not held here). The error names
    /// the first violation in row-major order.
    pub fn validate_with(
        &self,
        tol: f64,
        mirror: &(dyn Fn(usize, usize) -> Option<f64> + Sync),
    ) -> Result<()> {
        let n = self.n;
        let bad = self.rows.clone().into_par_iter().find_map_first(|i| {
            for j in 0..n {
                let v = self.entry(i, j);
                if !v.is_finite() {
                    return Some(Error::NotFinite {
                        path: self.path.clone(),
                        i,
                        j,
                        value: v,
                    });
                }
                if !(0.0..=1.0).contains(&v) {
                    return Some(Error::OutOfRange {
                        path: self.path.clone(),
                        i,
                        j,
                        value: v,
                    });
                }
                if j >= i {
                    if let Some(w) = mirror(j, i) {
                        if (v + w - 1.0).abs() > tol || !w.is_finite() {
                            return Some(Error::NotSkewSymmetric {
                                path: self.path.clone(),
                                i,
                                j,
                                pij: v,
                                pji: w,
                                sum: v + w,
                                tol,
                            });
                        }
                    }
                }
            }
            None
        });
        match bad {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// [`validate_with`](Self::validate_with) where only this shard's rows are known.
    pub fn validate_local(&self, tol: f64) -> Result<()> {
        let rows = self.rows.clone();
        self.validate_with(tol, &|j, i| rows.contains(&j).then(|| self.entry(j, i)))
    }
}

/// `out = P_rows x` for `out.len()` consecutive rows of length `x.len()` stored in `p`, summed
/// exactly as `kernels::matvec::matvec` sums each row.
fn rows_matvec<T: Element>(p: &[T], x: &[f64], out: &mut [f64], simd: bool, stack: &mut MemStack) {
    let n = x.len();
    assert_eq!(p.len(), out.len() * n, "shard length");
    let (mut xs, _) = stack.make_aligned_with(n, SIMD_ALIGN, |_| T::X::default());
    xs.iter_mut()
        .zip(x)
        .for_each(|(a, &b)| *a = T::convert_x(b));
    let xs = &*xs;
    let simd = if simd { Isa::best() } else { Isa::Scalar };
    let task = |(t, chunk): (usize, &mut [f64])| {
        let r0 = t * TASK_ROWS;
        let mut r = 0;
        while r + ROWS <= chunk.len() {
            let i = r0 + r;
            let rows: [&[T]; ROWS] = std::array::from_fn(|k| &p[(i + k) * n..(i + k + 1) * n]);
            let v = T::dot_rows::<ROWS>(rows, xs, simd);
            for k in 0..ROWS {
                chunk[r + k] = v[k] * T::SCALE;
            }
            r += ROWS;
        }
        while r < chunk.len() {
            let i = r0 + r;
            chunk[r] = T::dot_rows::<1>([&p[i * n..(i + 1) * n]], xs, simd)[0] * T::SCALE;
            r += 1;
        }
    };
    if p.len() < PAR_MIN_ELEMS {
        out.chunks_mut(TASK_ROWS).enumerate().for_each(task);
    } else {
        out.par_chunks_mut(TASK_ROWS).enumerate().for_each(task);
    }
}

/// Contiguous groups of the tile rows `r` with about equal numbers of tiles; for `r = 0..nt`
/// exactly the groups of `game::packed` (so a one-shard set sums as the unsharded game does).
fn groups_in(r: Range<usize>, nt: usize) -> Vec<Range<usize>> {
    let g = r.len().clamp(1, MAX_GROUPS);
    let total: usize = r.clone().map(|t| nt - t).sum();
    let mut out = Vec::with_capacity(g);
    let (mut start, mut done) = (r.start, 0usize);
    for k in 1..=g {
        let target = total * k / g;
        let mut end = start;
        while end < r.end && (done < target || end == start) {
            done += nt - end;
            end += 1;
        }
        if end > start {
            out.push(start..end);
        }
        start = end;
    }
    if start < r.end {
        out.push(start..r.end);
    }
    out
}

/// One packed shard: tile rows `tile_rows` of the packed triangle, mapped.
pub struct PackedShard {
    n: usize,
    nt: usize,
    elem: Elem,
    tile_rows: Range<usize>,
    map: Mapped,
    path: PathBuf,
    simd: bool,
    groups: Vec<Range<usize>>,
}

impl PackedShard {
    pub fn new(path: &Path, map: Mapped, n: usize, elem: Elem, tile_rows: Range<usize>) -> Self {
        map.advise_sequential();
        let nt = n.div_ceil(TILE);
        let groups = groups_in(tile_rows.clone(), nt);
        PackedShard {
            n,
            nt,
            elem,
            tile_rows,
            map,
            path: path.into(),
            simd: true,
            groups,
        }
    }

    /// Uses the portable scalar tile kernel.
    pub fn with_simd(mut self, simd: bool) -> Self {
        self.simd = simd;
        self
    }

    pub fn tile_rows(&self) -> Range<usize> {
        self.tile_rows.clone()
    }

    /// The rows this shard owns (`A·256 .. min(B·256, n)`).
    pub fn rows(&self) -> Range<usize> {
        self.tile_rows.start * TILE..(self.tile_rows.end * TILE).min(self.n)
    }

    /// Length of the partial vector: rows `A·256 .. n`.
    pub fn partial_len(&self) -> usize {
        self.n - self.tile_rows.start * TILE
    }

    fn scale(&self) -> f64 {
        match self.elem {
            Elem::U16 => 1.0 / U16_ONE,
            _ => 1.0,
        }
    }

    fn tile<T: TileElem>(&self, ti: usize, tj: usize) -> &[T] {
        let first = tile_ordinal(self.nt, self.tile_rows.start, self.tile_rows.start);
        let k = tile_ordinal(self.nt, ti, tj) - first;
        let all: &[T] = bytemuck::cast_slice(self.map.bytes());
        &all[k * TILE_ELEMS..(k + 1) * TILE_ELEMS]
    }

    /// `P[i][j]` for `i ≤ j` by tiles with tile row `i/256` in this shard.
    pub fn stored_entry(&self, i: usize, j: usize) -> f64 {
        let (ti, tj) = (i / TILE, j / TILE);
        let (r, c) = (i % TILE, j % TILE);
        let v = match self.elem {
            Elem::F32 => TileElem::to_f64(self.tile::<f32>(ti, tj)[tile_index(r, c)]),
            Elem::F64 => self.tile::<f64>(ti, tj)[tile_index(r, c)],
            Elem::U16 => TileElem::to_f64(self.tile::<u16>(ti, tj)[tile_index(r, c)]),
        };
        v * self.scale()
    }

    /// The shard's partial product over rows `A·256 .. n` (see the module docs).
    ///
    /// # Panics
    /// If `x.len() != n` or `out.len() != partial_len()`.
    pub fn partial(&self, x: &[f64], out: &mut [f64], stack: &mut MemStack) {
        assert_eq!(x.len(), self.n);
        assert_eq!(out.len(), self.partial_len());
        match self.elem {
            Elem::F32 => self.partial_typed::<f32>(x, out, stack),
            Elem::F64 => self.partial_typed::<f64>(x, out, stack),
            Elem::U16 => self.partial_typed::<u16>(x, out, stack),
        }
    }

    /// The workspace of [`PackedShard::partial`]: the `f32` vector, the tile-row sums and each
    /// group's row results and column accumulators.
    pub fn partial_scratch(&self) -> StackReq {
        let nt = self.nt;
        let sums: usize = self
            .groups
            .iter()
            .map(|g| g.len() * TILE + (nt - g.start) * TILE)
            .sum();
        StackReq::all_of(&[
            StackReq::new_aligned::<f32>(nt * TILE, SIMD_ALIGN),
            StackReq::new::<f64>(nt),
            StackReq::new::<f64>(sums),
            StackReq::new::<(&mut [f64], &mut [f64])>(self.groups.len()),
        ])
    }

    /// The loop of `PackedGame::apply` over this shard's tile rows (same terms, same order
    /// within a group).
    fn partial_typed<T: TileElem>(&self, x: &[f64], out: &mut [f64], stack: &mut MemStack) {
        let (n, nt) = (self.n, self.nt);
        let a = self.tile_rows.start;
        let npad = nt * TILE;
        let simd = if self.simd { Isa::best() } else { Isa::Scalar };
        let scale = self.scale();
        let (mut xs, stack) = stack.make_aligned_with(npad, SIMD_ALIGN, |_| 0.0f32);
        xs[..n].iter_mut().zip(x).for_each(|(a, &b)| *a = b as f32);
        let xs = &*xs;
        let (mut block_sum, stack) = stack.make_with(nt, |_| 0.0f64);
        for (t, b) in block_sum.iter_mut().enumerate() {
            if self.tile_rows.contains(&t) {
                *b = x[t * TILE..((t + 1) * TILE).min(n)].iter().sum();
            }
        }
        let block_sum = &*block_sum;
        // Per group: its row results and its column accumulators, zeroed.
        let sums: usize = self
            .groups
            .iter()
            .map(|g| g.len() * TILE + (nt - g.start) * TILE)
            .sum();
        let (mut buf, stack) = stack.make_with(sums, |_| 0.0f64);
        let mut rest = &mut buf[..];
        let (mut parts, _) = stack.collect(self.groups.iter().map(|g| {
            let (y, r) = std::mem::take(&mut rest).split_at_mut(g.len() * TILE);
            let (col, r) = r.split_at_mut((nt - g.start) * TILE);
            rest = r;
            (y, col)
        }));
        assert_eq!(parts.len(), self.groups.len(), "scratch too small");
        self.groups
            .par_iter()
            .zip(parts.par_iter_mut())
            .for_each(|(g, (y, col))| {
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
            });
        let (groups, parts) = (&self.groups, &*parts);
        let own_end = self.tile_rows.end;
        out.par_chunks_mut(TILE).enumerate().for_each(|(k, o)| {
            let t = a + k;
            if t < own_end {
                let gi = groups.partition_point(|g| g.end <= t);
                let g = &groups[gi];
                let yrow = &parts[gi].0[(t - g.start) * TILE..];
                for (k, v) in o.iter_mut().enumerate() {
                    let mut s = yrow[k];
                    for (h, (_, col)) in groups.iter().zip(parts.iter()).take(gi + 1) {
                        s += col[(t - h.start) * TILE + k];
                    }
                    *v = s;
                }
            } else {
                for (k, v) in o.iter_mut().enumerate() {
                    let mut s = 0.0;
                    for (h, (_, col)) in groups.iter().zip(parts.iter()) {
                        s += col[(t - h.start) * TILE + k];
                    }
                    *v = s;
                }
            }
        });
    }

    /// Checks every stored entry inside `n × n` (finite, in `[0, 1]`) and the skew condition
    /// inside diagonal tiles; with every shard checked this is the unsharded game's check.
    pub fn validate(&self, tol: f64) -> Result<()> {
        let (n, nt, scale) = (self.n, self.nt, self.scale());
        let first = tile_ordinal(nt, self.tile_rows.start, self.tile_rows.start);
        let last = if self.tile_rows.end == nt {
            stored_tiles(nt)
        } else {
            tile_ordinal(nt, self.tile_rows.end, self.tile_rows.end)
        };
        let get = |ti: usize, tj: usize, r: usize, c: usize| -> f64 {
            let k = tile_index(r, c);
            let v = match self.elem {
                Elem::F32 => TileElem::to_f64(self.tile::<f32>(ti, tj)[k]),
                Elem::F64 => self.tile::<f64>(ti, tj)[k],
                Elem::U16 => TileElem::to_f64(self.tile::<u16>(ti, tj)[k]),
            };
            v * scale
        };
        let bad = (first..last).into_par_iter().find_map_first(|k| {
            let (ti, tj) = tile_of_ordinal(nt, k);
            for r in 0..TILE.min(n - ti * TILE) {
                for c in 0..TILE.min(n - tj * TILE) {
                    let (i, j) = (ti * TILE + r, tj * TILE + c);
                    let v = get(ti, tj, r, c);
                    if !v.is_finite() {
                        return Some(Error::NotFinite {
                            path: self.path.clone(),
                            i,
                            j,
                            value: v,
                        });
                    }
                    if !(0.0..=1.0).contains(&v) {
                        return Some(Error::OutOfRange {
                            path: self.path.clone(),
                            i,
                            j,
                            value: v,
                        });
                    }
                    if ti == tj && r <= c {
                        let w = get(ti, tj, c, r);
                        if (v + w - 1.0).abs() > tol {
                            return Some(Error::NotSkewSymmetric {
                                path: self.path.clone(),
                                i,
                                j,
                                pij: v,
                                pji: w,
                                sum: v + w,
                                tol,
                            });
                        }
                    }
                }
            }
            None
        });
        match bad {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Adds the partials of packed shards `0..=q` over the rows of shard `q`, in shard order:
/// `segs[s]` is shard `s`'s partial restricted to those rows.
pub fn combine_in_order(segs: &[&[f64]], out: &mut [f64]) {
    out.copy_from_slice(segs[0]);
    for s in &segs[1..] {
        for (o, v) in out.iter_mut().zip(s.iter()) {
            *o += *v;
        }
    }
}

/// Opens and verifies shard `k` of a set (length and SHA-256), as the shard kind its layout
/// needs.
pub enum Shard {
    Dense(DenseShard),
    Packed(PackedShard),
}

impl Shard {
    pub fn open(set: &ShardSet, k: usize) -> Result<Shard> {
        let map = set.map_verified(k)?;
        let m = &set.manifest;
        let path = set.shard_path(k);
        let range = m.ranges()[k].clone();
        Ok(match m.layout {
            Layout::Dense => Shard::Dense(DenseShard::new(&path, map, m.n(), m.dtype, range)),
            Layout::Packed => Shard::Packed(PackedShard::new(&path, map, m.n(), m.dtype, range)),
            l => unreachable!("manifest parse refuses layout {l:?}"),
        })
    }
}

/// Every shard of a set as one operator (the single-process view of a sharded game).
pub struct ShardedGame {
    set: ShardSet,
    n: usize,
    elem: Elem,
    layout: Layout,
    shards: Vec<Shard>,
}

impl ShardedGame {
    /// Opens every shard (each verified against its checksum).
    pub fn open(set: ShardSet) -> Result<Self> {
        let shards = (0..set.len())
            .map(|k| Shard::open(&set, k))
            .collect::<Result<Vec<_>>>()?;
        let m = &set.manifest;
        Ok(ShardedGame {
            n: m.n(),
            elem: m.dtype,
            layout: m.layout,
            shards,
            set,
        })
    }

    fn dense(&self, k: usize) -> &DenseShard {
        match &self.shards[k] {
            Shard::Dense(d) => d,
            Shard::Packed(_) => unreachable!("dense set"),
        }
    }

    fn shard_of(&self, unit: usize) -> usize {
        let r = &self.set.manifest.shards;
        r.partition_point(|s| s.end as usize <= unit)
    }
}

impl PreferenceOperator for ShardedGame {
    fn n(&self) -> usize {
        self.n
    }

    /// Column by column, shard by shard (packed: the shards' partial products added in shard
    /// order into the output).
    fn apply(&self, out: MatMut<'_, f64>, rhs: MatRef<'_, f64>, stack: &mut MemStack) {
        check_shapes(self.n, &out, &rhs);
        for (v, out) in columns_mut(out).enumerate() {
            let x = column(rhs, v);
            match self.layout {
                Layout::Dense => {
                    for s in &self.shards {
                        let Shard::Dense(d) = s else { unreachable!() };
                        d.apply_rows(x, &mut out[d.rows()], stack);
                    }
                }
                _ => {
                    for (k, s) in self.shards.iter().enumerate() {
                        let Shard::Packed(p) = s else { unreachable!() };
                        let (mut partial, stack) = stack.make_with(p.partial_len(), |_| 0.0f64);
                        p.partial(x, &mut partial, stack);
                        let dst = &mut out[p.rows().start..];
                        if k == 0 {
                            dst.copy_from_slice(&partial);
                        } else {
                            for (o, v) in dst.iter_mut().zip(partial.iter()) {
                                *o += *v;
                            }
                        }
                    }
                }
            }
        }
    }

    fn apply_scratch(&self, _k: usize) -> StackReq {
        StackReq::any_of(
            &self
                .shards
                .iter()
                .map(|s| match s {
                    Shard::Dense(d) => d.apply_rows_scratch(),
                    Shard::Packed(p) => StackReq::all_of(&[
                        StackReq::new::<f64>(p.partial_len()),
                        p.partial_scratch(),
                    ]),
                })
                .collect::<Vec<_>>(),
        )
    }

    fn entry(&self, i: usize, j: usize) -> f64 {
        assert!(
            i < self.n && j < self.n,
            "entry ({i}, {j}) of an {0}x{0} game",
            self.n
        );
        match self.layout {
            Layout::Dense => self.dense(self.shard_of(i)).entry(i, j),
            _ => {
                if i / TILE <= j / TILE {
                    let Shard::Packed(p) = &self.shards[self.shard_of(i / TILE)] else {
                        unreachable!()
                    };
                    p.stored_entry(i, j)
                } else {
                    1.0 - self.entry(j, i)
                }
            }
        }
    }

    fn precision(&self) -> f64 {
        match self.elem {
            Elem::F32 => 1e-7,
            Elem::F64 => 1e-15,
            Elem::U16 => 8e-6,
        }
    }

    fn validate(&self, tol: Option<f64>) -> Result<()> {
        let tol = tol.unwrap_or(DenseGame::default_tol(self.elem));
        for s in &self.shards {
            match s {
                Shard::Dense(d) => {
                    d.validate_with(tol, &|j, i| Some(self.dense(self.shard_of(j)).entry(j, i)))?
                }
                Shard::Packed(p) => p.validate(tol)?,
            }
        }
        Ok(())
    }

    fn info(&self) -> Info<'_> {
        let layout = format!(
            "{} {}",
            match self.layout {
                Layout::Dense => "dense",
                _ => "packed",
            },
            self.elem.name()
        );
        let stored_bytes = self.set.manifest.shards.iter().map(|s| s.bytes).sum();
        Info {
            description: format!(
                "{layout} {}x{} ({stored_bytes} bytes) in {} shards from {}",
                self.n,
                self.n,
                self.shards.len(),
                self.set.manifest_path.display()
            ),
            layout,
            stored_bytes,
            structure: Structure::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::container::GameHeader;
    use crate::io::shards::{write_sharded, ShardSet};
    use crate::io::write::{matrix_container, FnSource};

    fn source(seed: u64) -> FnSource<impl Fn(usize, usize) -> f64 + Sync> {
        FnSource(move |i, j| crate::gen::uniform_entry(seed, i, j))
    }

    fn x_of(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| (1.0 + crate::gen::unit(9, i as u64, 0)) / n as f64)
            .collect()
    }

    fn unsharded(dir: &Path, n: usize, layout: Layout, elem: Elem) -> Box<dyn PreferenceOperator> {
        let mut h = GameHeader::new(n as u64, layout);
        h.dtype = Some(elem);
        if layout == Layout::Packed {
            h.tile = Some(TILE as u64);
        }
        let p = dir.join("whole.nmp");
        matrix_container(&p, &h, &source(4), &|_| {}).unwrap();
        super::super::open(&p, None).unwrap()
    }

    fn sharded(dir: &Path, n: usize, layout: Layout, elem: Elem, r: usize) -> ShardedGame {
        let mut h = GameHeader::new(n as u64, layout);
        h.dtype = Some(elem);
        let d = dir.join(format!("s{r}"));
        write_sharded(&d, &h, r, &source(4), &|_| {}).unwrap();
        let g = ShardedGame::open(ShardSet::open(&d).unwrap()).unwrap();
        g.validate(None).unwrap();
        g
    }

    #[test]
    fn dense_shards_apply_bit_identically_for_every_split() {
        let t = tempfile::tempdir().unwrap();
        for elem in [Elem::F32, Elem::U16, Elem::F64] {
            // 517 rows (more than one 512-column block): splits at 172/344 and 129/258/387
            // rows, not multiples of the kernel's 4 rows.
            let n = 517;
            let whole = unsharded(t.path(), n, Layout::Dense, elem);
            let x = x_of(n);
            let mut want = vec![0.0; n];
            crate::game::apply_vec(&*whole, &x, &mut want);
            for r in 1..=4 {
                let g = sharded(t.path(), n, Layout::Dense, elem, r);
                let mut got = vec![0.0; n];
                crate::game::apply_vec(&g, &x, &mut got);
                let same = want
                    .iter()
                    .zip(&got)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{elem:?} r={r}");
                assert_eq!(g.entry(400, 3), whole.entry(400, 3));
            }
        }
    }

    #[test]
    fn packed_shards_differ_by_reassociation_only() {
        let t = tempfile::tempdir().unwrap();
        for elem in [Elem::F32, Elem::U16] {
            // 5 tile rows, the last one partial.
            let n = 5 * TILE - 37;
            let whole = unsharded(t.path(), n, Layout::Packed, elem);
            let x = x_of(n);
            let mut want = vec![0.0; n];
            crate::game::apply_vec(&*whole, &x, &mut want);
            let bound = packed_reassociation_bound(n, &x);
            for r in [1, 2, 3, 5] {
                let g = sharded(t.path(), n, Layout::Packed, elem, r);
                let mut got = vec![0.0; n];
                crate::game::apply_vec(&g, &x, &mut got);
                let worst = want
                    .iter()
                    .zip(&got)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                if r == 1 {
                    assert_eq!(worst, 0.0, "one shard sums as the unsharded game");
                }
                assert!(worst <= bound, "{elem:?} r={r}: {worst:e} > {bound:e}");
                // Repeatable.
                let mut again = vec![0.0; n];
                crate::game::apply_vec(&g, &x, &mut again);
                assert!(got
                    .iter()
                    .zip(&again)
                    .all(|(a, b)| a.to_bits() == b.to_bits()));
                for (i, j) in [(0, 5), (300, 2), (n - 1, 700), (1000, 1000), (1200, 3)] {
                    assert_eq!(g.entry(i, j), whole.entry(i, j), "entry ({i}, {j})");
                }
            }
        }
    }

    #[test]
    fn one_group_set_matches_the_packed_groups() {
        // The single-shard grouping is the unsharded layout's (checked through the bits above);
        // here: the groups of a sub-range cover it in order.
        for (r, nt) in [(0..1, 1), (3..40, 64), (0..64, 64), (10..11, 64)] {
            let g = groups_in(r.clone(), nt);
            assert_eq!(g.first().unwrap().start, r.start);
            assert_eq!(g.last().unwrap().end, r.end);
            for w in g.windows(2) {
                assert_eq!(w[0].end, w[1].start);
            }
        }
    }
}
