//! Kernels over one `256 × 256` tile of the packed layout.
//!
//! A tile is stored as 32 row blocks of 8 rows; each row block as 16 column chunks of 16
//! columns; each chunk as its 8 × 16 values row-major (a "panel" of 128 values). So a tile is one
//! sequential stream, and each panel feeds both the row products `P x_J` and the column products
//! `Pᵀ x_I` while it is in registers.
//!
//! Entries are `f32`, `f64`, or `u16` fixed point (`P = q/65534`, converted in the loop: no
//! separate conversion pass). The kernels sum in `f32` within a tile; the AVX-512 and AVX2
//! kernels (each chosen by its token) and the scalar twin keep one order (see
//! `row_block_scalar`), so they give the same bits (`f64` tiles sum in `f64`, on every
//! instruction set). Results are in storage units (`q` for `u16`): callers scale.
//!
//! Measured (n = 16384 packed u16, `NASHMP_ISA=avx2` against the default, interleaved, one
//! run): one apply 13.2–13.3 ms with AVX2, 11.6 ms with AVX-512; a batch of 8 44–50 ms
//! against 33–34 ms. The kernels ask for the stream's next data ahead of use
//! ([`super::isa::prefetch_ahead`]): one AVX-512 apply 14.6–15.3 ms without, 11.3–11.7 ms
//! asking 8 KiB ahead (three interleaved runs, 2026-12-03, on a machine state where the 272 MB
//! game streamed from DRAM at 26 GB/s), 10.7–11.0 ms asking one row block (4 KiB) ahead, the
//! distance kept (see [`super::isa::PREFETCH_STREAM`]).

use super::isa::Isa;
#[cfg(target_arch = "x86_64")]
use super::isa::{prefetch_ahead, PREFETCH_STREAM};
use crate::storage::TILE;
pub use crate::storage::{tile_index, PANEL_COLS, PANEL_ROWS, TILE_ELEMS};

/// An element type the packed kernels read.
pub trait TileElem: bytemuck::Pod + Send + Sync {
    fn to_f64(self) -> f64;
    /// `y += T x_j` (rows) and, if `z` is given, `z += Tᵀ x_i` (columns), in storage units.
    fn tile(t: &[Self], xi: &[f32], xj: &[f32], y: &mut [f32], z: Option<&mut [f32]>, isa: Isa) {
        Self::tile_batch(t, &[xi], &[xj], y, z, isa)
    }
    /// [`tile`](Self::tile) for `k` vector pairs at once (`y`, `z`: `k × TILE`, vector `v` at
    /// `v * TILE`): each row block of the tile is read from memory once and serves every
    /// vector while it is in L1. Each vector's results are the bits of its own `tile` call.
    fn tile_batch(
        t: &[Self],
        xi: &[&[f32]],
        xj: &[&[f32]],
        y: &mut [f32],
        z: Option<&mut [f32]>,
        isa: Isa,
    );
}

/// The reference: same traversal, `f64` sums (for tests).
pub fn tile_scalar<T: TileElem>(
    t: &[T],
    xi: &[f32],
    xj: &[f32],
    y: &mut [f64],
    mut z: Option<&mut [f64]>,
) {
    assert!(t.len() == TILE_ELEMS && xi.len() == TILE && xj.len() == TILE);
    for r in 0..TILE {
        let mut acc = 0.0f64;
        for c in 0..TILE {
            let p = t[tile_index(r, c)].to_f64();
            acc += p * xj[c] as f64;
            if let Some(z) = z.as_deref_mut() {
                z[c] += p * xi[r] as f64;
            }
        }
        y[r] += acc;
    }
}

/// `f64` tiles: `f64` sums rounded to `f32` (the same on every instruction set).
fn tile_f64_sums<T: TileElem>(
    t: &[T],
    xi: &[f32],
    xj: &[f32],
    y: &mut [f32],
    z: Option<&mut [f32]>,
) {
    let mut y64 = [0.0f64; TILE];
    let mut z64 = [0.0f64; TILE];
    let want_z = z.is_some();
    tile_scalar(t, xi, xj, &mut y64, want_z.then_some(&mut z64[..]));
    for r in 0..TILE {
        y[r] += y64[r] as f32;
    }
    if let Some(z) = z {
        for c in 0..TILE {
            z[c] += z64[c] as f32;
        }
    }
}

