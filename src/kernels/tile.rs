//! Kernels over one `256 × 256` tile of the packed layout.
//!
//! A tile is stored as 32 row blocks of 8 rows; each row block as 16 column chunks of 16
//! columns; each chunk as its 8 × 16 values row-major (a "panel" of 128 values). So a tile is one
//! sequential stream, and each panel feeds both the row products `P x_J` and the column products
//! `Pᵀ x_I` while it is in registers.
//!
//! Entries are `f32`, `f64`, or `u16` fixed point (`P = q/65534`, converted in the loop: no
//! separate conversion pass). The kernels sum in `f32` within a tile; the AVX2 kernel (chosen by
//! its token) and the scalar twin give the same bits (`f64` tiles sum in `f64`, on every
//! instruction set). Results are in storage units (`q` for `u16`): callers scale.

use super::isa::Isa;
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

/// Checks the shapes of a batched tile call; returns `k`.
fn check_batch<T>(t: &[T], xi: &[&[f32]], xj: &[&[f32]], y: &[f32], z: Option<&[f32]>) -> usize {
    let k = xi.len();
    assert!(t.len() == TILE_ELEMS && xj.len() == k);
    assert!(xi.iter().chain(xj).all(|x| x.len() == TILE));
    assert!(y.len() == k * TILE && z.is_none_or(|z| z.len() == k * TILE));
    k
}