/// If `on`, asks for the panel at `base` of the row block at `bp`, [`PREFETCH_STREAM`] bytes
/// further on in the tile stream (into L2; a hint that reads nothing).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn ask_panel_ahead<T>(bp: *const T, base: usize, on: bool) {
    if on {
        let bytes = PANEL_ROWS * PANEL_COLS * size_of::<T>();
        prefetch_ahead::<PREFETCH_STREAM, _>(bp.wrapping_add(base), bytes);
    }
}

/// Checks the shapes of a batched tile call; returns `k`.
fn check_batch<T>(t: &[T], xi: &[&[f32]], xj: &[&[f32]], y: &[f32], z: Option<&[f32]>) -> usize {
    let k = xi.len();
    assert!(t.len() == TILE_ELEMS && xj.len() == k);
    assert!(xi.iter().chain(xj).all(|x| x.len() == TILE));
    assert!(y.len() == k * TILE && z.is_none_or(|z| z.len() == k * TILE));
    k
}

/// The scalar twin of the SIMD row-block kernels: the same lanes and order (fused multiply-adds
/// through `mul_add`, the SIMD reduction written out), hence the same bits.
///
/// The order, which every instruction set keeps: row `r` of the row block has 16 lane sums,
/// lane `l` the fused chain over the 16 column chunks of `p[r][16·cc + l] · x_j[16·cc + l]`;
/// its product is `h_l = a_l + a_{l+8}` (`l < 8`) summed as
/// `((h_0 + h_1) + (h_2 + h_3)) + ((h_4 + h_5) + (h_6 + h_7))`. Column `c` of `z` is the fused
/// chain over the rows, in order, of `p[r][c] · x_i[r]`.
#[inline(always)]
fn row_block_scalar<T: Copy>(
    t: &[T],
    rb: usize,
    xi: &[f32],
    xj: &[f32],
    y: &mut [f32],
    mut z: Option<&mut [f32]>,
    conv: impl Fn(T) -> f32,
) {
    let panel = PANEL_ROWS * PANEL_COLS;
    let mut acc = [[0.0f32; PANEL_COLS]; PANEL_ROWS];
    for cc in 0..TILE / PANEL_COLS {
        let base = (rb * (TILE / PANEL_COLS) + cc) * panel;
        let col = cc * PANEL_COLS;
        for (r, a) in acc.iter_mut().enumerate() {
            let p = &t[base + r * PANEL_COLS..base + (r + 1) * PANEL_COLS];
            for l in 0..PANEL_COLS {
                a[l] = conv(p[l]).mul_add(xj[col + l], a[l]);
            }
            if let Some(z) = z.as_deref_mut() {
                let xr = xi[rb * PANEL_ROWS + r];
                for l in 0..PANEL_COLS {
                    z[col + l] = conv(p[l]).mul_add(xr, z[col + l]);
                }
            }
        }
    }
    for (r, a) in acc.iter().enumerate() {
        let h: [f32; 8] = std::array::from_fn(|l| a[l] + a[l + 8]);
        let s = ((h[0] + h[1]) + (h[2] + h[3])) + ((h[4] + h[5]) + (h[6] + h[7]));
        y[rb * PANEL_ROWS + r] += s;
    }
}

fn tile_batch_scalar<T: Copy>(
    t: &[T],
    xi: &[&[f32]],
    xj: &[&[f32]],
    y: &mut [f32],
    mut z: Option<&mut [f32]>,
    conv: impl Fn(T) -> f32 + Copy,
) {
    let k = check_batch(t, xi, xj, y, z.as_deref());
    for rb in 0..TILE / PANEL_ROWS {
        for v in 0..k {
            let zv = z.as_deref_mut().map(|z| &mut z[v * TILE..(v + 1) * TILE]);
            let yv = &mut y[v * TILE..(v + 1) * TILE];
            row_block_scalar(t, rb, xi[v], xj[v], yv, zv, conv);
        }
    }
}

macro_rules! simd_tile_impl {
    ($t:ty, $kernel:ident, $conv:expr) => {
        impl TileElem for $t {
            #[inline]
            fn to_f64(self) -> f64 {
                to_f64_impl(self)
            }
            #[inline]
            fn tile_batch(
                t: &[$t],
                xi: &[&[f32]],
                xj: &[&[f32]],
                y: &mut [f32],
                z: Option<&mut [f32]>,
                isa: Isa,
            ) {
                #[cfg(target_arch = "x86_64")]
                match isa {
                    // SAFETY: the token exists only where the CPU has AVX-512 F/BW/VL, AVX2
                    // and FMA.
                    Isa::Avx512(tok) => return unsafe { avx512::$kernel(tok, t, xi, xj, y, z) },
                    // SAFETY: the token exists only where the CPU has AVX2 and FMA.
                    Isa::Avx2(tok) => return unsafe { avx2::$kernel(tok, t, xi, xj, y, z) },
                    Isa::Scalar => {}
                }
                let _ = isa;
                tile_batch_scalar(t, xi, xj, y, z, $conv)
            }
        }
    };
}

#[inline]
fn to_f64_impl<T: Into<f64>>(v: T) -> f64 {
    v.into()
}

simd_tile_impl!(f32, tile_f32, |v: f32| v);
simd_tile_impl!(u16, tile_u16, |v: u16| v as f32);

impl TileElem for f64 {
    fn to_f64(self) -> f64 {
        self
    }
    fn tile_batch(
        t: &[f64],
        xi: &[&[f32]],
        xj: &[&[f32]],
        y: &mut [f32],
        mut z: Option<&mut [f32]>,
        _isa: Isa,
    ) {
        let k = check_batch(t, xi, xj, y, z.as_deref());
        for v in 0..k {
            let zv = z.as_deref_mut().map(|z| &mut z[v * TILE..(v + 1) * TILE]);
            tile_f64_sums(t, xi[v], xj[v], &mut y[v * TILE..(v + 1) * TILE], zv);
        }
    }
}

/// Values in one row block of a tile (8 rows × 256 columns, as 16 panels).
#[cfg(target_arch = "x86_64")]
const ROW_BLOCK: usize = PANEL_ROWS * TILE;

/// The batch driver of a SIMD kernel: for each row block, `$rows` (one `unsafe fn` per
/// instruction set and element) against all `k` vector pairs while the block is in L1.
#[cfg(target_arch = "x86_64")]
macro_rules! batch_driver {
    ($name:ident, $tok:ty, $feat:literal, $rows:ident, $t:ty) => {
        #[target_feature(enable = $feat)]
        pub fn $name(
            _: $tok,
            t: &[$t],
            xi: &[&[f32]],
            xj: &[&[f32]],
            y: &mut [f32],
            z: Option<&mut [f32]>,
        ) {
            let k = check_batch(t, xi, xj, y, z.as_deref());
            let yp = y.as_mut_ptr();
            let zp = z.map(|z| z.as_mut_ptr());
            for rb in 0..TILE / PANEL_ROWS {
                // SAFETY: a whole tile holds TILE / PANEL_ROWS row blocks.
                let bp = unsafe { t.as_ptr().add(rb * ROW_BLOCK) };
                // SAFETY: the shapes were checked: a whole tile, TILE values per vector in
                // xi and xj, and k * TILE in y and z.
                unsafe { $rows(bp, rb, k, xi, xj, (yp, zp), true) }
            }
        }
    };
}

/// `u16` row blocks against `k` vector pairs: one vector converts in the loop; a batch converts
/// the row block once into an `f32` copy in L1 (exact, so the same bits) and runs the `f32`
/// kernel on it for every vector instead of converting it `k` times.
#[cfg(target_arch = "x86_64")]
macro_rules! u16_rows {
    ($feat:literal, $rows_f32:ident, $row_u16:ident, $convert:ident) => {
        /// `from_memory`: the row block is read from the game (its first pair asks for the
        /// stream's data ahead), not from a copy in L1.
        ///
        /// # Safety
        /// As the `f32` row kernel, for each of the `k` pairs; `y`, `z` hold `k * TILE` values.
        #[inline]
        #[target_feature(enable = $feat)]
        unsafe fn rows_u16(
            bp: *const u16,
            rb: usize,
            k: usize,
            xi: &[&[f32]],
            xj: &[&[f32]],
            (yp, zp): (*mut f32, Option<*mut f32>),
            from_memory: bool,
        ) {
            if k == 1 {
                // SAFETY: the caller's contract.
                return unsafe {
                    $row_u16(bp, rb, xi[0].as_ptr(), xj[0].as_ptr(), yp, zp, from_memory)
                };
            }
            #[repr(align(64))]
            struct Block([f32; ROW_BLOCK]);
            let mut f = std::mem::MaybeUninit::<Block>::uninit();
            // SAFETY: a place projection of the (uninitialised) copy; nothing is read.
            let fp = unsafe { std::ptr::addr_of_mut!((*f.as_mut_ptr()).0) } as *mut f32;
            // SAFETY: the row block and the copy both hold ROW_BLOCK values.
            unsafe { $convert(bp, fp) };
            // SAFETY: the copy, now fully written, is a row block of f32; the rest is the
            // caller's contract. (The copy is in L1: nothing to ask for ahead.)
            unsafe { $rows_f32(fp, rb, k, xi, xj, (yp, zp), false) }
        }
    };
}