/// The scalar twin of the SIMD row-block kernel: the same lanes and order (fused multiply-adds
/// through `mul_add`, the AVX2 `hadd` reduction written out), hence the same bits.
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
    let mut acc = [[0.0f32; 8]; PANEL_ROWS];
    for cc in 0..TILE / PANEL_COLS {
        let base = (rb * (TILE / PANEL_COLS) + cc) * panel;
        let col = cc * PANEL_COLS;
        for (r, a) in acc.iter_mut().enumerate() {
            let p = &t[base + r * PANEL_COLS..base + (r + 1) * PANEL_COLS];
            for l in 0..8 {
                a[l] = conv(p[l]).mul_add(xj[col + l], a[l]);
            }
            for l in 0..8 {
                a[l] = conv(p[8 + l]).mul_add(xj[col + 8 + l], a[l]);
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
        let s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
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
    ($t:ty, $avx:ident, $conv:expr) => {
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
                if let Some(tok) = isa.avx2() {
                    // The AVX2 kernel serves AVX-512 too (its row sums are the AVX2 bits).
                    // SAFETY: the token exists only where the CPU has AVX2 and FMA.
                    return unsafe { avx2::$avx(tok, t, xi, xj, y, z) };
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

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! AVX2 + FMA: each public kernel takes an [`Avx2`] token. All loads stay inside the
    //! slices, whose lengths are checked on entry.
    use super::{check_batch, PANEL_COLS, PANEL_ROWS, TILE};
    use crate::kernels::isa::Avx2;
    use crate::kernels::matvec::avx2::{load_f32, load_u16};
    use std::arch::x86_64::*;

    // No software prefetch: a tile is one sequential stream, and on this machine prefetching
    // one or two row blocks ahead measured 5–25 % slower than the hardware prefetcher alone.

    /// The eight horizontal sums of `a[0..8]`, as one vector (a transposing reduction):
    /// lane `r` is `((a_r0 + a_r1) + (a_r2 + a_r3)) + ((a_r4 + a_r5) + (a_r6 + a_r7))`.
    #[target_feature(enable = "avx2,fma")]
    fn row_sums(a: &[__m256; PANEL_ROWS]) -> __m256 {
        let t0 = _mm256_hadd_ps(a[0], a[1]);
        let t1 = _mm256_hadd_ps(a[2], a[3]);
        let t2 = _mm256_hadd_ps(a[4], a[5]);
        let t3 = _mm256_hadd_ps(a[6], a[7]);
        let u0 = _mm256_hadd_ps(t0, t1);
        let u1 = _mm256_hadd_ps(t2, t3);
        _mm256_add_ps(
            _mm256_permute2f128_ps(u0, u1, 0x20),
            _mm256_permute2f128_ps(u0, u1, 0x31),
        )
    }

    macro_rules! tile_kernel {
        ($name:ident, $rb:ident, $t:ty, $load:ident) => {
            /// Row block `rb` of the tile at `tp` against one vector pair.
            ///
            /// # Safety
            /// `tp` points to a whole tile (`TILE_ELEMS` values); `xi`, `xj`, `y` and (if
            /// given) `z` to `TILE` f32 each.
            #[inline]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn $rb(
                tp: *const $t,
                rb: usize,
                xip: *const f32,
                xjp: *const f32,
                yp: *mut f32,
                zp: Option<*mut f32>,
            ) {
                let panel = PANEL_ROWS * PANEL_COLS;
                let mut acc = [_mm256_setzero_ps(); PANEL_ROWS];
                for cc in 0..TILE / PANEL_COLS {
                    let base = (rb * (TILE / PANEL_COLS) + cc) * panel;
                    let col = cc * PANEL_COLS;
                    // SAFETY: base + panel <= TILE_ELEMS; col + 16 <= TILE; rb * 8 + r < TILE.
                    unsafe {
                        let x0 = _mm256_loadu_ps(xjp.add(col));
                        let x1 = _mm256_loadu_ps(xjp.add(col + 8));
                        match zp {
                            Some(zp) => {
                                let mut z0 = _mm256_loadu_ps(zp.add(col));
                                let mut z1 = _mm256_loadu_ps(zp.add(col + 8));
                                for r in 0..PANEL_ROWS {
                                    let p = tp.add(base + r * PANEL_COLS);
                                    let p0 = $load(p);
                                    let p1 = $load(p.add(8));
                                    acc[r] = _mm256_fmadd_ps(p0, x0, acc[r]);
                                    acc[r] = _mm256_fmadd_ps(p1, x1, acc[r]);
                                    let xr = _mm256_broadcast_ss(&*xip.add(rb * PANEL_ROWS + r));
                                    z0 = _mm256_fmadd_ps(p0, xr, z0);
                                    z1 = _mm256_fmadd_ps(p1, xr, z1);
                                }
                                _mm256_storeu_ps(zp.add(col), z0);
                                _mm256_storeu_ps(zp.add(col + 8), z1);
                            }
                            None => {
                                for r in 0..PANEL_ROWS {
                                    let p = tp.add(base + r * PANEL_COLS);
                                    acc[r] = _mm256_fmadd_ps($load(p), x0, acc[r]);
                                    acc[r] = _mm256_fmadd_ps($load(p.add(8)), x1, acc[r]);
                                }
                            }
                        }
                    }
                }
                // SAFETY: rb * 8 + 8 <= TILE.
                unsafe {
                    let yp = yp.add(rb * PANEL_ROWS);
                    _mm256_storeu_ps(yp, _mm256_add_ps(_mm256_loadu_ps(yp), row_sums(&acc)));
                }
            }

            #[target_feature(enable = "avx2,fma")]
            pub fn $name(
                _: Avx2,
                t: &[$t],
                xi: &[&[f32]],
                xj: &[&[f32]],
                y: &mut [f32],
                z: Option<&mut [f32]>,
            ) {
                let k = check_batch(t, xi, xj, y, z.as_deref());
                let tp = t.as_ptr();
                let yp = y.as_mut_ptr();
                let zp = z.map(|z| z.as_mut_ptr());
                for rb in 0..TILE / PANEL_ROWS {
                    for v in 0..k {
                        // SAFETY: the shapes were checked: a whole tile, TILE values per
                        // vector in xi, xj, and at v * TILE in y and z.
                        unsafe {
                            $rb(
                                tp,
                                rb,
                                xi[v].as_ptr(),
                                xj[v].as_ptr(),
                                yp.add(v * TILE),
                                zp.map(|z| z.add(v * TILE)),
                            )
                        }
                    }
                }
            }
        };
    }

    tile_kernel!(tile_f32, row_block_f32, f32, load_f32);
    tile_kernel!(tile_u16, row_block_u16, u16, load_u16);
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