/// `k` vector pairs against one `f32` row block, one after the other.
#[cfg(target_arch = "x86_64")]
macro_rules! f32_rows {
    ($feat:literal, $row_f32:ident) => {
        /// `from_memory`: the row block is read from the game (its first pair asks for the
        /// stream's data ahead), not from a copy in L1.
        ///
        /// # Safety
        /// As the row kernel, for each of the `k` pairs; `y`, `z` hold `k * TILE` values.
        #[inline]
        #[target_feature(enable = $feat)]
        unsafe fn rows_f32(
            bp: *const f32,
            rb: usize,
            k: usize,
            xi: &[&[f32]],
            xj: &[&[f32]],
            (yp, zp): (*mut f32, Option<*mut f32>),
            from_memory: bool,
        ) {
            for v in 0..k {
                // SAFETY: the caller's contract.
                unsafe {
                    $row_f32(
                        bp,
                        rb,
                        xi[v].as_ptr(),
                        xj[v].as_ptr(),
                        yp.add(v * TILE),
                        zp.map(|z| z.add(v * TILE)),
                        from_memory && v == 0,
                    )
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! AVX2 + FMA: each public kernel takes an [`Avx2`] token. All loads stay inside the
    //! slices, whose lengths are checked on entry. A row's 16 lane sums live in two registers
    //! (lanes 0–7, 8–15), so a row block runs as two passes of four rows (16 registers hold
    //! eight accumulators, the column vectors and the panel values); the column chains keep
    //! their row order across the two passes.
    use super::ask_panel_ahead;
    use super::{check_batch, PANEL_COLS, PANEL_ROWS, ROW_BLOCK, TILE};
    use crate::kernels::isa::{prefetch_ahead, Avx2, PREFETCH_SLOW};
    use crate::kernels::matvec::avx2::{load_f32, load_u16};
    use std::arch::x86_64::*;

    // Each panel read from the game asks for the data `PREFETCH_STREAM` bytes further on, into
    // L2: a group's tiles are one sequential stream (see `isa::PREFETCH_STREAM`).

    /// The eight row sums of `h[0..8]` (each `h_r` already `a_l + a_{l+8}`), as one vector
    /// (a transposing reduction): lane `r` is
    /// `((h_r0 + h_r1) + (h_r2 + h_r3)) + ((h_r4 + h_r5) + (h_r6 + h_r7))`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn row_sums(h: &[__m256; PANEL_ROWS]) -> __m256 {
        let t0 = _mm256_hadd_ps(h[0], h[1]);
        let t1 = _mm256_hadd_ps(h[2], h[3]);
        let t2 = _mm256_hadd_ps(h[4], h[5]);
        let t3 = _mm256_hadd_ps(h[6], h[7]);
        let u0 = _mm256_hadd_ps(t0, t1);
        let u1 = _mm256_hadd_ps(t2, t3);
        _mm256_add_ps(
            _mm256_permute2f128_ps(u0, u1, 0x20),
            _mm256_permute2f128_ps(u0, u1, 0x31),
        )
    }

    /// [`row_sums`] of four rows: lane `r` of the result is row `r`'s sum.
    #[target_feature(enable = "avx2,fma")]
    fn row_sums4(h: &[__m256; 4]) -> __m128 {
        let u = _mm256_hadd_ps(_mm256_hadd_ps(h[0], h[1]), _mm256_hadd_ps(h[2], h[3]));
        _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1))
    }

    macro_rules! row_kernel {
        ($rb:ident, $t:ty, $load:ident) => {
            /// Row block `rb` of a tile against one vector pair; `bp` points to the row
            /// block's panels; `pf`: ask for the stream's data ahead (the row block is read
            /// from memory, not from a copy in L1).
            ///
            /// # Safety
            /// `bp` points to a row block (`ROW_BLOCK` values); `xi`, `xj`, `y` and (if given)
            /// `z` to `TILE` f32 each; `rb < TILE / PANEL_ROWS`.
            #[inline]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn $rb(
                bp: *const $t,
                rb: usize,
                xip: *const f32,
                xjp: *const f32,
                yp: *mut f32,
                zp: Option<*mut f32>,
                pf: bool,
            ) {
                let panel = PANEL_ROWS * PANEL_COLS;
                for r0 in [0, 4] {
                    let mut lo = [_mm256_setzero_ps(); 4];
                    let mut hi = [_mm256_setzero_ps(); 4];
                    for cc in 0..TILE / PANEL_COLS {
                        let base = cc * panel;
                        let col = cc * PANEL_COLS;
                        ask_panel_ahead(bp, base, pf && r0 == 0);
                        // SAFETY: base + panel <= ROW_BLOCK; col + 16 <= TILE;
                        // rb * 8 + r0 + r < TILE.
                        unsafe {
                            let x0 = _mm256_loadu_ps(xjp.add(col));
                            let x1 = _mm256_loadu_ps(xjp.add(col + 8));
                            match zp {
                                Some(zp) => {
                                    let mut z0 = _mm256_loadu_ps(zp.add(col));
                                    let mut z1 = _mm256_loadu_ps(zp.add(col + 8));
                                    for r in 0..4 {
                                        let p = bp.add(base + (r0 + r) * PANEL_COLS);
                                        let p0 = $load(p);
                                        let p1 = $load(p.add(8));
                                        lo[r] = _mm256_fmadd_ps(p0, x0, lo[r]);
                                        hi[r] = _mm256_fmadd_ps(p1, x1, hi[r]);
                                        let xr = _mm256_broadcast_ss(
                                            &*xip.add(rb * PANEL_ROWS + r0 + r),
                                        );
                                        z0 = _mm256_fmadd_ps(p0, xr, z0);
                                        z1 = _mm256_fmadd_ps(p1, xr, z1);
                                    }
                                    _mm256_storeu_ps(zp.add(col), z0);
                                    _mm256_storeu_ps(zp.add(col + 8), z1);
                                }
                                None => {
                                    for r in 0..4 {
                                        let p = bp.add(base + (r0 + r) * PANEL_COLS);
                                        lo[r] = _mm256_fmadd_ps($load(p), x0, lo[r]);
                                        hi[r] = _mm256_fmadd_ps($load(p.add(8)), x1, hi[r]);
                                    }
                                }
                            }
                        }
                    }
                    let h: [__m256; 4] = std::array::from_fn(|r| _mm256_add_ps(lo[r], hi[r]));
                    // SAFETY: rb * 8 + r0 + 4 <= TILE.
                    unsafe {
                        let yp = yp.add(rb * PANEL_ROWS + r0);
                        _mm_storeu_ps(yp, _mm_add_ps(_mm_loadu_ps(yp), row_sums4(&h)));
                    }
                }
            }
        };
    }

    row_kernel!(row_block_f32, f32, load_f32);
    row_kernel!(row_block_u16, u16, load_u16);
    f32_rows!("avx2,fma", row_block_f32);
    u16_rows!("avx2,fma", rows_f32, row_block_u16, convert);

    /// The row block at `bp` as f32 at `fp`.
    ///
    /// # Safety
    /// `bp` and `fp` point to `ROW_BLOCK` values; `fp` is 32-byte aligned.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn convert(bp: *const u16, fp: *mut f32) {
        prefetch_ahead::<PREFETCH_SLOW, _>(bp, ROW_BLOCK * size_of::<u16>());
        for i in (0..ROW_BLOCK).step_by(8) {
            // SAFETY: i + 8 <= ROW_BLOCK.
            unsafe { _mm256_store_ps(fp.add(i), load_u16(bp.add(i))) }
        }
    }

    batch_driver!(tile_f32, Avx2, "avx2,fma", rows_f32, f32);
    batch_driver!(tile_u16, Avx2, "avx2,fma", rows_u16, u16);
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    //! AVX-512: each public kernel takes an [`Avx512`] token. One 16-lane register holds a
    //! row's 16 lane sums (the AVX2 kernel's two registers) and a chunk's 16 columns of `z`, with
    //! the same operations per lane, so the results are the AVX2 bits; the row's `x_i` values
    //! are broadcast once per row block (32 registers hold them).
    use super::ask_panel_ahead;
    use super::{check_batch, PANEL_COLS, PANEL_ROWS, ROW_BLOCK, TILE};
    use crate::kernels::isa::{prefetch_ahead, Avx512, PREFETCH_SLOW};
    use crate::kernels::matvec::avx512::{load_f32, load_u16};
    use std::arch::x86_64::*;

    /// `a_l + a_{l+8}` for `l < 8`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    fn fold(a: __m512) -> __m256 {
        _mm256_add_ps(
            _mm512_castps512_ps256(a),
            _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)),
        )
    }

    macro_rules! row_kernel {
        ($rb:ident, $t:ty, $load:ident) => {
            /// Row block `rb` of a tile against one vector pair; `bp` points to the row
            /// block's panels; `pf`: ask for the stream's data ahead (the row block is read
            /// from memory, not from a copy in L1).
            ///
            /// # Safety
            /// `bp` points to a row block (`ROW_BLOCK` values); `xi`, `xj`, `y` and (if given)
            /// `z` to `TILE` f32 each; `rb < TILE / PANEL_ROWS`.
            #[inline]
            #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
            unsafe fn $rb(
                bp: *const $t,
                rb: usize,
                xip: *const f32,
                xjp: *const f32,
                yp: *mut f32,
                zp: Option<*mut f32>,
                pf: bool,
            ) {
                let panel = PANEL_ROWS * PANEL_COLS;
                let mut acc = [_mm512_setzero_ps(); PANEL_ROWS];
                match zp {
                    Some(zp) => {
                        // SAFETY: rb * 8 + r < TILE.
                        let xr: [__m512; PANEL_ROWS] = std::array::from_fn(|r| unsafe {
                            _mm512_set1_ps(*xip.add(rb * PANEL_ROWS + r))
                        });
                        for cc in 0..TILE / PANEL_COLS {
                            let (base, col) = (cc * panel, cc * PANEL_COLS);
                            ask_panel_ahead(bp, base, pf);
                            // SAFETY: base + panel <= ROW_BLOCK; col + 16 <= TILE.
                            unsafe {
                                let x = _mm512_loadu_ps(xjp.add(col));
                                let mut z = _mm512_loadu_ps(zp.add(col));
                                for r in 0..PANEL_ROWS {
                                    let p = $load(bp.add(base + r * PANEL_COLS));
                                    acc[r] = _mm512_fmadd_ps(p, x, acc[r]);
                                    z = _mm512_fmadd_ps(p, xr[r], z);
                                }
                                _mm512_storeu_ps(zp.add(col), z);
                            }
                        }
                    }
                    None => {
                        for cc in 0..TILE / PANEL_COLS {
                            let (base, col) = (cc * panel, cc * PANEL_COLS);
                            ask_panel_ahead(bp, base, pf);
                            // SAFETY: base + panel <= ROW_BLOCK; col + 16 <= TILE.
                            unsafe {
                                let x = _mm512_loadu_ps(xjp.add(col));
                                for r in 0..PANEL_ROWS {
                                    let p = $load(bp.add(base + r * PANEL_COLS));
                                    acc[r] = _mm512_fmadd_ps(p, x, acc[r]);
                                }
                            }
                        }
                    }
                }
                let h: [__m256; PANEL_ROWS] = std::array::from_fn(|r| fold(acc[r]));
                // SAFETY: rb * 8 + 8 <= TILE.
                unsafe {
                    let yp = yp.add(rb * PANEL_ROWS);
                    _mm256_storeu_ps(
                        yp,
                        _mm256_add_ps(_mm256_loadu_ps(yp), super::avx2::row_sums(&h)),
                    );
                }
            }
        };
    }

    row_kernel!(row_block_f32, f32, load_f32);
    row_kernel!(row_block_u16, u16, load_u16);
    f32_rows!("avx512f,avx512bw,avx512vl,avx2,fma", row_block_f32);
    u16_rows!(
        "avx512f,avx512bw,avx512vl,avx2,fma",
        rows_f32,
        row_block_u16,
        convert
    );

    /// The row block at `bp` as f32 at `fp`.
    ///
    /// # Safety
    /// `bp` and `fp` point to `ROW_BLOCK` values; `fp` is 64-byte aligned.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    unsafe fn convert(bp: *const u16, fp: *mut f32) {
        prefetch_ahead::<PREFETCH_SLOW, _>(bp, ROW_BLOCK * size_of::<u16>());
        for i in (0..ROW_BLOCK).step_by(16) {
            // SAFETY: i + 16 <= ROW_BLOCK.
            unsafe { _mm512_store_ps(fp.add(i), load_u16(bp.add(i))) }
        }
    }

    batch_driver!(
        tile_f32,
        Avx512,
        "avx512f,avx512bw,avx512vl,avx2,fma",
        rows_f32,
        f32
    );
    batch_driver!(
        tile_u16,
        Avx512,
        "avx512f,avx512bw,avx512vl,avx2,fma",
        rows_u16,
        u16
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    #[test]
    fn index_is_a_permutation() {
        let mut seen = vec![false; TILE_ELEMS];
        for r in 0..TILE {
            for c in 0..TILE {
                let k = tile_index(r, c);
                assert!(!seen[k]);
                seen[k] = true;
            }
        }
    }

    fn check<T: TileElem>(t: &[T]) {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(3);
        let xi: Vec<f32> = (0..TILE).map(|_| rng.random::<f32>()).collect();
        let xj: Vec<f32> = (0..TILE).map(|_| rng.random::<f32>()).collect();
        let (mut y64, mut z64) = (vec![0.0f64; TILE], vec![0.0f64; TILE]);
        tile_scalar(t, &xi, &xj, &mut y64, Some(&mut z64));
        // The naive definition from the index map.
        for r in (0..TILE).step_by(37) {
            let want: f64 = (0..TILE)
                .map(|c| t[tile_index(r, c)].to_f64() * xj[c] as f64)
                .sum();
            assert!((y64[r] - want).abs() <= 1e-9 * want.abs().max(1.0));
        }
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let (mut ys, mut zs) = (vec![0.0f32; TILE], vec![0.0f32; TILE]);
        T::tile(t, &xi, &xj, &mut ys, Some(&mut zs), Isa::Scalar);
        for isa in Isa::available() {
            let (mut y, mut z) = (vec![0.0f32; TILE], vec![0.0f32; TILE]);
            T::tile(t, &xi, &xj, &mut y, Some(&mut z), isa);
            let mut y2 = vec![0.0f32; TILE];
            T::tile(t, &xi, &xj, &mut y2, None, isa);
            for k in 0..TILE {
                assert!(
                    (y[k] as f64 - y64[k]).abs() <= 1e-5 * y64[k].abs().max(1.0),
                    "y {}",
                    isa.name()
                );
                assert!(
                    (z[k] as f64 - z64[k]).abs() <= 1e-5 * z64[k].abs().max(1.0),
                    "z {}",
                    isa.name()
                );
            }
            assert_eq!(bits(&y), bits(&y2), "{}", isa.name());
            assert_eq!(bits(&y), bits(&ys), "{}", isa.name());
            assert_eq!(bits(&z), bits(&zs), "{}", isa.name());
            // A batch of three pairs (the middle one ours): the same bits for ours.
            let other: Vec<f32> = (0..TILE).map(|i| (i % 7) as f32 * 0.1).collect();
            let (xis, xjs) = ([&other[..], &xi, &xj], [&xi[..], &xj, &other]);
            let (mut yb, mut zb) = (vec![0.0f32; 3 * TILE], vec![0.0f32; 3 * TILE]);
            T::tile_batch(t, &xis, &xjs, &mut yb, Some(&mut zb), isa);
            assert_eq!(bits(&yb[TILE..2 * TILE]), bits(&y), "batch {}", isa.name());
            assert_eq!(bits(&zb[TILE..2 * TILE]), bits(&z), "batch {}", isa.name());
        }
    }

    #[test]
    fn every_isa_and_batch_give_the_scalar_bits() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
        let f: Vec<f32> = (0..TILE_ELEMS).map(|_| rng.random::<f32>()).collect();
        check(&f);
        let q: Vec<u16> = (0..TILE_ELEMS).map(|_| rng.random::<u16>()).collect();
        check(&q);
        let d: Vec<f64> = (0..TILE_ELEMS).map(|_| rng.random::<f64>()).collect();
        check(&d);
    }
}
